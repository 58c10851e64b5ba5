#include "latefold/kmeans.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "kernels/table.h"
#include "latefold/common.h"
#include "latefold/interrupt.h"
#include "latefold/random.h"
#include "latefold/thread_pool.h"

namespace latefold {
namespace {

constexpr std::size_t points_per_task = 1024;
// Interrupt checks come after at most about this many multiply-adds (a few ms), whatever n, d
// and k: a Ctrl-C stops a training part-way through a pass, and the helper threads of a
// stopping call return from their tasks as soon.
constexpr std::size_t work_per_check = std::size_t(1) << 22;

std::size_t points_per_check(std::size_t work_per_point) {
    return std::max<std::size_t>(1, work_per_check / std::max<std::size_t>(1, work_per_point));
}

// f(i) for i in [0, n), with an interrupt check before each run of `chunk` points.
template <class F>
void checked_loop(std::size_t n, std::size_t chunk, F f) {
    for (std::size_t first = 0; first < n; first += chunk) {
        check_interrupt();
        const std::size_t last = std::min(n, first + chunk);
        for (std::size_t i = first; i < last; ++i) f(i);
    }
}

double squared_distance(const float* a, const float* b, std::size_t d) {
    double sum = 0.0;
    for (std::size_t i = 0; i < d; ++i) {
        const double diff = double(a[i]) - double(b[i]);
        sum += diff * diff;
    }
    return sum;
}

}  // namespace

void kmeans_plus_plus(const float* x, std::size_t n, std::size_t d, std::size_t k,
                      std::uint64_t seed, float* centroids) {
    if (k == 0 || k > n) fail_argument("k-means++ needs 1 <= k <= n");
    const std::uint64_t key = random::stream_key(seed, std::uint64_t(5) << 32);
    std::size_t chosen = std::size_t(random::below(random::word(key, 0), std::uint32_t(n)));
    const std::size_t check_every = points_per_check(d);
    std::vector<double> nearest(n);
    std::copy(x + chosen * d, x + chosen * d + d, centroids);
    checked_loop(n, check_every, [&](std::size_t i) { nearest[i] = squared_distance(x + i * d, centroids, d); });
    for (std::size_t c = 1; c < k; ++c) {
        double total = 0.0;
        for (double v : nearest) total += v;
        if (total > 0.0) {
            const double target = random::unit(random::word(key, c)) * total;
            double running = 0.0;
            chosen = n - 1;
            for (std::size_t i = 0; i < n; ++i) {
                running += nearest[i];
                if (running > target && nearest[i] > 0.0) {
                    chosen = i;
                    break;
                }
            }
        } else {  // every point already coincides with a centre: any point will do
            chosen = std::size_t(random::below(random::word(key, c), std::uint32_t(n)));
        }
        float* centre = centroids + c * d;
        std::copy(x + chosen * d, x + chosen * d + d, centre);
        checked_loop(n, check_every, [&](std::size_t i) {
            nearest[i] = std::min(nearest[i], squared_distance(x + i * d, centre, d));
        });
    }
}

void assign_nearest(const float* x, std::size_t n, std::size_t stride, std::size_t d,
                    const float* centroids, std::size_t k, std::uint32_t* assignment,
                    float* distance, std::size_t threads) {
    const std::size_t width = kernels::padded_query_rows(k);
    AlignedVector<float> packed(width * d), bias(width, INFINITY);
    kernels::pack_columns(k, d, [&](std::size_t c, std::size_t i) { return centroids[c * d + i]; },
                          packed.data());
    for (std::size_t c = 0; c < k; ++c) {
        float norm = 0.0f;
        for (std::size_t i = 0; i < d; ++i) norm += centroids[c * d + i] * centroids[c * d + i];
        bias[c] = norm;
    }
    const kernels::KernelTable& kern = kernels::active_kernels();
    // Each point costs k * d: fewer points per task for many or wide centres (parallel_for
    // checks for interrupts between tasks). Each point's centre does not depend on the split.
    const std::size_t per_task = std::min(points_per_task, points_per_check(k * d));
    const std::size_t tasks = (n + per_task - 1) / per_task;
    parallel_for(tasks, threads, [&](std::size_t task, std::size_t) {
        const std::size_t first = task * per_task;
        const std::size_t count = std::min(n, first + per_task) - first;
        kern.nearest_rows(x + first * stride, count, stride, d, packed.data(), bias.data(), width,
                          assignment + first, distance + first);
        for (std::size_t i = first; i < first + count; ++i) {
            float norm = 0.0f;
            for (std::size_t j = 0; j < d; ++j) norm += x[i * stride + j] * x[i * stride + j];
            distance[i] = std::max(0.0f, distance[i] + norm);
        }
    });
}

double kmeans_lloyd(const float* x, std::size_t n, std::size_t d, std::size_t k,
                    const KMeansOptions& options, float* centroids, std::uint32_t* assignment) {
    if (k == 0 || k > n) fail_argument("k-means needs 1 <= k <= n");
    std::vector<std::uint32_t> assign(n);
    std::vector<float> distance(n);
    const std::size_t tasks = (n + points_per_task - 1) / points_per_task;
    // Per task sums, added in task order: the result does not depend on the thread count.
    std::vector<double> sums(tasks * k * d);
    std::vector<std::size_t> counts(tasks * k);
    std::vector<double> centre(k * d);
    std::vector<std::size_t> size(k);
    const std::uint64_t key = random::stream_key(options.seed, std::uint64_t(6) << 32);
    std::uint64_t draws = 0;
    double objective = 0.0;
    const std::size_t check_every = points_per_check(d);
    for (std::size_t it = 0;; ++it) {
        check_interrupt();
        assign_nearest(x, n, d, d, centroids, k, assign.data(), distance.data(), options.threads);
        if (it == options.iterations) {
            // The objective exactly (float64), not from the expanded float32 distances.
            objective = 0.0;
            checked_loop(n, check_every, [&](std::size_t i) {
                objective += squared_distance(x + i * d, centroids + assign[i] * d, d);
            });
            break;
        }
        parallel_for(tasks, options.threads, [&](std::size_t task, std::size_t) {
            double* s = sums.data() + task * k * d;
            std::size_t* c = counts.data() + task * k;
            std::fill(s, s + k * d, 0.0);
            std::fill(c, c + k, std::size_t(0));
            const std::size_t last = std::min(n, (task + 1) * points_per_task);
            for (std::size_t i = task * points_per_task; i < last; ++i) {
                ++c[assign[i]];
                for (std::size_t j = 0; j < d; ++j) s[assign[i] * d + j] += x[i * d + j];
            }
        });
        std::fill(centre.begin(), centre.end(), 0.0);
        std::fill(size.begin(), size.end(), std::size_t(0));
        for (std::size_t task = 0; task < tasks; ++task)
            for (std::size_t c = 0; c < k; ++c) {
                size[c] += counts[task * k + c];
                for (std::size_t j = 0; j < d; ++j) centre[c * d + j] += sums[(task * k + c) * d + j];
            }
        for (std::size_t c = 0; c < k; ++c)
            if (size[c])
                for (std::size_t j = 0; j < d; ++j) centroids[c * d + j] = float(centre[c * d + j] / double(size[c]));
        // Empty clusters: split the largest one (two centres nudged apart, half its points each).
        for (std::size_t c = 0; c < k; ++c) {
            if (size[c]) continue;
            const std::size_t largest = std::size_t(std::max_element(size.begin(), size.end()) - size.begin());
            if (size[largest] < 2) break;
            for (std::size_t j = 0; j < d; ++j) {
                const float v = centroids[largest * d + j];
                const float nudge = (random::unit(random::word(key, draws++)) - 0.5) > 0 ? 1.0f : -1.0f;
                const float delta = std::max(std::fabs(v), 1e-6f) * 1e-4f * nudge;
                centroids[c * d + j] = v + delta;
                centroids[largest * d + j] = v - delta;
            }
            size[c] = size[largest] / 2;
            size[largest] -= size[c];
        }
    }
    if (assignment) std::copy(assign.begin(), assign.end(), assignment);
    return objective;
}

}  // namespace latefold
