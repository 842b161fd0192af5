// An unpickler for the part of Python's pickle format that torch.save uses for
// tensors and state dicts.
//
// A pickle is a program for a small stack machine that may import and call any
// Python function. torch.save (PyTorch >= 1.6) writes one as `data.pkl` in a
// zip archive, next to one `data/<key>` record per tensor storage. This reader
// runs only the opcodes of protocol 2 that torch.save emits, plus the protocol
// 3/4 opcodes that carry the same data (FRAME, MEMOIZE, STACK_GLOBAL,
// SHORT_BINUNICODE, BINBYTES, ...), and calls only the functions ("globals")
// that rebuild tensors, storages and OrderedDicts. Anything else is refused
// with an error that names the opcode or the global, so a file can never make
// us run code. Every read is bounds-checked: a truncated or hostile data.pkl
// gives an error, never a crash, and a tensor is only built when its sizes,
// strides and offset fit inside its storage.
//
// The zip archive itself is not handled here (see tensor_file.h); storages
// arrive through a callback.
//
// Thread safety: Unpickle() keeps no global state and may run on several
// threads at once. A PickleObject is not modified after Unpickle() returns it
// and may be read from several threads.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/status.h"

namespace paretopipe {

// One value built by a pickle program. A passive tagged union: which fields
// are meaningful depends on `kind`. Values are owned by the PickleObject that
// holds them; the pointers inside containers point into that same object.
struct PickleValue {
  enum class Kind {
    kNone,
    kBool,
    kInt,
    kFloat,
    kString,   // Python str; `text` holds its UTF-8 bytes.
    kBytes,    // Python bytes; `text` holds them.
    kTuple,    // `items`.
    kList,     // `items`.
    kDict,     // `entries`, in insertion order; `ordered` for OrderedDict.
    kGlobal,   // An allowed function or class; `text` is "module.name".
    kStorage,  // A tensor storage from the archive; `text` is its record key.
    kTensor,   // `tensor`.
  };

  Kind kind = Kind::kNone;
  bool bool_value = false;
  int64_t int_value = 0;
  double float_value = 0.0;
  std::string text;
  std::vector<const PickleValue*> items;
  std::vector<std::pair<const PickleValue*, const PickleValue*>> entries;
  bool ordered = false;

  // kStorage: the record's bytes (shared by every value that names the same
  // key), the element type its persistent id declares, and its element count.
  c10::Storage storage;
  c10::ScalarType storage_dtype = c10::ScalarType::Byte;
  int64_t storage_numel = 0;

  torch::Tensor tensor;
};

// Returns the name torch.save gives the storage class of `dtype`
// ("FloatStorage"), or nullptr if torch.save has none for it.
const char* TorchStorageClassName(c10::ScalarType dtype);

// Returns a short English description of `value`'s type for error messages:
// "a tensor", "an OrderedDict", "None", "a str", ...
std::string DescribePickleValue(const PickleValue& value);

// The result of running a pickle program: its root value and the storage of
// every value reachable from it. Movable, not copyable; pointers into it stay
// valid when it is moved.
class PickleObject {
 public:
  PickleObject(PickleObject&&) = default;
  PickleObject& operator=(PickleObject&&) = default;
  PickleObject(const PickleObject&) = delete;
  PickleObject& operator=(const PickleObject&) = delete;

  const PickleValue& root() const { return *root_; }

 private:
  friend class Unpickler;
  PickleObject() = default;

  std::vector<std::unique_ptr<PickleValue>> values_;
  const PickleValue* root_ = nullptr;
};

// Returns the bytes of the archive record that holds storage `key` (the
// record "data/<key>"), in a CPU storage that owns them. Returns a non-OK
// status if the record is missing or unreadable.
using StorageRecordReader = std::function<Result<c10::Storage>(const std::string& key)>;

// Runs the pickle program `data` (the contents of a torch.save data.pkl) and
// returns the object it builds. Calls `read_record` at most once per distinct
// storage key that the program references; tensors that name the same key
// share one storage, as views do in Python.
//
// Tensors come back on the CPU whatever device they were saved from, with the
// sizes, strides and storage offset they were saved with, and with
// requires_grad as saved.
//
// On failure returns InvalidArgument whose message starts with "data.pkl" and
// names the byte offset and the opcode or global at fault, e.g.
// "data.pkl: pickle opcode 0x81 (NEWOBJ) at offset 12 not supported" or
// "data.pkl: global 'os.system' at offset 2 not supported"; or the status that
// `read_record` returned.
Result<PickleObject> Unpickle(std::string_view data, const StorageRecordReader& read_record);

}  // namespace paretopipe
