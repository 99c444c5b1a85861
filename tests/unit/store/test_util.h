// Shared helpers for the store tests: temp dirs, raw SQLite access and fully populated
// records (every field non-default, so a field the codec forgets shows up as a mismatch).
#pragma once

#include <sqlite3.h>
#include <stdlib.h>

#include <string>

#include "absl/strings/string_view.h"
#include "common/fs.h"
#include "gtest/gtest.h"
#include "store/types.h"

namespace berth::store::testing {

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it.
class TempDir {
 public:
  TempDir() {
    const char* base = getenv("TMPDIR");
    std::string tmpl =
        std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/berth-store-test-XXXXXX";
    if (mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
    EXPECT_FALSE(path_.empty()) << "mkdtemp failed";
  }
  ~TempDir() {
    if (!path_.empty()) removeAll(path_).IgnoreError();
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string file(absl::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  std::string path_;
};

// A second, raw connection to a store's database, for setting up and inspecting files the
// way an older berth or a damaged disk would leave them.
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    EXPECT_EQ(sqlite3_open(path.c_str(), &db_), SQLITE_OK) << path;
    sqlite3_busy_timeout(db_, 5000);
  }
  ~RawDb() { sqlite3_close(db_); }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  // Runs `sql`; returns SQLite's error message, or "" on success.
  std::string exec(const std::string& sql) {
    char* error = nullptr;
    int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error);
    std::string message = rc == SQLITE_OK ? "" : (error != nullptr ? error : "error");
    sqlite3_free(error);
    return message;
  }

  // The first column of the first row, as text ("" if there is none).
  std::string query(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    std::string out;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
      ADD_FAILURE() << "prepare " << sql << ": " << sqlite3_errmsg(db_);
      return out;
    }
    if (sqlite3_step(stmt) == SQLITE_ROW) {
      const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
      if (text != nullptr) out = text;
    }
    sqlite3_finalize(stmt);
    return out;
  }

 private:
  sqlite3* db_ = nullptr;
};

inline std::string hexId(char fill, absl::string_view prefix = "") {
  std::string id(prefix);
  id.resize(64, fill);
  return id;
}

inline SandboxRecord fullSandbox(const std::string& id, const std::string& pod = "web") {
  SandboxRecord r;
  r.id = id;
  r.metadata = {pod, "uid-" + pod, "default", 1};
  r.name = pod + "_default_uid-" + pod + "_1";
  r.state = SandboxState::kReady;
  r.runtime_handler = "runc";
  r.sandboxer = "podsandbox";
  r.created_at_ns = 1700000000000000001;
  r.exited_at_ns = 1700000000000000002;
  r.exit_code = 137;
  r.pid = 4242;
  r.netns_path = "/var/run/netns/cni-" + id.substr(0, 8);
  r.ips = {"10.88.0.7", "fd00::7"};
  r.labels = {{"app", pod}, {"tier", "front"}};
  r.annotations = {{"kubernetes.io/config.source", "api"}, {"unicode", "naïve ☃"}};
  r.config_bytes = std::string("\x0a\x03web\x00\xff\x10", 8);  // binary, with NUL and 0xff
  r.spec_json = R"({"ociVersion":"1.1.0","process":{"args":["/pause"]}})";
  r.cni_result_json = R"({"cniVersion":"1.0.0","ips":[{"address":"10.88.0.7/16"}]})";
  r.shim_dir = "/run/berth/pods/" + id + "/shim";
  r.bundle_dir = "/run/berth/pods/" + id + "/bundle";
  r.image = "registry.k8s.io/pause:3.10";
  r.snapshot_key = "sandbox-" + id;
  r.snapshotter = "overlayfs";
  r.runtime_type = "io.containerd.runc.v2";
  r.pause_args = {"/pause", "-v"};
  r.config_json = R"({"metadata":{"name":"web"}})";
  r.pending = Pending::kStopping;
  r.network_torn_down = true;
  r.netns_closed = true;
  return r;
}

inline ContainerRecord fullContainer(const std::string& id, const std::string& sandbox_id,
                                     const std::string& name = "app") {
  ContainerRecord r;
  r.id = id;
  r.sandbox_id = sandbox_id;
  r.metadata = {name, 2};
  r.name = name + "_web_default_uid-web_2";
  r.image_ref = "docker.io/library/busybox:1.36";
  r.image_id = "sha256:" + std::string(64, 'b');
  r.state = ContainerState::kExited;
  r.created_at_ns = 1700000000000000010;
  r.started_at_ns = 1700000000000000011;
  r.finished_at_ns = 1700000000000000012;
  r.exit_code = 2;
  r.reason = "Error";
  r.message = "exit status 2\nsecond line";
  r.pid = 5151;
  r.log_path = "/var/log/pods/x/app/2.log";
  r.snapshot_key = "k8s-" + id;
  r.labels = {{"io.kubernetes.container.name", name}};
  r.annotations = {{"io.kubernetes.container.restartCount", "2"}};
  r.config_bytes = std::string("\x12\x00\x01\xfe", 4);
  r.spec_json = R"({"ociVersion":"1.1.0"})";
  r.pending = Pending::kRemoving;
  r.rootfs = "/run/berth/containers/" + id + "/rootfs";
  r.rootfs_mounts = 2;
  r.bundle_dir = "/run/berth/containers/" + id;
  r.stop_signal = "SIGUSR1";
  r.runtime_type = "io.containerd.runc.v2";
  r.snapshotter = "overlayfs";
  r.task_deleted = true;
  return r;
}

inline ImageRecord fullImage(char fill) {
  ImageRecord r;
  r.id = "sha256:" + std::string(64, fill);
  r.manifest_digest = "sha256:" + std::string(64, 'm');
  r.media_type = "application/vnd.oci.image.manifest.v1+json";
  r.size = 5'000'000'123ULL;
  r.config_json = R"({"architecture":"amd64","os":"linux"})";
  r.layers = {"sha256:" + std::string(64, '1'), "sha256:" + std::string(64, '2')};
  r.chain_id = "sha256:" + std::string(64, 'c');
  r.created_at_ns = 1700000000000000100;
  r.pinned = true;
  return r;
}

inline SnapshotRecord fullSnapshot(const std::string& key, const std::string& parent,
                                   SnapshotKind kind) {
  SnapshotRecord r;
  r.key = key;
  r.parent = parent;
  r.kind = kind;
  r.created_at_ns = 1700000000000000200;
  r.size = 123456789;
  r.labels = {{"containerd.io/snapshot/cri.layer-digest", "sha256:" + std::string(64, '3')}};
  return r;
}

}  // namespace berth::store::testing
