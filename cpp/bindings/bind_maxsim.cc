// MaxSim: convert, validate, release the GIL, call. Queries and docs are (tokens, offsets) arrays
// or a RaggedItems (offsets None).
#include "latefold/maxsim.h"
#include "ragged_items.h"

namespace latefold {
namespace bindings {

void bind_maxsim(py::module_& m) {
    m.def(
        "maxsim",
        [](const py::object& q_tokens, const py::object& q_offsets, const py::object& d_tokens,
           const py::object& d_offsets, const py::object& threads) {
            const MultiVectorsView q = as_items(q_tokens, q_offsets, "queries");
            const MultiVectorsView d = as_items(d_tokens, d_offsets, "docs");
            const std::size_t t = as_threads(threads);
            auto scores = new_array<float>({py::ssize_t(q.count), py::ssize_t(d.count)});
            float* out = scores.mutable_data();
            {
                released_gil release;
                maxsim_scores(q, d, out, t);
            }
            return scores;
        },
        py::arg("q_tokens"), py::arg("q_offsets"), py::arg("d_tokens"), py::arg("d_offsets"),
        py::arg("threads") = py::none());

    m.def(
        "maxsim_rerank",
        [](const py::object& q_tokens, const py::object& q_offsets, const py::object& d_tokens,
           const py::object& d_offsets, const py::array& candidates, const py::object& threads) {
            const MultiVectorsView q = as_items(q_tokens, q_offsets, "queries");
            const MultiVectorsView d = as_items(d_tokens, d_offsets, "docs");
            if (!py::isinstance<py::array_t<std::int64_t>>(candidates) || candidates.ndim() != 2)
                type_error("candidates must be a 2-D int64 array");
            require_c_contiguous(candidates, "candidates");
            if (std::size_t(candidates.shape(0)) != q.count)
                value_error("candidates has " + std::to_string(candidates.shape(0)) +
                            " rows for " + std::to_string(q.count) + " queries");
            const std::size_t per_query = std::size_t(candidates.shape(1));
            const std::size_t t = as_threads(threads);
            auto scores = new_array<float>({py::ssize_t(q.count), py::ssize_t(per_query)});
            const auto* ids = static_cast<const std::int64_t*>(candidates.data());
            float* out = scores.mutable_data();
            {
                released_gil release;
                maxsim_rerank(q, d, ids, per_query, out, t);
            }
            return scores;
        },
        py::arg("q_tokens"), py::arg("q_offsets"), py::arg("d_tokens"), py::arg("d_offsets"),
        py::arg("candidates"), py::arg("threads") = py::none());

    m.def(
        "maxsim_topk",
        [](const py::object& q_tokens, const py::object& q_offsets, const py::object& d_tokens,
           const py::object& d_offsets, long long k, const py::object& threads) {
            const MultiVectorsView q = as_items(q_tokens, q_offsets, "queries");
            const MultiVectorsView d = as_items(d_tokens, d_offsets, "docs");
            if (k < 1) value_error("k must be at least 1, got " + std::to_string(k));
            const std::size_t t = as_threads(threads);
            auto scores = new_array<float>({py::ssize_t(q.count), py::ssize_t(k)});
            auto ids = new_array<std::int64_t>({py::ssize_t(q.count), py::ssize_t(k)});
            float* s = scores.mutable_data();
            std::int64_t* i = ids.mutable_data();
            {
                released_gil release;
                maxsim_topk(q, d, std::size_t(k), s, i, t);
            }
            return py::make_tuple(scores, ids);
        },
        py::arg("q_tokens"), py::arg("q_offsets"), py::arg("d_tokens"), py::arg("d_offsets"),
        py::arg("k"), py::arg("threads") = py::none());
}

}  // namespace bindings
}  // namespace latefold
