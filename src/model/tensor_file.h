// Tensor files and state dicts in the format of PyTorch's torch.save.
//
// torch.save (PyTorch >= 1.6) writes a zip archive: `<name>/data.pkl`, a
// pickle of the saved object, plus one `<name>/data/<key>` record holding the
// raw bytes of each tensor storage, a `version` record and, from PyTorch 2.x,
// a `byteorder` record. This file reads such archives when they hold a tensor
// (`torch.save(tensor, f)`) or a dict / OrderedDict of named tensors
// (`torch.save(model.state_dict(), f)`), and writes archives that Python's
// torch.load reads, including with weights_only=True (the default from
// PyTorch 2.6).
//
// Not supported: the legacy pre-1.6 format (`_use_new_zipfile_serialization=
// False`; the error says to re-save with a current PyTorch), TorchScript
// archives (torch.jit.save), big-endian files, and objects other than a tensor
// or a dict of tensors (e.g. whole training checkpoints).
//
// Errors carry the path and the role of the file: reads of tensors report
// "input PATH: ...", reads and writes of state dicts "weights PATH: ...",
// writes of tensors "output PATH: ...".
//
// Thread safety: all functions are safe to call concurrently on different
// files.
#pragma once

#include <torch/types.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "util/status.h"

namespace paretopipe {

// Named tensors, ordered as in the file.
using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

// Reads the tensor that `torch.save(tensor, path)` wrote.
// On success the tensor is on the CPU, has the sizes, strides and storage
// offset it was saved with, and owns its memory. Returns NotFound if `path`
// does not exist, InvalidArgument if the file is not a torch.save archive of
// one tensor (e.g. "input foo.pt: holds a dict, expected a tensor").
Result<torch::Tensor> ReadTensorFile(const std::string& path);

// Writes `tensor` to `path` so that torch.load(path) returns an equal tensor
// with the same sizes and strides. A tensor on another device is copied to
// the CPU first. Replaces an existing file.
// Returns InvalidArgument for an undefined, sparse or quantized tensor,
// IoError if the file cannot be written.
Status WriteTensorFile(const torch::Tensor& tensor, const std::string& path);

// Decides whether the tensor stored under `key` is wanted.
using KeyFilter = std::function<bool(const std::string& key)>;

// Reads the str -> tensor dict or OrderedDict that
// `torch.save(model.state_dict(), path)` (or torch.save of a plain dict) wrote.
// Every key comes back, in file order (`wanted` is called once per key, in
// that order); the tensor of a key that `wanted` rejects is left undefined
// (torch::Tensor()) and its storage record is never read, unless a wanted
// tensor shares that storage. A null `wanted` wants every key. Wanted tensors
// are CPU tensors that own their memory, and wanted entries that were views
// of one tensor still share one storage.
// Unwanted entries are validated as wanted ones are (a tensor must lie inside
// its storage, and the storage inside its record's size as the zip directory
// states it), so a file fails the same way under any filter, except that an
// unreadable record (e.g. a corrupt zip entry) is only noticed when read.
// Returns NotFound if `path` does not exist, InvalidArgument if the file is
// not a torch.save archive of such a dict or a value is no tensor (the error
// names the key).
Result<NamedTensors> ReadStateDict(const std::string& path, const KeyFilter& wanted = nullptr);

// Writes `tensors` as a state dict (an OrderedDict, as state_dict() returns)
// that torch.load and ReadStateDict read back in the same order; tensors that
// share a storage still share it after loading. Replaces an existing file.
// Returns InvalidArgument for duplicate names or tensors WriteTensorFile
// refuses, IoError if the file cannot be written.
Status WriteStateDict(const NamedTensors& tensors, const std::string& path);

}  // namespace paretopipe
