// Token pooling and query ball carving (pooling.h).
#include "latefold/pooling.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace latefold {

namespace {

double dot(const double* a, const double* b, std::size_t dim) {
    double s = 0.0;
    for (std::size_t k = 0; k < dim; ++k) s += a[k] * b[k];
    return s;
}

}  // namespace

void pool_tokens(const float* rows, std::size_t n, std::size_t dim, std::size_t target, float* out) {
    // Clusters as sums of their tokens (a mean's direction is its sum's); similarity is the
    // cosine of the sums. Each cluster remembers its most similar other cluster, recomputed only
    // for the clusters a merge touched, so a document costs O(n^2) similarity updates.
    std::vector<double> sum(n * dim);
    std::vector<std::size_t> size(n, 1), first(n);
    std::vector<double> norm(n);
    std::vector<char> alive(n, 1);
    for (std::size_t i = 0; i < n; ++i) {
        for (std::size_t k = 0; k < dim; ++k) sum[i * dim + k] = rows[i * dim + k];
        norm[i] = std::sqrt(dot(&sum[i * dim], &sum[i * dim], dim));
        first[i] = i;
    }
    auto cosine = [&](std::size_t a, std::size_t b) {
        const double d = norm[a] * norm[b];
        return d > 0 ? dot(&sum[a * dim], &sum[b * dim], dim) / d : 0.0;
    };
    std::vector<double> sim(n * n, -INFINITY);
    for (std::size_t a = 0; a < n; ++a)
        for (std::size_t b = a + 1; b < n; ++b) sim[a * n + b] = sim[b * n + a] = cosine(a, b);
    std::vector<std::size_t> best(n, 0);
    auto refresh = [&](std::size_t a) {
        std::size_t arg = a;
        double value = -INFINITY;
        for (std::size_t b = 0; b < n; ++b)
            if (b != a && alive[b] && (arg == a || sim[a * n + b] > value)) arg = b, value = sim[a * n + b];
        best[a] = arg;
    };
    for (std::size_t a = 0; a < n; ++a) refresh(a);
    for (std::size_t clusters = n; clusters > target; --clusters) {
        std::size_t a = n, b = n;
        for (std::size_t i = 0; i < n; ++i) {
            if (!alive[i] || best[i] == i) continue;
            const std::size_t j = best[i];
            if (a == n || sim[i * n + j] > sim[a * n + b]) a = std::min(i, j), b = std::max(i, j);
        }
        // Merge b into a.
        for (std::size_t k = 0; k < dim; ++k) sum[a * dim + k] += sum[b * dim + k];
        norm[a] = std::sqrt(dot(&sum[a * dim], &sum[a * dim], dim));
        size[a] += size[b];
        first[a] = std::min(first[a], first[b]);
        alive[b] = 0;
        for (std::size_t c = 0; c < n; ++c)
            if (alive[c] && c != a) sim[a * n + c] = sim[c * n + a] = cosine(a, c);
        for (std::size_t c = 0; c < n; ++c)
            if (alive[c] && (c == a || best[c] == a || best[c] == b || sim[c * n + a] > sim[c * n + best[c]])) refresh(c);
    }
    std::vector<std::size_t> order;
    for (std::size_t i = 0; i < n; ++i)
        if (alive[i]) order.push_back(i);
    std::sort(order.begin(), order.end(), [&](std::size_t x, std::size_t y) { return first[x] < first[y]; });
    for (std::size_t c = 0; c < order.size(); ++c)
        for (std::size_t k = 0; k < dim; ++k)
            out[c * dim + k] = float(sum[order[c] * dim + k] / double(size[order[c]]));
}

std::size_t carve_query(const float* rows, std::size_t n, std::size_t dim, float tau, float* out) {
    std::vector<std::size_t> centre;  // the first token of each ball
    for (std::size_t i = 0; i < n; ++i) {
        const float* q = rows + i * dim;
        std::size_t ball = centre.size();
        for (std::size_t b = 0; b < centre.size() && ball == centre.size(); ++b) {
            float s = 0.0f;
            for (std::size_t k = 0; k < dim; ++k) s += q[k] * rows[centre[b] * dim + k];
            if (s >= tau) ball = b;
        }
        if (ball == centre.size()) {
            centre.push_back(i);
            std::copy(q, q + dim, out + ball * dim);
        } else {
            for (std::size_t k = 0; k < dim; ++k) out[ball * dim + k] += q[k];
        }
    }
    return centre.size();
}

}  // namespace latefold
