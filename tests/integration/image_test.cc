// ImageService against a real registry on loopback (tests/env): pulls by tag, digest and
// mirror, auth, corrupt and hostile layers, status by every kind of reference, user forms,
// tags, removal and usage, persistence across kill -9.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <thread>

#include "berthd_fixture.h"
#include "cri_calls.h"
#include "hostile_registry.h"
#include "test_env.h"

namespace berth::testing {
namespace {

grpc::Status pull(Berthd& d, const std::string& ref, v1::PullImageResponse* resp,
                  const v1::AuthConfig* auth = nullptr) {
  v1::PullImageRequest req;
  req.mutable_image()->set_image(ref);
  if (auth != nullptr) *req.mutable_auth() = *auth;
  auto ctx = Berthd::context(120);
  return d.image().PullImage(ctx.get(), req, resp);
}

std::string pullOk(Berthd& d, const std::string& ref) {
  v1::PullImageResponse resp;
  grpc::Status st = pull(d, ref, &resp);
  EXPECT_TRUE(st.ok()) << ref << ": " << st.error_message() << "\n" << d.log();
  return resp.image_ref();
}

v1::ImageStatusResponse status(Berthd& d, const std::string& ref, bool verbose = false) {
  return imageStatus(d, ref, verbose);
}

v1::FilesystemUsage imageFs(Berthd& d) {
  v1::ImageFsInfoResponse resp;
  auto ctx = Berthd::context();
  EXPECT_TRUE(d.image().ImageFsInfo(ctx.get(), {}, &resp).ok());
  EXPECT_EQ(resp.image_filesystems_size(), 1);
  return resp.image_filesystems(0);
}

// The repository part of a reference "host:port/repo:tag".
std::string repoOf(const std::string& ref) { return ref.substr(0, ref.rfind(':')); }

TEST(ImageTest, PullByTagAndStatusByEveryReference) {
  Berthd d;
  ASSERT_TRUE(d.start()) << d.log();
  std::string ref = envKey("BERTH_TEST_IMAGE_BUSYBOX");
  std::string id = pullOk(d, ref);
  EXPECT_EQ(id, envKey("BERTH_TEST_IMAGE_BUSYBOX_CONFIG_DIGEST"));
  std::string digest_ref = repoOf(ref) + "@" + envKey("BERTH_TEST_IMAGE_BUSYBOX_DIGEST");
  for (const std::string& r : {ref, digest_ref, id, id.substr(7)}) {
    auto s = status(d, r);
    ASSERT_TRUE(s.has_image()) << r;
    EXPECT_EQ(s.image().id(), id) << r;
    EXPECT_EQ(std::vector<std::string>(s.image().repo_tags().begin(), s.image().repo_tags().end()),
              std::vector<std::string>{ref});
    EXPECT_EQ(std::vector<std::string>(s.image().repo_digests().begin(),
                                       s.image().repo_digests().end()),
              std::vector<std::string>{digest_ref});
    EXPECT_GT(s.image().size(), 500000u) << "busybox is in the layer";
    EXPECT_FALSE(s.image().pinned());
  }
  auto verbose = status(d, ref, true);
  ASSERT_TRUE(verbose.info().contains("info"));
  auto info = nlohmann::json::parse(verbose.info().at("info"));
  EXPECT_EQ(info["imageSpec"]["architecture"], "amd64");
  EXPECT_FALSE(info["chainID"].get<std::string>().empty());
}

TEST(ImageTest, MissingImageStatusIsEmptyAndBadReferenceIsInvalid) {
  Berthd d;
  ASSERT_TRUE(d.start()) << d.log();
  EXPECT_FALSE(status(d, "docker.io/library/nothing-here:1").has_image());
  v1::ImageStatusRequest req;
  req.mutable_image()->set_image("UPPER/Case::bad");
  v1::ImageStatusResponse resp;
  auto ctx = Berthd::context();
  grpc::Status st = d.image().ImageStatus(ctx.get(), req, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("UPPER/Case::bad"), std::string::npos) << st.error_message();
  EXPECT_TRUE(removeImage(d, "docker.io/library/nothing-here:1").ok()) << "remove is idempotent";
}

TEST(ImageTest, PullByDigestAndThroughIndex) {
  Berthd d;
  ASSERT_TRUE(d.start()) << d.log();
  std::string ref = envKey("BERTH_TEST_IMAGE_BUSYBOX");
  std::string by_digest = repoOf(ref) + "@" + envKey("BERTH_TEST_IMAGE_BUSYBOX_DIGEST");
  EXPECT_EQ(pullOk(d, by_digest), envKey("BERTH_TEST_IMAGE_BUSYBOX_CONFIG_DIGEST"));
  auto s = status(d, by_digest);
  EXPECT_EQ(s.image().repo_tags_size(), 0);
  // An OCI index and a Docker manifest list resolve to the amd64 image (same config).
  EXPECT_EQ(pullOk(d, envKey("BERTH_TEST_IMAGE_BUSYBOX_INDEX")),
            envKey("BERTH_TEST_IMAGE_BUSYBOX_CONFIG_DIGEST"));
  EXPECT_EQ(pullOk(d, envKey("BERTH_TEST_IMAGE_BUSYBOX_DOCKER_LIST")),
            envKey("BERTH_TEST_IMAGE_BUSYBOX_CONFIG_DIGEST"));
}

TEST(ImageTest, PullThroughMirror) {
  Berthd d("[image.registries.\"registry.k8s.io\"]\nmirrors = [\"http://" +
           envKey("BERTH_TEST_REGISTRY") + "\"]\n");
  ASSERT_TRUE(d.start()) << d.log();
  std::string id = pullOk(d, "registry.k8s.io/berth-test/busybox:1.0");
  EXPECT_EQ(id, envKey("BERTH_TEST_IMAGE_BUSYBOX_CONFIG_DIGEST"));
  auto s = status(d, "registry.k8s.io/berth-test/busybox:1.0");
  ASSERT_TRUE(s.has_image());
  EXPECT_EQ(s.image().repo_tags(0), "registry.k8s.io/berth-test/busybox:1.0");
}

TEST(ImageTest, BasicAuthGoodAndBadCredentials) {
  Berthd d;
  ASSERT_TRUE(d.start()) << d.log();
  std::string ref = envKey("BERTH_TEST_AUTH_IMAGE_BUSYBOX");
  v1::PullImageResponse resp;
  grpc::Status none = pull(d, ref, &resp);
  EXPECT_EQ(none.error_code(), grpc::StatusCode::UNAUTHENTICATED) << none.error_message();
  v1::AuthConfig bad;
  bad.set_username(envKey("BERTH_TEST_AUTH_USER"));
  bad.set_password("wrong");
  grpc::Status st = pull(d, ref, &resp, &bad);
  EXPECT_TRUE(st.error_code() == grpc::StatusCode::UNAUTHENTICATED ||
              st.error_code() == grpc::StatusCode::PERMISSION_DENIED)
      << st.error_code() << " " << st.error_message();
  EXPECT_TRUE(listImages(d).empty());
  EXPECT_EQ(filesUnder(d.root() + "/content/blobs"), 0u) << "nothing stored";
  v1::AuthConfig good;
  good.set_username(envKey("BERTH_TEST_AUTH_USER"));
  good.set_password(envKey("BERTH_TEST_AUTH_PASSWORD"));
  ASSERT_TRUE(pull(d, ref, &resp, &good).ok()) << d.log();
  EXPECT_EQ(resp.image_ref(), envKey("BERTH_TEST_IMAGE_BUSYBOX_CONFIG_DIGEST"));
}

TEST(ImageTest, ConfiguredCredentialsAreUsed) {
  Berthd d("[image.registries.\"" + envKey("BERTH_TEST_AUTH_REGISTRY") + "\"]\nusername = \"" +
           envKey("BERTH_TEST_AUTH_USER") + "\"\npassword = \"" +
           envKey("BERTH_TEST_AUTH_PASSWORD") + "\"\n");
  ASSERT_TRUE(d.start()) << d.log();
  EXPECT_EQ(pullOk(d, envKey("BERTH_TEST_AUTH_IMAGE_BUSYBOX")),
            envKey("BERTH_TEST_IMAGE_BUSYBOX_CONFIG_DIGEST"));
}

TEST(ImageTest, CorruptedBlobIsRejectedAndNothingStored) {
  nlohmann::json spec = {
      {"repo", "berth-test/corrupt"},
      {"tags", {"1"}},
      {"layers",
       {{{"entries",
          {{{"type", "file"}, {"path", "/data"}, {"content", std::string(4096, 'x') + std::to_string(std::rand())}}}}}}},
      {"config", {{"Cmd", {"/data"}}}}};
  nlohmann::json pushed = pushImage(spec);
  ASSERT_TRUE(pushed.contains("layer_digests")) << pushed;
  std::string layer = pushed["layer_digests"][0];
  {
    std::fstream f(registryBlobPath(layer), std::ios::in | std::ios::out | std::ios::binary);
    ASSERT_TRUE(f.good()) << registryBlobPath(layer);
    f.seekp(20);
    f.write("CORRUPT", 7);  // same size, different bytes
  }
  Berthd d;
  ASSERT_TRUE(d.start()) << d.log();
  v1::PullImageResponse resp;
  grpc::Status st = pull(d, pushed["ref"], &resp);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.error_message().find("digest"), std::string::npos) << st.error_message();
  EXPECT_NE(st.error_message().find(layer), std::string::npos) << st.error_message();
  EXPECT_TRUE(listImages(d).empty());
  EXPECT_FALSE(std::filesystem::exists(d.root() + "/content/blobs/sha256/" + layer.substr(7)));
}

TEST(ImageTest, LayerEscapingItsRootIsRejected) {
  nlohmann::json spec = {
      {"repo", "berth-test/escape"},
      {"tags", {"1"}},
      {"layers",
       {{{"sort", false},
         {"entries",
          {{{"type", "file"}, {"path", "/ok"}, {"content", "fine"}},
           {{"type", "raw"}, {"name", "../escape-" + std::to_string(::getpid())},
            {"kind", "file"}, {"content", "bad"}}}}}}},
      {"config", nlohmann::json::object()}};
  nlohmann::json pushed = pushImage(spec);
  Berthd d;
  ASSERT_TRUE(d.start()) << d.log();
  v1::PullImageResponse resp;
  grpc::Status st = pull(d, pushed["ref"], &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  EXPECT_NE(st.error_message().find("escape"), std::string::npos) << st.error_message();
  EXPECT_TRUE(listImages(d).empty());
  EXPECT_FALSE(std::filesystem::exists(d.root() + "/snapshots/escape-" + std::to_string(::getpid())));
  // No snapshot left behind: nothing under snapshots/ but the snapshotter's own files.
  size_t dirs = 0;
  for (const auto& e : std::filesystem::directory_iterator(d.root() + "/snapshots")) {
    if (e.is_directory()) ++dirs;
  }
  EXPECT_EQ(dirs, 0u);
}

TEST(ImageTest, UserForms) {
  Berthd d;
  ASSERT_TRUE(d.start()) << d.log();
  struct Case {
    const char* key;
    bool has_uid;
    int64_t uid;
    const char* name;
  };
  for (const Case& c : {Case{"BERTH_TEST_IMAGE_USER_UID", true, 1002, ""},
                        Case{"BERTH_TEST_IMAGE_USER_UIDGROUP", true, 1003, ""},
                        Case{"BERTH_TEST_IMAGE_USER_NAME", false, 0, "www-data"},
                        Case{"BERTH_TEST_IMAGE_USER_NAMEGROUP", false, 0, "www-data"}}) {
    std::string ref = envKey(c.key);
    pullOk(d, ref);
    auto s = status(d, ref);
    EXPECT_EQ(s.image().has_uid(), c.has_uid) << c.key;
    if (c.has_uid) {
      EXPECT_EQ(s.image().uid().value(), c.uid) << c.key;
    }
    EXPECT_EQ(s.image().username(), c.name) << c.key;
  }
}

TEST(ImageTest, ThreeTagsListAsOneImageAndRemoveFreesSpace) {
  Berthd d;
  ASSERT_TRUE(d.start()) << d.log();
  uint64_t empty_bytes = imageFs(d).used_bytes().value();
  for (const char* key : {"BERTH_TEST_IMAGE_BUSYBOX", "BERTH_TEST_IMAGE_BUSYBOX_LATEST",
                          "BERTH_TEST_IMAGE_BUSYBOX_ZSTD"}) {
    pullOk(d, envKey(key));
  }
  auto images = listImages(d);
  ASSERT_EQ(images.size(), 1u);
  EXPECT_EQ(images[0].repo_tags_size(), 3);
  auto fs = imageFs(d);
  EXPECT_GT(fs.used_bytes().value(), empty_bytes + 500000);
  EXPECT_EQ(fs.fs_id().mountpoint(), d.root() + "/snapshots");
  EXPECT_GT(fs.timestamp(), 0);
  ASSERT_TRUE(removeImage(d, envKey("BERTH_TEST_IMAGE_BUSYBOX_LATEST")).ok());
  EXPECT_TRUE(listImages(d).empty()) << "all tags go with the image";
  EXPECT_LT(imageFs(d).used_bytes().value(), empty_bytes + 100000) << "space freed";
  EXPECT_EQ(filesUnder(d.root() + "/content/blobs"), 0u);
  EXPECT_TRUE(removeImage(d, envKey("BERTH_TEST_IMAGE_BUSYBOX_LATEST")).ok());
}

TEST(ImageTest, PresentImageNeedsNoBlobTransfer) {
  Berthd d;
  ASSERT_TRUE(d.start()) << d.log();
  nlohmann::json image = pushUniqueImage("present");
  std::string repo = image["repo"];
  pullOk(d, image["ref"]);
  int gets = registryBlobGets(repo);
  EXPECT_EQ(gets, 2) << "config and layer";
  pullOk(d, image["ref"]);
  EXPECT_EQ(registryBlobGets(repo), gets) << "a present image costs no blob transfer";
}

TEST(ImageTest, ImagesSurviveKill9) {
  Berthd d;
  ASSERT_TRUE(d.start()) << d.log();
  nlohmann::json image = pushUniqueImage("kill9");
  std::string ref = image["ref"];
  std::string id = pullOk(d, ref);
  EXPECT_EQ(d.stop(SIGKILL), -SIGKILL);
  ASSERT_TRUE(d.start()) << d.log();
  auto s = status(d, ref);
  ASSERT_TRUE(s.has_image()) << d.log();
  EXPECT_EQ(s.image().id(), id);
  EXPECT_EQ(listImages(d).size(), 1u);
  int gets = registryBlobGets(image["repo"]);
  pullOk(d, ref);
  EXPECT_EQ(registryBlobGets(image["repo"]), gets) << "no re-pull after restart";
}

TEST(ImageTest, SandboxImageIsPinned) {
  std::string ref = envKey("BERTH_TEST_IMAGE_BUSYBOX");
  Berthd d("[cri]\nsandbox_image = \"" + ref + "\"\n");
  ASSERT_TRUE(d.start()) << d.log();
  pullOk(d, ref);
  EXPECT_TRUE(status(d, ref).image().pinned());
}

TEST(ImageTest, ConcurrentPullsShareTheWork) {
  Berthd d;
  ASSERT_TRUE(d.start()) << d.log();
  nlohmann::json image = pushUniqueImage("concurrent");
  std::string ref = image["ref"];
  std::string repo = image["repo"];
  std::vector<std::thread> pulls;
  std::vector<grpc::Status> results(4);
  for (int i = 0; i < 4; ++i) {
    pulls.emplace_back([&, i] {
      v1::PullImageResponse resp;
      results[static_cast<size_t>(i)] = pull(d, ref, &resp);
    });
  }
  for (auto& t : pulls) t.join();
  for (const auto& st : results) EXPECT_TRUE(st.ok()) << st.error_message();
  // One config and one layer: four pulls, each blob fetched once.
  EXPECT_EQ(registryBlobGets(repo), 2);
  EXPECT_EQ(listImages(d).size(), 1u);
}

// Layers bigger than what a pull buffers between its download and its unpack: whichever
// pull leads a layer's download and whichever leads its unpack, every pull finishes.
TEST(ImageTest, ConcurrentPullsOfBigLayersAllFinish) {
  nlohmann::json layers = nlohmann::json::array();
  std::vector<std::string> files;
  std::mt19937_64 random(static_cast<uint64_t>(::getpid()));
  for (int l = 0; l < 3; ++l) {
    std::string data(12 << 20, '\0');
    for (size_t i = 0; i + 8 <= data.size(); i += 8) {
      uint64_t v = random();
      std::memcpy(&data[i], &v, 8);
    }
    files.push_back(envDir() + "/big-layer-" + std::to_string(::getpid()) + "-" +
                    std::to_string(l));
    std::ofstream(files.back(), std::ios::binary) << data;
    layers.push_back(
        {{"compression", "none"},
         {"entries",
          {{{"type", "file"}, {"path", "/big" + std::to_string(l)}, {"source", files.back()}}}}});
  }
  nlohmann::json pushed = pushImage({{"repo", "berth-test/big-concurrent"},
                                     {"tags", {std::to_string(::getpid())}},
                                     {"layers", layers},
                                     {"config", nlohmann::json::object()}});
  for (const auto& f : files) std::remove(f.c_str());
  Berthd d;
  ASSERT_TRUE(d.start()) << d.log();
  for (int round = 0; round < 3; ++round) {
    std::vector<std::thread> pulls;
    std::vector<grpc::Status> results(4);
    for (size_t i = 0; i < results.size(); ++i) {
      pulls.emplace_back([&, i] {
        v1::PullImageRequest req;
        req.mutable_image()->set_image(pushed["ref"]);
        v1::PullImageResponse resp;
        auto ctx = Berthd::context(30);
        results[i] = d.image().PullImage(ctx.get(), req, &resp);
      });
    }
    for (auto& t : pulls) t.join();
    for (const auto& st : results)
      ASSERT_TRUE(st.ok()) << "round " << round << ": " << st.error_message();
    ASSERT_TRUE(removeImage(d, pushed["ref"]).ok());
  }
}

TEST(ImageTest, ListFilterAndStreamImages) {
  Berthd d;
  ASSERT_TRUE(d.start()) << d.log();
  std::string a = pullOk(d, envKey("BERTH_TEST_IMAGE_USER_UID"));
  std::string b = pullOk(d, envKey("BERTH_TEST_IMAGE_BUSYBOX"));
  v1::ListImagesRequest req;
  req.mutable_filter()->mutable_image()->set_image(envKey("BERTH_TEST_IMAGE_USER_UID"));
  v1::ListImagesResponse resp;
  auto ctx = Berthd::context();
  ASSERT_TRUE(d.image().ListImages(ctx.get(), req, &resp).ok());
  ASSERT_EQ(resp.images_size(), 1);
  EXPECT_EQ(resp.images(0).id(), a);
  v1::StreamImagesRequest sreq;
  auto sctx = Berthd::context();
  auto reader = d.image().StreamImages(sctx.get(), sreq);
  std::set<std::string> ids;
  v1::StreamImagesResponse batch;
  while (reader->Read(&batch)) {
    for (const auto& i : batch.images()) ids.insert(i.id());
  }
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_EQ(ids, (std::set<std::string>{a, b}));
}

TEST(ImageTest, KilledDuringPullLeavesNoHalfImage) {
  // A layer big enough that the pull is still running when berthd is killed.
  std::string big(24 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 2654435761u) >> 13);
  std::string path = envDir() + "/big-" + std::to_string(::getpid());
  std::ofstream(path, std::ios::binary) << big;
  nlohmann::json spec = {{"repo", "berth-test/big"},
                         {"tags", {std::to_string(::getpid())}},
                         {"layers",
                          {{{"compression", "none"},
                            {"entries", {{{"type", "file"}, {"path", "/big"}, {"source", path}}}}}}},
                         {"config", nlohmann::json::object()}};
  nlohmann::json pushed = pushImage(spec);
  std::remove(path.c_str());
  Berthd d;
  ASSERT_TRUE(d.start()) << d.log();
  std::thread puller([&] {
    v1::PullImageResponse resp;
    pull(d, pushed["ref"], &resp);  // fails when berthd dies
  });
  // Kill once the download has started (the ingest directory has a partial file).
  for (int i = 0; i < 500 && filesUnder(d.root() + "/content/ingest") == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  d.stop(SIGKILL);
  puller.join();
  ASSERT_TRUE(d.start()) << d.log();
  auto s = status(d, pushed["ref"]);
  if (s.has_image()) {
    // The pull finished before the kill: then it must be whole.
    EXPECT_EQ(s.image().id(), pushed["config_digest"].get<std::string>());
  } else {
    EXPECT_TRUE(listImages(d).empty());
  }
  EXPECT_EQ(filesUnder(d.root() + "/content/ingest"), 0u) << "partial downloads are discarded";
  EXPECT_EQ(pullOk(d, pushed["ref"]), pushed["config_digest"].get<std::string>());
}

// The paths of `file` under layer snapshots still being unpacked (root/snapshots/<n>.tmp/fs).
std::vector<std::string> unpacking(Berthd& d, const std::string& file) {
  std::vector<std::string> found;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(d.root() + "/snapshots", ec)) {
    std::string name = e.path().filename();
    if (name.ends_with(".tmp") && std::filesystem::exists(e.path() / "fs" / file)) {
      found.push_back(e.path() / "fs" / file);
    }
  }
  return found;
}

// Waits until each layer of the held-layers scenario has its first file in a snapshot being
// unpacked, while the registry holds every blob half-way: layers unpack as they download, all
// at once. False after 30 s.
bool eachHeldLayerIsUnpacking(Berthd& d, const nlohmann::json& scenario) {
  const size_t layers = scenario["layer_digests"].size();
  for (int i = 0; i < 3000; ++i) {
    size_t seen = 0;
    for (size_t l = 0; l < layers; ++l) {
      if (!unpacking(d, "held/first-" + std::to_string(l)).empty()) ++seen;
    }
    if (seen == layers) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

TEST(ImageTest, LayersUnpackWhileTheyDownloadAllAtOnce) {
  HostileRegistry reg;
  ASSERT_TRUE(reg.start()) << reg.log();
  const nlohmann::json& sc = reg.scenario("held-layers");
  Berthd d;
  ASSERT_TRUE(d.start()) << d.log();
  grpc::Status st;
  v1::PullImageResponse resp;
  std::thread puller([&] { st = pull(d, reg.ref("held-layers"), &resp); });
  bool unpacking_all = eachHeldLayerIsUnpacking(d, sc);
  std::ofstream(sc["release"].get<std::string>()).close();
  puller.join();
  EXPECT_TRUE(unpacking_all) << "no layer may wait for its own download, nor for another's";
  ASSERT_TRUE(st.ok()) << st.error_message() << "\n" << d.log();
  EXPECT_EQ(resp.image_ref(), sc["config_digest"].get<std::string>());
  // Each layer is committed whole: both its files, nothing left being unpacked.
  for (size_t l = 0; l < sc["layer_digests"].size(); ++l) {
    EXPECT_TRUE(unpacking(d, "held/first-" + std::to_string(l)).empty());
  }
  EXPECT_EQ(listImages(d).size(), 1u);
  size_t files = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(d.root() + "/snapshots")) {
    if (e.path().filename().string().starts_with("rest-")) {
      EXPECT_EQ(e.file_size(), 1u << 20) << e.path();
      ++files;
    }
  }
  EXPECT_EQ(files, sc["layer_digests"].size());
}

TEST(ImageTest, DownloadsAreBoundedAndStartInLayerOrder) {
  HostileRegistry reg;
  ASSERT_TRUE(reg.start()) << reg.log();
  const nlohmann::json& sc = reg.scenario("held-layers");
  Berthd d("[image]\nmax_concurrent_downloads = 1\n");
  ASSERT_TRUE(d.start()) << d.log();
  grpc::Status st;
  v1::PullImageResponse resp;
  std::thread puller([&] { st = pull(d, reg.ref("held-layers"), &resp); });
  bool first_unpacking = false;
  for (int i = 0; i < 3000 && !first_unpacking; ++i) {
    first_unpacking = !unpacking(d, "held/first-0").empty();
    if (!first_unpacking) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const std::string second = reg.blobPath("held-layers", sc["layer_digests"][1]);
  int64_t second_asked = reg.requests(second);
  std::ofstream(sc["release"].get<std::string>()).close();
  puller.join();
  EXPECT_TRUE(first_unpacking);
  EXPECT_EQ(second_asked, 0) << "the second layer started while the first one's held";
  ASSERT_TRUE(st.ok()) << st.error_message() << "\n" << d.log();
  EXPECT_EQ(reg.requests(second), 1);
}

TEST(ImageTest, KilledWhileLayersUnpackLeavesNothingHalfMade) {
  HostileRegistry reg;
  ASSERT_TRUE(reg.start()) << reg.log();
  const nlohmann::json& sc = reg.scenario("held-layers");
  Berthd d;
  ASSERT_TRUE(d.start()) << d.log();
  std::thread puller([&] {
    v1::PullImageResponse resp;
    pull(d, reg.ref("held-layers"), &resp);  // fails when berthd dies
  });
  bool unpacking_all = eachHeldLayerIsUnpacking(d, sc);
  d.stop(SIGKILL);
  puller.join();
  ASSERT_TRUE(unpacking_all);
  ASSERT_TRUE(d.start()) << d.log();
  EXPECT_TRUE(listImages(d).empty());
  EXPECT_TRUE(std::filesystem::is_empty(d.root() + "/snapshots"))
      << "half-unpacked layers are removed";
  EXPECT_EQ(filesUnder(d.root() + "/content/ingest"), 0u) << "partial downloads are discarded";
  std::ofstream(sc["release"].get<std::string>()).close();
  EXPECT_EQ(pullOk(d, reg.ref("held-layers")), sc["config_digest"].get<std::string>());
}

TEST(ImageTest, BerthctlImageVerbs) {
  Berthd d;
  ASSERT_TRUE(d.start()) << d.log();
  std::string ref = envKey("BERTH_TEST_IMAGE_BUSYBOX");
  std::string id = envKey("BERTH_TEST_IMAGE_BUSYBOX_CONFIG_DIGEST");
  auto ctl = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {berthctlPath(), "-r", d.endpoint()});
    return runProgram(args, 120);
  };
  RunResult pulled = ctl({"pull", ref});
  ASSERT_EQ(pulled.exit_code, 0) << pulled.err;
  EXPECT_NE(pulled.out.find("Image is up to date for " + id), std::string::npos) << pulled.out;
  RunResult images = ctl({"images"});
  ASSERT_EQ(images.exit_code, 0) << images.err;
  EXPECT_NE(images.out.find(repoOf(ref)), std::string::npos) << images.out;
  EXPECT_NE(images.out.find(id.substr(7, 13)), std::string::npos) << images.out;
  RunResult quiet = ctl({"images", "-q"});
  EXPECT_EQ(quiet.out, id + "\n");
  RunResult inspect = ctl({"inspecti", ref});
  ASSERT_EQ(inspect.exit_code, 0) << inspect.err;
  auto j = nlohmann::json::parse(inspect.out);
  EXPECT_EQ(j["status"]["id"], id);
  EXPECT_EQ(j["info"]["imageSpec"]["os"], "linux");
  RunResult fs = ctl({"imagefsinfo", "-o", "json"});
  ASSERT_EQ(fs.exit_code, 0) << fs.err;
  EXPECT_EQ(nlohmann::json::parse(fs.out)["imageFilesystems"][0]["fsId"]["mountpoint"],
            d.root() + "/snapshots");
  RunResult rmi = ctl({"rmi", ref});
  ASSERT_EQ(rmi.exit_code, 0) << rmi.err;
  EXPECT_TRUE(listImages(d).empty());
  RunResult missing = ctl({"inspecti", ref});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("not found"), std::string::npos);
  RunResult bad = ctl({"pull", "127.0.0.1:1/nothing:1"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("PullImage failed: Unavailable"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace berth::testing
