// fastloss::row_loss: the row-wise losses with every check the Python layer
// makes (options, class weights, target values and class indices) done
// before the kernel writes anything, and the reduction done here. The checks
// key on the option names of losses.h where they can (ignore_index, swap,
// label_smoothing, p), so a loss added to the table gets them without an
// edit here; per-loss rules are the few torch has.
#include <cmath>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>

#include "api/checks.h"
#include "fastloss/fastloss.h"

namespace fastloss {
namespace detail {
bool check_rowwise(RowLoss loss, DType dtype, const RowwiseCall& c);  // dispatch.cpp
}

namespace {

[[noreturn]] void invalid(const std::string& what) { throw std::invalid_argument("fastloss::row_loss: " + what); }

std::string str(int64_t v) { return std::to_string(v); }

// The index of option `name` in a loss's options, or -1.
int option_index(RowLoss loss, const char* name) {
  const char* s = row_loss_info(loss).options;
  const size_t len = std::strlen(name);
  for (int k = 0; *s != '\0'; ++k) {
    while (*s == ' ') ++s;
    const char* end = s;
    while (*end != '\0' && *end != ' ') ++end;
    if (static_cast<size_t>(end - s) == len && std::strncmp(s, name, len) == 0) return k;
    s = end;
    while (*s == ' ') ++s;
  }
  return -1;
}

// A class index of any integer width, as int64 (uint64 beyond int64: its max,
// out of range for any class count, as the kernel reads it).
template <class I>
int64_t read_index(const char* p) {
  I v;
  std::memcpy(&v, p, sizeof v);
  if constexpr (sizeof(I) == 8 && static_cast<I>(-1) > 0)
    return v > static_cast<I>(INT64_MAX) ? INT64_MAX : static_cast<int64_t>(v);
  else
    return static_cast<int64_t>(v);
}

using IndexReader = int64_t (*)(const char*);

IndexReader reader_for(ElementType t, int* size) {
  switch (t) {
    case ElementType::Int8: *size = 1; return &read_index<int8_t>;
    case ElementType::Int16: *size = 2; return &read_index<int16_t>;
    case ElementType::Int32: *size = 4; return &read_index<int32_t>;
    case ElementType::Int64: *size = 8; return &read_index<int64_t>;
    case ElementType::UInt8: *size = 1; return &read_index<uint8_t>;
    case ElementType::UInt16: *size = 2; return &read_index<uint16_t>;
    case ElementType::UInt32: *size = 4; return &read_index<uint32_t>;
    case ElementType::UInt64: *size = 8; return &read_index<uint64_t>;
    default: return nullptr;
  }
}

// The index at p as the caller stored it (a uint64 beyond int64 printed as
// itself, not as the int64 maximum read_index clamps it to).
std::string index_text(ElementType t, const char* p) {
  if (t == ElementType::UInt64) {
    uint64_t v;
    std::memcpy(&v, p, sizeof v);
    return std::to_string(v);
  }
  int size = 0;
  return str(reader_for(t, &size)(p));
}

[[noreturn]] void bad_index(const char* function, const std::string& value, int64_t row, int64_t classes,
                            const char* allowed) {
  throw std::out_of_range(std::string("fastloss::") + function + ": target: class index " + value + " (row " +
                          str(row) + ") is out of bounds for " + str(classes) + " classes" + allowed);
}

}  // namespace

namespace detail {

// Every class index of the target, in row order (declared in api/checks.h).
void check_class_indices(const RowwiseCall& c, bool rows_of_indices, int64_t ignore, bool has_ignore,
                         const char* function) {
  int size = 0;
  const IndexReader read = reader_for(c.target_type, &size);
  const char* base = static_cast<const char*>(c.target.data);
  const int64_t C = c.classes;
  for (int64_t n = 0; n < c.outer; ++n)
    for (int64_t s = 0; s < c.inner; ++s) {
      const int64_t row = n * c.inner + s;
      const int64_t at = n * c.target.strides[0] + s * c.target.strides[2];
      if (rows_of_indices) {
        for (int64_t k = 0; k < C; ++k) {
          const char* p = base + (at + k * c.target.strides[1]) * size;
          const int64_t y = read(p);
          if (y < -1 || y >= C)
            bad_index(function, index_text(c.target_type, p), row, C, " (a row of indices takes [-1, classes))");
        }
      } else {
        const char* p = base + at * size;
        const int64_t y = read(p);
        // (a uint64 beyond int64 is never ignore_index: it reads as INT64_MAX, which is out of range for any
        // class count, and an ignore_index of INT64_MAX must not let 2**64 - 1 through)
        const bool clamped = c.target_type == ElementType::UInt64 && y == INT64_MAX && index_text(c.target_type, p) != str(y);
        if (has_ignore && y == ignore && !clamped) continue;
        if (y < 0 || y >= C) bad_index(function, index_text(c.target_type, p), row, C, "");
      }
    }
}

}  // namespace detail

namespace {

// cosine_embedding_loss: each row's target is 1 or -1 (torch silently gives
// other values loss 0; the Python layer refuses them, and so do we).
template <class T>
void check_signs(const RowwiseCall& c) {
  const T* t = static_cast<const T*>(c.target.data);
  for (int64_t n = 0; n < c.outer; ++n)
    for (int64_t s = 0; s < c.inner; ++s) {
      const T v = t[n * c.target.strides[0] + s * c.target.strides[2]];
      if (!(v == T(1) || v == T(-1)))
        invalid("target: row " + str(n * c.inner + s) + " is " + std::to_string(static_cast<double>(v)) +
                "; cosine_embedding_loss takes 1 or -1");
    }
}

bool reads_class_weight(RowLoss loss) {
  switch (loss) {
    case RowLoss::MultilabelMargin:
    case RowLoss::PairwiseDistance:
    case RowLoss::CosineDistance:
    case RowLoss::CosineEmbedding:
    case RowLoss::TripletMargin:
    case RowLoss::TripletMarginCosine:
      return false;
    default:
      return true;
  }
}

}  // namespace

double row_loss(RowLoss loss, DType dtype, const RowwiseCall& call) {
  const bool has_rows = detail::check_rowwise(loss, dtype, call);
  const RowLossInfo& info = row_loss_info(loss);
  RowwiseCall c = call;
  double* o = c.options;
  const std::string who = std::string(info.name) + "'s ";
  // Options by name (every loss that has them), then the per-loss rules.
  const int ignore = option_index(loss, "ignore_index");
  if (ignore >= 0 && !(std::isfinite(o[ignore]) && std::floor(o[ignore]) == o[ignore] &&
                       std::fabs(o[ignore]) <= 9.2233720368547748e18))
    invalid("options[" + str(ignore) + "]: " + who + "ignore_index must be an integer in the int64 range");
  const int swap = option_index(loss, "swap");
  if (swap >= 0 && o[swap] != 0 && o[swap] != 1)
    invalid("options[" + str(swap) + "]: " + who + "swap is a flag: 0 or 1");
  const int p = option_index(loss, "p");
  if (p >= 0 && !(o[p] > 0)) invalid("options[" + str(p) + "]: " + who + "p must be > 0");
  const int smoothing = option_index(loss, "label_smoothing");
  if (smoothing >= 0) {
    if (o[smoothing] > 1) invalid("options[" + str(smoothing) + "]: " + who + "label_smoothing must be <= 1");
    if (!(o[smoothing] > 0)) o[smoothing] = 0;  // torch smooths only when > 0
  }
  // The beyond-torch options, checked as the Python functions check them.
  for (const char* name : {"z_loss", "epsilon", "gamma", "smooth", "eps"}) {
    const int k = option_index(loss, name);
    if (loss != RowLoss::Dice && std::strcmp(name, "eps") == 0) continue;  // the distances' eps is any real
    if (k >= 0 && !std::isfinite(o[k]))
      invalid("options[" + str(k) + "]: " + who + name + " must be a finite number");
  }
  const int gamma = option_index(loss, "gamma");
  if (gamma >= 0 && o[gamma] < 0) invalid("options[" + str(gamma) + "]: " + who + "gamma must be >= 0");
  const int softcap = option_index(loss, "softcap");  // 0: none
  if (softcap >= 0 && o[softcap] != 0) {
    const double lo = dtype == DType::Float32 ? 1.1754943508222875e-38 : 2.2250738585072014e-308;
    const double hi = dtype == DType::Float32 ? 3.4028234663852886e38 : 1.7976931348623157e308;
    if (!(o[softcap] >= lo && o[softcap] <= hi))
      invalid("options[" + str(softcap) + "]: " + who +
              "softcap must be 0 (none) or a positive normal number of the dtype");
  }
  const bool float_target = c.target_type == ElementType::Float;
  if (ignore >= 0 && float_target && info.target == RowTarget::IndexOrFloat && o[ignore] >= 0)
    invalid("options[" + str(ignore) + "]: " + who + "ignore_index is not supported for probability targets");
  const int margin = option_index(loss, "margin");
  switch (loss) {
    case RowLoss::MultiMargin:
      if (o[p] != 1 && o[p] != 2) invalid("options[" + str(p) + "]: multi_margin_loss's p must be 1 or 2");
      if (dtype == DType::Float32 && c.classes >= (int64_t(1) << 24))
        invalid("classes: float32 multi_margin_loss takes fewer than 2**24 classes");
      break;
    case RowLoss::TripletMargin:
    case RowLoss::TripletMarginCosine:
      // torch checks margin <= 0: a NaN margin passes (and gives NaN), as in the Python functions.
      if (o[margin] <= 0) invalid("options[" + str(margin) + "]: " + who + "margin must be > 0");
      break;
    default:
      break;
  }
  if (c.weight.data != nullptr && !reads_class_weight(loss))
    invalid("weight: " + std::string(info.name) + " takes no class weight");
  // (the triplet kernels would read a target they have no shape for; found by fuzz/run.sh)
  if (c.target.data != nullptr && info.target == RowTarget::None)
    invalid("target: " + std::string(info.name) + " takes no target");
  if (has_rows && c.target.data != nullptr) {
    const bool rows_of_indices = info.target == RowTarget::IndexRows;
    const bool indices = info.target == RowTarget::Index || (info.target == RowTarget::IndexOrFloat && !float_target);
    if (indices || rows_of_indices) {
      const int64_t ii = ignore >= 0 ? static_cast<int64_t>(o[ignore]) : 0;
      detail::check_class_indices(c, rows_of_indices, ii, ignore >= 0, "row_loss");
    }
    if (loss == RowLoss::CosineEmbedding) {
      if (dtype == DType::Float32)
        check_signs<float>(c);
      else
        check_signs<double>(c);
    }
  }
  const RowTotals t = rowwise(loss, dtype, c);
  if (t.errors & 2) throw std::bad_alloc();
  if (t.errors & 1)  // checked above: a target changed by another thread during the call
    throw std::out_of_range("fastloss::row_loss: target: class index " + str(t.bad_index) + " is out of bounds");
  switch (c.reduction) {
    case Reduction::Mean: return t.loss / t.denominator;  // IEEE: 0 / 0 is NaN, the mean of nothing
    case Reduction::Sum: return t.loss;
    default: return 0.0;
  }
}

}  // namespace fastloss
