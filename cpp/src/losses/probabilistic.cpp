// The probabilistic family's entries in this level's kernel table.
#include "losses/probabilistic.h"

#include "simd/elementwise_table.h"

namespace fastloss {
namespace FASTLOSS_ISA_NS {

void fill_probabilistic(detail::KernelTable& table) { fill_family<Family::Probabilistic>(table); }

}  // namespace FASTLOSS_ISA_NS
}  // namespace fastloss
