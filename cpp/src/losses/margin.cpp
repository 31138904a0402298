// The margin family's entries in this level's kernel table.
#include "losses/margin.h"

#include "simd/elementwise_table.h"

namespace fastloss {
namespace FASTLOSS_ISA_NS {

void fill_margin(detail::KernelTable& table) { fill_family<Family::Margin>(table); }

}  // namespace FASTLOSS_ISA_NS
}  // namespace fastloss
