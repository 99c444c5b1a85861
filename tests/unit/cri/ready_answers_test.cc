// ReadyAnswers: answers made by the store's writer for each change of a pod or container
// record, so that status and list calls copy them (issue 15 point 2).
#include "cri/ready_answers.h"

#include <gtest/gtest.h>

#include "../store/test_util.h"

namespace berth::cri {
namespace {

using store::testing::fullContainer;
using store::testing::fullSandbox;
using store::testing::hexId;
using store::testing::TempDir;

class ReadyAnswersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = *store::Store::open(dir_.file("meta.db"));
    store::SandboxRecord pod = fullSandbox(pod_id_);
    pod.pending = store::Pending::kNone;
    v1::PodSandboxConfig config;
    config.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_pid(
        v1::CONTAINER);
    pod.config_bytes = config.SerializeAsString();
    pod.netns_closed = false;
    ASSERT_TRUE(store_->createSandbox(pod).ok());
  }
  // A running container whose stored config has a mount and resources, and whose spec a user.
  store::ContainerRecord container(char c) {
    store::ContainerRecord r = fullContainer(hexId(c), pod_id_, std::string("app") + c);
    r.state = store::ContainerState::kRunning;
    r.pending = store::Pending::kNone;
    r.reason.clear();
    v1::ContainerConfig config;
    config.mutable_image()->set_image("busybox");
    config.add_mounts()->set_container_path("/data");
    config.mutable_linux()->mutable_resources()->set_memory_limit_in_bytes(64 << 20);
    r.config_bytes = config.SerializeAsString();
    r.spec_json = R"({"process":{"user":{"uid":1000,"gid":100,"additionalGids":[7,8]}}})";
    return r;
  }

  TempDir dir_;
  const std::string pod_id_ = hexId('a');
  std::unique_ptr<store::Store> store_;
};

TEST_F(ReadyAnswersTest, AnswersAreMadeOncePerChangeAndCarryWhatTheRecordsSay) {
  store::ContainerRecord c = container('c');
  ASSERT_TRUE(store_->createContainer(c).ok());
  ReadyAnswers answers(*store_);
  EXPECT_EQ(answers.made(), 2u) << "what the store held when observing began";

  ContainerAnswerPtr a = answers.container(c.id);
  ASSERT_NE(a, nullptr);
  EXPECT_FALSE(a->hidden);
  EXPECT_EQ(a->listed.state(), v1::CONTAINER_RUNNING);
  EXPECT_EQ(a->listed.pod_sandbox_id(), pod_id_);
  const v1::ContainerStatus& s = a->status;
  EXPECT_EQ(s.id(), c.id);
  EXPECT_EQ(s.state(), v1::CONTAINER_RUNNING);
  EXPECT_EQ(s.started_at(), c.started_at_ns);
  EXPECT_EQ(s.finished_at(), 0);
  ASSERT_EQ(s.mounts_size(), 1);
  EXPECT_EQ(s.mounts(0).container_path(), "/data");
  EXPECT_EQ(s.resources().linux().memory_limit_in_bytes(), 64 << 20);
  EXPECT_EQ(s.user().linux().uid(), 1000);
  EXPECT_EQ(s.user().linux().gid(), 100);
  EXPECT_EQ(s.user().linux().supplemental_groups_size(), 2);
  EXPECT_EQ(v1::Signal_Name(s.stop_signal()), "SIGUSR1");
  EXPECT_EQ(s.image().image(), c.image_ref);
  EXPECT_EQ(s.image_ref(), c.image_id);

  // The made list bytes are field 1 of the list response: concatenated, they parse as a list.
  v1::ListContainersResponse listed;
  ASSERT_TRUE(listed.ParseFromString(a->listed_field + a->listed_field));
  ASSERT_EQ(listed.containers_size(), 2);
  EXPECT_EQ(listed.containers(1).id(), c.id);
  EXPECT_EQ(listed.containers(1).state(), v1::CONTAINER_RUNNING);

  PodAnswerPtr p = answers.pod(pod_id_);
  ASSERT_NE(p, nullptr);
  v1::ListPodSandboxResponse pods;
  ASSERT_TRUE(pods.ParseFromString(p->listed_field));
  ASSERT_EQ(pods.items_size(), 1);
  EXPECT_EQ(pods.items(0).id(), pod_id_);
  EXPECT_EQ(p->status.state(), v1::SANDBOX_READY);
  EXPECT_EQ(p->status.network().ip(), "10.88.0.7");
  EXPECT_EQ(p->status.linux().namespaces().options().pid(), v1::CONTAINER);
  EXPECT_EQ(p->listed.runtime_handler(), "runc");

  // A change makes a new answer before the writer returns; a write that changes nothing none.
  ASSERT_TRUE(store_
                  ->updateContainer(c.id,
                                    [](store::ContainerRecord& r) {
                                      r.state = store::ContainerState::kExited;
                                      r.exit_code = 0;
                                      r.finished_at_ns = 42;
                                      return absl::OkStatus();
                                    })
                  .ok());
  EXPECT_EQ(answers.made(), 3u);
  a = answers.container(c.id);
  EXPECT_EQ(a->status.state(), v1::CONTAINER_EXITED);
  EXPECT_EQ(a->status.reason(), "Completed");
  EXPECT_EQ(a->status.finished_at(), 42);
  ASSERT_TRUE(
      store_->updateContainer(c.id, [](store::ContainerRecord&) { return absl::OkStatus(); }).ok());
  EXPECT_EQ(answers.made(), 3u);

  // Reading makes nothing.
  for (int i = 0; i < 10; ++i) {
    (void)answers.container(c.id);
    (void)answers.containers(pod_id_);
    (void)answers.pods();
  }
  EXPECT_EQ(answers.made(), 3u);

  ASSERT_TRUE(store_->deleteContainer(c.id).ok());
  EXPECT_EQ(answers.container(c.id), nullptr);
  EXPECT_TRUE(answers.containers().empty());
}

TEST_F(ReadyAnswersTest, ARecordBeingCreatedIsHiddenAndPodFiltersHold) {
  ReadyAnswers answers(*store_);
  store::ContainerRecord making = container('m');
  making.state = store::ContainerState::kCreated;
  making.pending = store::Pending::kCreating;
  ASSERT_TRUE(store_->createContainer(making).ok());
  EXPECT_TRUE(answers.container(making.id)->hidden);
  ASSERT_TRUE(store_
                  ->updateContainer(making.id,
                                    [](store::ContainerRecord& r) {
                                      r.pending = store::Pending::kNone;
                                      return absl::OkStatus();
                                    })
                  .ok());
  EXPECT_FALSE(answers.container(making.id)->hidden);
  EXPECT_EQ(answers.containers(pod_id_).size(), 1u);
  EXPECT_TRUE(answers.containers(hexId('z')).empty());
}

TEST_F(ReadyAnswersTest, ImageNamesFollowTheImagesReferences) {
  v1::ContainerStatus s;
  s.mutable_image()->set_image("busybox");
  s.set_image_ref("sha256:abc");
  withImageNames({}, &s);
  EXPECT_EQ(s.image().image(), "busybox");
  EXPECT_EQ(s.image_ref(), "sha256:abc");
  withImageNames({"docker.io/library/busybox:1.36", "docker.io/library/busybox@sha256:def",
                  "docker.io/library/busybox:latest"},
                 &s);
  EXPECT_EQ(s.image().image(), "docker.io/library/busybox:1.36");
  EXPECT_EQ(s.image_ref(), "docker.io/library/busybox@sha256:def");
}

}  // namespace
}  // namespace berth::cri
