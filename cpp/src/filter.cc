#include "latefold/filter.h"

#include <algorithm>
#include <cstring>

namespace latefold {

void evaluate_filter(const FilterNode& node, const AttributeStore& attributes, std::uint64_t* words) {
    const std::size_t rows = attributes.rows(), n_words = bit_words(rows);
    switch (node.op) {
        case FilterNode::Op::labels_any: attributes.labels_any(node.column, node.values, words); return;
        case FilterNode::Op::labels_all: attributes.labels_all(node.column, node.values, words); return;
        case FilterNode::Op::range_int:
            attributes.range_int(node.column, node.int_lo, node.int_hi, words);
            return;
        case FilterNode::Op::range_float:
            attributes.range_float(node.column, node.float_lo, node.float_hi, words);
            return;
        case FilterNode::Op::slots:
            std::memset(words, 0, n_words * sizeof(std::uint64_t));
            std::copy_n(node.bits.begin(), std::min(node.bits.size(), n_words), words);
            return;
        case FilterNode::Op::none_of: {
            evaluate_filter(node.children[0], attributes, words);
            for (std::size_t w = 0; w < n_words; ++w) words[w] = ~words[w];
            if (rows % 64) words[n_words - 1] &= (std::uint64_t(1) << (rows % 64)) - 1;
            return;
        }
        case FilterNode::Op::all_of:
        case FilterNode::Op::any_of: {
            const bool both = node.op == FilterNode::Op::all_of;
            evaluate_filter(node.children[0], attributes, words);
            std::vector<std::uint64_t> other(n_words);
            for (std::size_t c = 1; c < node.children.size(); ++c) {
                evaluate_filter(node.children[c], attributes, other.data());
                for (std::size_t w = 0; w < n_words; ++w) words[w] = both ? words[w] & other[w] : words[w] | other[w];
            }
            return;
        }
    }
}

}  // namespace latefold
