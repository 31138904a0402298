// One tile of the built-in matrix product (simd/gemm.h), compiled once per
// ISA level: pack A and B per K block, then the MR x NR micro-kernel.
#include "simd/gemm.h"
#include "simd/kernel_table.h"
#include "simd/vec.h"

namespace fastloss {
namespace FASTLOSS_ISA_NS {
namespace {

constexpr int kMR = 6;

// Rows [0, m) x columns [0, kc) of A into MR-row micro-panels: element (i, p)
// of panel ip at pack[(ip * kc + p) * MR + i % MR]; rows past m are 0. The
// loop runs along A's shorter stride, so a row-major and a transposed A both
// read memory in order.
template <class T>
void pack_rows(const T* a, int64_t rs, int64_t cs, int64_t m, int64_t kc, T* pack) {
  const int64_t panels = (m + kMR - 1) / kMR;
  const bool along_k = (cs < 0 ? -cs : cs) <= (rs < 0 ? -rs : rs);
  for (int64_t ip = 0; ip < panels; ++ip) {
    T* out = pack + ip * kc * kMR;
    const int64_t rows = m - ip * kMR < kMR ? m - ip * kMR : kMR;
    if (along_k) {
      for (int64_t i = 0; i < rows; ++i) {
        const T* src = a + (ip * kMR + i) * rs;
        for (int64_t p = 0; p < kc; ++p) out[p * kMR + i] = src[p * cs];
      }
    } else {
      for (int64_t p = 0; p < kc; ++p)
        for (int64_t i = 0; i < rows; ++i) out[p * kMR + i] = a[(ip * kMR + i) * rs + p * cs];
    }
    for (int64_t i = rows; i < kMR; ++i)
      for (int64_t p = 0; p < kc; ++p) out[p * kMR + i] = T(0);
  }
}

template <class T>
void gemm_tile(const detail::GemmTile& t) {
  using V = typename VecOf<T>::type;
  constexpr int L = kLanes<T>;
  constexpr int NR = 2 * L;
  static_assert(detail::kGemmNC % NR == 0 && detail::kGemmMC % kMR == 0, "tile sizes");
  const T* A = static_cast<const T*>(t.a);
  const T* B = static_cast<const T*>(t.b);
  T* C = static_cast<T*>(t.c);
  T* ap = static_cast<T*>(t.a_pack);
  T* bp = static_cast<T*>(t.b_pack);
  const T beta = static_cast<T>(t.beta);
  if (t.k == 0) {  // C = beta * C (beta 0: zeros, C not read)
    for (int64_t i = 0; i < t.m; ++i)
      for (int64_t j = 0; j < t.n; ++j) {
        T& c = C[i * t.c_rs + j * t.c_cs];
        c = t.beta == 0 ? T(0) : beta * c;
      }
    return;
  }
  const int64_t m_panels = (t.m + kMR - 1) / kMR, n_panels = (t.n + NR - 1) / NR;
  for (int64_t p0 = 0; p0 < t.k; p0 += detail::kGemmKC) {
    const int64_t kc = t.k - p0 < detail::kGemmKC ? t.k - p0 : detail::kGemmKC;
    pack_rows(A + p0 * t.a_cs, t.a_rs, t.a_cs, t.m, kc, ap);
    // B's columns are A's rows of B transposed: the same packing with NR.
    for (int64_t jp = 0; jp < n_panels; ++jp) {
      T* out = bp + jp * kc * NR;
      const int64_t cols = t.n - jp * NR < NR ? t.n - jp * NR : NR;
      const T* src = B + p0 * t.b_rs + jp * NR * t.b_cs;
      if ((t.b_cs < 0 ? -t.b_cs : t.b_cs) <= (t.b_rs < 0 ? -t.b_rs : t.b_rs)) {
        for (int64_t p = 0; p < kc; ++p) {
          for (int64_t j = 0; j < cols; ++j) out[p * NR + j] = src[p * t.b_rs + j * t.b_cs];
          for (int64_t j = cols; j < NR; ++j) out[p * NR + j] = T(0);
        }
      } else {
        for (int64_t j = 0; j < cols; ++j)
          for (int64_t p = 0; p < kc; ++p) out[p * NR + j] = src[p * t.b_rs + j * t.b_cs];
        for (int64_t p = 0; p < kc; ++p)
          for (int64_t j = cols; j < NR; ++j) out[p * NR + j] = T(0);
      }
    }
    const bool first = p0 == 0;
    for (int64_t jp = 0; jp < n_panels; ++jp) {
      const T* b = bp + jp * kc * NR;
      const int64_t cols = t.n - jp * NR < NR ? t.n - jp * NR : NR;
      for (int64_t ip = 0; ip < m_panels; ++ip) {
        const T* a = ap + ip * kc * kMR;
        V acc[kMR][2];
#pragma GCC unroll 6
        for (int i = 0; i < kMR; ++i) acc[i][0] = acc[i][1] = V{};
        for (int64_t p = 0; p < kc; ++p) {
          const V b0 = load<V>(b + p * NR), b1 = load<V>(b + p * NR + L);
#pragma GCC unroll 6
          for (int i = 0; i < kMR; ++i) {
            const V x = splat<V>(a[p * kMR + i]);
            acc[i][0] += x * b0;
            acc[i][1] += x * b1;
          }
        }
        T out[kMR][NR];
        for (int i = 0; i < kMR; ++i) {
          store(&out[i][0], acc[i][0]);
          store(&out[i][L], acc[i][1]);
        }
        const int64_t rows = t.m - ip * kMR < kMR ? t.m - ip * kMR : kMR;
        for (int64_t i = 0; i < rows; ++i) {
          T* c = C + (ip * kMR + i) * t.c_rs + jp * NR * t.c_cs;
          for (int64_t j = 0; j < cols; ++j) {
            T& cij = c[j * t.c_cs];
            const T v = out[i][j];
            cij = !first ? cij + v : (t.beta == 0 ? v : beta * cij + v);
          }
        }
      }
    }
  }
}

}  // namespace

void fill_gemm(detail::KernelTable& table) {
  table.gemm_tile[static_cast<int>(DType::Float32)] = &gemm_tile<float>;
  table.gemm_tile[static_cast<int>(DType::Float64)] = &gemm_tile<double>;
}

}  // namespace FASTLOSS_ISA_NS
}  // namespace fastloss
