#include "latefold/filter.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace latefold {

std::shared_ptr<FilterExpr> combine_filters(FilterExpr::Op op,
                                            const std::vector<std::shared_ptr<const FilterExpr>>& children) {
    if (op == FilterExpr::Op::none_of ? children.size() != 1 : children.empty())
        throw std::invalid_argument("filter: empty combination");
    auto f = std::make_shared<FilterExpr>();
    f->op = op;
    std::size_t below = 0;
    for (const auto& child : children) {
        if (op != FilterExpr::Op::none_of && child->op == op) {
            f->children.insert(f->children.end(), child->children.begin(), child->children.end());
            below = std::max(below, child->depth - 1);
        } else {
            f->children.push_back(child);
            below = std::max(below, child->depth);
        }
    }
    f->depth = below + 1;
    if (f->depth > max_filter_depth)
        throw std::invalid_argument("filter: more than " + std::to_string(max_filter_depth) +
                                    " levels of nested &, | and ~");
    return f;
}

namespace {

// The leaves: each writes its slots into `words`.
void evaluate_leaf(const FilterNode& node, const AttributeStore& attributes, std::uint64_t* words) {
    switch (node.op) {
        case FilterNode::Op::labels_any: attributes.labels_any(node.column, node.values, words); return;
        case FilterNode::Op::labels_all: attributes.labels_all(node.column, node.values, words); return;
        case FilterNode::Op::range_int: attributes.range_int(node.column, node.int_lo, node.int_hi, words); return;
        case FilterNode::Op::range_float:
            attributes.range_float(node.column, node.float_lo, node.float_hi, words);
            return;
        case FilterNode::Op::in_int: attributes.in_int(node.column, node.values, words); return;
        case FilterNode::Op::in_float: attributes.in_float(node.column, node.floats, words); return;
        case FilterNode::Op::slots: {
            const std::size_t n_words = bit_words(attributes.rows());
            std::memset(words, 0, n_words * sizeof(std::uint64_t));
            std::copy_n(node.bits.begin(), std::min(node.bits.size(), n_words), words);
            return;
        }
        case FilterNode::Op::all_of:
        case FilterNode::Op::any_of:
        case FilterNode::Op::none_of: return;  // combinations: evaluate_filter's stack
    }
}

}  // namespace

void evaluate_filter(const FilterNode& root, const AttributeStore& attributes, std::uint64_t* words) {
    const std::size_t rows = attributes.rows(), n_words = bit_words(rows);
    // A node on the stack writes into `out`; an and/or evaluates its first child into `out` and
    // each later one into the scratch bitset of its own stack level, then folds it in.
    struct Frame {
        const FilterNode* node;
        std::uint64_t* out;
        std::size_t next;  // children started
    };
    std::vector<Frame> stack{{&root, words, 0}};
    std::vector<std::vector<std::uint64_t>> scratch;  // [level]: the children of that level's node
    while (!stack.empty()) {
        const std::size_t level = stack.size() - 1;
        const Frame frame = stack[level];
        const FilterNode& node = *frame.node;
        std::uint64_t* out = frame.out;
        if (node.op == FilterNode::Op::none_of) {
            if (frame.next == 0) {
                stack[level].next = 1;
                stack.push_back({&node.children[0], out, 0});
                continue;
            }
            for (std::size_t w = 0; w < n_words; ++w) out[w] = ~out[w];
            if (rows % 64) out[n_words - 1] &= (std::uint64_t(1) << (rows % 64)) - 1;
            stack.pop_back();
            continue;
        }
        if (node.op != FilterNode::Op::all_of && node.op != FilterNode::Op::any_of) {
            evaluate_leaf(node, attributes, out);
            stack.pop_back();
            continue;
        }
        if (frame.next >= 2) {  // fold in the child just evaluated
            const std::uint64_t* other = scratch[level].data();
            if (node.op == FilterNode::Op::all_of)
                for (std::size_t w = 0; w < n_words; ++w) out[w] &= other[w];
            else
                for (std::size_t w = 0; w < n_words; ++w) out[w] |= other[w];
        }
        if (frame.next == node.children.size()) {
            stack.pop_back();
            continue;
        }
        std::uint64_t* target = out;
        if (frame.next > 0) {
            if (scratch.size() <= level) scratch.resize(level + 1);
            scratch[level].resize(n_words);
            target = scratch[level].data();
        }
        stack[level].next = frame.next + 1;
        stack.push_back({&node.children[frame.next], target, 0});
    }
}

}  // namespace latefold
