// The fast scan's candidate mask from 32 uint16 sums in two 256-bit registers (AVX-512 BW, VL),
// shared by the two AVX-512 kernels. Internal linkage: each file compiles it with its own flags.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>

namespace latefold {
namespace kernels {

/// Bit j: low < sum j < high (sums 0-15 in `first`, 16-31 in `second`). The bounds are clamped
/// to the uint16 range; a bound outside it lets every sum through.
static inline std::uint32_t fastscan_mask_avx512(__m256i first, __m256i second, std::int32_t low,
                                                 std::int32_t high) {
    const __m256i above = _mm256_set1_epi16(std::int16_t(std::uint16_t(std::min(65535, low))));
    const __m256i below = _mm256_set1_epi16(std::int16_t(std::uint16_t(std::max(0, high))));
    auto pass = [&](__m256i v) {
        const __mmask16 a = low < 0 ? __mmask16(0xFFFF) : _mm256_cmpgt_epu16_mask(v, above);
        const __mmask16 b = high > 65535 ? __mmask16(0xFFFF) : _mm256_cmplt_epu16_mask(v, below);
        return std::uint32_t(a & b);
    };
    return pass(first) | pass(second) << 16;
}

}  // namespace kernels
}  // namespace latefold
