// Exact MaxSim (late-interaction, Chamfer) scoring.
//
//   MaxSim(Q, D) = sum over query tokens q in Q of  max over document tokens x in D of <q, x>
//
// with inner products on the vectors as given (ColBERT-style models L2-normalise them).
// Not symmetric: the sum runs over the query's tokens. The documents' storage sets the arithmetic:
//   float32, float16: float32 with fused multiply-adds (float16 widened exactly);
//   int8 (a scale per token): queries quantized the same way inside the call
//     (quantize_int8_row), inner products exact in int32, then scaled: the same bits on every path;
//   bfloat16: queries rounded to bfloat16 inside the call, products exact and added in float32.
// Queries may be in any storage (they are read as float32 values first). int8 documents have at
// most 65,536 values per token.
//
// Every function validates all of its input (dimensions, offsets, ids, k) before computing and
// throws std::invalid_argument naming the argument; outputs are written only after that.
// `threads` = 0 uses every hardware thread.
#pragma once

#include <cstddef>
#include <cstdint>

#include "latefold/multivectors.h"

namespace latefold {

/// scores[q * docs.count + d] = MaxSim(queries[q], docs[d]).
void maxsim_scores(const MultiVectorsView& queries, const MultiVectorsView& docs, float* scores,
                   std::size_t threads = 0);

/// scores[q * per_query + j] = MaxSim(queries[q], docs[candidates[q * per_query + j]]);
/// a candidate id of -1 is padding and scores -infinity. Ids must lie in [-1, docs.count).
/// Docs whose values are not yet checked (a list of arrays): the documents the call reads are
/// checked, the candidates; a NaN in a document that is not a candidate is not reported. An
/// error names the lowest bad candidate. Queries are all checked.
void maxsim_rerank(const MultiVectorsView& queries, const MultiVectorsView& docs,
                   const std::int64_t* candidates, std::size_t per_query, float* scores,
                   std::size_t threads = 0);

/// Exhaustive top-k: for each query the k documents of highest MaxSim, best first, ties broken
/// by the lower document index. Writes k entries per query to scores and ids; 1 <= k <= docs.count.
void maxsim_topk(const MultiVectorsView& queries, const MultiVectorsView& docs, std::size_t k,
                 float* scores, std::int64_t* ids, std::size_t threads = 0);

}  // namespace latefold
