#include "model/tensor_file.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <caffe2/serialize/inline_container.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
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

// Returns the little-endian unsigned number of `bytes` bytes at `data[at]`.
// REQUIRES: at + bytes <= data.size().
uint64_t LittleEndian(std::string_view data, size_t at, int bytes) {
  uint64_t value = 0;
  for (int i = bytes - 1; i >= 0; --i) value = (value << 8) | static_cast<uint8_t>(data[at + i]);
  return value;
}

// Reads `bytes` bytes at `offset` of `in`, or fails.
Result<std::string> ReadAt(std::ifstream& in, uint64_t offset, uint64_t bytes) {
  std::string out(bytes, '\0');
  in.seekg(static_cast<std::streamoff>(offset));
  in.read(out.data(), static_cast<std::streamsize>(bytes));
  if (!in || static_cast<uint64_t>(in.gcount()) != bytes) {
    return Status::IoError("cannot read " + std::to_string(bytes) + " bytes at offset " +
                           std::to_string(offset));
  }
  return out;
}

// Returns the uncompressed size of every record of the zip archive at `path`,
// by name without the archive's folder ("data/0"), as the archive's central
// directory states it; the folder is that of the first entry, as
// PyTorchStreamReader takes it.
//
// PyTorchStreamReader (LibTorch 1.13) parses the same directory but has no
// size query, and torch.save sets the data-descriptor flag, so local headers
// hold no sizes. This reads the end records and the directory (about 100
// bytes a record), never record data. Zip format: PKWARE APPNOTE.TXT 4.3.
// torch.save always writes the zip64 end records; the zip64 extra field
// appears only for records of 4 GiB and more.
Result<std::unordered_map<std::string, uint64_t>> ReadRecordSizes(const std::string& path) {
  constexpr std::string_view kEndSignature("PK\x05\x06", 4);
  constexpr std::string_view kZip64LocatorSignature("PK\x06\x07", 4);
  constexpr std::string_view kZip64EndSignature("PK\x06\x06", 4);
  constexpr std::string_view kEntrySignature("PK\x01\x02", 4);
  constexpr uint64_t kEndBytes = 22, kZip64LocatorBytes = 20, kZip64EndBytes = 56, kEntryBytes = 46;
  constexpr uint64_t kMaxCommentBytes = 0xffff;
  const auto corrupt = [](const std::string& what) {
    return Status::InvalidArgument("zip central directory is corrupt: " + what);
  };

  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return Status::IoError("cannot open: " + ErrnoText());
  const uint64_t file_bytes = static_cast<uint64_t>(in.tellg());
  const uint64_t tail_bytes = std::min(file_bytes, kEndBytes + kMaxCommentBytes);
  PP_ASSIGN_OR_RETURN(const std::string tail, ReadAt(in, file_bytes - tail_bytes, tail_bytes));

  // The end record is the last one, followed only by the archive comment.
  size_t end = std::string_view::npos;
  for (size_t at = tail.size() >= kEndBytes ? tail.size() - kEndBytes + 1 : 0; at-- > 0;) {
    if (std::string_view(tail).substr(at, 4) == kEndSignature) {
      end = at;
      break;
    }
  }
  if (end == std::string_view::npos) return corrupt("no end record");
  uint64_t entries = LittleEndian(tail, end + 10, 2);
  uint64_t directory_bytes = LittleEndian(tail, end + 12, 4);
  uint64_t directory_offset = LittleEndian(tail, end + 16, 4);
  if (end >= kZip64LocatorBytes &&
      std::string_view(tail).substr(end - kZip64LocatorBytes, 4) == kZip64LocatorSignature) {
    const uint64_t zip64_end = LittleEndian(tail, end - kZip64LocatorBytes + 8, 8);
    if (zip64_end > file_bytes || file_bytes - zip64_end < kZip64EndBytes) {
      return corrupt("zip64 end record at offset " + std::to_string(zip64_end) +
                     " lies outside the file");
    }
    PP_ASSIGN_OR_RETURN(const std::string record, ReadAt(in, zip64_end, kZip64EndBytes));
    if (std::string_view(record).substr(0, 4) != kZip64EndSignature) {
      return corrupt("no zip64 end record at offset " + std::to_string(zip64_end));
    }
    entries = LittleEndian(record, 32, 8);
    directory_bytes = LittleEndian(record, 40, 8);
    directory_offset = LittleEndian(record, 48, 8);
  }
  if (directory_offset > file_bytes || directory_bytes > file_bytes - directory_offset) {
    return corrupt("directory of " + std::to_string(directory_bytes) + " bytes at offset " +
                   std::to_string(directory_offset) + " lies outside the file");
  }
  PP_ASSIGN_OR_RETURN(const std::string directory, ReadAt(in, directory_offset, directory_bytes));

  std::unordered_map<std::string, uint64_t> sizes;
  std::string folder;
  size_t at = 0;
  for (uint64_t k = 0; k < entries; ++k) {
    if (directory.size() - at < kEntryBytes ||
        std::string_view(directory).substr(at, 4) != kEntrySignature) {
      return corrupt("entry " + std::to_string(k) + " is truncated or has no signature");
    }
    uint64_t bytes = LittleEndian(directory, at + 24, 4);  // Uncompressed size.
    const size_t name_bytes = LittleEndian(directory, at + 28, 2);
    const size_t extra_bytes = LittleEndian(directory, at + 30, 2);
    const size_t comment_bytes = LittleEndian(directory, at + 32, 2);
    if (directory.size() - at - kEntryBytes < name_bytes + extra_bytes + comment_bytes) {
      return corrupt("entry " + std::to_string(k) + " is truncated");
    }
    const std::string name = directory.substr(at + kEntryBytes, name_bytes);
    // Extra fields: (id, length, data)*. The zip64 one (id 1) holds the
    // uncompressed size first when the 32-bit field is 0xffffffff.
    const size_t extra_end = at + kEntryBytes + name_bytes + extra_bytes;
    for (size_t field = at + kEntryBytes + name_bytes; extra_end - field >= 4;) {
      const uint64_t id = LittleEndian(directory, field, 2);
      const size_t length = LittleEndian(directory, field + 2, 2);
      if (extra_end - field - 4 < length) return corrupt("entry '" + name + "' extra field");
      if (id == 1 && bytes == 0xffffffff && length >= 8) {
        bytes = LittleEndian(directory, field + 4, 8);
      }
      field += 4 + length;
    }
    at = extra_end + comment_bytes;

    if (k == 0) folder = name.substr(0, name.find('/') + 1);
    if (!folder.empty() && name.compare(0, folder.size(), folder) == 0) {
      sizes.emplace(name.substr(folder.size()), bytes);
    }
  }
  return sizes;
}

// An open torch.save archive: its data.pkl and, for Unpickle() and
// TensorBuilder, its storage records. Reading a record reads that record only.
class TorchSaveArchive final : public StorageRecords {
 public:
  // Opens the archive at `path` and reads its data.pkl. Messages do not name
  // the path; callers add it.
  static Result<std::unique_ptr<TorchSaveArchive>> Open(const std::string& path);

  TorchSaveArchive(const TorchSaveArchive&) = delete;
  TorchSaveArchive& operator=(const TorchSaveArchive&) = delete;

  const std::string& pickle() const { return pickle_; }

  Result<uint64_t> RecordBytes(const std::string& key) override;
  Result<c10::Storage> ReadRecord(const std::string& key) override;

 private:
  TorchSaveArchive() = default;

  std::unique_ptr<caffe2::serialize::PyTorchStreamReader> reader_;
  std::string pickle_;
  std::unordered_map<std::string, uint64_t> record_bytes_;  // By name, e.g. "data/0".
};

Result<std::unique_ptr<TorchSaveArchive>> TorchSaveArchive::Open(const std::string& path) {
  PP_RETURN_IF_ERROR(CheckSignature(path));
  std::unique_ptr<TorchSaveArchive> archive(new TorchSaveArchive());
  // PyTorchStreamReader reports bad archives with c10::Error; only its message
  // (never the C++ backtrace) reaches the user.
  try {
    archive->reader_ = std::make_unique<caffe2::serialize::PyTorchStreamReader>(path);
    caffe2::serialize::PyTorchStreamReader& reader = *archive->reader_;
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
    archive->pickle_.assign(static_cast<const char*>(pickle.get()), pickle_bytes);
  } catch (const c10::Error& e) {
    return Status::InvalidArgument(std::string("is not a readable torch.save zip archive: ") +
                                   e.what_without_backtrace());
  } catch (const std::exception& e) {
    return Status::InvalidArgument(std::string("is not a readable torch.save zip archive: ") +
                                   e.what());
  }
  PP_ASSIGN_OR_RETURN(archive->record_bytes_, ReadRecordSizes(path));
  return archive;
}

Result<uint64_t> TorchSaveArchive::RecordBytes(const std::string& key) {
  const std::string name = "data/" + key;
  auto it = record_bytes_.find(name);
  if (it == record_bytes_.end()) {
    return Status::InvalidArgument("storage record '" + name + "' is missing from the archive");
  }
  return it->second;
}

Result<c10::Storage> TorchSaveArchive::ReadRecord(const std::string& key) {
  const std::string name = "data/" + key;
  try {
    if (!reader_->hasRecord(name)) {
      return Status::InvalidArgument("storage record '" + name + "' is missing from the archive");
    }
    auto [data, bytes] = reader_->getRecord(name);
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
  Result<std::unique_ptr<TorchSaveArchive>> archive = TorchSaveArchive::Open(path);
  if (!archive.ok()) return archive.status().WithContext(context);
  Result<PickleObject> object = Unpickle((*archive)->pickle(), archive->get());
  if (!object.ok()) return object.status().WithContext(context);
  const PickleValue& root = object->root();
  if (root.kind != PickleValue::Kind::kTensor) {
    return Status::InvalidArgument(context + ": holds " + DescribePickleValue(root) +
                                   ", expected a tensor");
  }
  TensorBuilder builder(archive->get());
  Result<torch::Tensor> tensor = builder.Build(root);
  if (!tensor.ok()) return tensor.status().WithContext(context);
  return tensor;
}

Result<NamedTensors> ReadStateDict(const std::string& path, const KeyFilter& wanted) {
  const std::string context = "weights " + path;
  Result<std::unique_ptr<TorchSaveArchive>> archive = TorchSaveArchive::Open(path);
  if (!archive.ok()) return archive.status().WithContext(context);
  Result<PickleObject> object = Unpickle((*archive)->pickle(), archive->get());
  if (!object.ok()) return object.status().WithContext(context);
  const PickleValue& root = object->root();
  if (root.kind != PickleValue::Kind::kDict) {
    return Status::InvalidArgument(context + ": holds " + DescribePickleValue(root) +
                                   ", expected a dict of named tensors (a state dict)");
  }
  // Every entry is checked before any record is read, so that a file fails
  // the same way whichever keys are wanted.
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
  }
  TensorBuilder builder(archive->get());
  NamedTensors tensors;
  tensors.reserve(root.entries.size());
  for (const auto& [key, value] : root.entries) {
    if (wanted != nullptr && !wanted(key->text)) {
      tensors.emplace_back(key->text, torch::Tensor());
      continue;
    }
    Result<torch::Tensor> tensor = builder.Build(*value);
    if (!tensor.ok()) return tensor.status().WithContext(context + ": key '" + key->text + "'");
    tensors.emplace_back(key->text, std::move(*tensor));
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
