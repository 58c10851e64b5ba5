// Tile kernels (MaxSim, token x matrix products) and half-precision conversion for AVX2 + FMA + F16C.
#include <immintrin.h>

#include <cmath>

#include "tile_kernel.h"

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

float maxsim_packed_avx2(const float* packed, std::size_t padded, std::size_t dim,
                         const float* doc, std::size_t rows, std::size_t row_stride) {
    // 16 registers: 32-row groups 4 x 3 = 12 accumulators; 16-row groups 2 x 6 = 12.
    return maxsim_packed<Avx2, 3, 6>(packed, padded, dim, doc, rows, row_stride);
}

void project_rows_avx2(const float* rows, std::size_t count, std::size_t row_stride,
                        std::size_t depth, const float* packed, std::size_t width, float* out,
                        std::size_t out_stride) {
    project_rows<Avx2, 3, 6>(rows, count, row_stride, depth, packed, width, out, out_stride);
}

void signed_sums_avx2(const float* x, std::size_t columns, const std::uint32_t* index,
                       const float* sign, const std::uint32_t* start, std::size_t outputs,
                       float* out) {
    signed_sums<Avx2>(x, columns, index, sign, start, outputs, out);
}

void nearest_rows_avx2(const float* rows, std::size_t count, std::size_t row_stride,
                        std::size_t depth, const float* packed, const float* bias,
                        std::size_t width, std::uint32_t* index, float* value) {
    nearest_rows<Avx2, 3, 6>(rows, count, row_stride, depth, packed, bias, width, index, value);
}

// Fast scan, 32 vectors per block: one shuffle per subspace scores all of them.
void fastscan_avx2(const std::uint8_t* codes, std::size_t blocks, std::size_t pairs,
                   const std::uint8_t* lut, std::int32_t low, std::int32_t high,
                   std::uint16_t* out, std::uint32_t* mask) {
    const __m256i low_nibble = _mm256_set1_epi8(0x0F), low_byte = _mm256_set1_epi16(0x00FF);
    for (std::size_t b = 0; b < blocks; ++b) {
        __m256i even = _mm256_setzero_si256(), odd = _mm256_setzero_si256();
        const std::uint8_t* block = codes + b * pairs * 32;
        for (std::size_t p = 0; p < pairs; ++p) {
            const __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + p * 32));
            const __m256i t_lo = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(lut + 32 * p)));
            const __m256i t_hi = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(lut + 32 * p + 16)));
            const __m256i r_lo = _mm256_shuffle_epi8(t_lo, _mm256_and_si256(c, low_nibble));
            const __m256i r_hi = _mm256_shuffle_epi8(t_hi, _mm256_and_si256(_mm256_srli_epi16(c, 4), low_nibble));
            // Bytes 2w / 2w+1 (vectors 2w / 2w+1) widened into 16-bit word w of even / odd.
            even = _mm256_add_epi16(even, _mm256_add_epi16(_mm256_and_si256(r_lo, low_byte), _mm256_and_si256(r_hi, low_byte)));
            odd = _mm256_add_epi16(odd, _mm256_add_epi16(_mm256_srli_epi16(r_lo, 8), _mm256_srli_epi16(r_hi, 8)));
        }
        // Interleave even / odd words back into vector order 0..31.
        const __m256i lo = _mm256_unpacklo_epi16(even, odd), hi = _mm256_unpackhi_epi16(even, odd);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + b * 32), _mm256_permute2x128_si256(lo, hi, 0x20));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + b * 32 + 16), _mm256_permute2x128_si256(lo, hi, 0x31));
        mask[b] = fastscan_mask(out + b * 32, low, high);
    }
}

void f16_to_f32_avx2(const half_bits* src, float* dst, std::size_t n) {
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i,
                         _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))));
    if (i < n) {
        half_bits tail[8] = {};
        float out[8];
        for (std::size_t j = i; j < n; ++j) tail[j - i] = src[j];
        _mm256_storeu_ps(out, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(tail))));
        for (std::size_t j = i; j < n; ++j) dst[j] = out[j - i];
    }
}

void dot_rows_f32_avx2(const float* q, const float* base, std::size_t stride,
                       const std::uint32_t* ids, std::size_t count, std::size_t dim, float* out) {
    dot_rows<Avx2>(q, base, stride, ids, count, dim, out);
}

void dot_rows_f16_avx2(const float* q, const half_bits* base, std::size_t stride,
                       const std::uint32_t* ids, std::size_t count, std::size_t dim, float* out) {
    dot_rows<Avx2>(q, base, stride, ids, count, dim, out);
}

}  // namespace kernels
}  // namespace latefold
