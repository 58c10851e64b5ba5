// The scalar twins of the PQ kernels with float tables (adc_rows, adc_scan) and of the fast
// scan's blocked layout (block_codes), written from their contracts: one subspace, one vector,
// one byte at a time.
// Plain loops, compiled without auto-vectorisation: the oracle the SIMD paths are tested against.
#include "table.h"

namespace latefold {
namespace kernels {
namespace {

// One vector's estimate, A of adc_rows.
float adc_sum(const float* tables, const std::uint8_t* codes, std::size_t m, std::size_t nbits) {
    const std::size_t entries = std::size_t(1) << nbits, unrolled = m / 4 * 4;
    float partial[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (std::size_t s = 0; s < m; ++s) {
        const std::uint32_t code = nbits == 8 ? codes[s] : (codes[s / 2] >> (s % 2 * 4)) & 15u;
        const std::size_t into = s < unrolled ? s % 4 : nbits == 8 ? 0 : s % 2;
        partial[into] += tables[s * entries + code];
    }
    return (partial[0] + partial[1]) + (partial[2] + partial[3]);
}

}  // namespace

void adc_rows_scalar(const float* tables, const std::uint8_t* codes, std::size_t code_size,
                     const std::uint32_t* rows, std::size_t count, std::size_t m, std::size_t nbits, float* out) {
    for (std::size_t i = 0; i < count; ++i) out[i] = adc_sum(tables, codes + std::size_t(rows[i]) * code_size, m, nbits);
}

void adc_scan_scalar(const float* tables, std::size_t nq, const std::uint8_t* codes, std::size_t count,
                     std::size_t m, float sign, float* out) {
    const std::size_t in_order = count / 4 * 4;
    for (std::size_t q = 0; q < nq; ++q) {
        const float* table = tables + q * m * 256;
        for (std::size_t i = 0; i < count; ++i) {
            const std::uint8_t* vector = codes + i * m;
            float sum = 0.0f;
            if (i < in_order) {
                for (std::size_t s = 0; s < m; ++s) sum += table[s * 256 + vector[s]];
            } else {
                sum = adc_sum(table, vector, m, 8);
            }
            out[q * count + i] = sign * sum;
        }
    }
}

void block_codes_scalar(const std::uint8_t* codes, std::size_t count, std::size_t bytes, std::size_t pairs,
                        std::uint8_t* out) {
    const std::size_t blocks = (count + 31) / 32;
    for (std::size_t b = 0; b < blocks; ++b)
        for (std::size_t p = 0; p < pairs; ++p)
            for (std::size_t j = 0; j < 32; ++j) {
                const std::size_t vector = b * 32 + j;
                out[(b * pairs + p) * 32 + j] = vector < count && p < bytes ? codes[vector * bytes + p] : 0;
            }
}

}  // namespace kernels
}  // namespace latefold
