// The tile of activation rows a product takes at a time, as a compile-time size (the
// kernels keep a tile's accumulators in registers, so each size is its own function),
// and the prefetch of the weights a product reads next.
#pragma once

#include <cstdint>
#include <type_traits>

namespace pml_kernels {

// Asks for `bytes` from `p` on into L1: a hint that never faults, even past an
// array's end (the compiler's builtin, prefetcht0 on x86, so any instruction set's
// kernels can call it). The products call it for the next block's group while they
// compute one: with several rows a block's arithmetic is long enough that the
// hardware's own prefetch falls behind, and the loads of the next block then wait
// on memory.
inline void prefetch(const uint8_t* p, int64_t bytes) {
  for (int64_t i = 0; i < bytes; i += 64) __builtin_prefetch(p + i, 0, 3);
}

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
