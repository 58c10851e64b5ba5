// Tile kernels (MaxSim, token x matrix products) and half-precision conversion for AVX-512 (F, BW, DQ, VL).
#include <immintrin.h>

#include <cmath>

#include "tile_kernel.h"

namespace latefold {
namespace kernels {
namespace {

struct Avx512 {
    using reg = __m512;
    static constexpr int lanes = 16;
    static reg zero() { return _mm512_setzero_ps(); }
    static reg lowest() { return _mm512_set1_ps(-INFINITY); }
    static reg load(const float* p) { return _mm512_loadu_ps(p); }
    static reg broadcast(const float* p) { return _mm512_set1_ps(*p); }
    static reg fma(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }
    static void store(float* p, reg a) { _mm512_storeu_ps(p, a); }
    static reg max(reg a, reg b) { return _mm512_max_ps(a, b); }
    static float sum(reg a) { return _mm512_reduce_add_ps(a); }
};

}  // namespace

float maxsim_packed_avx512(const float* packed, std::size_t padded, std::size_t dim,
                           const float* doc, std::size_t rows, std::size_t row_stride) {
    // 32-row groups: 2 x 8 = 16 accumulators; 16-row groups: 1 x 12.
    return maxsim_packed<Avx512, 8, 12>(packed, padded, dim, doc, rows, row_stride);
}

void project_rows_avx512(const float* rows, std::size_t count, std::size_t row_stride,
                        std::size_t depth, const float* packed, std::size_t width, float* out,
                        std::size_t out_stride) {
    project_rows<Avx512, 8, 12>(rows, count, row_stride, depth, packed, width, out, out_stride);
}

void signed_sums_avx512(const float* x, std::size_t columns, const std::uint32_t* index,
                       const float* sign, const std::uint32_t* start, std::size_t outputs,
                       float* out) {
    signed_sums<Avx512>(x, columns, index, sign, start, outputs, out);
}

void f16_to_f32_avx512(const half_bits* src, float* dst, std::size_t n) {
    std::size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256(
                                      reinterpret_cast<const __m256i*>(src + i))));
    if (i < n) {
        const __mmask16 mask = static_cast<__mmask16>((1u << (n - i)) - 1u);
        _mm512_mask_storeu_ps(dst + i, mask, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, src + i)));
    }
}

}  // namespace kernels
}  // namespace latefold
