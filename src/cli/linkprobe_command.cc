#include "cli/linkprobe_command.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <random>

#include "analysis/link_model.h"
#include "control/stage_transport.h"
#include "control/worker_client.h"
#include "transport/socket.h"
#include "util/auth.h"

namespace paretopipe::cli {
namespace {

int Fail(const Status& status) {
  std::fprintf(stderr, "paretopipe: error: %s\n", status.message().c_str());
  return 1;
}

// The size sweep has a minute on the worker (its probe timeout); 40 s of
// expected transfer leaves room for a slower link than the bulk probe saw.
constexpr double kSweepBudgetS = 40;

// 64 B to `max_bytes` by factors of 4, without the sizes whose messages
// would not fit the budget at the probed round trip and bandwidth (at least
// the three smallest stay).
std::vector<int64_t> ChooseSizes(int64_t max_bytes, int repeats, const LinkMeasurement& m) {
  std::vector<int64_t> sizes;
  for (int64_t s = 64; s <= max_bytes; s *= 4) sizes.push_back(s);
  auto seconds = [&](const std::vector<int64_t>& chosen) {
    double total = 0;
    for (int64_t s : chosen) {
      const double transfer = m.bandwidth_mbit > 0 ? s * 8 / (m.bandwidth_mbit * 1e6) : 0;
      total += (repeats + 1) * (m.rtt_ms_median / 1e3 + transfer);
    }
    return total;
  };
  while (sizes.size() > 3 && seconds(sizes) > kSweepBudgetS) sizes.pop_back();
  return sizes;
}

// Back-to-back messages for the per-message overhead, as the probe op's.
constexpr int kBurst = 20;

// The address `client`'s worker takes `backend`'s links on ("host:port"),
// empty for a backend with no fixed port (torch: a per-run rendezvous).
Result<std::string> BackendEndpoint(WorkerClient& client, const std::string& backend) {
  PP_ASSIGN_OR_RETURN(WorkerInfo info, client.Info());
  auto port = info.backend_ports.find(backend);
  if (port == info.backend_ports.end()) {
    return Status::InvalidArgument(fmt::format("worker {} does not offer the {} backend",
                                               client.endpoint().ToString(), backend));
  }
  return port->second ? Endpoint{client.endpoint().host, port->second}.ToString() : "";
}

// The size sweep through `backend`'s own links from `a` to `b`: a run of
// links only (docs/protocol.md, "probe_backend"), ended on both however it
// goes.
Result<MessageSizeProbe> ProbeBackendSizes(WorkerClient& a, WorkerClient& b,
                                           const std::string& backend,
                                           const std::vector<int64_t>& sizes, int repeats) {
  PP_ASSIGN_OR_RETURN(const std::string a_link, BackendEndpoint(a, backend));
  PP_ASSIGN_OR_RETURN(const std::string b_link, BackendEndpoint(b, backend));
  // Any positive id; random, so that a link left from an earlier probe or run
  // never joins this one.
  std::mt19937_64 random(std::random_device{}());
  const int64_t run_id = static_cast<int64_t>(random() >> 2) + 1;
  auto run = [&]() -> Result<MessageSizeProbe> {
    PP_RETURN_IF_ERROR(a.BeginBackendProbe(backend, run_id, 0, a.endpoint().ToString(), b_link));
    PP_RETURN_IF_ERROR(b.BeginBackendProbe(backend, run_id, 1, b.endpoint().ToString(), a_link));
    PP_ASSIGN_OR_RETURN(const uint16_t rendezvous_port, a.OpenLinks(""));
    const std::string rendezvous =
        rendezvous_port ? Endpoint{a.endpoint().host, rendezvous_port}.ToString() : "";
    PP_RETURN_IF_ERROR(b.OpenLinks(rendezvous).status());
    PP_RETURN_IF_ERROR(
        b.StartBackendEcho(LinkProbeMessages(static_cast<int64_t>(sizes.size()), repeats, kBurst)));
    Result<MessageSizeProbe> timed = a.ProbeBackendSizes(sizes, repeats, kBurst);
    // A failed sweep: dropping A's links ends B's echo (its error is the
    // consequence; A's is the cause).
    if (!timed.ok()) (void)a.EndRun();
    const Status echoed = b.FinishBackendEcho();
    PP_RETURN_IF_ERROR(timed.status());
    PP_RETURN_IF_ERROR(echoed);
    return timed;
  };
  Result<MessageSizeProbe> swept = run();
  const Status a_ended = a.EndRun(), b_ended = b.EndRun();
  PP_RETURN_IF_ERROR(swept.status());
  PP_RETURN_IF_ERROR(a_ended);
  PP_RETURN_IF_ERROR(b_ended);
  return swept;
}

}  // namespace

LinkProbeCommand::LinkProbeCommand(CLI::App& app) {
  command_ = app.add_subcommand(
      "linkprobe",
      "Measure the link from one worker to another with messages of many sizes and fit "
      "time = overhead + bytes / rate + delay (a link.json for plan and validate)");
  command_
      ->add_option("--workers", workers_,
                   "A,B: the workers (HOST:PORT) at the two ends; "
                   "A sends to B")
      ->required();
  command_->add_option("--token-file", token_file_, "The workers' shared secret");
  command_
      ->add_option("--backend", backend_,
                   "The path measured: tcp (our framing on a probe connection), or grpc or "
                   "torch (a frame on the backend's data link, a credit back, as in a pipeline)")
      ->capture_default_str();
  command_->add_option("--repeat", repeats_, "Timed messages per size")
      ->capture_default_str()
      ->check(CLI::Range(1, 50));
  command_->add_option("--max-size", max_bytes_, "Largest message in bytes (64 B to 64 MiB)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1024}, int64_t{64} << 20));
  command_->add_option("-o,--output", output_, "Write the fitted link model to this file");
}

int LinkProbeCommand::Run() const {
  if (Status s = CheckBackend(backend_); !s.ok()) return Fail(s.WithContext("--backend"));
  const size_t comma = workers_.find(',');
  if (comma == std::string::npos || workers_.find(',', comma + 1) != std::string::npos) {
    return Fail(Status::InvalidArgument(
        fmt::format("--workers {}: give the two ends, A,B (HOST:PORT each)", workers_)));
  }
  Result<Endpoint> from = ParseEndpoint(workers_.substr(0, comma));
  Result<Endpoint> to = ParseEndpoint(workers_.substr(comma + 1));
  if (!from.ok()) return Fail(from.status().WithContext("--workers"));
  if (!to.ok()) return Fail(to.status().WithContext("--workers"));
  std::string secret;
  if (!token_file_.empty()) {
    Result<std::string> read = ReadSecretFile(token_file_);
    if (!read.ok()) return Fail(read.status());
    secret = *read;
  }
  Result<std::unique_ptr<WorkerClient>> client =
      WorkerClient::Connect(*from, std::chrono::seconds(10), secret);
  if (!client.ok()) return Fail(client.status());
  // The round trip and bandwidth first, to size the sweep.
  Result<LinkMeasurement> probed = (*client)->ProbeLink(*to);
  if (!probed.ok()) return Fail(probed.status());
  const std::vector<int64_t> sizes = ChooseSizes(max_bytes_, repeats_, *probed);
  std::cout << fmt::format(
      "{} -> {}: round trip {:.3f} ms (median of {}), {:.1f} Mbit/s in bulk; timing {} sizes x "
      "{} over {}\n",
      from->ToString(), to->ToString(), probed->rtt_ms_median, probed->pings,
      probed->bandwidth_mbit, sizes.size(), repeats_, backend_);
  Result<MessageSizeProbe> swept = Status::Internal("not probed");
  if (backend_ == "tcp") {
    swept = (*client)->ProbeMessageSizes(*to, sizes, repeats_, kBurst);
  } else {
    Result<std::unique_ptr<WorkerClient>> peer =
        WorkerClient::Connect(*to, std::chrono::seconds(10), secret);
    if (!peer.ok()) return Fail(peer.status());
    swept = ProbeBackendSizes(**client, **peer, backend_, sizes, repeats_);
  }
  if (!swept.ok()) return Fail(swept.status());
  Result<LinkFit> fit = FitLinkModel(swept->bytes, swept->rtt_ms, swept->burst_ms_per_message);
  if (!fit.ok()) return Fail(fit.status());

  std::map<int64_t, std::vector<double>> by_size;
  for (size_t i = 0; i < swept->bytes.size(); ++i)
    by_size[swept->bytes[i]].push_back(swept->rtt_ms[i]);
  std::cout << fmt::format("{:>10} {:>12} {:>12} {:>8}\n", "bytes", "rtt ms", "fit ms", "resid");
  for (auto& [size, rtts] : by_size) {
    std::sort(rtts.begin(), rtts.end());
    const size_t n = rtts.size();
    const double median = n % 2 ? rtts[n / 2] : (rtts[n / 2 - 1] + rtts[n / 2]) / 2;
    const double line = fit->intercept_ms + fit->slope_ms_per_mbyte * size / 1e6;
    std::cout << fmt::format("{:>10} {:>12.3f} {:>12.3f} {:>+7.1f}%\n", size, median, line,
                             100 * (median - line) / median);
  }
  const LinkModel& m = fit->model;
  std::cout << fmt::format(
      "fit: overhead {:.3f} ms per message, rate {}, delay {:.3f} ms one way; residuals: rms "
      "{:.3f} ms, largest {:.1f}% of a size's median\n",
      m.overhead_ms,
      m.rate_bits_per_s > 0 ? fmt::format("{:.1f} Mbit/s", m.rate_bits_per_s / 1e6) : "unlimited",
      m.delay_ms, fit->rms_residual_ms, 100 * fit->max_relative_residual);
  if (!output_.empty()) {
    std::ofstream out(output_);
    out << LinkFileText(*fit,
                        fmt::format("{} -> {} over {}", from->ToString(), to->ToString(), backend_),
                        backend_);
    if (!out.flush()) return Fail(Status::IoError(fmt::format("{}: cannot write it", output_)));
    std::cout << "link model written to " << output_ << "\n";
  }
  return 0;
}

}  // namespace paretopipe::cli
