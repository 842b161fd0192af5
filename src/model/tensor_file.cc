#include "model/tensor_file.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <caffe2/serialize/inline_container.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string_view>
#include <unordered_map>

#include "model/pickle_reader.h"

namespace paretopipe {
namespace {

// torch.save before PyTorch 1.6 (and after, with _use_new_zipfile_serialization
// =False) starts with a pickled magic number: PROTO 2, LONG1 of 10 bytes
// 0x1950a86a20f9469cfc6c (torch/serialization.py, MAGIC_NUMBER).
constexpr std::string_view kLegacyMagic("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19",
                                        14);
constexpr std::string_view kZipMagic("PK\x03\x04", 4);
constexpr const char* kLegacyAdvice =
    "is in the legacy torch.save format (PyTorch < 1.6 or _use_new_zipfile_serialization=False); "
    "re-save it with a current PyTorch: torch.save(torch.load(f), f)";

std::string ErrnoText() { return std::strerror(errno); }

// Checks the file's first bytes, so that the common wrong files get a clear
// message instead of a zip library's.
Status CheckSignature(const std::string& path) {
  std::error_code error;
  const std::filesystem::file_status status = std::filesystem::status(path, error);
  if (!std::filesystem::exists(status)) return Status::NotFound("no such file");
  if (std::filesystem::is_directory(status))
    return Status::InvalidArgument("is a directory, expected a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IoError("cannot open: " + ErrnoText());
  char head[512] = {};
  in.read(head, sizeof(head));
  const std::string_view bytes(head, static_cast<size_t>(in.gcount()));
  if (bytes.empty()) return Status::InvalidArgument("is empty, expected a torch.save zip archive");
  if (bytes.substr(0, kZipMagic.size()) == kZipMagic) return Status::Ok();
  // The oldest torch.save (before PyTorch 0.4) wrote a tar archive.
  const bool tar = bytes.size() >= 262 && bytes.substr(257, 5) == "ustar";
  if (bytes.substr(0, kLegacyMagic.size()) == kLegacyMagic || tar) {
    return Status::InvalidArgument(kLegacyAdvice);
  }
  if (static_cast<uint8_t>(bytes[0]) == 0x80) {
    return Status::InvalidArgument("is a bare Python pickle, not a torch.save zip archive");
  }
  return Status::InvalidArgument("is not a torch.save file (no zip archive signature)");
}

// Runs the data.pkl of the torch.save archive at `path`. Messages do not name
// the path; callers add it.
Result<PickleObject> LoadArchive(const std::string& path) {
  PP_RETURN_IF_ERROR(CheckSignature(path));
  // PyTorchStreamReader reports bad archives with c10::Error; only its message
  // (never the C++ backtrace) reaches the user.
  try {
    caffe2::serialize::PyTorchStreamReader reader(path);
    if (reader.hasRecord("constants.pkl")) {
      return Status::InvalidArgument(
          "is a TorchScript archive (torch.jit.save), not a torch.save file");
    }
    if (!reader.hasRecord("data.pkl")) {
      return Status::InvalidArgument(
          "zip archive has no data.pkl record; not written by torch.save");
    }
    if (reader.hasRecord("byteorder")) {
      auto [order, order_bytes] = reader.getRecord("byteorder");
      const std::string_view text(static_cast<const char*>(order.get()), order_bytes);
      if (text != "little") {
        return Status::InvalidArgument("was saved with byte order '" + std::string(text) +
                                       "'; only little-endian files are supported");
      }
    }
    auto [pickle, pickle_bytes] = reader.getRecord("data.pkl");
    const StorageRecordReader read_record =
        [&reader](const std::string& key) -> Result<c10::Storage> {
      const std::string name = "data/" + key;
      try {
        if (!reader.hasRecord(name)) {
          return Status::InvalidArgument("storage record '" + name +
                                         "' is missing from the archive");
        }
        auto [data, bytes] = reader.getRecord(name);
        // getRecord copies the record into a fresh CPU allocation that the
        // storage now owns, so tensors outlive the reader.
        return c10::Storage(c10::Storage::use_byte_size_t(), bytes, std::move(data),
                            /*allocator=*/nullptr, /*resizable=*/false);
      } catch (const c10::Error& e) {
        return Status::InvalidArgument("storage record '" + name +
                                       "' is unreadable: " + e.what_without_backtrace());
      } catch (const std::exception& e) {
        return Status::InvalidArgument("storage record '" + name + "' is unreadable: " + e.what());
      }
    };
    return Unpickle(std::string_view(static_cast<const char*>(pickle.get()), pickle_bytes),
                    read_record);
  } catch (const c10::Error& e) {
    return Status::InvalidArgument(std::string("is not a readable torch.save zip archive: ") +
                                   e.what_without_backtrace());
  } catch (const std::exception& e) {
    return Status::InvalidArgument(std::string("is not a readable torch.save zip archive: ") +
                                   e.what());
  }
}

// Builds the pickle program for an object of tensors the way torch.save's
// protocol 2 Pickler would, so that Python's torch.load, including its
// weights_only unpickler, reads it.
class PickleWriter {
 public:
  const std::string& bytes() const { return out_; }

  void Op(char op) { out_.push_back(op); }

  void Int(int64_t value) {
    if (value >= 0 && value < (1 << 8)) {
      Op('K');  // BININT1
      Unsigned(static_cast<uint64_t>(value), 1);
    } else if (value >= 0 && value < (1 << 16)) {
      Op('M');  // BININT2
      Unsigned(static_cast<uint64_t>(value), 2);
    } else if (value >= INT32_MIN && value <= INT32_MAX) {
      Op('J');  // BININT
      Unsigned(static_cast<uint32_t>(static_cast<int32_t>(value)), 4);
    } else {
      Op('\x8a');  // LONG1
      Unsigned(8, 1);
      Unsigned(static_cast<uint64_t>(value), 8);
    }
  }

  void Bool(bool value) { Op(value ? '\x88' : '\x89'); }  // NEWTRUE, NEWFALSE

  void String(const std::string& text) {
    Op('X');  // BINUNICODE
    Unsigned(text.size(), 4);
    out_ += text;
  }

  // Pushes the global `module`.`name`, memoized so that repeats cost 2 bytes.
  void Global(const std::string& module, const std::string& name) {
    const std::string full = module + "\n" + name + "\n";
    auto it = globals_.find(full);
    if (it != globals_.end()) {
      if (it->second < 256) {
        Op('h');  // BINGET
        Unsigned(it->second, 1);
      } else {
        Op('j');  // LONG_BINGET
        Unsigned(it->second, 4);
      }
      return;
    }
    Op('c');  // GLOBAL
    out_ += full;
    const uint32_t index = next_memo_++;
    if (index < 256) {
      Op('q');  // BINPUT
      Unsigned(index, 1);
    } else {
      Op('r');  // LONG_BINPUT
      Unsigned(index, 4);
    }
    globals_.emplace(full, index);
  }

 private:
  void Unsigned(uint64_t value, int bytes) {  // Little-endian.
    for (int i = 0; i < bytes; ++i) out_.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
  }

  std::string out_;
  std::unordered_map<std::string, uint32_t> globals_;
  uint32_t next_memo_ = 0;
};

// The storages an archive holds, one record each. Tensors that share a storage
// share its record, as torch.save does.
class StorageTable {
 public:
  // Returns the record key of `tensor`'s storage, adding it if new.
  std::string KeyFor(const at::Tensor& tensor) {
    // Keyed by dtype too: PyTorch 1.x's torch.load would give a storage
    // shared by two dtypes (a .view(dtype)) the first one's dtype.
    const auto id = std::make_pair(
        static_cast<const void*>(tensor.storage().unsafeGetStorageImpl()), tensor.scalar_type());
    auto it = keys_.find(id);
    if (it != keys_.end()) return it->second;
    const std::string key = std::to_string(storages_.size());
    keys_.emplace(id, key);
    storages_.push_back(tensor.storage());
    return key;
  }

  // Storage i has key std::to_string(i).
  const std::vector<c10::Storage>& storages() const { return storages_; }

 private:
  std::map<std::pair<const void*, at::ScalarType>, std::string> keys_;
  std::vector<c10::Storage> storages_;
};

// Returns `tensor` in a form torch.save can store: a strided CPU tensor with a
// storage, no lazy conjugation or negation.
Result<at::Tensor> SavableTensor(const at::Tensor& tensor) {
  if (!tensor.defined()) return Status::InvalidArgument("tensor is undefined");
  if (tensor.layout() != at::kStrided) {
    return Status::InvalidArgument("tensor has layout " + c10::str(tensor.layout()) +
                                   "; only dense (strided) tensors can be saved");
  }
  if (TorchStorageClassName(tensor.scalar_type()) == nullptr) {
    return Status::InvalidArgument(std::string("tensor has dtype ") +
                                   c10::toString(tensor.scalar_type()) + ", which cannot be saved");
  }
  try {
    at::Tensor out = tensor.device().is_cpu() ? tensor : tensor.cpu();
    if (out.is_conj()) out = out.resolve_conj();
    if (out.is_neg()) out = out.resolve_neg();
    if (!out.has_storage()) return Status::InvalidArgument("tensor has no storage");
    return out;
  } catch (const c10::Error& e) {
    return Status::InvalidArgument(std::string("tensor cannot be saved: ") +
                                   e.what_without_backtrace());
  }
}

// Appends `torch._utils._rebuild_tensor_v2(storage, offset, size, stride,
// requires_grad, OrderedDict())` for `tensor`, a SavableTensor().
void PickleTensor(const at::Tensor& tensor, StorageTable* storages, PickleWriter* out) {
  const size_t item_bytes = tensor.element_size();
  out->Global("torch._utils", "_rebuild_tensor_v2");
  out->Op('(');  // MARK
  out->Op('(');
  out->String("storage");
  out->Global("torch", TorchStorageClassName(tensor.scalar_type()));
  out->String(storages->KeyFor(tensor));
  out->String("cpu");
  out->Int(static_cast<int64_t>(tensor.storage().nbytes() / item_bytes));
  out->Op('t');  // TUPLE
  out->Op('Q');  // BINPERSID
  out->Int(tensor.storage_offset());
  out->Op('(');
  for (int64_t size : tensor.sizes()) out->Int(size);
  out->Op('t');
  out->Op('(');
  for (int64_t stride : tensor.strides()) out->Int(stride);
  out->Op('t');
  out->Bool(tensor.requires_grad());
  out->Global("collections", "OrderedDict");  // backward_hooks
  out->Op(')');                               // EMPTY_TUPLE
  out->Op('R');                               // REDUCE
  out->Op('t');
  out->Op('R');
}

// Returns the bytes of a torch.save zip archive holding `pickle` and the
// records of `storages`.
Result<std::string> BuildArchive(const std::string& pickle, const StorageTable& storages) {
  std::string zip;
  try {
    caffe2::serialize::PyTorchStreamWriter writer([&zip](const void* data, size_t bytes) {
      zip.append(static_cast<const char*>(data), bytes);
      return bytes;
    });
    writer.writeRecord("data.pkl", pickle.data(), pickle.size());
    writer.writeRecord("byteorder", "little", 6);
    static const char kEmpty = 0;  // miniz wants a non-null buffer.
    for (size_t i = 0; i < storages.storages().size(); ++i) {
      const c10::Storage& storage = storages.storages()[i];
      const void* data = storage.nbytes() > 0 ? storage.data() : &kEmpty;
      writer.writeRecord("data/" + std::to_string(i), data, storage.nbytes());
    }
    writer.writeEndOfFile();  // Adds the `version` record.
  } catch (const c10::Error& e) {
    return Status::Internal(std::string("cannot build the zip archive: ") +
                            e.what_without_backtrace());
  }
  return zip;
}

Status WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return Status::IoError("cannot open for writing: " + ErrnoText());
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) return Status::IoError("write failed: " + ErrnoText());
  return Status::Ok();
}

}  // namespace

Result<torch::Tensor> ReadTensorFile(const std::string& path) {
  const std::string context = "input " + path;
  Result<PickleObject> object = LoadArchive(path);
  if (!object.ok()) return object.status().WithContext(context);
  const PickleValue& root = object->root();
  if (root.kind != PickleValue::Kind::kTensor) {
    return Status::InvalidArgument(context + ": holds " + DescribePickleValue(root) +
                                   ", expected a tensor");
  }
  return root.tensor;
}

Result<NamedTensors> ReadStateDict(const std::string& path) {
  const std::string context = "weights " + path;
  Result<PickleObject> object = LoadArchive(path);
  if (!object.ok()) return object.status().WithContext(context);
  const PickleValue& root = object->root();
  if (root.kind != PickleValue::Kind::kDict) {
    return Status::InvalidArgument(context + ": holds " + DescribePickleValue(root) +
                                   ", expected a dict of named tensors (a state dict)");
  }
  NamedTensors tensors;
  tensors.reserve(root.entries.size());
  for (const auto& [key, value] : root.entries) {
    if (key->kind != PickleValue::Kind::kString) {
      return Status::InvalidArgument(context + ": has a key that is " + DescribePickleValue(*key) +
                                     ", expected a str");
    }
    if (value->kind != PickleValue::Kind::kTensor) {
      std::string hint;
      if (value->kind == PickleValue::Kind::kDict) {
        hint = " (a training checkpoint? save its model's state_dict() alone)";
      }
      return Status::InvalidArgument(context + ": key '" + key->text + "' holds " +
                                     DescribePickleValue(*value) + ", expected a tensor" + hint);
    }
    tensors.emplace_back(key->text, value->tensor);
  }
  return tensors;
}

Status WriteTensorFile(const torch::Tensor& tensor, const std::string& path) {
  const std::string context = "output " + path;
  Result<at::Tensor> savable = SavableTensor(tensor);
  if (!savable.ok()) return savable.status().WithContext(context);
  PickleWriter pickle;
  StorageTable storages;
  pickle.Op('\x80');  // PROTO 2
  pickle.Op('\x02');
  PickleTensor(*savable, &storages, &pickle);
  pickle.Op('.');  // STOP
  Result<std::string> archive = BuildArchive(pickle.bytes(), storages);
  if (!archive.ok()) return archive.status().WithContext(context);
  return WriteFile(path, *archive).WithContext(context);
}

Status WriteStateDict(const NamedTensors& tensors, const std::string& path) {
  const std::string context = "weights " + path;
  PickleWriter pickle;
  StorageTable storages;
  std::set<std::string> names;
  pickle.Op('\x80');  // PROTO 2
  pickle.Op('\x02');
  pickle.Global("collections", "OrderedDict");
  pickle.Op(')');  // EMPTY_TUPLE
  pickle.Op('R');  // REDUCE
  pickle.Op('(');  // MARK
  for (const auto& [name, tensor] : tensors) {
    if (!names.insert(name).second) {
      return Status::InvalidArgument(context + ": duplicate name '" + name + "'");
    }
    Result<at::Tensor> savable = SavableTensor(tensor);
    if (!savable.ok()) return savable.status().WithContext(context + ": '" + name + "'");
    pickle.String(name);
    PickleTensor(*savable, &storages, &pickle);
  }
  pickle.Op('u');  // SETITEMS
  pickle.Op('.');  // STOP
  Result<std::string> archive = BuildArchive(pickle.bytes(), storages);
  if (!archive.ok()) return archive.status().WithContext(context);
  return WriteFile(path, *archive).WithContext(context);
}

}  // namespace paretopipe
