// The scalar twins of the tile kernels: plain loops, compiled without auto-vectorisation, the oracle for every
// SIMD path. Same packed layout, same per-token order of additions (k ascending).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels.h"

namespace latefold {
namespace kernels {

float maxsim_packed_scalar(const float* packed, std::size_t padded, std::size_t dim,
                           const float* doc, std::size_t rows, std::size_t row_stride) {
    float total = 0.0f;
    for (std::size_t start = 0; start < padded;) {
        const std::size_t width = start + query_group_rows <= padded ? query_group_rows
                                                                     : query_pad_rows;
        const float* group = packed + start * dim;
        for (std::size_t j = 0; j < width; ++j) {
            float best = -INFINITY;
            for (std::size_t r = 0; r < rows; ++r) {
                const float* x = doc + r * row_stride;
                float dot = 0.0f;
                for (std::size_t k = 0; k < dim; ++k) dot += group[k * width + j] * x[k];
                best = std::fmax(best, dot);
            }
            total += best;
        }
        start += width;
    }
    return total;
}

void project_rows_scalar(const float* rows, std::size_t count, std::size_t row_stride,
                         std::size_t depth, const float* packed, std::size_t width, float* out,
                         std::size_t out_stride) {
    for (std::size_t start = 0; start < width;) {
        const std::size_t group = start + query_group_rows <= width ? query_group_rows : query_pad_rows;
        const float* m = packed + start * depth;
        for (std::size_t t = 0; t < count; ++t)
            for (std::size_t c = 0; c < group; ++c) {
                float dot = 0.0f;
                for (std::size_t k = 0; k < depth; ++k) dot += rows[t * row_stride + k] * m[k * group + c];
                out[t * out_stride + start + c] = dot;
            }
        start += group;
    }
}

void signed_sums_scalar(const float* x, std::size_t columns, const std::uint32_t* index,
                        const float* sign, const std::uint32_t* start, std::size_t outputs,
                        float* out) {
    for (std::size_t j = 0; j < outputs; ++j)
        for (std::size_t t = 0; t < columns; ++t) {
            float acc = 0.0f;
            for (std::uint32_t m = start[j]; m < start[j + 1]; ++m)
                acc += sign[m] * x[std::size_t(index[m]) * columns + t];
            out[j * columns + t] = acc;
        }
}

void project_lanes_scalar(const float* x, std::size_t step, std::size_t depth, const float* m,
                          std::size_t columns, float* out) {
    for (std::size_t c = 0; c < columns; ++c)
        for (std::size_t t = 0; t < step; ++t) {
            float acc = 0.0f;
            for (std::size_t i = 0; i < depth; ++i) acc += m[c * depth + i] * x[i * step + t];
            out[c * step + t] = acc;
        }
}

void lane_sums_scalar(const float* v, std::size_t step, std::size_t width, std::size_t reps,
                      std::size_t count, const std::uint32_t* part, std::size_t part_stride, float* out,
                      std::size_t rep_stride, std::size_t out_stride) {
    for (std::size_t q = 0; q < reps; ++q)
        for (std::size_t t = 0; t < count; ++t)
            for (std::size_t i = 0; i < width; ++i)
                out[q * rep_stride + part[q * part_stride + t] * out_stride + i] += v[(q * width + i) * step + t];
}

void to_lanes_scalar(const float* rows, std::size_t count, std::size_t stride, std::size_t dim,
                     float* out, std::size_t step, float* squares) {
    // In blocks of 16 tokens: each written run is one cache line, and the 16 rows read stay in
    // L1 (a plain strided loop thrashes a few L1 sets).
    for (std::size_t t0 = 0; t0 < step; t0 += 16)
        for (std::size_t i = 0; i < dim; ++i)
            for (std::size_t t = t0; t < t0 + 16; ++t) out[i * step + t] = t < count ? rows[t * stride + i] : 0.0f;
    for (std::size_t t = 0; t < step; ++t) {
        float sum = 0.0f;
        if (t < count)
            for (std::size_t i = 0; i < dim; ++i) sum += rows[t * stride + i] * rows[t * stride + i];
        squares[t] = sum;
    }
}

void sign_partitions_scalar(const float* sketch, std::size_t lanes, std::size_t reps, std::size_t k,
                            const float* norms, const float* bounds, std::uint32_t* part,
                            std::uint32_t* uncertain) {
    for (std::size_t t = 0; t < lanes; ++t) {
        uncertain[t] = 0;
        for (std::size_t r = 0; r < reps; ++r) {
            std::uint32_t idx = 0;  // the reference's loop
            for (std::size_t j = 0; j < k; ++j) {
                const float value = sketch[(r * k + j) * lanes + t];
                if (!(std::fabs(value) > norms[t] * bounds[r * k + j])) uncertain[t] = 1;
                idx = (idx << 1) + (std::uint32_t(value > 0.0f) ^ (idx & 1u));
            }
            part[r * lanes + t] = idx;
        }
    }
}

void nearest_rows_scalar(const float* rows, std::size_t count, std::size_t row_stride,
                         std::size_t depth, const float* packed, const float* bias,
                         std::size_t width, std::uint32_t* index, float* value) {
    for (std::size_t t = 0; t < count; ++t) {
        float best = INFINITY;
        std::uint32_t best_column = 0;
        for (std::size_t start = 0; start < width;) {
            const std::size_t group = start + query_group_rows <= width ? query_group_rows : query_pad_rows;
            const float* m = packed + start * depth;
            for (std::size_t c = 0; c < group; ++c) {
                float dot = 0.0f;
                for (std::size_t k = 0; k < depth; ++k) dot += rows[t * row_stride + k] * m[k * group + c];
                const float d = bias[start + c] - 2.0f * dot;
                if (d < best) best = d, best_column = std::uint32_t(start + c);
            }
            start += group;
        }
        index[t] = best_column;
        value[t] = best;
    }
}

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

void f16_to_f32_scalar(const half_bits* src, float* dst, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) dst[i] = half_to_float(src[i]);
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

}  // namespace kernels
}  // namespace latefold
