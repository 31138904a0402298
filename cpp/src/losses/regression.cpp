// The regression family's entries in this level's kernel table.
#include "losses/regression.h"

#include "simd/elementwise_table.h"

namespace fastloss {
namespace FASTLOSS_ISA_NS {

void fill_regression(detail::KernelTable& table) { fill_family<Family::Regression>(table); }

}  // namespace FASTLOSS_ISA_NS
}  // namespace fastloss
