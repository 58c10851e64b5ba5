// The centroid interaction kernel for AVX-512 (F, BW, DQ, VL): 32 int16 columns a register (16
// in a 256-bit one for a last odd group of 16).
#include <immintrin.h>

#include "centroid_template.h"

namespace latefold {
namespace kernels {
namespace {

struct Avx512I16 {
    using reg = __m512i;
    static constexpr std::size_t lanes = 32;
    static reg load(const std::int16_t* p) { return _mm512_loadu_si512(p); }
    static reg add(reg a, reg b) { return _mm512_add_epi16(a, b); }
    static reg max(reg a, reg b) { return _mm512_max_epi16(a, b); }
    static reg lowest() { return _mm512_set1_epi16(-32768); }
    static std::int64_t sum(reg v) { return _mm512_reduce_add_epi32(_mm512_madd_epi16(v, _mm512_set1_epi16(1))); }
};

struct Avx256I16 {
    using reg = __m256i;
    static constexpr std::size_t lanes = 16;
    static reg load(const std::int16_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
    static reg add(reg a, reg b) { return _mm256_add_epi16(a, b); }
    static reg max(reg a, reg b) { return _mm256_max_epi16(a, b); }
    static reg lowest() { return _mm256_set1_epi16(-32768); }
    static std::int64_t sum(reg v) {
        return _mm512_reduce_add_epi32(_mm512_cvtepi16_epi32(v));
    }
};

}  // namespace

std::int64_t centroid_maxsim_avx512(const std::int16_t* table, std::size_t padded, const std::uint16_t* codes,
                                    std::size_t count, std::size_t levels) {
    return centroid_maxsim<Avx512I16, Avx256I16>(table, padded, codes, count, levels);
}

}  // namespace kernels
}  // namespace latefold
