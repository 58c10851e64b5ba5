// Validation services for lf.MultiVectors: offsets and finiteness checked in C++ (one pass,
// no temporary arrays), so that large corpora are validated at memory speed; int8 and bfloat16
// sets (QuantizedTokens) and the conversion to them (quantize). And its pickled form: a
// container of kind "multivectors" (the tokens' dtype in the description, arrays
// "multivectors/tokens", "multivectors/offsets" and for int8 "multivectors/scales"; 8- and
// 16-bit tokens as their bits, as a graph's).
#include <algorithm>
#include <cstring>

#include "arrays.h"
#include "latefold/io.h"
#include "latefold/quantize.h"
#include "quantized_tokens.h"
#include "ragged_items.h"

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

    py::class_<QuantizedTokens>(m, "QuantizedTokens")
        .def(py::init([](const py::array& tokens, const py::array& offsets, const py::object& scales,
                         const std::string& dtype, const std::string& name) {
                 return new QuantizedTokens(tokens, offsets, scales, dtype, name.c_str());
             }),
             py::arg("tokens"), py::arg("offsets"), py::arg("scales"), py::arg("dtype"), py::arg("name"))
        .def("__len__", [](const QuantizedTokens& t) { return t.view().count; })
        .def_property_readonly("dim", [](const QuantizedTokens& t) { return t.view().dim; });

    m.def(
        "quantize",
        [](const py::object& tokens, const py::object& offsets, const std::string& to, const py::object& threads) {
            const MultiVectorsView from = as_items(tokens, offsets, "docs");
            const DType type = to == "int8" ? DType::i8 : DType::bf16;
            py::array out(py::dtype(type == DType::i8 ? "int8" : "uint16"),
                          std::vector<py::ssize_t>{py::ssize_t(from.rows), py::ssize_t(from.dim)});
            py::object scales = py::none();
            float* s = nullptr;
            if (type == DType::i8) {
                auto a = new_array<float>({py::ssize_t(from.rows)});
                s = a.mutable_data();
                scales = a;
            }
            void* t = out.mutable_data();
            const std::size_t n = as_threads(threads);
            {
                released_gil release;
                quantize_tokens(from, type, t, s, n);
            }
            return py::make_tuple(out, scales);
        },
        py::arg("tokens"), py::arg("offsets"), py::arg("to"), py::arg("threads") = py::none(),
        "(tokens, scales or None) of a set converted to int8 (a scale per token) or bfloat16 (uint16 bits).");

    m.def(
        "multivectors_to_bytes",
        [](const py::object& tokens, const py::object& offsets) {
            const MultiVectorsView v = as_items(tokens, offsets, "multivectors");
            if (!v.flat()) type_error("multivectors: one array of rows expected");
            io::Writer writer("multivectors");
            writer.object("multivectors", Json::object().set("dtype", dtype_name(v.dtype)));
            switch (v.dtype) {
                case DType::f32:
                    writer.array("multivectors/tokens", static_cast<const float*>(v.tokens), {v.rows, v.dim});
                    break;
                case DType::f16:
                case DType::bf16:
                    writer.array("multivectors/tokens", static_cast<const std::uint16_t*>(v.tokens), {v.rows, v.dim});
                    break;
                case DType::i8:
                    writer.array("multivectors/tokens", static_cast<const std::uint8_t*>(v.tokens), {v.rows, v.dim});
                    writer.array("multivectors/scales", v.scales, {v.rows});
                    break;
            }
            writer.array("multivectors/offsets", v.offsets, {v.count + 1});
            return image_bytes([&] { return writer.to_bytes(); });
        },
        py::arg("tokens"), py::arg("offsets"), "The file image of a set ((tokens, offsets) or QuantizedTokens).");

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
            const std::vector<std::size_t> shape = reader.shape("multivectors/tokens");
            const std::vector<std::size_t> count = reader.shape("multivectors/offsets");
            if (shape.size() != 2 || count.size() != 1) reader.corrupt("array shapes");
            // Read (and so checked against their sections) before anything is allocated.
            const void* source = nullptr;
            const char* numpy_type = "float32";
            switch (dtype) {
                case DType::f32: source = reader.array<float>("multivectors/tokens", shape, true).data(); break;
                case DType::f16:
                case DType::bf16:
                    source = reader.array<std::uint16_t>("multivectors/tokens", shape, true).data();
                    numpy_type = dtype == DType::f16 ? "float16" : "uint16";
                    break;
                case DType::i8:
                    source = reader.array<std::uint8_t>("multivectors/tokens", shape, true).data();
                    numpy_type = "int8";
                    break;
            }
            const Buffer<std::int64_t> o = reader.array<std::int64_t>("multivectors/offsets", count, true);
            py::object scales = py::none();
            if (dtype == DType::i8) {
                const Buffer<float> s = reader.array<float>("multivectors/scales", {shape[0]}, true);
                auto a = new_array<float>({py::ssize_t(shape[0])});
                std::copy(s.begin(), s.end(), a.mutable_data());
                scales = a;
            }
            py::array tokens(py::dtype(numpy_type), std::vector<py::ssize_t>{py::ssize_t(shape[0]), py::ssize_t(shape[1])});
            std::memcpy(tokens.mutable_data(), source, shape[0] * shape[1] * dtype_size(dtype));
            auto offsets = new_array<std::int64_t>({py::ssize_t(count[0])});
            std::copy(o.begin(), o.end(), offsets.mutable_data());
            return py::make_tuple(tokens, offsets, scales, dtype_name(dtype));
        },
        py::arg("image"), "(tokens, offsets, scales or None, dtype name) from multivectors_to_bytes' image (not yet validated).");
}

}  // namespace bindings
}  // namespace latefold
