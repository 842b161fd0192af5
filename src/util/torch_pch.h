// The LibTorch headers ParetoPipe's torch-facing files use, precompiled once per
// build (see src/CMakeLists.txt). Include torch headers only from .cc files and
// from headers that only torch-facing .cc files include.
#pragma once

#include <torch/torch.h>
