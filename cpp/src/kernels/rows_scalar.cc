// The scalar twins of the row kernels (f16_to_f32, dot_rows_f32, dot_rows_f16, first_non_finite),
// and the exact half-precision conversion that the SIMD paths' tails use too.
// Plain loops, compiled without auto-vectorisation: the oracle the SIMD paths are tested against.
#include <cmath>
#include <cstring>

#include "dot_rows_template.h"
#include "table.h"

namespace latefold {
namespace kernels {

// IEEE binary16 -> binary32, exact, including subnormals, infinities and NaN payloads.
float half_to_float(half_bits h) noexcept {
    const std::uint32_t sign = std::uint32_t(h & 0x8000u) << 16;
    const std::uint32_t exponent = (h >> 10) & 0x1Fu;
    std::uint32_t mantissa = h & 0x3FFu;
    std::uint32_t bits;
    if (exponent == 0x1F) {
        bits = sign | 0x7F800000u | (mantissa << 13);
    } else if (exponent != 0) {
        bits = sign | ((exponent + 112u) << 23) | (mantissa << 13);
    } else if (mantissa == 0) {
        bits = sign;
    } else {  // subnormal: normalise
        int shift = 0;
        while (!(mantissa & 0x400u)) mantissa <<= 1, ++shift;
        bits = sign | (std::uint32_t(113 - shift) << 23) | ((mantissa & 0x3FFu) << 13);
    }
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
}

bool f16_to_f32_scalar(const half_bits* src, float* dst, std::size_t n) {
    bool finite = true;
    for (std::size_t i = 0; i < n; ++i) {
        dst[i] = half_to_float(src[i]);
        finite = finite && (src[i] & 0x7C00u) != 0x7C00u;
    }
    return finite;
}

void dot_rows_f32_scalar(const float* q, const float* base, std::size_t stride,
                         const std::uint32_t* ids, std::size_t count, std::size_t dim, float* out) {
    for (std::size_t i = 0; i < count; ++i) {
        const float* row = base + std::size_t(ids[i]) * stride;
        float dot = 0.0f;
        for (std::size_t k = 0; k < dim; ++k) dot += q[k] * row[k];
        out[i] = dot;
    }
}

void dot_rows_f16_scalar(const float* q, const half_bits* base, std::size_t stride,
                         const std::uint32_t* ids, std::size_t count, std::size_t dim, float* out) {
    for (std::size_t i = 0; i < count; ++i) {
        const half_bits* row = base + std::size_t(ids[i]) * stride;
        float dot = 0.0f;
        for (std::size_t k = 0; k < dim; ++k) dot += q[k] * half_to_float(row[k]);
        out[i] = dot;
    }
}

std::size_t first_non_finite_scalar(const float* rows, std::size_t count, std::size_t stride, std::size_t dim) {
    for (std::size_t t = 0; t < count; ++t)
        for (std::size_t k = 0; k < dim; ++k)
            if (!std::isfinite(rows[t * stride + k])) return t;
    return count;
}

}  // namespace kernels
}  // namespace latefold
