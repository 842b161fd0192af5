// paretopipe: the command line. Owns argument parsing and printing; every
// computation lives in the layers below (model, metrics, profile). Errors are
// one line on stderr and exit status 1 (2 for a malformed command line).
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/format.h"
#include "metrics/machine.h"
#include "model/cuts.h"
#include "model/device.h"
#include "model/run_file.h"
#include "model/zoo.h"
#include "profile/profiler.h"

namespace paretopipe::cli {
namespace {

// Options every model-taking command shares.
struct ModelOptions {
  std::string name;
  int64_t num_classes = 1000;
  uint64_t seed = 0;
  std::string weights;

  ModelSpec Spec() const { return ModelSpec{name, num_classes, seed, weights}; }
};

void AddModelOptions(CLI::App* cmd, ModelOptions& o, bool with_weights) {
  cmd->add_option("MODEL", o.name, "Model name (see `paretopipe models`)")->required();
  cmd->add_option("--num-classes", o.num_classes, "Classes of the classifier head")
      ->capture_default_str();
  cmd->add_option("--seed", o.seed, "Seed of the deterministic random weights")->capture_default_str();
  if (with_weights) {
    cmd->add_option("--weights", o.weights,
                    "State dict saved by torch.save(model.state_dict(), FILE); "
                    "keys as torchvision names them");
  }
}

int Fail(const Status& status) {
  std::fprintf(stderr, "paretopipe: error: %s\n", status.message().c_str());
  return 1;
}

int CmdModels(bool json) {
  if (json) {
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    for (const ZooEntry& e : ZooModels()) {
      out.push_back({{"name", e.name},
                     {"description", e.description},
                     {"input_shape", {e.input_channels, e.input_side_px, e.input_side_px}},
                     {"min_input_side_px", e.min_input_side_px},
                     {"blocks", e.num_blocks},
                     {"valid_cuts", {{"first", 1}, {"last", e.num_blocks - 1}}}});
    }
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  fmt::print("{:<14} {:>9} {:>7} {:>6}  {}\n", "model", "input", "blocks", "cuts", "description");
  for (const ZooEntry& e : ZooModels()) {
    fmt::print("{:<14} {:>9} {:>7} {:>6}  {}\n", e.name,
               fmt::format("{}x{}x{}", e.input_channels, e.input_side_px, e.input_side_px), e.num_blocks,
               fmt::format("1..{}", e.num_blocks - 1), e.description);
  }
  return 0;
}

int CmdCuts(const ModelOptions& m, int64_t batch, int64_t input_side_px, bool json) {
  if (batch < 1) return Fail(Status::InvalidArgument(fmt::format("--batch must be at least 1, got {}", batch)));
  Result<ModelAnalysis> analysis = AnalyzeModel(m.Spec(), input_side_px);
  if (!analysis.ok()) return Fail(analysis.status());
  const std::vector<CutInfo> cuts = CutsAtBatch(*analysis, batch);
  const ModelAnalysis& a = *analysis;
  if (json) {
    nlohmann::ordered_json out = {{"model", a.entry.name},
                          {"num_classes", a.num_classes},
                          {"batch", batch},
                          {"input_shape", {batch, a.entry.input_channels, a.input_side_px, a.input_side_px}},
                          {"dtype", "float32"},
                          {"blocks", a.entry.num_blocks},
                          {"parameters", a.total_parameters},
                          {"macs", a.total_macs * batch}};
    nlohmann::ordered_json rows = nlohmann::ordered_json::array();
    for (const CutInfo& c : cuts) {
      rows.push_back({{"cut", c.cut},
                      {"stage1_blocks", {0, c.cut}},
                      {"stage2_blocks", {c.cut, a.entry.num_blocks}},
                      {"last_block_before", c.last_block_before},
                      {"first_block_after", c.first_block_after},
                      {"shape", c.shape},
                      {"bytes", c.bytes},
                      {"macs_before", c.macs_before},
                      {"macs_share_before", c.macs_share_before}});
    }
    out["cuts"] = rows;
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  fmt::print("{}: {} blocks, valid cuts 1..{}; batch {}, input {}x{}x{}x{} fp32; {} parameters, {} MACs\n",
             a.entry.name, a.entry.num_blocks, a.entry.num_blocks - 1, batch, batch,
             a.entry.input_channels, a.input_side_px, a.input_side_px, WithCommas(a.total_parameters),
             Short(static_cast<double>(a.total_macs * batch)));
  fmt::print("cut k: stage 1 runs blocks [0, k), stage 2 runs [k, {}); the activation is block k-1's output\n\n",
             a.entry.num_blocks);
  fmt::print("{:>4}  {:<26} {:<30} {:>16} {:>14} {:>8}\n", "cut", "stage 1 ends with",
             "stage 2 starts with", "activation", "bytes", "MACs <k");
  for (const CutInfo& c : cuts) {
    fmt::print("{:>4}  {:<26} {:<30} {:>16} {:>14} {:>7.1f}%\n", c.cut, c.last_block_before,
               c.first_block_after, ShapeText(c.shape), WithCommas(c.bytes), 100.0 * c.macs_share_before);
  }
  return 0;
}

int CmdProfile(const ProfileRequest& request, const std::string& output) {
  // Opened before profiling, so a bad path fails in a second, not after the run.
  std::ofstream out;
  if (!output.empty()) {
    out.open(output);
    if (!out) return Fail(Status::IoError(fmt::format("cannot write profile to {}: {}", output, std::strerror(errno))));
  }
  Result<Profile> profile = RunProfile(request);
  if (!profile.ok()) return Fail(profile.status());
  const Profile& p = *profile;
  if (IsReferenceBlas(p.machine)) {
    std::fprintf(stderr,
                 "paretopipe: warning: the reference BLAS (%s) is loaded; LibTorch runs about 5x "
                 "slower than with OpenBLAS (apt-get install libopenblas0-pthread)\n",
                 p.machine.blas_path.c_str());
  }
  if (!output.empty()) {
    // Replace, not throw, on a hostname or path that is not UTF-8.
    out << ProfileToJson(p).dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << "\n";
    out.close();
    if (!out) return Fail(Status::IoError(fmt::format("cannot write profile to {}", output)));
  }
  fmt::print("{} on {} ({} CPUs, {}), {} thread(s), LibTorch {}\n", p.request.model.name,
             p.machine.cpu_model, p.machine.logical_cpus, p.machine.blas, p.request.threads,
             p.machine.libtorch_version);
  fmt::print("batch {}, input {}, {} warm-up + {} timed passes; per-block compute time in ms\n\n",
             p.request.batch, ShapeText(p.input_shape), p.request.warmup, p.request.repeat);
  fmt::print("{:>5}  {:<28} {:>9} {:>9} {:>19} {:>14} {:>9}\n", "block", "name", "median", "p95",
             "median 95% CI", "output bytes", "MACs");
  for (const BlockProfile& b : p.blocks) {
    fmt::print("{:>5}  {:<28} {:>9.3f} {:>9.3f} {:>19} {:>14} {:>9}\n", b.index, b.name,
               b.compute_ms.median, b.compute_ms.p95,
               fmt::format("[{:.3f}, {:.3f}]", b.compute_ms.median_ci_low, b.compute_ms.median_ci_high),
               WithCommas(b.output_bytes), Short(static_cast<double>(b.macs)));
  }
  fmt::print("{:>5}  {:<28} {:>9.3f} {:>9.3f}\n", "", "total (sum of blocks)", p.total_ms.median,
             p.total_ms.p95);
  if (!output.empty()) fmt::print("\nprofile written to {}\n", output);
  return 0;
}

int CmdRun(const RunFileRequest& request) {
  Result<RunFileResult> result = RunOnTensorFile(request);
  if (!result.ok()) return Fail(result.status());
  fmt::print("{} blocks [{}, {}): {} -> {} in {:.1f} ms; wrote {}\n", request.model.name,
             result->from, result->to, ShapeText(result->input_shape),
             ShapeText(result->output_shape), result->compute_ms, request.output_path);
  return 0;
}

int Main(int argc, char** argv) {
  CLI::App app{
      "ParetoPipe: where should a neural network be split across edge devices?\n"
      "Runs every split of a model as a pipeline, measures latency and throughput, "
      "and finds the Pareto front."};
  app.name("paretopipe");
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string(PARETOPIPE_VERSION));

  bool models_json = false;
  CLI::App* models = app.add_subcommand("models", "List the built-in models and their split points");
  models->add_flag("--json", models_json, "Print JSON");

  ModelOptions cuts_model;
  int64_t cuts_batch = 1, cuts_input = 0;
  bool cuts_json = false;
  CLI::App* cuts = app.add_subcommand(
      "cuts", "Per cut index: the blocks on each side, the activation crossing it and the multiply-accumulates (MACs) before it");
  AddModelOptions(cuts, cuts_model, /*with_weights=*/false);
  cuts->add_option("--batch,-b", cuts_batch, "Batch size")->capture_default_str();
  cuts->add_option("--input-size", cuts_input, "Square input side (default: the model's nominal size)");
  cuts->add_flag("--json", cuts_json, "Print JSON");

  ModelOptions profile_model;
  ProfileRequest profile_request;
  std::string profile_output;
  CLI::App* profile = app.add_subcommand(
      "profile", "Time every block of a model on this machine; write a device profile (JSON)");
  AddModelOptions(profile, profile_model, /*with_weights=*/true);
  profile->add_option("--batch,-b", profile_request.batch, "Batch size")->capture_default_str();
  profile->add_option("--repeat,-r", profile_request.repeat, "Timed passes")->capture_default_str();
  profile->add_option("--warmup", profile_request.warmup, "Untimed passes before timing")->capture_default_str();
  profile->add_option("--threads,-t", profile_request.threads, "Intra-op threads (default: all CPUs)")
      ->check(CLI::PositiveNumber);
  profile->add_option("--device", profile_request.device, "cpu, cuda or cuda:N")->capture_default_str();
  profile->add_option("--input-size", profile_request.input_side_px,
                      "Square input side (default: the model's nominal size)");
  profile->add_option("-o,--output", profile_output, "Write the profile JSON to this file");

  ModelOptions run_model;
  RunFileRequest run_request;
  CLI::App* run = app.add_subcommand(
      "run", "Run blocks [from, to) of a model on a tensor file (torch.save format) and write the result");
  AddModelOptions(run, run_model, /*with_weights=*/true);
  run->add_option("--from", run_request.from, "First block")->capture_default_str();
  run->add_option("--to", run_request.to, "One past the last block (default: the end)");
  run->add_option("--input,-i", run_request.input_path, "Input tensor file (torch.save(tensor))")->required();
  run->add_option("--output,-o", run_request.output_path, "Output tensor file")->required();
  run->add_option("--threads,-t", run_request.threads, "Intra-op threads (default: all CPUs)")
      ->check(CLI::PositiveNumber);
  run->add_option("--device", run_request.device, "cpu, cuda or cuda:N")->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "paretopipe: error: %s (see --help)\n", e.what());
    return 2;
  }

  // The model name is checked before anything is built, for a fast, clear error.
  auto check_model = [](const ModelOptions& m) -> Status {
    Result<ZooEntry> entry = FindZooModel(m.name);
    return entry.status();
  };
  if (models->parsed()) return CmdModels(models_json);
  if (cuts->parsed()) {
    if (Status s = check_model(cuts_model); !s.ok()) return Fail(s);
    return CmdCuts(cuts_model, cuts_batch, cuts_input, cuts_json);
  }
  if (profile->parsed()) {
    if (Status s = check_model(profile_model); !s.ok()) return Fail(s);
    profile_request.model = profile_model.Spec();
    return CmdProfile(profile_request, profile_output);
  }
  if (run->parsed()) {
    if (Status s = check_model(run_model); !s.ok()) return Fail(s);
    run_request.model = run_model.Spec();
    return CmdRun(run_request);
  }
  return 0;
}

}  // namespace
}  // namespace paretopipe::cli

int main(int argc, char** argv) {
  try {
    return paretopipe::cli::Main(argc, argv);
  } catch (const std::exception& e) {
    // Last line of defence: the layers below return Status; this keeps a
    // missed exception from becoming an abort with a stack trace.
    std::string message = e.what();
    std::fprintf(stderr, "paretopipe: error: %s\n", message.substr(0, message.find('\n')).c_str());
    return 1;
  }
}
