// MultiVectorIndex: convert, validate, release the GIL, call. Documents and queries arrive as
// (tokens, offsets) arrays that the Python layer made for the call (copies the caller cannot
// change meanwhile); filters as FilterExpr objects, one per query or None.
#include <pybind11/stl.h>

#include "arrays.h"
#include "columns.h"
#include "latefold/index.h"
#include "latefold/pooling.h"

namespace latefold {
namespace bindings {

namespace {

IndexParams params_from(const py::dict& p) {
    IndexParams out;
    out.dim = p["dim"].cast<std::size_t>();
    out.candidates = candidate_kind_from_name(p["candidates"].cast<std::string>());
    out.token_storage = dtype_from_name(p["token_storage"].cast<std::string>());
    out.vector_storage = dtype_from_name(p["vector_storage"].cast<std::string>());
    out.degree = p["degree"].cast<std::size_t>();
    out.ef_construction = p["ef_construction"].cast<std::size_t>();
    out.centroids = p["centroids"].cast<std::size_t>();
    out.centroid_levels = p["centroid_levels"].cast<std::size_t>();
    out.kmeans_iterations = p["kmeans_iterations"].cast<std::size_t>();
    out.seed = p["seed"].cast<std::uint64_t>();
    out.pool_factor = p["pool_factor"].cast<std::size_t>();
    out.compact_fraction = p["compact_fraction"].cast<double>();
    if (out.candidates == CandidateKind::fde) {
        const py::dict f = p["fde"].cast<py::dict>();
        FdeConfig& c = out.fde;
        c.dimension = out.dim;
        c.num_repetitions = f["num_repetitions"].cast<std::size_t>();
        c.num_simhash_projections = f["num_simhash_projections"].cast<std::size_t>();
        c.seed = f["seed"].cast<std::uint64_t>();
        c.projection_type = projection_from_name(f["projection_type"].cast<std::string>());
        c.projection_dimension = f["projection_dimension"].is_none() ? 0 : f["projection_dimension"].cast<std::size_t>();
        c.fill_empty_partitions = f["fill_empty_partitions"].cast<bool>();
        c.final_projection_dimension =
            f["final_projection_dimension"].is_none() ? 0 : f["final_projection_dimension"].cast<std::size_t>();
    }
    return out;
}

/// f() with the GIL released (it takes the index's lock).
template <class F>
auto unlocked(F&& f) {
    py::gil_scoped_release release;
    return f();
}

const std::int64_t* id_array(const py::array& ids, std::size_t n) {
    const std::int64_t* data = typed<std::int64_t>(ids, "ids");
    if (std::size_t(ids.shape(0)) != n) value_error("ids: one per document");
    return data;
}

}  // namespace

void bind_index(py::module_& m) {
    // The pooling functions (pooling.h) on one set's float32 rows, for tests against a reference.
    m.def("_pool_tokens", [](const py::array& rows, std::size_t target) {
        const float* x = typed<float>(rows, "rows", 2);
        const std::size_t n = std::size_t(rows.shape(0)), dim = std::size_t(rows.shape(1));
        if (target < 1 || target > n) value_error("target must be in [1, rows]");
        auto out = new_array<float>({py::ssize_t(target), py::ssize_t(dim)});
        pool_tokens(x, n, dim, target, out.mutable_data());
        return out;
    });
    m.def("_carve_query", [](const py::array& rows, float tau) {
        const float* x = typed<float>(rows, "rows", 2);
        const std::size_t n = std::size_t(rows.shape(0)), dim = std::size_t(rows.shape(1));
        std::vector<float> out(n * dim);
        const std::size_t balls = carve_query(x, n, dim, tau, out.data());
        auto result = new_array<float>({py::ssize_t(balls), py::ssize_t(dim)});
        std::copy(out.begin(), out.begin() + std::ptrdiff_t(balls * dim), result.mutable_data());
        return result;
    });
    py::class_<MultiVectorIndex>(m, "MultiVectorIndex")
        .def(py::init([](const py::dict& params) { return std::make_unique<MultiVectorIndex>(params_from(params)); }))
        // Every call that takes the index's lock releases the GIL first: a change holding the lock
        // asks for the GIL (Ctrl-C checks), so waiting for the lock with the GIL would deadlock.
        .def("__len__", [](const MultiVectorIndex& x) { return unlocked([&] { return x.size(); }); })
        .def("contains", [](const MultiVectorIndex& x, std::int64_t id) { return unlocked([&] { return x.contains(id); }); })
        .def("params", [](const MultiVectorIndex& x) { return to_python(x.describe_params()); })
        .def("columns",
             [](const MultiVectorIndex& x) {
                 std::vector<std::pair<std::string, std::string>> out;
                 for (const auto& c : unlocked([&] { return x.columns(); })) out.emplace_back(c.first, column_kind_name(c.second));
                 return out;
             })
        .def("ids",
             [](const MultiVectorIndex& x) {
                 const std::vector<std::int64_t> ids = unlocked([&] { return x.ids(); });
                 auto out = new_array<std::int64_t>({py::ssize_t(ids.size())});
                 std::copy(ids.begin(), ids.end(), out.mutable_data());
                 return out;
             })
        .def("get",
             [](const MultiVectorIndex& x, std::int64_t id) -> py::object {
                 std::vector<std::uint8_t> bytes;
                 std::vector<float> scales;
                 std::size_t rows = 0;
                 if (!unlocked([&] { return x.get(id, bytes, rows, &scales); })) return py::none();
                 const py::ssize_t dim = py::ssize_t(x.params().dim);
                 const DType storage = x.params().token_storage;
                 // float32 as it is; 16-bit types as their bits (uint16); int8 with its scales.
                 const char* type = storage == DType::f32 ? "float32" : storage == DType::i8 ? "int8" : "uint16";
                 py::array out(py::dtype(type), std::vector<py::ssize_t>{py::ssize_t(rows), dim});
                 std::memcpy(out.mutable_data(), bytes.data(), bytes.size());
                 if (storage != DType::i8) return py::make_tuple(out, py::none());
                 auto s = new_array<float>({py::ssize_t(rows)});
                 std::copy(scales.begin(), scales.end(), s.mutable_data());
                 return py::make_tuple(out, s);
             })
        .def("stats",
             [](const MultiVectorIndex& x) {
                 const IndexStats s = unlocked([&] { return x.stats(); });
                 py::dict d;
                 d["documents"] = s.documents;
                 d["slots"] = s.slots;
                 d["tokens"] = s.tokens;
                 d["deleted_tokens"] = s.deleted_tokens;
                 d["centroids"] = s.centroids;
                 d["centroid_levels"] = s.centroid_levels;
                 d["token_bytes"] = s.token_bytes;
                 d["code_bytes"] = s.code_bytes;
                 d["centroid_bytes"] = s.centroid_bytes;
                 d["list_bytes"] = s.list_bytes;
                 d["vector_bytes"] = s.vector_bytes;
                 d["graph_bytes"] = s.graph_bytes;
                 d["id_bytes"] = s.id_bytes;
                 return d;
             })
        .def("add",
             [](MultiVectorIndex& x, const py::array& tokens, const py::array& offsets, const py::array& ids,
                const py::list& columns, bool update, const py::object& threads) {
                 const MultiVectorsView docs = as_multivectors(tokens, offsets, "docs");
                 const std::int64_t* id = id_array(ids, docs.count);
                 const Columns batch = column_batches(columns, docs.count);
                 const std::size_t t = as_threads(threads);
                 released_gil release;
                 if (update)
                     x.update(docs, id, batch.batches, t);
                 else
                     x.add(docs, id, batch.batches, t);
             })
        .def("remove",
             [](MultiVectorIndex& x, const py::array& ids, const py::object& threads) {
                 const std::int64_t* id = typed<std::int64_t>(ids, "ids");
                 const std::size_t n = std::size_t(ids.shape(0));
                 const std::size_t t = as_threads(threads);
                 released_gil release;
                 x.remove(id, n, t);
             })
        .def("compact",
             [](MultiVectorIndex& x, const py::object& threads) {
                 const std::size_t t = as_threads(threads);
                 released_gil release;
                 x.compact(t);
             })
        .def("search",
             [](const MultiVectorIndex& x, const py::array& tokens, const py::array& offsets, const py::list& filters,
                std::size_t k, std::int64_t candidates, std::size_t ef, std::int64_t rerank, std::int64_t probe, float query_ball,
                bool exact,
                std::size_t exact_below, double gated_above, const py::object& threads) {
                 const MultiVectorsView queries = as_multivectors(tokens, offsets, "queries");
                 const std::size_t nq = queries.count;
                 std::vector<std::shared_ptr<FilterExpr>> held;  // alive for the call
                 std::vector<const FilterExpr*> per_query(nq, nullptr);
                 if (!filters.empty()) {
                     if (filters.size() != nq) value_error("filter: one per query");
                     for (std::size_t i = 0; i < nq; ++i) {
                         const py::handle f = filters[i];
                         if (f.is_none()) continue;
                         held.push_back(f.cast<std::shared_ptr<FilterExpr>>());
                         per_query[i] = held.back().get();
                     }
                 }
                 IndexSearchOptions o;
                 o.k = k;
                 auto or_automatic = [](std::int64_t v) { return v < 0 ? IndexSearchOptions::automatic : std::size_t(v); };
                 o.candidates = or_automatic(candidates);
                 o.ef = ef;
                 o.rerank = or_automatic(rerank);
                 o.probe = or_automatic(probe);
                 o.query_ball = query_ball;
                 o.exact = exact;
                 o.exact_below = exact_below;
                 o.gated_above = gated_above;
                 o.threads = as_threads(threads);
                 auto scores = new_array<float>({py::ssize_t(nq), py::ssize_t(k)});
                 auto ids = new_array<std::int64_t>({py::ssize_t(nq), py::ssize_t(k)});
                 std::vector<IndexSearchInfo> info(nq);
                 float* s = scores.mutable_data();
                 std::int64_t* i = ids.mutable_data();
                 {
                     released_gil release;
                     x.search(queries, filters.empty() ? nullptr : per_query.data(), o, s, i, info.data());
                 }
                 py::list out;
                 for (const IndexSearchInfo& st : info)
                     out.append(py::make_tuple(search_path_name(st.graph.path), st.graph.matches, st.graph.distances,
                                               st.graph.visited, st.candidates, st.rescored, st.exact, st.seconds[0],
                                               st.seconds[1], st.seconds[2]));
                 return py::make_tuple(scores, ids, out);
             })
        .def("save",
             [](const MultiVectorIndex& x, const std::string& path) {
                 released_gil release;
                 x.save(path);
             })
        .def_static("load",
                    [](const std::string& path, bool mmap, bool verify) {
                        released_gil release;
                        return MultiVectorIndex::load(path, mmap, verify);
                    },
                    py::arg("path"), py::arg("mmap"), py::arg("verify"))
        .def("to_bytes", [](const MultiVectorIndex& x) { return image_bytes([&] { return x.to_bytes(); }); })
        .def_static("from_bytes", [](const py::bytes& image) {
            const auto bytes = bytes_contents(image);
            released_gil release;
            return MultiVectorIndex::from_bytes(bytes.first, bytes.second);
        });
}

}  // namespace bindings
}  // namespace latefold
