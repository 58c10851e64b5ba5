// The row kernels (f16_to_f32, dot_rows_f32, dot_rows_f16, first_non_finite) for aarch64 Advanced SIMD.
#include <arm_neon.h>

#include <cstring>

#include "dot_rows_template.h"
#include "vector_neon.h"

namespace latefold {
namespace kernels {

void f16_to_f32_neon(const half_bits* src, float* dst, std::size_t n) {
    std::size_t i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(dst + i, vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(src + i))));
    for (; i < n; ++i) {
        half_bits tail[4] = {src[i], 0, 0, 0};
        dst[i] = vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(tail))), 0);
    }
}

void dot_rows_f32_neon(const float* q, const float* base, std::size_t stride,
                       const std::uint32_t* ids, std::size_t count, std::size_t dim, float* out) {
    dot_rows<Neon>(q, base, stride, ids, count, dim, out);
}

void dot_rows_f16_neon(const float* q, const half_bits* base, std::size_t stride,
                       const std::uint32_t* ids, std::size_t count, std::size_t dim, float* out) {
    dot_rows<Neon>(q, base, stride, ids, count, dim, out);
}

// A value is NaN or infinite exactly when every exponent bit is set: the largest exponent field
// of a row (unsigned) is then the full mask.
std::size_t first_non_finite_neon(const float* rows, std::size_t count, std::size_t stride, std::size_t dim) {
    constexpr std::uint32_t mask = 0x7F800000u;
    const uint32x4_t exponent = vdupq_n_u32(mask);
    for (std::size_t t = 0; t < count; ++t) {
        const float* row = rows + t * stride;
        uint32x4_t worst = vdupq_n_u32(0);
        std::size_t k = 0;
        for (; k + 4 <= dim; k += 4)
            worst = vmaxq_u32(worst, vandq_u32(vreinterpretq_u32_f32(vld1q_f32(row + k)), exponent));
        std::uint32_t largest = vmaxvq_u32(worst);
        for (; k < dim; ++k) {
            std::uint32_t bits;
            std::memcpy(&bits, row + k, sizeof bits);
            largest = (bits & mask) > largest ? bits & mask : largest;
        }
        if (largest == mask) return t;
    }
    return count;
}

}  // namespace kernels
}  // namespace latefold
