// StageRunner: the receive, compute and send threads of one pipeline stage.
#include "runtime/stage.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "metrics/process_stats.h"
#include "model/compute.h"
#include "model/torch_util.h"
#include "runtime/input_set.h"
#include "runtime/queue.h"
#include "runtime/stage_device.h"
#include "runtime/tensor_frame.h"

namespace paretopipe {
namespace {

// A batch travelling between this stage's threads: one tensor, or several
// where a cut carries a skip connection (each its own frame on the link).
struct InFlight {
  int64_t batch_id = 0;
  std::vector<torch::Tensor> tensors;
  int64_t origin_ns = 0;  // Source clock: stage-1 compute began.
};

// Buffers that received activations land in (pinned for a GPU stage). Once
// a batch's compute (on a GPU: its copy to the device) is done its buffer
// returns (its use count falls to 1), so the steady state allocates nothing
// per message.
class BufferPool {
 public:
  torch::Tensor Get(c10::IntArrayRef shape, StageDevice& device) {
    for (torch::Tensor& t : buffers_) {
      // Free when neither the tensor nor its memory is referenced: a segment
      // whose output is a view of its input (flatten, identity) would
      // otherwise have the buffer overwritten while it is being sent.
      if (t.use_count() == 1 && t.storage().use_count() == 1 && t.sizes() == shape) return t;
    }
    buffers_.push_back(device.HostBuffer(shape));
    return buffers_.back();
  }

 private:
  std::vector<torch::Tensor> buffers_;
};

}  // namespace

int64_t SteadyNowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

struct StageRunner::Impl {
  std::shared_ptr<StageCompute> segment;
  std::shared_ptr<StageDevice> device;
  std::vector<torch::Tensor> inputs;          // The source's synthetic batches, made once per run.
  std::shared_ptr<const InputSet> input_set;  // Or a dataset's images.
  BufferPool pool;
  std::vector<KeptOutput> outputs;

  // The pass in progress: the first error wins and stops every thread.
  std::mutex mu;
  std::condition_variable cv;
  Status error;
  bool failed = false;
  int credits = 0;
  std::vector<Link*> links;
  std::vector<BoundedQueue<InFlight>*> queues;
  std::atomic<bool> aborted{false};  // Never cleared: a worker aborts only when it stops.

  void Fail(Status status) {
    std::vector<BoundedQueue<InFlight>*> to_close;
    std::vector<Link*> to_shut;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (failed) return;
      failed = true;
      error = std::move(status);
      to_close = queues;
      to_shut = links;
    }
    cv.notify_all();
    for (auto* q : to_close) q->Close();
    for (Link* l : to_shut) l->Shutdown();
  }
  bool Failed() {
    std::lock_guard<std::mutex> lock(mu);
    return failed;
  }

  // Runs `body` on a new thread; an exception (a failed allocation, a
  // LibTorch error) fails the pass instead of terminating the process.
  std::thread Spawn(const std::string& who, std::function<void()> body) {
    return std::thread([this, who, body = std::move(body)] {
      try {
        body();
      } catch (const std::exception& e) {
        Fail(Status::Internal(fmt::format("{}: {}", who, FirstLine(e.what()))));
      }
    });
  }

  static std::string FirstLine(const std::string& text) { return text.substr(0, text.find('\n')); }
};

StageRunner::StageRunner(StageConfig config, std::shared_ptr<StageCompute> segment,
                         std::shared_ptr<const InputSet> inputs,
                         std::shared_ptr<StageDevice> device)
    : config_(std::move(config)), impl_(std::make_unique<Impl>()) {
  impl_->segment = std::move(segment);
  impl_->input_set = std::move(inputs);
  impl_->device = std::move(device);
}

StageRunner::~StageRunner() = default;

std::vector<KeptOutput> StageRunner::TakeOutputs() { return std::move(impl_->outputs); }

void StageRunner::Cancel(const std::string& reason) { impl_->Fail(Status::Unavailable(reason)); }

void StageRunner::Abort() {
  impl_->aborted = true;
  impl_->Fail(Status::Unavailable("pass aborted: the worker is stopping"));
}

Result<StageTrace> StageRunner::RunPass(const StageLinks& links) {
  const StageConfig& c = config_;
  const bool is_source = c.stage == 0;
  const bool is_sink = c.stage == c.stages - 1;
  const bool remote_credits = c.stages > 1;
  const std::string who = fmt::format("stage {}", c.stage + 1);
  const char* missing =
      !is_source && !links.in                            ? "from the previous stage"
      : !is_sink && !links.out                           ? "to the next stage"
      : is_source && remote_credits && !links.credits_in ? "for credits from the sink"
      : is_sink && remote_credits && !links.credits_out  ? "for credits to the source"
                                                         : nullptr;
  if (missing) return Status::Internal(fmt::format("{}: no connection {}", who, missing));
  if (c.batches < 1 || c.window < 1) {
    return Status::InvalidArgument(
        fmt::format("{}: batches ({}) and window ({}) must be >= 1", who, c.batches, c.window));
  }

  Impl& im = *impl_;
  im.outputs.clear();
  if (!im.device) {
    PP_ASSIGN_OR_RETURN(std::unique_ptr<StageDevice> cpu, MakeStageDevice("cpu"));
    im.device = std::move(cpu);
  }
  if (im.device->name() != c.device) {
    return Status::InvalidArgument(fmt::format("{}: configured for device {}, but computes on {}",
                                               who, c.device, im.device->name()));
  }
  StageDevice& device = *im.device;
  const bool from_set = is_source && !c.input_digest.empty();
  if (from_set &&
      (!im.input_set || im.input_set->digest != c.input_digest ||
       im.input_set->images.sizes().slice(1) != c10::IntArrayRef(c.input_shape).slice(1))) {
    return Status::InvalidArgument(
        fmt::format("{}: no input set {} of images [{}]", who, c.input_digest.substr(0, 12),
                    fmt::join(c10::IntArrayRef(c.input_shape).slice(1), ", ")));
  }
  if (is_source && !from_set && im.inputs.empty()) {
    Status made = CatchTorchErrors([&] {
      const int distinct = std::min(c.batches, 4);
      for (int b = 0; b < distinct; ++b) {
        im.inputs.push_back(SyntheticBatch(c.input_seed, b, c.batches, c.input_shape));
      }
      return Status::Ok();
    });
    PP_RETURN_IF_ERROR(made);
  }

  BoundedQueue<InFlight> compute_q(c.window + 1), send_q(c.window + 1);
  {
    std::lock_guard<std::mutex> lock(im.mu);
    // An abort that came before this pass registered its queues still counts.
    im.failed = im.aborted;
    im.error =
        im.aborted ? Status::Unavailable("pass aborted: the worker is stopping") : Status::Ok();
    im.credits = c.window;
    im.queues = {&compute_q, &send_q};
    im.links.clear();
    for (Link* l : {links.in, links.out, links.credits_in, links.credits_out}) {
      if (l) im.links.push_back(l);
    }
  }
  auto stall = [&] {
    return DeadlineIn(std::chrono::duration_cast<std::chrono::milliseconds>(c.stall_timeout));
  };
  const FrameLimits limits;

  StageTrace trace;
  trace.stage = c.stage;
  trace.batches.resize(c.batches);
  for (int b = 0; b < c.batches; ++b) trace.batches[b].batch_id = b;
  const bool rss_reset = ResetPeakRss();
  const int64_t cpu_begin = ProcessCpuNs();
  device.BeginPass();

  std::vector<std::thread> threads;
  if (!is_source) {
    threads.push_back(im.Spawn(who, [&] {
      for (int b = 0; b < c.batches && !im.Failed(); ++b) {
        BatchTrace& t = trace.batches[b];
        // Formatted only on failure: no allocation per message.
        auto where = [&] { return fmt::format("{} batch {}", who, b); };
        Status s = links.in->WaitForFrame(stall());
        if (!s.ok()) return im.Fail(s.WithContext(where()));
        t.recv_begin_ns = SteadyNowNs();
        InFlight item{b, {}, 0};
        // A message is one activation frame per tensor crossing the cut, in order.
        const size_t parts = 1 + c.extra_input_shapes.size();
        for (size_t i = 0; i < parts; ++i) {
          const std::vector<int64_t>& shape = i == 0 ? c.input_shape : c.extra_input_shapes[i - 1];
          FrameHeader h;
          s = links.in->ReceiveHeader(&h, limits, stall());
          if (!s.ok()) return im.Fail(s.WithContext(where()));
          if (h.type != FrameType::kActivation || h.batch_id != static_cast<uint64_t>(b) ||
              h.dtype != DType::kFloat32 ||
              c10::IntArrayRef(h.shape.data(), h.rank) != c10::IntArrayRef(shape)) {
            return im.Fail(Status::InvalidArgument(fmt::format(
                "{}: from {}: expected activation {}of batch {} float32 {}, got {} frame of batch "
                "{} dtype {} shape {}",
                where(), links.in->peer(),
                parts > 1 ? fmt::format("{} of {} ", i + 1, parts) : std::string(), b, shape,
                FrameTypeName(h.type), h.batch_id, DTypeName(h.dtype), h.Shape())));
          }
          torch::Tensor buffer = im.pool.Get(shape, device);
          s = links.in->ReceivePayload(buffer.data_ptr(), h.payload_bytes, stall());
          if (!s.ok()) return im.Fail(s.WithContext(where()));
          t.bytes_in += static_cast<int64_t>(h.payload_bytes);
          const LinkTiming timing = links.in->last_receive_timing();
          t.recv_deserialize_ns += timing.deserialize_ns;
          // The later frames of a batch wait in the queue while the first is
          // read: only the first frame's wait delays the batch.
          if (i == 0) t.recv_queued_ns = timing.queued_ns;
          if (i == 0) item.origin_ns = h.origin_ns;
          item.tensors.push_back(std::move(buffer));
        }
        t.recv_end_ns = SteadyNowNs();
        // On a GPU the copy to the device runs here, on its own stream, while
        // the compute thread computes the batch before.
        s = device.CopyIn(&item.tensors, &t.copy_in_ns);
        if (!s.ok()) return im.Fail(s.WithContext(where()));
        if (!compute_q.Push(std::move(item), stall())) {
          return im.Fail(
              Status::Unavailable(where() + ": compute did not keep up before the stall timeout"));
        }
      }
    }));
  }
  if (!is_sink) {
    threads.push_back(im.Spawn(who, [&] {
      for (int b = 0; b < c.batches; ++b) {
        std::optional<InFlight> item = send_q.Pop(stall());
        if (!item) {
          if (!im.Failed())
            im.Fail(Status::Unavailable(
                fmt::format("{} batch {}: nothing to send before the stall timeout", who, b)));
          return;
        }
        BatchTrace& t = trace.batches[b];
        t.send_begin_ns = SteadyNowNs();
        for (const torch::Tensor& tensor : item->tensors) {
          Result<FrameHeader> header = TensorHeader(FrameType::kActivation, b, tensor);
          if (!header.ok()) return im.Fail(header.status().WithContext(who));
          FrameHeader& h = *header;
          h.origin_ns = item->origin_ns;
          h.sent_ns = SteadyNowNs();
          Status s = links.out->Send(h, tensor.data_ptr(), stall());
          if (!s.ok())
            return im.Fail(
                s.WithContext(fmt::format("{} batch {}: send to {}", who, b, links.out->peer())));
          t.bytes_out += static_cast<int64_t>(h.payload_bytes);
          t.send_serialize_ns += links.out->last_send_timing().serialize_ns;
        }
        t.send_end_ns = SteadyNowNs();
      }
    }));
  }
  if (is_source && remote_credits) {
    threads.push_back(im.Spawn(who, [&] {
      for (int b = 0; b < c.batches; ++b) {
        FrameHeader h;
        Status s = links.credits_in->ReceiveHeader(&h, limits, stall());
        if (s.ok() && (h.type != FrameType::kCredit || h.batch_id != static_cast<uint64_t>(b))) {
          s = Status::InvalidArgument(
              fmt::format("expected the credit of batch {}, got a {} frame of batch {}", b,
                          FrameTypeName(h.type), h.batch_id));
        }
        if (!s.ok()) {
          return im.Fail(s.WithContext(
              fmt::format("{}: credits from the sink {}", who, links.credits_in->peer())));
        }
        {
          std::lock_guard<std::mutex> lock(im.mu);
          ++im.credits;
        }
        im.cv.notify_all();
      }
    }));
  }

  // Compute on this thread, in inference mode (thread-local in LibTorch).
  try {
    c10::InferenceMode inference;
    for (int b = 0; b < c.batches && !im.Failed(); ++b) {
      BatchTrace& t = trace.batches[b];
      auto where = [&] { return fmt::format("{} batch {}", who, b); };
      std::vector<torch::Tensor> inputs;
      int64_t origin_ns = 0;
      if (is_source) {
        std::unique_lock<std::mutex> lock(im.mu);
        if (!im.cv.wait_until(lock, stall(), [&] { return im.failed || im.credits > 0; })) {
          lock.unlock();
          im.Fail(Status::Unavailable(
              where() + ": no credit came back from the sink before the stall timeout"));
          break;
        }
        if (im.failed) break;
        --im.credits;
        lock.unlock();
        // Assembling a batch that wraps around the set's end is a copy of a
        // few MB: the input is "ready" after it, as a camera frame is after
        // its capture.
        // A copy of the set's images, into a reused buffer (the source has
        // no receive thread using the pool): a model that writes to its
        // input in place must not change the set later batches and runs read.
        if (from_set) {
          torch::Tensor buffer = im.pool.Get(c.input_shape, device);
          buffer.copy_(im.input_set->Batch(b, c.input_shape[0]));
          inputs = {std::move(buffer)};
        } else {
          inputs = {im.inputs[b % im.inputs.size()]};
        }
        t.recv_begin_ns = t.recv_end_ns = SteadyNowNs();
        if (Status s = device.CopyIn(&inputs, &t.copy_in_ns); !s.ok()) {
          im.Fail(s.WithContext(where()));
          break;
        }
      } else {
        std::optional<InFlight> item = compute_q.Pop(stall());
        if (!item) {
          if (!im.Failed())
            im.Fail(Status::Unavailable(where() + ": nothing received before the stall timeout"));
          break;
        }
        inputs = std::move(item->tensors);
        origin_ns = item->origin_ns;
      }
      t.compute_begin_ns = SteadyNowNs();
      if (is_source) origin_ns = t.compute_begin_ns;
      // Outputs come back on the host, in row-major order, as the next stage
      // receives them.
      Result<std::vector<torch::Tensor>> out = device.Compute(*im.segment, inputs, &t);
      std::vector<torch::Tensor> outputs;
      Status s = out.status();
      if (out.ok()) outputs = std::move(out).value();
      inputs.clear();  // Their receive buffers may be reused now.
      if (s.ok() && (outputs.empty() || (is_sink && outputs.size() != 1))) {
        s = Status::InvalidArgument(fmt::format(
            "{} output tensors; {}", outputs.size(),
            is_sink ? "the last stage returns the model's one output" : "expected at least one"));
      }
      t.compute_end_ns = SteadyNowNs();
      if (!s.ok()) {
        im.Fail(s.WithContext(where()));
        break;
      }
      if (is_sink) {
        const torch::Tensor& output = outputs[0];
        t.send_begin_ns = t.send_end_ns = t.compute_end_ns;
        if (c.top1) {
          if (output.dim() != 2 || output.size(0) != c.input_shape[0]) {
            im.Fail(Status::InvalidArgument(
                fmt::format("{}: top-1 needs a batch x classes output, got [{}]", where(),
                            fmt::join(output.sizes(), ", "))));
            break;
          }
          torch::Tensor classes = output.argmax(1).contiguous();
          trace.top1.insert(trace.top1.end(), classes.data_ptr<int64_t>(),
                            classes.data_ptr<int64_t>() + classes.numel());
        }
        if (c.keep_outputs) {
          KeptOutput kept{b, output.sizes().vec(), {}};
          kept.values.assign(output.data_ptr<float>(), output.data_ptr<float>() + output.numel());
          im.outputs.push_back(std::move(kept));
        }
        if (remote_credits) {
          FrameHeader credit;
          credit.type = FrameType::kCredit;
          credit.batch_id = static_cast<uint64_t>(b);
          credit.sent_ns = SteadyNowNs();
          s = links.credits_out->Send(credit, nullptr, stall());
          if (!s.ok()) {
            im.Fail(s.WithContext(where() + ": returning the credit"));
            break;
          }
        } else {
          std::lock_guard<std::mutex> lock(im.mu);
          ++im.credits;
        }
      } else if (!send_q.Push(InFlight{b, std::move(outputs), origin_ns}, stall())) {
        if (!im.Failed())
          im.Fail(
              Status::Unavailable(where() + ": sending did not keep up before the stall timeout"));
        break;
      }
    }
  } catch (const std::exception& e) {  // E.g. out of memory copying an output.
    im.Fail(Status::Internal(fmt::format("{}: {}", who, Impl::FirstLine(e.what()))));
  }
  for (std::thread& t : threads) t.join();
  device.EndPass(&trace);
  {
    std::lock_guard<std::mutex> lock(im.mu);
    im.queues.clear();
    im.links.clear();
    if (im.failed) return im.error;
  }

  trace.cpu_ns = ProcessCpuNs() - cpu_begin;
  // -1: unknown. Without the reset VmHWM is the daemon's lifetime peak,
  // perhaps of an earlier, larger model; better no number than a wrong one.
  trace.peak_rss_bytes = rss_reset ? PeakRssBytes() : -1;
  return trace;
}

}  // namespace paretopipe
