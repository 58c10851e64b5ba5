#include "latefold/random.h"

#include <cmath>

namespace latefold {
namespace random {

double log_v1(double s) noexcept {
    int e = 0;
    double m = std::frexp(s, &e);  // s = m 2^e, m in [0.5, 1): exact
    if (m < 0.70710678118654752440) {
        m *= 2.0;  // exact
        e -= 1;
    }
    const double f = (m - 1.0) / (m + 1.0);
    const double f2 = f * f;
    double series = 1.0 / 23.0;
    for (int n = 21; n >= 1; n -= 2) series = series * f2 + 1.0 / double(n);
    return double(e) * 0.69314718055994530942 + 2.0 * f * series;
}

std::vector<float> normals(std::uint64_t key, std::size_t count) {
    std::vector<float> out;
    out.reserve(count + 1);
    for (std::uint64_t pair = 0; out.size() < count; ++pair) {
        const double u = 2.0 * unit(word(key, 2 * pair)) - 1.0;
        const double v = 2.0 * unit(word(key, 2 * pair + 1)) - 1.0;
        const double s = u * u + v * v;
        if (s == 0.0 || s >= 1.0) continue;
        const double f = std::sqrt(-2.0 * log_v1(s) / s);
        out.push_back(float(u * f));
        out.push_back(float(v * f));
    }
    out.resize(count);
    return out;
}

}  // namespace random
}  // namespace latefold
