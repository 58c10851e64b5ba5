// Tile kernels (MaxSim, token x matrix products) and half-precision conversion for aarch64 Advanced SIMD.
#include <arm_neon.h>

#include <cmath>

#include "tile_kernel.h"

namespace latefold {
namespace kernels {
namespace {

struct Neon {
    using reg = float32x4_t;
    static constexpr int lanes = 4;
    static reg zero() { return vdupq_n_f32(0.0f); }
    static reg lowest() { return vdupq_n_f32(-INFINITY); }
    static reg load(const float* p) { return vld1q_f32(p); }
    static reg broadcast(const float* p) { return vld1q_dup_f32(p); }
    static reg fma(reg a, reg b, reg c) { return vfmaq_f32(c, a, b); }
    static void store(float* p, reg a) { vst1q_f32(p, a); }
    static reg max(reg a, reg b) { return vmaxq_f32(a, b); }
    static float sum(reg a) { return vaddvq_f32(a); }
};

}  // namespace

float maxsim_packed_neon(const float* packed, std::size_t padded, std::size_t dim,
                         const float* doc, std::size_t rows, std::size_t row_stride) {
    // 32 registers: 32-row groups 8 x 3 = 24 accumulators; 16-row groups 4 x 6 = 24.
    return maxsim_packed<Neon, 3, 6>(packed, padded, dim, doc, rows, row_stride);
}

void project_rows_neon(const float* rows, std::size_t count, std::size_t row_stride,
                        std::size_t depth, const float* packed, std::size_t width, float* out,
                        std::size_t out_stride) {
    project_rows<Neon, 3, 6>(rows, count, row_stride, depth, packed, width, out, out_stride);
}

void signed_sums_neon(const float* x, std::size_t columns, const std::uint32_t* index,
                       const float* sign, const std::uint32_t* start, std::size_t outputs,
                       float* out) {
    signed_sums<Neon>(x, columns, index, sign, start, outputs, out);
}

void f16_to_f32_neon(const half_bits* src, float* dst, std::size_t n) {
    std::size_t i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(dst + i, vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(src + i))));
    for (; i < n; ++i) {
        half_bits tail[4] = {src[i], 0, 0, 0};
        dst[i] = vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(tail))), 0);
    }
}

}  // namespace kernels
}  // namespace latefold
