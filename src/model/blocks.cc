// BlockImpl: a chain of parts with torchvision state-dict prefixes.
#include <string>

#include "model/model.h"

namespace paretopipe {

void BlockImpl::Append(const std::string& state_prefix, torch::nn::AnyModule part) {
  // Module names may not contain '.', so the registered name only keeps the
  // part reachable for module traversal; StateTensors() uses `state_prefix`.
  std::string registered = "part" + std::to_string(parts_.size());
  register_module(registered, part.ptr());
  parts_.push_back(Part{state_prefix, std::move(part)});
}

torch::Tensor BlockImpl::forward(torch::Tensor x) {
  for (Part& part : parts_) x = part.module.forward(x);
  return x;
}

std::vector<std::pair<std::string, torch::Tensor>> BlockImpl::StateTensors() const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const Part& part : parts_) {
    const auto module = part.module.ptr();
    auto add = [&](const std::string& key, const torch::Tensor& tensor) {
      out.emplace_back(part.state_prefix.empty() ? key : part.state_prefix + "." + key, tensor);
    };
    for (const auto& item : module->named_parameters(/*recurse=*/true)) add(item.key(), item.value());
    for (const auto& item : module->named_buffers(/*recurse=*/true)) add(item.key(), item.value());
  }
  return out;
}

std::vector<BlockDef> BlocksOfChildren(const std::vector<Child>& children, const Head& head) {
  std::vector<BlockDef> blocks;
  for (size_t k = 0; k < children.size(); ++k) {
    const bool last = k + 1 == children.size();
    const Child child = children[k];
    BlockDef block;
    block.name = last ? child.prefix + head.label : child.prefix;
    block.state_prefixes = {child.prefix};
    if (last) {
      block.state_prefixes.insert(block.state_prefixes.end(), head.state_prefixes.begin(),
                                  head.state_prefixes.end());
    }
    block.build = [child, last, append = head.append] {
      Block b;
      b->Append(child.prefix, child.make());
      if (last) append(*b);
      return b;
    };
    blocks.push_back(std::move(block));
  }
  return blocks;
}

}  // namespace paretopipe
