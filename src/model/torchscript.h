// A user's own model as a TorchScript file (torch.jit.script or
// torch.jit.trace output, e.g. a torchvision model with trained weights),
// split by its dataflow graph instead of by hand-written blocks.
//
// The module is frozen (parameters and attributes become constants, calls to
// submodules are inlined) and its forward graph's top-level nodes, constants
// aside, are numbered 0 .. n-1. A cut at position p (1 <= p < n) runs nodes
// [0, p) on one stage and [p, n) on the next; what crosses it are the values
// made before p (or the model's input) and used at or after p (or returned).
// A cut is valid when every crossing value is a tensor, or a list or tuple of
// tensors: those are the activations sent. Constants (the weights) never
// cross: each segment carries those it uses.
//
// Owns: loading, freezing, the node list, crossing values, valid cuts, and
// cutting the graph into runnable segments. Must not touch: the zoo, the
// network, files other than the one it loads.
// Thread safety: a loaded model is immutable; a ScriptSegment runs on one
// thread at a time. Torch-facing: include only from .cc files.
#pragma once

#include <torch/csrc/jit/api/module.h>
#include <torch/csrc/jit/runtime/graph_executor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/compute.h"
#include "util/status.h"

namespace paretopipe {

// Where cuts may go: between any two nodes, or only where the innermost
// module of the node before differs from the node after's (a call of a
// torchvision layer, block or stage begins or ends).
enum class CutGranularity { kModule, kOp };

struct ScriptNode {
  std::string kind;         // "aten::conv2d".
  std::string module_path;  // "layer1.0.conv1"; "" for the model's own forward.
};

// What crosses position p.
struct ScriptCrossing {
  int64_t position = 0;
  int values = 0;           // Values crossing.
  bool all_tensors = true;  // Every one a tensor or a list/tuple of tensors.
  // Two crossing values may share memory (a tensor and its view): sent as
  // two copies, an in-place op after the cut would update only one.
  bool aliased = false;
  bool module_boundary = false;
};

// A tensor a node made in an analysis run: shape and element size (0: the
// value was not a tensor).
struct TensorInfo {
  std::vector<int64_t> shape;
  int64_t element_bytes = 0;
  bool float32 = false;

  int64_t bytes() const;
};
// Per node, per output; one more entry at the end holds the model's input.
using NodeTensors = std::vector<std::vector<TensorInfo>>;

// A contiguous range of a ScriptModel's nodes as its own graph: inputs the
// values crossing its first position, outputs those crossing its end (a
// tuple when several), with the constants it uses.
class ScriptSegment {
 public:
  ScriptSegment(std::shared_ptr<torch::jit::Graph> graph, std::string name);
  ScriptSegment(const ScriptSegment&) = delete;
  ScriptSegment& operator=(const ScriptSegment&) = delete;

  // Runs the segment in inference mode. Errors (a LibTorch exception: wrong
  // shape, wrong input count) come back as InvalidArgument naming the segment.
  Result<std::vector<torch::jit::IValue>> Run(std::vector<torch::jit::IValue> inputs);

  const std::shared_ptr<torch::jit::Graph>& graph() const { return graph_; }
  size_t input_count() const;

  // The segment as a standalone TorchScript module (torch::jit::Module::save
  // bytes): a forward of its inputs holding only the constants it uses, so a
  // worker receives its own part of the model and never the whole.
  Result<std::string> Serialize() const;

  // The segment Serialize wrote. `name` names it in errors. InvalidArgument
  // when `bytes` is not such a module. A TorchScript file is code: only a
  // worker that allows remote models may call this on bytes from the network.
  static Result<std::unique_ptr<ScriptSegment>> Deserialize(const std::string& bytes,
                                                            const std::string& name);

 private:
  std::shared_ptr<torch::jit::Graph> graph_;
  std::string name_;
  torch::jit::GraphExecutor executor_;
};

// A ScriptSegment that takes one tensor and returns one, as a pipeline
// stage runs it (on the CPU).
class ScriptStageCompute : public StageCompute {
 public:
  explicit ScriptStageCompute(std::unique_ptr<ScriptSegment> segment);
  Result<torch::Tensor> Run(const torch::Tensor& input) override;
  Result<std::vector<torch::Tensor>> RunAll(const std::vector<torch::Tensor>& inputs) override;

 private:
  std::unique_ptr<ScriptSegment> segment_;
};

class ScriptModel {
 public:
  // Loads the TorchScript file at `path` and freezes its forward on the CPU.
  // NotFound when it does not exist; InvalidArgument, naming the file, when
  // it is not TorchScript (LibTorch's first line why), has no forward, or
  // its forward does not take exactly one input.
  static Result<std::unique_ptr<ScriptModel>> Load(const std::string& path);

  ScriptModel(const ScriptModel&) = delete;
  ScriptModel& operator=(const ScriptModel&) = delete;

  int64_t node_count() const { return static_cast<int64_t>(nodes_.size()); }
  const std::vector<ScriptNode>& nodes() const { return nodes_; }

  // Positions 1 .. n-1.
  const std::vector<ScriptCrossing>& crossings() const { return crossings_; }

  // The valid cut positions at `granularity` whose crossing values number at
  // most `max_tensors` (each a tensor, or a list or tuple of them) and do not
  // alias each other, ascending.
  std::vector<int64_t> CutPositions(CutGranularity granularity, int max_tensors) const;

  // Nodes [begin, end) as a runnable segment.
  // REQUIRES: 0 <= begin < end <= node_count(), and begin and end are
  // positions whose crossing values are all tensors (or 0 and n).
  Result<std::unique_ptr<ScriptSegment>> Cut(int64_t begin, int64_t end) const;

  // Every top-level tensor the whole forward makes for `input`, by node and
  // output. For sizes and MACs.
  Result<NodeTensors> NodeOutputs(const torch::Tensor& input) const;

  // Multiply-accumulates of node i (convolutions, linear, matmul family) given
  // what NodeOutputs returned; 0 for other nodes.
  int64_t NodeMacs(int64_t node, const NodeTensors& tensors) const;

  // The tensors crossing `position` (node_count(): the model's outputs), from
  // `tensors`; a list or tuple of tensors counts as one entry of 0 bytes
  // (NodeOutputs does not look inside them).
  std::vector<TensorInfo> CrossingTensors(int64_t position, const NodeTensors& tensors) const;

  // Elements of the distinct tensor constants (weights and buffers) nodes
  // [begin, end) use, nested blocks included.
  int64_t ConstantElements(int64_t begin, int64_t end) const;

  const std::string& path() const { return path_; }

 private:
  ScriptModel() = default;
  Status Analyze();
  // Values crossing position p, in a fixed order (model input first, then
  // by the node that makes them).
  std::vector<torch::jit::Value*> CrossingValues(int64_t position) const;
  // Nodes [begin, end) with `outputs` as the graph's outputs.
  Result<std::shared_ptr<torch::jit::Graph>> Extract(
      int64_t begin, int64_t end, const std::vector<torch::jit::Value*>& outputs) const;

  std::string path_;
  torch::jit::Module frozen_;
  std::shared_ptr<torch::jit::Graph> graph_;
  std::vector<torch::jit::Node*> order_;  // Top-level non-constant nodes.
  std::vector<ScriptNode> nodes_;
  std::vector<ScriptCrossing> crossings_;
  // For each value made at top level (or the input): the first and last
  // position that uses it (n for the graph's return).
  std::unordered_map<torch::jit::Value*, std::pair<int64_t, int64_t>> span_;
  std::unordered_map<torch::jit::Value*, int64_t> made_at_;  // -1: the model's input.
};

}  // namespace paretopipe
