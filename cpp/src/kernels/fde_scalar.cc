// The scalar twins of the FDE kernels: project_rows, signed_sums, project_lanes, lane_sums,
// to_lanes and sign_partitions.
// Plain loops, compiled without auto-vectorisation: the oracle the SIMD paths are tested against.
#include <cmath>

#include "table.h"

namespace latefold {
namespace kernels {

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

}  // namespace kernels
}  // namespace latefold
