// Where a stage computes: the CPU stage device's contract, how a build or
// machine without CUDA answers for a GPU, and a worker's --device as its
// orchestrator sees it. The CUDA device itself runs in scripts/gpu-check.sh.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "control/worker.h"
#include "control/worker_client.h"
#include "model/compute.h"
#include "runtime/stage.h"
#include "runtime/stage_device.h"
#include "sweep/pipeline_run.h"
#include "test_util.h"

namespace paretopipe {
namespace {

using testing::ServingWorker;

constexpr std::chrono::milliseconds kTestDeadline(3000);

// A stage whose output is a transposed view of twice its input: not
// contiguous, as a segment ending in a permute or a slice would be.
class TransposeTwice final : public StageCompute {
 public:
  Result<torch::Tensor> Run(const torch::Tensor& input) override {
    return (input * 2).transpose(2, 3);
  }
};

TEST(StageDeviceTest, CpuDeviceComputesInPlaceAndReturnsRowMajorHostOutputs) {
  Result<std::unique_ptr<StageDevice>> device = MakeStageDevice("cpu");
  ASSERT_TRUE(device.ok()) << device.status().message();
  StageDevice& cpu = **device;
  torch::Tensor received = cpu.HostBuffer({1, 1, 2, 3});
  received.copy_(torch::arange(6, torch::kFloat).reshape({1, 1, 2, 3}));

  int64_t copy_ns = 0;
  std::vector<torch::Tensor> on_device = {received};
  Status copied = cpu.CopyIn(&on_device, &copy_ns);
  ASSERT_TRUE(copied.ok()) << copied.message();
  TransposeTwice compute;
  BatchTrace trace;
  Result<std::vector<torch::Tensor>> out = cpu.Compute(compute, on_device, &trace);

  EXPECT_EQ(cpu.name(), "cpu");
  EXPECT_EQ(cpu.description(), "");
  EXPECT_FALSE(received.is_pinned());
  EXPECT_EQ(on_device[0].data_ptr(), received.data_ptr()) << "the CPU copied its input";
  EXPECT_EQ(copy_ns, -1);
  ASSERT_TRUE(out.ok()) << out.status().message();
  ASSERT_EQ(out->size(), 1u);
  EXPECT_TRUE((*out)[0].is_contiguous());
  EXPECT_TRUE((*out)[0].equal((received * 2).transpose(2, 3).contiguous()));
  EXPECT_EQ(trace.device_compute_ns, -1);
  EXPECT_EQ(trace.copy_out_ns, -1);
}

TEST(StageDeviceTest, UnknownDeviceIsInvalid) {
  Result<std::unique_ptr<StageDevice>> device = MakeStageDevice("tpu:0");

  ASSERT_FALSE(device.ok());
  EXPECT_EQ(device.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(device.status().message().find("expected cpu, cuda or cuda:N"), std::string::npos)
      << device.status().message();
}

TEST(StageDeviceTest, CudaIsUnavailableSayingWhyWhereThereIsNone) {
  Result<std::unique_ptr<StageDevice>> device = MakeStageDevice("cuda");

#if PARETOPIPE_WITH_CUDA
  if (torch::cuda::is_available()) {
    ASSERT_TRUE(device.ok()) << device.status().message();
    EXPECT_EQ((*device)->name(), "cuda:0");
    EXPECT_FALSE((*device)->description().empty());
    return;
  }
  ASSERT_FALSE(device.ok());
  EXPECT_NE(device.status().message().find("no CUDA device is visible"), std::string::npos)
      << device.status().message();
#else
  ASSERT_FALSE(device.ok());
  EXPECT_EQ(device.status().code(), Status::Code::kUnavailable);
  EXPECT_NE(device.status().message().find("without CUDA"), std::string::npos)
      << device.status().message();
  EXPECT_NE(device.status().message().find("docs/gpu.md"), std::string::npos)
      << device.status().message();
#endif
}

TEST(StageRunnerDeviceTest, StageConfiguredForAnotherDeviceIsRefusedBeforeComputing) {
  StageConfig config;
  config.model = "transpose";
  config.input_shape = {1, 1, 2, 3};
  config.batches = 2;
  config.device = "cuda:0";
  StageRunner runner(config, std::make_shared<TransposeTwice>());

  Result<StageTrace> trace = runner.RunPass(StageLinks{});

  ASSERT_FALSE(trace.ok());
  EXPECT_NE(trace.status().message().find("configured for device cuda:0, but computes on cpu"),
            std::string::npos)
      << trace.status().message();
}

TEST(StageRunnerDeviceTest, CpuStageLeavesTheGpuFieldsUnknown) {
  StageConfig config;
  config.model = "transpose";
  config.input_shape = {1, 1, 2, 3};
  config.batches = 3;
  config.window = 1;
  StageRunner runner(config, std::make_shared<TransposeTwice>());

  Result<StageTrace> trace = runner.RunPass(StageLinks{});

  ASSERT_TRUE(trace.ok()) << trace.status().message();
  EXPECT_EQ(trace->device_peak_bytes, -1);
  EXPECT_EQ(trace->device_utilization_pct, -1);
  for (const BatchTrace& b : trace->batches) {
    EXPECT_EQ(b.device_compute_ns, -1);
    EXPECT_EQ(b.copy_in_ns, -1);
    EXPECT_EQ(b.copy_out_ns, -1);
    EXPECT_GT(b.compute_end_ns, b.compute_begin_ns);
  }
}

TEST(WorkerDeviceTest, WorkerSaysWhereItComputes) {
  const WorkerOptions on_the_cpu;  // Named, not `{}`: GCC 12 warns wrongly of the temporary.
  ServingWorker worker(on_the_cpu);
  ASSERT_TRUE(worker.ok());
  Result<std::unique_ptr<WorkerClient>> client =
      WorkerClient::Connect(worker.endpoint(), kTestDeadline);
  ASSERT_TRUE(client.ok()) << client.status().message();

  Result<WorkerInfo> info = (*client)->Info();

  ASSERT_TRUE(info.ok()) << info.status().message();
  EXPECT_EQ(info->device, "cpu");
  EXPECT_EQ(info->device_name, "");
}

TEST(WorkerDeviceTest, StageForAnotherDeviceIsRefusedNamingBoth) {
  const WorkerOptions on_the_cpu;
  ServingWorker worker(on_the_cpu);
  ASSERT_TRUE(worker.ok());
  Result<std::unique_ptr<WorkerClient>> client =
      WorkerClient::Connect(worker.endpoint(), kTestDeadline);
  ASSERT_TRUE(client.ok()) << client.status().message();
  StageConfig config;
  config.run_id = 1;
  config.model = "mobilenet_v2";
  config.num_classes = 10;
  config.block_end = 2;
  config.input_shape = {1, 3, 32, 32};
  config.self = worker.endpoint().ToString();
  config.device = "cuda:0";

  Status configured = (*client)->Configure(config, "", nullptr, nullptr);

  ASSERT_FALSE(configured.ok());
  EXPECT_NE(configured.message().find("asks for device cuda:0, but this worker computes on cpu"),
            std::string::npos)
      << configured.message();
}

TEST(WorkerDeviceTest, WorkerOnADeviceThisBuildLacksIsNotCreated) {
#if PARETOPIPE_WITH_CUDA
  GTEST_SKIP() << "this build has CUDA stages";
#else
  WorkerOptions options;
  options.listen = {"127.0.0.1", 0};
  options.threads = 1;
  options.device = "cuda:0";

  Result<std::unique_ptr<Worker>> worker = Worker::Create(options);

  ASSERT_FALSE(worker.ok());
  EXPECT_NE(worker.status().message().find("without CUDA"), std::string::npos)
      << worker.status().message();
#endif
}

TEST(StageDevicesTextTest, OneNameWhenAllStagesAgreeElseEachInOrder) {
  EXPECT_EQ(StageDevicesText({"cpu", "cpu", "cpu"}), "cpu");
  EXPECT_EQ(StageDevicesText({"cpu", "cuda:0"}), "cpu,cuda:0");
  EXPECT_EQ(StageDevicesText({"cuda:0", "cuda:1"}), "cuda:0,cuda:1");
}

}  // namespace
}  // namespace paretopipe
