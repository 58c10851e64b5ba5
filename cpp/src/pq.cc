// Product quantization: training, encoding, lookup tables and the two ADC scans.
#include "latefold/pq.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <cstring>
#include <string>

#include "kernels.h"
#include "latefold/kmeans.h"
#include "latefold/random.h"
#include "latefold/thread_pool.h"
#include "latefold/topk.h"

namespace latefold {
namespace {

constexpr std::size_t vectors_per_task = 4096;  // a multiple of the 32-vector fast-scan block

bool allowed_bit(const std::uint8_t* allowed, std::size_t i) {
    return !allowed || ((allowed[i >> 3] >> (i & 7)) & 1u);
}

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

// The fast-scan layout of `count` vectors of `bytes` code bytes: per block of 32 vectors, byte
// p of vector j at [(block * pairs + p) * 32 + j]; missing vectors and pairs are zero. The
// byte transposition goes 8 x 8 at a time (the bytes are little-endian in the words).
void block_codes(const std::uint8_t* codes, std::size_t count, std::size_t bytes,
                 std::size_t pairs, std::uint8_t* out) {
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

// Ranking key: higher is better for both metrics (distances are negated).
float key_of(float score, Metric metric) { return metric == Metric::l2 ? -score : score; }

}  // namespace

ProductQuantizer::ProductQuantizer(std::size_t dim, std::size_t m, std::size_t nbits, Metric metric)
    : dim_(dim), m_(m), nbits_(nbits), metric_(metric) {
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

void ProductQuantizer::train(const float* x, std::size_t n, std::size_t iterations,
                             std::uint64_t seed, std::size_t max_points, std::size_t threads) {
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
    std::vector<float> trained(ksub() * dim_);
    parallel_for(m_, threads, [&](std::size_t s, std::size_t) {
        const std::size_t w = width(s), o = offset(s);
        std::vector<float> sub(used * w);
        for (std::size_t i = 0; i < used; ++i)
            std::copy(x + rows[i] * dim_ + o, x + rows[i] * dim_ + o + w, sub.data() + i * w);
        float* centres = trained.data() + ksub() * o;
        const std::uint64_t sub_seed = random::mix64(seed + s);
        kmeans_plus_plus(sub.data(), used, w, ksub(), sub_seed, centres);
        KMeansOptions options;
        options.iterations = iterations;
        options.seed = sub_seed;
        options.threads = 1;  // the subspaces already run in parallel
        kmeans_lloyd(sub.data(), used, w, ksub(), options, centres, nullptr);
    });
    set_centroids(trained.data());
}

void ProductQuantizer::encode(const float* x, std::size_t n, std::uint8_t* codes,
                              std::size_t threads) const {
    require_trained();
    const std::size_t tasks = (n + vectors_per_task - 1) / vectors_per_task;
    parallel_for(tasks, threads, [&](std::size_t task, std::size_t) {
        const std::size_t first = task * vectors_per_task;
        const std::size_t count = std::min(n, first + vectors_per_task) - first;
        std::vector<std::uint32_t> index(count);
        std::vector<float> distance(count);
        std::fill(codes + first * code_size(), codes + (first + count) * code_size(), std::uint8_t(0));
        for (std::size_t s = 0; s < m_; ++s) {
            assign_nearest(x + first * dim_ + offset(s), count, dim_, width(s),
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

void ProductQuantizer::decode(const std::uint8_t* codes, std::size_t n, float* x,
                              std::size_t threads) const {
    require_trained();
    const std::size_t tasks = (n + vectors_per_task - 1) / vectors_per_task;
    parallel_for(tasks, threads, [&](std::size_t task, std::size_t) {
        const std::size_t last = std::min(n, (task + 1) * vectors_per_task);
        for (std::size_t i = task * vectors_per_task; i < last; ++i)
            for (std::size_t s = 0; s < m_; ++s) {
                const float* c = centroids_.data() + ksub() * offset(s) + code(codes + i * code_size(), s) * width(s);
                std::copy(c, c + width(s), x + i * dim_ + offset(s));
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
    parallel_for(m_, threads, [&](std::size_t s, std::size_t) {
        const std::size_t w = width(s), o = offset(s);
        float* out = lut + s * ks;
        kern.project_rows(queries + o, nq, dim_, w, packed_centroids_.data() + ks * o, ks, out, stride);
        if (metric_ == Metric::l2) {
            const float* norms = centroid_norms_.data() + s * ks;
            for (std::size_t q = 0; q < nq; ++q) {
                const float* sub = queries + q * dim_ + o;
                float qn = 0.0f;
                for (std::size_t j = 0; j < w; ++j) qn += sub[j] * sub[j];
                float* row = out + q * stride;
                for (std::size_t c = 0; c < ks; ++c) row[c] = std::max(0.0f, qn - 2.0f * row[c] + norms[c]);
            }
        }
    });
}

void ProductQuantizer::search(const std::uint8_t* codes, std::size_t n, const float* queries,
                              std::size_t nq, const PqSearchOptions& options, float* scores,
                              std::int64_t* ids) const {
    require_trained();
    if (options.k == 0) fail_argument("k must be at least 1");
    const std::size_t k = options.k, ks = ksub();
    std::vector<float> lut(nq * m_ * ks);
    lookup_tables(queries, nq, lut.data(), options.threads);
    auto exact = [&](std::size_t q, std::size_t i) {
        const float* table = lut.data() + q * m_ * ks;
        const std::uint8_t* c = codes + i * code_size();
        float sum = 0.0f;
        for (std::size_t s = 0; s < m_; ++s) sum += table[s * ks + code(c, s)];
        return sum;
    };

    const bool fast = nbits_ == 4;
    const std::size_t keep = fast && options.rescore ? std::max(k, options.rescore * k) : k;
    // 4-bit: per query, uint8 tables: entry = round((lut - low_s) / delta), so that
    // estimate = sum_s low_s + delta * (sum of entries), off by at most m * delta / 2.
    const std::size_t pairs = ((m_ + 1) / 2 + 1) / 2 * 2;
    std::vector<std::uint8_t> small(fast ? nq * pairs * 32 : 0, 0);
    std::vector<float> base(nq, 0.0f), delta(nq, 1.0f);
    if (fast) {
        const double qmax = std::min(255.0, std::floor(65535.0 / double(2 * pairs)));
        for (std::size_t q = 0; q < nq; ++q) {
            const float* table = lut.data() + q * m_ * ks;
            float range = 0.0f;
            for (std::size_t s = 0; s < m_; ++s) {
                const auto [lo, hi] = std::minmax_element(table + s * ks, table + (s + 1) * ks);
                range = std::max(range, *hi - *lo);
                base[q] += *lo;
            }
            delta[q] = range > 0.0f ? float(range / qmax) : 1.0f;
            for (std::size_t s = 0; s < m_; ++s) {
                const float lo = *std::min_element(table + s * ks, table + (s + 1) * ks);
                for (std::size_t c = 0; c < 16; ++c)
                    small[q * pairs * 32 + s * 16 + c] =
                        std::uint8_t(std::min(qmax, double((table[s * ks + c] - lo) / delta[q])) + 0.5);
            }
        }
    }

    const kernels::KernelTable& kern = kernels::active_kernels();
    // Tasks: chunks of vectors x blocks of queries, enough of them to keep every thread busy
    // on small collections too.
    const std::size_t chunks = (n + vectors_per_task - 1) / vectors_per_task;
    const std::size_t wanted = 4 * resolve_threads(options.threads, std::size_t(-1));
    const std::size_t query_blocks = std::max<std::size_t>(1, std::min(nq, (wanted + chunks - 1) / std::max<std::size_t>(chunks, 1)));
    const std::size_t per_block = (nq + query_blocks - 1) / query_blocks;
    const std::size_t tasks = chunks * query_blocks;
    const std::size_t workers = resolve_threads(options.threads, std::max<std::size_t>(tasks, 1));
    std::vector<TopK> best(workers * nq, TopK(keep));
    // Offers the keys of vectors first.. to a selection; most are below its worst entry and are
    // dismissed by one comparison (ids grow within a worker, so an equal key never enters).
    auto select = [&](TopK& top, const float* keys, std::size_t first, std::size_t count) {
        float threshold = top.full() ? top.worst().score : -INFINITY;
        for (std::size_t i = 0; i < count; ++i) {
            if (!(keys[i] > threshold) || !allowed_bit(options.allowed, first + i)) continue;
            top.push({keys[i], std::int64_t(first + i)});
            if (top.full()) threshold = top.worst().score;
        }
    };
    const float sign = metric_ == Metric::l2 ? -1.0f : 1.0f;
    parallel_for(tasks, options.threads, [&](std::size_t task, std::size_t worker) {
        TopK* mine = best.data() + worker * nq;
        const std::size_t first = task / query_blocks * vectors_per_task;
        const std::size_t count = std::min(n, first + vectors_per_task) - first;
        const std::size_t q0 = task % query_blocks * per_block, q1 = std::min(nq, q0 + per_block);
        // Scratch kept by each pool thread between calls: fresh large buffers would cost a page
        // fault per 4 KiB on every call.
        thread_local std::vector<float> keys_buffer;
        thread_local std::vector<std::uint8_t> blocked_buffer;
        thread_local std::vector<std::uint16_t> sums_buffer;
        thread_local std::vector<std::uint32_t> masks_buffer;
        std::vector<float>& keys = keys_buffer;  // one thread-local lookup each, not one per use
        std::vector<std::uint8_t>& blocked = blocked_buffer;
        std::vector<std::uint16_t>& sums = sums_buffer;
        std::vector<std::uint32_t>& masks = masks_buffer;
        keys.resize(count);
        if (!fast) {
            const std::uint8_t* chunk = codes + first * m_;
            for (std::size_t q = q0; q < q1; ++q) {
                const float* table = lut.data() + q * m_ * ks;
                std::size_t i = 0;
                for (; i + 4 <= count; i += 4) {  // four vectors at once: independent sums
                    const std::uint8_t* c = chunk + i * m_;
                    float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
                    for (std::size_t sub = 0; sub < m_; ++sub) {
                        const float* t = table + sub * ks;
                        s0 += t[c[sub]];
                        s1 += t[c[m_ + sub]];
                        s2 += t[c[2 * m_ + sub]];
                        s3 += t[c[3 * m_ + sub]];
                    }
                    keys[i] = sign * s0, keys[i + 1] = sign * s1, keys[i + 2] = sign * s2, keys[i + 3] = sign * s3;
                }
                for (; i < count; ++i) keys[i] = sign * exact(q, first + i);
                select(mine[q], keys.data(), first, count);
            }
            return;
        }
        // Blocked layout of this task's vectors, then every query scans it.
        const std::size_t blocks = (count + 31) / 32;
        blocked.resize(blocks * pairs * 32);
        block_codes(codes + first * code_size(), count, code_size(), pairs, blocked.data());
        sums.resize(blocks * 32);
        masks.resize(blocks);
        const bool ip = metric_ == Metric::inner_product;
        for (std::size_t q = q0; q < q1; ++q) {
            // The selection's threshold as bounds on the integer sums (ip: only sums above
            // `low` can enter; l2: only sums below `high`), one unit wider for the rounding of
            // the bound; the kernel flags the sums inside, the exact key then decides.
            TopK& top = mine[q];
            std::int32_t low = -1, high = 65536;
            auto update_bounds = [&] {
                if (!top.full()) return;
                const double bound = std::floor((double(sign * top.worst().score) - base[q]) / delta[q]);
                if (ip)
                    low = std::int32_t(std::max(-1.0, std::min(65536.0, bound - 1)));
                else
                    high = std::int32_t(std::max(-1.0, std::min(65536.0, bound + 2)));
            };
            update_bounds();
            kern.fastscan(blocked.data(), blocks, pairs, small.data() + q * pairs * 32, low, high,
                          sums.data(), masks.data());
            for (std::size_t b = 0; b < blocks; ++b) {
                for (std::uint32_t mask = masks[b]; mask; mask &= mask - 1) {
                    std::size_t j = 0;
                    while (!((mask >> j) & 1u)) ++j;
                    const std::size_t i = b * 32 + j;
                    if (i >= count) break;
                    const std::int32_t sum = sums[i];
                    if (sum <= low || sum >= high) continue;
                    const float key = sign * (base[q] + delta[q] * float(sum));
                    if (top.full() && !(key > top.worst().score)) continue;
                    if (!allowed_bit(options.allowed, first + i)) continue;
                    top.push({key, std::int64_t(first + i)});
                    update_bounds();
                }
            }
        }
    });
    for (std::size_t q = 0; q < nq; ++q) {
        TopK merged(keep);
        for (std::size_t w = 0; w < workers; ++w)
            for (const ScoredId& e : best[w * nq + q].sorted()) merged.push(e);
        std::vector<ScoredId> top = merged.sorted();
        if (fast && options.rescore) {
            TopK exact_top(k);
            for (const ScoredId& e : top) exact_top.push({key_of(exact(q, std::size_t(e.id)), metric_), e.id});
            top = exact_top.sorted();
        }
        for (std::size_t i = 0; i < k; ++i) {
            const bool have = i < top.size();
            scores[q * k + i] = have ? key_of(top[i].score, metric_) : std::numeric_limits<float>::quiet_NaN();
            ids[q * k + i] = have ? top[i].id : -1;
        }
    }
}

}  // namespace latefold
