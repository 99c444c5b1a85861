// Tests for the RuntimeDefault seccomp profile and Localhost profile loading.
#include "oci/seccomp_default.h"

#include <fstream>

#include "common/test_dir.h"
#include "gtest/gtest.h"

namespace berth::oci {
namespace {

using nlohmann::json;

// The action a profile gives `name` when the filter has no argument conditions; "" if the
// syscall appears in no unconditional rule.
std::string actionFor(const json& profile, const std::string& name) {
  for (const json& rule : profile["syscalls"]) {
    if (rule.contains("args")) continue;
    for (const json& n : rule["names"]) {
      if (n == name) return rule["action"];
    }
  }
  return "";
}

bool hasConditionalRule(const json& profile, const std::string& name) {
  for (const json& rule : profile["syscalls"]) {
    if (!rule.contains("args")) continue;
    for (const json& n : rule["names"]) {
      if (n == name) return true;
    }
  }
  return false;
}

TEST(SeccompDefaultTest, Shape) {
  json p = defaultSeccompProfile({});
  EXPECT_EQ(p["defaultAction"], "SCMP_ACT_ERRNO");
  EXPECT_EQ(p["defaultErrnoRet"], 1);
#if defined(__x86_64__)
  EXPECT_EQ(p["architectures"], (json{"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"}));
#endif
  for (const char* allowed : {"read", "write", "openat", "execve", "futex", "exit_group",
                              "rt_sigreturn", "epoll_wait", "clock_gettime", "arch_prctl"}) {
    EXPECT_EQ(actionFor(p, allowed), "SCMP_ACT_ALLOW") << allowed;
  }
  for (const char* denied : {"mount", "umount2", "reboot", "kexec_load", "init_module", "bpf",
                             "ptrace", "unshare", "setns", "chroot", "add_key", "keyctl"}) {
    EXPECT_EQ(actionFor(p, denied), "") << denied;
  }
  EXPECT_TRUE(hasConditionalRule(p, "socket"));
  EXPECT_TRUE(hasConditionalRule(p, "personality"));
}

struct CapCase {
  const char* cap;
  std::vector<const char*> unlocks;
};

TEST(SeccompDefaultTest, CapabilitiesUnlockSyscalls) {
  const CapCase cases[] = {
      {"CAP_SYS_ADMIN", {"mount", "umount2", "unshare", "setns", "sethostname", "clone", "clone3"}},
      {"CAP_SYS_PTRACE", {"ptrace", "process_vm_readv", "kcmp"}},
      {"CAP_SYS_CHROOT", {"chroot"}},
      {"CAP_SYS_BOOT", {"reboot"}},
      {"CAP_SYS_MODULE", {"init_module", "finit_module", "delete_module"}},
      {"CAP_SYS_TIME", {"settimeofday", "clock_settime"}},
      {"CAP_SYS_NICE", {"mbind", "set_mempolicy"}},
      {"CAP_DAC_READ_SEARCH", {"open_by_handle_at"}},
      {"CAP_BPF", {"bpf"}},
  };
  for (const auto& tc : cases) {
    SCOPED_TRACE(tc.cap);
    json without = defaultSeccompProfile({});
    json with = defaultSeccompProfile({tc.cap});
    for (const char* s : tc.unlocks) {
      EXPECT_EQ(actionFor(with, s), "SCMP_ACT_ALLOW") << s;
      if (std::string(s) != "clone3") {
        EXPECT_EQ(actionFor(without, s), "") << s;
      }
    }
  }
}

TEST(SeccompDefaultTest, CloneWithoutSysAdmin) {
  json p = defaultSeccompProfile({"CAP_CHOWN"});
  EXPECT_TRUE(hasConditionalRule(p, "clone"));
  EXPECT_EQ(actionFor(p, "clone3"), "SCMP_ACT_ERRNO");
  bool enosys = false;
  for (const json& rule : p["syscalls"]) {
    if (rule["names"] == json{"clone3"}) enosys = rule["errnoRet"] == 38;
  }
  EXPECT_TRUE(enosys);
  json admin = defaultSeccompProfile({"CAP_SYS_ADMIN"});
  EXPECT_FALSE(hasConditionalRule(admin, "clone"));
}

TEST(SeccompLocalhostTest, Load) {
  testing::TestDir dir;
  std::ofstream(dir / "good.json") << R"({"defaultAction":"SCMP_ACT_LOG","syscalls":[]})";
  std::ofstream(dir / "bad.json") << "{not json";
  std::ofstream(dir / "noaction.json") << R"({"syscalls":[]})";

  auto good = loadSeccompProfile(dir / "good.json");
  ASSERT_TRUE(good.ok()) << good.status();
  EXPECT_EQ((*good)["defaultAction"], "SCMP_ACT_LOG");

  struct Case {
    std::string path;
    absl::StatusCode code;
  } cases[] = {
      {"relative/profile.json", absl::StatusCode::kInvalidArgument},
      {"", absl::StatusCode::kInvalidArgument},
      {dir / "missing.json", absl::StatusCode::kNotFound},
      {dir / "bad.json", absl::StatusCode::kInvalidArgument},
      {dir / "noaction.json", absl::StatusCode::kInvalidArgument},
  };
  for (const auto& tc : cases) {
    auto p = loadSeccompProfile(tc.path);
    ASSERT_FALSE(p.ok()) << tc.path;
    EXPECT_EQ(p.status().code(), tc.code) << p.status();
    EXPECT_NE(p.status().message().find(tc.path), absl::string_view::npos) << p.status();
  }
}

}  // namespace
}  // namespace berth::oci
