// Graph index persistence: parameters and small scalars in the description, the arrays streamed
// from the index's own buffers, and on load every array validated before the index is used.
#include <algorithm>
#include <cmath>
#include <mutex>

#include "latefold/graph.h"

namespace latefold {

namespace {

ColumnKind column_kind_from_name(const std::string& name) {
    for (ColumnKind kind : {ColumnKind::int64, ColumnKind::float64, ColumnKind::labels})
        if (name == column_kind_name(kind)) return kind;
    fail_argument("unknown column kind '" + name + "'");
}

std::string column_section(const std::string& prefix, std::size_t column, const char* part) {
    return prefix + "/column" + std::to_string(column) + "_" + part;
}

}  // namespace

Json GraphIndex::describe_params() const {
    return Json::object()
        .set("dim", static_cast<unsigned long long>(params_.dim))
        .set("metric", metric_name(params_.metric))
        .set("storage", dtype_name(params_.storage))
        .set("degree", static_cast<unsigned long long>(params_.degree))
        .set("ef_construction", static_cast<unsigned long long>(params_.ef_construction))
        .set("alpha", double(params_.alpha));
}

void GraphIndex::write(io::Writer& writer, const std::string& prefix) const {
    const Data& d = data_;
    const std::size_t n = d.slots;
    Json columns = Json::array();
    for (const AttributeStore::Column& c : d.attributes.columns())
        columns.push(Json::array().push(c.name).push(column_kind_name(c.kind)));
    writer.object(prefix, Json::object()
                              .set("params", describe_params())
                              .set("entry", static_cast<unsigned long long>(d.entry))
                              .set("columns", std::move(columns)));
    if (params_.storage == DType::f32)
        writer.array(prefix + "/vectors", reinterpret_cast<const float*>(d.rows.data()), {n, params_.dim});
    else
        writer.array(prefix + "/vectors", reinterpret_cast<const half_bits*>(d.rows.data()), {n, params_.dim});
    writer.array(prefix + "/norms", d.norms.data(), {n});
    writer.array(prefix + "/ids", d.ids.data(), {n});
    writer.array(prefix + "/live_bits", reinterpret_cast<const std::uint8_t*>(d.live.data()), {bit_words(n) * 8});
    writer.array(prefix + "/degrees", d.degrees.data(), {n});
    writer.array(prefix + "/edges", d.edges.data(), {n, params_.degree});
    writer.array(prefix + "/pivots", d.pivots.data(), {d.pivots.size()});
    for (std::size_t i = 0; i < d.attributes.columns().size(); ++i) {
        const AttributeStore::Column& c = d.attributes.columns()[i];
        switch (c.kind) {
            case ColumnKind::int64: writer.array(column_section(prefix, i, "values"), c.ints.data(), {n}); break;
            case ColumnKind::float64: writer.array(column_section(prefix, i, "values"), c.floats.data(), {n}); break;
            case ColumnKind::labels:
                writer.array(column_section(prefix, i, "offsets"), c.label_offsets.data(), {n + 1});
                writer.array(column_section(prefix, i, "labels"), c.labels.data(), {c.labels.size()});
                break;
        }
    }
    if (d.quantizer) {
        writer.array(prefix + "/codes", d.codes.data(), {n, d.quantizer->code_size()});
        d.quantizer->write(writer, prefix + "/pq");
    }
}

std::unique_ptr<GraphIndex> GraphIndex::read(const io::Reader& reader, const std::string& prefix, bool borrow) {
    const Json& description = reader.object(prefix);
    std::unique_ptr<GraphIndex> index;
    std::vector<std::pair<std::string, ColumnKind>> column_kinds;
    std::uint64_t entry = 0;
    try {
        const Json& p = description.at("params");
        GraphParams params;
        params.dim = std::size_t(p.at("dim").as_uint());
        params.metric = metric_from_name(p.at("metric").as_string());
        params.storage = dtype_from_name(p.at("storage").as_string());
        params.degree = std::size_t(p.at("degree").as_uint());
        params.ef_construction = std::size_t(p.at("ef_construction").as_uint());
        params.alpha = float(p.at("alpha").as_number());
        index = std::make_unique<GraphIndex>(params);
        entry = description.at("entry").as_uint();
        for (const Json& column : description.at("columns").items()) {
            if (column.items().size() != 2) throw std::invalid_argument("columns");
            column_kinds.emplace_back(column.items()[0].as_string(), column_kind_from_name(column.items()[1].as_string()));
        }
    } catch (const std::invalid_argument& error) {
        reader.corrupt("graph description: " + std::string(error.what()));
    }
    GraphIndex& g = *index;
    Data& d = g.data_;
    const std::size_t R = g.params_.degree, dim = g.params_.dim;
    const std::vector<std::size_t> id_shape = reader.shape(prefix + "/ids");
    if (id_shape.size() != 1) reader.corrupt("ids");
    const std::size_t n = id_shape[0];
    if (n > std::size_t(UINT32_MAX)) reader.corrupt("too many vectors");
    if (n && entry >= n) reader.corrupt("entry point");

    if (reader.has_object(prefix + "/pq")) {
        ProductQuantizer pq = ProductQuantizer::read(reader, prefix + "/pq");
        if (!pq.trained() || pq.dim() != dim || pq.metric() != g.params_.metric) reader.corrupt("quantizer");
        d.quantizer = std::make_unique<ProductQuantizer>(std::move(pq));
    }
    // The rows as bytes of the storage type, borrowed from the mapping and copied once unless kept.
    const std::uint8_t* rows =
        g.params_.storage == DType::f32
            ? reinterpret_cast<const std::uint8_t*>(reader.array<float>(prefix + "/vectors", {n, dim}, true).data())
            : reinterpret_cast<const std::uint8_t*>(reader.array<half_bits>(prefix + "/vectors", {n, dim}, true).data());
    d.rows = borrow ? Buffer<std::uint8_t>::borrow(rows, n * g.row_bytes(), reader.file())
                    : Buffer<std::uint8_t>(AlignedVector<std::uint8_t>(rows, rows + n * g.row_bytes()));
    d.ids = reader.array<std::int64_t>(prefix + "/ids", {n}, borrow);
    d.degrees = reader.array<std::uint32_t>(prefix + "/degrees", {n}, borrow);
    d.edges = reader.array<std::uint32_t>(prefix + "/edges", {n, R}, borrow);
    if (d.quantizer)
        d.codes = reader.array<std::uint8_t>(prefix + "/codes", {n, d.quantizer->code_size()}, borrow);
    const std::vector<std::size_t> pivot_shape = reader.shape(prefix + "/pivots");
    if (pivot_shape.size() != 1 || pivot_shape[0] > max_pivots) reader.corrupt("pivots");
    const Buffer<std::uint32_t> pivots = reader.array<std::uint32_t>(prefix + "/pivots", pivot_shape, false);
    d.pivots.assign(pivots.begin(), pivots.end());

    // Liveness: a bitset (version 2) or a byte per slot (version 1).
    d.live.assign(bit_words(n), 0);
    if (reader.has_array(prefix + "/live_bits")) {
        const Buffer<std::uint8_t> bits = reader.array<std::uint8_t>(prefix + "/live_bits", {bit_words(n) * 8}, false);
        std::copy(bits.begin(), bits.end(), reinterpret_cast<std::uint8_t*>(d.live.data()));
        if (n % 64 && d.live.back() >> (n % 64)) reader.corrupt("live flags");
    } else {
        const Buffer<std::uint8_t> flags = reader.array<std::uint8_t>(prefix + "/live", {n}, true);
        for (std::size_t p = 0; p < n; ++p) {
            if (flags[p] > 1) reader.corrupt("live flags");
            if (flags[p]) set_bit(d.live.data(), p);
        }
    }

    // Everything a search follows must point inside the index.
    for (std::uint32_t p : d.pivots)
        if (p >= n) reader.corrupt("pivots");
    d.slot_of.reserve(n);
    for (std::size_t p = 0; p < n; ++p) {
        const std::uint32_t degree = d.degrees[p];
        if (degree > R) reader.corrupt("degree of slot " + std::to_string(p));
        const std::uint32_t* e = d.edges.data() + p * R;
        for (std::uint32_t j = 0; j < degree; ++j)
            if (e[j] >= n) reader.corrupt("edge of slot " + std::to_string(p));
        if (degree) ++d.entry_chosen_at;
        if (test_bit(d.live.data(), p)) {
            ++d.live_count;
            if (!d.slot_of.emplace(d.ids[p], std::uint32_t(p)).second)
                reader.corrupt("id " + std::to_string(d.ids[p]) + " repeated");
        }
    }
    d.slots = n;
    d.entry = std::uint32_t(entry);

    // Squared norms: stored (version 2), or computed from the rows (version 1).
    if (reader.has_array(prefix + "/norms")) {
        d.norms = reader.array<float>(prefix + "/norms", {n}, borrow);
    } else {
        AlignedVector<float> norms(n);
        const RowStore store = g.rows();
        std::vector<float> x(dim);
        for (std::uint32_t p = 0; p < n; ++p) {
            store.to_float(p, x.data());
            store.dots(x.data(), &p, 1, &norms[p]);
            if (!std::isfinite(norms[p])) reader.corrupt("vector " + std::to_string(p) + " is not finite");
        }
        d.norms = Buffer<float>(std::move(norms));
    }

    // Attribute columns: copied into the store, which builds its indexes.
    std::vector<ColumnBatch> batch;
    std::vector<Buffer<std::int64_t>> ints;
    std::vector<Buffer<double>> floats;
    ints.reserve(2 * column_kinds.size());
    floats.reserve(column_kinds.size());
    for (std::size_t i = 0; i < column_kinds.size(); ++i) {
        ColumnBatch b;
        b.name = column_kinds[i].first;
        b.kind = column_kinds[i].second;
        switch (b.kind) {
            case ColumnKind::int64:
                ints.push_back(reader.array<std::int64_t>(column_section(prefix, i, "values"), {n}, true));
                b.ints = ints.back().data();
                break;
            case ColumnKind::float64:
                floats.push_back(reader.array<double>(column_section(prefix, i, "values"), {n}, true));
                b.floats = floats.back().data();
                break;
            case ColumnKind::labels: {
                ints.push_back(reader.array<std::int64_t>(column_section(prefix, i, "offsets"), {n + 1}, true));
                b.offsets = ints.back().data();
                const std::vector<std::size_t> count = reader.shape(column_section(prefix, i, "labels"));
                if (count.size() != 1 || b.offsets[n] < 0 || std::uint64_t(b.offsets[n]) != count[0])
                    reader.corrupt("labels of column '" + b.name + "'");
                ints.push_back(reader.array<std::int64_t>(column_section(prefix, i, "labels"), count, true));
                b.labels = ints.back().data();
                break;
            }
        }
        batch.push_back(b);
    }
    try {
        d.attributes.check(batch, n);
    } catch (const std::invalid_argument& error) {
        reader.corrupt(error.what());
    }
    d.attributes.append(batch, n);
    Entries entries{d.entry, d.entry_chosen_at, std::move(d.pivots), {}, {}};
    g.load_pivots(entries);
    g.set_entries(entries);
    return index;
}

void GraphIndex::save(const std::string& path) const {
    std::shared_lock<ForkSafeSharedMutex> lock(mutex_);  // the arrays stay as described until written
    io::Writer writer("graph");
    write(writer, "graph");
    writer.save(path);
}

std::unique_ptr<GraphIndex> GraphIndex::load(const std::string& path, bool mmap, bool verify) {
    return read(io::Reader(path, "graph", verify), "graph", mmap);
}

std::string GraphIndex::to_bytes() const {
    std::shared_lock<ForkSafeSharedMutex> lock(mutex_);
    io::Writer writer("graph");
    write(writer, "graph");
    return writer.to_bytes();
}

std::unique_ptr<GraphIndex> GraphIndex::from_bytes(const void* data, std::size_t size) {
    return read(io::Reader(std::make_shared<const io::FileBytes>(data, size), "graph"), "graph", true);
}

}  // namespace latefold
