// A pipeline stage: receives a batch's activation from the previous stage,
// computes its segment of the model, sends the result to the next stage. The
// three run on separate threads, so a stage computes batch b while it sends
// b - 1 and receives b + 1: stages overlap as a real pipeline.
//
// The source (stage 0) makes its input instead of receiving it (deterministic
// synthetic images, or a dataset's from an InputSet, as from a camera on the
// first device) and may have at
// most `window` batches inside the pipeline: it waits for a credit, which the
// sink returns when a batch leaves. The sink (last stage) sends nothing on;
// it returns credits and can keep its outputs for checking.
//
// Owns: the per-batch loop of one stage, its threads and its timestamps.
// Must not touch: how stages are placed or configured (control), the store.
// Thread safety: a StageRunner runs one pass at a time; not copyable.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "metrics/run_record.h"
#include "transport/link.h"
#include "util/status.h"

namespace paretopipe {

class StageCompute;
class StageDevice;
struct InputSet;

// What a worker is told for one run (one split configuration).
struct StageConfig {
  int64_t run_id = 0;
  std::string model;
  int64_t num_classes = 1000;
  uint64_t seed = 0;
  std::string weights_digest;  // Empty: seeded initialization.
  // A TorchScript model (config.model is then only its name): the SHA-256 of
  // this stage's segment module (ScriptSegment::Serialize), which the worker
  // receives from the orchestrator; empty for a zoo model.
  std::string module_digest;
  int stage = 0;               // 0-based.
  int stages = 1;
  int64_t block_begin = 0, block_end = 0;
  std::vector<int64_t> input_shape;  // What this stage receives (or makes), batch included.
  // When a cut carries several tensors (a TorchScript cut inside a skip
  // connection): the shapes of the second and later, which arrive as further
  // activation frames of the same batch.
  std::vector<std::vector<int64_t>> extra_input_shapes;
  int batches = 64;                  // Per pass, warm-up included.
  int window = 4;                    // Batches in flight, at most.
  std::string backend = "tcp";       // Which transport carries the links (control/stage_transport.h).
  std::string self;                  // This worker's endpoint as the orchestrator reaches it.
  std::string next;                  // Next stage's endpoint for `backend`; empty at the sink.
  std::string source;                // Stage 0's endpoint for `backend` (the sink's credits go there).
  std::string device = "cpu";
  uint64_t input_seed = 0;  // Synthetic input of batch b: uniform [0, 1) from input_seed + b.
  // At the source, when not empty: the SHA-256 of the input set (InputSet)
  // to take the images from instead of synthetic ones, and its image count.
  // Batch b holds images b * batch ... b * batch + batch - 1, modulo the count.
  std::string input_digest;
  int64_t input_images = 0;
  bool keep_outputs = false;  // The sink keeps every batch's output.
  // The sink records the top-1 class (argmax over dimension 1) of each image
  // of each batch, outside the timed compute.
  bool top1 = false;
  // The longest a stage waits for one frame, a credit or queue room before it
  // gives the pass up. A batch of VGG-16 on a Raspberry Pi takes seconds; a
  // minute is far beyond any healthy wait and still ends a stuck run.
  std::chrono::milliseconds stall_timeout{60000};
};

// A stage's links for one pass, of whichever backend. Null where the stage
// has none.
struct StageLinks {
  Link* in = nullptr;           // From the previous stage (not at the source).
  Link* out = nullptr;          // To the next stage (not at the sink).
  Link* credits_in = nullptr;   // At the source, from the sink (when stages > 1).
  Link* credits_out = nullptr;  // At the sink, to the source (when stages > 1).
};

// A sink output kept for checking: a float32 tensor's shape and bytes.
struct KeptOutput {
  int64_t batch_id = 0;
  std::vector<int64_t> shape;
  std::vector<float> values;
};

class StageRunner {
 public:
  // `segment` computes blocks [config.block_begin, config.block_end) of
  // config.model (a zoo Segment or a TorchScript segment). `inputs`: at
  // the source with config.input_digest set, the set with that digest,
  // whose images match config.input_shape; else null (synthetic input).
  // `device`: where `segment` computes (runtime/stage_device.h), named
  // config.device; null: the CPU.
  StageRunner(StageConfig config, std::shared_ptr<StageCompute> segment,
              std::shared_ptr<const InputSet> inputs = nullptr,
              std::shared_ptr<StageDevice> device = nullptr);
  ~StageRunner();
  StageRunner(const StageRunner&) = delete;
  StageRunner& operator=(const StageRunner&) = delete;

  // Runs config.batches batches through this stage over `links`. Returns the
  // stage's timestamps for every batch (clock not filled), its CPU time and
  // peak RSS over the pass. On error (peer gone, malformed frame, timeout,
  // compute failure) all threads stop and the first error is returned, with
  // the stage and batch in its message.
  Result<StageTrace> RunPass(const StageLinks& links);

  // Outputs the sink kept in the last pass (config.keep_outputs).
  std::vector<KeptOutput> TakeOutputs();

  // Makes the running pass fail soon with `reason` (e.g. the orchestrator
  // went away). Safe from any thread; without a running pass, no effect
  // beyond the pass about to start.
  void Cancel(const std::string& reason);

  // Makes the running pass, and every later one, fail at once: the worker
  // is stopping. Safe from any thread.
  void Abort();

  const StageConfig& config() const { return config_; }

 private:
  struct Impl;
  StageConfig config_;
  std::unique_ptr<Impl> impl_;
};

// Current steady clock in ns: the timebase of every stage timestamp.
int64_t SteadyNowNs();

}  // namespace paretopipe
