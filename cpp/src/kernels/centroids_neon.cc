// The centroid interaction kernel for NEON: 8 int16 columns a register.
#include <arm_neon.h>

#include "centroid_template.h"

namespace latefold {
namespace kernels {
namespace {

struct NeonI16 {
    using reg = int16x8_t;
    static constexpr std::size_t lanes = 8;
    static reg load(const std::int16_t* p) { return vld1q_s16(p); }
    static reg add(reg a, reg b) { return vaddq_s16(a, b); }
    static reg max(reg a, reg b) { return vmaxq_s16(a, b); }
    static reg lowest() { return vdupq_n_s16(-32768); }
    static std::int64_t sum(reg v) { return vaddlvq_s16(v); }
};

}  // namespace

std::int64_t centroid_maxsim_neon(const std::int16_t* table, std::size_t padded, const std::uint16_t* codes,
                                  std::size_t count, std::size_t levels) {
    return centroid_maxsim<NeonI16>(table, padded, codes, count, levels);
}

}  // namespace kernels
}  // namespace latefold
