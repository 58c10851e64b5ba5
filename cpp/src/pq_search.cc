// Product quantization search: the plan (how queries and vectors are shared between threads),
// the lookup tables, the two scans (8-bit ADC from float tables, 4-bit fast scan from 7-bit
// tables in registers) and the finish (selections merged, optionally re-scored exactly).
#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <memory>
#include <string>

#include "kernels/table.h"
#include "latefold/pq.h"
#include "latefold/row_store.h"
#include "latefold/thread_pool.h"
#include "latefold/topk.h"
#include "pq_tasks.h"

namespace latefold {

namespace {

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

// One search call: the plan and the buffers its phases share.
class ProductQuantizer::Search {
public:
    Search(const ProductQuantizer& pq, const std::uint8_t* codes, std::size_t n, const float* queries,
           std::size_t nq, const PqSearchOptions& options, float* scores, std::int64_t* ids);
    void run();

private:
    void tables(std::size_t q0, std::size_t q1, float* out, std::size_t on);
    void select(ScoreSelection& top, const float* keys, std::size_t first, std::size_t count) const;
    void scan_adc(std::size_t first, std::size_t count, std::size_t q0, std::size_t q1, const float* tables,
                  std::size_t t0, std::size_t worker);
    void scan_fast(std::size_t first, std::size_t count, std::size_t q0, std::size_t q1, std::size_t worker);
    void scan(std::size_t first, std::size_t count, std::size_t q0, std::size_t q1, const float* tables,
              std::size_t t0, std::size_t worker) {
        if (fast_)
            scan_fast(first, count, q0, q1, worker);
        else
            scan_adc(first, count, q0, q1, tables, t0, worker);
    }
    void finish(std::size_t q);
    void rescore(std::size_t q, std::vector<ScoredId>& top) const;

    const ProductQuantizer& pq_;
    const std::uint8_t* codes_;
    const std::size_t n_;
    const float* queries_;
    const std::size_t nq_;
    const PqSearchOptions& options_;
    float* scores_;
    std::int64_t* ids_;
    const kernels::KernelTable& kern_ = kernels::active_kernels();
    const std::size_t m_, ks_, k_;
    const bool fast_;
    const float sign_;  // scores as keys: higher is better
    // The plan.
    std::size_t threads_ = 1, group_ = 1, chunks_ = 0, query_block_ = 0, query_blocks_ = 1, per_block_ = 1;
    std::size_t tasks_ = 0, workers_ = 1, keep_ = 0, pairs_ = 0, table_bytes_ = 0;
    bool by_query_ = false, refine_ = false;
    // Float tables: 4-bit, all queries' (small; the re-scoring reads them at the end); 8-bit
    // (m x 256 floats each), `group` queries' at a time. 4-bit also: uint8 tables in the
    // kernels' layout and each query's estimate base and step.
    std::unique_ptr<float[]> lut_;
    std::unique_ptr<std::uint8_t[]> small_;
    std::vector<float> base_, delta_;
    // Selections per worker and query, merged at the end.
    std::vector<ScoreSelection> best_;
    std::vector<SumSelection> best_sums_;
};

ProductQuantizer::Search::Search(const ProductQuantizer& pq, const std::uint8_t* codes, std::size_t n,
                                 const float* queries, std::size_t nq, const PqSearchOptions& options,
                                 float* scores, std::int64_t* ids)
    : pq_(pq), codes_(codes), n_(n), queries_(queries), nq_(nq), options_(options), scores_(scores), ids_(ids),
      m_(pq.m_), ks_(pq.ksub()), k_(options.k), fast_(pq.nbits_ == 4), sign_(pq.metric_ == Metric::l2 ? -1.0f : 1.0f) {
    pq.require_trained();
    if (options.k == 0) fail_argument("k must be at least 1");
    if (options.packed && !fast_) fail_argument("only 4-bit codes have a fast-scan layout");
    if (fast_ && n > id_mask) fail_argument("a fast scan takes at most 2^48 - 1 codes");
    if (fast_ && m_ > kernels::fastscan_max_m)
        fail_argument("a 4-bit search takes at most " + std::to_string(kernels::fastscan_max_m) +
                      " sub-quantizers (its sums are 16-bit), got m = " + std::to_string(m_));
    if (options.vectors && n > UINT32_MAX) fail_argument("re-scoring from vectors takes at most 2^32 - 1 rows");
    if (options.vectors && options.vectors->dim != pq.dim_) fail_argument("vectors: wrong dimension");
    // 8-bit tables, `group` queries' at a time: about 1 MiB per thread (each thread scans its
    // share of the group's queries), scanned while they are in cache.
    threads_ = resolve_threads(options.threads, std::size_t(-1));
    group_ = fast_ ? nq : std::max<std::size_t>(1, std::min(nq, (std::size_t(1) << 18) * threads_ / (m_ * ks_)));
    // A collection too small to share between the threads is searched by blocks of queries,
    // each taken through tables, scan and selection by one thread: a single parallel phase
    // (each phase costs a wake-up of the pool, which on small sets is most of the time).
    chunks_ = (n + vectors_per_task - 1) / vectors_per_task;
    by_query_ = threads_ > 1 && chunks_ < threads_ && nq > 1;
    query_block_ = by_query_ ? std::max<std::size_t>(
                                   1, std::min(fast_ ? nq : group_ / threads_, (nq + 4 * threads_ - 1) / (4 * threads_)))
                             : 0;
    // Not zeroed (every table is written before it is read): on small collections clearing
    // them was a serial share of a two-thread search.
    lut_.reset(new float[(fast_ ? nq : by_query_ ? threads_ * query_block_ : group_) * m_ * ks_]);
    pairs_ = pq.fastscan_pairs();
    refine_ = options.rescore && (fast_ || options.vectors);
    // Beyond n, k only pads the results: the selections keep at most n candidates.
    const std::size_t select = std::max<std::size_t>(1, std::min(k_, n));
    keep_ = !refine_ ? select : std::max(select, options.rescore > n / select ? n : options.rescore * select);
    table_bytes_ = kernels::fastscan_table_bytes(pairs_);
    small_.reset(new std::uint8_t[fast_ ? nq * table_bytes_ : 0]);
    base_.assign(nq, 0.0f);
    delta_.assign(nq, 1.0f);
    // Vector-major tasks: chunks of vectors x blocks of queries, enough of them to keep every
    // thread busy.
    const std::size_t wanted = threads_ == 1 ? 1 : 16 * threads_;  // small tasks: even shares
    query_blocks_ = std::max<std::size_t>(1, std::min(group_, (wanted + chunks_ - 1) / std::max<std::size_t>(chunks_, 1)));
    per_block_ = (group_ + query_blocks_ - 1) / query_blocks_;
    tasks_ = by_query_ ? (nq + query_block_ - 1) / query_block_ : chunks_ * query_blocks_;
    // By blocks of queries each query has one worker, and one selection.
    workers_ = by_query_ ? 1 : resolve_threads(options.threads, std::max<std::size_t>(tasks_, 1));
    best_.assign(fast_ ? 0 : workers_ * nq, ScoreSelection(keep_, lowest_scored));
    best_sums_.assign(fast_ ? workers_ * nq : 0, SumSelection(keep_, 0));
}

// Tables of queries [q0, q1) on `on` threads: 4-bit, float tables (kept for the re-scoring) and
// their 7-bit form (two entries add in a byte in the kernels; sums fit 16 bits); 8-bit, float
// tables written to `out`.
void ProductQuantizer::Search::tables(std::size_t q0, std::size_t q1, float* out, std::size_t on) {
    if (!fast_) return pq_.lookup_tables(queries_ + q0 * pq_.dim_, q1 - q0, out, on);
    pq_.lookup_tables(queries_ + q0 * pq_.dim_, q1 - q0, lut_.get() + q0 * m_ * ks_, on);
    const float qmax = 127.0f;
    for_each_query(q1 - q0, on, [&](std::size_t i) {
        const std::size_t q = q0 + i;
        std::uint8_t* table = small_.get() + q * table_bytes_;
        kern_.fastscan_table(lut_.get() + q * m_ * ks_, m_, qmax, table, &base_[q], &delta_[q]);
        const std::uint8_t zeros[16] = {};
        for (std::size_t s = m_; s < kernels::fastscan_table_subspaces(pairs_); ++s)
            kernels::set_fastscan_table(table, s, zeros);  // padding
    });
}

// Offers the keys of vectors first.. to a selection; most are below its threshold and are
// dismissed by one comparison.
void ProductQuantizer::Search::select(ScoreSelection& top, const float* keys, std::size_t first,
                                      std::size_t count) const {
    float threshold = top.threshold().score;  // NaN until the first partition: admits all
    for (std::size_t i = 0; i < count; ++i) {
        if (keys[i] < threshold || !allowed_bit(options_.allowed, first + i)) continue;
        top.push({keys[i], std::int64_t(first + i)});
        threshold = top.threshold().score;
    }
}

// Scores vectors [first, first + count) for queries [q0, q1) into the worker's selections, 8-bit
// from the float tables at `tables` (query q's at (q - t0) * m * ksub), 4-bit by the fast scan.
// Two functions: sharing one, the code of either path moved the other's (an edit of the 4-bit
// candidate loop made the 8-bit scan 8 % slower). Scratch is kept by each pool thread between
// calls (fresh large buffers would cost a page fault per 4 KiB on every call) and used through
// plain pointers: each use of a thread_local in a shared library costs a call.
void ProductQuantizer::Search::scan_adc(std::size_t first, std::size_t count, std::size_t q0, std::size_t q1,
                                        const float* tables, std::size_t t0, std::size_t worker) {
    thread_local std::vector<float> keys_buffer;
    keys_buffer.resize(2 * count);
    float* keys = keys_buffer.data();
    const std::uint8_t* chunk = codes_ + first * m_;
    std::size_t q = q0;
    // Two queries per load of codes while both tables fit in L1 (m <= 16: +18 %; larger tables
    // evict each other).
    if (2 * m_ * ks_ * sizeof(float) <= 32768)
        for (; q + 2 <= q1; q += 2) {
            kern_.adc_scan(tables + (q - t0) * m_ * ks_, 2, chunk, count, m_, sign_, keys);
            select(best_[worker * nq_ + q], keys, first, count);
            select(best_[worker * nq_ + q + 1], keys + count, first, count);
        }
    for (; q < q1; ++q) {
        kern_.adc_scan(tables + (q - t0) * m_ * ks_, 1, chunk, count, m_, sign_, keys);
        select(best_[worker * nq_ + q], keys, first, count);
    }
}

void ProductQuantizer::Search::scan_fast(std::size_t first, std::size_t count, std::size_t q0, std::size_t q1,
                                         std::size_t worker) {
    thread_local std::vector<std::uint8_t> blocked_buffer;
    thread_local std::vector<std::uint16_t> sums_buffer;
    thread_local std::vector<std::uint32_t> masks_buffer;
    std::vector<std::uint8_t>& blocked = blocked_buffer;
    std::vector<std::uint16_t>& sums = sums_buffer;
    std::vector<std::uint32_t>& masks = masks_buffer;
    // Blocked layout of this task's vectors, then the queries scan it, `per_call` at a time in
    // runs of blocks that grow from 1 to `max_run`: the selection's bounds tighten between runs,
    // fastest at the start.
    constexpr std::size_t per_call = 8, max_run = 8;
    const std::size_t blocks = (count + 31) / 32, pairs = pairs_;
    const std::uint8_t* blocked_codes = nullptr;
    if (options_.packed) {
        blocked_codes = options_.packed + first / 32 * pairs * 32;
    } else {
        blocked.resize(blocks * pairs * 32);
        kern_.block_codes(codes_ + first * pq_.code_size(), count, pq_.code_size(), pairs, blocked.data());
        blocked_codes = blocked.data();
    }
    sums.resize(per_call * max_run * 32);
    masks.resize(per_call * max_run);
    std::uint16_t* sum_data = sums.data();
    std::uint32_t* mask_data = masks.data();
    const bool ip = pq_.metric_ == Metric::inner_product;
    SumSelection* selections = best_sums_.data() + worker * nq_;
    // The selection's threshold as bounds on the sums (ip: only sums above `low` can enter; l2:
    // only sums below `high`); the kernel flags the sums inside.
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
            kern_.fastscan(blocked_codes + b0 * pairs * 32, nb, pairs, small_.get() + q * table_bytes_, in_batch, low,
                           high, sum_data, mask_data);
            for (std::size_t i = 0; i < in_batch; ++i) {
                SumSelection& top = selections[q + i];
                for (std::size_t b = 0; b < nb; ++b)
                    for (std::uint32_t mask = mask_data[i * nb + b]; mask; mask &= mask - 1) {
                        const std::size_t j = std::size_t(__builtin_ctz(mask));
                        const std::size_t v = (b0 + b) * 32 + j;
                        if (v >= count) break;
                        const std::uint32_t sum = sum_data[(i * nb + b) * 32 + j];
                        const std::uint64_t candidate = std::uint64_t(ip ? sum : 65535 - sum) << 48 | (id_mask - (first + v));
                        if (!allowed_bit(options_.allowed, first + v)) continue;
                        const std::uint64_t threshold = top.threshold();
                        top.offer(candidate);
                        if (top.threshold() != threshold) bounds(q + i, low[i], high[i]);
                    }
            }
        }
    }
}

// The top-k of query q: its selections merged (the other workers' into the first one; 4-bit:
// merged as sums, in the order of the scan whatever the number of workers, then turned into
// scores), re-scored when asked.
void ProductQuantizer::Search::finish(std::size_t q) {
    std::vector<ScoredId> top;
    if (!fast_) {
        for (std::size_t w = 1; w < workers_; ++w)
            for (const ScoredId& e : best_[w * nq_ + q].sorted()) best_[q].push(e);
        top = best_[q].sorted();
    } else {
        for (std::size_t w = 1; w < workers_; ++w)
            for (const std::uint64_t c : best_sums_[w * nq_ + q].sorted()) best_sums_[q].push(c);
        for (const std::uint64_t c : best_sums_[q].sorted()) {
            const std::uint32_t rank = std::uint32_t(c >> 48), sum = pq_.metric_ == Metric::l2 ? 65535 - rank : rank;
            top.push_back({sign_ * (base_[q] + delta_[q] * float(sum)), std::int64_t(id_mask - (c & id_mask))});
        }
    }
    if (refine_) rescore(q, top);
    for (std::size_t i = 0; i < k_; ++i) {
        const bool have = i < top.size();
        scores_[q * k_ + i] = have ? key_of(top[i].score, pq_.metric_) : std::numeric_limits<float>::quiet_NaN();
        ids_[q * k_ + i] = have ? top[i].id : -1;
    }
}

// Exact scores of the candidates from the vectors (their rows in one gathered product), else from
// the float tables; the best k of them.
void ProductQuantizer::Search::rescore(std::size_t q, std::vector<ScoredId>& top) const {
    std::vector<float> value(top.size());
    const Metric metric = pq_.metric_;
    if (const RowStore* vectors = options_.vectors) {
        std::vector<std::uint32_t> rows(top.size());  // fewer than 2^32 vectors (checked)
        for (std::size_t j = 0; j < top.size(); ++j) rows[j] = std::uint32_t(top[j].id);
        const float* query = queries_ + q * pq_.dim_;
        vectors->dots(query, rows.data(), rows.size(), value.data());
        const std::uint32_t first_row = 0;
        float qq = 0.0f;
        if (metric == Metric::l2) kern_.dot_rows_f32(query, query, pq_.dim_, &first_row, 1, pq_.dim_, &qq);
        std::vector<float> x(metric == Metric::l2 ? pq_.dim_ : 0);
        for (std::size_t j = 0; j < top.size(); ++j) {
            // Only the rows read are checked (checking all would cost more than the search): a
            // NaN or infinity in x makes <q, x> non-finite.
            if (!std::isfinite(value[j]))
                fail_argument("vectors: row " + std::to_string(top[j].id) + " holds a NaN or infinite value");
            if (metric == Metric::l2) {
                float xx;
                vectors->to_float(rows[j], x.data());
                vectors->dots(x.data(), &rows[j], 1, &xx);
                value[j] = std::max(0.0f, qq + xx - 2.0f * value[j]);
            }
        }
    } else {
        const float* lut = lut_.get() + q * m_ * ks_;
        const std::uint32_t first_row = 0;  // each candidate's codes as row 0: ids may pass 2^32
        for (std::size_t j = 0; j < top.size(); ++j)
            kern_.adc_rows(lut, codes_ + std::size_t(top[j].id) * pq_.code_size(), pq_.code_size(), &first_row, 1, m_,
                           pq_.nbits_, &value[j]);
    }
    TopK exact_top(std::max<std::size_t>(1, std::min(k_, top.size())));
    for (std::size_t j = 0; j < top.size(); ++j) exact_top.push({key_of(value[j], metric), top[j].id});
    top = exact_top.sorted();
}

void ProductQuantizer::Search::run() {
    if (by_query_) {
        parallel_for(tasks_, options_.threads, [&](std::size_t task, std::size_t worker) {
            const std::size_t q0 = task * query_block_, q1 = std::min(nq_, q0 + query_block_);
            float* own = fast_ ? nullptr : lut_.get() + worker * query_block_ * m_ * ks_;
            tables(q0, q1, own, 1);
            for (std::size_t first = 0; first < n_; first += vectors_per_task)
                scan(first, std::min(n_, first + vectors_per_task) - first, q0, q1, own, q0, 0);
            for (std::size_t q = q0; q < q1; ++q) finish(q);
        });
        return;
    }
    if (fast_) tables(0, nq_, nullptr, options_.threads);
    for (std::size_t g0 = 0; g0 < nq_; g0 += group_) {
        const std::size_t g1 = std::min(nq_, g0 + group_);
        if (!fast_) tables(g0, g1, lut_.get(), options_.threads);
        parallel_for(tasks_, options_.threads, [&](std::size_t task, std::size_t worker) {
            const std::size_t first = task / query_blocks_ * vectors_per_task;
            const std::size_t q0 = g0 + task % query_blocks_ * per_block_;
            scan(first, std::min(n_, first + vectors_per_task) - first, q0, std::min(g1, q0 + per_block_), lut_.get(),
                 g0, worker);
        });
    }
    for_each_query(nq_, options_.threads, [&](std::size_t q) { finish(q); });
}

void ProductQuantizer::search(const std::uint8_t* codes, std::size_t n, const float* queries, std::size_t nq,
                              const PqSearchOptions& options, float* scores, std::int64_t* ids) const {
    Search(*this, codes, n, queries, nq, options, scores, ids).run();
}

}  // namespace latefold
