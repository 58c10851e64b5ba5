// Filtered graph search: convert, validate, release the GIL, call. Filters arrive as FilterExpr
// objects (bind_filter.cc), one per query or None, and are compiled against the index here.
#include <pybind11/stl.h>

#include <unordered_map>

#include "arrays.h"
#include "columns.h"
#include "latefold/graph.h"

namespace latefold {
namespace bindings {

void bind_graph(py::module_& m) {
    py::class_<GraphIndex>(m, "GraphIndex")
        .def(py::init([](std::size_t dim, const std::string& metric, const std::string& storage, std::size_t degree,
                         std::size_t ef_construction, float alpha) {
                 GraphParams p;
                 p.dim = dim;
                 p.metric = metric_from_name(metric);
                 p.storage = dtype_from_name(storage);
                 p.degree = degree;
                 p.ef_construction = ef_construction;
                 p.alpha = alpha;
                 return std::make_unique<GraphIndex>(p);
             }),
             py::arg("dim"), py::arg("metric"), py::arg("storage"), py::arg("degree"), py::arg("ef_construction"),
             py::arg("alpha"))
        // Every call that takes the index's lock waits for it without the GIL (without_gil).
        .def("set_quantizer",
             [](GraphIndex& g, const ProductQuantizer& pq) { without_gil([&] { g.set_quantizer(pq); }); })
        .def("__len__", [](const GraphIndex& g) { return without_gil([&] { return g.size(); }); })
        .def_property_readonly("slots", [](const GraphIndex& g) { return without_gil([&] { return g.slots(); }); })
        .def("contains",
             [](const GraphIndex& g, std::int64_t id) { return without_gil([&] { return g.contains(id); }); })
        .def("columns",
             [](const GraphIndex& g) {
                 std::vector<std::pair<std::string, std::string>> out;
                 for (const auto& c : without_gil([&] { return g.columns(); }))
                     out.emplace_back(c.first, column_kind_name(c.second));
                 return out;
             })
        .def("add",
             [](GraphIndex& g, const py::array& x, const py::array& ids, const py::list& columns, const py::object& threads) {
                 if (x.ndim() != 2 || std::size_t(x.shape(1)) != g.params().dim)
                     value_error("vectors must have shape (n, " + std::to_string(g.params().dim) + ")");
                 const void* rows = nullptr;
                 switch (g.params().storage) {  // 16-bit types arrive as their bits
                     case DType::f32: rows = typed<float>(x, "vectors", 2); break;
                     case DType::f16:
                     case DType::bf16: rows = typed<std::uint16_t>(x, "vectors", 2); break;
                     case DType::i8: type_error("vectors: int8 rows need scales");
                 }
                 const std::size_t n = std::size_t(x.shape(0));
                 const std::int64_t* id = typed<std::int64_t>(ids, "ids");
                 if (std::size_t(ids.shape(0)) != n) value_error("ids: one per vector");
                 const Columns batch = column_batches(columns, n);
                 const std::size_t t = as_threads(threads);
                 released_gil release;
                 g.add(rows, id, n, batch.batches, t);
             })
        .def("remove",
             [](GraphIndex& g, const py::array& ids) {
                 const std::int64_t* id = typed<std::int64_t>(ids, "ids");
                 // A copy: the ids are checked, then used, without the GIL.
                 const std::vector<std::int64_t> copy(id, id + ids.shape(0));
                 without_gil([&] { g.remove(copy.data(), copy.size()); });
             })
        .def("compact",
             [](GraphIndex& g, const py::object& threads) {
                 const std::size_t t = as_threads(threads);
                 released_gil release;
                 g.compact(t);
             })
        .def("search",
             [](const GraphIndex& g, const py::array& queries, std::size_t k, std::size_t ef, const py::list& filters,
                std::size_t exact_below, double gated_above, bool rerank, const py::object& threads) {
                 const std::size_t dim = g.params().dim;
                 const float* q = typed<float>(queries, "queries", 2);
                 if (std::size_t(queries.shape(1)) != dim)
                     value_error("queries must have " + std::to_string(dim) + " columns, got " + std::to_string(queries.shape(1)));
                 const std::size_t nq = std::size_t(queries.shape(0));
                 // One compiled filter per distinct filter object (a shared filter compiles once).
                 std::vector<FilterNode> compiled;
                 std::vector<const FilterNode*> per_query(nq, nullptr);
                 std::unordered_map<PyObject*, const FilterNode*> seen;
                 if (!filters.empty()) {
                     if (filters.size() != nq) value_error("filter: one per query");
                     compiled.reserve(nq);
                     for (std::size_t i = 0; i < nq; ++i) {
                         const py::handle f = filters[i];
                         if (f.is_none()) continue;
                         const FilterNode*& node = seen[f.ptr()];
                         if (!node) {
                             const std::shared_ptr<FilterExpr> expr = f.cast<std::shared_ptr<FilterExpr>>();
                             compiled.push_back(without_gil([&] { return g.compile_filter(*expr); }));
                             node = &compiled.back();  // stable: reserved above
                         }
                         per_query[i] = node;
                     }
                 }
                 GraphSearchOptions o;
                 o.k = k;
                 o.ef = ef;
                 o.exact_below = exact_below;
                 o.gated_above = gated_above;
                 o.rerank = rerank;
                 o.threads = as_threads(threads);
                 auto scores = new_array<float>({py::ssize_t(nq), py::ssize_t(k)});
                 auto ids = new_array<std::int64_t>({py::ssize_t(nq), py::ssize_t(k)});
                 std::vector<SearchStats> stats(nq);
                 float* s = scores.mutable_data();
                 std::int64_t* i = ids.mutable_data();
                 {
                     released_gil release;
                     g.search(q, nq, filters.empty() ? nullptr : per_query.data(), o, s, i, stats.data());
                 }
                 py::list info;
                 for (const SearchStats& st : stats)
                     info.append(py::make_tuple(search_path_name(st.path), st.matches, st.distances, st.visited));
                 return py::make_tuple(scores, ids, info);
             })
        .def("params", [](const GraphIndex& g) { return to_python(g.describe_params()); })
        .def("quantizer",
             [](const GraphIndex& g) -> py::object {
                 if (!g.quantizer()) return py::none();
                 return py::cast(ProductQuantizer(*g.quantizer()));
             })
        .def("save",
             [](const GraphIndex& g, const std::string& path) {
                 released_gil release;
                 g.save(path);
             })
        .def_static("load",
                    [](const std::string& path, bool mmap, bool verify) {
                        released_gil release;
                        return GraphIndex::load(path, mmap, verify);
                    },
                    py::arg("path"), py::arg("mmap"), py::arg("verify"))
        .def("to_bytes", [](const GraphIndex& g) { return image_bytes([&] { return g.to_bytes(); }); })
        .def_static("from_bytes", [](const py::bytes& image) {
            const auto bytes = bytes_contents(image);
            released_gil release;
            return GraphIndex::from_bytes(bytes.first, bytes.second);
        });
}

}  // namespace bindings
}  // namespace latefold
