// Tests for schema versions: migrating an older database forward with its data, refusing a
// newer one, and decoding rows written with fewer or more fields than this code knows.
#include <string>

#include "absl/strings/string_view.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "store/schema.h"
#include "store/store.h"
#include "test_util.h"

namespace berth::store::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Schema version 1 exactly as berth 0.1 wrote it. Frozen on purpose: this is what databases
// in the field contain, whatever the migration code says today.
constexpr absl::string_view kSchemaV1 = R"sql(
  CREATE TABLE sandboxes (id TEXT PRIMARY KEY, name TEXT NOT NULL, state TEXT NOT NULL,
                          config BLOB NOT NULL, data TEXT NOT NULL);
  CREATE TABLE containers (id TEXT PRIMARY KEY,
                           sandbox_id TEXT NOT NULL REFERENCES sandboxes(id),
                           name TEXT NOT NULL, state TEXT NOT NULL, config BLOB NOT NULL,
                           data TEXT NOT NULL);
  CREATE INDEX containers_sandbox_id ON containers(sandbox_id);
  CREATE TABLE images (id TEXT PRIMARY KEY, data TEXT NOT NULL);
  CREATE TABLE image_refs (reference TEXT PRIMARY KEY,
                           image_id TEXT NOT NULL REFERENCES images(id));
  CREATE TABLE names (name TEXT PRIMARY KEY, owner TEXT NOT NULL);
  PRAGMA user_version = 1;
)sql";

// Rows as an older berth wrote them: some fields missing, one it no longer knows.
constexpr absl::string_view kDataV1 = R"sql(
  INSERT INTO sandboxes VALUES ('sb1', 'web_default_u1_0', 'not_ready', x'0a0b00ff',
    '{"metadata":{"name":"web","uid":"u1","namespace":"default","attempt":0},
      "runtime_handler":"runc","pid":77,"labels":{"app":"web"},"retired_field":[1,2,3]}');
  INSERT INTO containers VALUES ('ct1', 'sb1', 'app_web_0', 'exited', x'',
    '{"metadata":{"name":"app","attempt":0},"exit_code":3,"image_ref":"busybox"}');
  INSERT INTO images VALUES ('sha256:i1', '{"size":1234,"layers":["sha256:l1"]}');
  INSERT INTO image_refs VALUES ('busybox:latest', 'sha256:i1');
  INSERT INTO names VALUES ('web_default_u1_0', 'sb1'), ('app_web_0', 'ct1');
)sql";

TEST(MigrationTest, VersionOneDatabaseIsMigratedWithItsData) {
  TempDir dir;
  std::string path = dir.file("store.db");
  {
    RawDb raw(path);
    ASSERT_EQ(raw.exec(std::string(kSchemaV1)), "");
    ASSERT_EQ(raw.exec(std::string(kDataV1)), "");
  }
  absl::StatusOr<std::unique_ptr<Store>> opened = Store::open(path);
  ASSERT_TRUE(opened.ok()) << opened.status();
  Store& store = **opened;

  SandboxPtr sandbox = *store.getSandbox("sb1");
  EXPECT_EQ(sandbox->name, "web_default_u1_0");
  EXPECT_EQ(sandbox->state, SandboxState::kNotReady);
  EXPECT_EQ(sandbox->metadata, (SandboxMetadata{"web", "u1", "default", 0}));
  EXPECT_EQ(sandbox->pid, 77);
  EXPECT_EQ(sandbox->config_bytes, std::string("\x0a\x0b\x00\xff", 4));
  EXPECT_EQ(sandbox->labels.at("app"), "web");
  EXPECT_EQ(sandbox->sandboxer, "");  // missing → default
  EXPECT_TRUE(sandbox->ips.empty());

  ContainerPtr container = *store.getContainer("ct1");
  EXPECT_EQ(container->sandbox_id, "sb1");
  EXPECT_EQ(container->state, ContainerState::kExited);
  EXPECT_EQ(container->exit_code, 3);
  EXPECT_EQ(container->pending, Pending::kNone);

  ImagePtr image = *store.getImageByRef("busybox:latest");
  EXPECT_EQ(image->id, "sha256:i1");
  EXPECT_EQ(image->size, 1234u);
  EXPECT_THAT(image->layers, ElementsAre("sha256:l1"));
  EXPECT_EQ(*store.nameOwner("app_web_0"), "ct1");

  // What version 2 added works, and the old data can still change.
  ASSERT_TRUE(store.createSnapshot(fullSnapshot("s1", "", SnapshotKind::kCommitted)).ok());
  ASSERT_TRUE(store.deleteContainer("ct1").ok());
  ASSERT_TRUE(store.deleteSandbox("sb1").ok());
  opened->reset();

  RawDb raw(path);
  EXPECT_EQ(raw.query("PRAGMA user_version"), std::to_string(kSchemaVersion));
  EXPECT_EQ(raw.query("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(raw.query("SELECT count(*) FROM snapshots"), "1");
  EXPECT_EQ(raw.query("SELECT count(*) FROM names"), "0");
  EXPECT_EQ(raw.query("SELECT count(*) FROM sqlite_master WHERE name = 'image_refs_image_id'"),
            "1");
}

TEST(MigrationTest, EmptyFileGetsTheLatestSchema) {
  TempDir dir;
  std::string path = dir.file("store.db");
  ASSERT_TRUE(Store::open(path).ok());
  ASSERT_TRUE(Store::open(path).ok());  // reopening an up-to-date database is a no-op
  RawDb raw(path);
  EXPECT_EQ(raw.query("PRAGMA user_version"), std::to_string(kSchemaVersion));
  EXPECT_EQ(raw.query("PRAGMA integrity_check"), "ok");
  EXPECT_EQ(raw.query("PRAGMA foreign_key_check"), "");
}

TEST(MigrationTest, NewerDatabaseIsRefusedAndLeftAlone) {
  TempDir dir;
  std::string path = dir.file("store.db");
  {
    RawDb raw(path);
    ASSERT_EQ(raw.exec("CREATE TABLE future (x); PRAGMA user_version = 99;"), "");
  }
  absl::StatusOr<std::unique_ptr<Store>> opened = Store::open(path);
  ASSERT_EQ(opened.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(opened.status().message(), HasSubstr("99"));
  EXPECT_THAT(opened.status().message(), HasSubstr(path));

  RawDb raw(path);
  EXPECT_EQ(raw.query("PRAGMA user_version"), "99");
  EXPECT_EQ(raw.query("PRAGMA journal_mode"), "delete");  // not even switched to WAL
}

TEST(MigrationTest, UnreadableRowNamesTheObject) {
  TempDir dir;
  std::string path = dir.file("store.db");
  ASSERT_TRUE(Store::open(path).ok());
  {
    RawDb raw(path);
    ASSERT_EQ(raw.exec("INSERT INTO sandboxes VALUES ('sb-bad', 'n', 'ready', x'', "
                       "'{\"pid\":\"not a number\"}')"),
              "");
  }
  absl::StatusOr<std::unique_ptr<Store>> opened = Store::open(path);
  EXPECT_EQ(opened.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(opened.status().message(), HasSubstr("pod sandbox \"sb-bad\""));

  {
    RawDb raw(path);
    ASSERT_EQ(raw.exec("UPDATE sandboxes SET state = 'dancing', data = '{}'"), "");
  }
  opened = Store::open(path);
  EXPECT_EQ(opened.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(opened.status().message(), HasSubstr("dancing"));
}

// Version 2's additions exactly as berth 0.2 wrote them.
constexpr absl::string_view kSchemaV2Step = R"sql(
  CREATE TABLE snapshots (key TEXT PRIMARY KEY, parent TEXT REFERENCES snapshots(key),
                          kind TEXT NOT NULL, data TEXT NOT NULL);
  CREATE INDEX snapshots_parent ON snapshots(parent);
  CREATE INDEX image_refs_image_id ON image_refs(image_id);
  PRAGMA user_version = 2;
)sql";

TEST(MigrationTest, LayersNeverCheckedAgainstTheirDiffIdsAreQuarantined) {
  TempDir dir;
  std::string path = dir.file("store.db");
  {
    RawDb raw(path);
    ASSERT_EQ(raw.exec(std::string(kSchemaV1)), "");
    ASSERT_EQ(raw.exec(std::string(kSchemaV2Step)), "");
    // Two layers of a chain and a container's rootfs on top, as an unchecking berth made them.
    ASSERT_EQ(raw.exec(R"sql(
      INSERT INTO snapshots VALUES ('sha256:c1', NULL, 'committed',
        '{"labels":{"berth.snapshot/dir":"1"}}');
      INSERT INTO snapshots VALUES ('sha256:c2', 'sha256:c1', 'committed',
        '{"labels":{"berth.snapshot/dir":"2"}}');
      INSERT INTO snapshots VALUES ('ctr', 'sha256:c2', 'active',
        '{"labels":{"berth.snapshot/dir":"3"}}');
    )sql"),
              "");
  }
  absl::StatusOr<std::unique_ptr<Store>> opened = Store::open(path);
  ASSERT_TRUE(opened.ok()) << opened.status();
  Store& store = **opened;
  EXPECT_FALSE(store.getSnapshot("sha256:c1").ok()) << "no longer found by its chain id";
  EXPECT_FALSE(store.getSnapshot("sha256:c2").ok());
  SnapshotPtr c1 = *store.getSnapshot("unverified/sha256:c1");
  SnapshotPtr c2 = *store.getSnapshot("unverified/sha256:c2");
  SnapshotPtr ctr = *store.getSnapshot("ctr");
  EXPECT_EQ(c1->parent, "");
  EXPECT_EQ(c2->parent, "unverified/sha256:c1");
  EXPECT_EQ(ctr->parent, "unverified/sha256:c2") << "the container keeps its rootfs";
  EXPECT_EQ(c2->labels.at("berth.snapshot/dir"), "2");
  EXPECT_TRUE(c2->diff_id.empty());
  opened->reset();
  RawDb raw(path);
  EXPECT_EQ(raw.query("PRAGMA user_version"), std::to_string(kSchemaVersion));
  EXPECT_EQ(raw.query("PRAGMA foreign_key_check"), "");
}

// Version 3's step exactly as berth 0.3 ran it (the rows below do not care what it did).
constexpr absl::string_view kSchemaV3Step = "PRAGMA user_version = 3;";

// Records of a version-3 berth kept controller and container data as free-form JSON text in
// `extra_json`; version 4 turns it into typed fields, and a record without it gets defaults.
TEST(MigrationTest, ExtraJsonBecomesTypedFields) {
  TempDir dir;
  std::string path = dir.file("store.db");
  {
    RawDb raw(path);
    ASSERT_EQ(raw.exec(std::string(kSchemaV1)), "");
    ASSERT_EQ(raw.exec(std::string(kSchemaV2Step)), "");
    ASSERT_EQ(raw.exec(std::string(kSchemaV3Step)), "");
    ASSERT_EQ(raw.exec(R"sql(
      INSERT INTO sandboxes VALUES ('sb1', 'web_default_u1_0', 'ready', x'',
        '{"runtime_handler":"runc","netns_path":"/run/netns/x","extra_json":"{\"runtimeHandler\":\"runc\",\"runtimeType\":\"io.containerd.runc.v2\",\"shimDir\":\"/s/pods/sb1/shim\",\"bundle\":\"/s/pods/sb1/bundle\",\"netnsClosed\":true,\"networkTornDown\":true,\"config\":{\"hostname\":\"web\"},\"image\":\"pause:3.10\",\"snapshotKey\":\"sandbox-sb1\",\"snapshotter\":\"overlayfs\",\"args\":[\"/pause\"]}"}');
      INSERT INTO sandboxes VALUES ('sb2', 'db_default_u2_0', 'ready', x'', '{"extra_json":""}');
      INSERT INTO containers VALUES ('ct1', 'sb1', 'app_web_0', 'running', x'',
        '{"extra_json":"{\"rootfs\":\"/s/containers/ct1/rootfs\",\"rootfsMounts\":2,\"bundle\":\"/s/containers/ct1\",\"stopSignal\":\"SIGUSR1\",\"runtimeType\":\"io.containerd.runc.v2\",\"snapshotter\":\"overlayfs\",\"taskDeleted\":true}"}');
      INSERT INTO containers VALUES ('ct2', 'sb2', 'app_db_0', 'created', x'', '{}');
    )sql"),
              "");
  }
  absl::StatusOr<std::unique_ptr<Store>> opened = Store::open(path);
  ASSERT_TRUE(opened.ok()) << opened.status();
  Store& store = **opened;
  SandboxPtr sb1 = *store.getSandbox("sb1");
  EXPECT_EQ(sb1->shim_dir, "/s/pods/sb1/shim");
  EXPECT_EQ(sb1->bundle_dir, "/s/pods/sb1/bundle");
  EXPECT_EQ(sb1->runtime_type, "io.containerd.runc.v2");
  EXPECT_EQ(sb1->image, "pause:3.10");
  EXPECT_EQ(sb1->snapshot_key, "sandbox-sb1");
  EXPECT_EQ(sb1->snapshotter, "overlayfs");
  EXPECT_THAT(sb1->pause_args, ElementsAre("/pause"));
  EXPECT_EQ(sb1->config_json, R"({"hostname":"web"})");
  EXPECT_TRUE(sb1->netns_closed);
  EXPECT_TRUE(sb1->network_torn_down);
  EXPECT_EQ(sb1->netns_path, "/run/netns/x");
  SandboxPtr sb2 = *store.getSandbox("sb2");
  EXPECT_EQ(sb2->shim_dir, "");
  EXPECT_FALSE(sb2->netns_closed);
  EXPECT_FALSE(sb2->network_torn_down);
  ContainerPtr ct1 = *store.getContainer("ct1");
  EXPECT_EQ(ct1->rootfs, "/s/containers/ct1/rootfs");
  EXPECT_EQ(ct1->rootfs_mounts, 2u);
  EXPECT_EQ(ct1->bundle_dir, "/s/containers/ct1");
  EXPECT_EQ(ct1->stop_signal, "SIGUSR1");
  EXPECT_EQ(ct1->runtime_type, "io.containerd.runc.v2");
  EXPECT_EQ(ct1->snapshotter, "overlayfs");
  EXPECT_TRUE(ct1->task_deleted);
  ContainerPtr ct2 = *store.getContainer("ct2");
  EXPECT_EQ(ct2->rootfs_mounts, 1u);
  EXPECT_FALSE(ct2->task_deleted);
  opened->reset();
  RawDb raw(path);
  EXPECT_EQ(raw.query("PRAGMA user_version"), std::to_string(kSchemaVersion));
  EXPECT_EQ(raw.query("SELECT count(*) FROM sandboxes WHERE data LIKE '%extra_json%'"), "0");
  EXPECT_EQ(raw.query("SELECT count(*) FROM containers WHERE data LIKE '%extra_json%'"), "0");
}

// Version 4 kept a container's removal in a `removing` flag; version 5 makes it the pending
// operation (and drops the flag).
TEST(MigrationTest, RemovingFlagBecomesThePendingOperation) {
  TempDir dir;
  std::string path = dir.file("store.db");
  {
    absl::StatusOr<std::unique_ptr<Store>> opened = Store::open(path);  // the latest schema
    ASSERT_TRUE(opened.ok()) << opened.status();
  }
  {
    RawDb raw(path);
    ASSERT_EQ(raw.exec(R"sql(
      PRAGMA user_version = 4;
      INSERT INTO sandboxes VALUES ('sb1', 'web_default_u1_0', 'ready', x'', '{}');
      INSERT INTO containers VALUES ('ct1', 'sb1', 'a_web_0', 'exited', x'', '{"removing":true}');
      INSERT INTO containers VALUES ('ct2', 'sb1', 'b_web_0', 'running', x'', '{"removing":false}');
      INSERT INTO containers VALUES ('ct3', 'sb1', 'c_web_0', 'created', x'', '{}');
    )sql"),
              "");
  }
  absl::StatusOr<std::unique_ptr<Store>> opened = Store::open(path);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ((*(*opened)->getContainer("ct1"))->pending, Pending::kRemoving);
  EXPECT_EQ((*(*opened)->getContainer("ct2"))->pending, Pending::kNone);
  EXPECT_EQ((*(*opened)->getContainer("ct3"))->pending, Pending::kNone);
  EXPECT_EQ((*(*opened)->getSandbox("sb1"))->pending, Pending::kNone);
  opened->reset();
  RawDb raw(path);
  EXPECT_EQ(raw.query("PRAGMA user_version"), std::to_string(kSchemaVersion));
  EXPECT_EQ(raw.query("SELECT count(*) FROM containers WHERE data LIKE '%\"removing\":%'"), "0");
}

}  // namespace
}  // namespace berth::store::testing
