// Product quantization: training, encoding, lookup tables and the two ADC scans.
#include "latefold/pq.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <memory>
#include <numeric>
#include <cstring>
#include <string>

#include "kernels/table.h"
#include "latefold/kmeans.h"
#include "latefold/random.h"
#include "latefold/thread_pool.h"
#include "latefold/topk.h"

namespace latefold {
namespace {

constexpr std::size_t vectors_per_task = 4096;  // a multiple of the 32-vector fast-scan block
constexpr std::size_t vectors_per_encode = 512;  // smaller: small sets use every thread too

bool allowed_bit(const std::uint8_t* allowed, std::size_t i) {
    return !allowed || ((allowed[i >> 3] >> (i & 7)) & 1u);
}

// The fast scan's selections hold one integer per candidate, rank << 48 | (id_mask - id) with
// rank = the sum (ip) or 65535 - the sum (l2): a larger integer ranks before (better estimate;
// equal estimates: lower id), and 0 ranks after every candidate.
constexpr std::uint64_t id_mask = (std::uint64_t(1) << 48) - 1;
using SumSelection = Reservoir<std::uint64_t, std::greater<std::uint64_t>>;
// The 8-bit scan's selections: scores and ids; {NaN, max id} ranks after every candidate.
using ScoreSelection = Reservoir<ScoredId, RanksBefore>;
constexpr ScoredId lowest_scored{std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<std::int64_t>::max()};

// fn(q) for q < nq, on the pool in blocks of 16 queries.
template <class Fn>
void for_each_query(std::size_t nq, std::size_t threads, Fn fn) {
    constexpr std::size_t block = 16;
    parallel_for((nq + block - 1) / block, threads, [&](std::size_t b, std::size_t) {
        for (std::size_t q = b * block; q < std::min(nq, (b + 1) * block); ++q) fn(q);
    });
}

// Ranking key: higher is better for both metrics (distances are negated).
float key_of(float score, Metric metric) { return metric == Metric::l2 ? -score : score; }

}  // namespace

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

void ProductQuantizer::search(const std::uint8_t* codes, std::size_t n, const float* queries,
                              std::size_t nq, const PqSearchOptions& options, float* scores,
                              std::int64_t* ids) const {
    require_trained();
    if (options.k == 0) fail_argument("k must be at least 1");
    const std::size_t k = options.k, ks = ksub();
    const bool fast = nbits_ == 4;
    // Float tables: 4-bit, all queries' (small; the re-scoring reads them at the end); 8-bit
    // (m x 256 floats each), `group` queries' at a time, about 1 MiB per thread (each thread
    // scans its share of the group's queries), scanned while they are in cache.
    const std::size_t threads = resolve_threads(options.threads, std::size_t(-1));
    const std::size_t group = fast ? nq : std::max<std::size_t>(1, std::min(nq, (std::size_t(1) << 18) * threads / (m_ * ks)));
    if (options.packed && !fast) fail_argument("only 4-bit codes have a fast-scan layout");
    // A collection too small to share between the threads is searched by blocks of queries,
    // each taken through tables, scan and selection by one thread: a single parallel phase
    // (each phase costs a wake-up of the pool, which on small sets is most of the time).
    const std::size_t chunks = (n + vectors_per_task - 1) / vectors_per_task;
    const bool by_query = threads > 1 && chunks < threads && nq > 1;
    const std::size_t query_block =
        by_query ? std::max<std::size_t>(1, std::min(fast ? nq : group / threads, (nq + 4 * threads - 1) / (4 * threads))) : 0;
    // Not zeroed (every table is written before it is read): on small collections clearing
    // them was a serial share of a two-thread search.
    const std::unique_ptr<float[]> lut(new float[(fast ? nq : by_query ? threads * query_block : group) * m_ * ks]);
    const std::size_t pairs = fastscan_pairs();
    const kernels::KernelTable& kern = kernels::active_kernels();
    // The score of vector i from query q's float tables.
    auto exact = [&](std::size_t q, std::size_t i) {
        const std::uint32_t first_row = 0;
        float score;
        kern.adc_rows(lut.get() + q * m_ * ks, codes + i * code_size(), code_size(), &first_row, 1, m_, nbits_, &score);
        return score;
    };
    if (fast && n > id_mask) fail_argument("a fast scan takes at most 2^48 - 1 codes");
    if (fast && m_ > kernels::fastscan_max_m)
        fail_argument("a 4-bit search takes at most " + std::to_string(kernels::fastscan_max_m) +
                      " sub-quantizers (its sums are 16-bit), got m = " + std::to_string(m_));
    if (options.vectors && n > UINT32_MAX) fail_argument("re-scoring from vectors takes at most 2^32 - 1 rows");
    const bool refine = options.rescore && (fast || options.vectors);
    const std::size_t keep = refine ? std::max(k, options.rescore * k) : k;
    // 4-bit: per query, uint8 tables in the kernels' layout and the estimate's base and step.
    const std::size_t table_bytes = kernels::fastscan_table_bytes(pairs);
    const std::unique_ptr<std::uint8_t[]> small(new std::uint8_t[fast ? nq * table_bytes : 0]);
    std::vector<float> base(nq, 0.0f), delta(nq, 1.0f);
    // Tables of queries [q0, q1) on `on` threads: 4-bit, float tables (kept for the
    // re-scoring) and their 7-bit form (two entries add in a byte in the kernels; sums fit 16
    // bits); 8-bit, float tables written to `out`.
    const float qmax = 127.0f;
    auto tables = [&](std::size_t q0, std::size_t q1, float* out, std::size_t on) {
        if (!fast) return lookup_tables(queries + q0 * dim_, q1 - q0, out, on);
        lookup_tables(queries + q0 * dim_, q1 - q0, lut.get() + q0 * m_ * ks, on);
        for_each_query(q1 - q0, on, [&](std::size_t i) {
            const std::size_t q = q0 + i;
            std::uint8_t* table = small.get() + q * table_bytes;
            kern.fastscan_table(lut.get() + q * m_ * ks, m_, qmax, table, &base[q], &delta[q]);
            const std::uint8_t zeros[16] = {};
            for (std::size_t s = m_; s < kernels::fastscan_table_subspaces(pairs); ++s)
                kernels::set_fastscan_table(table, s, zeros);  // padding
        });
    };

    // Vector-major tasks: chunks of vectors x blocks of queries, enough of them to keep every
    // thread busy.
    const std::size_t wanted = threads == 1 ? 1 : 16 * threads;  // small tasks: even shares
    const std::size_t query_blocks = std::max<std::size_t>(1, std::min(group, (wanted + chunks - 1) / std::max<std::size_t>(chunks, 1)));
    const std::size_t per_block = (group + query_blocks - 1) / query_blocks;
    const std::size_t tasks = by_query ? (nq + query_block - 1) / query_block : chunks * query_blocks;
    // Selections per worker and query, merged at the end; by blocks of queries each query has
    // one worker, and one selection.
    const std::size_t workers = by_query ? 1 : resolve_threads(options.threads, std::max<std::size_t>(tasks, 1));
    std::vector<ScoreSelection> best(fast ? 0 : workers * nq, ScoreSelection(keep, lowest_scored));
    std::vector<SumSelection> best_sums(fast ? workers * nq : 0, SumSelection(keep, 0));
    // Offers the keys of vectors first.. to a selection; most are below its threshold and are
    // dismissed by one comparison.
    auto select = [&](ScoreSelection& top, const float* keys, std::size_t first, std::size_t count) {
        float threshold = top.threshold().score;  // NaN until the first partition: admits all
        for (std::size_t i = 0; i < count; ++i) {
            if (keys[i] < threshold || !allowed_bit(options.allowed, first + i)) continue;
            top.push({keys[i], std::int64_t(first + i)});
            threshold = top.threshold().score;
        }
    };
    const float sign = metric_ == Metric::l2 ? -1.0f : 1.0f;
    // Scores vectors [first, first + count) for queries [q0, q1) into the worker's selections,
    // 8-bit from the float tables at `tables` (query q's at (q - t0) * m * ksub), 4-bit by the
    // fast scan. Two functions: sharing one, the code of either path moved the other's
    // (an edit of the 4-bit candidate loop made the 8-bit scan 8 % slower).
    // Scratch is kept by each pool thread between calls (fresh large buffers would cost a page
    // fault per 4 KiB on every call) and used through plain pointers: each use of a
    // thread_local in a shared library costs a call.
    auto scan_adc = [&](std::size_t first, std::size_t count, std::size_t q0, std::size_t q1, const float* tables,
                        std::size_t t0, std::size_t worker) {
        thread_local std::vector<float> keys_buffer;
        keys_buffer.resize(2 * count);
        float* keys = keys_buffer.data();
        const std::uint8_t* chunk = codes + first * m_;
        std::size_t q = q0;
        // Two queries per load of codes while both tables fit in L1 (m <= 16: +18 %; larger
        // tables evict each other).
        if (2 * m_ * ks * sizeof(float) <= 32768)
            for (; q + 2 <= q1; q += 2) {
                kern.adc_scan(tables + (q - t0) * m_ * ks, 2, chunk, count, m_, sign, keys);
                select(best[worker * nq + q], keys, first, count);
                select(best[worker * nq + q + 1], keys + count, first, count);
            }
        for (; q < q1; ++q) {
            kern.adc_scan(tables + (q - t0) * m_ * ks, 1, chunk, count, m_, sign, keys);
            select(best[worker * nq + q], keys, first, count);
        }
    };
    auto scan_fast = [&](std::size_t first, std::size_t count, std::size_t q0, std::size_t q1, std::size_t worker) {
        thread_local std::vector<std::uint8_t> blocked_buffer;
        thread_local std::vector<std::uint16_t> sums_buffer;
        thread_local std::vector<std::uint32_t> masks_buffer;
        std::vector<std::uint8_t>& blocked = blocked_buffer;
        std::vector<std::uint16_t>& sums = sums_buffer;
        std::vector<std::uint32_t>& masks = masks_buffer;
        // Blocked layout of this task's vectors, then the queries scan it, `per_call` at a time
        // in runs of blocks that grow from 1 to `max_run`: the selection's bounds tighten
        // between runs, fastest at the start.
        constexpr std::size_t per_call = 8, max_run = 8;
        const std::size_t blocks = (count + 31) / 32;
        const std::uint8_t* blocked_codes = nullptr;
        if (options.packed) {
            blocked_codes = options.packed + first / 32 * pairs * 32;
        } else {
            blocked.resize(blocks * pairs * 32);
            kern.block_codes(codes + first * code_size(), count, code_size(), pairs, blocked.data());
            blocked_codes = blocked.data();
        }
        sums.resize(per_call * max_run * 32);
        masks.resize(per_call * max_run);
        std::uint16_t* sum_data = sums.data();
        std::uint32_t* mask_data = masks.data();
        const bool ip = metric_ == Metric::inner_product;
        SumSelection* selections = best_sums.data() + worker * nq;
        // The selection's threshold as bounds on the sums (ip: only sums above `low` can enter;
        // l2: only sums below `high`); the kernel flags the sums inside.
        auto bounds = [&](std::size_t q, std::int32_t& low, std::int32_t& high) {
            low = -1, high = 65536;
            const std::uint64_t threshold = selections[q].threshold();
            if (threshold == 0) return;
            const std::int32_t rank = std::int32_t(threshold >> 48);
            if (ip)
                low = rank - 1;
            else
                high = 65535 - rank + 1;
        };
        for (std::size_t q = q0; q < q1; q += per_call) {
            const std::size_t in_batch = std::min(per_call, q1 - q);
            std::int32_t low[per_call], high[per_call];
            for (std::size_t b0 = 0, size = 1; b0 < blocks; b0 += size, size = std::min(max_run, 2 * size)) {
                const std::size_t nb = std::min(size, blocks - b0);
                for (std::size_t i = 0; i < in_batch; ++i) bounds(q + i, low[i], high[i]);
                kern.fastscan(blocked_codes + b0 * pairs * 32, nb, pairs, small.get() + q * table_bytes,
                              in_batch, low, high, sum_data, mask_data);
                for (std::size_t i = 0; i < in_batch; ++i) {
                    SumSelection& top = selections[q + i];
                    for (std::size_t b = 0; b < nb; ++b)
                        for (std::uint32_t mask = mask_data[i * nb + b]; mask; mask &= mask - 1) {
                            const std::size_t j = std::size_t(__builtin_ctz(mask));
                            const std::size_t v = (b0 + b) * 32 + j;
                            if (v >= count) break;
                            const std::uint32_t sum = sum_data[(i * nb + b) * 32 + j];
                            const std::uint64_t candidate = std::uint64_t(ip ? sum : 65535 - sum) << 48 |
                                                            (id_mask - (first + v));
                            if (!allowed_bit(options.allowed, first + v)) continue;
                            const std::uint64_t threshold = top.threshold();
                            top.offer(candidate);
                            if (top.threshold() != threshold) bounds(q + i, low[i], high[i]);
                        }
                }
            }
        }
    };
    auto scan = [&](std::size_t first, std::size_t count, std::size_t q0, std::size_t q1, const float* tables,
                    std::size_t t0, std::size_t worker) {
        if (fast)
            scan_fast(first, count, q0, q1, worker);
        else
            scan_adc(first, count, q0, q1, tables, t0, worker);
    };
    // The top-k of query q: its selections merged, re-scored when asked.
    auto finish = [&](std::size_t q) {
        // The other workers' selections into the first one; 4-bit: merged as sums (in the order
        // of the scan, whatever the number of workers), then turned into scores.
        std::vector<ScoredId> top;
        if (!fast) {
            for (std::size_t w = 1; w < workers; ++w)
                for (const ScoredId& e : best[w * nq + q].sorted()) best[q].push(e);
            top = best[q].sorted();
        } else {
            for (std::size_t w = 1; w < workers; ++w)
                for (const std::uint64_t c : best_sums[w * nq + q].sorted()) best_sums[q].push(c);
            for (const std::uint64_t c : best_sums[q].sorted()) {
                const std::uint32_t rank = std::uint32_t(c >> 48), sum = metric_ == Metric::l2 ? 65535 - rank : rank;
                top.push_back({sign * (base[q] + delta[q] * float(sum)), std::int64_t(id_mask - (c & id_mask))});
            }
        }
        if (refine) {
            // Exact scores from the vectors (the candidates' rows in one gathered product),
            // else from the float tables.
            std::vector<float> value(top.size());
            if (options.vectors) {
                const float* query = queries + q * dim_;
                std::vector<std::uint32_t> rows(top.size());
                for (std::size_t j = 0; j < top.size(); ++j) rows[j] = std::uint32_t(top[j].id);
                kern.dot_rows_f32(query, options.vectors, dim_, rows.data(), rows.size(), dim_, value.data());
                const std::uint32_t first_row = 0;
                auto dot_self = [&](const float* v) {
                    float out;
                    kern.dot_rows_f32(v, v, dim_, &first_row, 1, dim_, &out);
                    return out;
                };
                const float qq = metric_ == Metric::l2 ? dot_self(query) : 0.0f;
                for (std::size_t j = 0; j < top.size(); ++j) {
                    // Only the rows read are checked (checking all would cost more than the
                    // search): a NaN or infinity in x makes <q, x> non-finite.
                    if (!std::isfinite(value[j]))
                        fail_argument("vectors: row " + std::to_string(top[j].id) + " holds a NaN or infinite value");
                    if (metric_ == Metric::l2)
                        value[j] = std::max(0.0f, qq + dot_self(options.vectors + std::size_t(top[j].id) * dim_) - 2.0f * value[j]);
                }
            } else {
                for (std::size_t j = 0; j < top.size(); ++j) value[j] = exact(q, std::size_t(top[j].id));
            }
            TopK exact_top(k);
            for (std::size_t j = 0; j < top.size(); ++j) exact_top.push({key_of(value[j], metric_), top[j].id});
            top = exact_top.sorted();
        }
        for (std::size_t i = 0; i < k; ++i) {
            const bool have = i < top.size();
            scores[q * k + i] = have ? key_of(top[i].score, metric_) : std::numeric_limits<float>::quiet_NaN();
            ids[q * k + i] = have ? top[i].id : -1;
        }
    };

    if (by_query) {
        parallel_for(tasks, options.threads, [&](std::size_t task, std::size_t worker) {
            const std::size_t q0 = task * query_block, q1 = std::min(nq, q0 + query_block);
            float* own = fast ? nullptr : lut.get() + worker * query_block * m_ * ks;
            tables(q0, q1, own, 1);
            for (std::size_t first = 0; first < n; first += vectors_per_task)
                scan(first, std::min(n, first + vectors_per_task) - first, q0, q1, own, q0, 0);
            for (std::size_t q = q0; q < q1; ++q) finish(q);
        });
        return;
    }
    if (fast) tables(0, nq, nullptr, options.threads);
    for (std::size_t g0 = 0; g0 < nq; g0 += group) {
        const std::size_t g1 = std::min(nq, g0 + group);
        if (!fast) tables(g0, g1, lut.get(), options.threads);
        parallel_for(tasks, options.threads, [&](std::size_t task, std::size_t worker) {
            const std::size_t first = task / query_blocks * vectors_per_task;
            const std::size_t q0 = g0 + task % query_blocks * per_block;
            scan(first, std::min(n, first + vectors_per_task) - first, q0, std::min(g1, q0 + per_block), lut.get(), g0,
                 worker);
        });
    }
    for_each_query(nq, options.threads, [&](std::size_t q) { finish(q); });
}

}  // namespace latefold
