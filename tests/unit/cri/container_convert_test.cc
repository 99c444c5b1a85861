// CRI ContainerConfig → berth's config, container names and log paths.
#include <gtest/gtest.h>

#include "cri/container_handlers.h"

namespace berth::cri {
namespace {

v1::ContainerConfig minimal() {
  v1::ContainerConfig c;
  c.mutable_metadata()->set_name("app");
  c.mutable_metadata()->set_attempt(2);
  c.mutable_image()->set_image("busybox:1.0");
  return c;
}

TEST(ContainerConvertTest, CopiesEveryField) {
  v1::ContainerConfig c = minimal();
  c.add_command("sh");
  c.add_args("-c");
  c.set_working_dir("/w");
  auto* kv = c.add_envs();
  kv->set_key("A");
  kv->set_value("1");
  auto* m = c.add_mounts();
  m->set_container_path("/data");
  m->set_host_path("/srv/data");
  m->set_readonly(true);
  m->set_propagation(v1::PROPAGATION_HOST_TO_CONTAINER);
  auto* dev = c.add_devices();
  dev->set_host_path("/dev/null");
  c.set_tty(true);
  c.set_stdin(true);
  auto* lx = c.mutable_linux();
  lx->mutable_resources()->set_memory_limit_in_bytes(1 << 20);
  lx->mutable_resources()->set_cpu_quota(5000);
  (*lx->mutable_resources()->mutable_unified())["pids.max"] = "10";
  auto* sc = lx->mutable_security_context();
  sc->mutable_capabilities()->add_add_capabilities("NET_ADMIN");
  sc->mutable_capabilities()->add_drop_capabilities("ALL");
  sc->mutable_run_as_user()->set_value(1000);
  sc->mutable_run_as_group()->set_value(100);
  sc->add_supplemental_groups(5);
  sc->set_readonly_rootfs(true);
  sc->set_no_new_privs(true);
  sc->mutable_namespace_options()->set_pid(v1::CONTAINER);
  sc->mutable_seccomp()->set_profile_type(v1::SecurityProfile::Localhost);
  sc->mutable_seccomp()->set_localhost_ref("/p.json");

  auto out = toContainerConfig(c);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->name, "app");
  EXPECT_EQ(out->attempt, 2u);
  EXPECT_EQ(out->command, std::vector<std::string>{"sh"});
  EXPECT_EQ(out->args, std::vector<std::string>{"-c"});
  EXPECT_EQ(out->working_dir, "/w");
  ASSERT_EQ(out->envs.size(), 1u);
  EXPECT_EQ(out->envs[0].second, "1");
  ASSERT_EQ(out->mounts.size(), 1u);
  EXPECT_TRUE(out->mounts[0].readonly);
  EXPECT_EQ(out->mounts[0].propagation, oci::MountPropagation::kHostToContainer);
  ASSERT_EQ(out->devices.size(), 1u);
  EXPECT_TRUE(out->tty);
  EXPECT_TRUE(out->stdin);
  EXPECT_EQ(out->resources.memory_limit_in_bytes, 1 << 20);
  EXPECT_EQ(out->resources.cpu_quota, 5000);
  EXPECT_EQ(out->resources.unified.at("pids.max"), "10");
  EXPECT_EQ(out->security.add_capabilities, std::vector<std::string>{"NET_ADMIN"});
  EXPECT_EQ(out->security.drop_capabilities, std::vector<std::string>{"ALL"});
  EXPECT_EQ(out->security.run_as_user, 1000);
  EXPECT_EQ(out->security.run_as_group, 100);
  EXPECT_EQ(out->security.supplemental_groups, std::vector<int64_t>{5});
  EXPECT_TRUE(out->security.readonly_rootfs);
  EXPECT_TRUE(out->security.no_new_privs);
  EXPECT_EQ(out->security.pid, sandbox::NamespaceMode::kContainer);
  ASSERT_TRUE(out->security.seccomp.has_value());
  EXPECT_EQ(out->security.seccomp->type, oci::SecurityProfileType::kLocalhost);
  EXPECT_EQ(out->security.seccomp->localhost_ref, "/p.json");
  EXPECT_FALSE(out->security.apparmor.has_value());
}

TEST(ContainerConvertTest, DeprecatedProfileStrings) {
  v1::ContainerConfig c = minimal();
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  c.mutable_linux()->mutable_security_context()->set_seccomp_profile_path("runtime/default");
  c.mutable_linux()->mutable_security_context()->set_apparmor_profile("localhost/berth-x");
#pragma GCC diagnostic pop
  auto out = toContainerConfig(c);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->security.seccomp->type, oci::SecurityProfileType::kRuntimeDefault);
  EXPECT_EQ(out->security.apparmor->type, oci::SecurityProfileType::kLocalhost);
  EXPECT_EQ(out->security.apparmor->localhost_ref, "berth-x");
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  c.mutable_linux()->mutable_security_context()->set_seccomp_profile_path("whatever");
#pragma GCC diagnostic pop
  EXPECT_TRUE(absl::IsInvalidArgument(toContainerConfig(c).status()));
}

// Fields issue 16 added: recursive read-only mounts, supplemental_groups_policy Strict, env
// values that are bytes.
TEST(ContainerConvertTest, WorkloadFeatures) {
  v1::ContainerConfig c = minimal();
  auto* m = c.add_mounts();
  m->set_container_path("/v");
  m->set_host_path("/srv");
  m->set_readonly(true);
  m->set_recursive_read_only(true);
  c.mutable_linux()->mutable_security_context()->set_supplemental_groups_policy(v1::Strict);
  auto* kv = c.add_envs();
  kv->set_key("BIN");
  kv->set_value(std::string("\xFFok", 3));
  auto out = toContainerConfig(c);
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->mounts.size(), 1u);
  EXPECT_TRUE(out->mounts[0].recursive_read_only);
  EXPECT_TRUE(out->security.strict_supplemental_groups);
  ASSERT_FALSE(out->envs.empty());
  EXPECT_EQ(out->envs.back(), (std::pair<std::string, std::string>{"BIN", "\xEF\xBF\xBDok"}));
  c.mutable_linux()->mutable_security_context()->set_supplemental_groups_policy(v1::Merge);
  out = toContainerConfig(c);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_FALSE(out->security.strict_supplemental_groups);

  // CDI devices: the field's first, then each cdi.k8s.io/ annotation's comma-separated list.
  v1::ContainerConfig cdi = minimal();
  cdi.add_cdi_devices()->set_name("a.com/gpu=0");
  (*cdi.mutable_annotations())["cdi.k8s.io/net"] = "b.com/nic=x, b.com/nic=y";
  (*cdi.mutable_annotations())["other/key"] = "not=cdi";
  out = toContainerConfig(cdi);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->cdi_devices,
            (std::vector<std::string>{"a.com/gpu=0", "b.com/nic=x", "b.com/nic=y"}));

  // An image volume: no host path, read-only; its image and sub path are kept.
  v1::ContainerConfig iv = minimal();
  auto* vm = iv.add_mounts();
  vm->set_container_path("/iv");
  vm->mutable_image()->set_image("sha256:abc");
  vm->set_image_sub_path("data");
  vm->set_readonly(true);
  out = toContainerConfig(iv);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->mounts[0].image, "sha256:abc");
  EXPECT_EQ(out->mounts[0].image_sub_path, "data");
  vm->set_readonly(false);
  auto st = toContainerConfig(iv).status();
  EXPECT_TRUE(absl::IsInvalidArgument(st));
  EXPECT_NE(
      st.message().find("ImageVolumeMountFailed: image volume at \"/iv\": it must be read-only"),
      std::string::npos)
      << st;
  vm->set_readonly(true);
  vm->set_host_path("/srv");
  st = toContainerConfig(iv).status();
  EXPECT_TRUE(absl::IsInvalidArgument(st));
  EXPECT_NE(st.message().find("host_path must be empty"), std::string::npos) << st;
}

TEST(ContainerConvertTest, RefusesMissingFieldsAndUnsupportedFeatures) {
  v1::ContainerConfig c = minimal();
  c.mutable_metadata()->set_name("");
  EXPECT_TRUE(absl::IsInvalidArgument(toContainerConfig(c).status()));
  c = minimal();
  c.mutable_image()->set_image("");
  EXPECT_TRUE(absl::IsInvalidArgument(toContainerConfig(c).status()));
  c = minimal();
  c.mutable_linux()->mutable_security_context()->set_supplemental_groups_policy(
      static_cast<v1::SupplementalGroupsPolicy>(7));
  auto st = toContainerConfig(c).status();
  EXPECT_TRUE(absl::IsInvalidArgument(st));
  EXPECT_NE(st.message().find("supplemental_groups_policy 7"), std::string::npos) << st;
  c = minimal();
  c.mutable_linux()->mutable_security_context()->mutable_capabilities()->add_add_ambient_capabilities("X");
  EXPECT_TRUE(absl::IsInvalidArgument(toContainerConfig(c).status()));
  c = minimal();
  c.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_pid(v1::TARGET);
  EXPECT_TRUE(absl::IsInvalidArgument(toContainerConfig(c).status())) << "TARGET without target_id";
}

TEST(ContainerConvertTest, LogPaths) {
  EXPECT_EQ(*containerLogPath("/var/log/pods/p", "app/0.log"), "/var/log/pods/p/app/0.log");
  EXPECT_EQ(*containerLogPath("/var/log/pods/p/", "0.log"), "/var/log/pods/p/0.log");
  EXPECT_EQ(*containerLogPath("", ""), "");
  EXPECT_EQ(*containerLogPath("/x", ""), "");
  for (auto [dir, path] : std::vector<std::pair<std::string, std::string>>{
           {"", "a.log"}, {"rel", "a.log"}, {"/x", "/abs.log"}, {"/x", "../a.log"},
           {"/x", "a/../../b.log"}, {"/x", "dir/"}}) {
    EXPECT_TRUE(absl::IsInvalidArgument(containerLogPath(dir, path).status())) << dir << " " << path;
  }
}

TEST(ContainerConvertTest, ContainerName) {
  store::SandboxRecord pod;
  pod.metadata = {.name = "web", .uid = "u1", .ns = "prod", .attempt = 0};
  v1::ContainerMetadata m;
  m.set_name("nginx");
  m.set_attempt(3);
  EXPECT_EQ(containerName(m, pod), "nginx_web_prod_u1_3");
}

// The CRI signal called `name` (the enum values share their names with <signal.h>'s macros).
v1::Signal criEnum(const char* name) {
  v1::Signal s = v1::RUNTIME_DEFAULT;
  EXPECT_TRUE(v1::Signal_Parse(name, &s)) << name;
  return s;
}

// kubelet sends SIGRTMINPLUS3 (ContainerStopSignals); runtimes name it SIGRTMIN+3.
TEST(ContainerConvertTest, SignalsBothWays) {
  EXPECT_EQ(signalName(criEnum("SIGTERM")), "SIGTERM");
  EXPECT_EQ(signalName(v1::SIGRTMINPLUS3), "SIGRTMIN+3");
  EXPECT_EQ(signalName(v1::SIGRTMAXMINUS2), "SIGRTMAX-2");
  EXPECT_EQ(criSignal("SIGUSR1"), criEnum("SIGUSR1"));
  EXPECT_EQ(criSignal("USR1"), criEnum("SIGUSR1"));
  EXPECT_EQ(criSignal("10"), criEnum("SIGUSR1")) << "an image may give a number";
  EXPECT_EQ(criSignal("SIGRTMIN+3"), v1::SIGRTMINPLUS3);
  EXPECT_EQ(criSignal("SIGRTMAX-2"), v1::SIGRTMAXMINUS2);
  EXPECT_EQ(criSignal("SIGIOT"), criEnum("SIGABRT")) << "aliases report the usual name";
  EXPECT_EQ(criSignal("SIGNOPE"), v1::RUNTIME_DEFAULT);
  // Every CRI signal survives the round trip through the runtime's name.
  const google::protobuf::EnumDescriptor* d = v1::Signal_descriptor();
  for (int i = 0; i < d->value_count(); ++i) {
    auto s = static_cast<v1::Signal>(d->value(i)->number());
    if (s == v1::RUNTIME_DEFAULT || s == criEnum("SIGIOT") || s == criEnum("SIGPOLL") ||
        s == criEnum("SIGCLD")) {
      continue;  // aliases
    }
    EXPECT_EQ(criSignal(signalName(s)), s) << signalName(s);
  }
}

}  // namespace
}  // namespace berth::cri
