// core/memory.hpp: the process allocator. Release builds link mimalloc (Debian's
// libmimalloc), which serves the many small, short-lived allocations of a request faster than
// glibc's malloc; sanitizer and fuzz builds keep the system allocator they intercept.
#pragma once

namespace sluice {

// Returns free memory to the system: with mimalloc what the calling thread's heap keeps
// (call it on each thread that freed much), with glibc every arena at once (call it once).
void release_free_memory();
// True when release_free_memory works per thread (mimalloc).
bool free_memory_per_thread();

}  // namespace sluice
