// The row kernels (f16_to_f32, dot_rows_f32, dot_rows_f16) for aarch64 Advanced SIMD.
#include <arm_neon.h>

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

}  // namespace kernels
}  // namespace latefold
