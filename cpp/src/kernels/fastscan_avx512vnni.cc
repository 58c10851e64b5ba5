// The 4-bit fast-scan kernel (fastscan) for AVX-512 with VBMI and VNNI (Ice Lake, Sapphire Rapids,
// Zen 4 and later); every other kernel of this path is the AVX-512 one.
#include <immintrin.h>

#include <array>

#include "accumulate_in_place.h"
#include "fastscan_finish_avx512.h"
#include "fastscan_query_groups.h"
#include "table.h"

namespace latefold {
namespace kernels {
namespace {

// A group of four pairs is 128 bytes of codes: pair p + i of vectors 0-31 at 32 i. Two-source
// byte permutations put each vector's four bytes side by side, vectors 0-15 in one register and
// 16-31 in the other; a nibble offset by 16 times its pair's place in the group then indexes the
// group's 64-byte low or high table (vpermb: 64 lookups into four subspaces at once), the low
// and high lookups add in bytes (entries <= 127), and vpdpbusd adds each vector's four bytes
// into its 32-bit sum. The sums stay below 65,536 (fastscan_sum_limit), so their low halves are
// the uint16 sums of the contract.
struct GroupLayout {
    std::array<std::uint8_t, 64> first{}, second{}, offset{};
};

constexpr GroupLayout group_layout() {
    GroupLayout g;
    for (int k = 0; k < 64; ++k) {
        const int vector = k / 4, place = k % 4;
        g.first[k] = std::uint8_t(place * 32 + vector);
        g.second[k] = std::uint8_t(place * 32 + 16 + vector);
        g.offset[k] = std::uint8_t(place * 16);
    }
    return g;
}

constexpr GroupLayout layout = group_layout();

template <int NQ>
void fastscan_queries_vnni(const std::uint8_t* codes, std::size_t blocks, std::size_t pairs,
                           const std::uint8_t* tables, const std::int32_t* low,
                           const std::int32_t* high, std::uint16_t* out, std::uint32_t* mask,
                           std::size_t out_blocks) {
    const std::size_t table_bytes = fastscan_table_bytes(pairs);
    const __m512i nibble = _mm512_set1_epi8(0x0F), ones = _mm512_set1_epi8(1);
    const __m512i first = _mm512_loadu_si512(layout.first.data()), second = _mm512_loadu_si512(layout.second.data());
    const __m512i offset = _mm512_loadu_si512(layout.offset.data());
    // (x & 0x0F) | offset, one ternary-logic instruction.
    auto index = [&](__m512i x) { return _mm512_ternarylogic_epi32(x, nibble, offset, 0xEA); };
    for (std::size_t b = 0; b < blocks; ++b) {
        __m512i sums_a[NQ], sums_b[NQ];  // vectors 0-15, 16-31
        for (int q = 0; q < NQ; ++q) sums_a[q] = sums_b[q] = _mm512_setzero_si512();
        const std::uint8_t* block = codes + b * pairs * 32;
        for (std::size_t p = 0; p < pairs; p += 4) {
            // pairs is even: a last group of two pairs reads zero codes (zero padding tables).
            const __m512i c0 = _mm512_loadu_si512(block + p * 32);
            const __m512i c1 = p + 2 < pairs ? _mm512_loadu_si512(block + p * 32 + 64) : _mm512_setzero_si512();
            const __m512i a = _mm512_permutex2var_epi8(c0, first, c1), c = _mm512_permutex2var_epi8(c0, second, c1);
            const __m512i a_lo = index(a), a_hi = index(_mm512_srli_epi16(a, 4));
            const __m512i c_lo = index(c), c_hi = index(_mm512_srli_epi16(c, 4));
            for (int q = 0; q < NQ; ++q) {
                const std::uint8_t* t = tables + q * table_bytes + p * 32;  // group p / 4
                const __m512i t_lo = _mm512_loadu_si512(t), t_hi = _mm512_loadu_si512(t + 64);
                const __m512i pa = _mm512_add_epi8(_mm512_permutexvar_epi8(a_lo, t_lo), _mm512_permutexvar_epi8(a_hi, t_hi));
                const __m512i pc = _mm512_add_epi8(_mm512_permutexvar_epi8(c_lo, t_lo), _mm512_permutexvar_epi8(c_hi, t_hi));
                sums_a[q] = dpbusd(sums_a[q], pa, ones);
                sums_b[q] = dpbusd(sums_b[q], pc, ones);
            }
        }
        for (int q = 0; q < NQ; ++q) {
            const __m256i lower = _mm512_cvtepi32_epi16(sums_a[q]), upper = _mm512_cvtepi32_epi16(sums_b[q]);
            mask[q * out_blocks + b] = finish_fastscan_block(out + (q * out_blocks + b) * 32, lower, upper, low[q], high[q]);
        }
    }
}

}  // namespace

void fastscan_avx512vnni(const std::uint8_t* codes, std::size_t blocks, std::size_t pairs,
                         const std::uint8_t* tables, std::size_t nq, const std::int32_t* low,
                         const std::int32_t* high, std::uint16_t* out, std::uint32_t* mask) {
    const std::size_t table_bytes = fastscan_table_bytes(pairs);
    for_query_groups<8>(nq, [&](std::size_t q, auto group) {
        fastscan_queries_vnni<decltype(group)::value>(codes, blocks, pairs, tables + q * table_bytes, low + q,
                                                      high + q, out + q * blocks * 32, mask + q * blocks, blocks);
    });
}

}  // namespace kernels
}  // namespace latefold
