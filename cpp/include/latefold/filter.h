// Filter expressions over a vector collection's attributes, evaluated to a bitset of slots.
//
// Filters are data (a tree of these nodes), never callbacks: they are evaluated in C++ with no
// interpreter lock, once per query, into one bit per slot.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "latefold/attributes.h"

namespace latefold {

struct FilterNode {
    enum class Op : std::uint8_t {
        labels_any,   // column, values
        labels_all,   // column, values
        range_int,    // column, int_lo..int_hi (inclusive)
        range_float,  // column, float_lo..float_hi (inclusive)
        slots,        // bits: an explicit set of slots (from a mask or a list of ids)
        all_of,       // children: and
        any_of,       // children: or
        none_of,      // children[0]: not
    };
    Op op = Op::slots;
    std::size_t column = 0;
    std::vector<std::int64_t> values;
    std::int64_t int_lo = 0, int_hi = 0;
    double float_lo = 0, float_hi = 0;
    std::vector<std::uint64_t> bits;
    std::vector<FilterNode> children;
};

/// Writes the slots that satisfy `node` into `words` (bit_words(attributes.rows()) words; bits
/// past the last slot stay clear).
void evaluate_filter(const FilterNode& node, const AttributeStore& attributes, std::uint64_t* words);

}  // namespace latefold
