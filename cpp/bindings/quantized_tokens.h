// int8 and bfloat16 token sets (lf.MultiVectors of those storages) as core views: the arrays
// are validated once, held for the object's life, and read in place by every call.
#pragma once

#include <string>

#include "arrays.h"

namespace latefold {
namespace bindings {

class QuantizedTokens {
public:
    /// tokens: (T, dim) int8 (with `scales`, float32 (T,)) or uint16 holding bfloat16 bits
    /// (`dtype` "int8" or "bfloat16"); offsets as for MultiVectors. Checks the layout, the
    /// offsets and that every scale or bfloat16 value is finite (ValueError naming the item).
    QuantizedTokens(const py::array& tokens, const py::array& offsets, const py::object& scales,
                    const std::string& dtype, const char* name)
        : tokens_(tokens), offsets_(offsets) {
        const DType type = dtype == "int8" ? DType::i8 : dtype == "bfloat16" ? DType::bf16 : DType::f32;
        if (type == DType::f32) value_error(std::string(name) + ": quantized storage is int8 or bfloat16, got " + dtype);
        const py::dtype want(type == DType::i8 ? "int8" : "uint16");
        if (!tokens.dtype().is(want) || tokens.ndim() != 2)
            type_error(std::string(name) + ": " + dtype + " tokens must be a 2-D " + std::string(py::str(want)) + " array");
        require_c_contiguous(tokens, name);
        if (!py::isinstance<py::array_t<std::int64_t>>(offsets) || offsets.ndim() != 1 || offsets.shape(0) < 1)
            type_error(std::string(name) + ": offsets must be a non-empty 1-D int64 array");
        require_c_contiguous(offsets, name);
        view_.dtype = type;
        view_.tokens = tokens.data();
        view_.offsets = static_cast<const std::int64_t*>(offsets.data());
        view_.rows = std::size_t(tokens.shape(0));
        view_.dim = view_.row_stride = std::size_t(tokens.shape(1));
        view_.count = std::size_t(offsets.shape(0)) - 1;
        if (type == DType::i8) {
            if (scales.is_none()) value_error(std::string(name) + ": int8 tokens need scales (one float32 per token)");
            scales_ = py::array::ensure(scales);
            if (!scales_ || !py::isinstance<py::array_t<float>>(scales_) || scales_.ndim() != 1 ||
                std::size_t(scales_.shape(0)) != view_.rows)
                type_error(std::string(name) + ": scales must be a float32 array with one value per token (" +
                           std::to_string(view_.rows) + ")");
            require_c_contiguous(scales_, name);
            view_.scales = static_cast<const float*>(scales_.data());
        } else if (!scales.is_none()) {
            value_error(std::string(name) + ": scales are for int8 tokens only");
        }
        view_.validate(name);
        NonFiniteToken bad;
        {
            released_gil release;
            bad = first_non_finite_token(view_);
        }
        fail_non_finite(name, bad);
    }

    const MultiVectorsView& view() const noexcept { return view_; }

private:
    py::array tokens_, offsets_, scales_;
    MultiVectorsView view_;
};

}  // namespace bindings
}  // namespace latefold
