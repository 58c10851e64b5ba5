// The portable random streams behind every seeded object.
//
// Streams of a user's seed in use (stream ids; a new use takes a new id):
//   kind << 32 | repetition   FDE projections, kind = FdeStream 1-4 (fde.h)
//   5 << 32                   k-means++ seeding (kmeans.cc)
//   6 << 32                   k-means: nudges that split a cluster for an empty one (kmeans.cc)
//   7 << 32                   the product quantizer's training sample (pq.cc)
//   8 << 32                   the product quantizer's random rotation, d x d normals (pq_rotation.cc)
//
// Specification "latefold-rng-v1" (mirrored line for line by tests/reference/random.py; the
// same seed gives the same bits on every platform and compiler):
//   mix64(z)        = z ^= z >> 30; z *= 0xBF58476D1CE4E5B9; z ^= z >> 27; z *= 0x94D049BB133111EB;
//                     z ^ (z >> 31)                                   (all arithmetic mod 2^64)
//   key(seed, s)    = mix64(mix64(seed + 0x9E3779B97F4A7C15) ^ s)     stream s of a seed
//   word(key, i)    = mix64(key + (i + 1) * 0x9E3779B97F4A7C15)       i-th 64-bit word (splitmix64)
//   unit(w)         = (w >> 11) * 2^-53                               uniform double in [0, 1)
//   below(w, n)     = ((w >> 32) * n) >> 32                           integer in [0, n), n < 2^32
//   sign(w)         = +1 if (w & 1) else -1
//   normals         : Marsaglia's polar method on word pairs (2j, 2j+1): u = 2 unit - 1,
//                     v = 2 unit - 1, s = u u + v v; pairs with s == 0 or s >= 1 are skipped; an
//                     accepted pair yields u f, v f with f = sqrt(-2 log(s) / s), in that order,
//                     each rounded to float32. log is log_v1 below (basic IEEE operations only,
//                     so no platform's libm enters the result).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace latefold {
namespace random {

constexpr std::uint64_t golden_gamma = 0x9E3779B97F4A7C15ull;
constexpr int generator_version = 1;

constexpr std::uint64_t mix64(std::uint64_t z) noexcept {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

constexpr std::uint64_t stream_key(std::uint64_t seed, std::uint64_t stream) noexcept {
    return mix64(mix64(seed + golden_gamma) ^ stream);
}

constexpr std::uint64_t word(std::uint64_t key, std::uint64_t index) noexcept {
    return mix64(key + (index + 1) * golden_gamma);
}

inline double unit(std::uint64_t w) noexcept { return double(w >> 11) * 0x1.0p-53; }

inline std::uint32_t below(std::uint64_t w, std::uint32_t n) noexcept {
    return std::uint32_t(((w >> 32) * std::uint64_t(n)) >> 32);
}

inline float sign(std::uint64_t w) noexcept { return (w & 1) ? 1.0f : -1.0f; }

/// Natural logarithm of s in (0, 1] from +, -, *, / only (exact to about 1e-16 relative):
/// s = m 2^e with m in [sqrt(1/2), sqrt(2)), log m = 2 atanh(f), f = (m - 1)/(m + 1), summed as
/// the odd series up to f^23 by Horner's rule.
double log_v1(double s) noexcept;

/// The first `count` normals of stream `key` (see the specification above).
std::vector<float> normals(std::uint64_t key, std::size_t count);

}  // namespace random
}  // namespace latefold
