// core/memory.hpp: the process allocator. Release builds link mimalloc (Debian's
// libmimalloc), which serves the many small, short-lived allocations of a request faster than
// glibc's malloc; sanitizer and fuzz builds keep the system allocator they intercept.
#pragma once

namespace sluice {

// Returns the free memory the calling thread's allocator keeps to the system (mimalloc:
// mi_collect; glibc: malloc_trim). Call on each thread that freed much, after a peak.
void release_free_memory();

}  // namespace sluice
