// Arrays of other libraries read through their exchange protocols, without a copy:
// __cuda_array_interface__ (version 2 and 3) and __dlpack__ (versioned and legacy capsules).
// pybind11 reads neither. Host arrays (NumPy's own __dlpack__) are read the same way, so the
// parsing is tested on machines without a GPU.
#pragma once

#include <string>
#include <vector>

#include "arrays.h"

namespace latefold {
namespace bindings {

struct ForeignArray {
    void* data = nullptr;
    char kind = 'f';  ///< 'f' float, 'i' signed int, 'u' unsigned int, 'b' bfloat16
    int bits = 0;
    std::vector<std::int64_t> shape, strides;  ///< strides in elements (filled in when implied)
    bool on_device = false;                    ///< CUDA device (or managed) memory
    int device = 0;                            ///< the device's index (CUDA) or 0
    bool read_only = false;
    py::object owner;  ///< keeps the producer's memory alive (its object or the consumed capsule)

    bool c_contiguous() const;
    /// "float32", "float16", "bfloat16", "int8", "int64", "uint16", ... ("kind<bits>" otherwise)
    std::string dtype_name() const;
};

/// Whether `obj` offers __cuda_array_interface__ or __dlpack__ (and is not a NumPy array).
bool is_foreign_array(const py::handle& obj);

/// Reads `obj` by __cuda_array_interface__, else __dlpack__ (TypeError naming `name` when it
/// has neither, or an unsupported device or dtype). With `resolve`, the device of a CUDA array
/// interface's pointer is looked up and the work its producer announced on a stream waited for
/// (both need a GPU; without, only the description is read).
ForeignArray read_foreign_array(const py::object& obj, const std::string& name, bool resolve = true);

}  // namespace bindings
}  // namespace latefold
