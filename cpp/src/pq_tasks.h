// Private to the product quantizer's files: how its work is cut into tasks for the pool.
#pragma once

#include <cstddef>

namespace latefold {

constexpr std::size_t vectors_per_task = 4096;  // a multiple of the 32-vector fast-scan block
constexpr std::size_t vectors_per_encode = 512;  // smaller: small sets use every thread too

}  // namespace latefold
