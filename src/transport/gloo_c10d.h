// The c10d headers of the torch backend (gloo_link.cc), from wherever this
// LibTorch keeps them: PyTorch began renaming c10d's headers from .hpp to .h
// in 2025 (pytorch/pytorch#162033), so a LibTorch may ship either. Also
// compiled by cmake/check_c10d_gloo.cc, whose result decides whether the
// torch backend is built at all.
//
// REQUIRES: USE_DISTRIBUTED and USE_C10D_GLOO defined (without them
// ProcessGroupGloo's header declares nothing). Includes LibTorch: only
// gloo_link.cc and the configure check include this.
#pragma once

#if __has_include(<torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>)
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#else
#include <torch/csrc/distributed/c10d/PrefixStore.h>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.h>
#include <torch/csrc/distributed/c10d/TCPStore.h>
#endif
