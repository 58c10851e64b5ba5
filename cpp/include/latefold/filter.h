// Filter expressions over a vector collection's attributes, evaluated to a bitset of slots.
//
// Filters are data (a tree of these nodes), never callbacks: they are evaluated in C++ with no
// interpreter lock, once per query, into one bit per slot.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "latefold/attributes.h"

namespace latefold {

/// Most levels a filter tree may have (a leaf is one level). `&` and `|` combine n-ary, so real
/// filters stay a few levels deep; the bound keeps compiling and destroying a tree from
/// overflowing the stack.
constexpr std::size_t max_filter_depth = 1000;

/// A filter as the user wrote it: columns by name, ids as ids, range bounds for either numeric
/// kind of column (an int64 column reads [int_lo, int_hi], a float64 column [float_lo, float_hi]).
/// An index compiles it against its own columns and ids into a FilterNode
/// (GraphIndex::compile_filter). Children are shared, so combining filters copies no subtree.
struct FilterExpr {
    enum class Op : std::uint8_t { labels_any, labels_all, range, ids, mask, all_of, any_of, none_of, in_set };
    Op op = Op::all_of;
    std::string column;
    std::vector<std::int64_t> values;  // labels_any / labels_all: the labels; ids: the ids;
                                       // in_set: the integral values, sorted, distinct
    std::vector<double> floats;        // in_set: every value as a double, sorted, distinct
    std::vector<std::uint8_t> mask;    // mask: nonzero at the ids kept
    std::int64_t int_lo = INT64_MIN, int_hi = INT64_MAX;
    double float_lo = -INFINITY, float_hi = INFINITY;
    std::vector<std::shared_ptr<const FilterExpr>> children;  // all_of / any_of: none of the same op
    std::size_t depth = 1;                                    // levels, this one included
};

/// A combination of `children` (op all_of, any_of or none_of): children of the same and/or op
/// are spliced in, so (a | b) | c has three children. Throws std::invalid_argument when the
/// result would be deeper than max_filter_depth or a `none_of` has other than one child.
std::shared_ptr<FilterExpr> combine_filters(FilterExpr::Op op,
                                            const std::vector<std::shared_ptr<const FilterExpr>>& children);

/// A filter compiled against one index: columns by position, ids as slots.
struct FilterNode {
    enum class Op : std::uint8_t {
        labels_any,   // column, values
        labels_all,   // column, values
        range_int,    // column, int_lo..int_hi (inclusive)
        range_float,  // column, float_lo..float_hi (inclusive)
        in_int,       // column, values (sorted, distinct)
        in_float,     // column, floats (sorted, distinct)
        slots,        // bits: an explicit set of slots (from a mask or a list of ids)
        all_of,       // children: and
        any_of,       // children: or
        none_of,      // children[0]: not
    };
    Op op = Op::slots;
    std::size_t column = 0;
    std::vector<std::int64_t> values;
    std::vector<double> floats;
    std::int64_t int_lo = 0, int_hi = 0;
    double float_lo = 0, float_hi = 0;
    std::vector<std::uint64_t> bits;
    std::vector<FilterNode> children;
};

/// Writes the slots that satisfy `node` into `words` (bit_words(attributes.rows()) words; bits
/// past the last slot stay clear). Iterative: the depth of `node` costs heap, not stack, and
/// each child of an and/or costs one pass over the bitset.
void evaluate_filter(const FilterNode& node, const AttributeStore& attributes, std::uint64_t* words);

}  // namespace latefold
