// Product quantization and k-means: convert, validate, release the GIL, call.
#include <pybind11/stl.h>

#include "arrays.h"
#include "latefold/kmeans.h"
#include "latefold/pq.h"
#include "latefold/row_store.h"

namespace latefold {
namespace bindings {

namespace {

const std::uint8_t* code_matrix(const ProductQuantizer& pq, const py::array& a) {
    if (!py::isinstance<py::array_t<std::uint8_t>>(a)) type_error("codes must be uint8");
    if (a.ndim() != 2 || std::size_t(a.shape(1)) != pq.code_size())
        value_error("codes must have shape (n, " + std::to_string(pq.code_size()) + ")");
    require_c_contiguous(a, "codes");
    return static_cast<const std::uint8_t*>(a.data());
}

}  // namespace

void bind_pq(py::module_& m) {
    // lf.PackedCodes pickled: a container of kind "packed_codes" holding both forms of the codes.
    m.def("packed_codes_to_bytes", [](const py::array& codes, const py::array& packed) {
        const std::uint8_t* c = typed<std::uint8_t>(codes, "codes", 2);
        const std::uint8_t* p = typed<std::uint8_t>(packed, "packed codes");
        io::Writer writer("packed_codes");
        writer.object("packed_codes", Json::object());
        writer.array("packed_codes/codes", c, {std::size_t(codes.shape(0)), std::size_t(codes.shape(1))});
        writer.array("packed_codes/packed", p, {std::size_t(packed.shape(0))});
        return image_bytes([&] { return writer.to_bytes(); });
    });
    m.def("packed_codes_from_bytes", [](const py::bytes& image) {
        const auto bytes = bytes_contents(image);
        const io::Reader reader(std::make_shared<const io::FileBytes>(bytes.first, bytes.second), "packed_codes");
        reader.object("packed_codes");
        const std::vector<std::size_t> shape = reader.shape("packed_codes/codes");
        const std::vector<std::size_t> size = reader.shape("packed_codes/packed");
        if (shape.size() != 2 || size.size() != 1) reader.corrupt("array shapes");
        const Buffer<std::uint8_t> c = reader.array<std::uint8_t>("packed_codes/codes", shape, true);
        const Buffer<std::uint8_t> p = reader.array<std::uint8_t>("packed_codes/packed", size, true);
        // The fast-scan layout: blocks of 32 vectors, code bytes rounded up to pairs.
        if (size[0] != (shape[0] + 31) / 32 * ((shape[1] + 1) / 2 * 2) * 32) reader.corrupt("packed size");
        auto codes = new_array<std::uint8_t>({py::ssize_t(shape[0]), py::ssize_t(shape[1])});
        auto packed = new_array<std::uint8_t>({py::ssize_t(size[0])});
        std::copy(c.begin(), c.end(), codes.mutable_data());
        std::copy(p.begin(), p.end(), packed.mutable_data());
        return py::make_tuple(codes, packed);
    });

    py::class_<ProductQuantizer>(m, "ProductQuantizer")
        .def(py::init([](std::size_t dim, std::size_t sub, std::size_t nbits, const std::string& metric,
                         const std::string& rotation) {
                 return std::make_unique<ProductQuantizer>(dim, sub, nbits, metric_from_name(metric),
                                                           rotation_from_name(rotation));
             }),
             py::arg("dim"), py::arg("m"), py::arg("nbits"), py::arg("metric"), py::arg("rotation") = "none")
        .def("params", [](const ProductQuantizer& pq) { return to_python(pq.params()); })
        .def("save",
             [](const ProductQuantizer& pq, const std::string& path) {
                 released_gil release;
                 pq.save(path);
             })
        .def_static("load",
                    [](const std::string& path) {
                        released_gil release;
                        return ProductQuantizer::load(path);
                    })
        .def("to_bytes", [](const ProductQuantizer& pq) { return image_bytes([&] { return pq.to_bytes(); }); })
        .def_static("from_bytes",
                    [](const py::bytes& image) {
                        const auto bytes = bytes_contents(image);
                        released_gil release;
                        return ProductQuantizer::from_bytes(bytes.first, bytes.second);
                    })
        .def_property_readonly("code_size", &ProductQuantizer::code_size)
        .def_property_readonly("trained", &ProductQuantizer::trained)
        .def("centroids",
             [](const ProductQuantizer& pq) {
                 auto out = new_array<float>({py::ssize_t(pq.centroids().size())});
                 std::copy(pq.centroids().begin(), pq.centroids().end(), out.mutable_data());
                 return out;
             })
        .def("set_centroids",
             [](ProductQuantizer& pq, const py::array& c) {
                 if (!py::isinstance<py::array_t<float>>(c) || c.ndim() != 1 ||
                     std::size_t(c.shape(0)) != pq.ksub() * pq.dim())
                     value_error("centroids must be float32 of length ksub * dim");
                 require_c_contiguous(c, "centroids");
                 pq.set_centroids(static_cast<const float*>(c.data()));
             })
        .def("copy", [](const ProductQuantizer& pq) { return ProductQuantizer(pq); })
        .def("rotation",
             [](const ProductQuantizer& pq) -> py::object {
                 if (pq.rotation().empty()) return py::none();
                 auto out = new_array<float>({py::ssize_t(pq.dim()), py::ssize_t(pq.dim())});
                 std::copy(pq.rotation().begin(), pq.rotation().end(), out.mutable_data());
                 return py::object(std::move(out));
             })
        .def("set_rotation",
             [](ProductQuantizer& pq, const py::object& r) {
                 if (r.is_none()) return pq.set_rotation(nullptr);
                 const py::array a = r.cast<py::array>();
                 if (!py::isinstance<py::array_t<float>>(a) || a.ndim() != 2 || std::size_t(a.shape(0)) != pq.dim() ||
                     std::size_t(a.shape(1)) != pq.dim())
                     value_error("rotation must be float32 of shape (dim, dim)");
                 require_c_contiguous(a, "rotation");
                 pq.set_rotation(static_cast<const float*>(a.data()));
             })
        .def("subspace_bounds",
             [](const ProductQuantizer& pq) {
                 std::vector<std::size_t> out;
                 for (std::size_t s = 0; s <= pq.m(); ++s) out.push_back(s < pq.m() ? pq.offset(s) : pq.dim());
                 return out;
             })
        .def("train",
             [](ProductQuantizer& pq, const py::array& x, std::size_t iterations, std::uint64_t seed,
                std::size_t max_points, const py::object& threads, std::size_t opq_iterations) {
                 const float* data = float_matrix(x, pq.dim(), "x");
                 const std::size_t n = std::size_t(x.shape(0)), t = as_threads(threads);
                 released_gil release;
                 pq.train(data, n, iterations, seed, max_points, t, opq_iterations);
             },
             py::arg("x"), py::arg("iterations"), py::arg("seed"), py::arg("max_points"), py::arg("threads"),
             py::arg("opq_iterations") = 8)
        .def("encode",
             [](const ProductQuantizer& pq, const py::array& x, const py::object& threads) {
                 const float* data = float_matrix(x, pq.dim(), "x");
                 const std::size_t n = std::size_t(x.shape(0)), t = as_threads(threads);
                 auto codes = new_array<std::uint8_t>({py::ssize_t(n), py::ssize_t(pq.code_size())});
                 std::uint8_t* out = codes.mutable_data();
                 released_gil release;
                 pq.encode(data, n, out, t);
                 return codes;
             })
        .def("decode",
             [](const ProductQuantizer& pq, const py::array& codes, const py::object& threads) {
                 const std::uint8_t* c = code_matrix(pq, codes);
                 const std::size_t n = std::size_t(codes.shape(0)), t = as_threads(threads);
                 auto x = new_array<float>({py::ssize_t(n), py::ssize_t(pq.dim())});
                 float* out = x.mutable_data();
                 released_gil release;
                 pq.decode(c, n, out, t);
                 return x;
             })
        .def("pack",
             [](const ProductQuantizer& pq, const py::array& codes, const py::object& threads) {
                 const std::uint8_t* c = code_matrix(pq, codes);
                 const std::size_t n = std::size_t(codes.shape(0)), t = as_threads(threads);
                 auto packed = new_array<std::uint8_t>({py::ssize_t(pq.packed_size(n))});
                 std::uint8_t* out = packed.mutable_data();
                 released_gil release;
                 pq.pack(c, n, out, t);
                 return packed;
             })
        .def("lut",
             [](const ProductQuantizer& pq, const py::array& queries, const py::object& threads) {
                 const float* q = float_matrix(queries, pq.dim(), "queries");
                 const std::size_t nq = std::size_t(queries.shape(0)), t = as_threads(threads);
                 auto lut = new_array<float>({py::ssize_t(nq), py::ssize_t(pq.m()), py::ssize_t(pq.ksub())});
                 float* out = lut.mutable_data();
                 released_gil release;
                 pq.lookup_tables(q, nq, out, t);
                 return lut;
             })
        .def("search",
             [](const ProductQuantizer& pq, const py::array& codes, const py::array& queries,
                std::size_t k, std::size_t rescore, const py::object& allowed, const py::object& threads,
                const py::object& packed, const py::object& vectors) {
                 const std::uint8_t* c = code_matrix(pq, codes);
                 const float* q = float_matrix(queries, pq.dim(), "queries");
                 const std::size_t n = std::size_t(codes.shape(0)), nq = std::size_t(queries.shape(0));
                 PqSearchOptions options;
                 py::array packed_array;
                 py::array vector_array;
                 RowStore rows;
                 if (!vectors.is_none()) {  // the rows the codes stand for: exact re-scoring
                     vector_array = vectors.cast<py::array>();
                     rows.data = reinterpret_cast<const std::uint8_t*>(float_matrix(vector_array, pq.dim(), "vectors"));
                     rows.dim = pq.dim();
                     if (std::size_t(vector_array.shape(0)) != n) value_error("vectors must have one row per code");
                     options.vectors = &rows;
                 }
                 if (!packed.is_none()) {  // the same codes in the fast-scan layout
                     packed_array = packed.cast<py::array>();
                     if (!py::isinstance<py::array_t<std::uint8_t>>(packed_array) || packed_array.ndim() != 1 ||
                         std::size_t(packed_array.shape(0)) != pq.packed_size(n))
                         value_error("packed codes must be a 1-D uint8 array of " + std::to_string(pq.packed_size(n)) + " bytes");
                     require_c_contiguous(packed_array, "packed codes");
                     options.packed = static_cast<const std::uint8_t*>(packed_array.data());
                 }
                 options.k = k;
                 options.rescore = rescore;
                 options.threads = as_threads(threads);
                 py::array_t<std::uint8_t> mask;
                 if (!allowed.is_none()) {
                     mask = allowed.cast<py::array_t<std::uint8_t>>();
                     if (mask.ndim() != 1 || std::size_t(mask.shape(0)) != (n + 7) / 8)
                         value_error("allowed bitmap must hold ceil(n / 8) bytes");
                     require_c_contiguous(mask, "allowed");
                     options.allowed = mask.data();
                 }
                 auto scores = new_array<float>({py::ssize_t(nq), py::ssize_t(k)});
                 auto ids = new_array<std::int64_t>({py::ssize_t(nq), py::ssize_t(k)});
                 float* s = scores.mutable_data();
                 std::int64_t* i = ids.mutable_data();
                 {
                     released_gil release;
                     pq.search(c, n, q, nq, options, s, i);
                 }
                 return py::make_tuple(scores, ids);
             },
             py::arg("codes"), py::arg("queries"), py::arg("k"), py::arg("rescore"), py::arg("allowed"),
             py::arg("threads"), py::arg("packed") = py::none(), py::arg("vectors") = py::none());

    m.def("kmeans",
          [](const py::array& x, std::size_t k, std::size_t iterations, std::uint64_t seed,
             const py::object& init, const py::object& threads) {
              if (!py::isinstance<py::array_t<float>>(x) || x.ndim() != 2) type_error("x must be a 2-D float32 array");
              require_c_contiguous(x, "x");
              const std::size_t n = std::size_t(x.shape(0)), d = std::size_t(x.shape(1));
              if (k < 1 || k > n) value_error("k must be in [1, n]");
              auto centroids = new_array<float>({py::ssize_t(k), py::ssize_t(d)});
              auto assignment = new_array<std::uint32_t>({py::ssize_t(n)});
              const float* data = static_cast<const float*>(x.data());
              float* c = centroids.mutable_data();
              if (!init.is_none()) {
                  const float* start = float_matrix(init.cast<py::array>(), d, "init");
                  if (std::size_t(init.cast<py::array>().shape(0)) != k) value_error("init must have k rows");
                  std::copy(start, start + k * d, c);
              }
              KMeansOptions options;
              options.iterations = iterations;
              options.seed = seed;
              options.threads = as_threads(threads);
              double objective;
              {
                  released_gil release;
                  if (init.is_none()) kmeans_plus_plus(data, n, d, k, seed, c);
                  objective = kmeans_lloyd(data, n, d, k, options, c, assignment.mutable_data());
              }
              return py::make_tuple(centroids, assignment, objective);
          },
          py::arg("x"), py::arg("k"), py::arg("iterations"), py::arg("seed"), py::arg("init"),
          py::arg("threads") = py::none());
}

}  // namespace bindings
}  // namespace latefold
