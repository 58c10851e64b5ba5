// Token centroids: training (k-means from sample rows), assignment, query tables, persistence.
#include "latefold/centroids.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "kernels/table.h"
#include "latefold/kmeans.h"

namespace latefold {

TokenCentroids TokenCentroids::train(const float* rows, std::size_t n, std::size_t stride, std::size_t dim,
                                     std::size_t count, std::size_t iterations, std::uint64_t seed,
                                     std::size_t threads) {
    if (count == 0 || count > n || count > max_count)
        fail_argument("token centroids: need 1 <= count <= min(rows, " + std::to_string(max_count) + ")");
    std::vector<float> x(n * dim);
    for (std::size_t i = 0; i < n; ++i) std::copy(rows + i * stride, rows + i * stride + dim, x.data() + i * dim);
    // The callers pass a random sample in random order: its first rows are a random start (k-means++
    // seeding would cost count passes over the sample).
    AlignedVector<float> centres(x.begin(), x.begin() + std::ptrdiff_t(count * dim));
    KMeansOptions options;
    options.iterations = iterations;
    options.seed = seed;
    options.threads = threads;
    kmeans_lloyd(x.data(), n, dim, count, options, centres.data(), nullptr);
    TokenCentroids out;
    out.centroids_ = Buffer<float>(std::move(centres));
    out.count_ = count;
    out.dim_ = dim;
    return out;
}

void TokenCentroids::assign(const float* rows, std::size_t n, std::size_t stride, std::uint16_t* codes,
                            std::size_t threads) const {
    std::vector<std::uint32_t> nearest(n);
    std::vector<float> distance(n);
    assign_nearest(rows, n, stride, dim_, centroids_.data(), count_, nearest.data(), distance.data(), threads);
    for (std::size_t i = 0; i < n; ++i) codes[i] = std::uint16_t(nearest[i]);
}

void TokenCentroids::query_table(const float* packed_query, std::size_t padded, float* table) const {
    kernels::active_kernels().project_rows(centroids_.data(), count_, dim_, dim_, packed_query, padded, table, padded);
}

void TokenCentroids::write(io::Writer& writer, const std::string& prefix) const {
    writer.object(prefix, Json::object().set("count", static_cast<unsigned long long>(count_)));
    writer.array(prefix + "/centroids", centroids_.data(), {count_, dim_});
}

TokenCentroids TokenCentroids::read(const io::Reader& reader, const std::string& prefix, std::size_t dim,
                                    bool borrow) {
    TokenCentroids out;
    try {
        out.count_ = std::size_t(reader.object(prefix).at("count").as_uint());
    } catch (const std::logic_error& error) {
        reader.corrupt("token centroids: " + std::string(error.what()));
    }
    if (out.count_ == 0 || out.count_ > max_count) reader.corrupt("token centroids: count out of range");
    out.dim_ = dim;
    out.centroids_ = reader.array<float>(prefix + "/centroids", {out.count_, dim}, borrow);
    for (std::size_t i = 0; i < out.centroids_.size(); ++i)
        if (!std::isfinite(out.centroids_[i])) reader.corrupt("token centroids: a value is not finite");
    return out;
}

}  // namespace latefold
