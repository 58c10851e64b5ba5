// Huge pages for the large buffers the core allocates (common.h, AlignedAllocator).
#include "latefold/common.h"

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace latefold {

void advise_huge_pages(void* p, std::size_t bytes) noexcept {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    ::madvise(p, bytes / huge_page_bytes * huge_page_bytes, MADV_HUGEPAGE);
#else
    static_cast<void>(p);
    static_cast<void>(bytes);
#endif
}

}  // namespace latefold
