// MacCounter over at::RecordFunction thread-local callbacks.
#include "model/flop_counter.h"

#include <ATen/record_function.h>

#include <cstring>

namespace paretopipe {

struct MacCounterAccess {
  static int& Depth(MacCounter& c) { return c.depth_; }
};

namespace {

enum class OpKind { kNone, kConv, kTransposedConv, kMatmul };

thread_local MacCounter* tl_counter = nullptr;  // The counter active on this thread.

OpKind Classify(const char* name) {
  static const char* const kConvs[] = {"aten::conv1d", "aten::conv2d", "aten::conv3d",
                                       "aten::convolution", "aten::_convolution"};
  static const char* const kTransposed[] = {"aten::conv_transpose1d", "aten::conv_transpose2d",
                                            "aten::conv_transpose3d"};
  static const char* const kMatmuls[] = {"aten::linear", "aten::addmm", "aten::mm",
                                         "aten::matmul", "aten::bmm", "aten::baddbmm"};
  for (const char* n : kConvs) if (std::strcmp(name, n) == 0) return OpKind::kConv;
  for (const char* n : kTransposed) if (std::strcmp(name, n) == 0) return OpKind::kTransposedConv;
  for (const char* n : kMatmuls) if (std::strcmp(name, n) == 0) return OpKind::kMatmul;
  return OpKind::kNone;
}

// What the start callback learns from the inputs (only valid there in
// PyTorch 2.x) for the end callback, which sees the output.
struct OpContext : at::ObserverContext {
  OpKind kind = OpKind::kNone;
  bool outermost = false;
  int64_t macs_per_output = 0;  // For convolutions and matrix products alike.
  bool transposed = false;
  int64_t input_numel = 0;
};

const at::Tensor* TensorAt(c10::ArrayRef<const c10::IValue> inputs, size_t i) {
  return i < inputs.size() && inputs[i].isTensor() ? &inputs[i].toTensor() : nullptr;
}

std::unique_ptr<at::ObserverContext> OnStart(const at::RecordFunction& fn) {
  const OpKind kind = Classify(fn.name());
  if (kind == OpKind::kNone) return nullptr;
  if (tl_counter == nullptr) return nullptr;
  auto ctx = std::make_unique<OpContext>();
  ctx->kind = kind;
  ctx->outermost = MacCounterAccess::Depth(*tl_counter)++ == 0;
  if (!ctx->outermost) return ctx;
  const auto inputs = fn.inputs();
  if (kind == OpKind::kMatmul) {
    // linear(input, weight[out, in]); addmm(bias, a, b); mm/matmul/bmm(a, b); baddbmm(c, a, b):
    // the contracted dimension is the last of the first matrix operand.
    const bool bias_first = std::strcmp(fn.name(), "aten::addmm") == 0 ||
                            std::strcmp(fn.name(), "aten::baddbmm") == 0;
    if (const at::Tensor* a = TensorAt(inputs, bias_first ? 1 : 0); a && a->dim() > 0) {
      ctx->macs_per_output = a->size(-1);
    }
  } else if (const at::Tensor* weight = TensorAt(inputs, 1); weight && weight->dim() >= 2) {
    int64_t kernel_area = 1;
    for (int64_t d = 2; d < weight->dim(); ++d) kernel_area *= weight->size(d);
    // aten::convolution and aten::_convolution carry `transposed` as argument 6.
    bool transposed = kind == OpKind::kTransposedConv;
    if (kind == OpKind::kConv && inputs.size() > 6 && inputs[6].isBool()) transposed = inputs[6].toBool();
    ctx->transposed = transposed;
    // Normal weight: [out, in/groups, k...]; transposed: [in, out/groups, k...].
    ctx->macs_per_output = weight->size(1) * kernel_area;
    if (const at::Tensor* input = TensorAt(inputs, 0)) ctx->input_numel = input->numel();
  }
  return ctx;
}

void OnEnd(const at::RecordFunction& fn, at::ObserverContext* base) {
  auto* ctx = static_cast<OpContext*>(base);
  if (ctx == nullptr || tl_counter == nullptr) return;
  --MacCounterAccess::Depth(*tl_counter);
  if (!ctx->outermost) return;
  if (ctx->transposed) {
    // Each input element scatters into (out/groups) x kernel-area outputs.
    tl_counter->Add(ctx->input_numel * ctx->macs_per_output);
    return;
  }
  const auto& outputs = fn.outputs();
  if (!outputs.empty() && outputs[0].isTensor()) {
    tl_counter->Add(outputs[0].toTensor().numel() * ctx->macs_per_output);
  }
}

}  // namespace

MacCounter::MacCounter() {
  tl_counter = this;
  handle_ = at::addThreadLocalCallback(
      at::RecordFunctionCallback(OnStart, OnEnd).needsInputs(true).needsOutputs(true));
}

MacCounter::~MacCounter() {
  at::removeCallback(handle_);
  tl_counter = nullptr;
}

}  // namespace paretopipe
