// FDE: convert, validate, release the GIL, call. Items are (tokens, offsets) arrays or a
// RaggedItems (offsets None).
#include <pybind11/stl.h>

#include "latefold/fde.h"
#include "latefold/random.h"
#include "ragged_items.h"

namespace latefold {
namespace bindings {

namespace {

template <class T>
py::array_t<T> vector_as_array(const std::vector<T>& v, py::ssize_t rows, py::ssize_t cols) {
    auto out = new_array<T>({rows, cols});
    std::copy(v.begin(), v.end(), out.mutable_data());
    return out;
}

// Into `into` (a float32 (items, output_dim) C-contiguous writeable array) when given.
py::array_t<float> encode(const FdeEncoder& encoder, const py::object& tokens,
                          const py::object& offsets, const py::object& threads, bool documents,
                          const py::object& into) {
    const char* name = documents ? "docs" : "queries";
    MultiVectorsView items = as_items(tokens, offsets, name);
    const std::size_t t = as_threads(threads);
    const py::ssize_t rows = py::ssize_t(items.count), cols = py::ssize_t(encoder.config().output_dim());
    py::array_t<float> out;
    if (into.is_none()) {
        out = new_array<float>({rows, cols});
    } else {
        if (!py::isinstance<py::array_t<float>>(into)) type_error("out must be a float32 array");
        out = into.cast<py::array_t<float>>();
        if (out.ndim() != 2 || out.shape(0) != rows || out.shape(1) != cols)
            value_error("out must have shape (" + std::to_string(rows) + ", " + std::to_string(cols) + ")");
        require_c_contiguous(out, "out");
        if (!out.writeable()) value_error("out is read-only");
    }
    float* data = out.mutable_data();
    {
        released_gil release;
        if (!into.is_none()) {  // the caller's array is written only once every value passed
            check_unchecked_values(items, name, t);
            items.values_checked = true;
        }
        if (documents)
            encoder.encode_documents(items, data, t);
        else
            encoder.encode_queries(items, data, t);
    }
    return out;
}

}  // namespace

void bind_fde(py::module_& m) {
    m.attr("RNG_VERSION") = random::generator_version;
    py::class_<FdeEncoder>(m, "FdeEncoder")
        .def(py::init([](std::size_t dimension, std::size_t num_repetitions,
                         std::size_t num_simhash_projections, std::uint64_t seed,
                         const std::string& projection_type, std::size_t projection_dimension,
                         bool fill_empty_partitions, std::size_t final_projection_dimension) {
                 FdeConfig c;
                 c.dimension = dimension;
                 c.num_repetitions = num_repetitions;
                 c.num_simhash_projections = num_simhash_projections;
                 c.seed = seed;
                 c.projection_type = projection_from_name(projection_type);
                 c.projection_dimension = projection_dimension;
                 c.fill_empty_partitions = fill_empty_partitions;
                 c.final_projection_dimension = final_projection_dimension;
                 c.validate();
                 // Generating the matrices takes long for large configurations.
                 released_gil release;
                 return std::make_unique<FdeEncoder>(c);
             }),
             py::arg("dimension"), py::arg("num_repetitions"), py::arg("num_simhash_projections"),
             py::arg("seed"), py::arg("projection_type"), py::arg("projection_dimension"),
             py::arg("fill_empty_partitions"), py::arg("final_projection_dimension"))
        .def("params", [](const FdeEncoder& e) { return to_python(e.params()); })
        .def("save",
             [](const FdeEncoder& e, const std::string& path) {
                 released_gil release;
                 e.save(path);
             })
        .def_static("load",
                    [](const std::string& path) {
                        released_gil release;
                        return std::make_unique<FdeEncoder>(FdeEncoder::load(path));
                    })
        .def("to_bytes", [](const FdeEncoder& e) { return image_bytes([&] { return e.to_bytes(); }); })
        .def_static("from_bytes",
                    [](const py::bytes& image) {
                        const auto bytes = bytes_contents(image);
                        released_gil release;
                        return std::make_unique<FdeEncoder>(FdeEncoder::from_bytes(bytes.first, bytes.second));
                    })
        .def_property_readonly("output_dim", [](const FdeEncoder& e) { return e.config().output_dim(); })
        .def_property_readonly("block_dim", [](const FdeEncoder& e) { return e.config().block_dim(); })
        .def("encode_queries",
             [](const FdeEncoder& e, const py::object& tokens, const py::object& offsets,
                const py::object& threads, const py::object& out) { return encode(e, tokens, offsets, threads, false, out); },
             py::arg("tokens"), py::arg("offsets"), py::arg("threads") = py::none(), py::arg("out") = py::none())
        .def("encode_documents",
             [](const FdeEncoder& e, const py::object& tokens, const py::object& offsets,
                const py::object& threads, const py::object& out) { return encode(e, tokens, offsets, threads, true, out); },
             py::arg("tokens"), py::arg("offsets"), py::arg("threads") = py::none(), py::arg("out") = py::none())
        .def("partition_indices",
             [](const FdeEncoder& e, const py::object& tokens, const py::object& offsets,
                const py::object& threads) {
                 const MultiVectorsView items = as_items(tokens, offsets, "items");
                 const std::size_t t = as_threads(threads);
                 auto out = new_array<std::uint32_t>(
                     {py::ssize_t(items.rows), py::ssize_t(e.config().num_repetitions)});
                 std::uint32_t* data = out.mutable_data();
                 released_gil release;
                 e.partition_indices(items, data, t);
                 return out;
             },
             py::arg("tokens"), py::arg("offsets"), py::arg("threads") = py::none())
        .def("simhash_matrix",
             [](const FdeEncoder& e, std::size_t r) {
                 return vector_as_array(e.simhash_matrix(r), py::ssize_t(e.config().dimension),
                                        py::ssize_t(e.config().num_simhash_projections));
             })
        .def("projection_matrix",
             [](const FdeEncoder& e, std::size_t r) {
                 return vector_as_array(e.projection_matrix(r), py::ssize_t(e.config().dimension),
                                        py::ssize_t(e.config().projected_dim()));
             })
        .def("final_projection", [](const FdeEncoder& e) {
            const auto n = py::ssize_t(e.final_slots().size());
            auto slots = vector_as_array(e.final_slots(), 1, n);
            auto signs = vector_as_array(e.final_signs(), 1, n);
            return py::make_tuple(slots.reshape({n}), signs.reshape({n}));
        });
}

}  // namespace bindings
}  // namespace latefold
