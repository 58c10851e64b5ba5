// Validation services for lf.MultiVectors: offsets and finiteness checked in C++ (one pass,
// no temporary arrays), so that large corpora are validated at memory speed. And its pickled
// form: a container of kind "multivectors" (the tokens' dtype in the description, arrays
// "multivectors/tokens" and "multivectors/offsets"; float16 tokens as their bits, as a graph's).
#include <algorithm>
#include <cstring>

#include "arrays.h"
#include "latefold/io.h"

namespace latefold {
namespace bindings {

void bind_multivectors(py::module_& m) {
    m.def(
        "validate_multivectors",
        [](const py::array& tokens, const py::array& offsets, const char* name) {
            const MultiVectorsView v = as_multivectors(tokens, offsets, name);
            NonFiniteToken bad;
            {
                released_gil release;
                bad = first_non_finite_token(v);
            }
            fail_non_finite(name, bad);
        },
        py::arg("tokens"), py::arg("offsets"), py::arg("name"),
        "Checks offsets and that every token value is finite; raises ValueError naming the item.");

    m.def(
        "multivectors_to_bytes",
        [](const py::array& tokens, const py::array& offsets) {
            const MultiVectorsView v = as_multivectors(tokens, offsets, "multivectors");
            io::Writer writer("multivectors");
            writer.object("multivectors", Json::object().set("dtype", dtype_name(v.dtype)));
            if (v.dtype == DType::f32)
                writer.array("multivectors/tokens", static_cast<const float*>(v.tokens), {v.rows, v.dim});
            else
                writer.array("multivectors/tokens", static_cast<const half_bits*>(v.tokens), {v.rows, v.dim});
            writer.array("multivectors/offsets", v.offsets, {v.count + 1});
            return image_bytes([&] { return writer.to_bytes(); });
        },
        py::arg("tokens"), py::arg("offsets"), "The file image of (tokens, offsets).");

    m.def(
        "multivectors_from_bytes",
        [](const py::bytes& image) {
            const auto bytes = bytes_contents(image);
            const io::Reader reader(std::make_shared<const io::FileBytes>(bytes.first, bytes.second), "multivectors");
            DType dtype = DType::f32;
            try {
                dtype = dtype_from_name(reader.object("multivectors").at("dtype").as_string());
            } catch (const std::invalid_argument& error) {
                reader.corrupt(error.what());
            }
            if (dtype != DType::f32 && dtype != DType::f16) reader.corrupt("token dtype");
            const std::vector<std::size_t> shape = reader.shape("multivectors/tokens");
            const std::vector<std::size_t> count = reader.shape("multivectors/offsets");
            if (shape.size() != 2 || count.size() != 1) reader.corrupt("array shapes");
            // Read (and so checked against their sections) before anything is allocated.
            const void* source = dtype == DType::f32
                                     ? static_cast<const void*>(reader.array<float>("multivectors/tokens", shape, true).data())
                                     : reader.array<half_bits>("multivectors/tokens", shape, true).data();
            const Buffer<std::int64_t> o = reader.array<std::int64_t>("multivectors/offsets", count, true);
            py::array tokens(py::dtype(dtype == DType::f32 ? "float32" : "float16"),
                             std::vector<py::ssize_t>{py::ssize_t(shape[0]), py::ssize_t(shape[1])});
            std::memcpy(tokens.mutable_data(), source, shape[0] * shape[1] * dtype_size(dtype));
            auto offsets = new_array<std::int64_t>({py::ssize_t(count[0])});
            std::copy(o.begin(), o.end(), offsets.mutable_data());
            return py::make_tuple(tokens, offsets);
        },
        py::arg("image"), "(tokens, offsets) from multivectors_to_bytes' image (not yet validated).");
}

}  // namespace bindings
}  // namespace latefold
