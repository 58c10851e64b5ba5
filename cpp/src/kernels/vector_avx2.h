// Private: the AVX2 + FMA + F16C float vector, the `V` of the templates (tile_templates.h,
// lane_templates.h, dot_rows_template.h). Included only by the *_avx2.cc files. In an anonymous
// namespace: the templates instantiated with it stay private to each file, never merged with
// another path's code.
#pragma once

#include <immintrin.h>

#include <cmath>

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
};

}  // namespace
}  // namespace kernels
}  // namespace latefold
