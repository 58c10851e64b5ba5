// Private: the AVX2 + FMA + F16C float vector, the `V` of the templates (tile_templates.h,
// lane_templates.h, dot_rows_template.h, quantized_templates.h). Included only by the *_avx2.cc
// files. In an anonymous namespace: the templates instantiated with it stay private to each file,
// never merged with another path's code.
#pragma once

#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#include "latefold/common.h"

namespace latefold {
namespace kernels {
namespace {

struct Avx2 {
    using reg = __m256;
    static constexpr int lanes = 8;
    static reg set1(float v) { return _mm256_set1_ps(v); }
    static reg add(reg a, reg b) { return _mm256_add_ps(a, b); }
    static void keep_less(reg v, reg c, reg& best, reg& best_c) {
        const __m256 less = _mm256_cmp_ps(v, best, _CMP_LT_OQ);
        best = _mm256_blendv_ps(best, v, less);
        best_c = _mm256_blendv_ps(best_c, c, less);
    }
    static reg zero() { return _mm256_setzero_ps(); }
    static reg lowest() { return _mm256_set1_ps(-INFINITY); }
    static reg load(const float* p) { return _mm256_loadu_ps(p); }
    static reg load_row(const float* p) { return _mm256_loadu_ps(p); }
    static reg load_row(const half_bits* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
    // Half rows with a finiteness check on the way (widen_template.h): the largest
    // exponent field seen; a half is NaN or infinite when its field is all ones.
    using hcheck = __m128i;
    static hcheck hzero() { return _mm_setzero_si128(); }
    static reg load_row(const half_bits* p, hcheck& worst) {
        const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
        worst = _mm_max_epu16(worst, _mm_and_si128(h, _mm_set1_epi16(0x7C00)));
        return _mm256_cvtph_ps(h);
    }
    static bool all_finite(hcheck worst) { return !_mm_movemask_epi8(_mm_cmpeq_epi16(worst, _mm_set1_epi16(0x7C00))); }
    static reg broadcast(const float* p) { return _mm256_broadcast_ss(p); }
    static reg fma(reg a, reg b, reg c) { return _mm256_fmadd_ps(a, b, c); }
    static void store(float* p, reg a) { _mm256_storeu_ps(p, a); }
    static reg max(reg a, reg b) { return _mm256_max_ps(a, b); }
    static float sum(reg a) {
        __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
        s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        s = _mm_add_ss(s, _mm_movehdup_ps(s));
        return _mm_cvtss_f32(s);
    }
    // int32 lanes (the int8 MaxSim of quantized_templates.h): madd16 multiplies the int16 pairs of
    // each 32-bit lane and adds the two products (vpmaddwd: exact, no saturation for int8 inputs).
    using ireg = __m256i;
    static ireg izero() { return _mm256_setzero_si256(); }
    static ireg iload(const std::int16_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
    static ireg broadcast_pair(const std::int16_t* p) {
        std::int32_t v;
        std::memcpy(&v, p, sizeof v);
        return _mm256_set1_epi32(v);
    }
    static ireg madd16(ireg a, ireg b) { return _mm256_madd_epi16(a, b); }
    static ireg iadd(ireg a, ireg b) { return _mm256_add_epi32(a, b); }
    static reg to_float(ireg a) { return _mm256_cvtepi32_ps(a); }
    static reg mul(reg a, reg b) { return _mm256_mul_ps(a, b); }
};

}  // namespace
}  // namespace kernels
}  // namespace latefold
