// Product quantization: training, encoding, decoding, packing and lookup tables (the search is
// in pq_search.cc, the rotations in pq_rotation.cc, persistence in pq_io.cc).
#include "latefold/pq.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>
#include <cstring>
#include <string>

#include "kernels/table.h"
#include "latefold/kmeans.h"
#include "latefold/random.h"
#include "latefold/thread_pool.h"
#include "pq_tasks.h"

namespace latefold {

ProductQuantizer::ProductQuantizer(std::size_t dim, std::size_t m, std::size_t nbits, Metric metric,
                                   PqRotation rotation_kind)
    : dim_(dim), m_(m), nbits_(nbits), metric_(metric), rotation_kind_(rotation_kind) {
    if (dim == 0) fail_argument("dim must be at least 1");
    if (m == 0 || m > dim)
        fail_argument("m must be in [1, dim] (" + std::to_string(dim) + "), got " + std::to_string(m));
    if (nbits != 4 && nbits != 8) fail_argument("nbits must be 4 or 8, got " + std::to_string(nbits));
    offset_.resize(m + 1);
    for (std::size_t s = 0; s <= m; ++s) offset_[s] = s * (dim / m) + std::min(s, dim % m);
}

void ProductQuantizer::require_trained() const {
    if (!trained()) fail_argument("the quantizer is not trained (call train or set the centroids)");
}

std::uint32_t ProductQuantizer::code(const std::uint8_t* vector_codes, std::size_t s) const noexcept {
    if (nbits_ == 8) return vector_codes[s];
    const std::uint8_t byte = vector_codes[s >> 1];
    return (s & 1) ? std::uint32_t(byte >> 4) : std::uint32_t(byte & 15);
}

void ProductQuantizer::set_centroids(const float* centroids) {
    const std::size_t ks = ksub();
    std::vector<float> values(centroids, centroids + ks * dim_), packed(ks * dim_), norms(m_ * ks);
    for (std::size_t s = 0; s < m_; ++s) {
        const std::size_t w = width(s);
        const float* c = values.data() + ks * offset(s);
        kernels::pack_columns(ks, w, [&](std::size_t col, std::size_t j) { return c[col * w + j]; },
                              packed.data() + ks * offset(s));
        for (std::size_t col = 0; col < ks; ++col) {
            float norm = 0.0f;
            for (std::size_t j = 0; j < w; ++j) norm += c[col * w + j] * c[col * w + j];
            norms[s * ks + col] = norm;
        }
    }
    centroids_ = std::move(values);
    packed_centroids_ = std::move(packed);
    centroid_norms_ = std::move(norms);
}

void ProductQuantizer::set_rotation(const float* rotation) {
    if (!rotation) {
        rotation_.clear(), packed_rotation_.clear(), packed_inverse_.clear();
        centroids_.clear(), packed_centroids_.clear(), centroid_norms_.clear();
        return;
    }
    const std::size_t d = dim_;
    for (std::size_t i = 0; i < d * d; ++i)
        if (!std::isfinite(rotation[i])) fail_argument("rotation: not finite");
    for (std::size_t i = 0; i < d; ++i)
        for (std::size_t j = 0; j <= i; ++j) {
            double dot = 0.0;
            for (std::size_t k = 0; k < d; ++k) dot += double(rotation[i * d + k]) * double(rotation[j * d + k]);
            if (std::fabs(dot - (i == j ? 1.0 : 0.0)) > 1e-3)
                fail_argument("rotation: not orthogonal (rows " + std::to_string(j) + " and " + std::to_string(i) + ")");
        }
    install_rotation(rotation);
}

void ProductQuantizer::install_rotation(const float* rotation) {
    const std::size_t d = dim_;
    // project_rows reads a depth x width matrix packed by columns, width a multiple of 16.
    const std::size_t width = (d + 15) / 16 * 16;
    std::vector<float> packed(width * d), inverse(width * d);
    kernels::pack_columns(width, d, [&](std::size_t c, std::size_t k) { return c < d ? rotation[k * d + c] : 0.0f; },
                          packed.data());
    kernels::pack_columns(width, d, [&](std::size_t c, std::size_t k) { return c < d ? rotation[c * d + k] : 0.0f; },
                          inverse.data());
    rotation_.assign(rotation, rotation + d * d);
    packed_rotation_ = std::move(packed);
    packed_inverse_ = std::move(inverse);
    centroids_.clear(), packed_centroids_.clear(), centroid_norms_.clear();
}

const float* ProductQuantizer::rotated(const float* x, std::size_t n, bool inverse, std::vector<float>& out,
                                       std::size_t threads) const {
    if (rotation_.empty()) return x;
    const std::size_t d = dim_, width = (d + 15) / 16 * 16;
    out.resize(std::max(n * width, std::size_t(1)));
    const float* packed = inverse ? packed_inverse_.data() : packed_rotation_.data();
    const kernels::KernelTable& kern = kernels::active_kernels();
    const std::size_t tasks = (n + vectors_per_task - 1) / vectors_per_task;
    parallel_for(tasks, threads, [&](std::size_t task, std::size_t) {
        const std::size_t first = task * vectors_per_task, count = std::min(n, first + vectors_per_task) - first;
        kern.project_rows(x + first * d, count, d, d, packed, width, out.data() + first * width, width);
    });
    if (width != d)  // rows to stride d, in place (each row moves towards the front)
        for (std::size_t i = 1; i < n; ++i) std::memmove(out.data() + i * d, out.data() + i * width, d * sizeof(float));
    return out.data();
}

void ProductQuantizer::train(const float* x, std::size_t n, std::size_t iterations, std::uint64_t seed,
                             std::size_t max_points, std::size_t threads, std::size_t opq_iterations) {
    if (n < ksub())
        fail_argument("training needs at least ksub = " + std::to_string(ksub()) + " vectors, got " +
                      std::to_string(n));
    // A seeded sample without replacement (partial Fisher-Yates), in increasing row order.
    std::vector<std::size_t> rows(n);
    std::iota(rows.begin(), rows.end(), std::size_t(0));
    const std::size_t used = std::max(ksub(), std::min(n, max_points ? max_points : n));
    if (used < n) {
        const std::uint64_t key = random::stream_key(seed, std::uint64_t(7) << 32);
        for (std::size_t i = 0; i < used; ++i) {
            const std::uint64_t w = random::word(key, i);
            const std::size_t j = std::min(n - 1, i + std::size_t(random::unit(w) * double(n - i)));
            std::swap(rows[i], rows[j]);
        }
        rows.resize(used);
        std::sort(rows.begin(), rows.end());
    }
    // Trained into a copy, swapped in at the end: a failure leaves the quantizer as it was. A
    // rotation set by hand (kind none) is kept; the other kinds are trained here.
    ProductQuantizer next(*this);
    if (rotation_kind_ == PqRotation::none && rotation_.empty()) {
        next.train_subspaces(x, rows.data(), used, iterations, seed, threads);
    } else {
        std::vector<float> sample(used * dim_), turned;
        for (std::size_t i = 0; i < used; ++i) std::copy(x + rows[i] * dim_, x + (rows[i] + 1) * dim_, sample.data() + i * dim_);
        if (rotation_kind_ != PqRotation::none) next.train_rotation(sample.data(), used, seed, opq_iterations, threads);
        next.train_subspaces(next.rotated(sample.data(), used, false, turned, threads), nullptr, used, iterations, seed,
                             threads);
    }
    *this = std::move(next);
}

void ProductQuantizer::train_subspaces(const float* x, const std::size_t* rows, std::size_t count,
                                       std::size_t iterations, std::uint64_t seed, std::size_t threads) {
    std::vector<float> trained(ksub() * dim_);
    parallel_for(m_, threads, [&](std::size_t s, std::size_t) {
        const std::size_t w = width(s), o = offset(s);
        std::vector<float> sub(count * w);
        for (std::size_t i = 0; i < count; ++i) {
            const float* row = x + (rows ? rows[i] : i) * dim_ + o;
            std::copy(row, row + w, sub.data() + i * w);
        }
        float* centres = trained.data() + ksub() * o;
        const std::uint64_t sub_seed = random::mix64(seed + s);
        kmeans_plus_plus(sub.data(), count, w, ksub(), sub_seed, centres);
        KMeansOptions options;
        options.iterations = iterations;
        options.seed = sub_seed;
        options.threads = 1;  // the subspaces already run in parallel
        kmeans_lloyd(sub.data(), count, w, ksub(), options, centres, nullptr);
    });
    set_centroids(trained.data());
}

void ProductQuantizer::encode(const float* x, std::size_t n, std::uint8_t* codes,
                              std::size_t threads) const {
    require_trained();
    const std::size_t tasks = (n + vectors_per_encode - 1) / vectors_per_encode;
    parallel_for(tasks, threads, [&](std::size_t task, std::size_t) {
        const std::size_t first = task * vectors_per_encode;
        const std::size_t count = std::min(n, first + vectors_per_encode) - first;
        std::vector<std::uint32_t> index(count);
        std::vector<float> distance(count), turned;
        const float* rows = rotated(x + first * dim_, count, false, turned, 1);
        std::fill(codes + first * code_size(), codes + (first + count) * code_size(), std::uint8_t(0));
        for (std::size_t s = 0; s < m_; ++s) {
            assign_nearest(rows + offset(s), count, dim_, width(s),
                           centroids_.data() + ksub() * offset(s), ksub(), index.data(),
                           distance.data(), 1);
            for (std::size_t i = 0; i < count; ++i) {
                std::uint8_t* c = codes + (first + i) * code_size();
                if (nbits_ == 8)
                    c[s] = std::uint8_t(index[i]);
                else
                    c[s >> 1] |= std::uint8_t(index[i] << ((s & 1) * 4));
            }
        }
    });
}

void ProductQuantizer::pack(const std::uint8_t* codes, std::size_t n, std::uint8_t* out,
                            std::size_t threads) const {
    if (nbits_ != 4) fail_argument("only 4-bit codes have a fast-scan layout");
    const std::size_t tasks = (n + vectors_per_task - 1) / vectors_per_task;
    parallel_for(tasks, threads, [&](std::size_t task, std::size_t) {
        const std::size_t first = task * vectors_per_task, count = std::min(n, first + vectors_per_task) - first;
        kernels::active_kernels().block_codes(codes + first * code_size(), count, code_size(), fastscan_pairs(),
                                              out + first / 32 * fastscan_pairs() * 32);
    });
}

void ProductQuantizer::decode(const std::uint8_t* codes, std::size_t n, float* x,
                              std::size_t threads) const {
    require_trained();
    const std::size_t tasks = (n + vectors_per_task - 1) / vectors_per_task;
    parallel_for(tasks, threads, [&](std::size_t task, std::size_t) {
        const std::size_t first = task * vectors_per_task, last = std::min(n, first + vectors_per_task);
        for (std::size_t i = first; i < last; ++i)
            for (std::size_t s = 0; s < m_; ++s) {
                const float* c = centroids_.data() + ksub() * offset(s) + code(codes + i * code_size(), s) * width(s);
                std::copy(c, c + width(s), x + i * dim_ + offset(s));
            }
        if (!rotation_.empty()) {  // back from the rotated space
            std::vector<float> turned;
            const float* back = rotated(x + first * dim_, last - first, true, turned, 1);
            std::copy(back, back + (last - first) * dim_, x + first * dim_);
        }
    });
}

void ProductQuantizer::lookup_tables(const float* queries, std::size_t nq, float* lut,
                                     std::size_t threads) const {
    require_trained();
    // Per subspace, one product of all queries with the packed centroids; l2 tables follow
    // from ||q - c||^2 = ||q||^2 - 2 <q, c> + ||c||^2.
    const std::size_t ks = ksub(), stride = m_ * ks;
    const kernels::KernelTable& kern = kernels::active_kernels();
    std::vector<float> turned;
    queries = rotated(queries, nq, false, turned, threads);
    // Blocks of queries, each through every subspace, so that a block's table rows are written
    // in order (subspace by subspace for all queries, the writes were one line per query, m
    // lines apart: fast scan +3-5 % on 2,000 codes, +30 % at m = 1,280). Fewer blocks than
    // threads: the threads share the subspaces.
    constexpr std::size_t query_block = 24;
    const std::size_t blocks = (nq + query_block - 1) / query_block;
    const bool by_subspace = blocks < resolve_threads(threads, m_);
    const std::size_t block = by_subspace ? nq : query_block;
    parallel_for(by_subspace ? m_ : blocks, threads, [&](std::size_t task, std::size_t) {
        const std::size_t q0 = by_subspace ? 0 : task * block, count = std::min(block, nq - q0);
        const std::size_t first = by_subspace ? task : 0, last = by_subspace ? task + 1 : m_;
        for (std::size_t s = first; s < last; ++s) {
            const std::size_t w = width(s), o = offset(s);
            float* out = lut + q0 * stride + s * ks;
            kern.project_rows(queries + q0 * dim_ + o, count, dim_, w, packed_centroids_.data() + ks * o, ks, out, stride);
            if (metric_ == Metric::l2) {
                const float* norms = centroid_norms_.data() + s * ks;
                for (std::size_t q = 0; q < count; ++q) {
                    const float* sub = queries + (q0 + q) * dim_ + o;
                    float qn = 0.0f;
                    for (std::size_t j = 0; j < w; ++j) qn += sub[j] * sub[j];
                    float* row = out + q * stride;
                    for (std::size_t c = 0; c < ks; ++c) row[c] = std::max(0.0f, qn - 2.0f * row[c] + norms[c]);
                }
            }
        }
    });
}

void ProductQuantizer::score_codes(const float* lut, const std::uint8_t* codes,
                                   const std::uint32_t* rows, std::size_t count, float* out) const noexcept {
    kernels::active_kernels().adc_rows(lut, codes, code_size(), rows, count, m_, nbits_, out);
}

}  // namespace latefold
