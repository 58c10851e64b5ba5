// The scalar twins of the 4-bit fast-scan kernels: fastscan and fastscan_table.
// Plain loops, compiled without auto-vectorisation: the oracle the SIMD paths are tested against.
#include <algorithm>

#include "table.h"

namespace latefold {
namespace kernels {

void fastscan_scalar(const std::uint8_t* codes, std::size_t blocks, std::size_t pairs,
                     const std::uint8_t* tables, std::size_t nq, const std::int32_t* low,
                     const std::int32_t* high, std::uint16_t* out, std::uint32_t* mask) {
    for (std::size_t q = 0; q < nq; ++q) {
        const std::uint8_t* t = tables + q * fastscan_table_bytes(pairs);
        for (std::size_t b = 0; b < blocks; ++b) {
            std::uint16_t* sums = out + (q * blocks + b) * 32;
            for (std::size_t j = 0; j < 32; ++j) {
                std::uint16_t sum = 0;
                for (std::size_t p = 0; p < pairs; ++p) {
                    const std::uint8_t byte = codes[(b * pairs + p) * 32 + j];
                    sum = std::uint16_t(sum + t[fastscan_table_offset(2 * p) + (byte & 15)] +
                                        t[fastscan_table_offset(2 * p + 1) + (byte >> 4)]);
                }
                sums[j] = sum;
            }
            mask[q * blocks + b] = fastscan_mask(sums, low[q], high[q]);
        }
    }
}

void fastscan_table_scalar(const float* lut, std::size_t m, float qmax, std::uint8_t* table,
                           float* base, float* delta) {
    auto low_of = [](const float* t) {
        float lo = t[0];
        for (int c = 1; c < 16; ++c) lo = std::min(lo, t[c]);
        return lo;
    };
    float range = 0.0f, total = 0.0f, sum = 0.0f;
    for (std::size_t s = 0; s < m; ++s) {
        const float* t = lut + s * 16;
        float hi = t[0];
        for (int c = 1; c < 16; ++c) hi = std::max(hi, t[c]);
        const float lo = low_of(t);
        range = std::max(range, hi - lo);
        total += hi - lo;
        sum += lo;
    }
    const float step = fastscan_step(range, total, m, qmax), scale = 1.0f / step;
    for (std::size_t s = 0; s < m; ++s) {
        const float* t = lut + s * 16;
        const float lo = low_of(t);
        std::uint8_t entries[16];
        for (int c = 0; c < 16; ++c) entries[c] = std::uint8_t(std::min((t[c] - lo) * scale, qmax) + 0.5f);
        set_fastscan_table(table, s, entries);
    }
    *base = sum;
    *delta = step;
}

}  // namespace kernels
}  // namespace latefold
