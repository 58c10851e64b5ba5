#include "latefold/quantize.h"

#include <atomic>
#include <cmath>
#include <string>

#include "kernels/float32_rows.h"
#include "latefold/thread_pool.h"

namespace latefold {

float quantize_int8_row(const float* x, std::size_t dim, std::int8_t* codes) noexcept {
    float top = 0.0f;
    for (std::size_t k = 0; k < dim; ++k) top = std::fmax(top, std::fabs(x[k]));
    if (top == 0.0f) {
        for (std::size_t k = 0; k < dim; ++k) codes[k] = 0;
        return 0.0f;
    }
    const float scale = top / 127.0f;
    for (std::size_t k = 0; k < dim; ++k) {
        const float code = std::nearbyint(x[k] / scale);
        codes[k] = std::int8_t(std::fmin(127.0f, std::fmax(-127.0f, code)));
    }
    return scale;
}

void quantize_tokens(const MultiVectorsView& from, DType to, void* tokens, float* scales, std::size_t threads) {
    if (to != DType::i8 && to != DType::bf16) fail_argument("tokens can be quantized to int8 or bfloat16 only");
    from.validate("docs");
    check_unchecked_values(from, "docs", threads);
    const kernels::KernelTable& kern = kernels::active_kernels();
    const std::size_t dim = from.dim;
    std::atomic<bool> overflow{false};
    std::vector<AlignedVector<float>> scratch(resolve_threads(threads, from.count));
    parallel_for(from.count, threads, [&](std::size_t i, std::size_t worker) {
        const ItemRows rows = float_items(from, i, i + 1, scratch[worker], kern);
        const float* x = rows.item(i);
        const std::size_t first = std::size_t(from.offsets[i]);
        for (std::size_t t = 0; t < from.item_length(i); ++t) {
            const float* row = x + t * rows.stride;
            const std::size_t r = first + t;
            if (to == DType::i8) {
                scales[r] = quantize_int8_row(row, dim, static_cast<std::int8_t*>(tokens) + r * dim);
            } else {
                std::uint16_t* out = static_cast<std::uint16_t*>(tokens) + r * dim;
                for (std::size_t k = 0; k < dim; ++k) {
                    out[k] = float_to_bfloat16(row[k]);
                    if ((out[k] & 0x7F80u) == 0x7F80u) overflow = true;
                }
            }
        }
    });
    if (overflow) fail_argument("docs: a value is too large for bfloat16 (beyond 3.39e38)");
}

}  // namespace latefold
