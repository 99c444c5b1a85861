// Operations on a running container: exec, log reopening, resource updates; and signal names.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/fs.h"
#include "common/json_text.h"
#include "common/random_id.h"
#include "common/spawn.h"
#include "common/status.h"
#include "common/unique_fd.h"
#include "container/container_manager.h"
#include "oci/container_spec.h"
#include "oci/oom.h"

namespace berth::container {
namespace {

absl::StatusOr<store::ContainerPtr> runningContainer(store::Store& store, const std::string& id) {
  BERTH_ASSIGN_OR_RETURN(auto rec, store.getContainer(id));
  if (rec->state != store::ContainerState::kRunning) {
    return absl::FailedPreconditionError(absl::StrCat(
        "container ", id, " is not running (state ", store::toString(rec->state), ")"));
  }
  return rec;
}

// Runs `argv` and waits for it; stdout and stderr go to `output_path`. The error names the
// command with the output's last line.
absl::Status runCommand(const std::vector<std::string>& argv, const std::string& output_path) {
  UniqueFd output(::open(output_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!output.valid()) return lastErrnoStatus(absl::StrCat("create ", output_path));
  pid_t pid = 0;
  int err = spawnProcess(
      SpawnOptions{.argv = argv, .stdout_fd = output.get(), .stderr_fd = output.get()}, &pid);
  if (err != 0) return errnoStatus(err, absl::StrCat("run ", argv[0]));
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return lastErrnoStatus(absl::StrCat("wait for ", argv[0]));
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return absl::OkStatus();
  std::string out = readFile(output_path).value_or("");
  while (!out.empty() && std::isspace(static_cast<unsigned char>(out.back()))) out.pop_back();
  return absl::InternalError(absl::StrCat(argv[0], " ", argv.size() > 3 ? argv[3] : "",
                                          " failed (status ", status, "): ", out));
}

}  // namespace

absl::StatusOr<sandbox::TaskContext> ContainerManager::execTarget(
    const std::string& id, const std::vector<std::string>& cmd, shim::ExecOptions* opts) {
  if (cmd.empty()) return absl::InvalidArgumentError(absl::StrCat("exec in container ", id, ": cmd is empty"));
  BERTH_ASSIGN_OR_RETURN(auto rec, runningContainer(store_, id));
  opts->container_id = id;
  opts->exec_id = newObjectId().substr(0, 16);
  opts->args = cmd;
  return taskContext(rec->sandbox_id);
}

absl::StatusOr<shim::ExecResult> ContainerManager::execSync(const std::string& id,
                                                            const std::vector<std::string>& cmd,
                                                            absl::Duration timeout) {
  shim::ExecOptions opts;
  BERTH_ASSIGN_OR_RETURN(sandbox::TaskContext task, execTarget(id, cmd, &opts));
  opts.timeout_ms = absl::ToInt64Milliseconds(timeout);
  auto result = task.shim->exec(opts);
  if (!result.ok()) return annotate(result.status(), absl::StrCat("exec in container ", id));
  return result;
}

absl::StatusOr<std::unique_ptr<shim::StreamedProcess>> ContainerManager::execStreamed(
    const std::string& id, const std::vector<std::string>& cmd, bool tty, bool want_stdin) {
  shim::ExecOptions opts;
  BERTH_ASSIGN_OR_RETURN(sandbox::TaskContext task, execTarget(id, cmd, &opts));
  opts.tty = tty;
  auto proc = task.shim->execStreamed(opts, want_stdin);
  if (!proc.ok()) return annotate(proc.status(), absl::StrCat("exec in container ", id));
  return proc;
}

absl::StatusOr<std::unique_ptr<shim::Attachment>> ContainerManager::attach(const std::string& id,
                                                                           bool want_stdin,
                                                                           bool want_stdout,
                                                                           bool want_stderr) {
  BERTH_ASSIGN_OR_RETURN(auto rec, runningContainer(store_, id));
  BERTH_ASSIGN_OR_RETURN(sandbox::TaskContext task, taskContext(rec->sandbox_id));
  auto a = task.shim->attach(id, want_stdin, want_stdout, want_stderr);
  if (!a.ok()) return annotate(a.status(), absl::StrCat("attach to container ", id));
  return a;
}

absl::Status ContainerManager::attachStdinEnded(const std::string& id) {
  BERTH_ASSIGN_OR_RETURN(auto rec, runningContainer(store_, id));
  BERTH_ASSIGN_OR_RETURN(sandbox::TaskContext task, taskContext(rec->sandbox_id));
  return task.shim->closeStdinOnce(id);
}

absl::Status ContainerManager::reopenLog(const std::string& id) {
  BERTH_ASSIGN_OR_RETURN(auto rec, runningContainer(store_, id));
  BERTH_ASSIGN_OR_RETURN(sandbox::TaskContext task, taskContext(rec->sandbox_id));
  return task.shim->reopenLog(id);
}

absl::Status ContainerManager::updateResources(const std::string& id,
                                               const oci::ContainerResources& resources,
                                               const std::string& config_bytes) {
  auto l = live(id);
  BERTH_ASSIGN_OR_RETURN(
      bool took, beginOp(id, l, store::Pending::kUpdating,
                         [](const store::ContainerRecord& r) -> absl::StatusOr<Claim> {
                           BERTH_RETURN_IF_ERROR(idle(r, "updated"));
                           if (r.state != store::ContainerState::kCreated &&
                               r.state != store::ContainerState::kRunning) {
                             return absl::FailedPreconditionError(absl::StrCat(
                                 "container ", r.id, " is in state ", store::toString(r.state),
                                 ": only a created or running container can be updated"));
                           }
                           return Claim::kTake;
                         }));
  (void)took;  // always taken
  absl::Cleanup end = [this, &id, &l] { endOp(id, l, store::Pending::kUpdating); };
  BERTH_ASSIGN_OR_RETURN(auto rec, store_.getContainer(id));
  BERTH_ASSIGN_OR_RETURN(nlohmann::json limits, oci::linuxResources(resources, options_.host));
  nlohmann::json spec = parseJsonOr(rec->spec_json, nullptr);
  if (!spec.is_object()) return absl::InternalError(absl::StrCat("container ", id, ": stored spec is unreadable"));
  // The update carries the whole set: limits not named go back to the spec's defaults.
  nlohmann::json& res = spec["linux"]["resources"];
  for (const char* key : {"cpu", "memory", "hugepageLimits", "unified"}) res.erase(key);
  for (auto& [key, value] : limits.items()) res[key] = value;
  spec["process"]["oomScoreAdj"] = oci::clampOomScoreAdj(static_cast<int>(resources.oom_score_adj));

  BERTH_ASSIGN_OR_RETURN(sandbox::TaskContext task, taskContext(rec->sandbox_id));
  const std::string dir = options_.containers_dir + "/" + id;
  const std::string file = dir + "/update.json";
  BERTH_RETURN_IF_ERROR(writeFileAtomic(file, limits.dump(), 0600));
  absl::Status st = runCommand({task.runtime_path, "--root", task.runtime_root, "update",
                                "--resources", file, id},
                               dir + "/update.out");
  ::unlink(file.c_str());
  ::unlink((dir + "/update.out").c_str());
  if (!st.ok()) return annotate(st, absl::StrCat("update resources of container ", id));
  return store_
      .updateContainer(id,
                       [&](store::ContainerRecord& r) {
                         r.spec_json = spec.dump();
                         r.config_bytes = config_bytes;
                         if (r.pending == store::Pending::kUpdating) {
                           r.pending = store::Pending::kNone;
                         }
                         return absl::OkStatus();
                       })
      .status();
}

absl::StatusOr<int> parseSignal(const std::string& name) {
  int n = 0;
  if (absl::SimpleAtoi(name, &n)) {
    if (n > 0 && n < NSIG) return n;
    return absl::InvalidArgumentError(absl::StrCat("signal ", name, " is out of range"));
  }
  std::string s = absl::AsciiStrToUpper(name);
  if (absl::StartsWith(s, "SIG")) s = s.substr(3);
  static const std::pair<const char*, int> kSignals[] = {
      {"HUP", SIGHUP},     {"INT", SIGINT},       {"QUIT", SIGQUIT},   {"ILL", SIGILL},
      {"TRAP", SIGTRAP},   {"ABRT", SIGABRT},     {"IOT", SIGIOT},     {"BUS", SIGBUS},
      {"FPE", SIGFPE},     {"KILL", SIGKILL},     {"USR1", SIGUSR1},   {"SEGV", SIGSEGV},
      {"USR2", SIGUSR2},   {"PIPE", SIGPIPE},     {"ALRM", SIGALRM},   {"TERM", SIGTERM},
      {"STKFLT", SIGSTKFLT}, {"CHLD", SIGCHLD},   {"CLD", SIGCLD},     {"CONT", SIGCONT},
      {"STOP", SIGSTOP},
      {"TSTP", SIGTSTP},   {"TTIN", SIGTTIN},     {"TTOU", SIGTTOU},   {"URG", SIGURG},
      {"XCPU", SIGXCPU},   {"XFSZ", SIGXFSZ},     {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF},
      {"WINCH", SIGWINCH}, {"IO", SIGIO},         {"POLL", SIGPOLL},   {"PWR", SIGPWR},
      {"SYS", SIGSYS},
  };
  for (const auto& [n2, v] : kSignals) {
    if (s == n2) return v;
  }
  // SIGRTMIN+n and SIGRTMAX-n.
  for (auto [prefix, base] : {std::pair{"RTMIN", SIGRTMIN}, {"RTMAX", SIGRTMAX}}) {
    if (!absl::StartsWith(s, prefix)) continue;
    std::string rest = s.substr(std::string(prefix).size());
    int off = 0;
    if (rest.empty() || ((rest[0] == '+' || rest[0] == '-') && absl::SimpleAtoi(rest.substr(1), &off))) {
      int v = base + (!rest.empty() && rest[0] == '-' ? -off : off);
      if (v >= SIGRTMIN && v <= SIGRTMAX) return v;
    }
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown signal \"", name, "\""));
}

}  // namespace berth::container
