// Private: the aarch64 Advanced SIMD float vector, the `V` of the templates (tile_templates.h,
// lane_templates.h, dot_rows_template.h). Included only by the *_neon.cc files. In an anonymous
// namespace: the templates instantiated with it stay private to each file, never merged with
// another path's code.
#pragma once

#include <arm_neon.h>

#include <cmath>

#include "latefold/common.h"

namespace latefold {
namespace kernels {
namespace {

struct Neon {
    using reg = float32x4_t;
    static constexpr int lanes = 4;
    static reg set1(float v) { return vdupq_n_f32(v); }
    static reg add(reg a, reg b) { return vaddq_f32(a, b); }
    static void keep_less(reg v, reg c, reg& best, reg& best_c) {
        const uint32x4_t less = vcltq_f32(v, best);
        best = vbslq_f32(less, v, best);
        best_c = vbslq_f32(less, c, best_c);
    }
    static reg zero() { return vdupq_n_f32(0.0f); }
    static reg lowest() { return vdupq_n_f32(-INFINITY); }
    static reg load(const float* p) { return vld1q_f32(p); }
    static reg load_row(const float* p) { return vld1q_f32(p); }
    static reg load_row(const half_bits* p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }
    // Half rows with a finiteness check on the way (widen_template.h): the largest
    // exponent field seen; a half is NaN or infinite when its field is all ones.
    using hcheck = uint16x4_t;
    static hcheck hzero() { return vdup_n_u16(0); }
    static reg load_row(const half_bits* p, hcheck& worst) {
        const uint16x4_t h = vld1_u16(p);
        worst = vmax_u16(worst, vand_u16(h, vdup_n_u16(0x7C00)));
        return vcvt_f32_f16(vreinterpret_f16_u16(h));
    }
    static bool all_finite(hcheck worst) { return vmaxv_u16(worst) != 0x7C00; }
    static reg broadcast(const float* p) { return vld1q_dup_f32(p); }
    static reg fma(reg a, reg b, reg c) { return vfmaq_f32(c, a, b); }
    static void store(float* p, reg a) { vst1q_f32(p, a); }
    static reg max(reg a, reg b) { return vmaxq_f32(a, b); }
    static float sum(reg a) { return vaddvq_f32(a); }
};

}  // namespace
}  // namespace kernels
}  // namespace latefold
