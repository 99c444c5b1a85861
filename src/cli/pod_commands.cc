// berthctl runp / stopp / rmp / pods / inspectp.
#include <cstdio>
#include <iostream>

#include "absl/strings/str_split.h"
#include "cli/commands.h"
#include "cli/inspect.h"
#include "cli/output.h"

namespace berth::cli {
namespace {

namespace v1 = runtime::v1;

struct RunpArgs {
  std::string config_file;
  std::string runtime;
};

int runRunp(const GlobalOptions& options, const RunpArgs& args) {
  v1::RunPodSandboxRequest req;
  if (!readJsonMessage(args.config_file, "pod config", *req.mutable_config())) return 2;
  req.set_runtime_handler(args.runtime);
  Client client(options);
  v1::RunPodSandboxResponse resp;
  auto ctx = client.context();
  grpc::Status st = client.runtime().RunPodSandbox(ctx.get(), req, &resp);
  if (!st.ok()) return reportFailure("RunPodSandbox", st);
  std::cout << resp.pod_sandbox_id() << "\n";
  return 0;
}

int runStopp(const GlobalOptions& options, const std::vector<std::string>& ids, bool remove) {
  Client client(options);
  int rc = 0;
  for (const auto& id : ids) {
    auto ctx = client.context();
    grpc::Status st;
    if (remove) {
      v1::RemovePodSandboxRequest req;
      req.set_pod_sandbox_id(id);
      v1::RemovePodSandboxResponse resp;
      st = client.runtime().RemovePodSandbox(ctx.get(), req, &resp);
    } else {
      v1::StopPodSandboxRequest req;
      req.set_pod_sandbox_id(id);
      v1::StopPodSandboxResponse resp;
      st = client.runtime().StopPodSandbox(ctx.get(), req, &resp);
    }
    if (!st.ok()) {
      rc = reportFailure(remove ? "RemovePodSandbox" : "StopPodSandbox", st);
      continue;
    }
    std::cout << (remove ? "Removed sandbox " : "Stopped sandbox ") << id << "\n";
  }
  return rc;
}

struct PodsArgs {
  std::string id, state, name, ns;
  std::vector<std::string> labels;
  bool quiet = false;
};

int runPods(const GlobalOptions& options, const PodsArgs& args) {
  auto format = commandOutputFormat(options.output);
  if (!format) return 2;
  v1::ListPodSandboxRequest req;
  auto* f = req.mutable_filter();
  f->set_id(args.id);
  if (!args.state.empty()) {
    std::string s = args.state;
    for (auto& ch : s) ch = static_cast<char>(std::tolower(ch));
    if (s == "ready" || s == "sandbox_ready") {
      f->mutable_state()->set_state(v1::SANDBOX_READY);
    } else if (s == "notready" || s == "sandbox_notready") {
      f->mutable_state()->set_state(v1::SANDBOX_NOTREADY);
    } else {
      std::cerr << "state \"" << args.state << "\" is not ready or notready\n";
      return 2;
    }
  }
  for (const auto& l : args.labels) {
    std::pair<std::string, std::string> kv = absl::StrSplit(l, absl::MaxSplits('=', 1));
    (*f->mutable_label_selector())[kv.first] = kv.second;
  }
  Client client(options);
  v1::ListPodSandboxResponse resp;
  auto ctx = client.context();
  grpc::Status st = client.runtime().ListPodSandbox(ctx.get(), req, &resp);
  if (!st.ok()) return reportFailure("ListPodSandbox", st);
  v1::ListPodSandboxResponse shown;
  for (const auto& p : resp.items()) {
    if (!args.name.empty() && p.metadata().name().find(args.name) == std::string::npos) continue;
    if (!args.ns.empty() && p.metadata().namespace_() != args.ns) continue;
    *shown.add_items() = p;
  }
  if (args.quiet) {
    for (const auto& p : shown.items()) std::cout << p.id() << "\n";
    return 0;
  }
  if (*format != OutputFormat::kTable) {
    std::cout << render(messageToJson(shown), *format);
    return 0;
  }
  std::printf("%-14s %-18s %-10s %-30s %-20s %-8s %s\n", "POD ID", "CREATED", "STATE", "NAME",
              "NAMESPACE", "ATTEMPT", "RUNTIME");
  for (const auto& p : shown.items()) {
    std::printf("%-14s %-18s %-10s %-30s %-20s %-8u %s\n", p.id().substr(0, 13).c_str(),
                timeAgo(p.created_at()).c_str(),
                p.state() == v1::SANDBOX_READY ? "Ready" : "NotReady",
                p.metadata().name().c_str(), p.metadata().namespace_().c_str(),
                p.metadata().attempt(),
                p.runtime_handler().empty() ? "(default)" : p.runtime_handler().c_str());
  }
  return 0;
}

int runInspectp(const GlobalOptions& options, const std::vector<std::string>& ids) {
  return inspectEach<v1::PodSandboxStatusResponse>(
      options, ids, "PodSandboxStatus",
      [](Client& client, grpc::ClientContext* ctx, const std::string& id,
         v1::PodSandboxStatusResponse* resp) {
        v1::PodSandboxStatusRequest req;
        req.set_pod_sandbox_id(id);
        req.set_verbose(true);
        return client.runtime().PodSandboxStatus(ctx, req, resp);
      });
}

}  // namespace

void addPodCommands(CLI::App& app, const GlobalOptions& options, int& exit_code) {
  auto runp_args = std::make_shared<RunpArgs>();
  auto* runp = app.add_subcommand("runp", "Run a pod sandbox from a JSON PodSandboxConfig");
  runp->add_option("config", runp_args->config_file, "pod config file (JSON)")->required();
  runp->add_option("--runtime", runp_args->runtime, "runtime handler");
  runp->callback([&, runp_args] { exit_code = runRunp(options, *runp_args); });

  auto stop_ids = std::make_shared<std::vector<std::string>>();
  auto* stopp = app.add_subcommand("stopp", "Stop pod sandboxes");
  stopp->add_option("pod", *stop_ids, "pod ids or unique prefixes")->required();
  stopp->callback([&, stop_ids] { exit_code = runStopp(options, *stop_ids, false); });

  auto rm_ids = std::make_shared<std::vector<std::string>>();
  auto* rmp = app.add_subcommand("rmp", "Remove pod sandboxes");
  rmp->add_option("pod", *rm_ids, "pod ids or unique prefixes")->required();
  rmp->callback([&, rm_ids] { exit_code = runStopp(options, *rm_ids, true); });

  auto pods_args = std::make_shared<PodsArgs>();
  auto* pods = app.add_subcommand("pods", "List pod sandboxes");
  pods->add_option("--id", pods_args->id, "id or unique prefix");
  pods->add_option("--state", pods_args->state, "ready or notready");
  pods->add_option("--name", pods_args->name, "name contains");
  pods->add_option("--namespace", pods_args->ns, "Kubernetes namespace");
  pods->add_option("--label", pods_args->labels, "key=value (repeatable)");
  pods->add_flag("-q,--quiet", pods_args->quiet, "only ids");
  pods->callback([&, pods_args] { exit_code = runPods(options, *pods_args); });

  auto inspect_ids = std::make_shared<std::vector<std::string>>();
  auto* inspectp = app.add_subcommand("inspectp", "Show pod sandbox status and verbose info");
  inspectp->add_option("pod", *inspect_ids, "pod ids or unique prefixes")->required();
  inspectp->callback([&, inspect_ids] { exit_code = runInspectp(options, *inspect_ids); });
}

}  // namespace berth::cli
