// The 4-bit fast-scan kernels (fastscan, fastscan_table) for aarch64 Advanced SIMD.
#include <arm_neon.h>

#include <algorithm>

#include "table.h"

namespace latefold {
namespace kernels {

// Fast scan, 32 vectors per block: table lookups (vqtbl1q) score 16 vectors per subspace.
void fastscan_neon(const std::uint8_t* codes, std::size_t blocks, std::size_t pairs,
                   const std::uint8_t* tables, std::size_t nq, const std::int32_t* low,
                   const std::int32_t* high, std::uint16_t* out, std::uint32_t* mask) {
    const uint8x16_t low_nibble = vdupq_n_u8(0x0F);
    for (std::size_t q = 0; q < nq; ++q) {
        const std::uint8_t* lut = tables + q * fastscan_table_bytes(pairs);
        for (std::size_t b = 0; b < blocks; ++b) {
            uint16x8_t acc[4] = {vdupq_n_u16(0), vdupq_n_u16(0), vdupq_n_u16(0), vdupq_n_u16(0)};
            const std::uint8_t* block = codes + b * pairs * 32;
            for (std::size_t p = 0; p < pairs; ++p) {
                const uint8x16_t t_lo = vld1q_u8(lut + fastscan_table_offset(2 * p));
                const uint8x16_t t_hi = vld1q_u8(lut + fastscan_table_offset(2 * p + 1));
                for (int h = 0; h < 2; ++h) {
                    const uint8x16_t c = vld1q_u8(block + p * 32 + 16 * h);
                    const uint8x16_t r_lo = vqtbl1q_u8(t_lo, vandq_u8(c, low_nibble));
                    const uint8x16_t r_hi = vqtbl1q_u8(t_hi, vshrq_n_u8(c, 4));
                    acc[2 * h] = vaddq_u16(acc[2 * h], vaddl_u8(vget_low_u8(r_lo), vget_low_u8(r_hi)));
                    acc[2 * h + 1] = vaddq_u16(acc[2 * h + 1], vaddl_u8(vget_high_u8(r_lo), vget_high_u8(r_hi)));
                }
            }
            std::uint16_t* sums = out + (q * blocks + b) * 32;
            for (int i = 0; i < 4; ++i) vst1q_u16(sums + 8 * i, acc[i]);
            mask[q * blocks + b] = fastscan_mask(sums, low[q], high[q]);
        }
    }
}

void fastscan_table_neon(const float* lut, std::size_t m, float qmax, std::uint8_t* table,
                         float* base, float* delta) {
    float range = 0.0f, total = 0.0f, sum = 0.0f;
    for (std::size_t s = 0; s < m; ++s) {
        const float* t = lut + s * 16;
        const float32x4_t a = vld1q_f32(t), b = vld1q_f32(t + 4), c = vld1q_f32(t + 8), d = vld1q_f32(t + 12);
        const float lo = vminvq_f32(vminq_f32(vminq_f32(a, b), vminq_f32(c, d)));
        const float span = vmaxvq_f32(vmaxq_f32(vmaxq_f32(a, b), vmaxq_f32(c, d))) - lo;
        range = std::max(range, span);
        total += span;
        sum += lo;
    }
    const float step = fastscan_step(range, total, m, qmax);
    const float32x4_t scale = vdupq_n_f32(1.0f / step), top = vdupq_n_f32(qmax), half = vdupq_n_f32(0.5f);
    for (std::size_t s = 0; s < m; ++s) {
        const float* t = lut + s * 16;
        float32x4_t v[4] = {vld1q_f32(t), vld1q_f32(t + 4), vld1q_f32(t + 8), vld1q_f32(t + 12)};
        const float32x4_t lo = vdupq_n_f32(vminvq_f32(vminq_f32(vminq_f32(v[0], v[1]), vminq_f32(v[2], v[3]))));
        uint16x4_t w[4];
        for (int i = 0; i < 4; ++i)
            w[i] = vmovn_u32(vcvtq_u32_f32(vaddq_f32(vminq_f32(vmulq_f32(vsubq_f32(v[i], lo), scale), top), half)));
        const uint8x16_t entries = vcombine_u8(vmovn_u16(vcombine_u16(w[0], w[1])), vmovn_u16(vcombine_u16(w[2], w[3])));
        std::uint8_t* out = table + fastscan_table_offset(s);
        vst1q_u8(out, entries);
    }
    *base = sum;
    *delta = step;
}

}  // namespace kernels
}  // namespace latefold
