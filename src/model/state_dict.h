// Loading a torchvision-style state dict into materialized blocks.
// Torch-facing: include only from .cc files.
#pragma once

#include <string>
#include <vector>

#include "model/model.h"
#include "model/tensor_file.h"
#include "util/status.h"

namespace paretopipe {

// The keys of a state dict that blocks [begin, end) of `def` need: for
// ReadStateDict, so a stage reads only its own tensors from the file.
KeyFilter StageKeys(const ModelDef& def, int64_t begin, int64_t end);

// Copies the tensors of `file` (read from `path`, named in errors) into
// `blocks`, which are blocks [begin, begin + blocks.size()) of `def`.
// Keys owned by blocks outside that range are skipped (their tensors may be
// undefined: never read); so are keys under def.skipped_state_prefixes. Keys
// no block owns are "unexpected"; keys a materialized block needs but `file`
// lacks are "missing"; a shape mismatch names the key and both shapes. A
// "module." prefix on every key (a model saved from nn.DataParallel) is
// accepted and removed.
Status LoadStateDict(const NamedTensors& file, const std::string& path, const ModelDef& def,
                     int64_t begin, const std::vector<Block>& blocks);

}  // namespace paretopipe
