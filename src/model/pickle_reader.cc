#include "model/pickle_reader.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <cstdio>
#include <cstring>
#include <unordered_map>

namespace paretopipe {
namespace {

// Opcodes, named as in CPython's Lib/pickle.py; only those this reader runs.
enum Opcode : uint8_t {
  kMark = '(',
  kStop = '.',
  kPop = '0',
  kPopMark = '1',
  kDup = '2',
  kBinBytes = 'B',
  kShortBinBytes = 'C',
  kBinFloat = 'G',
  kBinInt = 'J',
  kBinInt1 = 'K',
  kBinInt2 = 'M',
  kNone = 'N',
  kBinPersId = 'Q',
  kReduce = 'R',
  kBinString = 'T',
  kShortBinString = 'U',
  kBinUnicode = 'X',
  kEmptyList = ']',
  kAppend = 'a',
  kBuild = 'b',
  kGlobal = 'c',
  kAppends = 'e',
  kBinGet = 'h',
  kLongBinGet = 'j',
  kBinPut = 'q',
  kLongBinPut = 'r',
  kSetItem = 's',
  kTuple = 't',
  kSetItems = 'u',
  kEmptyTuple = ')',
  kEmptyDict = '}',
  kProto = 0x80,
  kTuple1 = 0x85,
  kTuple2 = 0x86,
  kTuple3 = 0x87,
  kNewTrue = 0x88,
  kNewFalse = 0x89,
  kLong1 = 0x8a,
  kLong4 = 0x8b,
  kShortBinUnicode = 0x8c,
  kBinUnicode8 = 0x8d,
  kBinBytes8 = 0x8e,
  kStackGlobal = 0x93,
  kMemoize = 0x94,
  kFrame = 0x95,
};

// The name of every opcode of pickle protocols 0-5, for error messages.
struct OpcodeInfo {
  uint8_t op;
  const char* name;
};
// clang-format off
constexpr OpcodeInfo kOpcodeNames[] = {
    {'(', "MARK"}, {'.', "STOP"}, {'0', "POP"}, {'1', "POP_MARK"}, {'2', "DUP"}, {'F', "FLOAT"},
    {'I', "INT"}, {'J', "BININT"}, {'K', "BININT1"}, {'L', "LONG"}, {'M', "BININT2"}, {'N', "NONE"},
    {'P', "PERSID"}, {'Q', "BINPERSID"}, {'R', "REDUCE"}, {'S', "STRING"}, {'T', "BINSTRING"},
    {'U', "SHORT_BINSTRING"}, {'V', "UNICODE"}, {'X', "BINUNICODE"}, {'a', "APPEND"},
    {'b', "BUILD"}, {'c', "GLOBAL"}, {'d', "DICT"}, {'}', "EMPTY_DICT"}, {'e', "APPENDS"},
    {'g', "GET"}, {'h', "BINGET"}, {'i', "INST"}, {'j', "LONG_BINGET"}, {'l', "LIST"},
    {']', "EMPTY_LIST"}, {'o', "OBJ"}, {'p', "PUT"}, {'q', "BINPUT"}, {'r', "LONG_BINPUT"},
    {'s', "SETITEM"}, {'t', "TUPLE"}, {')', "EMPTY_TUPLE"}, {'u', "SETITEMS"}, {'G', "BINFLOAT"},
    {'B', "BINBYTES"}, {'C', "SHORT_BINBYTES"}, {0x80, "PROTO"}, {0x81, "NEWOBJ"}, {0x82, "EXT1"},
    {0x83, "EXT2"}, {0x84, "EXT4"}, {0x85, "TUPLE1"}, {0x86, "TUPLE2"}, {0x87, "TUPLE3"},
    {0x88, "NEWTRUE"}, {0x89, "NEWFALSE"}, {0x8a, "LONG1"}, {0x8b, "LONG4"},
    {0x8c, "SHORT_BINUNICODE"}, {0x8d, "BINUNICODE8"}, {0x8e, "BINBYTES8"}, {0x8f, "EMPTY_SET"},
    {0x90, "ADDITEMS"}, {0x91, "FROZENSET"}, {0x92, "NEWOBJ_EX"}, {0x93, "STACK_GLOBAL"},
    {0x94, "MEMOIZE"}, {0x95, "FRAME"}, {0x96, "BYTEARRAY8"}, {0x97, "NEXT_BUFFER"},
    {0x98, "READONLY_BUFFER"},
};
// clang-format on

// Returns the name of opcode `op`, or nullptr for a byte that is no opcode.
const char* OpcodeName(uint8_t op) {
  for (const OpcodeInfo& info : kOpcodeNames) {
    if (info.op == op) return info.name;
  }
  return nullptr;
}

// The storage classes torch.save names in persistent ids. PyTorch 2.x still
// writes these legacy names (TypedStorage._pickle_storage_type()).
struct StorageClass {
  const char* name;
  c10::ScalarType dtype;
};
constexpr StorageClass kStorageClasses[] = {
    {"FloatStorage", c10::ScalarType::Float},
    {"DoubleStorage", c10::ScalarType::Double},
    {"HalfStorage", c10::ScalarType::Half},
    {"BFloat16Storage", c10::ScalarType::BFloat16},
    {"LongStorage", c10::ScalarType::Long},
    {"IntStorage", c10::ScalarType::Int},
    {"ShortStorage", c10::ScalarType::Short},
    {"CharStorage", c10::ScalarType::Char},
    {"ByteStorage", c10::ScalarType::Byte},
    {"BoolStorage", c10::ScalarType::Bool},
    {"ComplexFloatStorage", c10::ScalarType::ComplexFloat},
    {"ComplexDoubleStorage", c10::ScalarType::ComplexDouble},
};

// If `global` ("module.name") is a storage class, sets *dtype and returns true.
bool StorageClassDtype(const std::string& global, c10::ScalarType* dtype) {
  constexpr std::string_view kPrefix = "torch.";
  if (global.compare(0, kPrefix.size(), kPrefix) != 0) return false;
  const std::string_view name = std::string_view(global).substr(kPrefix.size());
  for (const StorageClass& c : kStorageClasses) {
    if (name == c.name) {
      *dtype = c.dtype;
      return true;
    }
  }
  return false;
}

// The functions and classes a torch.save pickle may call or name, other than
// storage classes.
constexpr const char* kOrderedDict = "collections.OrderedDict";
constexpr const char* kRebuildTensor = "torch._utils._rebuild_tensor";
constexpr const char* kRebuildTensorV2 = "torch._utils._rebuild_tensor_v2";
constexpr const char* kRebuildParameter = "torch._utils._rebuild_parameter";
constexpr const char* kRebuildParameterWithState = "torch._utils._rebuild_parameter_with_state";
// LibTorch's torch::pickle_save wraps dicts in restore_type_tag(dict, "Dict[str, Tensor]").
constexpr const char* kRestoreTypeTag = "torch.jit._pickle.restore_type_tag";

bool IsCallableGlobal(const std::string& name) {
  for (const char* allowed : {kOrderedDict, kRebuildTensor, kRebuildTensorV2, kRebuildParameter,
                              kRebuildParameterWithState, kRestoreTypeTag}) {
    if (name == allowed) return true;
  }
  return false;
}

// True if `numel` elements of `dtype` fit in `record_bytes`.
bool FitsInRecord(int64_t numel, c10::ScalarType dtype, uint64_t record_bytes) {
  const int64_t item_bytes = static_cast<int64_t>(c10::elementSize(dtype));
  int64_t bytes = 0;
  return !__builtin_mul_overflow(numel, item_bytes, &bytes) &&
         static_cast<uint64_t>(bytes) <= record_bytes;
}

std::string DeclaredTooMuch(const std::string& key, int64_t numel, c10::ScalarType dtype,
                            uint64_t record_bytes) {
  return "storage '" + key + "' declares " + std::to_string(numel) + " elements of " +
         c10::toString(dtype) + " but its record holds " + std::to_string(record_bytes) + " bytes";
}

std::string Join(const std::vector<int64_t>& values) {
  std::string out = "[";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ", ";
    out += std::to_string(values[i]);
  }
  return out + "]";
}

}  // namespace

const char* TorchStorageClassName(c10::ScalarType dtype) {
  for (const StorageClass& c : kStorageClasses) {
    if (c.dtype == dtype) return c.name;
  }
  return nullptr;
}

std::string DescribePickleValue(const PickleValue& value) {
  switch (value.kind) {
    case PickleValue::Kind::kNone:
      return "None";
    case PickleValue::Kind::kBool:
      return "a bool";
    case PickleValue::Kind::kInt:
      return "an int";
    case PickleValue::Kind::kFloat:
      return "a float";
    case PickleValue::Kind::kString:
      return "a str";
    case PickleValue::Kind::kBytes:
      return "a bytes object";
    case PickleValue::Kind::kTuple:
      return "a tuple";
    case PickleValue::Kind::kList:
      return "a list";
    case PickleValue::Kind::kDict:
      return value.ordered ? "an OrderedDict" : "a dict";
    case PickleValue::Kind::kGlobal:
      return "the global '" + value.text + "'";
    case PickleValue::Kind::kStorage:
      return "a storage";
    case PickleValue::Kind::kTensor:
      return "a tensor";
  }
  return "an unknown value";
}

// Runs one pickle program. Not in the anonymous namespace: PickleObject
// befriends it. One instance per Unpickle() call.
class Unpickler {
 public:
  Unpickler(std::string_view data, StorageRecords* records) : data_(data), records_(records) {}

  Unpickler(const Unpickler&) = delete;
  Unpickler& operator=(const Unpickler&) = delete;

  Result<PickleObject> Run();

 private:
  using Kind = PickleValue::Kind;

  // Returns InvalidArgument "data.pkl: offset N (OPCODE): `what`".
  Status Fail(const std::string& what) const;

  Status Step();

  // Input. Each fails if the data ends first.
  Status Need(uint64_t bytes) const;
  Result<uint64_t> ReadUnsigned(int bytes);    // Little-endian.
  Result<int64_t> ReadSigned(uint64_t bytes);  // Little-endian two's complement.
  Result<std::string_view> ReadBytes(uint64_t count);
  Result<std::string_view> ReadLine();

  // Values and the stack. Python's unpickler keeps a stack per open MARK; a
  // pop below the innermost mark is an underflow here as there.
  PickleValue* New(Kind kind);
  Status Push(Kind kind, std::string text);
  size_t Floor() const { return marks_.empty() ? 0 : marks_.back(); }
  Result<PickleValue*> Pop();
  Result<PickleValue*> Top();
  Result<std::vector<PickleValue*>> PopToMark();

  Status Memoize(uint64_t index);
  Status Recall(uint64_t index);

  Status PushGlobal(const std::string& module, const std::string& name);
  Status Reduce();
  Status Build();
  Status PersistentLoad();
  Status SetItems(const std::vector<PickleValue*>& keys_and_values);
  Status Appends(const std::vector<PickleValue*>& items);

  Result<PickleValue*> Call(const std::string& function,
                            const std::vector<const PickleValue*>& args);
  Result<PickleValue*> RebuildTensor(const std::string& function,
                                     const std::vector<const PickleValue*>& args,
                                     bool requires_grad);
  Result<std::vector<int64_t>> IntTuple(const std::string& function, const char* what,
                                        const PickleValue& value);
  Status CheckRequiresGrad(const PickleValue& storage, bool requires_grad) const;

  const std::string_view data_;
  StorageRecords* const records_;
  size_t pos_ = 0;
  size_t op_offset_ = 0;  // Where the opcode being run starts.
  uint8_t op_ = 0;

  PickleObject object_;
  std::vector<PickleValue*> stack_;
  std::vector<size_t> marks_;  // Stack heights at each open MARK.
  std::unordered_map<uint64_t, PickleValue*> memo_;
  std::unordered_map<std::string, uint64_t> record_bytes_;  // By storage key.
  // Position of each str key in each dict, so a repeated key replaces its
  // value as in Python instead of appearing twice.
  std::unordered_map<const PickleValue*, std::unordered_map<std::string, size_t>> dict_keys_;
};

Status Unpickler::Fail(const std::string& what) const {
  const char* name = OpcodeName(op_);
  return Status::InvalidArgument("data.pkl: offset " + std::to_string(op_offset_) + " (" +
                                 (name != nullptr ? name : "?") + "): " + what);
}

Status Unpickler::Need(uint64_t bytes) const {
  if (bytes > data_.size() - pos_) {
    return Fail("truncated: needs " + std::to_string(bytes) + " more bytes, " +
                std::to_string(data_.size() - pos_) + " left");
  }
  return Status::Ok();
}

Result<uint64_t> Unpickler::ReadUnsigned(int bytes) {
  PP_RETURN_IF_ERROR(Need(bytes));
  uint64_t value = 0;
  for (int i = bytes - 1; i >= 0; --i) {
    value = (value << 8) | static_cast<uint8_t>(data_[pos_ + i]);
  }
  pos_ += bytes;
  return value;
}

Result<int64_t> Unpickler::ReadSigned(uint64_t bytes) {
  if (bytes > 8) return Fail("integer of " + std::to_string(bytes) + " bytes exceeds 64 bits");
  PP_ASSIGN_OR_RETURN(uint64_t value, ReadUnsigned(static_cast<int>(bytes)));
  if (bytes > 0 && bytes < 8 && (value >> (8 * bytes - 1)) != 0) {
    value |= ~uint64_t{0} << (8 * bytes);  // Sign-extend.
  }
  return static_cast<int64_t>(value);
}

Result<std::string_view> Unpickler::ReadBytes(uint64_t count) {
  PP_RETURN_IF_ERROR(Need(count));
  std::string_view out = data_.substr(pos_, count);
  pos_ += count;
  return out;
}

Result<std::string_view> Unpickler::ReadLine() {
  const size_t end = data_.find('\n', pos_);
  if (end == std::string_view::npos) return Fail("truncated: line has no end");
  std::string_view line = data_.substr(pos_, end - pos_);
  pos_ = end + 1;
  return line;
}

PickleValue* Unpickler::New(Kind kind) {
  object_.values_.push_back(std::make_unique<PickleValue>());
  PickleValue* value = object_.values_.back().get();
  value->kind = kind;
  return value;
}

Status Unpickler::Push(Kind kind, std::string text) {
  PickleValue* value = New(kind);
  value->text = std::move(text);
  stack_.push_back(value);
  return Status::Ok();
}

Result<PickleValue*> Unpickler::Pop() {
  if (stack_.size() <= Floor()) return Fail("stack underflow");
  PickleValue* value = stack_.back();
  stack_.pop_back();
  return value;
}

Result<PickleValue*> Unpickler::Top() {
  if (stack_.size() <= Floor()) return Fail("stack underflow");
  return stack_.back();
}

Result<std::vector<PickleValue*>> Unpickler::PopToMark() {
  if (marks_.empty()) return Fail("no MARK on the stack");
  const size_t mark = marks_.back();
  marks_.pop_back();
  std::vector<PickleValue*> items(stack_.begin() + mark, stack_.end());
  stack_.resize(mark);
  return items;
}

Status Unpickler::Memoize(uint64_t index) {
  PP_ASSIGN_OR_RETURN(PickleValue * top, Top());
  memo_[index] = top;
  return Status::Ok();
}

Status Unpickler::Recall(uint64_t index) {
  auto it = memo_.find(index);
  if (it == memo_.end()) return Fail("memo entry " + std::to_string(index) + " was never stored");
  stack_.push_back(it->second);
  return Status::Ok();
}

Status Unpickler::PushGlobal(const std::string& module, const std::string& name) {
  const std::string full = module + "." + name;
  c10::ScalarType dtype;
  if (!IsCallableGlobal(full) && !StorageClassDtype(full, &dtype)) {
    return Status::InvalidArgument("data.pkl: global '" + full + "' at offset " +
                                   std::to_string(op_offset_) + " not supported");
  }
  return Push(Kind::kGlobal, full);
}

Status Unpickler::Reduce() {
  PP_ASSIGN_OR_RETURN(PickleValue * args, Pop());
  PP_ASSIGN_OR_RETURN(PickleValue * function, Top());
  if (function->kind != Kind::kGlobal) return Fail("cannot call " + DescribePickleValue(*function));
  if (args->kind != Kind::kTuple) {
    return Fail("arguments of '" + function->text + "' are " + DescribePickleValue(*args) +
                ", expected a tuple");
  }
  PP_ASSIGN_OR_RETURN(PickleValue * result, Call(function->text, args->items));
  stack_.back() = result;
  return Status::Ok();
}

Result<PickleValue*> Unpickler::Call(const std::string& function,
                                     const std::vector<const PickleValue*>& args) {
  const auto arity_error = [&](const char* expected) {
    return Fail("'" + function + "' called with " + std::to_string(args.size()) +
                " arguments, expected " + expected);
  };
  if (function == kOrderedDict) {
    if (!args.empty()) return arity_error("0");
    PickleValue* dict = New(Kind::kDict);
    dict->ordered = true;
    return dict;
  }
  if (function == kRebuildTensorV2) {
    // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata]);
    // hooks cannot be restored outside Python and metadata only carries
    // Python-side tensor attributes, so both are ignored.
    if (args.size() != 6 && args.size() != 7) return arity_error("6 or 7");
    if (args[4]->kind != Kind::kBool) return Fail("'" + function + "' requires_grad is not a bool");
    return RebuildTensor(function, args, args[4]->bool_value);
  }
  if (function == kRebuildTensor) {
    if (args.size() != 4) return arity_error("4");
    return RebuildTensor(function, args, false);
  }
  if (function == kRebuildParameter || function == kRebuildParameterWithState) {
    // (data, requires_grad, backward_hooks[, state]).
    if (args.size() != (function == kRebuildParameter ? 3u : 4u)) {
      return arity_error(function == kRebuildParameter ? "3" : "4");
    }
    if (args[0]->kind != Kind::kTensor) {
      return Fail("'" + function + "' data is " + DescribePickleValue(*args[0]) +
                  ", expected a tensor");
    }
    if (args[1]->kind != Kind::kBool) return Fail("'" + function + "' requires_grad is not a bool");
    PP_RETURN_IF_ERROR(CheckRequiresGrad(*args[0]->storage, args[1]->bool_value));
    PickleValue* parameter = New(Kind::kTensor);  // A new tensor on the same storage.
    *parameter = *args[0];
    parameter->requires_grad = args[1]->bool_value;
    return parameter;
  }
  if (function == kRestoreTypeTag) {
    // (value, type string): the type tag only matters to TorchScript.
    if (args.size() != 2) return arity_error("2");
    // Every value is created non-const by New(); containers merely store const
    // pointers, so handing this one back to the mutable stack is sound.
    return const_cast<PickleValue*>(args[0]);
  }
  return Fail("cannot call '" + function + "'");
}

Result<std::vector<int64_t>> Unpickler::IntTuple(const std::string& function, const char* what,
                                                 const PickleValue& value) {
  if (value.kind != Kind::kTuple) {
    return Fail("'" + function + "' " + what + " is " + DescribePickleValue(value) +
                ", expected a tuple");
  }
  std::vector<int64_t> out;
  out.reserve(value.items.size());
  for (const PickleValue* item : value.items) {
    if (item->kind != Kind::kInt) {
      return Fail("'" + function + "' " + what + " holds " + DescribePickleValue(*item) +
                  ", expected ints");
    }
    out.push_back(item->int_value);
  }
  return out;
}

Result<PickleValue*> Unpickler::RebuildTensor(const std::string& function,
                                              const std::vector<const PickleValue*>& args,
                                              bool requires_grad) {
  const PickleValue& storage = *args[0];
  if (storage.kind != Kind::kStorage) {
    return Fail("'" + function + "' storage is " + DescribePickleValue(storage) +
                ", expected a storage");
  }
  if (args[1]->kind != Kind::kInt) return Fail("'" + function + "' storage offset is not an int");
  const int64_t offset = args[1]->int_value;
  PP_ASSIGN_OR_RETURN(std::vector<int64_t> sizes, IntTuple(function, "size", *args[2]));
  PP_ASSIGN_OR_RETURN(std::vector<int64_t> strides, IntTuple(function, "stride", *args[3]));
  const std::string shape = "tensor of size " + Join(sizes) + ", stride " + Join(strides) +
                            ", offset " + std::to_string(offset);
  if (sizes.size() != strides.size()) return Fail(shape + ": size and stride differ in length");
  if (offset < 0) return Fail(shape + ": negative offset");

  // The tensor reads elements offset + sum(i_k * stride_k), 0 <= i_k < size_k;
  // all must lie inside the storage. Computed with overflow checks because a
  // hostile file picks the numbers.
  int64_t numel = 1;
  int64_t last = offset;
  for (size_t k = 0; k < sizes.size(); ++k) {
    if (sizes[k] < 0 || strides[k] < 0) return Fail(shape + ": negative size or stride");
    if (__builtin_mul_overflow(numel, sizes[k], &numel))
      return Fail(shape + ": element count overflows");
    int64_t extent = 0;
    if (sizes[k] > 0 && (__builtin_mul_overflow(sizes[k] - 1, strides[k], &extent) ||
                         __builtin_add_overflow(last, extent, &last))) {
      return Fail(shape + ": extent overflows");
    }
  }
  if (numel > 0 && last >= storage.storage_numel) {
    return Fail(shape + " reads element " + std::to_string(last) + " of storage '" + storage.text +
                "', which holds " + std::to_string(storage.storage_numel));
  }

  PP_RETURN_IF_ERROR(CheckRequiresGrad(storage, requires_grad));

  PickleValue* value = New(Kind::kTensor);
  value->storage = &storage;
  value->storage_offset = offset;
  value->sizes = std::move(sizes);
  value->strides = std::move(strides);
  value->requires_grad = requires_grad;
  return value;
}

// Checked here, not left to set_requires_grad() when the tensor is built, so
// that a file fails the same way whichever of its tensors are built.
Status Unpickler::CheckRequiresGrad(const PickleValue& storage, bool requires_grad) const {
  const c10::ScalarType dtype = storage.storage_dtype;
  if (requires_grad && !c10::isFloatingType(dtype) && !c10::isComplexType(dtype)) {
    return Fail(std::string("tensor of dtype ") + c10::toString(dtype) +
                " requires grad; only floating point and complex tensors can");
  }
  return Status::Ok();
}

Status Unpickler::PersistentLoad() {
  PP_ASSIGN_OR_RETURN(PickleValue * id, Pop());
  // ('storage', storage class, key, location, numel).
  if (id->kind != Kind::kTuple || id->items.size() != 5) {
    return Fail(
        "persistent id is " + DescribePickleValue(*id) +
        (id->kind == Kind::kTuple ? " of " + std::to_string(id->items.size()) : std::string()) +
        ", expected ('storage', type, key, location, numel)");
  }
  const std::vector<const PickleValue*>& f = id->items;
  const bool is_text = (f[0]->kind == Kind::kString || f[0]->kind == Kind::kBytes);
  if (!is_text || f[0]->text != "storage") return Fail("persistent id does not name a storage");
  c10::ScalarType dtype;
  if (f[1]->kind != Kind::kGlobal || !StorageClassDtype(f[1]->text, &dtype)) {
    return Fail("persistent id names " + DescribePickleValue(*f[1]) + ", expected a storage class");
  }
  if (f[2]->kind != Kind::kString) return Fail("persistent id key is not a str");
  if (f[4]->kind != Kind::kInt || f[4]->int_value < 0) {
    return Fail("persistent id element count is not a non-negative int");
  }
  // f[3], the device the storage was saved from, is ignored: storages load on the CPU.
  const std::string& key = f[2]->text;
  const int64_t numel = f[4]->int_value;

  auto it = record_bytes_.find(key);
  if (it == record_bytes_.end()) {
    PP_ASSIGN_OR_RETURN(uint64_t record_bytes, records_->RecordBytes(key));
    it = record_bytes_.emplace(key, record_bytes).first;
  }
  if (!FitsInRecord(numel, dtype, it->second)) {
    return Fail(DeclaredTooMuch(key, numel, dtype, it->second));
  }
  PickleValue* storage = New(Kind::kStorage);
  storage->text = key;
  storage->storage_dtype = dtype;
  storage->storage_numel = numel;
  stack_.push_back(storage);
  return Status::Ok();
}

Status Unpickler::SetItems(const std::vector<PickleValue*>& keys_and_values) {
  if (keys_and_values.size() % 2 != 0) return Fail("odd number of keys and values");
  PP_ASSIGN_OR_RETURN(PickleValue * dict, Top());
  if (dict->kind != Kind::kDict) return Fail("cannot set items of " + DescribePickleValue(*dict));
  for (size_t i = 0; i < keys_and_values.size(); i += 2) {
    const PickleValue* key = keys_and_values[i];
    const PickleValue* value = keys_and_values[i + 1];
    if (key->kind == Kind::kString) {
      auto [it, inserted] = dict_keys_[dict].emplace(key->text, dict->entries.size());
      if (!inserted) {
        dict->entries[it->second].second = value;
        continue;
      }
    }
    dict->entries.emplace_back(key, value);
  }
  return Status::Ok();
}

Status Unpickler::Appends(const std::vector<PickleValue*>& items) {
  PP_ASSIGN_OR_RETURN(PickleValue * list, Top());
  if (list->kind != Kind::kList) return Fail("cannot append to " + DescribePickleValue(*list));
  list->items.insert(list->items.end(), items.begin(), items.end());
  return Status::Ok();
}

Status Unpickler::Build() {
  PP_ASSIGN_OR_RETURN(PickleValue * state, Pop());
  PP_ASSIGN_OR_RETURN(PickleValue * object, Top());
  // state_dict() sets `_metadata` (module versions) as an attribute of its
  // OrderedDict; load_state_dict() works without it, so it is dropped.
  if (object->kind == Kind::kDict && object->ordered) return Status::Ok();
  return Fail("setting the state of " + DescribePickleValue(*object) + " to " +
              DescribePickleValue(*state) + " not supported");
}

Status Unpickler::Step() {
  switch (op_) {
    case kProto: {
      PP_ASSIGN_OR_RETURN(uint64_t version, ReadUnsigned(1));
      if (version > 5) return Fail("pickle protocol " + std::to_string(version) + " not supported");
      return Status::Ok();
    }
    case kFrame:  // An 8-byte frame length; frames only group opcodes for buffered reading.
      PP_RETURN_IF_ERROR(Need(8));
      pos_ += 8;
      return Status::Ok();
    case kMark:
      marks_.push_back(stack_.size());
      return Status::Ok();
    case kPop:
      if (stack_.size() > Floor()) {
        stack_.pop_back();
        return Status::Ok();
      }
      return PopToMark().ok() ? Status::Ok() : Fail("stack underflow");  // Python pops a mark.
    case kPopMark: {
      Result<std::vector<PickleValue*>> dropped = PopToMark();
      return dropped.ok() ? Status::Ok() : dropped.status();
    }
    case kDup: {
      PP_ASSIGN_OR_RETURN(PickleValue * top, Top());
      stack_.push_back(top);
      return Status::Ok();
    }

    case kNone:
      return Push(Kind::kNone, "");
    case kNewTrue:
    case kNewFalse:
      stack_.push_back(New(Kind::kBool));
      stack_.back()->bool_value = (op_ == kNewTrue);
      return Status::Ok();
    case kBinInt:
    case kBinInt1:
    case kBinInt2: {
      const int bytes = op_ == kBinInt ? 4 : op_ == kBinInt2 ? 2 : 1;
      PP_ASSIGN_OR_RETURN(uint64_t raw, ReadUnsigned(bytes));
      stack_.push_back(New(Kind::kInt));
      stack_.back()->int_value = op_ == kBinInt ? static_cast<int32_t>(static_cast<uint32_t>(raw))
                                                : static_cast<int64_t>(raw);
      return Status::Ok();
    }
    case kLong1:
    case kLong4: {
      PP_ASSIGN_OR_RETURN(uint64_t length, ReadUnsigned(op_ == kLong1 ? 1 : 4));
      PP_ASSIGN_OR_RETURN(int64_t value, ReadSigned(length));
      stack_.push_back(New(Kind::kInt));
      stack_.back()->int_value = value;
      return Status::Ok();
    }
    case kBinFloat: {
      PP_RETURN_IF_ERROR(Need(8));
      uint64_t bits = 0;  // Big-endian, unlike every other number in pickle.
      for (int i = 0; i < 8; ++i) bits = (bits << 8) | static_cast<uint8_t>(data_[pos_ + i]);
      pos_ += 8;
      stack_.push_back(New(Kind::kFloat));
      std::memcpy(&stack_.back()->float_value, &bits, sizeof(bits));
      return Status::Ok();
    }

    // Python 2 str (BINSTRING) reads as str, as torch.load's default encoding does.
    case kShortBinUnicode:
    case kBinUnicode:
    case kBinUnicode8:
    case kShortBinString:
    case kBinString:
    case kShortBinBytes:
    case kBinBytes:
    case kBinBytes8: {
      const bool short_length =
          (op_ == kShortBinUnicode || op_ == kShortBinString || op_ == kShortBinBytes);
      const bool long_length = (op_ == kBinUnicode8 || op_ == kBinBytes8);
      PP_ASSIGN_OR_RETURN(uint64_t length, ReadUnsigned(short_length ? 1 : long_length ? 8 : 4));
      if (op_ == kBinString && length > INT32_MAX) return Fail("negative string length");
      PP_ASSIGN_OR_RETURN(std::string_view text, ReadBytes(length));
      const bool bytes = (op_ == kShortBinBytes || op_ == kBinBytes || op_ == kBinBytes8);
      return Push(bytes ? Kind::kBytes : Kind::kString, std::string(text));
    }

    case kEmptyTuple:
      return Push(Kind::kTuple, "");
    case kEmptyList:
      return Push(Kind::kList, "");
    case kEmptyDict:
      return Push(Kind::kDict, "");
    case kTuple: {
      PP_ASSIGN_OR_RETURN(std::vector<PickleValue*> items, PopToMark());
      PickleValue* tuple = New(Kind::kTuple);
      tuple->items.assign(items.begin(), items.end());
      stack_.push_back(tuple);
      return Status::Ok();
    }
    case kTuple1:
    case kTuple2:
    case kTuple3: {
      const size_t count = op_ - kTuple1 + 1;
      if (stack_.size() < Floor() + count) return Fail("stack underflow");
      PickleValue* tuple = New(Kind::kTuple);
      tuple->items.assign(stack_.end() - count, stack_.end());
      stack_.resize(stack_.size() - count);
      stack_.push_back(tuple);
      return Status::Ok();
    }
    case kAppend: {
      PP_ASSIGN_OR_RETURN(PickleValue * item, Pop());
      return Appends({item});
    }
    case kAppends: {
      PP_ASSIGN_OR_RETURN(std::vector<PickleValue*> items, PopToMark());
      return Appends(items);
    }
    case kSetItem: {
      PP_ASSIGN_OR_RETURN(PickleValue * value, Pop());
      PP_ASSIGN_OR_RETURN(PickleValue * key, Pop());
      return SetItems({key, value});
    }
    case kSetItems: {
      PP_ASSIGN_OR_RETURN(std::vector<PickleValue*> items, PopToMark());
      return SetItems(items);
    }

    case kBinPut: {
      PP_ASSIGN_OR_RETURN(uint64_t index, ReadUnsigned(1));
      return Memoize(index);
    }
    case kLongBinPut: {
      PP_ASSIGN_OR_RETURN(uint64_t index, ReadUnsigned(4));
      return Memoize(index);
    }
    case kMemoize:
      return Memoize(memo_.size());
    case kBinGet: {
      PP_ASSIGN_OR_RETURN(uint64_t index, ReadUnsigned(1));
      return Recall(index);
    }
    case kLongBinGet: {
      PP_ASSIGN_OR_RETURN(uint64_t index, ReadUnsigned(4));
      return Recall(index);
    }

    case kGlobal: {
      PP_ASSIGN_OR_RETURN(std::string_view module, ReadLine());
      PP_ASSIGN_OR_RETURN(std::string_view name, ReadLine());
      return PushGlobal(std::string(module), std::string(name));
    }
    case kStackGlobal: {
      PP_ASSIGN_OR_RETURN(PickleValue * name, Pop());
      PP_ASSIGN_OR_RETURN(PickleValue * module, Pop());
      if (module->kind != Kind::kString || name->kind != Kind::kString) {
        return Fail("module and name are not both str");
      }
      return PushGlobal(module->text, name->text);
    }
    case kReduce:
      return Reduce();
    case kBuild:
      return Build();
    case kBinPersId:
      return PersistentLoad();

    default: {
      char hex[8];
      std::snprintf(hex, sizeof(hex), "0x%02x", op_);
      const char* name = OpcodeName(op_);
      return Status::InvalidArgument(
          "data.pkl: pickle opcode " + std::string(hex) +
          (name != nullptr ? std::string(" (") + name + ")" : std::string()) + " at offset " +
          std::to_string(op_offset_) + " not supported");
    }
  }
}

Result<PickleObject> Unpickler::Run() {
  while (true) {
    op_offset_ = pos_;
    if (pos_ >= data_.size()) {
      return Status::InvalidArgument("data.pkl: ends at offset " + std::to_string(pos_) +
                                     " without a STOP opcode (truncated?)");
    }
    op_ = static_cast<uint8_t>(data_[pos_++]);
    if (op_ == kStop) break;
    PP_RETURN_IF_ERROR(Step());
  }
  PP_ASSIGN_OR_RETURN(PickleValue * root, Pop());
  object_.root_ = root;
  return std::move(object_);
}

Result<PickleObject> Unpickle(std::string_view data, StorageRecords* records) {
  Unpickler unpickler(data, records);
  return unpickler.Run();
}

Result<torch::Tensor> TensorBuilder::Build(const PickleValue& value) {
  auto built = tensors_.find(&value);
  if (built != tensors_.end()) return built->second;

  const PickleValue& storage = *value.storage;
  auto it = storages_.find(storage.text);
  if (it == storages_.end()) {
    PP_ASSIGN_OR_RETURN(c10::Storage record, records_->ReadRecord(storage.text));
    it = storages_.emplace(storage.text, std::move(record)).first;
  }
  // Unpickle() checked the declared count against the size the archive's
  // directory states; the bytes actually read are what the tensor will index.
  if (!FitsInRecord(storage.storage_numel, storage.storage_dtype, it->second.nbytes())) {
    return Status::InvalidArgument("data.pkl: " +
                                   DeclaredTooMuch(storage.text, storage.storage_numel,
                                                   storage.storage_dtype, it->second.nbytes()));
  }
  torch::Tensor tensor;
  try {
    tensor = at::empty({0}, at::TensorOptions().dtype(storage.storage_dtype).device(at::kCPU));
    tensor.set_(it->second, value.storage_offset, value.sizes, value.strides);
    if (value.requires_grad) tensor.set_requires_grad(true);
  } catch (const c10::Error& e) {
    return Status::InvalidArgument("data.pkl: tensor of size " + Join(value.sizes) + ", stride " +
                                   Join(value.strides) + ", offset " +
                                   std::to_string(value.storage_offset) + " on storage '" +
                                   storage.text + "': " + e.what_without_backtrace());
  }
  tensors_.emplace(&value, tensor);
  return tensor;
}

}  // namespace paretopipe
