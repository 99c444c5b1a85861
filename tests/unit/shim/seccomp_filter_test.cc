// The seccomp program berth-shim builds for its execs: runc 1.1.5's -ENOSYS stub instruction
// by instruction, and what whole programs return for syscalls (run by a BPF evaluator).
#include "shim/seccomp_filter.h"

#include <gtest/gtest.h>
#include <linux/audit.h>

#include <cerrno>
#include <string>
#include <vector>

#include "shim/bpf_eval.h"

namespace berth::shim {
namespace {

using testing::evalSeccomp;
using testing::SyscallInput;

constexpr uint32_t kX32 = 0x40000000;  // __X32_SYSCALL_BIT
constexpr uint32_t kRetAllow = 0x7fff0000;
constexpr uint32_t kRetEnosys = 0x00050000 | ENOSYS;
constexpr uint32_t kRetEperm = 0x00050000 | EPERM;
// libseccomp's token for x32 (EM_X86_64 | __AUDIT_ARCH_LE), not an audit architecture.
constexpr uint32_t kScmpX32 = 62 | 0x40000000;

std::string show(const std::vector<sock_filter>& p) {
  std::string s;
  for (const sock_filter& i : p) {
    s += std::to_string(i.code) + " " + std::to_string(i.jt) + " " + std::to_string(i.jf) + " " +
         std::to_string(i.k) + "\n";
  }
  return s;
}

sock_filter insn(uint16_t code, uint8_t jt, uint8_t jf, uint32_t k) { return {code, jt, jf, k}; }
constexpr uint16_t kLd = BPF_LD | BPF_W | BPF_ABS, kJa = BPF_JMP | BPF_JA,
                   kJeq = BPF_JMP | BPF_JEQ | BPF_K, kJgt = BPF_JMP | BPF_JGT | BPF_K,
                   kJset = BPF_JMP | BPF_JSET | BPF_K, kRet = BPF_RET | BPF_K;

// Worked out by hand from patchbpf.generateEnosysStub for x86_64 + x32 + x86, the
// architectures of the default profile on amd64.
TEST(SeccompStubTest, DefaultArchitecturesOfAmd64) {
  LastSyscalls last = {{AUDIT_ARCH_X86_64, {{AUDIT_ARCH_X86_64, 335}, {kScmpX32, kX32 | 547}}},
                       {AUDIT_ARCH_I386, {{AUDIT_ARCH_I386, 440}}}};
  std::vector<sock_filter> stub;
  ASSERT_TRUE(runcEnosysStub(last, &stub).ok());
  std::vector<sock_filter> want = {
      insn(kLd, 0, 0, 4),
      insn(kJeq, 2, 0, AUDIT_ARCH_X86_64),
      insn(kJeq, 6, 0, AUDIT_ARCH_I386),
      insn(kJa, 0, 0, 10),
      insn(kLd, 0, 0, 0),  // x86_64 and x32
      insn(kJset, 1, 0, kX32),
      insn(kJgt, 6, 1, 335),
      insn(kJgt, 5, 0, kX32 | 547),
      insn(kJa, 0, 0, 5),
      insn(kLd, 0, 0, 0),  // x86
      insn(kJgt, 2, 0, 440),
      insn(kJa, 0, 0, 2),
      insn(kJa, 0, 0, 1),
      insn(kRet, 0, 0, kRetEnosys),
  };
  EXPECT_EQ(show(stub), show(want));
}

// One architecture on x86_64: its section skips x32 syscalls (bit 30) into the filter.
TEST(SeccompStubTest, X86_64Alone) {
  std::vector<sock_filter> stub;
  ASSERT_TRUE(runcEnosysStub({{AUDIT_ARCH_X86_64, {{AUDIT_ARCH_X86_64, 335}}}}, &stub).ok());
  std::vector<sock_filter> want = {insn(kLd, 0, 0, 4),          insn(kJeq, 1, 0, AUDIT_ARCH_X86_64),
                                   insn(kJa, 0, 0, 6),          insn(kLd, 0, 0, 0),
                                   insn(kJset, 1, 0, kX32),     insn(kJgt, 2, 0, 335),
                                   insn(kJa, 0, 0, 2),          insn(kJa, 0, 0, 1),
                                   insn(kRet, 0, 0, kRetEnosys)};
  EXPECT_EQ(show(stub), show(want));
}

// A profile without architectures: the stub only jumps over itself; an architecture without
// any known syscall jumps straight to the filter.
TEST(SeccompStubTest, NoArchitecturesAndAnEmptyOne) {
  std::vector<sock_filter> stub;
  ASSERT_TRUE(runcEnosysStub({}, &stub).ok());
  EXPECT_EQ(show(stub), show({insn(kLd, 0, 0, 4), insn(kJa, 0, 0, 2), insn(kJa, 0, 0, 1),
                              insn(kRet, 0, 0, kRetEnosys)}));
  ASSERT_TRUE(runcEnosysStub({{AUDIT_ARCH_AARCH64, {}}}, &stub).ok());
  EXPECT_EQ(show(stub),
            show({insn(kLd, 0, 0, 4), insn(kJeq, 3, 0, AUDIT_ARCH_AARCH64), insn(kJa, 0, 0, 2),
                  insn(kJa, 0, 0, 1), insn(kRet, 0, 0, kRetEnosys)}));
}

TEST(SeccompStubTest, AnUnknownOverlapIsRefused) {
  std::vector<sock_filter> stub;
  EXPECT_FALSE(
      runcEnosysStub({{AUDIT_ARCH_I386, {{AUDIT_ARCH_I386, 4}, {AUDIT_ARCH_ARM, 5}}}}, &stub).ok());
}

SeccompProgram build(const std::string& profile) {
  SeccompProgram p;
  Outcome r = buildRuncSeccompProgram(Json::parse(profile), &p);
  EXPECT_TRUE(r.ok()) << r.message;
  return p;
}

uint32_t eval(const SeccompProgram& p, int32_t nr, uint32_t arch = AUDIT_ARCH_X86_64,
              std::array<uint64_t, 6> args = {}) {
  std::string why;
  auto r = evalSeccomp(p.insns, SyscallInput{.nr = nr, .arch = arch, .args = args}, &why);
  EXPECT_TRUE(r.has_value()) << why << "\n" << show(p.insns);
  return r.value_or(0xdeadbeef);
}

TEST(SeccompProgramTest, NoActionAndNoRulesIsNoFilter) {
  SeccompProgram p = build(R"({"architectures": ["SCMP_ARCH_X86_64"]})");
  EXPECT_TRUE(p.insns.empty());
}

// A permissive default gets no stub: syscalls the profile does not name are allowed.
TEST(SeccompProgramTest, AllowByDefaultHasNoStub) {
  SeccompProgram p = build(R"({"defaultAction": "SCMP_ACT_ALLOW",
      "architectures": ["SCMP_ARCH_X86_64"],
      "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 99}]})");
  EXPECT_EQ(p.stub_size, 0u);
  EXPECT_EQ(eval(p, 83 /* mkdir */), 0x00050000u | 99);
  EXPECT_EQ(eval(p, 0), kRetAllow);
  EXPECT_EQ(eval(p, 1000), kRetAllow);
}

// Deny by default: unlisted syscalls the profile's range covers get EPERM, newer ones ENOSYS,
// per architecture; a rule whose action is the default one is left out but still counts for
// the range, as in runc.
TEST(SeccompProgramTest, DenyByDefaultGetsTheEnosysStub) {
  SeccompProgram p = build(R"({"defaultAction": "SCMP_ACT_ERRNO",
      "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
      "syscalls": [{"names": ["read", "write", "no_such_call"], "action": "SCMP_ACT_ALLOW"},
                   {"names": ["openat"], "action": "SCMP_ACT_ERRNO"}]})");
  EXPECT_EQ(p.stub_size, 14u);
  EXPECT_EQ(eval(p, 0), kRetAllow);
  EXPECT_EQ(eval(p, 2), kRetEperm);         // open: in range, not allowed
  EXPECT_EQ(eval(p, 257), kRetEperm);       // openat: the largest the profile names
  EXPECT_EQ(eval(p, 258), kRetEnosys);      // beyond it: unknown to the profile
  EXPECT_EQ(eval(p, kX32 | 0), kRetAllow);  // x32 read
  EXPECT_EQ(eval(p, kX32 | 300), kRetEnosys);
  EXPECT_EQ(eval(p, 3, AUDIT_ARCH_I386), kRetAllow);    // i386 read
  EXPECT_EQ(eval(p, 295, AUDIT_ARCH_I386), kRetEperm);  // i386 openat
  EXPECT_EQ(eval(p, 296, AUDIT_ARCH_I386), kRetEnosys);
  EXPECT_EQ(eval(p, 0, AUDIT_ARCH_AARCH64), 0u);  // not in the profile: killed
}

// runc 1.1.5 compares defaultErrnoRet with SCMP_ACT_ERRNO(ENOSYS), not with ENOSYS.
TEST(SeccompProgramTest, DefaultErrnoRetDecidesTheStubAsRuncDoes) {
  const std::string rules = R"(, "architectures": ["SCMP_ARCH_X86_64"],
      "syscalls": [{"names": ["write"], "action": "SCMP_ACT_ALLOW"}]})";
  SeccompProgram enosys =
      build(R"({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38)" + rules);
  EXPECT_EQ(enosys.stub_size, 9u);
  SeccompProgram token = build(R"({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": )" +
                               std::to_string(kRetEnosys) + rules);
  EXPECT_EQ(token.stub_size, 0u);
  SeccompProgram log = build(R"({"defaultAction": "SCMP_ACT_LOG")" + rules);
  EXPECT_EQ(log.stub_size, 0u);
}

TEST(SeccompProgramTest, ActionsMapAsInRunc) {
  SeccompProgram p = build(R"({"defaultAction": "SCMP_ACT_ALLOW",
      "architectures": ["SCMP_ARCH_X86_64"],
      "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_KILL"},
                   {"names": ["getppid"], "action": "SCMP_ACT_KILL_PROCESS"},
                   {"names": ["getuid"], "action": "SCMP_ACT_TRAP"},
                   {"names": ["getgid"], "action": "SCMP_ACT_LOG"},
                   {"names": ["geteuid"], "action": "SCMP_ACT_TRACE"},
                   {"names": ["getegid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 65549}]})");
  EXPECT_EQ(eval(p, 39 /* getpid */), 0u);
  EXPECT_EQ(eval(p, 110 /* getppid */), 0x80000000u);
  EXPECT_EQ(eval(p, 102 /* getuid */), 0x00030000u);
  EXPECT_EQ(eval(p, 104 /* getgid */), 0x7ffc0000u);
  EXPECT_EQ(eval(p, 107 /* geteuid */), 0x7ff00000u | EPERM);
  EXPECT_EQ(eval(p, 108 /* getegid */), 0x00050000u | EACCES);  // Go's int16: 65549 → 13
}

// Conditions on different arguments must all hold; two on one argument become rules of their
// own, either of which matches (runc's "old behavior").
TEST(SeccompProgramTest, ArgumentConditionsAsInRunc) {
  SeccompProgram p = build(R"({"defaultAction": "SCMP_ACT_ERRNO",
      "architectures": ["SCMP_ARCH_X86_64"],
      "syscalls": [
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},
                  {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
        {"names": ["kill"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                  {"index": 1, "value": 9, "op": "SCMP_CMP_EQ"}]},
        {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 268435456, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}]})");
  EXPECT_EQ(eval(p, 135, AUDIT_ARCH_X86_64, {0}), kRetAllow);
  EXPECT_EQ(eval(p, 135, AUDIT_ARCH_X86_64, {8}), kRetAllow);
  EXPECT_EQ(eval(p, 135, AUDIT_ARCH_X86_64, {9}), kRetEperm);
  EXPECT_EQ(eval(p, 62, AUDIT_ARCH_X86_64, {1, 9}), kRetAllow);
  EXPECT_EQ(eval(p, 62, AUDIT_ARCH_X86_64, {1, 15}), kRetEperm);
  EXPECT_EQ(eval(p, 62, AUDIT_ARCH_X86_64, {2, 9}), kRetEperm);
  EXPECT_EQ(eval(p, 56, AUDIT_ARCH_X86_64, {0x11}), kRetAllow);
  EXPECT_EQ(eval(p, 56, AUDIT_ARCH_X86_64, {0x10000011}), kRetEperm);  // CLONE_NEWUSER
}

// What runc would refuse at create time, or handles with its own agent, is runc's.
TEST(SeccompProgramTest, WhatTheShimDoesNotBuildIsRefused) {
  const char* refused[] = {
      R"({"defaultAction": "SCMP_ACT_ALLOW",
          "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]})",
      R"({"defaultAction": "SCMP_ACT_NOTIFY"})",
      R"({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_LOG"]})",
      R"({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_RISCV64"]})",
      R"({"defaultAction": "SCMP_ACT_SOMETHING"})",
      R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["kill"],
          "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_XX"}]}]})",
      R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["kill"],
          "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]})",
      // libseccomp refuses an errno above 4095: runc fails such an exec in its own words.
      R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["kill"],
          "action": "SCMP_ACT_ERRNO", "errnoRet": 5000}]})",
  };
  for (const char* profile : refused) {
    SeccompProgram p;
    EXPECT_FALSE(buildRuncSeccompProgram(Json::parse(profile), &p).ok()) << profile;
  }
}

}  // namespace
}  // namespace berth::shim
