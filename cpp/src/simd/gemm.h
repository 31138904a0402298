// The built-in matrix product of linear_cross_entropy (fastloss/linear_cross_entropy.h):
// C = beta * C + A * B over strided operands, no BLAS needed.
//
// Blocks: C is cut into tiles of kGemmMC x kGemmNC; one thread computes a
// whole tile, walking K in blocks of kGemmKC. For each K block it packs its
// slice of A into MR-row micro-panels and of B into NR-column micro-panels
// (zero-padded; the packing reads any strides, negative or 0, so the product
// needs no contiguous copies), then an MR x NR micro-kernel (MR = 6, NR = two
// vectors of the ISA level) keeps its accumulators in registers while it
// walks the K block. The micro-kernel is compiled per ISA level
// (gemm_kernels.cpp, the kernel table's gemm_tile); the blocking, the tiles
// and the threads are here and in gemm.cpp.
//
// Determinism: every C element is sum_p A(i, p) * B(p, j) added in p order
// within a K block (a multiply and an add, never fused: -ffp-contract=off),
// then added to C block after block; nothing depends on the vector width or on
// which thread computes the tile, so results are bitwise identical for any
// thread count and ISA level.
#pragma once

#include <cstddef>
#include <cstdint>

#include "fastloss/fastloss.h"

namespace fastloss {
namespace detail {

constexpr int64_t kGemmMC = 96;   // rows of a tile (a multiple of MR = 6)
constexpr int64_t kGemmNC = 256;  // columns of a tile (a multiple of every level's NR)
constexpr int64_t kGemmKC = 256;  // the K block

// One tile: C (m x n, m <= kGemmMC, n <= kGemmNC) = beta * C + A (m x k) * B
// (k x n); element (i, j) of a matrix at data + i * rs + j * cs (elements).
// beta == 0: C is not read. a_pack and b_pack: kGemmMC * kGemmKC and
// kGemmKC * kGemmNC elements of scratch.
struct GemmTile {
  int64_t m, n, k;
  const void* a;
  int64_t a_rs, a_cs;
  const void* b;
  int64_t b_rs, b_cs;
  void* c;
  int64_t c_rs, c_cs;
  double beta;
  void* a_pack;
  void* b_pack;
};
using GemmTileFn = void (*)(const GemmTile&);

// A strided matrix operand.
struct MatrixRef {
  const void* data;
  int64_t rs, cs;
};

// Bytes of one thread's packing buffers.
inline size_t gemm_panel_bytes(DType dtype) {
  return static_cast<size_t>(kGemmMC * kGemmKC + kGemmKC * kGemmNC) * (dtype == DType::Float32 ? 4 : 8);
}

// C (m x n) = beta * C + A (m x k) * B (k x n) on up to panel_bytes /
// gemm_panel_bytes(dtype) threads (at least one panel set must fit);
// `panels` is 64-byte aligned scratch.
void gemm(DType dtype, int64_t m, int64_t n, int64_t k, MatrixRef a, MatrixRef b, void* c, int64_t c_rs,
          int64_t c_cs, double beta, void* panels, size_t panel_bytes);

}  // namespace detail
}  // namespace fastloss
