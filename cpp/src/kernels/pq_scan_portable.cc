// The PQ kernels with float tables (adc_rows, adc_scan) and the fast scan's blocked layout
// (block_codes), unrolled, in plain C++ built for the baseline instruction set: the version
// every SIMD path uses (their table has no intrinsics for them yet).
#include <algorithm>
#include <cstring>

#include "table.h"

namespace latefold {
namespace kernels {
namespace {

// Transposes 8 rows of 8 bytes in place (row i byte k <-> row k byte i): three rounds of
// swapping byte, 2-byte and 4-byte blocks between row pairs.
void transpose8x8(std::uint64_t (&r)[8]) {
    auto swap = [&](int a, int b, int shift, std::uint64_t mask) {
        const std::uint64_t t = ((r[a] >> shift) ^ r[b]) & mask;
        r[b] ^= t;
        r[a] ^= t << shift;
    };
    for (int a : {0, 2, 4, 6}) swap(a, a + 1, 8, 0x00FF00FF00FF00FFull);
    for (int a : {0, 1, 4, 5}) swap(a, a + 2, 16, 0x0000FFFF0000FFFFull);
    for (int a : {0, 1, 2, 3}) swap(a, a + 4, 32, 0x00000000FFFFFFFFull);
}

// One vector's estimate (A of adc_rows), in four partial sums held in registers (independent adds).
float adc_sum(const float* t, const std::uint8_t* c, std::size_t m, std::size_t nbits) {
    float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
    if (nbits == 8) {
        std::size_t s = 0;
        for (; s + 4 <= m; s += 4) {
            s0 += t[s * 256 + c[s]], s1 += t[(s + 1) * 256 + c[s + 1]];
            s2 += t[(s + 2) * 256 + c[s + 2]], s3 += t[(s + 3) * 256 + c[s + 3]];
        }
        for (; s < m; ++s) s0 += t[s * 256 + c[s]];
    } else {  // byte b holds subspaces 2b (low nibble) and 2b + 1
        const std::size_t full = m / 2;
        std::size_t b = 0;
        for (; b + 2 <= full; b += 2) {
            s0 += t[(2 * b) * 16 + (c[b] & 15)], s1 += t[(2 * b + 1) * 16 + (c[b] >> 4)];
            s2 += t[(2 * b + 2) * 16 + (c[b + 1] & 15)], s3 += t[(2 * b + 3) * 16 + (c[b + 1] >> 4)];
        }
        for (; b < full; ++b) s0 += t[(2 * b) * 16 + (c[b] & 15)], s1 += t[(2 * b + 1) * 16 + (c[b] >> 4)];
        if (m & 1) s0 += t[(m - 1) * 16 + (c[full] & 15)];
    }
    return (s0 + s1) + (s2 + s3);
}

}  // namespace

// The byte transposition goes 8 x 8 at a time (the bytes are little-endian in the words).
void block_codes_portable(const std::uint8_t* codes, std::size_t count, std::size_t bytes, std::size_t pairs,
                          std::uint8_t* out) {
    const std::size_t blocks = (count + 31) / 32;
    std::fill(out, out + blocks * pairs * 32, std::uint8_t(0));
    for (std::size_t b = 0; b < blocks; ++b)
        for (std::size_t j0 = 0; j0 < 32 && b * 32 + j0 < count; j0 += 8)
            for (std::size_t p0 = 0; p0 < bytes; p0 += 8) {
                std::uint64_t r[8] = {};
                const std::size_t width = std::min<std::size_t>(8, bytes - p0);
                for (std::size_t i = 0; i < 8 && b * 32 + j0 + i < count; ++i)
                    std::memcpy(&r[i], codes + (b * 32 + j0 + i) * bytes + p0, width);
                transpose8x8(r);
                for (std::size_t k = 0; k < width; ++k)
                    std::memcpy(out + (b * pairs + p0 + k) * 32 + j0, &r[k], 8);
            }
}

void adc_rows_portable(const float* tables, const std::uint8_t* codes, std::size_t code_size,
                       const std::uint32_t* rows, std::size_t count, std::size_t m, std::size_t nbits, float* out) {
    for (std::size_t i = 0; i < count; ++i) out[i] = adc_sum(tables, codes + std::size_t(rows[i]) * code_size, m, nbits);
}

void adc_scan_portable(const float* tables, std::size_t nq, const std::uint8_t* codes, std::size_t count,
                       std::size_t m, float sign, float* out) {
    constexpr std::size_t ks = 256;
    // Two queries per load of codes, four vectors at once: independent sums; each query's
    // arithmetic is the same either way.
    std::size_t q = 0;
    for (; q + 2 <= nq; q += 2) {
        const float* ta = tables + q * m * ks;
        const float* tb = ta + m * ks;
        float* keys = out + q * count;
        float* other = keys + count;
        std::size_t i = 0;
        for (; i + 4 <= count; i += 4) {
            const std::uint8_t* c = codes + i * m;
            float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f, b0 = 0.0f, b1 = 0.0f, b2 = 0.0f, b3 = 0.0f;
            for (std::size_t sub = 0; sub < m; ++sub) {
                const float* x = ta + sub * ks;
                const float* y = tb + sub * ks;
                const std::uint8_t c0 = c[sub], c1 = c[m + sub], c2 = c[2 * m + sub], c3 = c[3 * m + sub];
                a0 += x[c0], a1 += x[c1], a2 += x[c2], a3 += x[c3];
                b0 += y[c0], b1 += y[c1], b2 += y[c2], b3 += y[c3];
            }
            keys[i] = sign * a0, keys[i + 1] = sign * a1, keys[i + 2] = sign * a2, keys[i + 3] = sign * a3;
            other[i] = sign * b0, other[i + 1] = sign * b1, other[i + 2] = sign * b2, other[i + 3] = sign * b3;
        }
        for (; i < count; ++i) {
            keys[i] = sign * adc_sum(ta, codes + i * m, m, 8);
            other[i] = sign * adc_sum(tb, codes + i * m, m, 8);
        }
    }
    for (; q < nq; ++q) {
        const float* table = tables + q * m * ks;
        float* keys = out + q * count;
        std::size_t i = 0;
        for (; i + 4 <= count; i += 4) {
            const std::uint8_t* c = codes + i * m;
            float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
            for (std::size_t sub = 0; sub < m; ++sub) {
                const float* t = table + sub * ks;
                s0 += t[c[sub]];
                s1 += t[c[m + sub]];
                s2 += t[c[2 * m + sub]];
                s3 += t[c[3 * m + sub]];
            }
            keys[i] = sign * s0, keys[i + 1] = sign * s1, keys[i + 2] = sign * s2, keys[i + 3] = sign * s3;
        }
        for (; i < count; ++i) keys[i] = sign * adc_sum(table, codes + i * m, m, 8);
    }
}

}  // namespace kernels
}  // namespace latefold
