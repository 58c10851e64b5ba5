// MaxSim over int8 tokens (maxsim_i8) on the AMX tile units: a 16 x 16 x 64 tile product
// (tdpbssd, signed by signed bytes, exact in int32) per block of 16 document rows, query group
// and 64 bytes of depth, 16 times the multiply-adds of an AVX-512 VNNI instruction. The tile
// loop is in amx_tiles.h; the results are the same bits as the scalar twin's.
#include "amx_tiles.h"
#include "layouts.h"
#include "table.h"

namespace latefold {
namespace kernels {

void maxsim_i8_avx512vnni(const std::int8_t* query, const float* query_scales, std::size_t padded, std::size_t dim,
                          const std::int8_t* tokens, const float* scales, std::size_t stride,
                          const std::int64_t* offsets, std::size_t count, float* out);

void maxsim_i8_amx(const std::int8_t* query, const float* query_scales, std::size_t padded, std::size_t dim,
                   const std::int8_t* tokens, const float* scales, std::size_t stride,
                   const std::int64_t* offsets, std::size_t count, float* out) {
    if (dim % 4 || dim > max_tile_row_bytes)  // rows the tiles cannot take whole
        return maxsim_i8_avx512vnni(query, query_scales, padded, dim, tokens, scales, stride, offsets, count, out);
    tile_maxsim<true>(reinterpret_cast<const std::uint8_t*>(query), query_scales, padded, dim,
                      reinterpret_cast<const std::uint8_t*>(tokens), stride, scales, offsets, count, out);
}

}  // namespace kernels
}  // namespace latefold
