// The centroid interaction kernel for AVX2: 16 int16 columns a register.
#include <immintrin.h>

#include "centroid_template.h"

namespace latefold {
namespace kernels {
namespace {

struct Avx2I16 {
    using reg = __m256i;
    static constexpr std::size_t lanes = 16;
    static reg load(const std::int16_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
    static reg add(reg a, reg b) { return _mm256_add_epi16(a, b); }
    static reg max(reg a, reg b) { return _mm256_max_epi16(a, b); }
    static reg lowest() { return _mm256_set1_epi16(-32768); }
    static std::int64_t sum(reg v) {  // pairs to int32, then across
        const __m256i pairs = _mm256_madd_epi16(v, _mm256_set1_epi16(1));
        const __m128i four = _mm_add_epi32(_mm256_castsi256_si128(pairs), _mm256_extracti128_si256(pairs, 1));
        const __m128i two = _mm_add_epi32(four, _mm_unpackhi_epi64(four, four));
        return std::int64_t(_mm_cvtsi128_si32(two)) + _mm_extract_epi32(two, 1);
    }
};

}  // namespace

std::int64_t centroid_maxsim_avx2(const std::int16_t* table, std::size_t padded, const std::uint16_t* codes,
                                  std::size_t count, std::size_t levels) {
    return centroid_maxsim<Avx2I16>(table, padded, codes, count, levels);
}

}  // namespace kernels
}  // namespace latefold
