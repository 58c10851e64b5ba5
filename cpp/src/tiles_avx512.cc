// Tile kernels (MaxSim, token x matrix products) and half-precision conversion for AVX-512 (F, BW, DQ, VL).
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "tile_kernel.h"

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

void nearest_rows_avx512(const float* rows, std::size_t count, std::size_t row_stride,
                        std::size_t depth, const float* packed, const float* bias,
                        std::size_t width, std::uint32_t* index, float* value) {
    nearest_rows<Avx512, 8, 12>(rows, count, row_stride, depth, packed, bias, width, index, value);
}

// Fast scan, 32 vectors per block, two subspace pairs per 512-bit register.
void fastscan_avx512(const std::uint8_t* codes, std::size_t blocks, std::size_t pairs,
                     const std::uint8_t* lut, std::int32_t low, std::int32_t high,
                     std::uint16_t* out, std::uint32_t* mask) {
    // Bounds clamped to the uint16 range; a bound outside it lets every sum through.
    const __m256i low_v = _mm256_set1_epi16(std::int16_t(std::uint16_t(std::max(0, std::min(65535, low)))));
    const __m256i high_v = _mm256_set1_epi16(std::int16_t(std::uint16_t(std::max(0, std::min(65535, high)))));
    const bool any_low = low < 0, any_high = high > 65535;
    const __m512i low_nibble = _mm512_set1_epi8(0x0F), low_byte = _mm512_set1_epi16(0x00FF);
    // Tables of two subspace pairs per register, [t(p), t(p), t(p+1), t(p+1)], built once.
    AlignedVector<std::uint8_t> table_bytes(pairs * 64);
    for (std::size_t p = 0; p < pairs; p += 2)
        for (std::size_t half = 0; half < 2; ++half) {
            const __m512i a = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(lut + 32 * p + 16 * half)));
            const __m512i b = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(lut + 32 * (p + 1) + 16 * half)));
            _mm512_store_si512(table_bytes.data() + 64 * (p + half), _mm512_mask_blend_epi64(0xF0, a, b));
        }
    const std::uint8_t* t = table_bytes.data();
    for (std::size_t b = 0; b < blocks; ++b) {
        __m512i even = _mm512_setzero_si512(), odd = _mm512_setzero_si512();
        const std::uint8_t* block = codes + b * pairs * 32;
        for (std::size_t p = 0; p < pairs; p += 2) {  // pairs is even
            const __m512i c = _mm512_loadu_si512(block + p * 32);
            const __m512i r_lo = _mm512_shuffle_epi8(_mm512_load_si512(t + 64 * p), _mm512_and_si512(c, low_nibble));
            const __m512i r_hi = _mm512_shuffle_epi8(_mm512_load_si512(t + 64 * (p + 1)),
                                                     _mm512_and_si512(_mm512_srli_epi16(c, 4), low_nibble));
            even = _mm512_add_epi16(even, _mm512_add_epi16(_mm512_and_si512(r_lo, low_byte), _mm512_and_si512(r_hi, low_byte)));
            odd = _mm512_add_epi16(odd, _mm512_add_epi16(_mm512_srli_epi16(r_lo, 8), _mm512_srli_epi16(r_hi, 8)));
        }
        const __m256i e = _mm256_add_epi16(_mm512_castsi512_si256(even), _mm512_extracti64x4_epi64(even, 1));
        const __m256i o = _mm256_add_epi16(_mm512_castsi512_si256(odd), _mm512_extracti64x4_epi64(odd, 1));
        // Interleave even / odd words back into vector order 0..31.
        const __m256i lo = _mm256_unpacklo_epi16(e, o), hi = _mm256_unpackhi_epi16(e, o);
        const __m256i first = _mm256_permute2x128_si256(lo, hi, 0x20), second = _mm256_permute2x128_si256(lo, hi, 0x31);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + b * 32), first);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + b * 32 + 16), second);
        auto pass = [&](__m256i v) {
            const __mmask16 above = any_low ? __mmask16(0xFFFF) : _mm256_cmpgt_epu16_mask(v, low_v);
            const __mmask16 below = any_high ? __mmask16(0xFFFF) : _mm256_cmplt_epu16_mask(v, high_v);
            return std::uint32_t(above & below);
        };
        mask[b] = pass(first) | (pass(second) << 16);
    }
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

void dot_rows_f32_avx512(const float* q, const float* base, std::size_t stride,
                       const std::uint32_t* ids, std::size_t count, std::size_t dim, float* out) {
    dot_rows<Avx512>(q, base, stride, ids, count, dim, out);
}

void dot_rows_f16_avx512(const float* q, const half_bits* base, std::size_t stride,
                       const std::uint32_t* ids, std::size_t count, std::size_t dim, float* out) {
    dot_rows<Avx512>(q, base, stride, ids, count, dim, out);
}

}  // namespace kernels
}  // namespace latefold
