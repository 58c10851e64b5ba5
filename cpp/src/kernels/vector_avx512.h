// Private: the AVX-512 (F, BW, DQ, VL) float vector, the `V` of the templates (tile_templates.h,
// lane_templates.h, dot_rows_template.h, quantized_templates.h). Included only by the *_avx512.cc
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

struct Avx512 {
    using reg = __m512;
    static constexpr int lanes = 16;
    static reg set1(float v) { return _mm512_set1_ps(v); }
    static reg add(reg a, reg b) { return _mm512_add_ps(a, b); }
    static void keep_less(reg v, reg c, reg& best, reg& best_c) {
        const __mmask16 less = _mm512_cmp_ps_mask(v, best, _CMP_LT_OQ);
        best = _mm512_mask_mov_ps(best, less, v);
        best_c = _mm512_mask_mov_ps(best_c, less, c);
    }
    static reg zero() { return _mm512_setzero_ps(); }
    static reg lowest() { return _mm512_set1_ps(-INFINITY); }
    static reg load(const float* p) { return _mm512_loadu_ps(p); }
    static reg load_row(const float* p) { return _mm512_loadu_ps(p); }
    static reg load_row(const half_bits* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
    // Half rows with a finiteness check on the way (widen_template.h): the largest
    // exponent field seen; a half is NaN or infinite when its field is all ones.
    using hcheck = __m256i;
    static hcheck hzero() { return _mm256_setzero_si256(); }
    static reg load_row(const half_bits* p, hcheck& worst) {
        const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
        worst = _mm256_max_epu16(worst, _mm256_and_si256(h, _mm256_set1_epi16(0x7C00)));
        return _mm512_cvtph_ps(h);
    }
    static bool all_finite(hcheck worst) { return !_mm256_cmpeq_epi16_mask(worst, _mm256_set1_epi16(0x7C00)); }
    static reg broadcast(const float* p) { return _mm512_set1_ps(*p); }
    static reg fma(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }
    static void store(float* p, reg a) { _mm512_storeu_ps(p, a); }
    static reg max(reg a, reg b) { return _mm512_max_ps(a, b); }
    static float sum(reg a) { return _mm512_reduce_add_ps(a); }
    // int32 lanes (the int8 MaxSim of quantized_templates.h): madd16 multiplies the int16 pairs of
    // each 32-bit lane and adds the two products (vpmaddwd: exact, no saturation for int8 inputs).
    using ireg = __m512i;
    static ireg izero() { return _mm512_setzero_si512(); }
    static ireg iload(const std::int16_t* p) { return _mm512_loadu_si512(p); }
    static ireg broadcast_pair(const std::int16_t* p) {
        std::int32_t v;
        std::memcpy(&v, p, sizeof v);
        return _mm512_set1_epi32(v);
    }
    static ireg madd16(ireg a, ireg b) { return _mm512_madd_epi16(a, b); }
    static ireg iadd(ireg a, ireg b) { return _mm512_add_epi32(a, b); }
    static reg to_float(ireg a) { return _mm512_cvtepi32_ps(a); }
    static reg mul(reg a, reg b) { return _mm512_mul_ps(a, b); }
};

}  // namespace
}  // namespace kernels
}  // namespace latefold
