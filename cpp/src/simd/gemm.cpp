// The built-in GEMM's tiles and threads (simd/gemm.h): the pool runs one
// task per panel set; each task takes tiles from a shared counter and
// computes each alone (a tile's result does not depend on who computes it).
#include "simd/gemm.h"

#include <algorithm>
#include <atomic>

#include "simd/kernel_table.h"
#include "simd/parallel.h"

namespace fastloss {
namespace detail {
int threads_for(int64_t numel);  // dispatch.cpp

namespace {

struct Context {
  GemmTileFn tile;
  int64_t m, n, k, tiles_n, tiles;
  MatrixRef a, b;
  char* c;
  int64_t c_rs, c_cs;
  double beta;
  char* panels;
  size_t panel_bytes;
  int64_t elem;
  std::atomic<int64_t> next{0};
};

void run_slot(void* context, int64_t begin, int64_t end) {
  Context& x = *static_cast<Context*>(context);
  for (int64_t slot = begin; slot < end; ++slot) {
    char* a_pack = x.panels + static_cast<size_t>(slot) * x.panel_bytes;
    char* b_pack = a_pack + kGemmMC * kGemmKC * x.elem;
    for (int64_t t; (t = x.next.fetch_add(1, std::memory_order_relaxed)) < x.tiles;) {
      const int64_t i0 = t / x.tiles_n * kGemmMC, j0 = t % x.tiles_n * kGemmNC;
      GemmTile g;
      g.m = std::min(kGemmMC, x.m - i0);
      g.n = std::min(kGemmNC, x.n - j0);
      g.k = x.k;
      g.a = static_cast<const char*>(x.a.data) + i0 * x.a.rs * x.elem;
      g.a_rs = x.a.rs;
      g.a_cs = x.a.cs;
      g.b = static_cast<const char*>(x.b.data) + j0 * x.b.cs * x.elem;
      g.b_rs = x.b.rs;
      g.b_cs = x.b.cs;
      g.c = x.c + (i0 * x.c_rs + j0 * x.c_cs) * x.elem;
      g.c_rs = x.c_rs;
      g.c_cs = x.c_cs;
      g.beta = x.beta;
      g.a_pack = a_pack;
      g.b_pack = b_pack;
      x.tile(g);
    }
  }
}

}  // namespace

void gemm(DType dtype, int64_t m, int64_t n, int64_t k, MatrixRef a, MatrixRef b, void* c, int64_t c_rs,
          int64_t c_cs, double beta, void* panels, size_t panel_bytes) {
  if (m <= 0 || n <= 0) return;
  Context x;
  x.tile = current_table().gemm_tile[static_cast<int>(dtype)];
  x.m = m;
  x.n = n;
  x.k = k;
  x.tiles_n = (n + kGemmNC - 1) / kGemmNC;
  x.tiles = (m + kGemmMC - 1) / kGemmMC * x.tiles_n;
  x.a = a;
  x.b = b;
  x.c = static_cast<char*>(c);
  x.c_rs = c_rs;
  x.c_cs = c_cs;
  x.beta = beta;
  x.panels = static_cast<char*>(panels);
  x.panel_bytes = gemm_panel_bytes(dtype);
  x.elem = dtype == DType::Float32 ? 4 : 8;
  // Threads: what the panels allow, one per tile at most, one for small products.
  const double work = static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(std::max<int64_t>(k, 1));
  const int64_t fit = static_cast<int64_t>(panel_bytes / x.panel_bytes);
  const int64_t threads = std::max<int64_t>(
      1, std::min<int64_t>({fit, x.tiles, work < 4.0e6 ? 1 : static_cast<int64_t>(threads_for(INT64_MAX))}));
  parallel_for(threads, static_cast<int>(threads), 1, run_slot, &x);
}

}  // namespace detail
}  // namespace fastloss
