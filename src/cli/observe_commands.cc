// berthctl stats / statsp / events.
#include <cstdio>
#include <iostream>

#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "cli/commands.h"
#include "cli/output.h"

namespace berth::cli {
namespace {

namespace v1 = runtime::v1;

// "1.2MB" style sizes, as crictl prints them.
std::string humanBytes(uint64_t b) {
  const char* units[] = {"B", "kB", "MB", "GB", "TB"};
  double v = static_cast<double>(b);
  int u = 0;
  while (v >= 1000 && u < 4) {
    v /= 1000;
    ++u;
  }
  return u == 0 ? absl::StrFormat("%dB", b) : absl::StrFormat("%.3g%s", v, units[u]);
}

// Percent of one core.
std::string cpuPercent(const v1::CpuUsage& c) {
  return absl::StrFormat("%.2f", static_cast<double>(c.usage_nano_cores().value()) / 1e7);
}

struct StatsArgs {
  std::string id, pod;
  std::vector<std::string> labels;
};

bool parseLabels(const std::vector<std::string>& labels,
                 google::protobuf::Map<std::string, std::string>* out) {
  for (const auto& l : labels) {
    std::vector<std::string> kv = absl::StrSplit(l, absl::MaxSplits('=', 1));
    if (kv.size() != 2 || kv[0].empty()) {
      std::cerr << "--label takes key=value, not \"" << l << "\"\n";
      return false;
    }
    (*out)[kv[0]] = kv[1];
  }
  return true;
}

int runStats(const GlobalOptions& options, const StatsArgs& args) {
  auto format = commandOutputFormat(options.output);
  if (!format) return 2;
  v1::ListContainerStatsRequest req;
  req.mutable_filter()->set_id(args.id);
  req.mutable_filter()->set_pod_sandbox_id(args.pod);
  if (!parseLabels(args.labels, req.mutable_filter()->mutable_label_selector())) return 2;
  Client client(options);
  v1::ListContainerStatsResponse resp;
  auto ctx = client.context();
  grpc::Status st = client.runtime().ListContainerStats(ctx.get(), req, &resp);
  if (!st.ok()) return reportFailure("ListContainerStats", st);
  if (*format != OutputFormat::kTable) {
    std::cout << render(messageToJson(resp), *format);
    return 0;
  }
  std::printf("%-14s %-25s %-8s %-10s %-10s %s\n", "CONTAINER", "NAME", "CPU %", "MEM", "DISK",
              "INODES");
  for (const auto& s : resp.stats()) {
    std::printf("%-14s %-25s %-8s %-10s %-10s %llu\n", s.attributes().id().substr(0, 13).c_str(),
                s.attributes().metadata().name().c_str(), cpuPercent(s.cpu()).c_str(),
                humanBytes(s.memory().working_set_bytes().value()).c_str(),
                humanBytes(s.writable_layer().used_bytes().value()).c_str(),
                static_cast<unsigned long long>(s.writable_layer().inodes_used().value()));
  }
  return 0;
}

int runStatsp(const GlobalOptions& options, const StatsArgs& args) {
  auto format = commandOutputFormat(options.output);
  if (!format) return 2;
  v1::ListPodSandboxStatsRequest req;
  req.mutable_filter()->set_id(args.id);
  if (!parseLabels(args.labels, req.mutable_filter()->mutable_label_selector())) return 2;
  Client client(options);
  v1::ListPodSandboxStatsResponse resp;
  auto ctx = client.context();
  grpc::Status st = client.runtime().ListPodSandboxStats(ctx.get(), req, &resp);
  if (!st.ok()) return reportFailure("ListPodSandboxStats", st);
  if (*format != OutputFormat::kTable) {
    std::cout << render(messageToJson(resp), *format);
    return 0;
  }
  std::printf("%-14s %-30s %-8s %-10s %-10s %-10s %s\n", "POD", "NAME", "CPU %", "MEM", "RX",
              "TX", "CONTAINERS");
  for (const auto& s : resp.stats()) {
    const auto& lx = s.linux();
    std::printf("%-14s %-30s %-8s %-10s %-10s %-10s %d\n", s.attributes().id().substr(0, 13).c_str(),
                s.attributes().metadata().name().c_str(), cpuPercent(lx.cpu()).c_str(),
                humanBytes(lx.memory().working_set_bytes().value()).c_str(),
                humanBytes(lx.network().default_interface().rx_bytes().value()).c_str(),
                humanBytes(lx.network().default_interface().tx_bytes().value()).c_str(),
                lx.containers_size());
  }
  return 0;
}

const char* eventName(v1::ContainerEventType t) {
  switch (t) {
    case v1::CONTAINER_CREATED_EVENT:
      return "created";
    case v1::CONTAINER_STARTED_EVENT:
      return "started";
    case v1::CONTAINER_STOPPED_EVENT:
      return "stopped";
    case v1::CONTAINER_DELETED_EVENT:
      return "deleted";
    default:
      return "unknown";
  }
}

// Streams events until the daemon ends the stream or the user interrupts.
int runEvents(const GlobalOptions& options) {
  auto format = commandOutputFormat(options.output);
  if (!format) return 2;
  Client client(options);
  grpc::ClientContext ctx;  // no deadline: events flow until interrupted
  auto stream = client.runtime().GetContainerEvents(&ctx, v1::GetEventsRequest());
  v1::ContainerEventResponse ev;
  while (stream->Read(&ev)) {
    if (*format == OutputFormat::kTable) {
      std::printf("%s %-8s %s pod %s\n", timeAgo(ev.created_at()).c_str(),
                  eventName(ev.container_event_type()), ev.container_id().substr(0, 13).c_str(),
                  ev.pod_sandbox_status().id().substr(0, 13).c_str());
    } else {
      // One document per event: JSON on one line, YAML separated by "---".
      if (*format == OutputFormat::kJson) {
        std::cout << messageToJson(ev).dump() << "\n";
      } else {
        std::cout << "---\n" << render(messageToJson(ev), *format);
      }
    }
    std::fflush(stdout);
    std::cout.flush();
  }
  grpc::Status st = stream->Finish();
  if (!st.ok()) return reportFailure("GetContainerEvents", st);
  return 0;
}

}  // namespace

void addObserveCommands(CLI::App& app, const GlobalOptions& options, int& exit_code) {
  auto stats_args = std::make_shared<StatsArgs>();
  auto* stats = app.add_subcommand("stats", "Resource usage of running containers");
  stats->add_option("--id", stats_args->id, "container id or unique prefix");
  stats->add_option("-p,--pod", stats_args->pod, "only containers of this pod");
  stats->add_option("--label", stats_args->labels, "key=value (repeatable)");
  stats->callback([&, stats_args] { exit_code = runStats(options, *stats_args); });

  auto statsp_args = std::make_shared<StatsArgs>();
  auto* statsp = app.add_subcommand("statsp", "Resource usage of ready pods");
  statsp->add_option("--id", statsp_args->id, "pod id or unique prefix");
  statsp->add_option("--label", statsp_args->labels, "key=value (repeatable)");
  statsp->callback([&, statsp_args] { exit_code = runStatsp(options, *statsp_args); });

  auto* events = app.add_subcommand("events", "Follow container and pod lifecycle events");
  events->callback([&] { exit_code = runEvents(options); });
}

}  // namespace berth::cli
