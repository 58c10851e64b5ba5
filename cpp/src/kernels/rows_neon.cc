// The row kernels (f16_to_f32, dot_rows_f32, dot_rows_f16, first_non_finite) for aarch64 Advanced SIMD.
#include <arm_neon.h>

#include <cstring>

#include "dot_rows_template.h"
#include "vector_neon.h"
#include "widen_template.h"

namespace latefold {
namespace kernels {

bool f16_to_f32_neon(const half_bits* src, float* dst, std::size_t n) {
    bool finite = true;
    widen_rows<Neon>(src, 0, 1, n, n, dst, true, finite);
    return finite;
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
// of a row (unsigned) is then the full mask. Rows without gaps (stride == dim) are first read as
// one run, two accumulators wide, without a test per row; the row is looked for only when the run
// holds such a value.
std::size_t first_non_finite_neon(const float* rows, std::size_t count, std::size_t stride, std::size_t dim) {
    constexpr std::uint32_t mask = 0x7F800000u;
    const uint32x4_t exponent = vdupq_n_u32(mask);
    auto exponents = [&](const float* p) { return vandq_u32(vreinterpretq_u32_f32(vld1q_f32(p)), exponent); };
    if (stride == dim) {
        const std::size_t n = count * dim;
        uint32x4_t a = vdupq_n_u32(0), b = vdupq_n_u32(0);
        std::size_t i = 0;
        for (; i + 8 <= n; i += 8) {
            a = vmaxq_u32(a, exponents(rows + i));
            b = vmaxq_u32(b, exponents(rows + i + 4));
        }
        for (; i + 4 <= n; i += 4) a = vmaxq_u32(a, exponents(rows + i));
        std::uint32_t largest = vmaxvq_u32(vmaxq_u32(a, b));
        for (; i < n; ++i) {
            std::uint32_t bits;
            std::memcpy(&bits, rows + i, sizeof bits);
            largest = (bits & mask) > largest ? bits & mask : largest;
        }
        if (largest != mask) return count;
    }
    for (std::size_t t = 0; t < count; ++t) {
        const float* row = rows + t * stride;
        uint32x4_t worst = vdupq_n_u32(0);
        std::size_t k = 0;
        for (; k + 4 <= dim; k += 4) worst = vmaxq_u32(worst, exponents(row + k));
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
