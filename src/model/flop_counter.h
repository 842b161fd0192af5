// Counts the multiply-accumulate operations (MACs) of the convolutions and
// matrix products LibTorch runs on this thread, by observing operators as the
// dispatcher calls them. Works for any model, zoo or TorchScript, without
// knowing its modules. Other operators (pooling, activations, additions) are
// not counted: they are under 1% of MACs in the zoo's models, and FLOP counts
// in the literature (torchvision's "GFLOPS" column) count the same way.
//
// Definition: convolution: output elements x (input channels / groups) x
// kernel area; matrix product (linear, addmm, mm, matmul, bmm): output
// elements x the contracted dimension. Nested calls (aten::linear calling
// aten::addmm) count once, at the outermost.
//
// Thread safety: counts only the calling thread; one MacCounter per thread at a time.
#pragma once

#include <cstdint>

namespace paretopipe {

class MacCounter {
 public:
  MacCounter();  // Starts counting on this thread.
  ~MacCounter();  // Stops counting.
  MacCounter(const MacCounter&) = delete;
  MacCounter& operator=(const MacCounter&) = delete;

  // MACs counted since construction or the last Reset().
  int64_t macs() const { return macs_; }
  void Reset() { macs_ = 0; }

  // Called by the operator observer. Not for other callers.
  void Add(int64_t macs) { macs_ += macs; }

 private:
  uint64_t handle_;
  int64_t macs_ = 0;
  int depth_ = 0;  // Counted operators currently open, so nested calls count once.
  friend struct MacCounterAccess;
};

}  // namespace paretopipe
