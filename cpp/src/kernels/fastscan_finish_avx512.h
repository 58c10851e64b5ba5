// The end of a fast-scan block, shared by the two AVX-512 kernels (BW, VL): its 32 uint16 sums
// stored and their candidate mask. Internal linkage: each file compiles it with its own flags.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>

namespace latefold {
namespace kernels {

/// Stores sums 0-15 (`first`) and 16-31 (`second`) at `out` and returns the mask of fastscan_fn:
/// bit j set when low < sum j < high. The bounds are clamped to the uint16 range; a bound
/// outside it lets every sum through.
static inline std::uint32_t finish_fastscan_block(std::uint16_t* out, __m256i first, __m256i second,
                                                  std::int32_t low, std::int32_t high) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), first);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 16), second);
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
