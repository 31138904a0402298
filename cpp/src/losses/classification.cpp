// The classification family's entries in this level's row-wise kernel table.
#include "losses/classification.h"

#include "simd/rowwise_table.h"

namespace fastloss {
namespace FASTLOSS_ISA_NS {

void fill_classification(detail::KernelTable& table) { fill_row_family<Family::Classification>(table); }

}  // namespace FASTLOSS_ISA_NS
}  // namespace fastloss
