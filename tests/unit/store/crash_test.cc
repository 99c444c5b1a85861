// Crash test: a child process writes to the store as fast as it can and is SIGKILLed at an
// arbitrary moment, several times over. Each time the store must reopen intact, keep every
// write the child saw acknowledged, and show no half-applied (torn) operation.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <csignal>
#include <cstdint>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "gtest/gtest.h"
#include "store/store.h"
#include "test_util.h"

namespace berth::store::testing {
namespace {

constexpr int kContainersPerSandbox = 3;

// One store call. The child runs a deterministic sequence of them; the parent replays the
// same sequence on a model to know what the store must contain.
struct Op {
  enum Kind {
    kCreateSandbox,
    kCreateContainer,
    kSandboxReady,
    kContainerRunning,
    kContainerExited,
    kDeleteContainer,
    kDeleteSandbox,
  } kind;
  std::string id;
  std::string sandbox_id;
};

std::string sandboxId(int round, int i) { return absl::StrCat("r", round, "-s", i); }
std::string containerId(int round, int i, int k) {
  return absl::StrCat(sandboxId(round, i), "-c", k);
}

// Iteration i creates a sandbox with its containers, moves them through their states, and
// removes the sandbox of iteration i-2, so the store stays small while every kind of write
// keeps happening.
void appendIteration(int round, int i, std::vector<Op>& ops) {
  std::string sandbox = sandboxId(round, i);
  ops.push_back({Op::kCreateSandbox, sandbox, sandbox});
  for (int k = 0; k < kContainersPerSandbox; ++k) {
    ops.push_back({Op::kCreateContainer, containerId(round, i, k), sandbox});
  }
  ops.push_back({Op::kSandboxReady, sandbox, sandbox});
  for (int k = 0; k < kContainersPerSandbox; ++k) {
    ops.push_back({Op::kContainerRunning, containerId(round, i, k), sandbox});
  }
  ops.push_back({Op::kContainerExited, containerId(round, i, 0), sandbox});
  if (i >= 2) {
    std::string old = sandboxId(round, i - 2);
    for (int k = 0; k < kContainersPerSandbox; ++k) {
      ops.push_back({Op::kDeleteContainer, containerId(round, i - 2, k), old});
    }
    ops.push_back({Op::kDeleteSandbox, old, old});
  }
}

// The first `count` ops of a round.
std::vector<Op> roundOps(int round, size_t count) {
  std::vector<Op> ops;
  for (int i = 0; ops.size() < count; ++i) appendIteration(round, i, ops);
  ops.resize(count);
  return ops;
}

absl::Status apply(Store& store, const Op& op) {
  switch (op.kind) {
    case Op::kCreateSandbox: {
      SandboxRecord r = fullSandbox(op.id, op.id);
      r.state = SandboxState::kCreated;
      return store.createSandbox(r);
    }
    case Op::kCreateContainer: {
      ContainerRecord r = fullContainer(op.id, op.sandbox_id, op.id);
      r.state = ContainerState::kCreated;
      return store.createContainer(r);
    }
    case Op::kSandboxReady:
      return store
          .updateSandbox(op.id,
                         [](SandboxRecord& r) {
                           r.state = SandboxState::kReady;
                           r.pid = 1000;
                           return absl::OkStatus();
                         })
          .status();
    case Op::kContainerRunning:
    case Op::kContainerExited: {
      ContainerState to =
          op.kind == Op::kContainerRunning ? ContainerState::kRunning : ContainerState::kExited;
      return store
          .updateContainer(op.id,
                           [to](ContainerRecord& r) {
                             r.state = to;
                             r.exit_code = to == ContainerState::kExited ? 1 : 0;
                             return absl::OkStatus();
                           })
          .status();
    }
    case Op::kDeleteContainer:
      return store.deleteContainer(op.id);
    case Op::kDeleteSandbox:
      return store.deleteSandbox(op.id);
  }
  return absl::InternalError("unknown op");
}

// What the store holds, reduced to what the ops decide.
struct Model {
  std::map<std::string, SandboxState> sandboxes;
  std::map<std::string, std::pair<std::string, ContainerState>> containers;  // → sandbox, state

  bool operator==(const Model&) const = default;

  void apply(const Op& op) {
    switch (op.kind) {
      case Op::kCreateSandbox:
        sandboxes[op.id] = SandboxState::kCreated;
        break;
      case Op::kCreateContainer:
        containers[op.id] = {op.sandbox_id, ContainerState::kCreated};
        break;
      case Op::kSandboxReady:
        sandboxes[op.id] = SandboxState::kReady;
        break;
      case Op::kContainerRunning:
        containers[op.id].second = ContainerState::kRunning;
        break;
      case Op::kContainerExited:
        containers[op.id].second = ContainerState::kExited;
        break;
      case Op::kDeleteContainer:
        containers.erase(op.id);
        break;
      case Op::kDeleteSandbox:
        sandboxes.erase(op.id);
        break;
    }
  }

  static Model observe(const Store& store) {
    Model m;
    for (const SandboxPtr& s : store.listSandboxes()) m.sandboxes[s->id] = s->state;
    for (const ContainerPtr& c : store.listContainers()) {
      m.containers[c->id] = {c->sandbox_id, c->state};
    }
    return m;
  }

  std::string describe() const {
    std::ostringstream out;
    for (const auto& [id, state] : sandboxes) out << id << "=" << toString(state) << " ";
    for (const auto& [id, c] : containers) out << id << "=" << toString(c.second) << " ";
    return out.str();
  }
};

// The child: open the store and run ops until killed, reporting on `fd` (as a uint32 count)
// each op that the store acknowledged.
[[noreturn]] void runWriter(const std::string& path, int round, int fd) {
  absl::StatusOr<std::unique_ptr<Store>> store = Store::open(path);
  if (!store.ok()) _exit(3);
  std::vector<Op> ops;
  int next_iteration = 0;
  for (uint32_t n = 0; n < 1'000'000; ++n) {
    while (ops.size() <= n) appendIteration(round, next_iteration++, ops);
    if (!apply(**store, ops[n]).ok()) _exit(4);
    uint32_t acked = n + 1;
    if (write(fd, &acked, sizeof(acked)) != sizeof(acked)) _exit(5);
  }
  _exit(0);
}

class CrashTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(logging::init("warn", logging::Format::kText).ok()); }
  void TearDown() override { logging::init("info", logging::Format::kText).IgnoreError(); }
};

TEST_F(CrashTest, KilledWriterLeavesAConsistentStore) {
  TempDir dir;
  const std::string path = dir.file("store.db");
  Model committed;  // what the store held after the previous round
  uint32_t total_acked = 0;

  constexpr std::array<int, 5> kKillAfterMs = {200, 270, 340, 420, 500};
  for (int round = 0; round < static_cast<int>(kKillAfterMs.size()); ++round) {
    std::array<int, 2> fds{};
    ASSERT_EQ(pipe2(fds.data(), O_CLOEXEC), 0);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(fds[0]);
      runWriter(path, round, fds[1]);
    }
    close(fds[1]);
    usleep(kKillAfterMs[round] * 1000);
    kill(pid, SIGKILL);
    int wait_status = 0;
    ASSERT_EQ(waitpid(pid, &wait_status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(wait_status) && WTERMSIG(wait_status) == SIGKILL)
        << "writer failed on its own, status " << wait_status;

    uint32_t acked = 0;
    uint32_t value = 0;
    while (read(fds[0], &value, sizeof(value)) == sizeof(value)) acked = value;
    close(fds[0]);
    total_acked += acked;

    // The kill landed either before or after the commit of op number `acked`.
    std::vector<Op> ops = roundOps(round, acked + 1);
    Model before_next = committed;
    for (uint32_t n = 0; n < acked; ++n) before_next.apply(ops[n]);
    Model after_next = before_next;
    after_next.apply(ops[acked]);

    {
      RawDb raw(path);
      ASSERT_EQ(raw.query("PRAGMA integrity_check"), "ok") << "round " << round;
      ASSERT_EQ(raw.query("PRAGMA foreign_key_check"), "") << "round " << round;
    }
    absl::StatusOr<std::unique_ptr<Store>> store = Store::open(path);
    ASSERT_TRUE(store.ok()) << store.status();
    Model seen = Model::observe(**store);
    ASSERT_TRUE(seen == before_next || seen == after_next)
        << "round " << round << " after " << acked
        << " acknowledged ops\n  store:    " << seen.describe()
        << "\n  expected: " << before_next.describe() << "\n  or:       " << after_next.describe();

    // Names: every object holds its own name, and no reservation outlives its object.
    std::set<std::pair<std::string, std::string>> want_names;
    for (const SandboxPtr& s : (*store)->listSandboxes()) want_names.emplace(s->name, s->id);
    for (const ContainerPtr& c : (*store)->listContainers()) {
      want_names.emplace(c->name, c->id);
      EXPECT_TRUE((*store)->getSandbox(c->sandbox_id).ok()) << c->id;
    }
    std::vector<std::pair<std::string, std::string>> names = (*store)->listNames();
    EXPECT_EQ(std::set(names.begin(), names.end()), want_names) << "round " << round;
    committed = seen;
  }
  // Otherwise the test proved nothing.
  EXPECT_GT(total_acked, 20u);
  RecordProperty("acknowledged_ops", static_cast<int>(total_acked));
}

}  // namespace
}  // namespace berth::store::testing
