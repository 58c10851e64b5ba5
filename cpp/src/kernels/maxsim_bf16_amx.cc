// MaxSim over bfloat16 tokens (maxsim_bf16) on the AMX tile units: a 16 x 16 x 32 tile product
// (tdpbf16ps, float32 accumulation) per block of 16 document rows, query group and 32 values of
// depth. The tile loop is in amx_tiles.h.
#include "amx_tiles.h"
#include "layouts.h"
#include "table.h"

namespace latefold {
namespace kernels {

void maxsim_bf16_avx512bf16(const std::uint16_t* query, std::size_t padded, std::size_t dim, const std::uint16_t* tokens,
                            std::size_t stride, const std::int64_t* offsets, std::size_t count, float* out);

void maxsim_bf16_amx(const std::uint16_t* query, std::size_t padded, std::size_t dim, const std::uint16_t* tokens,
                     std::size_t stride, const std::int64_t* offsets, std::size_t count, float* out) {
    if (dim % 2 || 2 * dim > max_tile_row_bytes)  // rows the tiles cannot take whole
        return maxsim_bf16_avx512bf16(query, padded, dim, tokens, stride, offsets, count, out);
    tile_maxsim<false>(reinterpret_cast<const std::uint8_t*>(query), nullptr, padded, 2 * dim,
                       reinterpret_cast<const std::uint8_t*>(tokens), 2 * stride, nullptr, offsets, count, out);
}

}  // namespace kernels
}  // namespace latefold
