// MultiVectorIndex persistence: its parameters, token store and ids under its prefix, its parts
// (graph, centroids, FDE) under longer ones; on load everything a search follows is validated.
#include <algorithm>
#include <cmath>
#include <mutex>
#include <type_traits>

#include "latefold/index.h"

namespace latefold {

Json MultiVectorIndex::describe_params() const {
    const IndexParams& p = params_;
    Json out = Json::object()
                   .set("dim", static_cast<unsigned long long>(p.dim))
                   .set("candidates", candidate_kind_name(p.candidates))
                   .set("token_storage", dtype_name(p.token_storage))
                   .set("vector_storage", dtype_name(p.vector_storage))
                   .set("degree", static_cast<unsigned long long>(p.degree))
                   .set("ef_construction", static_cast<unsigned long long>(p.ef_construction))
                   .set("centroids", static_cast<unsigned long long>(p.centroids))
                   .set("centroid_levels", static_cast<unsigned long long>(p.centroid_levels))
                   .set("kmeans_iterations", static_cast<unsigned long long>(p.kmeans_iterations))
                   .set("seed", static_cast<unsigned long long>(p.seed))
                   .set("pool_factor", static_cast<unsigned long long>(p.pool_factor))
                   .set("compact_fraction", p.compact_fraction);
    if (data_.fde) out.set("fde", data_.fde->params());
    return out;
}

void MultiVectorIndex::write(io::Writer& writer, const std::string& prefix) const {
    const Data& d = data_;
    const std::size_t n = d.slots, dim = params_.dim;
    // The file holds no deleted row: the live slots' rows in spans of consecutive ones, and the
    // offsets they take there (a deleted slot's are empty).
    std::vector<std::pair<std::size_t, std::size_t>> spans;  // rows [first, last)
    AlignedVector<std::int64_t> offsets(n + 1, 0);
    for (std::size_t s = 0; s < n; ++s) {
        const std::size_t first = std::size_t(d.offsets[s]), last = std::size_t(d.offsets[s + 1]);
        const bool saved = test_bit(d.live.data(), s) && last > first;
        offsets[s + 1] = offsets[s] + (saved ? std::int64_t(last - first) : 0);
        if (!saved) continue;
        if (!spans.empty() && spans.back().second == first)
            spans.back().second = last;
        else
            spans.emplace_back(first, last);
    }
    const std::size_t rows = std::size_t(offsets[n]);
    // The spans' rows of an array in one part, `per_row` elements a row.
    auto runs_of = [&](auto* data, std::size_t per_row) {
        std::vector<std::pair<const std::remove_pointer_t<decltype(data)>*, std::size_t>> runs;
        for (const auto& [first, last] : spans) runs.emplace_back(data + first * per_row, (last - first) * per_row);
        return runs;
    };
    writer.object(prefix, Json::object().set("params", describe_params()));
    auto tokens = [&](auto type) {  // as elements of the storage's type
        using T = decltype(type);
        std::vector<std::pair<const T*, std::size_t>> runs;
        for (const auto& [first, last] : spans)
            for (std::size_t r = first; r < last;) {
                const std::size_t end = std::min(last, d.tokens.part_end(r));
                runs.emplace_back(reinterpret_cast<const T*>(d.tokens.row(r)), (end - r) * dim);
                r = end;
            }
        writer.array(prefix + "/tokens", runs, {rows, dim});
    };
    switch (params_.token_storage) {  // 8- and 16-bit types as their bits
        case DType::f32: tokens(float()); break;
        case DType::f16:
        case DType::bf16: tokens(std::uint16_t()); break;
        case DType::i8:
            tokens(std::uint8_t());
            writer.array(prefix + "/token_scales", runs_of(d.scales.data(), 1), {rows});
            break;
    }
    writer.array(prefix + "/offsets", std::move(offsets), {n + 1});
    writer.array(prefix + "/ids", d.ids.data(), {n});
    writer.array(prefix + "/live_bits", reinterpret_cast<const std::uint8_t*>(d.live.data()), {bit_words(n) * 8});
    if (!d.centroids.empty()) {
        const std::size_t levels = d.centroids.levels();
        writer.array(prefix + "/codes", runs_of(d.codes.data(), levels), {rows, levels});
        d.centroids.write(writer, prefix + "/centroids");
    }
    if (d.fde) d.fde->write(writer, prefix + "/fde");
    d.graph->write(writer, prefix + "/graph");
}

std::unique_ptr<MultiVectorIndex> MultiVectorIndex::read(const io::Reader& reader, const std::string& prefix,
                                                         bool borrow) {
    std::unique_ptr<MultiVectorIndex> index;
    try {
        const Json& p = reader.object(prefix).at("params");
        IndexParams params;
        params.dim = std::size_t(p.at("dim").as_uint());
        params.candidates = candidate_kind_from_name(p.at("candidates").as_string());
        params.token_storage = dtype_from_name(p.at("token_storage").as_string());
        params.vector_storage = dtype_from_name(p.at("vector_storage").as_string());
        params.degree = std::size_t(p.at("degree").as_uint());
        params.ef_construction = std::size_t(p.at("ef_construction").as_uint());
        params.centroids = std::size_t(p.at("centroids").as_uint());
        params.centroid_levels = std::size_t(p.at("centroid_levels").as_uint());
        params.kmeans_iterations = std::size_t(p.at("kmeans_iterations").as_uint());
        params.seed = p.at("seed").as_uint();
        params.pool_factor = std::size_t(p.at("pool_factor").as_uint());
        params.compact_fraction = p.at("compact_fraction").as_number();
        if (params.candidates == CandidateKind::fde) params.fde = FdeEncoder::read(reader, prefix + "/fde").config();
        index = std::make_unique<MultiVectorIndex>(params);
    } catch (const std::logic_error& error) {
        reader.corrupt("index description: " + std::string(error.what()));
    }
    Data& d = index->data_;
    const std::size_t dim = index->params_.dim;
    const std::vector<std::size_t> id_shape = reader.shape(prefix + "/ids");
    const std::vector<std::size_t> token_shape = reader.shape(prefix + "/tokens");
    if (id_shape.size() != 1 || token_shape.size() != 2) reader.corrupt("ids or tokens");
    const std::size_t n = id_shape[0], rows = token_shape[0];
    if (n > std::size_t(UINT32_MAX)) reader.corrupt("too many documents");

    d.offsets = reader.array<std::int64_t>(prefix + "/offsets", {n + 1}, borrow);
    if (d.offsets[0] != 0 || std::uint64_t(d.offsets[n]) != rows) reader.corrupt("offsets");
    for (std::size_t s = 0; s < n; ++s)
        if (d.offsets[s + 1] < d.offsets[s]) reader.corrupt("offsets of document slot " + std::to_string(s));
    const std::uint8_t* tokens = nullptr;
    switch (index->params_.token_storage) {
        case DType::f32:
            tokens = reinterpret_cast<const std::uint8_t*>(reader.array<float>(prefix + "/tokens", {rows, dim}, true).data());
            break;
        case DType::f16:
        case DType::bf16:
            tokens = reinterpret_cast<const std::uint8_t*>(reader.array<std::uint16_t>(prefix + "/tokens", {rows, dim}, true).data());
            break;
        case DType::i8:
            tokens = reader.array<std::uint8_t>(prefix + "/tokens", {rows, dim}, true).data();
            d.scales = reader.array<float>(prefix + "/token_scales", {rows}, borrow);
            for (std::size_t r = 0; r < rows; ++r)
                if (!std::isfinite(d.scales[r])) reader.corrupt("token scale " + std::to_string(r));
            break;
    }
    const std::size_t token_bytes = rows * index->row_bytes();
    d.tokens = TokenRows(borrow ? Buffer<std::uint8_t>::borrow(tokens, token_bytes, reader.file())
                                : Buffer<std::uint8_t>(AlignedVector<std::uint8_t>(tokens, tokens + token_bytes)),
                         index->row_bytes(), borrow && reader.file()->mapped());
    d.ids = reader.array<std::int64_t>(prefix + "/ids", {n}, borrow);
    const Buffer<std::uint8_t> bits = reader.array<std::uint8_t>(prefix + "/live_bits", {bit_words(n) * 8}, false);
    d.live.assign(bit_words(n), 0);
    std::copy(bits.begin(), bits.end(), reinterpret_cast<std::uint8_t*>(d.live.data()));
    if (n % 64 && d.live.back() >> (n % 64)) reader.corrupt("live flags");
    d.slot_of.reserve(n);
    for (std::size_t s = 0; s < n; ++s) {
        const std::size_t length = std::size_t(d.offsets[s + 1] - d.offsets[s]);
        if (test_bit(d.live.data(), s)) {
            if (!length) reader.corrupt("document slot " + std::to_string(s) + " has no tokens");
            if (!d.slot_of.emplace(d.ids[s], std::uint32_t(s)).second)
                reader.corrupt("id " + std::to_string(d.ids[s]) + " repeated");
            ++d.live_count;
        } else {
            d.deleted_tokens += length;
        }
    }
    d.slots = n;

    if (reader.has_object(prefix + "/centroids")) {
        d.centroids = TokenCentroids::read(reader, prefix + "/centroids", dim, borrow);
        if (!d.centroids.trained_tokens())  // a file that does not say: counted from now
            d.centroids.set_trained_tokens(std::max<std::size_t>(1, rows - d.deleted_tokens));
        const std::size_t levels = d.centroids.levels(), count = d.centroids.count();
        d.codes = reader.array<std::uint16_t>(prefix + "/codes", {rows, levels}, borrow);
        const std::uint16_t* codes = d.codes.data();
        for (std::size_t r = 0; r < rows; ++r)  // a code indexes the table's rows of its level
            for (std::size_t l = 0; l < levels; ++l)
                if (std::size_t(codes[r * levels + l]) - l * count >= count)  // below l * count: wraps
                    reader.corrupt("centroid code of token " + std::to_string(r));
        d.lists.build(count, codes, levels, d.offsets.data(), n, d.live.data());
    }
    d.graph = GraphIndex::read(reader, prefix + "/graph", borrow);
    const GraphParams& g = d.graph->params();
    if (g.dim != index->params_.vector_dim() || g.storage != index->params_.vector_storage ||
        g.degree != index->params_.degree || d.graph->slots() != n || d.graph->size() != d.live_count)
        reader.corrupt("the graph does not match the documents");
    for (std::size_t s = 0; s < n; ++s)
        if (test_bit(d.live.data(), s) && !d.graph->contains(std::int64_t(s)))
            reader.corrupt("the graph does not hold document slot " + std::to_string(s));
    return index;
}

void MultiVectorIndex::save(const std::string& path) const {
    std::shared_lock<ForkSafeSharedMutex> lock(mutex_);  // the arrays stay as described until written
    io::Writer writer("multivector");
    write(writer, "index");
    writer.save(path);
}

std::unique_ptr<MultiVectorIndex> MultiVectorIndex::load(const std::string& path, bool mmap, bool verify) {
    return read(io::Reader(path, "multivector", verify), "index", mmap);
}

std::string MultiVectorIndex::to_bytes() const {
    std::shared_lock<ForkSafeSharedMutex> lock(mutex_);
    io::Writer writer("multivector");
    write(writer, "index");
    return writer.to_bytes();
}

std::unique_ptr<MultiVectorIndex> MultiVectorIndex::from_bytes(const void* data, std::size_t size) {
    return read(io::Reader(std::make_shared<const io::FileBytes>(data, size), "multivector"), "index", true);
}

}  // namespace latefold
