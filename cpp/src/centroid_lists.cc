// CentroidLists (centroid_lists.h).
#include "latefold/centroid_lists.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "latefold/attributes.h"
#include "latefold/common.h"

namespace latefold {

void CentroidLists::build(std::size_t count, const std::uint16_t* codes, std::size_t levels,
                          const std::int64_t* offsets, std::size_t slots, const std::uint64_t* live) {
    CentroidLists out;
    out.lists_.resize(count);
    out.reserve(codes, levels, offsets, slots, live);
    out.append(codes, levels, offsets, slots, 0, live);
    lists_.swap(out.lists_);
}

void CentroidLists::reserve(const std::uint16_t* codes, std::size_t levels, const std::int64_t* offsets,
                            std::size_t n, const std::uint64_t* live) {
    // Entries each list gains: a document counts once per distinct centroid.
    std::vector<std::size_t> extra(lists_.size(), 0);
    std::vector<std::uint32_t> seen_in(lists_.size(), 0);  // 1 + the last document counted
    for (std::size_t d = 0; d < n; ++d) {
        if (live && !test_bit(live, d)) continue;
        for (std::int64_t t = offsets[d] - offsets[0]; t < offsets[d + 1] - offsets[0]; ++t) {
            const std::uint16_t c = codes[std::size_t(t) * levels];
            if (seen_in[c] != d + 1) {
                seen_in[c] = std::uint32_t(d + 1);
                ++extra[c];
            }
        }
    }
    for (std::size_t c = 0; c < lists_.size(); ++c) reserve_growing(lists_[c], lists_[c].size() + extra[c]);
}

void CentroidLists::append(const std::uint16_t* codes, std::size_t levels, const std::int64_t* offsets,
                           std::size_t n, std::uint32_t first_slot, const std::uint64_t* live) noexcept {
    for (std::size_t d = 0; d < n; ++d) {
        if (live && !test_bit(live, d)) continue;
        const std::uint32_t slot = first_slot + std::uint32_t(d);
        for (std::int64_t t = offsets[d] - offsets[0]; t < offsets[d + 1] - offsets[0]; ++t) {
            std::vector<std::uint32_t>& list = lists_[codes[std::size_t(t) * levels]];
            if (list.empty() || list.back() != slot) list.push_back(slot);  // within reserved room
        }
    }
}

std::size_t CentroidLists::candidates(const float* table, std::size_t padded, std::size_t tokens, std::size_t probe,
                                      const std::uint64_t* allowed, std::size_t slots, std::size_t width,
                                      Scratch& s, std::vector<ScoredId>& out) const {
    const std::size_t count = lists_.size();
    probe = std::min(probe, count);
    // Each token's `probe` best centroids, kept sorted (best first) in a row of top_value /
    // top_code while the table's rows stream by.
    s.top_value.assign(tokens * probe, -std::numeric_limits<float>::infinity());
    s.top_code.assign(tokens * probe, 0);
    for (std::size_t c = 0; c < count; ++c) {
        const float* row = table + c * padded;
        for (std::size_t j = 0; j < tokens; ++j) {
            float* value = s.top_value.data() + j * probe;
            if (!(row[j] > value[probe - 1])) continue;
            std::uint32_t* code = s.top_code.data() + j * probe;
            std::size_t i = probe - 1;
            for (; i > 0 && row[j] > value[i - 1]; --i) {
                value[i] = value[i - 1];
                code[i] = code[i - 1];
            }
            value[i] = row[j];
            code[i] = std::uint32_t(c);
        }
    }
    // A weight per probed list: the table entries of the tokens probing it (NaN: not probed).
    constexpr float unprobed = std::numeric_limits<float>::quiet_NaN();
    s.weight.resize(count, unprobed);
    s.probed.clear();
    for (std::size_t i = 0; i < tokens * probe; ++i) {
        if (s.top_value[i] == -std::numeric_limits<float>::infinity()) continue;  // fewer centroids than probes
        float& w = s.weight[s.top_code[i]];
        if (std::isnan(w)) {
            s.probed.push_back(s.top_code[i]);
            w = s.top_value[i];
        } else {
            w += s.top_value[i];
        }
    }
    // Each allowed document of the probed lists, its score the sum of their weights.
    s.score.resize(slots);
    if (s.seen.size() != bit_words(slots)) s.seen.assign(bit_words(slots), 0);  // cleared again below
    s.touched.clear();
    std::size_t read = 0;
    for (const std::uint32_t c : s.probed) {
        const float w = s.weight[c];
        s.weight[c] = unprobed;
        read += lists_[c].size();
        for (const std::uint32_t slot : lists_[c]) {
            if (!test_bit(allowed, slot)) continue;
            if (test_bit(s.seen.data(), slot)) {
                s.score[slot] += w;
            } else {
                set_bit(s.seen.data(), slot);
                s.score[slot] = w;
                s.touched.push_back(slot);
            }
        }
    }
    const std::size_t first = out.size();
    for (const std::uint32_t slot : s.touched) {
        out.push_back({s.score[slot], std::int64_t(slot)});
        s.seen[slot / 64] &= ~(std::uint64_t(1) << (slot % 64));
    }
    if (out.size() - first > width) {
        std::nth_element(out.begin() + std::ptrdiff_t(first), out.begin() + std::ptrdiff_t(first + width), out.end(),
                         RanksBefore());
        out.resize(first + width);
    }
    return read;
}

std::size_t CentroidLists::bytes() const noexcept {
    std::size_t entries = 0;
    for (const auto& list : lists_) entries += list.size();
    return entries * sizeof(std::uint32_t);
}

}  // namespace latefold
