// The FDE kernels (project_rows, signed_sums, project_lanes, sign_partitions) for aarch64 Advanced
// SIMD; this path's lane_sums and to_lanes are the scalar twins.
#include "lane_templates.h"
#include "tile_templates.h"
#include "vector_neon.h"

namespace latefold {
namespace kernels {

void project_rows_neon(const float* rows, std::size_t count, std::size_t row_stride,
                        std::size_t depth, const float* packed, std::size_t width, float* out,
                        std::size_t out_stride) {
    project_rows<Neon, 3, 6>(rows, count, row_stride, depth, packed, width, out, out_stride);
}

void signed_sums_neon(const float* x, std::size_t columns, const std::uint32_t* index,
                       const float* sign, const std::uint32_t* start, std::size_t outputs,
                       float* out) {
    signed_sums<Neon>(x, columns, index, sign, start, outputs, out);
}

void project_lanes_neon(const float* x, std::size_t step, std::size_t depth, const float* m,
                   std::size_t columns, float* out) {
    project_lanes<Neon, 4, 4>(x, step, depth, m, columns, out);
}

void sign_partitions_neon(const float* sketch, std::size_t lanes, std::size_t reps, std::size_t k,
                     const float* norms, const float* bounds, std::uint32_t* part,
                     std::uint32_t* uncertain) {
    sign_partitions<Neon>(sketch, lanes, reps, k, norms, bounds, part, uncertain);
}

}  // namespace kernels
}  // namespace latefold
