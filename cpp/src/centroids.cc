// Token centroids: training (k-means from sample rows), assignment, query tables, persistence.
#include "latefold/centroids.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "kernels/layouts.h"
#include "kernels/table.h"
#include "latefold/kmeans.h"
#include "latefold/simd.h"

namespace latefold {

TokenCentroids TokenCentroids::train(const float* rows, std::size_t n, std::size_t stride, std::size_t dim,
                                     std::size_t count, std::size_t levels, std::size_t iterations, std::uint64_t seed,
                                     std::size_t threads) {
    if (levels < 1 || levels > max_levels || count == 0 || levels * count > n || levels * count > max_count)
        fail_argument("token centroids: need 1 <= levels <= " + std::to_string(max_levels) +
                      " and 1 <= levels * count <= min(rows, " + std::to_string(max_count) + ")");
    std::vector<float> x(n * dim);
    for (std::size_t i = 0; i < n; ++i) std::copy(rows + i * stride, rows + i * stride + dim, x.data() + i * dim);
    KMeansOptions options;
    options.iterations = iterations;
    options.seed = seed;
    options.threads = threads;
    TokenCentroids out;
    out.count_ = count;
    out.levels_ = levels;
    out.dim_ = dim;
    AlignedVector<float> centres(levels * count * dim);
    for (std::size_t level = 0; level < levels; ++level) {
        // The sample is random and in random order: its first rows are a random start (k-means++
        // seeding would cost count passes over the sample).
        float* c = centres.data() + level * count * dim;
        std::copy(x.begin(), x.begin() + std::ptrdiff_t(count * dim), c);
        std::vector<std::uint32_t> nearest(n);
        kmeans_lloyd(x.data(), n, dim, count, options, c, nearest.data());
        if (level + 1 < levels)  // the next level learns what this one leaves
            for (std::size_t i = 0; i < n; ++i)
                for (std::size_t k = 0; k < dim; ++k) x[i * dim + k] -= c[nearest[i] * dim + k];
    }
    out.centroids_ = Buffer<float>(std::move(centres));
    out.prepare();
    return out;
}

void TokenCentroids::assign(const float* rows, std::size_t n, std::size_t stride, std::uint16_t* codes,
                            std::size_t threads) const {
    std::vector<std::uint32_t> nearest(n);
    std::vector<float> distance(n), residual;
    const float* x = rows;
    for (std::size_t level = 0; level < levels_; ++level) {
        const float* c = centroids_.data() + level * count_ * dim_;
        assign_nearest(x, n, level ? dim_ : stride, dim_, c, count_, nearest.data(), distance.data(), threads);
        for (std::size_t i = 0; i < n; ++i) codes[i * levels_ + level] = std::uint16_t(level * count_ + nearest[i]);
        if (level + 1 == levels_) break;
        if (level == 0) residual.assign(n * dim_, 0.0f);
        for (std::size_t i = 0; i < n; ++i)  // what the next level approximates
            for (std::size_t k = 0; k < dim_; ++k)
                residual[i * dim_ + k] = (level ? residual[i * dim_ + k] : rows[i * stride + k]) - c[nearest[i] * dim_ + k];
        x = residual.data();
    }
}

namespace {

// Rounded to bfloat16, the values past its largest kept finite (its largest).
std::uint16_t saturated_bfloat16(float value) {
    constexpr float most = 3.38953139e38f;
    return float_to_bfloat16(std::clamp(value, -most, most));
}

}  // namespace

void TokenCentroids::prepare() {
    rounded_.resize(centroids_.size());
    for (std::size_t i = 0; i < centroids_.size(); ++i) rounded_[i] = saturated_bfloat16(centroids_[i]);
    for (std::size_t level = 0; level < levels_; ++level) {
        largest_norm_[level] = 0.0;
        for (std::size_t c = level * count_; c < (level + 1) * count_; ++c) {
            double norm = 0.0;
            for (std::size_t k = 0; k < dim_; ++k) norm += double(centroids_[c * dim_ + k]) * centroids_[c * dim_ + k];
            largest_norm_[level] = std::max(largest_norm_[level], std::sqrt(norm));
        }
    }
}

void TokenCentroids::query_table(const float* packed_query, std::size_t padded, float* table) const {
    const kernels::KernelTable& kern = kernels::active_kernels();
    // A path with a bfloat16 projection of its own (AMX, AVX512-BF16) computes the table from
    // bfloat16 roundings; the others keep float32 (their project_bf16 is the scalar twin).
    if (kern.project_bf16 == kernels::kernels_for(Isa::scalar).project_bf16) {
        kern.project_rows(centroids_.data(), rows(), dim_, dim_, packed_query, padded, table, padded);
        return;
    }
    // The query from its packed columns (group of 32 or 16 columns: element [k][j] at
    // group + k * width + j) to bfloat16 lanes.
    thread_local AlignedVector<std::uint16_t> lanes;
    lanes.resize(kernels::lane_layout_size(padded, dim_, 2));
    kernels::pack_lanes<std::uint16_t>(
        padded, dim_,
        [&](std::size_t t, std::size_t k) {
            const std::size_t start = t / kernels::query_group_rows * kernels::query_group_rows;
            const std::size_t width = start + kernels::query_group_rows <= padded ? kernels::query_group_rows
                                                                                  : kernels::query_pad_rows;
            return saturated_bfloat16(packed_query[start * dim_ + k * width + (t - start)]);
        },
        lanes.data());
    kern.project_bf16(rounded_.data(), rows(), dim_, dim_, lanes.data(), padded, table, padded);
}

float TokenCentroids::quantize_table(const float* table, std::size_t padded, double query_norm,
                                     std::int16_t* out) const {
    // Each level's entries are at most |q| |c| in magnitude, and a little more as computed (the
    // bfloat16 table rounds both: 2^-8 each); values past that bound are clamped to it.
    double bound[max_levels] = {}, total = 0.0;
    for (std::size_t level = 0; level < levels_; ++level) total += bound[level] = 1.01 * query_norm * largest_norm_[level];
    const double scale = total > 1e-30 ? 32766.0 / total : 1.0;
    for (std::size_t level = 0; level < levels_; ++level) {
        const float s = float(scale), limit = float(std::floor(bound[level] * scale));
        const std::size_t first = level * count_ * padded, last = first + count_ * padded;
        for (std::size_t i = first; i < last; ++i) {
            // To nearest even without a branch or a library call (so that the loop vectorizes):
            // 1.5 * 2^23 added leaves no bits below the units for |v| <= 2^22.
            constexpr float shift = 12582912.0f;
            const float v = std::min(limit, std::max(-limit, table[i] * s));
            out[i] = std::int16_t((v + shift) - shift);
        }
    }
    return float(scale);
}

void TokenCentroids::write(io::Writer& writer, const std::string& prefix) const {
    writer.object(prefix, Json::object()
                              .set("count", static_cast<unsigned long long>(count_))
                              .set("levels", static_cast<unsigned long long>(levels_))
                              .set("trained_tokens", static_cast<unsigned long long>(trained_tokens_)));
    writer.array(prefix + "/centroids", centroids_.data(), {levels_ * count_, dim_});
}

TokenCentroids TokenCentroids::read(const io::Reader& reader, const std::string& prefix, std::size_t dim,
                                    bool borrow) {
    TokenCentroids out;
    try {
        out.count_ = std::size_t(reader.object(prefix).at("count").as_uint());
        out.levels_ = std::size_t(reader.object(prefix).at("levels").as_uint());
        if (const Json* trained = reader.object(prefix).find("trained_tokens"))
            out.trained_tokens_ = std::size_t(trained->as_uint());
    } catch (const std::logic_error& error) {
        reader.corrupt("token centroids: " + std::string(error.what()));
    }
    if (out.levels_ < 1 || out.levels_ > max_levels || out.count_ == 0 || out.count_ * out.levels_ > max_count)
        reader.corrupt("token centroids: count out of range");
    out.dim_ = dim;
    out.centroids_ = reader.array<float>(prefix + "/centroids", {out.rows(), dim}, borrow);
    for (std::size_t i = 0; i < out.centroids_.size(); ++i)
        if (!std::isfinite(out.centroids_[i])) reader.corrupt("token centroids: a value is not finite");
    out.prepare();
    return out;
}

}  // namespace latefold
