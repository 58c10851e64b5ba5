// Filters compiled against a GraphIndex: column names resolved, ranges given the column's type,
// ids and masks turned into bitsets of slots.
#include <algorithm>
#include <mutex>
#include <string>

#include "latefold/graph.h"

namespace latefold {

namespace {

std::string quoted(const std::string& name) { return "'" + name + "'"; }

}  // namespace

FilterNode GraphIndex::compile_filter(const FilterExpr& filter) const {
    std::shared_lock<ForkSafeSharedMutex> lock(mutex_);
    return compile_locked(filter, 1);
}

FilterNode GraphIndex::compile_locked(const FilterExpr& f, std::size_t level) const {
    if (level > max_filter_depth)  // trees built in C++ are not checked by combine_filters
        fail_argument("filter: more than " + std::to_string(max_filter_depth) + " levels of nested &, | and ~");
    const std::vector<AttributeStore::Column>& columns = data_.attributes.columns();
    auto column = [&](const std::string& name) {
        const long c = data_.attributes.find(name);
        if (c < 0) {
            std::vector<std::string> names;
            for (const auto& col : columns) names.push_back(col.name);
            std::sort(names.begin(), names.end());
            std::string known;
            for (const std::string& n : names) known += (known.empty() ? "" : ", ") + n;
            fail_argument("filter: unknown attribute " + quoted(name) + " (this index has: " +
                          (known.empty() ? "none" : known) + ")");
        }
        return std::size_t(c);
    };
    FilterNode node;
    switch (f.op) {
        case FilterExpr::Op::labels_any:
        case FilterExpr::Op::labels_all:
            node.op = f.op == FilterExpr::Op::labels_any ? FilterNode::Op::labels_any : FilterNode::Op::labels_all;
            node.column = column(f.column);
            if (columns[node.column].kind != ColumnKind::labels)
                fail_argument("filter: column " + quoted(f.column) + " holds " + column_kind_name(columns[node.column].kind) +
                              " values, not labels (use Filter.range / eq)");
            node.values = f.values;
            return node;
        case FilterExpr::Op::range:
            node.column = column(f.column);
            switch (columns[node.column].kind) {
                case ColumnKind::int64:
                    node.op = FilterNode::Op::range_int;
                    node.int_lo = f.int_lo, node.int_hi = f.int_hi;
                    return node;
                case ColumnKind::float64:
                    node.op = FilterNode::Op::range_float;
                    node.float_lo = f.float_lo, node.float_hi = f.float_hi;
                    return node;
                case ColumnKind::labels:
                    fail_argument("filter: column " + quoted(f.column) + " holds labels (use Filter.labels(" +
                                  quoted(f.column) + ").any / .all)");
            }
            return node;
        case FilterExpr::Op::in_set:
            node.column = column(f.column);
            switch (columns[node.column].kind) {
                case ColumnKind::int64:
                    node.op = FilterNode::Op::in_int;
                    node.values = f.values;
                    return node;
                case ColumnKind::float64:
                    node.op = FilterNode::Op::in_float;
                    node.floats = f.floats;
                    return node;
                case ColumnKind::labels:
                    fail_argument("filter: column " + quoted(f.column) + " holds labels; Filter.isin takes a numeric " +
                                  "column (use Filter.labels(" + quoted(f.column) + ").any(values))");
            }
            return node;
        case FilterExpr::Op::ids:
            node.op = FilterNode::Op::slots;
            node.bits.assign(bit_words(data_.slots), 0);
            for (std::int64_t id : f.values) {
                const auto it = data_.slot_of.find(id);
                if (it == data_.slot_of.end()) fail_argument("filter: id " + std::to_string(id) + " is not in the index");
                set_bit(node.bits.data(), it->second);
            }
            return node;
        case FilterExpr::Op::mask:
            node.op = FilterNode::Op::slots;
            node.bits.assign(bit_words(data_.slots), 0);
            for (std::size_t p = 0; p < data_.slots; ++p) {
                const std::int64_t id = data_.ids[p];
                if (id >= 0 && std::uint64_t(id) < f.mask.size() && f.mask[std::size_t(id)]) set_bit(node.bits.data(), p);
            }
            return node;
        case FilterExpr::Op::all_of:
        case FilterExpr::Op::any_of:
        case FilterExpr::Op::none_of:
            node.op = f.op == FilterExpr::Op::all_of   ? FilterNode::Op::all_of
                      : f.op == FilterExpr::Op::any_of ? FilterNode::Op::any_of
                                                       : FilterNode::Op::none_of;
            if (f.children.empty() || (f.op == FilterExpr::Op::none_of && f.children.size() != 1))
                fail_argument("filter: empty combination");
            node.children.reserve(f.children.size());
            for (const auto& child : f.children) node.children.push_back(compile_locked(*child, level + 1));
            return node;
    }
    return node;
}

}  // namespace latefold
