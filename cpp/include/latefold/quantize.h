// Token storage conversions: float32 / float16 / bfloat16 / int8 token rows to int8 (symmetric,
// a float32 scale per token) or bfloat16 (rounded to nearest even), and the query side of the
// MaxSim kernels over those storages.
#pragma once

#include <cstddef>
#include <cstdint>

#include "latefold/multivectors.h"

namespace latefold {

/// int8 codes of one row of `dim` values: scale = max |x_k| / 127 (0 for a row of zeros) and
/// codes[k] = x_k / scale rounded to nearest even, so |codes[k]| <= 127 and the row is
/// scale * codes within scale / 2 per value. Returns the scale. Values must be finite.
float quantize_int8_row(const float* x, std::size_t dim, std::int8_t* codes) noexcept;

/// Every token of `from` (any storage, validated, values finite) converted to `to` (int8 or
/// bfloat16) into `tokens` (from.rows x from.dim, one row after another; int8_t or uint16_t
/// elements) and, for int8, one scale per row into `scales`. Rows are converted on up to
/// `threads` threads (0 = all cores). Throws std::invalid_argument when a bfloat16 value would
/// round past the largest bfloat16.
void quantize_tokens(const MultiVectorsView& from, DType to, void* tokens, float* scales, std::size_t threads = 0);

}  // namespace latefold
