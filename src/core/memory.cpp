#include "core/memory.hpp"

#include <malloc.h>

#if defined(SLUICE_WITH_MIMALLOC)
#include <mimalloc.h>
#endif

namespace sluice {

void release_free_memory() {
#if defined(SLUICE_WITH_MIMALLOC)
  // Pages mimalloc has already scheduled for decommit are returned by its own delay
  // (MIMALLOC_DECOMMIT_DELAY, 25 ms by default, processed as the thread allocates);
  // MIMALLOC_DECOMMIT_DELAY=0 returns every free page at once, for more CPU per request
  // (docs/performance.md has both figures).
  mi_collect(true);
#else
  ::malloc_trim(0);
#endif
}

bool free_memory_per_thread() {
#if defined(SLUICE_WITH_MIMALLOC)
  return true;
#else
  return false;
#endif
}

}  // namespace sluice
