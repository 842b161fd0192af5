// Where and with how many threads a stage computes, without LibTorch headers.
//
// Thread safety: ConfigureCompute changes process-wide pools; call it before
// computing, from one thread.
#pragma once

#include <string>

#include "util/status.h"

namespace paretopipe {

// The number of logical CPUs this process may run on.
int DefaultThreads();

// Prepares this process to compute stages:
//  - sets LibTorch's intra-op pool to `threads` and, when OpenBLAS is the
//    loaded BLAS, OpenBLAS's pool too (LibTorch does not forward its setting
//    to OpenBLAS, so without this a "1-thread" run would still use every core
//    inside BLAS calls);
//  - keeps glibc's malloc from returning activation buffers to the kernel
//    between calls: every buffer comes from the heap (no mmap), and up to
//    512 MiB of freed heap is kept. With glibc's defaults, large buffers are
//    mmapped and unmapped per call and every call pays page faults; on
//    mobilenet_v2 that cost 35% of compute at batch 1 and more with two
//    threads, more at some cuts than others (docs/BENCHMARKS.md).
// Returns InvalidArgument for threads < 1.
Status ConfigureCompute(int threads);

}  // namespace paretopipe
