// Tests for pod sandboxes, containers and their names in the store: round trips, recovery,
// state-machine checks, id prefixes and the all-or-nothing behaviour of each write.
#include "store/store.h"

#include <sys/stat.h>

#include <atomic>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "store_test_base.h"

namespace berth::store::testing {
namespace {

using ::testing::HasSubstr;

class StoreTest : public StoreTestBase {};

TEST_F(StoreTest, SandboxRoundTripSurvivesReopen) {
  SandboxRecord sandbox = fullSandbox(hexId('a'));
  ASSERT_TRUE(store_->createSandbox(sandbox).ok());
  ASSERT_EQ(**store_->getSandbox(sandbox.id), sandbox);

  reopen();
  absl::StatusOr<SandboxPtr> loaded = store_->getSandbox(sandbox.id);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(**loaded, sandbox);
  ASSERT_EQ(store_->listSandboxes().size(), 1u);
  EXPECT_EQ(*store_->nameOwner(sandbox.name), sandbox.id);
}

TEST_F(StoreTest, ContainerRoundTripSurvivesReopen) {
  SandboxRecord sandbox = fullSandbox(hexId('a'));
  ContainerRecord container = fullContainer(hexId('c'), sandbox.id);
  ASSERT_TRUE(store_->createSandbox(sandbox).ok());
  ASSERT_TRUE(store_->createContainer(container).ok());
  ASSERT_EQ(**store_->getContainer(container.id), container);

  reopen();
  absl::StatusOr<ContainerPtr> loaded = store_->getContainer(container.id);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(**loaded, container);
  ASSERT_EQ(store_->listContainers(sandbox.id).size(), 1u);
  EXPECT_TRUE(store_->listContainers(hexId('0')).empty());
  EXPECT_EQ(*store_->nameOwner(container.name), container.id);
}

TEST_F(StoreTest, ListsAreSortedByIdAndGroupedBySandbox) {
  for (char c : {'3', '1', '2'}) {
    ASSERT_TRUE(store_->createSandbox(fullSandbox(hexId(c), std::string("pod") + c)).ok());
  }
  ASSERT_TRUE(store_->createContainer(fullContainer(hexId('b'), hexId('1'), "x")).ok());
  ASSERT_TRUE(store_->createContainer(fullContainer(hexId('a'), hexId('1'), "y")).ok());
  ASSERT_TRUE(store_->createContainer(fullContainer(hexId('c'), hexId('2'), "z")).ok());

  std::vector<SandboxPtr> sandboxes = store_->listSandboxes();
  ASSERT_EQ(sandboxes.size(), 3u);
  EXPECT_EQ(sandboxes[0]->id, hexId('1'));
  EXPECT_EQ(sandboxes[2]->id, hexId('3'));
  std::vector<ContainerPtr> in_first = store_->listContainers(hexId('1'));
  ASSERT_EQ(in_first.size(), 2u);
  EXPECT_EQ(in_first[0]->id, hexId('a'));
  EXPECT_EQ(in_first[1]->id, hexId('b'));
  EXPECT_EQ(store_->listContainers().size(), 3u);
}

TEST_F(StoreTest, CreateWithExistingIdIsAlreadyExists) {
  SandboxRecord sandbox = fullSandbox(hexId('a'));
  ASSERT_TRUE(store_->createSandbox(sandbox).ok());
  absl::Status again = store_->createSandbox(fullSandbox(hexId('a'), "other"));
  EXPECT_EQ(again.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(again.message(), HasSubstr(hexId('a')));

  ContainerRecord container = fullContainer(hexId('c'), sandbox.id);
  ASSERT_TRUE(store_->createContainer(container).ok());
  absl::Status dup = store_->createContainer(fullContainer(hexId('c'), sandbox.id, "other"));
  EXPECT_EQ(dup.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(dup.message(), HasSubstr(hexId('c')));
}

TEST_F(StoreTest, CreateContainerNeedsItsSandbox) {
  absl::Status status = store_->createContainer(fullContainer(hexId('c'), hexId('9')));
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(status.message(), HasSubstr("pod sandbox \"" + hexId('9') + "\" not found"));
  EXPECT_TRUE(store_->listNames().empty());
}

TEST_F(StoreTest, UpdatePersistsAndPublishes) {
  SandboxRecord sandbox = fullSandbox(hexId('a'));
  sandbox.state = SandboxState::kCreated;
  ASSERT_TRUE(store_->createSandbox(sandbox).ok());
  absl::StatusOr<SandboxPtr> updated = store_->updateSandbox(sandbox.id, [](SandboxRecord& r) {
    r.state = SandboxState::kReady;
    r.pid = 99;
    r.ips = {"10.0.0.1"};
    return absl::OkStatus();
  });
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ((*updated)->state, SandboxState::kReady);
  EXPECT_EQ((*store_->getSandbox(sandbox.id))->pid, 99);

  ContainerRecord container = fullContainer(hexId('c'), sandbox.id);
  container.state = ContainerState::kCreated;
  ASSERT_TRUE(store_->createContainer(container).ok());
  ASSERT_TRUE(store_
                  ->updateContainer(container.id,
                                    [](ContainerRecord& r) {
                                      r.state = ContainerState::kRunning;
                                      r.config_bytes = std::string(3, '\0');
                                      return absl::OkStatus();
                                    })
                  .ok());

  reopen();
  SandboxPtr sandbox_after = *store_->getSandbox(sandbox.id);
  EXPECT_EQ(sandbox_after->state, SandboxState::kReady);
  EXPECT_EQ(sandbox_after->ips, std::vector<std::string>{"10.0.0.1"});
  ContainerPtr container_after = *store_->getContainer(container.id);
  EXPECT_EQ(container_after->state, ContainerState::kRunning);
  EXPECT_EQ(container_after->config_bytes, std::string(3, '\0'));
}

TEST_F(StoreTest, ReadersKeepTheirSnapshotAcrossUpdates) {
  SandboxRecord sandbox = fullSandbox(hexId('a'));
  ASSERT_TRUE(store_->createSandbox(sandbox).ok());
  SandboxPtr before = *store_->getSandbox(sandbox.id);
  ASSERT_TRUE(store_
                  ->updateSandbox(sandbox.id,
                                  [](SandboxRecord& r) {
                                    r.state = SandboxState::kNotReady;
                                    return absl::OkStatus();
                                  })
                  .ok());
  EXPECT_EQ(before->state, SandboxState::kReady);
  EXPECT_EQ((*store_->getSandbox(sandbox.id))->state, SandboxState::kNotReady);
}

struct SandboxTransitionCase {
  SandboxState from;
  SandboxState to;
};

class SandboxBadTransitionTest : public StoreTestBase,
                                 public ::testing::WithParamInterface<SandboxTransitionCase> {};

TEST_P(SandboxBadTransitionTest, FailsAndChangesNothing) {
  SandboxRecord sandbox = fullSandbox(hexId('a'));
  sandbox.state = GetParam().from;
  ASSERT_TRUE(store_->createSandbox(sandbox).ok());
  SandboxPtr before = *store_->getSandbox(sandbox.id);

  absl::StatusOr<SandboxPtr> result = store_->updateSandbox(sandbox.id, [](SandboxRecord& r) {
    r.state = GetParam().to;
    r.pid = 1;  // a field change riding along must not land either
    return absl::OkStatus();
  });
  ASSERT_EQ(result.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(result.status().message(), HasSubstr(sandbox.id));
  EXPECT_THAT(result.status().message(), HasSubstr(std::string(toString(GetParam().from))));
  EXPECT_THAT(result.status().message(), HasSubstr(std::string(toString(GetParam().to))));
  EXPECT_EQ(*store_->getSandbox(sandbox.id), before);  // the very same object

  reopen();
  EXPECT_EQ(**store_->getSandbox(sandbox.id), sandbox);
}

INSTANTIATE_TEST_SUITE_P(
    Refused, SandboxBadTransitionTest,
    ::testing::Values(SandboxTransitionCase{SandboxState::kNotReady, SandboxState::kReady},
                      SandboxTransitionCase{SandboxState::kReady, SandboxState::kCreated},
                      SandboxTransitionCase{SandboxState::kNotReady, SandboxState::kUnknown}));

struct ContainerTransitionCase {
  ContainerState from;
  ContainerState to;
};

class ContainerBadTransitionTest : public StoreTestBase,
                                   public ::testing::WithParamInterface<ContainerTransitionCase> {};

TEST_P(ContainerBadTransitionTest, FailsAndChangesNothing) {
  SandboxRecord sandbox = fullSandbox(hexId('a'));
  ContainerRecord container = fullContainer(hexId('c'), sandbox.id);
  container.state = GetParam().from;
  ASSERT_TRUE(store_->createSandbox(sandbox).ok());
  ASSERT_TRUE(store_->createContainer(container).ok());

  absl::StatusOr<ContainerPtr> result =
      store_->updateContainer(container.id, [](ContainerRecord& r) {
        r.state = GetParam().to;
        r.exit_code = 1;
        return absl::OkStatus();
      });
  ASSERT_EQ(result.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(result.status().message(), HasSubstr(container.id));
  EXPECT_EQ(**store_->getContainer(container.id), container);

  reopen();
  EXPECT_EQ(**store_->getContainer(container.id), container);
}

INSTANTIATE_TEST_SUITE_P(
    Refused, ContainerBadTransitionTest,
    ::testing::Values(ContainerTransitionCase{ContainerState::kExited, ContainerState::kRunning},
                      ContainerTransitionCase{ContainerState::kRunning, ContainerState::kCreated},
                      ContainerTransitionCase{ContainerState::kExited, ContainerState::kUnknown}));

// A pending operation is persisted; a second one is refused by the store (FailedPrecondition
// naming both), a removal takes over, and the record is unchanged after a refusal.
TEST_F(StoreTest, PendingOperationsArePersistedAndASecondOneIsRefused) {
  SandboxRecord sandbox = fullSandbox(hexId('a'));
  sandbox.pending = Pending::kNone;
  ContainerRecord container = fullContainer(hexId('c'), sandbox.id);
  container.pending = Pending::kStarting;
  ASSERT_TRUE(store_->createSandbox(sandbox).ok());
  ASSERT_TRUE(store_->createContainer(container).ok());
  auto set = [&](Pending p) {
    return store_
        ->updateContainer(container.id,
                          [p](ContainerRecord& r) {
                            r.pending = p;
                            return absl::OkStatus();
                          })
        .status();
  };
  absl::Status st = set(Pending::kStopping);
  ASSERT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(st.message(), HasSubstr("is starting (not stopping)"));
  reopen();
  EXPECT_EQ((*store_->getContainer(container.id))->pending, Pending::kStarting);
  EXPECT_TRUE(set(Pending::kRemoving).ok());
  reopen();
  EXPECT_EQ((*store_->getContainer(container.id))->pending, Pending::kRemoving);

  auto pod = store_->updateSandbox(sandbox.id, [](SandboxRecord& r) {
    r.pending = Pending::kStopping;
    return absl::OkStatus();
  });
  ASSERT_TRUE(pod.ok());
  auto refused = store_->updateSandbox(sandbox.id, [](SandboxRecord& r) {
    r.pending = Pending::kUpdating;
    return absl::OkStatus();
  });
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  reopen();
  EXPECT_EQ((*store_->getSandbox(sandbox.id))->pending, Pending::kStopping);
}

TEST_F(StoreTest, UpdateFnErrorAndIdentityChangesAreRefused) {
  SandboxRecord sandbox = fullSandbox(hexId('a'));
  ASSERT_TRUE(store_->createSandbox(sandbox).ok());

  absl::StatusOr<SandboxPtr> failed = store_->updateSandbox(sandbox.id, [](SandboxRecord& r) {
    r.pid = 7;
    return absl::AbortedError("caller gave up");
  });
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kAborted);

  absl::StatusOr<SandboxPtr> renamed = store_->updateSandbox(sandbox.id, [](SandboxRecord& r) {
    r.name = "stolen";
    return absl::OkStatus();
  });
  EXPECT_EQ(renamed.status().code(), absl::StatusCode::kInvalidArgument);

  ContainerRecord container = fullContainer(hexId('c'), sandbox.id);
  ASSERT_TRUE(store_->createContainer(container).ok());
  absl::StatusOr<ContainerPtr> moved = store_->updateContainer(container.id, [](auto& r) {
    r.sandbox_id = hexId('b');
    return absl::OkStatus();
  });
  EXPECT_EQ(moved.status().code(), absl::StatusCode::kInvalidArgument);

  reopen();
  EXPECT_EQ(**store_->getSandbox(sandbox.id), sandbox);
  EXPECT_EQ(**store_->getContainer(container.id), container);
}

TEST_F(StoreTest, MissingObjectsAreNotFoundAndDeletesAreIdempotent) {
  auto noop = [](auto&) { return absl::OkStatus(); };
  absl::Status sandbox = store_->updateSandbox(hexId('a'), noop).status();
  EXPECT_EQ(sandbox.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(sandbox.message(), "pod sandbox \"" + hexId('a') + "\" not found");
  absl::Status container = store_->getContainer("nope").status();
  EXPECT_EQ(container.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(container.message(), "container \"nope\" not found");
  EXPECT_EQ(store_->updateContainer("nope", noop).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(store_->deleteSandbox(hexId('a')).ok());
  EXPECT_TRUE(store_->deleteContainer(hexId('c')).ok());
}

TEST_F(StoreTest, DeleteRemovesObjectAndReleasesName) {
  SandboxRecord sandbox = fullSandbox(hexId('a'));
  ContainerRecord container = fullContainer(hexId('c'), sandbox.id);
  ASSERT_TRUE(store_->createSandbox(sandbox).ok());
  ASSERT_TRUE(store_->createContainer(container).ok());

  absl::Status busy = store_->deleteSandbox(sandbox.id);
  EXPECT_EQ(busy.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(busy.message(), HasSubstr("1 container"));

  ASSERT_TRUE(store_->deleteContainer(container.id).ok());
  ASSERT_TRUE(store_->deleteContainer(container.id).ok());
  ASSERT_TRUE(store_->deleteSandbox(sandbox.id).ok());
  ASSERT_TRUE(store_->deleteSandbox(sandbox.id).ok());
  EXPECT_TRUE(store_->listNames().empty());
  EXPECT_TRUE(store_->listContainers(sandbox.id).empty());

  reopen();
  EXPECT_TRUE(store_->listSandboxes().empty());
  EXPECT_TRUE(store_->listContainers().empty());
  EXPECT_TRUE(store_->listNames().empty());
  // The names are free for a new attempt.
  EXPECT_TRUE(store_->createSandbox(fullSandbox(hexId('b'))).ok());
}

struct PrefixCase {
  std::string prefix;
  absl::StatusCode code;
  std::string want;  // the resolved id, or a substring of the error message
};

class PrefixTest : public StoreTestBase, public ::testing::WithParamInterface<PrefixCase> {
 protected:
  // Ids chosen so that one is a prefix of another ("abc" / "abcdef…").
  void SetUp() override {
    StoreTestBase::SetUp();
    int n = 0;
    for (const char* id : {"abc", "abcdef01", "abcdef02", "abd123", "f00d"}) {
      std::string pod = "pod" + std::to_string(n++);
      ASSERT_TRUE(store_->createSandbox(fullSandbox(id, pod)).ok());
      ASSERT_TRUE(store_->createContainer(fullContainer(id, id, pod)).ok());
    }
  }
};

TEST_P(PrefixTest, ResolvesSandboxAndContainerIds) {
  const PrefixCase& c = GetParam();
  for (bool sandbox : {true, false}) {
    absl::StatusOr<std::string> got =
        sandbox ? store_->resolveSandboxId(c.prefix) : store_->resolveContainerId(c.prefix);
    ASSERT_EQ(got.status().code(), c.code) << c.prefix << " " << got.status();
    if (got.ok()) {
      EXPECT_EQ(*got, c.want);
    } else {
      EXPECT_THAT(got.status().message(), HasSubstr(c.want));
      EXPECT_THAT(got.status().message(), HasSubstr(sandbox ? "pod sandbox" : "container"));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, PrefixTest,
    ::testing::Values(PrefixCase{"abcdef01", absl::StatusCode::kOk, "abcdef01"},  // exact
                      PrefixCase{"abc", absl::StatusCode::kOk, "abc"},  // exact beats prefix
                      PrefixCase{"abd", absl::StatusCode::kOk, "abd123"},
                      PrefixCase{"f", absl::StatusCode::kOk, "f00d"},
                      PrefixCase{"abcdef", absl::StatusCode::kInvalidArgument,
                                 "\"abcdef\" is ambiguous"},
                      PrefixCase{"ab", absl::StatusCode::kInvalidArgument, "ambiguous"},
                      PrefixCase{"abe", absl::StatusCode::kNotFound, "\"abe\" not found"},
                      PrefixCase{"zzz", absl::StatusCode::kNotFound, "\"zzz\" not found"},
                      PrefixCase{"", absl::StatusCode::kInvalidArgument, "empty"}));

TEST_F(StoreTest, NameReservationConflictsNameTheOwner) {
  ASSERT_TRUE(store_->reserveName("web_default_uid_0", "owner-a").ok());
  EXPECT_TRUE(store_->reserveName("web_default_uid_0", "owner-a").ok());  // same owner
  absl::Status taken = store_->reserveName("web_default_uid_0", "owner-b");
  EXPECT_EQ(taken.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(taken.message(), HasSubstr("\"owner-a\""));
  EXPECT_EQ(*store_->nameOwner("web_default_uid_0"), "owner-a");

  // A sandbox cannot take a name someone else holds, and nothing of it is written.
  SandboxRecord sandbox = fullSandbox(hexId('a'));
  sandbox.name = "web_default_uid_0";
  absl::Status create = store_->createSandbox(sandbox);
  EXPECT_EQ(create.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(create.message(), HasSubstr("owner-a"));
  EXPECT_EQ(store_->getSandbox(sandbox.id).status().code(), absl::StatusCode::kNotFound);

  reopen();
  EXPECT_EQ(*store_->nameOwner("web_default_uid_0"), "owner-a");
  ASSERT_TRUE(store_->releaseName("web_default_uid_0").ok());
  ASSERT_TRUE(store_->releaseName("web_default_uid_0").ok());  // idempotent
  EXPECT_EQ(store_->nameOwner("web_default_uid_0").status().code(), absl::StatusCode::kNotFound);
  reopen();
  EXPECT_TRUE(store_->listNames().empty());
}

TEST_F(StoreTest, NameReservedEarlyByTheSameIdIsTakenOver) {
  // RunPodSandbox reserves the name before its slow work, then creates the record.
  SandboxRecord sandbox = fullSandbox(hexId('a'));
  ASSERT_TRUE(store_->reserveName(sandbox.name, sandbox.id).ok());
  ASSERT_TRUE(store_->createSandbox(sandbox).ok());
  // A live object's name cannot be released behind its back.
  absl::Status release = store_->releaseName(sandbox.name);
  EXPECT_EQ(release.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(release.message(), HasSubstr(sandbox.id));
  ASSERT_TRUE(store_->deleteSandbox(sandbox.id).ok());
  EXPECT_TRUE(store_->listNames().empty());
}

// Failure injection: a trigger, added through a second connection, makes one statement of
// the transaction fail after the others succeeded.
TEST_F(StoreTest, CreateSandboxAndNameAreOneTransaction) {
  RawDb raw(dbPath());
  ASSERT_EQ(raw.exec("CREATE TRIGGER fail BEFORE INSERT ON names "
                     "BEGIN SELECT RAISE(ABORT, 'injected failure'); END;"),
            "");
  SandboxRecord sandbox = fullSandbox(hexId('a'));
  absl::Status status = store_->createSandbox(sandbox);
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(status.message(), HasSubstr("injected failure"));
  EXPECT_THAT(status.message(), HasSubstr(sandbox.id));
  EXPECT_EQ(store_->getSandbox(sandbox.id).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(raw.query("SELECT count(*) FROM sandboxes"), "0");

  ASSERT_EQ(raw.exec("DROP TRIGGER fail"), "");
  reopen();
  EXPECT_TRUE(store_->listSandboxes().empty());
  EXPECT_TRUE(store_->listNames().empty());
  EXPECT_TRUE(store_->createSandbox(sandbox).ok());
}

TEST_F(StoreTest, DeleteContainerAndNameAreOneTransaction) {
  SandboxRecord sandbox = fullSandbox(hexId('a'));
  ContainerRecord container = fullContainer(hexId('c'), sandbox.id);
  ASSERT_TRUE(store_->createSandbox(sandbox).ok());
  ASSERT_TRUE(store_->createContainer(container).ok());
  RawDb raw(dbPath());
  ASSERT_EQ(raw.exec("CREATE TRIGGER fail BEFORE DELETE ON names "
                     "BEGIN SELECT RAISE(ABORT, 'injected failure'); END;"),
            "");
  EXPECT_FALSE(store_->deleteContainer(container.id).ok());
  EXPECT_EQ(**store_->getContainer(container.id), container);
  EXPECT_EQ(*store_->nameOwner(container.name), container.id);
  EXPECT_EQ(raw.query("SELECT count(*) FROM containers"), "1");
}

TEST_F(StoreTest, FailedCommitLeavesMemoryUnchanged) {
  SandboxRecord sandbox = fullSandbox(hexId('a'));
  ASSERT_TRUE(store_->createSandbox(sandbox).ok());
  RawDb raw(dbPath());
  ASSERT_EQ(raw.exec("CREATE TRIGGER fail BEFORE UPDATE ON sandboxes "
                     "BEGIN SELECT RAISE(ABORT, 'disk says no'); END;"),
            "");
  absl::StatusOr<SandboxPtr> result = store_->updateSandbox(sandbox.id, [](SandboxRecord& r) {
    r.state = SandboxState::kNotReady;
    return absl::OkStatus();
  });
  EXPECT_THAT(result.status().message(), HasSubstr("disk says no"));
  EXPECT_EQ((*store_->getSandbox(sandbox.id))->state, SandboxState::kReady);
}

TEST_F(StoreTest, ReadersRunAlongsideWriters) {
  SandboxRecord sandbox = fullSandbox(hexId('a'));
  sandbox.pid = 0;
  ASSERT_TRUE(store_->createSandbox(sandbox).ok());
  std::atomic<bool> done{false};
  std::vector<std::thread> readers;
  readers.reserve(4);
  for (int i = 0; i < 4; ++i) {
    readers.emplace_back([&] {
      int32_t last = 0;
      while (!done.load()) {
        SandboxPtr seen = *store_->getSandbox(sandbox.id);
        EXPECT_GE(seen->pid, last);  // published in commit order, never torn
        last = seen->pid;
        EXPECT_EQ(store_->listSandboxes().size(), 1u);
      }
    });
  }
  for (int32_t pid = 1; pid <= 20; ++pid) {
    ASSERT_TRUE(store_
                    ->updateSandbox(sandbox.id,
                                    [pid](SandboxRecord& r) {
                                      r.pid = pid;
                                      return absl::OkStatus();
                                    })
                    .ok());
  }
  done = true;
  for (std::thread& t : readers) t.join();
  EXPECT_EQ((*store_->getSandbox(sandbox.id))->pid, 20);
}

TEST_F(StoreTest, DatabaseFileIsPrivateAndInWalMode) {
  struct stat st {};
  ASSERT_EQ(::stat(dbPath().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  RawDb raw(dbPath());
  EXPECT_EQ(raw.query("PRAGMA journal_mode"), "wal");
}

TEST(StoreOpenTest, MissingDirectoryIsAnError) {
  absl::StatusOr<std::unique_ptr<Store>> store = Store::open("/nonexistent-berth-dir/store.db");
  EXPECT_EQ(store.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(store.status().message(), HasSubstr("/nonexistent-berth-dir/store.db"));
}

}  // namespace
}  // namespace berth::store::testing
