// MultiVectorIndex: parameters, state queries and the mutations (add, update, delete, compact).
#include "latefold/index.h"

#include <algorithm>
#include <new>
#include <cmath>
#include <cstring>
#include <mutex>
#include <numeric>
#include <string>
#include <unordered_set>

#include "kernels/float32_rows.h"
#include "latefold/fault.h"
#include "latefold/quantize.h"
#include "latefold/interrupt.h"
#include "latefold/pooling.h"
#include "latefold/random.h"
#include "latefold/thread_pool.h"

namespace latefold {

const char* candidate_kind_name(CandidateKind kind) noexcept {
    switch (kind) {
        case CandidateKind::mean: return "mean";
        case CandidateKind::fde: return "fde";
    }
    return "?";
}

CandidateKind candidate_kind_from_name(const std::string& name) {
    for (CandidateKind k : {CandidateKind::mean, CandidateKind::fde})
        if (name == candidate_kind_name(k)) return k;
    fail_argument("candidates must be 'mean' or 'fde', got '" + name + "'");
}

void IndexParams::validate() const {
    if (dim == 0) fail_argument("dim must be at least 1");
    switch (vector_storage) {
        case DType::f32:
        case DType::f16: break;
        case DType::bf16:
        case DType::i8:
            fail_argument(std::string("vector_storage must be 'float32' or 'float16', got '") + dtype_name(vector_storage) + "'");
    }
    if (candidates == CandidateKind::fde) {
        if (fde.dimension != dim) fail_argument("the FDE's dimension must be the index's dim");
        fde.validate();
    }
    if (centroids > TokenCentroids::max_count)
        fail_argument("centroids must be at most " + std::to_string(TokenCentroids::max_count));
    if (centroid_levels < 1 || centroid_levels > TokenCentroids::max_levels)
        fail_argument("centroid_levels must be 1, 2 or 3");
    if (centroid_levels * centroids > TokenCentroids::max_count)
        fail_argument("centroid_levels * centroids must be at most " + std::to_string(TokenCentroids::max_count));
    if (kmeans_iterations == 0 || kmeans_iterations > 1000) fail_argument("kmeans_iterations must be in [1, 1000]");
    if (!(compact_fraction > 0.0 && compact_fraction <= 1.0)) fail_argument("compact_fraction must be in (0, 1]");
    if (pool_factor < 1 || pool_factor > 16) fail_argument("pool_factor must be in [1, 16]");
}

std::size_t IndexParams::vector_dim() const {
    return candidates == CandidateKind::fde ? fde.output_dim() : dim;
}

std::size_t choose_centroids(std::size_t most, std::size_t levels, std::size_t tokens) noexcept {
    std::size_t c = 16;
    if (most < c || tokens < 16 * levels * c) return 0;
    while (c * 2 <= most && 16 * levels * c * 2 <= tokens) c *= 2;
    return c;
}

MultiVectorIndex::~MultiVectorIndex() {
    // Moved into a block that is never freed (the graph with it): its members are then empty.
    if (mutex_.forked_while_changing()) static_cast<void>(new (std::nothrow) Data(std::move(data_)));
}

MultiVectorIndex::MultiVectorIndex(const IndexParams& params) : params_(params) {
    params_.validate();
    if (params_.candidates == CandidateKind::fde) data_.fde = std::make_unique<FdeEncoder>(params_.fde);
    GraphParams g;
    g.dim = params_.vector_dim();
    g.metric = Metric::inner_product;
    g.storage = params_.vector_storage;
    g.degree = params_.degree;
    g.ef_construction = params_.ef_construction;
    data_.graph = std::make_unique<GraphIndex>(g);
    data_.offsets = Buffer<std::int64_t>(AlignedVector<std::int64_t>(1, 0));
    data_.tokens = TokenRows({}, row_bytes());
}

std::size_t MultiVectorIndex::size() const {
    std::shared_lock<ForkSafeSharedMutex> lock(mutex_);
    return data_.live_count;
}

bool MultiVectorIndex::contains(std::int64_t id) const {
    std::shared_lock<ForkSafeSharedMutex> lock(mutex_);
    return data_.slot_of.count(id) != 0;
}

IndexStats MultiVectorIndex::stats() const {
    std::shared_lock<ForkSafeSharedMutex> lock(mutex_);
    IndexStats s;
    s.documents = data_.live_count;
    s.slots = data_.slots;
    s.tokens = std::size_t(data_.offsets[data_.slots]);
    s.deleted_tokens = data_.deleted_tokens;
    s.centroids = data_.centroids.count();
    s.centroid_levels = data_.centroids.empty() ? 0 : data_.centroids.levels();
    s.token_bytes = s.tokens * (row_bytes() + (params_.token_storage == DType::i8 ? sizeof(float) : 0));
    s.code_bytes = data_.codes.size() * sizeof(std::uint16_t);
    s.centroid_bytes = data_.centroids.bytes();
    s.list_bytes = data_.lists.bytes();
    s.vector_bytes = data_.slots * params_.vector_dim() * dtype_size(params_.vector_storage);
    s.graph_bytes = data_.slots * (params_.degree + 1) * sizeof(std::uint32_t);
    s.id_bytes = data_.slots * (2 * sizeof(std::int64_t));
    return s;
}

std::vector<std::pair<std::string, ColumnKind>> MultiVectorIndex::columns() const {
    std::shared_lock<ForkSafeSharedMutex> lock(mutex_);
    std::vector<std::pair<std::string, ColumnKind>> out;
    for (const auto& c : data_.graph->attributes().columns()) out.emplace_back(c.name, c.kind);
    return out;
}

bool MultiVectorIndex::get(std::int64_t id, std::vector<std::uint8_t>& tokens, std::size_t& rows,
                           std::vector<float>* scales) const {
    std::shared_lock<ForkSafeSharedMutex> lock(mutex_);
    const auto it = data_.slot_of.find(id);
    if (it == data_.slot_of.end()) return false;
    const std::size_t first = std::size_t(data_.offsets[it->second]);
    rows = std::size_t(data_.offsets[it->second + 1]) - first;
    const std::uint8_t* p = data_.tokens.row(first);
    tokens.assign(p, p + rows * row_bytes());
    if (scales && params_.token_storage == DType::i8)
        scales->assign(data_.scales.data() + first, data_.scales.data() + first + rows);
    return true;
}

std::vector<std::int64_t> MultiVectorIndex::ids() const {
    std::shared_lock<ForkSafeSharedMutex> lock(mutex_);
    std::vector<std::int64_t> out;
    out.reserve(data_.live_count);
    for (std::size_t s = 0; s < data_.slots; ++s)
        if (test_bit(data_.live.data(), s)) out.push_back(data_.ids[s]);
    return out;
}

MultiVectorsView MultiVectorIndex::token_view() const noexcept {
    MultiVectorsView v;
    if (!data_.item_rows.empty())
        v.item_rows = data_.item_rows.data();
    else if (data_.tokens.rows())
        v.tokens = data_.tokens.row(0);
    v.offsets = data_.offsets.data();
    v.count = data_.slots;
    v.rows = std::size_t(data_.offsets[data_.slots]);
    v.dim = params_.dim;
    v.row_stride = params_.dim;
    v.dtype = params_.token_storage;
    if (params_.token_storage == DType::i8) v.scales = data_.scales.data();
    return v;
}

void MultiVectorIndex::point_items() noexcept {
    if (data_.tokens.contiguous()) {
        data_.item_rows.clear();
        return;
    }
    // Stored rows never move: only the slots not pointed at yet (every one when the rows were in
    // one part until now) are.
    const std::size_t from = data_.item_rows.size();
    data_.item_rows.resize(data_.slots);  // within capacity
    for (std::size_t s = from; s < data_.slots; ++s) data_.item_rows[s] = data_.tokens.row(std::size_t(data_.offsets[s]));
}

// ------------------------------------------------------------------------------------ adding

// Everything an add computes before it changes anything.
struct MultiVectorIndex::Batch {
    std::size_t count = 0, rows = 0;
    bool pooled_used = false;              // pool_factor > 1: the pooled tokens below are stored
    AlignedVector<std::uint8_t> pooled;    // (storage type), a view over them
    AlignedVector<std::int64_t> pooled_offsets;
    MultiVectorsView pooled_view;
    AlignedVector<std::uint8_t> vectors;  // count x vector_dim, vector_storage
    AlignedVector<std::uint16_t> codes;   // the new tokens' codes, or every token's when retrained
    TokenCentroids centroids;             // new centroids (retrained), else empty
    CentroidLists lists;                  // retrained: the new centroids' lists over every slot
    AlignedVector<std::int64_t> offsets;  // the new documents' token offsets, from 0
    AlignedVector<std::uint8_t> converted;  // bfloat16 / int8 storage: the stored rows, converted
    std::vector<float> scales;              // int8 storage: their scales

    /// The documents to store: the pooled ones, or those given.
    const MultiVectorsView& stored(const MultiVectorsView& given) const { return pooled_used ? pooled_view : given; }
};

void MultiVectorIndex::check_ids(const std::int64_t* ids, std::size_t n, bool present) const {
    std::unordered_set<std::int64_t> seen;
    seen.reserve(n);
    std::vector<std::int64_t> wrong, repeated;
    for (std::size_t i = 0; i < n; ++i) {
        if (!seen.insert(ids[i]).second && repeated.size() < 5) repeated.push_back(ids[i]);
        if ((data_.slot_of.count(ids[i]) != 0) != present && wrong.size() < 5) wrong.push_back(ids[i]);
    }
    auto list = [](const std::vector<std::int64_t>& v) {
        std::string s;
        for (std::int64_t id : v) s += (s.empty() ? "" : ", ") + std::to_string(id);
        return s;
    };
    if (!repeated.empty()) fail_argument("ids: repeated id(s) " + list(repeated));
    if (!wrong.empty())
        fail_argument(std::string("ids: ") + (present ? "not in the index: " : "already in the index: ") + list(wrong));
}

void MultiVectorIndex::pool(const MultiVectorsView& docs, Batch& b, std::size_t threads) const {
    const std::size_t factor = params_.pool_factor, window = IndexParams::pool_window, dim = params_.dim;
    auto pooled_length = [&](std::size_t n) {
        std::size_t out = 0;
        for (std::size_t start = 0; start < n; start += window) out += (std::min(window, n - start) + factor - 1) / factor;
        return out;
    };
    b.pooled_offsets.assign(docs.count + 1, 0);
    for (std::size_t d = 0; d < docs.count; ++d)
        b.pooled_offsets[d + 1] = b.pooled_offsets[d] + std::int64_t(pooled_length(docs.item_length(d)));
    const std::size_t rows = std::size_t(b.pooled_offsets[docs.count]);
    const std::size_t in_row = dim * dtype_size(input_dtype());
    b.pooled.resize(rows * in_row);
    const kernels::KernelTable& kern = kernels::active_kernels();
    std::vector<AlignedVector<float>> scratch(resolve_threads(threads, docs.count));
    std::vector<std::vector<float>> pooled(scratch.size());
    parallel_for(docs.count, threads, [&](std::size_t d, std::size_t worker) {
        const std::size_t n = docs.item_length(d);
        const ItemRows items = float_items(docs, d, d + 1, scratch[worker], kern);
        const float* x = items.item(d);
        std::vector<float>& out = pooled[worker];
        out.resize(pooled_length(n) * dim);
        std::vector<float> packed;
        std::size_t written = 0;
        for (std::size_t start = 0; start < n; start += window) {
            const std::size_t w = std::min(window, n - start);
            packed.resize(w * dim);
            for (std::size_t r = 0; r < w; ++r)
                std::copy(x + (start + r) * items.stride, x + (start + r) * items.stride + dim, packed.data() + r * dim);
            const std::size_t keep = (w + factor - 1) / factor;
            pool_tokens(packed.data(), w, dim, keep, out.data() + written * dim);
            written += keep;
        }
        std::uint8_t* dst = b.pooled.data() + std::size_t(b.pooled_offsets[d]) * in_row;
        if (input_dtype() == DType::f16) {
            half_bits* h = reinterpret_cast<half_bits*>(dst);
            for (std::size_t i = 0; i < out.size(); ++i) h[i] = float_to_half(out[i]);
        } else {
            std::memcpy(dst, out.data(), out.size() * sizeof(float));
        }
    });
    MultiVectorsView& v = b.pooled_view;
    v.tokens = b.pooled.data();
    v.offsets = b.pooled_offsets.data();
    v.count = docs.count;
    v.rows = rows;
    v.dim = v.row_stride = dim;
    v.dtype = input_dtype();
    b.pooled_used = true;
}

MultiVectorIndex::Batch MultiVectorIndex::prepare(const MultiVectorsView& given, std::size_t threads) {
    given.validate("docs");
    if (given.dim != params_.dim)
        fail_argument("docs: tokens have dimension " + std::to_string(given.dim) + ", the index " + std::to_string(params_.dim));
    if (given.dtype != input_dtype())
        fail_argument(std::string("docs: tokens must be ") + dtype_name(input_dtype()) + " (for the token storage " +
                      dtype_name(params_.token_storage) + ")");
    if (!given.flat()) fail_argument("docs: the index takes one array of token rows");
    fail_non_finite("docs", first_non_finite_token(given));
    Batch b;
    const kernels::KernelTable& kern = kernels::active_kernels();
    if (params_.pool_factor > 1) pool(given, b, threads);
    const MultiVectorsView& docs = b.stored(given);
    b.count = docs.count;
    b.rows = docs.rows;
    b.offsets.assign(1, 0);
    for (std::size_t d = 0; d < b.count; ++d) b.offsets.push_back(b.offsets.back() + std::int64_t(docs.item_length(d)));
    if (converts()) {  // the rows as stored, made now: an add changes nothing before it commits
        b.converted.resize(b.rows * row_bytes());
        if (params_.token_storage == DType::i8) b.scales.resize(b.rows);
        quantize_tokens(docs, params_.token_storage, b.converted.data(), b.scales.data(), threads);
    }
    const std::size_t vdim = params_.vector_dim(), vbytes = vdim * dtype_size(params_.vector_storage);
    b.vectors.resize(b.count * vbytes);
    // Candidate vectors (float32, then to the graph's storage).
    std::vector<float> vectors(b.count * vdim);
    if (params_.candidates == CandidateKind::fde) {
        data_.fde->encode_documents(docs, vectors.data(), threads);
    } else {
        const std::size_t workers = resolve_threads(threads, b.count);
        std::vector<AlignedVector<float>> scratch(workers);
        parallel_for(b.count, threads, [&](std::size_t d, std::size_t worker) {
            const std::size_t n = docs.item_length(d);
            const ItemRows items = float_items(docs, d, d + 1, scratch[worker], kern);
            const float* x = items.item(d);
            float* out = vectors.data() + d * vdim;
            for (std::size_t t = 0; t < n; ++t)
                for (std::size_t k = 0; k < vdim; ++k) out[k] += x[t * items.stride + k];
            for (std::size_t k = 0; k < vdim; ++k) out[k] /= float(n);
        });
    }
    for (std::size_t i = 0; i < vectors.size(); ++i)
        if (!std::isfinite(vectors[i]))
            fail_argument("docs: document " + std::to_string(i / vdim) + " gives a candidate vector that is not finite");
    if (params_.vector_storage == DType::f16) {
        half_bits* out = reinterpret_cast<half_bits*>(b.vectors.data());
        for (std::size_t i = 0; i < vectors.size(); ++i) out[i] = float_to_half(vectors[i]);
    } else {
        std::memcpy(b.vectors.data(), vectors.data(), vectors.size() * sizeof(float));
    }
    fault_point();

    // Centroids: trained (again) when the index grows enough (choose_centroids), over a sample of
    // all tokens; then every token gets a code. Also at the most centroids, whenever the live
    // tokens reach 4x those of the last training: centroids trained on the first batches of a
    // streamed build know only the clusters those hold (clusters they lack then share centroids,
    // and stage 2 ranks the documents of those lists worse).
    const std::size_t stored = std::size_t(data_.offsets[data_.slots]);
    const std::size_t have = data_.centroids.count(), live = stored + b.rows - data_.deleted_tokens;
    const std::size_t want = choose_centroids(params_.centroids, params_.centroid_levels, stored + b.rows);
    const bool grown = have && want >= have && live / 4 >= data_.centroids.trained_tokens();
    const bool retrain = (want > have && (want >= 4 * have || want == params_.centroids)) || grown;
    const MultiVectorsView old = token_view();
    // Rows [r0, r1) of the stored tokens followed by the new ones as float32: one conversion call
    // for each run.
    auto token_rows = [&](std::size_t r0, std::size_t r1, float* out) {
        for (std::size_t lo = r0; lo < std::min(r1, stored);) {  // a run of each stored part
            const std::size_t hi = std::min({r1, stored, data_.tokens.part_end(lo)});
            convert_rows(old, data_.tokens.row(lo), lo, hi - lo, out + (lo - r0) * params_.dim, kern);
            lo = hi;
        }
        const std::size_t lo = std::max(r0, stored);
        if (lo < r1) {
            const char* at = static_cast<const char*>(docs.tokens) + (lo - stored) * docs.row_stride * dtype_size(docs.dtype);
            convert_rows(docs, at, lo - stored, r1 - lo, out + (lo - r0) * params_.dim, kern);
        }
    };
    if (retrain) {
        const std::size_t total = stored + b.rows;
        const std::size_t sample = std::min(live, 32 * params_.centroid_levels * want);
        auto live_row = [&](std::size_t r) {  // not a deleted document's (kept until compacted or saved)
            if (r >= stored) return true;
            const std::int64_t* after =
                std::upper_bound(data_.offsets.begin(), data_.offsets.begin() + data_.slots + 1, std::int64_t(r));
            return test_bit(data_.live.data(), std::size_t(after - data_.offsets.begin()) - 1);
        };
        // A seeded sample of live rows without replacement, in random order (partial Fisher-Yates
        // over row numbers, passing over deleted ones).
        std::vector<std::size_t> order(total);
        std::iota(order.begin(), order.end(), std::size_t(0));
        const std::uint64_t key = random::stream_key(params_.seed, std::uint64_t(9) << 32);
        for (std::size_t i = 0, taken = 0; taken < sample && i < total; ++i) {
            const std::size_t j = std::min(total - 1, i + std::size_t(random::unit(random::word(key, i)) * double(total - i)));
            std::swap(order[i], order[j]);
            if (live_row(order[i])) order[taken++] = order[i];
        }
        std::vector<float> x(sample * params_.dim);
        for (std::size_t i = 0; i < sample; ++i) token_rows(order[i], order[i] + 1, x.data() + i * params_.dim);
        b.centroids = TokenCentroids::train(x.data(), sample, params_.dim, params_.dim, want, params_.centroid_levels,
                                            params_.kmeans_iterations, params_.seed, threads);
        b.centroids.set_trained_tokens(live);
    }
    const TokenCentroids& centroids = retrain ? b.centroids : data_.centroids;
    if (!centroids.empty()) {
        const std::size_t first = retrain ? 0 : stored, total = stored + b.rows, levels = centroids.levels();
        b.codes.resize((total - first) * levels);
        constexpr std::size_t chunk = 4096;
        const std::size_t tasks = (total - first + chunk - 1) / chunk;
        std::vector<AlignedVector<float>> scratch(resolve_threads(threads, tasks));
        parallel_for(tasks, threads, [&](std::size_t task, std::size_t worker) {
            const std::size_t r0 = first + task * chunk, r1 = std::min(total, r0 + chunk);
            AlignedVector<float>& rows = scratch[worker];
            rows.resize((r1 - r0) * params_.dim);
            token_rows(r0, r1, rows.data());
            centroids.assign(rows.data(), r1 - r0, params_.dim, b.codes.data() + (r0 - first) * levels, 1);
        });
        if (retrain) {  // the new centroids' lists over the stored documents and these
            AlignedVector<std::int64_t> all(data_.offsets.data(), data_.offsets.data() + data_.slots + 1);
            for (std::size_t d = 0; d < b.count; ++d) all.push_back(std::int64_t(stored) + b.offsets[d + 1]);
            b.lists.build(centroids.count(), b.codes.data(), levels, all.data(), all.size() - 1);
        }
    }
    return b;
}

void MultiVectorIndex::append(const MultiVectorsView& given, Batch& b, const std::int64_t* ids,
                              const std::vector<ColumnBatch>& columns, std::size_t threads, bool replace) {
    const MultiVectorsView& docs = b.stored(given);
    const std::size_t stored = std::size_t(data_.offsets[data_.slots]);
    const std::size_t slots = data_.slots + b.count;
    // Room for everything first (may throw; changes nothing that shows). The rows go into a
    // block of their own or the room left in the last one (stored rows never move).
    TokenRows& tokens = data_.tokens;
    tokens.reserve(b.rows);
    reserve_growing(data_.item_rows, slots);
    AlignedVector<std::int64_t>& offsets = data_.offsets.own();
    AlignedVector<std::int64_t>& user_ids = data_.ids.own();
    // Growing geometrically: adding in small batches stays linear.
    AlignedVector<float>* scales = params_.token_storage == DType::i8 ? &data_.scales.own() : nullptr;
    if (scales) reserve_growing(*scales, stored + b.rows);
    reserve_growing(offsets, slots + 1);
    reserve_growing(user_ids, slots);
    AlignedVector<std::uint16_t>* codes = nullptr;
    if (!b.centroids.empty() || !data_.centroids.empty()) {
        codes = &data_.codes.own();
        reserve_growing(*codes, (stored + b.rows) * (b.centroids.empty() ? data_.centroids : b.centroids).levels());
    }
    if (b.centroids.empty() && codes) data_.lists.reserve(b.codes.data(), data_.centroids.levels(), b.offsets.data(), b.count);
    reserve_growing(data_.live, bit_words(slots));
    fault_point();
    // New ids enter the map now (node allocations may throw), and leave it again on failure.
    std::size_t mapped = 0;
    try {
        if (!replace)
            for (; mapped < b.count; ++mapped) data_.slot_of.emplace(ids[mapped], std::uint32_t(data_.slots + mapped));
        // The graph's add: all-or-nothing itself, and the last step that can fail.
        std::vector<std::int64_t> graph_ids(b.count);
        std::iota(graph_ids.begin(), graph_ids.end(), std::int64_t(data_.slots));
        data_.graph->add(b.vectors.data(), graph_ids.data(), b.count, columns, threads);
    } catch (...) {
        for (std::size_t i = 0; i < mapped; ++i) data_.slot_of.erase(ids[i]);
        throw;
    }
    // Commit: within reserved capacity, nothing below throws.
    if (converts()) {  // one run of rows, in order
        tokens.append(b.converted.data(), b.converted.size());
        if (scales) scales->insert(scales->end(), b.scales.begin(), b.scales.end());
    }
    for (std::size_t d = 0; d < b.count; ++d) {
        const std::size_t n = docs.item_length(d);
        const auto* src = static_cast<const std::uint8_t*>(docs.item_data(d));
        if (!converts()) {  // the rows as given (converted ones went in above)
            if (docs.row_stride == docs.dim) {
                tokens.append(src, n * row_bytes());
            } else {
                for (std::size_t r = 0; r < n; ++r) tokens.append(src + r * docs.row_stride * dtype_size(docs.dtype), row_bytes());
            }
        }
        offsets.push_back(offsets.back() + std::int64_t(n));
        user_ids.push_back(ids[d]);
        if (replace) data_.slot_of.find(ids[d])->second = std::uint32_t(data_.slots + d);
    }
    if (!b.centroids.empty()) {
        std::swap(data_.centroids, b.centroids);
        data_.lists = std::move(b.lists);
        codes->assign(b.codes.begin(), b.codes.end());  // every token's (fits: reserved)
    } else if (codes) {
        codes->insert(codes->end(), b.codes.begin(), b.codes.end());
        data_.lists.append(b.codes.data(), data_.centroids.levels(), b.offsets.data(), b.count, std::uint32_t(data_.slots));
    }
    data_.live.resize(bit_words(slots), 0);
    for (std::size_t s = data_.slots; s < slots; ++s) set_bit(data_.live.data(), s);
    data_.slots = slots;
    data_.live_count += b.count;
    point_items();
}

void MultiVectorIndex::add(const MultiVectorsView& docs, const std::int64_t* ids, const std::vector<ColumnBatch>& columns,
                           std::size_t threads) {
    std::unique_lock<ForkSafeSharedMutex> lock(mutex_);
    check_ids(ids, docs.count, false);
    if (data_.slots + docs.count > std::size_t(UINT32_MAX)) fail_argument("docs: an index holds fewer than 2^32 documents");
    Batch b = prepare(docs, threads);
    append(docs, b, ids, columns, threads, false);
}

void MultiVectorIndex::update(const MultiVectorsView& docs, const std::int64_t* ids, const std::vector<ColumnBatch>& columns,
                              std::size_t threads) {
    std::unique_lock<ForkSafeSharedMutex> lock(mutex_);
    check_ids(ids, docs.count, true);
    if (data_.slots + docs.count > std::size_t(UINT32_MAX)) fail_argument("docs: an index holds fewer than 2^32 documents");
    std::vector<std::int64_t> old(docs.count);
    for (std::size_t i = 0; i < docs.count; ++i) old[i] = data_.slot_of.at(ids[i]);
    Batch b = prepare(docs, threads);
    append(docs, b, ids, columns, threads, true);  // the ids now name the new slots
    retire(old);
    compact_if_due(threads);
}

void MultiVectorIndex::remove(const std::int64_t* ids, std::size_t n, std::size_t threads) {
    std::unique_lock<ForkSafeSharedMutex> lock(mutex_);
    check_ids(ids, n, true);
    std::vector<std::int64_t> slots(n);
    for (std::size_t i = 0; i < n; ++i) slots[i] = data_.slot_of.at(ids[i]);
    for (std::size_t i = 0; i < n; ++i) data_.slot_of.erase(ids[i]);
    retire(slots);
    compact_if_due(threads);
}

void MultiVectorIndex::retire(const std::vector<std::int64_t>& slots) noexcept {
    data_.graph->remove(slots.data(), slots.size());  // slots known and distinct: cannot fail
    for (std::int64_t s : slots) {
        clear_bit(data_.live.data(), std::size_t(s));
        data_.deleted_tokens += std::size_t(data_.offsets[s + 1] - data_.offsets[s]);
    }
    data_.live_count -= slots.size();
}

void MultiVectorIndex::compact_if_due(std::size_t threads) noexcept {
    const std::size_t stored = std::size_t(data_.offsets[data_.slots]);
    const std::size_t pending = data_.deleted_tokens - data_.deleted_in_file;  // what a compaction would drop
    if (!pending || double(pending) < params_.compact_fraction * double(stored)) return;
    // The change that called this has succeeded: its compaction runs to the end (no Ctrl-C), and
    // one that fails (memory) leaves the index as valid as before, to compact at a later change.
    try {
        const InterruptibleScope whole(false);
        compact_locked(threads);
    } catch (const std::exception&) {
    }
}

void MultiVectorIndex::compact(std::size_t threads) {
    std::unique_lock<ForkSafeSharedMutex> lock(mutex_);
    compact_locked(threads);
}

void MultiVectorIndex::compact_locked(std::size_t threads) {
    // New token, code and offset arrays without the deleted slots' tokens, built aside (may
    // throw), then the graph's compaction (all-or-nothing), then the swap. Rows in a mapped file
    // stay as they are, deleted ones too: copying them would read the file into memory (the
    // slots before `kept_slots` have their rows there, the codes and scales of those rows stay).
    const std::size_t kept = data_.tokens.mapped_rows();
    std::size_t kept_slots = 0, deleted_kept = 0;
    for (; kept_slots < data_.slots && std::size_t(data_.offsets[kept_slots + 1]) <= kept; ++kept_slots)
        if (!test_bit(data_.live.data(), kept_slots))
            deleted_kept += std::size_t(data_.offsets[kept_slots + 1] - data_.offsets[kept_slots]);
    const std::size_t live_rest = std::size_t(data_.offsets[data_.slots]) - kept - (data_.deleted_tokens - deleted_kept);
    const bool with_scales = params_.token_storage == DType::i8;
    const bool with_codes = !data_.centroids.empty();
    const std::size_t levels = with_codes ? data_.centroids.levels() : 0;
    AlignedVector<std::uint8_t> tokens;
    AlignedVector<std::int64_t> offsets(data_.offsets.data(), data_.offsets.data() + kept_slots + 1);
    AlignedVector<std::uint16_t> codes;
    AlignedVector<float> scales;
    tokens.reserve(live_rest * row_bytes());
    offsets.reserve(data_.slots + 1);
    if (with_scales) {
        scales.reserve(kept + live_rest);
        scales.assign(data_.scales.data(), data_.scales.data() + kept);
    }
    if (with_codes) {
        codes.reserve((kept + live_rest) * levels);
        codes.assign(data_.codes.data(), data_.codes.data() + kept * levels);
    }
    for (std::size_t s = kept_slots; s < data_.slots; ++s) {
        const std::size_t first = std::size_t(data_.offsets[s]), last = std::size_t(data_.offsets[s + 1]);
        if (test_bit(data_.live.data(), s)) {
            const std::uint8_t* p = data_.tokens.row(first);
            tokens.insert(tokens.end(), p, p + (last - first) * row_bytes());
            if (with_scales) scales.insert(scales.end(), data_.scales.data() + first, data_.scales.data() + last);
            if (with_codes)
                codes.insert(codes.end(), data_.codes.data() + first * levels, data_.codes.data() + last * levels);
            offsets.push_back(offsets.back() + std::int64_t(last - first));
        } else {
            offsets.push_back(offsets.back());
        }
    }
    CentroidLists lists;
    if (with_codes) lists.build(data_.centroids.count(), codes.data(), levels, offsets.data(), data_.slots, data_.live.data());
    TokenRows rows = data_.tokens.with_mapped_rows(std::move(tokens));
    data_.item_rows.reserve(data_.slots);
    fault_point();
    data_.graph->compact(threads);
    data_.tokens = std::move(rows);
    if (with_scales) data_.scales = Buffer<float>(std::move(scales));
    data_.offsets = Buffer<std::int64_t>(std::move(offsets));
    if (with_codes) {
        data_.codes = Buffer<std::uint16_t>(std::move(codes));
        data_.lists = std::move(lists);
    }
    data_.item_rows.clear();
    point_items();
    data_.deleted_tokens = data_.deleted_in_file = deleted_kept;
}

}  // namespace latefold
