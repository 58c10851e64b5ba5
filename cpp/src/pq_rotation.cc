// The rotations of product quantization, trained on the quantizer's seeded training sample.
//
// random: the Q factor of a QR decomposition of a d x d matrix of standard normals (stream
//   rotation_stream of latefold-rng-v1), its columns multiplied by the signs of R's diagonal,
//   which makes Q Haar-distributed (uniform over the orthogonal group; Mezzadri, "How to generate
//   random matrices from the classical compact groups", Notices of the AMS 54(5), 2007).
// opq: the non-parametric Optimized Product Quantization of Ge, He, Ke, Sun (CVPR 2013): from the
//   random rotation, alternately train the codebooks on the rotated sample X R (4 Lloyd
//   iterations) and replace R by the orthogonal matrix minimising ||X R - Y||_F, Y the sample's
//   reconstruction in the rotated space: the polar factor of X^T Y (orthogonal Procrustes).
//
// Training cost, one thread (bench/bench_pq_rotation_cost.py, 4-bit codes with m = dim / 4 on
// the default 4,096-row sample, 8 alternations, then 10 Lloyd iterations): opq 0.33 / 3.0 / 16.1 s
// at dim 128 / 512 / 1024, the numpy version it replaces 0.36 / 2.9 / 12.6 s; random 0.05 / 0.24 /
// 0.77 s (numpy 0.05 / 0.29 / 0.93 s).
#include <algorithm>
#include <vector>

#include "kernels/table.h"
#include "latefold/kmeans.h"
#include "latefold/pq.h"
#include "latefold/random.h"
#include "latefold/thread_pool.h"
#include "linalg.h"

namespace latefold {
namespace {

constexpr std::uint64_t rotation_stream = std::uint64_t(8) << 32;

std::vector<float> random_rotation(std::size_t dim, std::uint64_t seed) {
    const std::vector<float> normals = random::normals(random::stream_key(seed, rotation_stream), dim * dim);
    std::vector<double> gaussian(normals.begin(), normals.end()), q(dim * dim), r_diagonal(dim);
    linalg::householder_qr(gaussian.data(), dim, q.data(), r_diagonal.data());
    std::vector<float> rotation(dim * dim);
    for (std::size_t i = 0; i < dim; ++i)
        for (std::size_t j = 0; j < dim; ++j) rotation[i * dim + j] = float(r_diagonal[j] < 0.0 ? -q[i * dim + j] : q[i * dim + j]);
    return rotation;
}

// x^T y (d x d, float64) for `count` rows of x and y (count x d): per block of 256 rows a float32
// product on the active SIMD path (relative error about 1e-6, far below what moves the
// Procrustes solution, at the kernels' speed), the blocks added in float64 in order; threads
// take bands of output rows, so the sums do not depend on their number.
std::vector<double> cross_product(const float* x, const float* y, std::size_t count, std::size_t d,
                                  std::size_t threads) {
    constexpr std::size_t block = 256, band = 32;
    const std::size_t blocks = (count + block - 1) / block, width = (d + 15) / 16 * 16;
    const kernels::KernelTable& kern = kernels::active_kernels();
    std::vector<float> packed(blocks * block * width);  // y's blocks, packed as project_rows reads them
    parallel_for(blocks, threads, [&](std::size_t b, std::size_t) {
        const float* rows = y + b * block * d;
        kernels::pack_columns(d, std::min(block, count - b * block),
                              [&](std::size_t c, std::size_t k) { return rows[k * d + c]; }, packed.data() + b * block * width);
    });
    std::vector<double> out(d * d, 0.0);
    parallel_for((d + band - 1) / band, threads, [&](std::size_t task, std::size_t) {
        const std::size_t first = task * band, bands = std::min(band, d - first);
        std::vector<float> columns(bands * block), part(bands * width);
        for (std::size_t b = 0; b < blocks; ++b) {
            const std::size_t rows = std::min(block, count - b * block);
            for (std::size_t i = 0; i < bands; ++i)
                for (std::size_t k = 0; k < rows; ++k) columns[i * rows + k] = x[(b * block + k) * d + first + i];
            kern.project_rows(columns.data(), bands, rows, rows, packed.data() + b * block * width, width, part.data(), width);
            for (std::size_t i = 0; i < bands; ++i)
                for (std::size_t c = 0; c < d; ++c) out[(first + i) * d + c] += double(part[i * width + c]);
        }
    });
    return out;
}

}  // namespace

void ProductQuantizer::train_rotation(const float* sample, std::size_t count, std::uint64_t seed,
                                      std::size_t opq_iterations, std::size_t threads) {
    install_rotation(random_rotation(dim_, seed).data());
    if (rotation_kind_ != PqRotation::opq) return;
    constexpr std::size_t opq_lloyd_iterations = 4;
    std::vector<float> turned, rebuilt(count * dim_), distance(count), rotation(dim_ * dim_);
    std::vector<std::uint32_t> nearest(count);
    for (std::size_t it = 0; it < opq_iterations; ++it) {
        const float* x = rotated(sample, count, false, turned, threads);
        train_subspaces(x, nullptr, count, opq_lloyd_iterations, seed, threads);
        for (std::size_t s = 0; s < m_; ++s) {
            const float* centres = centroids_.data() + ksub() * offset(s);
            assign_nearest(x + offset(s), count, dim_, width(s), centres, ksub(), nearest.data(), distance.data(), threads);
            for (std::size_t i = 0; i < count; ++i)
                std::copy(centres + nearest[i] * width(s), centres + (nearest[i] + 1) * width(s), rebuilt.data() + i * dim_ + offset(s));
        }
        const std::vector<double> polar =
            linalg::orthogonal_polar(cross_product(sample, rebuilt.data(), count, dim_, threads).data(), dim_, threads);
        std::copy(polar.begin(), polar.end(), rotation.begin());
        install_rotation(rotation.data());
    }
}

}  // namespace latefold
