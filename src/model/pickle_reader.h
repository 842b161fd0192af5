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
// gives an error, never a crash, and a tensor is only described when its
// sizes, strides and offset fit inside its storage.
//
// Loading is lazy, so that a pipeline stage that needs a few tensors of a big
// state dict reads only their storages: Unpickle() reads no storage record
// (it validates tensors against the record sizes the archive's directory
// reports) and returns tensors as descriptions; a TensorBuilder then reads
// the records of the tensors it is asked to build, each at most once.
//
// The zip archive itself is not handled here (see tensor_file.h); storage
// records are reached through the StorageRecords interface.
//
// Thread safety: Unpickle() keeps no global state and may run on several
// threads at once. A PickleObject is not modified after Unpickle() returns it
// and may be read from several threads. A TensorBuilder is not thread-safe.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
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

  // kStorage: the element type its persistent id declares and its element
  // count, which fits in the record's bytes. The bytes are not read here.
  c10::ScalarType storage_dtype = c10::ScalarType::Byte;
  int64_t storage_numel = 0;

  // kTensor: a view of `storage` (a kStorage value of the same object) that
  // lies inside its `storage_numel` elements; TensorBuilder makes it a tensor.
  const PickleValue* storage = nullptr;
  int64_t storage_offset = 0;
  std::vector<int64_t> sizes;
  std::vector<int64_t> strides;
  bool requires_grad = false;  // Only for floating-point and complex dtypes.
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

// The storage records of an archive: the record "data/<key>" holds the bytes
// of storage `key`.
class StorageRecords {
 public:
  virtual ~StorageRecords() = default;

  // Returns the size in bytes of the record of storage `key` as the archive's
  // directory states it, without reading the record. Returns a non-OK status
  // if the record is missing.
  virtual Result<uint64_t> RecordBytes(const std::string& key) = 0;

  // Returns the bytes of the record of storage `key` in a CPU storage that
  // owns them. Returns a non-OK status if the record is missing or unreadable.
  virtual Result<c10::Storage> ReadRecord(const std::string& key) = 0;
};

// Runs the pickle program `data` (the contents of a torch.save data.pkl) and
// returns the object it builds. Reads no storage record: calls
// `records->RecordBytes` once per distinct storage key the program references
// and checks that the element count the persistent id declares fits in it.
// Tensors come back as descriptions (PickleValue::Kind::kTensor) for a
// TensorBuilder on the same `records` to build.
//
// On failure returns InvalidArgument whose message starts with "data.pkl" and
// names the byte offset and the opcode or global at fault, e.g.
// "data.pkl: pickle opcode 0x81 (NEWOBJ) at offset 12 not supported" or
// "data.pkl: global 'os.system' at offset 2 not supported"; or the status that
// `records->RecordBytes` returned.
// REQUIRES: records != nullptr.
Result<PickleObject> Unpickle(std::string_view data, StorageRecords* records);

// Builds the tensors that the values of one PickleObject describe. Reads each
// storage record at most once, when the first tensor on it is built: tensors
// that name the same storage key share one storage, as views do in Python, and
// a value built twice gives the same tensor. Storages of tensors never built
// are never read.
//
// Not copyable. Not thread-safe: use one TensorBuilder per thread.
class TensorBuilder {
 public:
  // REQUIRES: records != nullptr and outlives this builder.
  explicit TensorBuilder(StorageRecords* records) : records_(records) {}

  TensorBuilder(const TensorBuilder&) = delete;
  TensorBuilder& operator=(const TensorBuilder&) = delete;

  // Returns the tensor `value` describes: on the CPU whatever device it was
  // saved from, with the sizes, strides, storage offset and requires_grad it
  // was saved with, on a storage that owns its memory. Returns the status
  // `ReadRecord` returned, or InvalidArgument if the record holds fewer bytes
  // than its persistent id declared ("storage '0' declares 5 elements of
  // Float but its record holds 16 bytes").
  // REQUIRES: value.kind == PickleValue::Kind::kTensor; every value passed to
  // one builder comes from the same PickleObject, unpickled from the same
  // records, and that object outlives the builder.
  Result<torch::Tensor> Build(const PickleValue& value);

 private:
  StorageRecords* const records_;
  std::unordered_map<std::string, c10::Storage> storages_;  // By record key.
  std::unordered_map<const PickleValue*, torch::Tensor> tensors_;
};

}  // namespace paretopipe
