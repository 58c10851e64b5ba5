// GraphIndex: construction of an empty index, small queries of its state, and the helpers the
// search (graph_search.cc), construction (graph_build.cc) and persistence (graph_io.cc) share.
#include "latefold/graph.h"

#include <cstring>
#include <mutex>
#include <new>
#include <string>

namespace latefold {

const char* search_path_name(SearchPath path) noexcept {
    switch (path) {
        case SearchPath::graph: return "graph";
        case SearchPath::gated: return "gated";
        case SearchPath::acorn: return "acorn";
        case SearchPath::exact: return "exact";
        case SearchPath::lists: return "lists";
        default: return "none";
    }
}

GraphIndex::GraphIndex(const GraphParams& params) : params_(params) {
    if (params.dim == 0) fail_argument("dim must be at least 1");
    if (params.degree < 2 || params.degree > 1024) fail_argument("degree must be in [2, 1024]");
    if (params.ef_construction < 1) fail_argument("ef_construction must be at least 1");
    if (!(params.alpha >= 1.0f && params.alpha <= 4.0f)) fail_argument("alpha must be in [1, 4]");
    switch (params.storage) {
        case DType::f32:
        case DType::f16: break;
        case DType::bf16:
        case DType::i8:
            fail_argument(std::string("storage must be 'float32' or 'float16', got '") + dtype_name(params.storage) + "'");
    }
}

GraphIndex::~GraphIndex() {
    // Moved into a block that is never freed: its members are then empty and free nothing.
    if (mutex_.forked_while_changing()) static_cast<void>(new (std::nothrow) Data(std::move(data_)));
}

std::size_t GraphIndex::size() const {
    std::shared_lock<ForkSafeSharedMutex> lock(mutex_);
    return data_.live_count;
}

std::size_t GraphIndex::slots() const {
    std::shared_lock<ForkSafeSharedMutex> lock(mutex_);
    return data_.slots;
}

bool GraphIndex::contains(std::int64_t id) const {
    std::shared_lock<ForkSafeSharedMutex> lock(mutex_);
    return data_.slot_of.count(id) != 0;
}

std::vector<std::pair<std::string, ColumnKind>> GraphIndex::columns() const {
    std::shared_lock<ForkSafeSharedMutex> lock(mutex_);
    std::vector<std::pair<std::string, ColumnKind>> out;
    for (const AttributeStore::Column& c : data_.attributes.columns()) out.emplace_back(c.name, c.kind);
    return out;
}

void GraphIndex::set_quantizer(const ProductQuantizer& quantizer) {
    std::unique_lock<ForkSafeSharedMutex> lock(mutex_);
    if (data_.slots != 0) fail_argument("a quantizer can only be set on an empty index");
    if (!quantizer.trained()) fail_argument("the quantizer is not trained");
    if (quantizer.dim() != params_.dim) fail_argument("the quantizer's dim differs from the index's");
    if (quantizer.metric() != params_.metric) fail_argument("the quantizer's metric differs from the index's");
    data_.quantizer = std::make_unique<ProductQuantizer>(quantizer);
}

}  // namespace latefold
