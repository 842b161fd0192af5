// Where and with how many threads a stage computes, without LibTorch headers.
//
// Thread safety: SetComputeThreads changes process-wide pools; call it before
// computing, from one thread.
#pragma once

#include <string>

#include "util/status.h"

namespace paretopipe {

// The number of logical CPUs this process may run on.
int DefaultThreads();

// Sets LibTorch's intra-op pool and, when OpenBLAS is the loaded BLAS, its
// pool too (LibTorch does not forward its setting to OpenBLAS, so without this
// a "1-thread" run would still use every core inside BLAS calls).
// Returns InvalidArgument for threads < 1.
Status SetComputeThreads(int threads);

}  // namespace paretopipe
