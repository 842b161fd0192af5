#include "model/torchscript.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <torch/csrc/jit/ir/alias_analysis.h>
#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/passes/freeze_module.h>
#include <torch/csrc/jit/passes/inliner.h>
#include <torch/csrc/jit/serialization/import.h>
#include <torch/torch.h>

#include <algorithm>
#include <functional>
#include <sstream>
#include <unordered_set>

namespace paretopipe {
namespace {

using torch::jit::Node;
using torch::jit::Value;

std::string FirstLine(const std::string& text) { return text.substr(0, text.find('\n')); }

// "layer1(Sequential).0(BasicBlock).conv1(Conv2d)" (traced) or
// "SELF(MobileNetV2).features(Sequential).0(Conv2dNormActivation).0(Conv2d).SELF(Conv2d)"
// (scripted) -> "layer1.0.conv1", "features.0.0": instance names only.
std::string ModulePathOf(const Node& node) {
  const std::string hierarchy = torch::jit::utils::getNodesModuleHierarchy(node);
  std::string path, component;
  int depth = 0;
  auto flush = [&] {
    const std::string name = component.substr(0, component.find('('));
    if (!name.empty() && name != "SELF" && name != "UNKNOWN_INSTANCE") {
      path += (path.empty() ? "" : ".") + name;
    }
    component.clear();
  };
  for (char c : hierarchy) {
    if (c == '(') ++depth;
    if (c == ')') --depth;
    if (c == '.' && depth == 0) {
      flush();
    } else {
      component += c;
    }
  }
  flush();
  return path;
}

bool IsTensorLike(const c10::TypePtr& type) {
  if (type->kind() == c10::TypeKind::TensorType) return true;
  if (auto list = type->cast<c10::ListType>()) {
    return list->getElementType()->kind() == c10::TypeKind::TensorType;
  }
  if (auto tuple = type->cast<c10::TupleType>()) {
    return std::all_of(
        tuple->elements().begin(), tuple->elements().end(),
        [](const c10::TypePtr& t) { return t->kind() == c10::TypeKind::TensorType; });
  }
  return false;
}

int64_t Product(const std::vector<int64_t>& dims, size_t from = 0) {
  int64_t p = 1;
  for (size_t i = from; i < dims.size(); ++i) p *= dims[i];
  return p;
}

}  // namespace

int64_t TensorInfo::bytes() const { return element_bytes * Product(shape); }

ScriptSegment::ScriptSegment(std::shared_ptr<torch::jit::Graph> graph, std::string name)
    : graph_(std::move(graph)),
      name_(std::move(name)),
      // The simple executor runs the graph as it is: no profiling and no
      // runtime rewrites, so a segment computes exactly what the same nodes
      // compute inside the whole model.
      executor_(graph_, name_, torch::jit::ExecutorExecutionMode::SIMPLE) {}

size_t ScriptSegment::input_count() const { return graph_->inputs().size(); }

Result<std::vector<torch::jit::IValue>> ScriptSegment::Run(std::vector<torch::jit::IValue> inputs) {
  if (inputs.size() != input_count()) {
    return Status::InvalidArgument(
        fmt::format("{}: takes {} inputs, got {}", name_, input_count(), inputs.size()));
  }
  torch::jit::Stack stack(std::make_move_iterator(inputs.begin()),
                          std::make_move_iterator(inputs.end()));
  try {
    c10::InferenceMode inference;
    executor_.run(stack);
  } catch (const std::exception& e) {
    return Status::InvalidArgument(fmt::format("{}: {}", name_, FirstLine(e.what())));
  }
  return std::vector<torch::jit::IValue>(std::make_move_iterator(stack.begin()),
                                         std::make_move_iterator(stack.end()));
}

Result<std::string> ScriptSegment::Serialize() const {
  try {
    torch::jit::Module module(c10::QualifiedName("__torch__.paretopipe.Segment"));
    std::shared_ptr<torch::jit::Graph> graph = graph_->copy();
    graph->insertInput(0, "self")->setType(module.type());
    // A method returns one value: several outputs travel as a tuple, which
    // Deserialize unpacks again.
    if (graph->outputs().size() > 1) {
      std::vector<Value*> outputs(graph->outputs().begin(), graph->outputs().end());
      while (!graph->outputs().empty()) graph->eraseOutput(0);
      Node* tuple = graph->createTuple(outputs);
      graph->appendNode(tuple);
      graph->registerOutput(tuple->output());
    }
    torch::jit::Function* forward = module._ivalue()->compilation_unit()->create_function(
        c10::QualifiedName(*module.type()->name(), "forward"), graph);
    module.type()->addMethod(forward);
    std::ostringstream out;
    module.save(out);
    return out.str();
  } catch (const std::exception& e) {
    return Status::Internal(
        fmt::format("{}: cannot save as TorchScript: {}", name_, FirstLine(e.what())));
  }
}

Result<std::unique_ptr<ScriptSegment>> ScriptSegment::Deserialize(const std::string& bytes,
                                                                  const std::string& name) {
  std::shared_ptr<torch::jit::Graph> graph;
  try {
    std::istringstream in(bytes);
    torch::jit::Module module = torch::jit::load(in, torch::kCPU);
    graph = module.get_method("forward").graph()->copy();
  } catch (const std::exception& e) {
    return Status::InvalidArgument(
        fmt::format("{}: not a ParetoPipe segment module: {}", name, FirstLine(e.what())));
  }
  if (graph->inputs().empty() || graph->inputs()[0]->hasUses()) {
    return Status::InvalidArgument(name +
                                   ": not a ParetoPipe segment module (its forward reads "
                                   "module state)");
  }
  graph->eraseInput(0);
  if (graph->outputs().size() == 1 &&
      graph->outputs()[0]->node()->kind() == c10::prim::TupleConstruct) {
    Node* tuple = graph->outputs()[0]->node();
    graph->eraseOutput(0);
    for (Value* v : tuple->inputs()) graph->registerOutput(v);
    if (!tuple->hasUses()) tuple->destroy();
  }
  return std::make_unique<ScriptSegment>(graph, name);
}

ScriptStageCompute::ScriptStageCompute(std::unique_ptr<ScriptSegment> segment)
    : segment_(std::move(segment)) {}

Result<torch::Tensor> ScriptStageCompute::Run(const torch::Tensor& input) {
  PP_ASSIGN_OR_RETURN(std::vector<torch::jit::IValue> out, segment_->Run({input}));
  if (out.size() != 1 || !out[0].isTensor()) {
    return Status::InvalidArgument(fmt::format(
        "a TorchScript segment returned {} values; a stage sends one tensor", out.size()));
  }
  return out[0].toTensor();
}

Result<std::vector<torch::Tensor>> ScriptStageCompute::RunAll(
    const std::vector<torch::Tensor>& inputs) {
  PP_ASSIGN_OR_RETURN(std::vector<torch::jit::IValue> out,
                      segment_->Run(std::vector<torch::jit::IValue>(inputs.begin(), inputs.end())));
  std::vector<torch::Tensor> tensors;
  for (const torch::jit::IValue& v : out) {
    if (!v.isTensor()) {
      return Status::InvalidArgument(fmt::format(
          "a TorchScript segment returned a {}; a stage sends tensors only", v.tagKind()));
    }
    tensors.push_back(v.toTensor());
  }
  return tensors;
}

Result<std::unique_ptr<ScriptModel>> ScriptModel::Load(const std::string& path) {
  struct stat info;
  if (stat(path.c_str(), &info) != 0) return Status::NotFound(path + ": no such file");
  std::unique_ptr<ScriptModel> model(new ScriptModel());
  model->path_ = path;
  try {
    torch::jit::Module module = torch::jit::load(path, torch::kCPU);
    module.eval();
    if (!module.find_method("forward")) {
      return Status::InvalidArgument(path + ": the TorchScript module has no forward method");
    }
    // Freezing turns parameters and attributes into constants and inlines
    // the submodules' calls. No optimization pass runs (no conv-batchnorm
    // folding): those change the numbers, and a split must compute exactly
    // what the model computes.
    model->frozen_ = torch::jit::freeze_module(module);
    model->graph_ = model->frozen_.get_method("forward").graph()->copy();
    torch::jit::Inline(*model->graph_);
  } catch (const std::exception& e) {
    return Status::InvalidArgument(fmt::format(
        "{}: not a TorchScript model LibTorch can load and freeze: {}", path, FirstLine(e.what())));
  }
  PP_RETURN_IF_ERROR(model->Analyze());
  return model;
}

Status ScriptModel::Analyze() {
  torch::jit::Graph& g = *graph_;
  // Input 0 is the module itself; ParetoPipe feeds one image batch.
  if (g.inputs().size() != 2) {
    return Status::InvalidArgument(
        fmt::format("{}: forward takes {} inputs; ParetoPipe feeds a model one image batch", path_,
                    static_cast<int64_t>(g.inputs().size()) - 1));
  }
  if (g.inputs()[0]->hasUses()) {
    return Status::InvalidArgument(
        path_ +
        ": the frozen forward still reads module attributes (one it mutates?); "
        "ParetoPipe splits models whose forward only computes");
  }
  std::unordered_map<Node*, int64_t> index;
  for (Node* node : g.nodes()) {
    if (node->kind() == c10::prim::Constant) continue;
    index[node] = static_cast<int64_t>(order_.size());
    order_.push_back(node);
    nodes_.push_back({node->kind().toQualString(), ModulePathOf(*node)});
  }
  const int64_t n = node_count();
  if (n < 1) return Status::InvalidArgument(path_ + ": forward computes nothing");
  made_at_[g.inputs()[1]] = -1;
  for (int64_t i = 0; i < n; ++i) {
    for (Value* out : order_[i]->outputs()) made_at_[out] = i;
  }
  for (const auto& [value, made] : made_at_) {
    int64_t first = -1, last = -1;
    for (const torch::jit::Use& use : value->uses()) {
      Node* user = use.user;
      // A use inside an if or a loop counts at the top-level node holding it.
      while (user->owningBlock() != g.block()) user = user->owningBlock()->owningNode();
      const int64_t at = user == g.return_node() ? n : index.at(user);
      first = first < 0 ? at : std::min(first, at);
      last = std::max(last, at);
    }
    if (last >= 0) span_[value] = {first, last};
  }
  torch::jit::AliasDb aliases(graph_);
  for (int64_t p = 1; p < n; ++p) {
    ScriptCrossing c;
    c.position = p;
    const std::vector<Value*> crossing = CrossingValues(p);
    for (size_t i = 0; i < crossing.size(); ++i) {
      ++c.values;
      c.all_tensors = c.all_tensors && IsTensorLike(crossing[i]->type());
      for (size_t j = 0; j < i; ++j) {
        c.aliased = c.aliased || aliases.mayAlias(crossing[i], crossing[j]);
      }
    }
    c.module_boundary = nodes_[p - 1].module_path != nodes_[p].module_path;
    crossings_.push_back(c);
  }
  return Status::Ok();
}

std::vector<Value*> ScriptModel::CrossingValues(int64_t position) const {
  std::vector<std::pair<int64_t, Value*>> crossing;
  for (const auto& [value, span] : span_) {
    const int64_t made = made_at_.at(value);
    if (made < position && span.second >= position) crossing.emplace_back(made, value);
  }
  // By the node that made them, then by output index (unique() numbers
  // values in creation order): the same order on every call.
  std::sort(crossing.begin(), crossing.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first < b.first : a.second->unique() < b.second->unique();
  });
  std::vector<Value*> out;
  for (const auto& [made, value] : crossing) out.push_back(value);
  return out;
}

std::vector<int64_t> ScriptModel::CutPositions(CutGranularity granularity, int max_tensors) const {
  std::vector<int64_t> out;
  for (const ScriptCrossing& c : crossings_) {
    if (!c.all_tensors || c.aliased || c.values < 1 || c.values > max_tensors) continue;
    if (granularity == CutGranularity::kModule && !c.module_boundary) continue;
    out.push_back(c.position);
  }
  return out;
}

Result<std::shared_ptr<torch::jit::Graph>> ScriptModel::Extract(
    int64_t begin, int64_t end, const std::vector<Value*>& outputs) const {
  auto sub = std::make_shared<torch::jit::Graph>();
  std::unordered_map<Value*, Value*> env;
  const std::vector<Value*> inputs =
      begin == 0 ? std::vector<Value*>{graph_->inputs()[1]} : CrossingValues(begin);
  for (Value* v : inputs) env[v] = sub->addInput()->copyMetadata(v);
  std::string missing;
  std::function<Value*(Value*)> map = [&](Value* v) -> Value* {
    auto it = env.find(v);
    if (it != env.end()) return it->second;
    if (v->node()->kind() == c10::prim::Constant) {
      // Each segment carries the constants (weights) it uses.
      Node* clone = sub->createClone(v->node(), map);
      sub->appendNode(clone);
      env[v] = clone->output();
      return clone->output();
    }
    if (missing.empty()) missing = v->debugName();
    // A placeholder keeps createClone going; the error below discards the graph.
    Value* placeholder = sub->addInput()->setType(v->type());
    env[v] = placeholder;
    return placeholder;
  };
  for (int64_t i = begin; i < end; ++i) {
    Node* clone = sub->createClone(order_[i], map);
    sub->appendNode(clone);
    for (size_t o = 0; o < order_[i]->outputs().size(); ++o) {
      env[order_[i]->outputs()[o]] = clone->outputs()[o];
    }
  }
  for (Value* v : outputs) sub->registerOutput(map(v));
  if (!missing.empty()) {
    return Status::Internal(
        fmt::format("{}: nodes [{}, {}) use %{}, made outside them", path_, begin, end, missing));
  }
  return sub;
}

Result<std::unique_ptr<ScriptSegment>> ScriptModel::Cut(int64_t begin, int64_t end) const {
  const int64_t n = node_count();
  if (begin < 0 || begin >= end || end > n) {
    return Status::InvalidArgument(
        fmt::format("{}: nodes [{}, {}) are not a range of its {} nodes", path_, begin, end, n));
  }
  for (int64_t p : {begin, end}) {
    if (p > 0 && p < n && !crossings_[p - 1].all_tensors) {
      return Status::InvalidArgument(fmt::format(
          "{}: position {} is not a valid cut: a value that is not a tensor crosses it", path_, p));
    }
  }
  std::vector<Value*> outputs;
  if (end == n) {
    for (Value* v : graph_->outputs()) outputs.push_back(v);
  } else {
    outputs = CrossingValues(end);
  }
  PP_ASSIGN_OR_RETURN(std::shared_ptr<torch::jit::Graph> sub, Extract(begin, end, outputs));
  return std::make_unique<ScriptSegment>(sub, fmt::format("nodes [{}, {})", begin, end));
}

Result<NodeTensors> ScriptModel::NodeOutputs(const torch::Tensor& input) const {
  std::vector<Value*> outputs;
  std::vector<std::pair<int64_t, size_t>> where;  // (node, output) of each graph output.
  for (int64_t i = 0; i < node_count(); ++i) {
    for (size_t o = 0; o < order_[i]->outputs().size(); ++o) {
      Value* v = order_[i]->outputs()[o];
      if (v->type()->kind() != c10::TypeKind::TensorType) continue;
      outputs.push_back(v);
      where.emplace_back(i, o);
    }
  }
  PP_ASSIGN_OR_RETURN(std::shared_ptr<torch::jit::Graph> all, Extract(0, node_count(), outputs));
  ScriptSegment whole(all, "analysis of " + path_);
  PP_ASSIGN_OR_RETURN(std::vector<torch::jit::IValue> values, whole.Run({input}));
  auto info = [](const torch::Tensor& t) {
    return TensorInfo{t.sizes().vec(), static_cast<int64_t>(t.element_size()),
                      t.scalar_type() == torch::kFloat};
  };
  NodeTensors tensors(node_count() + 1);
  for (int64_t i = 0; i < node_count(); ++i) tensors[i].resize(order_[i]->outputs().size());
  for (size_t k = 0; k < values.size() && k < where.size(); ++k) {
    if (values[k].isTensor()) tensors[where[k].first][where[k].second] = info(values[k].toTensor());
  }
  tensors[node_count()] = {info(input)};
  return tensors;
}

std::vector<TensorInfo> ScriptModel::CrossingTensors(int64_t position,
                                                     const NodeTensors& tensors) const {
  std::vector<Value*> values;
  if (position >= node_count()) {
    for (Value* v : graph_->outputs()) values.push_back(v);
  } else {
    values = CrossingValues(position);
  }
  std::vector<TensorInfo> out;
  for (Value* v : values) {
    TensorInfo info;
    auto made = made_at_.find(v);
    if (made != made_at_.end() && made->second < 0) {
      info = tensors.back()[0];  // The model's input crossing a cut (a global skip).
    } else if (made != made_at_.end()) {
      const Node* maker = order_[made->second];
      for (size_t o = 0; o < maker->outputs().size(); ++o) {
        if (maker->outputs()[o] == v) info = tensors[made->second][o];
      }
    }
    out.push_back(std::move(info));
  }
  return out;
}

int64_t ScriptModel::ConstantElements(int64_t begin, int64_t end) const {
  std::unordered_set<const void*> seen;
  int64_t elements = 0;
  std::function<void(const Node*)> visit = [&](const Node* node) {
    for (const Value* v : node->inputs()) {
      if (v->node()->kind() != c10::prim::Constant) continue;
      c10::optional<c10::IValue> constant = torch::jit::toIValue(v);
      if (!constant || !constant->isTensor()) continue;
      const torch::Tensor& t = constant->toTensor();
      if (seen.insert(t.unsafeGetTensorImpl()).second) elements += t.numel();
    }
    for (const torch::jit::Block* block : node->blocks()) {
      for (const Node* inner : block->nodes()) visit(inner);
    }
  };
  for (int64_t i = begin; i < end; ++i) visit(order_[i]);
  return elements;
}

int64_t ScriptModel::NodeMacs(int64_t node, const NodeTensors& tensors) const {
  Node* n = order_[node];
  if (tensors[node].empty() || tensors[node][0].element_bytes == 0) return 0;
  const int64_t out = Product(tensors[node][0].shape);
  // The shape of input `i`: a constant's (a weight), or what a node made.
  auto input_shape = [&](size_t i) -> std::vector<int64_t> {
    if (i >= n->inputs().size()) return {};
    Value* v = n->inputs()[i];
    if (v->node()->kind() == c10::prim::Constant) {
      c10::optional<c10::IValue> constant = torch::jit::toIValue(v);
      if (constant && constant->isTensor()) return constant->toTensor().sizes().vec();
      return {};
    }
    auto made = made_at_.find(v);
    if (made == made_at_.end() || made->second < 0) return {};
    const Node* maker = order_[made->second];
    for (size_t o = 0; o < maker->outputs().size(); ++o) {
      if (maker->outputs()[o] == v) return tensors[made->second][o].shape;
    }
    return {};
  };
  const std::string kind = n->kind().toQualString();
  if (kind == "aten::_convolution" || kind == "aten::conv1d" || kind == "aten::conv2d" ||
      kind == "aten::conv3d" || kind == "aten::convolution") {
    // Each output element sums in_channels / groups x kernel products.
    const std::vector<int64_t> w = input_shape(1);
    return w.size() >= 2 ? out * Product(w, 1) : 0;
  }
  if (kind == "aten::linear") {
    const std::vector<int64_t> w = input_shape(1);
    return w.size() == 2 ? out * w[1] : 0;
  }
  if (kind == "aten::addmm") {
    const std::vector<int64_t> m2 = input_shape(2);
    return m2.size() == 2 ? out * m2[0] : 0;
  }
  if (kind == "aten::matmul" || kind == "aten::mm" || kind == "aten::bmm") {
    const std::vector<int64_t> a = input_shape(0);
    return a.empty() ? 0 : out * a.back();
  }
  return 0;
}

}  // namespace paretopipe
