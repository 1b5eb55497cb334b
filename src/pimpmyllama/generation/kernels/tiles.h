// The tile of activation rows a product takes at a time, as a compile-time size: the
// kernels keep a tile's accumulators in registers, so each size is its own function.
#pragma once

#include <cstdint>
#include <type_traits>

namespace pml_kernels {

// run(std::integral_constant<int, size>{}) for a size in 1..kMax (sizes past kMax run
// as kMax, below 1 as 1): direct calls, as a switch over the sizes would make them.
template <int kMax, typename Run>
inline void with_tile_size(int64_t size, Run&& run) {
  if constexpr (kMax > 1) {
    if (size < kMax) return with_tile_size<kMax - 1>(size, run);
  }
  run(std::integral_constant<int, kMax>{});
}

}  // namespace pml_kernels
