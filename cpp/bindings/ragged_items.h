// A Python list (or tuple) of 2-D token arrays as a view with a pointer table: the arrays are
// referenced, not concatenated, so a corpus is never copied whole. The list is read once, with
// the GIL held: the object owns its table, offsets and references to the arrays, so neither a
// later change to the list nor a dropped array reaches a call that reads the view without the
// GIL. Items the core cannot read in place (strided, misaligned, not an ndarray; float16 among
// float32 items) are copied, one at a time.
#pragma once

#include <string>
#include <vector>

#include "arrays.h"

namespace latefold {
namespace bindings {

class RaggedItems {
public:
    /// `normalize(item, "item i")` is called for an item that cannot be read in place: it
    /// returns one that can (a C-contiguous aligned float32/float16 (n, dim) array, dim >= 1) or
    /// raises TypeError / ValueError. Errors (TypeError / ValueError) start with `name` and
    /// name the item: its type, shape or dimension, an empty item. The values are left to the
    /// call that reads them (view().values_checked is false): it checks them as it reads.
    RaggedItems(const py::object& items, const std::string& name, const py::object& normalize);
    RaggedItems(const RaggedItems&) = delete;
    RaggedItems& operator=(const RaggedItems&) = delete;

    const MultiVectorsView& view() const noexcept { return view_; }

private:
    std::vector<py::array> arrays_;  // held for the object's life: the rows the table points at
    std::vector<const void*> rows_;
    std::vector<std::int64_t> offsets_;
    MultiVectorsView view_;
};

/// The token rows of a core call: a RaggedItems (offsets None) or (tokens, offsets) arrays.
MultiVectorsView as_items(const py::object& tokens, const py::object& offsets, const char* name);

void bind_ragged_items(py::module_& m);

}  // namespace bindings
}  // namespace latefold
