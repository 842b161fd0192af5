// Tests for tensor_file.h and pickle_reader.h: golden files written by real
// PyTorch (tests/data/make_golden.py), round trips through our writer, a
// torch.load of what we write, and the error paths.
#include "model/tensor_file.h"

#include <c10/core/CPUAllocator.h>
#include <caffe2/serialize/inline_container.h>
#include <gtest/gtest.h>
#include <torch/csrc/jit/serialization/pickle.h>
#include <torch/types.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "model/pickle_reader.h"

namespace paretopipe {
namespace {

namespace fs = std::filesystem;

std::string DataPath(const std::string& name) {
#ifdef PARETOPIPE_TEST_DATA  // Set by tests/CMakeLists.txt.
  return std::string(PARETOPIPE_TEST_DATA) + "/" + name;
#else
  return (fs::path(__FILE__).parent_path() / "data" / name).string();
#endif
}

// The values make_golden.py writes: element i (row-major) is i * 0.25 + k for
// floating dtypes, i + k for integer dtypes, i % 2 == 1 for bool.
torch::Tensor Pattern(std::vector<int64_t> shape, torch::ScalarType dtype, int64_t k) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  torch::Tensor values;
  if (dtype == torch::kBool) {
    values = torch::arange(n, torch::kLong).remainder(2).eq(1);
  } else if (c10::isFloatingType(dtype) || c10::isComplexType(dtype)) {
    values = torch::arange(n, torch::kDouble).mul(0.25).add(k);
  } else {
    values = torch::arange(n, torch::kLong).add(k);
  }
  return values.reshape(shape).to(dtype);
}

// True if `a` and `b` have the same dtype, sizes and values.
::testing::AssertionResult SameTensor(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.scalar_type() != b.scalar_type()) {
    return ::testing::AssertionFailure()
           << "dtype " << a.scalar_type() << " vs " << b.scalar_type();
  }
  if (a.sizes() != b.sizes())
    return ::testing::AssertionFailure() << "size " << a.sizes() << " vs " << b.sizes();
  if (!torch::equal(a, b)) return ::testing::AssertionFailure() << "values\n" << a << "\nvs\n" << b;
  return ::testing::AssertionSuccess();
}

const void* StorageOf(const torch::Tensor& t) { return t.storage().data(); }

bool HasSubstr(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Pickle opcodes, for writing test programs by hand.
std::string Le32(uint32_t v) {
  std::string out;
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  return out;
}
std::string PInt(int64_t v) {
  if (v >= INT32_MIN && v <= INT32_MAX)
    return "J" + Le32(static_cast<uint32_t>(static_cast<int32_t>(v)));
  std::string out = "\x8a\x08";
  for (int i = 0; i < 8; ++i)
    out.push_back(static_cast<char>((static_cast<uint64_t>(v) >> (8 * i)) & 0xff));
  return out;
}
std::string PStr(const std::string& s) { return "X" + Le32(static_cast<uint32_t>(s.size())) + s; }
std::string PGlobal(const std::string& module, const std::string& name) {
  return "c" + module + "\n" + name + "\n";
}
std::string PInts(const std::vector<int64_t>& values) {
  std::string out = "(";
  for (int64_t v : values) out += PInt(v);
  return out + "t";
}
const std::string kProto = std::string("\x80\x02", 2);

// A _rebuild_tensor_v2 call on FloatStorage `key` declared to hold `numel` elements.
std::string PTensor(const std::string& key, int64_t numel, int64_t offset,
                    const std::vector<int64_t>& sizes, const std::vector<int64_t>& strides) {
  return PGlobal("torch._utils", "_rebuild_tensor_v2") + "((" + PStr("storage") +
         PGlobal("torch", "FloatStorage") + PStr(key) + PStr("cpu") + PInt(numel) + "tQ" +
         PInt(offset) + PInts(sizes) + PInts(strides) + "\x89" +
         PGlobal("collections", "OrderedDict") + ")RtR";
}

using Records = std::map<std::string, std::string>;  // Record name -> bytes.

// Writes a zip archive laid out as torch.save does, with `pickle` as data.pkl.
void WriteArchive(const std::string& path, const std::string& pickle, const Records& records = {}) {
  caffe2::serialize::PyTorchStreamWriter writer(path);
  writer.writeRecord("data.pkl", pickle.data(), pickle.size());
  for (const auto& [name, bytes] : records) writer.writeRecord(name, bytes.data(), bytes.size());
  writer.writeEndOfFile();
}

std::string FloatBytes(const std::vector<float>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
}

// Serves storage records from memory, as the archive serves them from a zip,
// and notes which records were read.
class MemoryRecords final : public StorageRecords {
 public:
  explicit MemoryRecords(const Records* records) : records_(records) {}

  Result<uint64_t> RecordBytes(const std::string& key) override {
    auto it = records_->find("data/" + key);
    if (it == records_->end()) return Status::InvalidArgument("no record data/" + key);
    return it->second.size();
  }

  Result<c10::Storage> ReadRecord(const std::string& key) override {
    auto it = records_->find("data/" + key);
    if (it == records_->end()) return Status::InvalidArgument("no record data/" + key);
    keys_read_.push_back(key);
    c10::Storage storage(c10::Storage::use_byte_size_t(), it->second.size(),
                         c10::GetCPUAllocator());
    if (!it->second.empty()) std::memcpy(storage.data(), it->second.data(), it->second.size());
    return storage;
  }

  // The keys of the records read, in order.
  const std::vector<std::string>& keys_read() const { return keys_read_; }

 private:
  const Records* records_;
  std::vector<std::string> keys_read_;
};

// Builds the tensors of `object`'s root (a tensor, or the values of a dict)
// and returns the first error.
Status BuildEveryTensor(const PickleObject& object, StorageRecords* records) {
  TensorBuilder builder(records);
  std::vector<const PickleValue*> tensors = {&object.root()};
  for (const auto& entry : object.root().entries) tensors.push_back(entry.second);
  for (const PickleValue* value : tensors) {
    if (value->kind != PickleValue::Kind::kTensor) continue;
    Result<torch::Tensor> tensor = builder.Build(*value);
    if (!tensor.ok()) return tensor.status();
  }
  return Status::Ok();
}

// Returns the offset of the local header of the zip entry whose name ends
// with `suffix` in the archive `zip`, or std::string::npos.
size_t LocalHeaderOffset(const std::string& zip, const std::string& suffix) {
  for (size_t at = zip.find("PK\x03\x04"); at != std::string::npos && at + 30 <= zip.size();
       at = zip.find("PK\x03\x04", at + 1)) {
    const size_t name_bytes = static_cast<uint8_t>(zip[at + 26]) |
                              (static_cast<size_t>(static_cast<uint8_t>(zip[at + 27])) << 8);
    const std::string name = zip.substr(at + 30, name_bytes);
    if (name.size() >= suffix.size() &&
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
      return at;
    }
  }
  return std::string::npos;
}

std::string ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// The data.pkl and storage records of the archive at `path`.
std::pair<std::string, Records> ReadRawArchive(const std::string& path) {
  caffe2::serialize::PyTorchStreamReader reader(path);
  auto bytes_of = [&reader](const std::string& name) {
    auto [data, size] = reader.getRecord(name);
    return std::string(static_cast<const char*>(data.get()), size);
  };
  Records records;
  for (const std::string& name :
       reader.getAllRecords()) {  // Names come without the archive prefix.
    if (name.rfind("data/", 0) == 0) records[name] = bytes_of(name);
  }
  return {bytes_of("data.pkl"), records};
}

class TensorFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::path(::testing::TempDir()) /
           ("tensor_file_test_" + std::to_string(getpid()) + "_" + info->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string TempPath(const std::string& name) const { return (dir_ / name).string(); }

  fs::path dir_;
};

// The state dict of make_golden.py's Net, in state_dict() order.
void ExpectNetStateDict(const NamedTensors& tensors) {
  const std::vector<std::tuple<std::string, std::vector<int64_t>, torch::ScalarType>> expected = {
      {"conv.weight", {4, 3, 3, 3}, torch::kFloat},
      {"conv.bias", {4}, torch::kFloat},
      {"bn.weight", {4}, torch::kFloat},
      {"bn.bias", {4}, torch::kFloat},
      {"bn.running_mean", {4}, torch::kFloat},
      {"bn.running_var", {4}, torch::kFloat},
      {"bn.num_batches_tracked", {}, torch::kLong},
      {"fc.weight", {2, 4}, torch::kFloat},
      {"fc.bias", {2}, torch::kFloat},
  };
  ASSERT_EQ(tensors.size(), expected.size());
  for (size_t k = 0; k < expected.size(); ++k) {
    const auto& [name, shape, dtype] = expected[k];
    EXPECT_EQ(tensors[k].first, name);
    EXPECT_TRUE(SameTensor(tensors[k].second, Pattern(shape, dtype, static_cast<int64_t>(k))))
        << name;
    EXPECT_TRUE(tensors[k].second.device().is_cpu());
  }
  EXPECT_EQ(tensors[6].second.item<int64_t>(), 6);  // bn.num_batches_tracked, a 0-dim int64.
}

// ---------------------------------------------------------------------------
// Files written by PyTorch.

TEST_F(TensorFileTest, ReadsOrderedDictStateDictSavedByPyTorch) {
  Result<NamedTensors> tensors = ReadStateDict(DataPath("state_dict_net.pth"));
  ASSERT_TRUE(tensors.ok()) << tensors.status().message();
  ExpectNetStateDict(*tensors);
}

TEST_F(TensorFileTest, ReadsStateDictSavedWithPickleProtocol4) {
  Result<NamedTensors> tensors = ReadStateDict(DataPath("state_dict_protocol4.pth"));
  ASSERT_TRUE(tensors.ok()) << tensors.status().message();
  ExpectNetStateDict(*tensors);
}

TEST_F(TensorFileTest, ReadsPlainDictInFileOrder) {
  Result<NamedTensors> tensors = ReadStateDict(DataPath("plain_dict.pt"));
  ASSERT_TRUE(tensors.ok()) << tensors.status().message();
  ASSERT_EQ(tensors->size(), 3u);
  EXPECT_EQ((*tensors)[0].first, "zeta");
  EXPECT_EQ((*tensors)[1].first, "alpha");
  EXPECT_EQ((*tensors)[2].first, "mid");
  EXPECT_TRUE(SameTensor((*tensors)[0].second, Pattern({2, 3}, torch::kFloat, 0)));
  EXPECT_TRUE(SameTensor((*tensors)[1].second, Pattern({4}, torch::kLong, 1)));
  EXPECT_TRUE(SameTensor((*tensors)[2].second, Pattern({1, 2}, torch::kDouble, 2)));
}

TEST_F(TensorFileTest, ReadsFloatTensorSavedByPyTorch) {
  Result<torch::Tensor> tensor = ReadTensorFile(DataPath("tensor_float.pt"));
  ASSERT_TRUE(tensor.ok()) << tensor.status().message();
  EXPECT_TRUE(SameTensor(*tensor, Pattern({2, 3, 4}, torch::kFloat, 0)));
  EXPECT_TRUE(tensor->is_contiguous());
  EXPECT_FALSE(tensor->requires_grad());
}

TEST_F(TensorFileTest, ReadsFloat64AndInt64TensorsSavedByPyTorch) {
  Result<torch::Tensor> f64 = ReadTensorFile(DataPath("tensor_float64.pt"));
  Result<torch::Tensor> i64 = ReadTensorFile(DataPath("tensor_int64.pt"));
  ASSERT_TRUE(f64.ok()) << f64.status().message();
  ASSERT_TRUE(i64.ok()) << i64.status().message();
  EXPECT_TRUE(SameTensor(*f64, Pattern({2, 2}, torch::kDouble, 3)));
  EXPECT_TRUE(SameTensor(*i64, Pattern({5}, torch::kLong, 7)));
}

TEST_F(TensorFileTest, ReadsTransposedTensorWithItsStrides) {
  Result<torch::Tensor> tensor = ReadTensorFile(DataPath("tensor_transposed.pt"));
  ASSERT_TRUE(tensor.ok()) << tensor.status().message();
  EXPECT_EQ(tensor->sizes(), torch::IntArrayRef({4, 3}));
  EXPECT_EQ(tensor->strides(), torch::IntArrayRef({1, 4}));
  EXPECT_FALSE(tensor->is_contiguous());
  EXPECT_TRUE(SameTensor(*tensor, Pattern({3, 4}, torch::kFloat, 0).t()));
}

TEST_F(TensorFileTest, ViewsSavedTogetherShareOneStorage) {
  Result<NamedTensors> tensors = ReadStateDict(DataPath("shared_views.pt"));
  ASSERT_TRUE(tensors.ok()) << tensors.status().message();
  ASSERT_EQ(tensors->size(), 5u);
  std::map<std::string, torch::Tensor> by_name(tensors->begin(), tensors->end());
  torch::Tensor base = by_name["base"];
  const torch::Tensor expected_base = Pattern({3, 4}, torch::kFloat, 0);
  EXPECT_TRUE(SameTensor(base, expected_base));
  EXPECT_TRUE(SameTensor(by_name["row"], expected_base[1]));
  EXPECT_EQ(by_name["row"].storage_offset(), 4);
  EXPECT_TRUE(SameTensor(by_name["transposed"], expected_base.t()));
  EXPECT_EQ(by_name["transposed"].strides(), torch::IntArrayRef({1, 4}));
  EXPECT_TRUE(SameTensor(by_name["columns"], expected_base.narrow(1, 1, 2)));
  EXPECT_EQ(by_name["columns"].storage_offset(), 1);
  EXPECT_EQ(by_name["columns"].strides(), torch::IntArrayRef({4, 1}));
  EXPECT_TRUE(SameTensor(by_name["expanded"], expected_base[0].expand({2, 4})));
  EXPECT_EQ(by_name["expanded"].strides(), torch::IntArrayRef({0, 1}));
  for (const auto& [name, tensor] : *tensors) EXPECT_EQ(StorageOf(tensor), StorageOf(base)) << name;

  base.index_put_({1, 0}, 100.0f);  // Shared storage: the views see it.
  EXPECT_EQ(by_name["row"][0].item<float>(), 100.0f);
  EXPECT_EQ(by_name["transposed"][0][1].item<float>(), 100.0f);
}

TEST_F(TensorFileTest, ReadsEveryStorageDtype) {
  Result<NamedTensors> tensors = ReadStateDict(DataPath("dtypes.pt"));
  ASSERT_TRUE(tensors.ok()) << tensors.status().message();
  const std::vector<std::pair<std::string, torch::ScalarType>> expected = {
      {"float32", torch::kFloat},     {"float64", torch::kDouble}, {"float16", torch::kHalf},
      {"bfloat16", torch::kBFloat16}, {"int64", torch::kLong},     {"int32", torch::kInt},
      {"int16", torch::kShort},       {"int8", torch::kChar},      {"uint8", torch::kByte},
      {"bool", torch::kBool}};
  ASSERT_EQ(tensors->size(), expected.size() + 1);
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ((*tensors)[i].first, expected[i].first);
    EXPECT_TRUE(SameTensor((*tensors)[i].second, Pattern({2, 3}, expected[i].second, 1)))
        << expected[i].first;
  }
  EXPECT_EQ(tensors->back().first, "empty");
  EXPECT_EQ(tensors->back().second.sizes(), torch::IntArrayRef({0, 3}));
}

TEST_F(TensorFileTest, ReadsParameterSavedByPyTorch) {
  Result<torch::Tensor> tensor = ReadTensorFile(DataPath("parameter.pt"));
  ASSERT_TRUE(tensor.ok()) << tensor.status().message();
  EXPECT_TRUE(SameTensor(tensor->detach(), Pattern({2, 2}, torch::kFloat, 0)));
  EXPECT_TRUE(tensor->requires_grad());
}

TEST_F(TensorFileTest, ReadsDictAndTensorWrittenByLibTorchPickleSave) {
  // torch::jit::pickle_save wraps dicts in torch.jit._pickle.restore_type_tag.
  c10::Dict<std::string, at::Tensor> dict;
  dict.insert("zeta", Pattern({2, 2}, torch::kFloat, 0));
  dict.insert("alpha", Pattern({3}, torch::kLong, 1));
  const std::vector<char> dict_bytes = torch::jit::pickle_save(dict);
  std::ofstream(TempPath("dict.pt"), std::ios::binary).write(dict_bytes.data(), dict_bytes.size());
  const std::vector<char> tensor_bytes =
      torch::jit::pickle_save(Pattern({3, 4}, torch::kFloat, 0).t());
  std::ofstream(TempPath("tensor.pt"), std::ios::binary)
      .write(tensor_bytes.data(), tensor_bytes.size());

  Result<NamedTensors> tensors = ReadStateDict(TempPath("dict.pt"));
  Result<torch::Tensor> tensor = ReadTensorFile(TempPath("tensor.pt"));

  ASSERT_TRUE(tensors.ok()) << tensors.status().message();
  ASSERT_EQ(tensors->size(), 2u);
  EXPECT_EQ((*tensors)[0].first, "zeta");
  EXPECT_TRUE(SameTensor((*tensors)[1].second, Pattern({3}, torch::kLong, 1)));
  ASSERT_TRUE(tensor.ok()) << tensor.status().message();
  EXPECT_TRUE(SameTensor(*tensor, Pattern({3, 4}, torch::kFloat, 0).t()));
  EXPECT_EQ(tensor->strides(), torch::IntArrayRef({1, 4}));
}

TEST_F(TensorFileTest, LegacyFormatIsRejectedWithResaveAdvice) {
  const std::string path = DataPath("legacy.pt");
  Result<torch::Tensor> tensor = ReadTensorFile(path);
  ASSERT_FALSE(tensor.ok());
  EXPECT_EQ(tensor.status().code(), Status::Code::kInvalidArgument);
  EXPECT_TRUE(HasSubstr(tensor.status().message(), "input " + path + ": "))
      << tensor.status().message();
  EXPECT_TRUE(HasSubstr(tensor.status().message(), "legacy")) << tensor.status().message();
  EXPECT_TRUE(HasSubstr(tensor.status().message(), "re-save")) << tensor.status().message();
}

// ---------------------------------------------------------------------------
// Round trips through our writer.

TEST_F(TensorFileTest, TensorRoundTripPreservesValuesForEveryDtype) {
  for (torch::ScalarType dtype :
       {torch::kFloat, torch::kDouble, torch::kHalf, torch::kBFloat16, torch::kLong, torch::kInt,
        torch::kShort, torch::kChar, torch::kByte, torch::kBool, torch::kComplexFloat,
        torch::kComplexDouble}) {
    const torch::Tensor original = Pattern({2, 5}, dtype, 3);
    ASSERT_TRUE(WriteTensorFile(original, TempPath("t.pt")).ok()) << dtype;
    Result<torch::Tensor> loaded = ReadTensorFile(TempPath("t.pt"));
    ASSERT_TRUE(loaded.ok()) << loaded.status().message();
    EXPECT_TRUE(SameTensor(*loaded, original)) << dtype;
  }
}

TEST_F(TensorFileTest, TensorRoundTripPreservesStridesAndOffset) {
  const torch::Tensor original = Pattern({4, 6}, torch::kFloat, 0).narrow(1, 1, 3).t();
  ASSERT_TRUE(WriteTensorFile(original, TempPath("t.pt")).ok());
  Result<torch::Tensor> loaded = ReadTensorFile(TempPath("t.pt"));
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  EXPECT_TRUE(SameTensor(*loaded, original));
  EXPECT_EQ(loaded->strides(), original.strides());
  EXPECT_EQ(loaded->storage_offset(), original.storage_offset());
}

TEST_F(TensorFileTest, ScalarAndEmptyTensorsRoundTrip) {
  for (const torch::Tensor& original :
       {torch::tensor(2.5), torch::zeros({0, 3}), torch::zeros({0}, torch::kLong)}) {
    ASSERT_TRUE(WriteTensorFile(original, TempPath("t.pt")).ok());
    Result<torch::Tensor> loaded = ReadTensorFile(TempPath("t.pt"));
    ASSERT_TRUE(loaded.ok()) << loaded.status().message();
    EXPECT_TRUE(SameTensor(*loaded, original));
  }
}

TEST_F(TensorFileTest, StateDictRoundTripPreservesOrderAndSharedStorage) {
  const torch::Tensor weight = Pattern({3, 4}, torch::kFloat, 0);
  const NamedTensors original = {{"z.weight", weight},
                                 {"a.bias", Pattern({4}, torch::kLong, 1)},
                                 {"m.view", weight.narrow(0, 1, 2).t()},
                                 {"b.half", Pattern({2}, torch::kHalf, 2)}};
  ASSERT_TRUE(WriteStateDict(original, TempPath("sd.pth")).ok());
  Result<NamedTensors> loaded = ReadStateDict(TempPath("sd.pth"));
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  ASSERT_EQ(loaded->size(), original.size());
  for (size_t i = 0; i < original.size(); ++i) {
    EXPECT_EQ((*loaded)[i].first, original[i].first);
    EXPECT_TRUE(SameTensor((*loaded)[i].second, original[i].second)) << original[i].first;
    EXPECT_EQ((*loaded)[i].second.strides(), original[i].second.strides());
  }
  EXPECT_EQ(StorageOf((*loaded)[0].second), StorageOf((*loaded)[2].second));
  EXPECT_NE(StorageOf((*loaded)[0].second), StorageOf((*loaded)[1].second));
}

TEST_F(TensorFileTest, EmptyStateDictRoundTrips) {
  ASSERT_TRUE(WriteStateDict({}, TempPath("sd.pth")).ok());
  Result<NamedTensors> loaded = ReadStateDict(TempPath("sd.pth"));
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  EXPECT_TRUE(loaded->empty());
}

TEST_F(TensorFileTest, ReadTensorOwnsItsMemoryAfterTheFileIsGone) {
  ASSERT_TRUE(WriteTensorFile(Pattern({64}, torch::kFloat, 0), TempPath("t.pt")).ok());
  Result<torch::Tensor> loaded = ReadTensorFile(TempPath("t.pt"));
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  fs::remove(TempPath("t.pt"));
  ASSERT_TRUE(WriteTensorFile(torch::zeros({64}), TempPath("t.pt")).ok());
  EXPECT_TRUE(SameTensor(*loaded, Pattern({64}, torch::kFloat, 0)));
}

TEST_F(TensorFileTest, WrittenFilesLoadInPyTorch) {
  if (std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "/usr/bin/python3 cannot import torch (Debian package python3-torch); "
                    "skipping the check that torch.load reads our files";
  }
  ASSERT_TRUE(WriteTensorFile(Pattern({3, 4}, torch::kFloat, 0).t(), TempPath("t.pt")).ok());
  const torch::Tensor weight = Pattern({2, 3}, torch::kFloat, 0);
  ASSERT_TRUE(WriteStateDict({{"z.weight", weight},
                              {"a.count", Pattern({}, torch::kLong, 6)},
                              {"m.row", weight[1]},
                              {"b.half", Pattern({3}, torch::kHalf, 2)}},
                             TempPath("sd.pth"))
                  .ok());
  // weights_only=True is torch.load's default from PyTorch 2.6 and accepts
  // only the globals a plain state dict needs.
  const std::string script =
      "import collections, sys, torch\n"
      "t = torch.load(sys.argv[1], weights_only=True)\n"
      "expected = (torch.arange(12, dtype=torch.float64) * 0.25).reshape(3, 4).float().t()\n"
      "assert t.stride() == (1, 4), t.stride()\n"
      "assert torch.equal(t, expected), t\n"
      "sd = torch.load(sys.argv[2], weights_only=True)\n"
      "assert isinstance(sd, collections.OrderedDict), type(sd)\n"
      "assert list(sd) == [\"z.weight\", \"a.count\", \"m.row\", \"b.half\"], list(sd)\n"
      "w = (torch.arange(6, dtype=torch.float64) * 0.25).reshape(2, 3).float()\n"
      "assert torch.equal(sd[\"z.weight\"], w)\n"
      "assert sd[\"a.count\"].dtype == torch.int64 and sd[\"a.count\"].dim() == 0\n"
      "assert sd[\"a.count\"].item() == 6\n"
      "assert torch.equal(sd[\"m.row\"], w[1])\n"
      "assert sd[\"m.row\"].storage_offset() == 3\n"
      "assert sd[\"m.row\"].storage().data_ptr() == sd[\"z.weight\"].storage().data_ptr()\n"
      "assert torch.equal(sd[\"b.half\"], torch.tensor([2, 2.25, 2.5], dtype=torch.half))\n";
  const std::string command =
      "/usr/bin/python3 -c '" + script + "' " + TempPath("t.pt") + " " + TempPath("sd.pth");
  EXPECT_EQ(std::system(command.c_str()), 0)
      << "torch.load rejected our files; see the Python traceback above";
}

// ---------------------------------------------------------------------------
// Reading only the wanted tensors.

TEST_F(TensorFileTest, FilterReturnsEveryKeyInOrderButOnlyTheWantedTensor) {
  ASSERT_TRUE(WriteStateDict({{"conv.weight", Pattern({4, 3}, torch::kFloat, 0)},
                              {"conv.bias", Pattern({4}, torch::kFloat, 1)},
                              {"bn.count", Pattern({}, torch::kLong, 2)},
                              {"fc.weight", Pattern({2, 4}, torch::kDouble, 3)}},
                             TempPath("sd.pth"))
                  .ok());
  std::vector<std::string> asked;

  Result<NamedTensors> tensors = ReadStateDict(TempPath("sd.pth"), [&](const std::string& key) {
    asked.push_back(key);
    return key == "conv.bias";
  });

  ASSERT_TRUE(tensors.ok()) << tensors.status().message();
  const std::vector<std::string> keys = {"conv.weight", "conv.bias", "bn.count", "fc.weight"};
  EXPECT_EQ(asked, keys);
  ASSERT_EQ(tensors->size(), keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    EXPECT_EQ((*tensors)[i].first, keys[i]);
    EXPECT_EQ((*tensors)[i].second.defined(), keys[i] == "conv.bias") << keys[i];
  }
  EXPECT_TRUE(SameTensor((*tensors)[1].second, Pattern({4}, torch::kFloat, 1)));
}

TEST_F(TensorFileTest, StorageRecordsOfUnwantedTensorsAreNeverRead) {
  ASSERT_TRUE(WriteStateDict({{"small", Pattern({3}, torch::kFloat, 0)},
                              {"big", Pattern({256, 256}, torch::kFloat, 1)}},
                             TempPath("sd.pth"))
                  .ok());
  // Break the local header of big's record (data/1): reading the record
  // fails, while the central directory, which lists it, stays intact.
  std::string zip = ReadFileBytes(TempPath("sd.pth"));
  const size_t header = LocalHeaderOffset(zip, "/data/1");
  ASSERT_NE(header, std::string::npos);
  zip[header] = 'X';
  std::ofstream(TempPath("sd.pth"), std::ios::binary | std::ios::trunc) << zip;

  Result<NamedTensors> everything = ReadStateDict(TempPath("sd.pth"));
  Result<NamedTensors> small =
      ReadStateDict(TempPath("sd.pth"), [](const std::string& key) { return key == "small"; });

  ASSERT_FALSE(everything.ok());
  EXPECT_TRUE(
      HasSubstr(everything.status().message(), "key 'big': storage record 'data/1' is unreadable"))
      << everything.status().message();
  ASSERT_TRUE(small.ok()) << small.status().message();
  ASSERT_EQ(small->size(), 2u);
  EXPECT_TRUE(SameTensor((*small)[0].second, Pattern({3}, torch::kFloat, 0)));
  EXPECT_FALSE((*small)[1].second.defined());
}

TEST_F(TensorFileTest, WantedViewOfASharedStorageHasItsValues) {
  const torch::Tensor base = Pattern({3, 4}, torch::kFloat, 0);
  ASSERT_TRUE(WriteStateDict({{"base", base}, {"row", base[1]}, {"columns", base.narrow(1, 1, 2)}},
                             TempPath("sd.pth"))
                  .ok());

  Result<NamedTensors> tensors =
      ReadStateDict(TempPath("sd.pth"), [](const std::string& key) { return key == "row"; });

  ASSERT_TRUE(tensors.ok()) << tensors.status().message();
  ASSERT_EQ(tensors->size(), 3u);
  EXPECT_FALSE((*tensors)[0].second.defined());
  EXPECT_TRUE(SameTensor((*tensors)[1].second, base[1]));
  EXPECT_EQ((*tensors)[1].second.storage_offset(), 4);
  EXPECT_FALSE((*tensors)[2].second.defined());
}

TEST_F(TensorFileTest, WantedViewsOfOneStorageStillShareIt) {
  const torch::Tensor base = Pattern({3, 4}, torch::kFloat, 0);
  ASSERT_TRUE(WriteStateDict({{"base", base},
                              {"other", Pattern({2}, torch::kFloat, 5)},
                              {"row", base[1]},
                              {"columns", base.narrow(1, 1, 2)}},
                             TempPath("sd.pth"))
                  .ok());

  Result<NamedTensors> tensors = ReadStateDict(
      TempPath("sd.pth"), [](const std::string& key) { return key == "row" || key == "columns"; });

  ASSERT_TRUE(tensors.ok()) << tensors.status().message();
  ASSERT_EQ(tensors->size(), 4u);
  const torch::Tensor& row = (*tensors)[2].second;
  const torch::Tensor& columns = (*tensors)[3].second;
  EXPECT_TRUE(SameTensor(row, base[1]));
  EXPECT_TRUE(SameTensor(columns, base.narrow(1, 1, 2)));
  EXPECT_EQ(StorageOf(row), StorageOf(columns));
  row.fill_(-1.0f);  // Shared storage: the other view sees it.
  EXPECT_EQ(columns[1][0].item<float>(), -1.0f);
}

TEST_F(TensorFileTest, UnpickleReadsNoRecordAndBuilderReadsEachWantedOnceOnly) {
  const Records records = {{"data/0", FloatBytes({1, 2, 3, 4})}, {"data/1", FloatBytes({5, 6})}};
  MemoryRecords source(&records);
  // {"a": storage 0, "b": storage 1, "c": a view of storage 0}.
  const std::string program = kProto + "}(" + PStr("a") + PTensor("0", 4, 0, {4}, {1}) + PStr("b") +
                              PTensor("1", 2, 0, {2}, {1}) + PStr("c") +
                              PTensor("0", 4, 2, {2}, {1}) + "u.";

  Result<PickleObject> object = Unpickle(program, &source);

  ASSERT_TRUE(object.ok()) << object.status().message();
  EXPECT_TRUE(source.keys_read().empty());
  const auto& entries = object->root().entries;
  ASSERT_EQ(entries.size(), 3u);
  TensorBuilder builder(&source);
  Result<torch::Tensor> c = builder.Build(*entries[2].second);
  Result<torch::Tensor> a = builder.Build(*entries[0].second);
  ASSERT_TRUE(c.ok()) << c.status().message();
  ASSERT_TRUE(a.ok()) << a.status().message();
  EXPECT_EQ(source.keys_read(), std::vector<std::string>{"0"});
  EXPECT_TRUE(SameTensor(*c, torch::tensor({3.0f, 4.0f})));
  EXPECT_TRUE(SameTensor(*a, torch::tensor({1.0f, 2.0f, 3.0f, 4.0f})));
  EXPECT_EQ(StorageOf(*a), StorageOf(*c));
}

TEST_F(TensorFileTest, UnwantedTensorIsStillCheckedAgainstItsRecordSize) {
  // "bad" declares 5 floats on a 16-byte record; the zip directory's size of
  // the record catches it without reading the record.
  WriteArchive(TempPath("sd.pth"),
               kProto + "}(" + PStr("good") + PTensor("0", 1, 0, {1}, {1}) + PStr("bad") +
                   PTensor("1", 5, 0, {1}, {1}) + "u.",
               {{"data/0", FloatBytes({1})}, {"data/1", FloatBytes({1, 2, 3, 4})}});

  Result<NamedTensors> tensors =
      ReadStateDict(TempPath("sd.pth"), [](const std::string& key) { return key == "good"; });

  ASSERT_FALSE(tensors.ok());
  EXPECT_TRUE(HasSubstr(tensors.status().message(),
                        "storage '1' declares 5 elements of Float but its record holds 16 bytes"))
      << tensors.status().message();
}

TEST_F(TensorFileTest, NonTensorValueIsAnErrorEvenWhenUnwanted) {
  Result<NamedTensors> tensors =
      ReadStateDict(DataPath("dict_with_none.pt"), [](const std::string&) { return false; });
  ASSERT_FALSE(tensors.ok());
  EXPECT_EQ(tensors.status().message(), "weights " + DataPath("dict_with_none.pt") +
                                            ": key 'config' holds None, expected a tensor");
}

// ---------------------------------------------------------------------------
// Errors.

TEST_F(TensorFileTest, MissingFileIsNotFoundAndNamedByRole) {
  const std::string path = TempPath("absent.pth");
  Result<torch::Tensor> tensor = ReadTensorFile(path);
  Result<NamedTensors> tensors = ReadStateDict(path);
  ASSERT_FALSE(tensor.ok());
  ASSERT_FALSE(tensors.ok());
  EXPECT_EQ(tensor.status().code(), Status::Code::kNotFound);
  EXPECT_EQ(tensor.status().message(), "input " + path + ": no such file");
  EXPECT_EQ(tensors.status().code(), Status::Code::kNotFound);
  EXPECT_EQ(tensors.status().message(), "weights " + path + ": no such file");
}

TEST_F(TensorFileTest, DirectoryIsRejected) {
  Result<torch::Tensor> tensor = ReadTensorFile(dir_.string());
  ASSERT_FALSE(tensor.ok());
  EXPECT_TRUE(HasSubstr(tensor.status().message(), "is a directory")) << tensor.status().message();
}

TEST_F(TensorFileTest, NonZipFileIsRejected) {
  std::ofstream(TempPath("notes.txt")) << "these are not weights\n";
  std::ofstream(TempPath("empty.pt"));
  Result<torch::Tensor> text = ReadTensorFile(TempPath("notes.txt"));
  Result<torch::Tensor> empty = ReadTensorFile(TempPath("empty.pt"));
  ASSERT_FALSE(text.ok());
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(text.status().message(), "input " + TempPath("notes.txt") +
                                         ": is not a torch.save file (no zip archive signature)");
  EXPECT_TRUE(HasSubstr(empty.status().message(), "is empty")) << empty.status().message();
}

TEST_F(TensorFileTest, TruncatedZipIsRejectedWithoutBacktrace) {
  std::ifstream in(DataPath("tensor_float.pt"), std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::ofstream(TempPath("cut.pt"), std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  Result<torch::Tensor> tensor = ReadTensorFile(TempPath("cut.pt"));
  ASSERT_FALSE(tensor.ok());
  EXPECT_TRUE(
      HasSubstr(tensor.status().message(), "input " + TempPath("cut.pt") + ": is not a readable"))
      << tensor.status().message();
  EXPECT_FALSE(HasSubstr(tensor.status().message(), "Exception raised from"))
      << tensor.status().message();
  EXPECT_FALSE(HasSubstr(tensor.status().message(), "frame #")) << tensor.status().message();
}

TEST_F(TensorFileTest, TruncatedDataPklIsAnErrorAtEveryLength) {
  const auto [pickle, records] = ReadRawArchive(DataPath("state_dict_net.pth"));
  MemoryRecords source(&records);
  ASSERT_TRUE(Unpickle(pickle, &source).ok());
  for (size_t length = 0; length < pickle.size(); ++length) {
    EXPECT_FALSE(Unpickle(std::string_view(pickle).substr(0, length), &source).ok()) << length;
  }
}

TEST_F(TensorFileTest, GarbledDataPklGivesAnErrorOrAValueNeverACrash) {
  // Meant to be run under AddressSanitizer too: flips every byte of a real
  // data.pkl to values that make lengths, memo indices and opcodes wrong.
  const auto [pickle, records] = ReadRawArchive(DataPath("state_dict_net.pth"));
  MemoryRecords source(&records);
  int failures = 0;
  for (size_t i = 0; i < pickle.size(); ++i) {
    for (char replacement : {'\x00', '\x01', '\x7f', '\xff', '(', 't', 'R', 'Q', 'h', 'u', '.'}) {
      std::string garbled = pickle;
      garbled[i] = replacement;
      Result<PickleObject> object = Unpickle(garbled, &source);
      // The tensors of a program that runs are built too: a garbled
      // description must fail or build, never index past its storage.
      const Status status = object.ok() ? BuildEveryTensor(*object, &source) : object.status();
      if (!status.ok()) {
        ++failures;
        const std::string& message = status.message();
        EXPECT_TRUE(HasSubstr(message, "data.pkl") || HasSubstr(message, "no record")) << message;
      }
    }
  }
  EXPECT_GT(failures, 0);
}

TEST_F(TensorFileTest, UnsupportedGlobalIsNamed) {
  WriteArchive(TempPath("evil.pt"), kProto + PGlobal("os", "system") + PStr("echo hi") + "\x85R.");
  Result<torch::Tensor> tensor = ReadTensorFile(TempPath("evil.pt"));
  ASSERT_FALSE(tensor.ok());
  EXPECT_EQ(
      tensor.status().message(),
      "input " + TempPath("evil.pt") + ": data.pkl: global 'os.system' at offset 2 not supported");
}

TEST_F(TensorFileTest, UnsupportedOpcodeIsNamedWithItsOffset) {
  const Records none;
  MemoryRecords source(&none);
  Result<PickleObject> set = Unpickle(kProto + "\x8f.", &source);  // EMPTY_SET
  Result<PickleObject> junk = Unpickle(kProto + "N\xf0.", &source);
  ASSERT_FALSE(set.ok());
  ASSERT_FALSE(junk.ok());
  EXPECT_EQ(set.status().message(),
            "data.pkl: pickle opcode 0x8f (EMPTY_SET) at offset 2 not supported");
  EXPECT_EQ(junk.status().message(), "data.pkl: pickle opcode 0xf0 at offset 3 not supported");
}

TEST_F(TensorFileTest, StackMisuseIsAnError) {
  const Records none;
  MemoryRecords source(&none);
  for (const std::string& program :
       {kProto + "R.", kProto + "t.", kProto + "h\x05.", kProto + "."}) {
    Result<PickleObject> object = Unpickle(program, &source);
    EXPECT_FALSE(object.ok()) << program;
  }
}

TEST_F(TensorFileTest, TensorReachingPastItsStorageIsRejected) {
  const Records records = {{"data/0", FloatBytes({1, 2, 3, 4})}};
  const std::vector<std::tuple<std::string, std::string>> cases = {
      {PTensor("0", 4, 0, {5}, {1}), "reads element 4 of storage '0', which holds 4"},
      {PTensor("0", 4, 3, {2}, {1}), "reads element 4"},
      {PTensor("0", 4, 0, {2, 2}, {3, 1}), "reads element 4"},
      {PTensor("0", 4, 0, {int64_t{1} << 62, int64_t{1} << 62}, {1, 1}), "element count overflows"},
      {PTensor("0", 4, 0, {int64_t{1} << 40}, {int64_t{1} << 40}), "extent overflows"},
      {PTensor("0", 4, 0, {2}, {-1}), "negative size or stride"},
      {PTensor("0", 4, -1, {1}, {1}), "negative offset"},
      {PTensor("0", 4, 0, {2}, {1, 1}), "size and stride differ"},
      {PTensor("0", 5, 0, {1}, {1}), "declares 5 elements of Float but its record holds 16 bytes"},
      {PTensor("0", int64_t{1} << 62, 0, {1}, {1}), "but its record holds 16 bytes"},
  };
  MemoryRecords source(&records);
  for (const auto& [program, message] : cases) {
    Result<PickleObject> object = Unpickle(kProto + program + ".", &source);
    ASSERT_FALSE(object.ok()) << message;
    EXPECT_TRUE(HasSubstr(object.status().message(), message)) << object.status().message();
  }
  Result<PickleObject> fits = Unpickle(kProto + PTensor("0", 4, 1, {3}, {1}) + ".", &source);
  ASSERT_TRUE(fits.ok()) << fits.status().message();
  Result<torch::Tensor> tensor = TensorBuilder(&source).Build(fits->root());
  ASSERT_TRUE(tensor.ok()) << tensor.status().message();
  EXPECT_TRUE(SameTensor(*tensor, torch::tensor({2.0f, 3.0f, 4.0f})));
}

TEST_F(TensorFileTest, MissingStorageRecordIsRejected) {
  WriteArchive(TempPath("t.pt"), kProto + PTensor("7", 1, 0, {1}, {1}) + ".");
  Result<torch::Tensor> tensor = ReadTensorFile(TempPath("t.pt"));
  ASSERT_FALSE(tensor.ok());
  EXPECT_EQ(tensor.status().message(),
            "input " + TempPath("t.pt") + ": storage record 'data/7' is missing from the archive");
}

TEST_F(TensorFileTest, ReadsHandMadeArchiveWithTensorStorage) {
  WriteArchive(TempPath("t.pt"), kProto + PTensor("0", 4, 0, {2, 2}, {1, 2}) + ".",
               {{"data/0", FloatBytes({1, 2, 3, 4})}});
  Result<torch::Tensor> tensor = ReadTensorFile(TempPath("t.pt"));
  ASSERT_TRUE(tensor.ok()) << tensor.status().message();
  EXPECT_TRUE(SameTensor(*tensor, torch::tensor({1.0f, 3.0f, 2.0f, 4.0f}).reshape({2, 2})));
}

TEST_F(TensorFileTest, BigEndianFileIsRejected) {
  WriteArchive(TempPath("t.pt"), kProto + PTensor("0", 1, 0, {1}, {1}) + ".",
               {{"byteorder", "big"}, {"data/0", FloatBytes({1})}});
  Result<torch::Tensor> tensor = ReadTensorFile(TempPath("t.pt"));
  ASSERT_FALSE(tensor.ok());
  EXPECT_TRUE(HasSubstr(tensor.status().message(), "only little-endian"))
      << tensor.status().message();
}

TEST_F(TensorFileTest, TorchScriptArchiveIsRecognised) {
  WriteArchive(TempPath("m.pt"), kProto + "N.", {{"constants.pkl", kProto + ")."}});
  Result<NamedTensors> tensors = ReadStateDict(TempPath("m.pt"));
  ASSERT_FALSE(tensors.ok());
  EXPECT_TRUE(HasSubstr(tensors.status().message(), "TorchScript archive"))
      << tensors.status().message();
}

TEST_F(TensorFileTest, DictWhereTensorExpectedSaysWhatTheFileHolds) {
  Result<torch::Tensor> dict = ReadTensorFile(DataPath("plain_dict.pt"));
  Result<torch::Tensor> ordered = ReadTensorFile(DataPath("state_dict_net.pth"));
  ASSERT_FALSE(dict.ok());
  ASSERT_FALSE(ordered.ok());
  EXPECT_EQ(dict.status().message(),
            "input " + DataPath("plain_dict.pt") + ": holds a dict, expected a tensor");
  EXPECT_EQ(ordered.status().message(), "input " + DataPath("state_dict_net.pth") +
                                            ": holds an OrderedDict, expected a tensor");
}

TEST_F(TensorFileTest, TensorWhereStateDictExpectedSaysWhatTheFileHolds) {
  Result<NamedTensors> tensors = ReadStateDict(DataPath("tensor_float.pt"));
  ASSERT_FALSE(tensors.ok());
  EXPECT_EQ(tensors.status().message(),
            "weights " + DataPath("tensor_float.pt") +
                ": holds a tensor, expected a dict of named tensors (a state dict)");
}

TEST_F(TensorFileTest, NonTensorValueInStateDictNamesTheKey) {
  Result<NamedTensors> tensors = ReadStateDict(DataPath("dict_with_none.pt"));
  ASSERT_FALSE(tensors.ok());
  EXPECT_EQ(tensors.status().message(), "weights " + DataPath("dict_with_none.pt") +
                                            ": key 'config' holds None, expected a tensor");
}

TEST_F(TensorFileTest, TrainingCheckpointGetsAHint) {
  Result<NamedTensors> tensors = ReadStateDict(DataPath("checkpoint.pt"));
  ASSERT_FALSE(tensors.ok());
  EXPECT_TRUE(HasSubstr(tensors.status().message(),
                        "key 'model' holds a dict, expected a tensor (a training"))
      << tensors.status().message();
}

TEST_F(TensorFileTest, WriteIntoMissingDirectoryIsIoError) {
  const std::string path = TempPath("no/such/dir/t.pt");
  Status status = WriteTensorFile(torch::ones({2}), path);
  Status state = WriteStateDict({{"w", torch::ones({2})}}, path);
  EXPECT_EQ(status.code(), Status::Code::kIoError);
  EXPECT_TRUE(HasSubstr(status.message(), "output " + path + ": cannot open for writing"))
      << status.message();
  EXPECT_EQ(state.code(), Status::Code::kIoError);
  EXPECT_TRUE(HasSubstr(state.message(), "weights " + path + ": cannot open for writing"))
      << state.message();
}

TEST_F(TensorFileTest, WriteRejectsTensorsTorchSaveCannotHold) {
  Status undefined = WriteTensorFile(torch::Tensor(), TempPath("t.pt"));
  Status sparse = WriteTensorFile(torch::eye(3).to_sparse(), TempPath("t.pt"));
  Status in_dict =
      WriteStateDict({{"w", torch::ones({1})}, {"bad", torch::Tensor()}}, TempPath("sd.pt"));
  EXPECT_EQ(undefined.code(), Status::Code::kInvalidArgument);
  EXPECT_TRUE(HasSubstr(undefined.message(), "undefined")) << undefined.message();
  EXPECT_EQ(sparse.code(), Status::Code::kInvalidArgument);
  EXPECT_TRUE(HasSubstr(sparse.message(), "only dense")) << sparse.message();
  EXPECT_TRUE(HasSubstr(in_dict.message(), "'bad': tensor is undefined")) << in_dict.message();
}

TEST_F(TensorFileTest, WriteStateDictRejectsDuplicateNames) {
  Status status =
      WriteStateDict({{"w", torch::ones({1})}, {"w", torch::zeros({1})}}, TempPath("sd.pth"));
  EXPECT_EQ(status.code(), Status::Code::kInvalidArgument);
  EXPECT_TRUE(HasSubstr(status.message(), "duplicate name 'w'")) << status.message();
}

}  // namespace
}  // namespace paretopipe
