// buildRuncSeccompProgram: runc 1.1.5's specconv.SetupSeccomp, seccomp.InitSeccomp and
// patchbpf.PatchAndLoad up to the load, step by step (docs/exec-in-monitor.md, §5).
#include "shim/seccomp_filter.h"

#include <dlfcn.h>
#include <linux/audit.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <string>

#include "common/unique_fd.h"

namespace berth::shim {
namespace {

// runc's configs.Action.
enum class Action {
  kKill,
  kKillThread,
  kKillProcess,
  kErrno,
  kTrap,
  kAllow,
  kTrace,
  kLog,
  kNotify
};

std::optional<Action> actionNamed(const std::string& s) {
  static const std::map<std::string, Action> m = {{"SCMP_ACT_KILL", Action::kKill},
                                                  {"SCMP_ACT_KILL_THREAD", Action::kKillThread},
                                                  {"SCMP_ACT_KILL_PROCESS", Action::kKillProcess},
                                                  {"SCMP_ACT_ERRNO", Action::kErrno},
                                                  {"SCMP_ACT_TRAP", Action::kTrap},
                                                  {"SCMP_ACT_ALLOW", Action::kAllow},
                                                  {"SCMP_ACT_TRACE", Action::kTrace},
                                                  {"SCMP_ACT_LOG", Action::kLog},
                                                  {"SCMP_ACT_NOTIFY", Action::kNotify}};
  auto it = m.find(s);
  if (it == m.end()) return std::nullopt;
  return it->second;
}

// runc's getAction: Errno and Trace return EPERM unless the profile names an errno; the errno
// keeps its low 16 bits (Go's int16 conversion).
uint32_t nativeAction(Action a, std::optional<uint64_t> errno_ret) {
  uint32_t ret = errno_ret ? static_cast<uint32_t>(*errno_ret) : static_cast<uint32_t>(EPERM);
  switch (a) {
    case Action::kKill:
    case Action::kKillThread:
      return SCMP_ACT_KILL_THREAD;
    case Action::kKillProcess:
      return SCMP_ACT_KILL_PROCESS;
    case Action::kErrno:
      return SCMP_ACT_ERRNO(ret);
    case Action::kTrace:
      return SCMP_ACT_TRACE(ret);
    case Action::kTrap:
      return SCMP_ACT_TRAP;
    case Action::kAllow:
      return SCMP_ACT_ALLOW;
    case Action::kLog:
      return SCMP_ACT_LOG;
    case Action::kNotify:
      return SCMP_ACT_NOTIFY;
  }
  return SCMP_ACT_KILL_THREAD;
}

// runc's ConvertStringToArch names with libseccomp's token for each and the native (audit)
// architecture runc's archToNative gives it.
struct Arch {
  uint32_t token;
  uint32_t native;
};
std::optional<Arch> archNamed(const std::string& s) {
  static const std::map<std::string, Arch> m = {
      {"SCMP_ARCH_X86", {SCMP_ARCH_X86, AUDIT_ARCH_I386}},
      {"SCMP_ARCH_X86_64", {SCMP_ARCH_X86_64, AUDIT_ARCH_X86_64}},
      {"SCMP_ARCH_X32", {SCMP_ARCH_X32, AUDIT_ARCH_X86_64}},
      {"SCMP_ARCH_ARM", {SCMP_ARCH_ARM, AUDIT_ARCH_ARM}},
      {"SCMP_ARCH_AARCH64", {SCMP_ARCH_AARCH64, AUDIT_ARCH_AARCH64}},
      {"SCMP_ARCH_MIPS", {SCMP_ARCH_MIPS, AUDIT_ARCH_MIPS}},
      {"SCMP_ARCH_MIPS64", {SCMP_ARCH_MIPS64, AUDIT_ARCH_MIPS64}},
      {"SCMP_ARCH_MIPS64N32", {SCMP_ARCH_MIPS64N32, AUDIT_ARCH_MIPS64N32}},
      {"SCMP_ARCH_MIPSEL", {SCMP_ARCH_MIPSEL, AUDIT_ARCH_MIPSEL}},
      {"SCMP_ARCH_MIPSEL64", {SCMP_ARCH_MIPSEL64, AUDIT_ARCH_MIPSEL64}},
      {"SCMP_ARCH_MIPSEL64N32", {SCMP_ARCH_MIPSEL64N32, AUDIT_ARCH_MIPSEL64N32}},
      {"SCMP_ARCH_PPC", {SCMP_ARCH_PPC, AUDIT_ARCH_PPC}},
      {"SCMP_ARCH_PPC64", {SCMP_ARCH_PPC64, AUDIT_ARCH_PPC64}},
      {"SCMP_ARCH_PPC64LE", {SCMP_ARCH_PPC64LE, AUDIT_ARCH_PPC64LE}},
      {"SCMP_ARCH_S390", {SCMP_ARCH_S390, AUDIT_ARCH_S390}},
      {"SCMP_ARCH_S390X", {SCMP_ARCH_S390X, AUDIT_ARCH_S390X}}};
  auto it = m.find(s);
  if (it == m.end()) return std::nullopt;
  return it->second;
}

std::optional<scmp_compare> operatorNamed(const std::string& s) {
  static const std::map<std::string, scmp_compare> m = {{"SCMP_CMP_NE", SCMP_CMP_NE},
                                                        {"SCMP_CMP_LT", SCMP_CMP_LT},
                                                        {"SCMP_CMP_LE", SCMP_CMP_LE},
                                                        {"SCMP_CMP_EQ", SCMP_CMP_EQ},
                                                        {"SCMP_CMP_GE", SCMP_CMP_GE},
                                                        {"SCMP_CMP_GT", SCMP_CMP_GT},
                                                        {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ}};
  auto it = m.find(s);
  if (it == m.end()) return std::nullopt;
  return it->second;
}

// One configs.Syscall: specconv makes one per name of a spec rule.
struct Rule {
  std::string name;
  Action action = Action::kErrno;
  std::optional<uint64_t> errno_ret;
  std::vector<scmp_arg_cmp> args;
};

struct Config {
  Action default_action = Action::kErrno;
  std::optional<uint64_t> default_errno_ret;
  std::vector<Arch> arches;
  std::vector<Rule> rules;
};

Outcome unsupported(const std::string& what) {
  return Outcome::error(Code::kFailedPrecondition, "seccomp: " + what);
}

std::optional<uint64_t> optionalUint(const Json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_number_integer()) return std::nullopt;
  return it->get<uint64_t>();
}

// specconv.SetupSeccomp. `*present` is false when runc would load no filter.
Outcome parseConfig(const Json& s, Config* c, bool* present) {
  *present = false;
  if (!s.is_object()) return unsupported("linux.seccomp is not an object");
  std::string default_action;
  getString(s, "defaultAction", &default_action);
  auto syscalls = s.find("syscalls");
  bool no_rules = syscalls == s.end() || !syscalls->is_array() || syscalls->empty();
  if (default_action.empty() && no_rules) return Outcome::success();
  if (auto f = s.find("flags"); f != s.end() && f->is_array() && !f->empty()) {
    return unsupported("flags (runc 1.1 does not support them)");
  }
  if (auto a = s.find("architectures"); a != s.end() && a->is_array()) {
    for (const Json& name : *a) {
      std::optional<Arch> arch = archNamed(name.is_string() ? name.get<std::string>() : "");
      if (!arch) return unsupported("unknown architecture " + name.dump());
      c->arches.push_back(*arch);
    }
  }
  std::optional<Action> def = actionNamed(default_action);
  if (!def) return unsupported("unknown default action \"" + default_action + "\"");
  c->default_action = *def;
  c->default_errno_ret = optionalUint(s, "defaultErrnoRet");
  if (!no_rules) {
    for (const Json& r : *syscalls) {
      std::string action_name;
      if (!r.is_object() || !getString(r, "action", &action_name)) {
        return unsupported("a rule without an action");
      }
      std::optional<Action> action = actionNamed(action_name);
      if (!action) return unsupported("unknown action \"" + action_name + "\"");
      Rule rule{.action = *action, .errno_ret = optionalUint(r, "errnoRet")};
      if (auto args = r.find("args"); args != r.end() && args->is_array()) {
        for (const Json& a : *args) {
          std::string op_name;
          if (!a.is_object()) return unsupported("an argument that is not an object");
          getString(a, "op", &op_name);
          std::optional<scmp_compare> op = operatorNamed(op_name);
          if (!op) return unsupported("unknown operator \"" + op_name + "\"");
          uint64_t index = optionalUint(a, "index").value_or(0);
          // libseccomp-golang's MakeCondition refuses an argument beyond the sixth.
          if (index > 5) return unsupported("argument index " + std::to_string(index));
          rule.args.push_back(scmp_arg_cmp{.arg = static_cast<unsigned int>(index),
                                           .op = *op,
                                           .datum_a = optionalUint(a, "value").value_or(0),
                                           .datum_b = optionalUint(a, "valueTwo").value_or(0)});
        }
      }
      if (auto names = r.find("names"); names != r.end() && names->is_array()) {
        for (const Json& n : *names) {
          rule.name = n.is_string() ? n.get<std::string>() : "";
          c->rules.push_back(rule);
        }
      }
    }
  }
  for (const Rule& r : c->rules) {
    if (r.action == Action::kNotify) return unsupported("a notify action (needs runc's agent)");
  }
  if (c->default_action == Action::kNotify) return unsupported("a notify default action");
  *present = true;
  return Outcome::success();
}

// libseccomp, opened only while a program is built: an idle shim does not map it (about
// 17 kB of PSS per shim on this machine).
struct Libseccomp {
  void* handle = nullptr;
  decltype(&seccomp_init) init = nullptr;
  decltype(&seccomp_release) release = nullptr;
  decltype(&seccomp_attr_set) attr_set = nullptr;
  decltype(&seccomp_arch_add) arch_add = nullptr;
  decltype(&seccomp_syscall_resolve_name) resolve = nullptr;
  decltype(&seccomp_syscall_resolve_name_arch) resolve_arch = nullptr;
  decltype(&seccomp_rule_add_array) rule_add = nullptr;
  decltype(&seccomp_export_bpf) export_bpf = nullptr;

  Libseccomp() = default;
  Libseccomp(const Libseccomp&) = delete;
  Libseccomp& operator=(const Libseccomp&) = delete;
  ~Libseccomp() {
    if (handle != nullptr) ::dlclose(handle);
  }

  Outcome open() {
    handle = ::dlopen("libseccomp.so.2", RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      const char* why = ::dlerror();
      return Outcome::error(Code::kFailedPrecondition,
                            std::string("seccomp: libseccomp: ") + (why ? why : "not found"));
    }
    bool all = symbol("seccomp_init", &init) && symbol("seccomp_release", &release) &&
               symbol("seccomp_attr_set", &attr_set) && symbol("seccomp_arch_add", &arch_add) &&
               symbol("seccomp_syscall_resolve_name", &resolve) &&
               symbol("seccomp_syscall_resolve_name_arch", &resolve_arch) &&
               symbol("seccomp_rule_add_array", &rule_add) &&
               symbol("seccomp_export_bpf", &export_bpf);
    if (!all) return Outcome::error(Code::kFailedPrecondition, "seccomp: libseccomp is too old");
    return Outcome::success();
  }

 private:
  template <typename F>
  bool symbol(const char* name, F* out) {
    *out = reinterpret_cast<F>(::dlsym(handle, name));
    return *out != nullptr;
  }
};

struct FilterCtx {
  const Libseccomp& lib;
  scmp_filter_ctx ctx = nullptr;
  ~FilterCtx() {
    if (ctx != nullptr) lib.release(ctx);
  }
};

Outcome libseccompError(const std::string& what, int rc) {
  return Outcome::error(Code::kInternal, "seccomp: " + what + ": " + std::strerror(-rc));
}

// runc's matchCall.
Outcome addRule(const Libseccomp& lib, scmp_filter_ctx ctx, const Rule& r,
                uint32_t default_action) {
  if (r.name.empty()) return unsupported("a rule with an empty syscall name");
  uint32_t action = nativeAction(r.action, r.errno_ret);
  if (action == default_action) return Outcome::success();  // redundant: runc skips it
  int nr = lib.resolve(r.name.c_str());
  if (nr == __NR_SCMP_ERROR) return Outcome::success();  // unknown here: runc ignores it
  auto add = [&](const scmp_arg_cmp* args, unsigned int n) -> Outcome {
    int rc = lib.rule_add(ctx, action, nr, n, args);
    if (rc != 0) return libseccompError("adding the rule for " + r.name, rc);
    return Outcome::success();
  };
  if (r.args.empty()) return add(nullptr, 0);
  // Two conditions on one argument: each becomes a rule of its own (runc's "old behavior").
  unsigned counts[6] = {};
  bool repeated = false;
  for (const scmp_arg_cmp& a : r.args) repeated = repeated || ++counts[a.arg] > 1;
  if (!repeated) return add(r.args.data(), static_cast<unsigned int>(r.args.size()));
  for (const scmp_arg_cmp& a : r.args) {
    if (Outcome o = add(&a, 1); !o.ok()) return o;
  }
  return Outcome::success();
}

// seccomp_export_bpf into memory (libseccomp 2.5 writes only to a descriptor).
Outcome exportProgram(const Libseccomp& lib, scmp_filter_ctx ctx, std::vector<sock_filter>* out) {
  UniqueFd fd(::memfd_create("berth-seccomp", MFD_CLOEXEC));
  if (!fd.valid()) return Outcome::fromErrno(errno, "seccomp: memfd_create");
  if (int rc = lib.export_bpf(ctx, fd.get()); rc != 0) return libseccompError("export", rc);
  off_t size = ::lseek(fd.get(), 0, SEEK_END);
  if (size < 0 || size % sizeof(sock_filter) != 0) {
    return Outcome::error(Code::kInternal, "seccomp: the exported program has a partial insn");
  }
  out->resize(static_cast<size_t>(size) / sizeof(sock_filter));
  if (::pread(fd.get(), out->data(), static_cast<size_t>(size), 0) != size) {
    return Outcome::fromErrno(errno, "seccomp: read the exported program");
  }
  return Outcome::success();
}

// runc's findLastSyscalls: every rule counts, whatever its action.
LastSyscalls lastSyscalls(const Libseccomp& lib, const Config& c) {
  LastSyscalls last;
  for (const Arch& arch : c.arches) {
    auto& per_native = last[arch.native];
    if (per_native.contains(arch.token)) continue;
    int32_t largest = 0;
    for (const Rule& r : c.rules) {
      int nr = lib.resolve_arch(arch.token, r.name.c_str());
      if (nr != __NR_SCMP_ERROR && nr > largest) largest = nr;
    }
    // A native architecture without syscalls stays, empty: its jump goes straight to the
    // filter, as in runc.
    if (largest != 0) per_native[arch.token] = largest;
  }
  return last;
}

// golang.org/x/net/bpf's instructions, assembled as bpf.Assemble does.
sock_filter load(uint32_t offset) {
  return {static_cast<uint16_t>(BPF_LD | BPF_W | BPF_ABS), 0, 0, offset};
}
sock_filter jump(uint32_t skip) { return {static_cast<uint16_t>(BPF_JMP | BPF_JA), 0, 0, skip}; }
sock_filter ret(uint32_t value) { return {static_cast<uint16_t>(BPF_RET | BPF_K), 0, 0, value}; }
enum class Test { kEqual, kNotEqual, kGreater, kLessOrEqual, kBitsSet, kBitsNotSet };
sock_filter jumpIf(Test t, uint32_t k, uint32_t skip_true, uint32_t skip_false = 0) {
  uint16_t op = BPF_JEQ;
  bool flip = false;  // the negated tests swap the targets of the positive one
  switch (t) {
    case Test::kEqual:
      break;
    case Test::kNotEqual:
      flip = true;
      break;
    case Test::kGreater:
      op = BPF_JGT;
      break;
    case Test::kLessOrEqual:
      op = BPF_JGT;
      flip = true;
      break;
    case Test::kBitsSet:
      op = BPF_JSET;
      break;
    case Test::kBitsNotSet:
      op = BPF_JSET;
      flip = true;
      break;
  }
  auto jt = static_cast<uint8_t>(skip_true), jf = static_cast<uint8_t>(skip_false);
  if (flip) std::swap(jt, jf);
  return {static_cast<uint16_t>(BPF_JMP | op | BPF_K), jt, jf, k};
}

using Insns = std::vector<sock_filter>;
void prepend(Insns* to, const Insns& head) { to->insert(to->begin(), head.begin(), head.end()); }

constexpr uint32_t kRetEnosys = SCMP_ACT_ERRNO(ENOSYS);
constexpr uint32_t kX32Bit = 1U << 30;

Outcome tooFar() { return unsupported("the -ENOSYS stub would need a long jump"); }

}  // namespace

Outcome runcEnosysStub(const LastSyscalls& last, std::vector<sock_filter>* out) {
  std::map<uint32_t, uint32_t> arch_jump;  // from the end of the stub
  Insns tail = {jump(1), ret(kRetEnosys)};
  for (const auto& [native, per_arch] : last) {
    uint32_t base_enosys = static_cast<uint32_t>(tail.size()) - 1, base_filter = base_enosys + 1;
    Insns section = {load(0)};
    if (per_arch.empty()) continue;
    if (per_arch.size() == 1) {
      auto [arch, sysno] = *per_arch.begin();
      // s390's setup(2) (number 0) multiplexes syscalls the kernel does not know.
      if (arch == SCMP_ARCH_S390 || arch == SCMP_ARCH_S390X) {
        section.push_back(jumpIf(Test::kNotEqual, 0, 1));
        section.push_back(ret(kRetEnosys));
      }
      if (base_enosys + 1 > 255) return tooFar();
      Insns section_tail = {jumpIf(Test::kGreater, static_cast<uint32_t>(sysno), base_enosys + 1),
                            jump(base_filter)};
      if (native == AUDIT_ARCH_X86_64) {
        auto over = static_cast<uint32_t>(section_tail.size() - 1);
        if (arch == SCMP_ARCH_X86_64) {
          prepend(&section_tail, {jumpIf(Test::kBitsSet, kX32Bit, over)});
        } else if (arch == SCMP_ARCH_X32) {
          prepend(&section_tail, {jumpIf(Test::kBitsNotSet, kX32Bit, over)});
        } else {
          return unsupported("an unknown x86_64 architecture");
        }
      }
      section.insert(section.end(), section_tail.begin(), section_tail.end());
    } else if (per_arch.size() == 2) {
      auto x32 = per_arch.find(SCMP_ARCH_X32), x86_64 = per_arch.find(SCMP_ARCH_X86_64);
      if (native != AUDIT_ARCH_X86_64 || x32 == per_arch.end() || x86_64 == per_arch.end()) {
        return unsupported("an unknown overlap of architectures");
      }
      if (base_enosys + 2 > 255) return tooFar();
      section.push_back(jumpIf(Test::kBitsSet, kX32Bit, 1));
      section.push_back(
          jumpIf(Test::kGreater, static_cast<uint32_t>(x86_64->second), base_enosys + 2, 1));
      section.push_back(
          jumpIf(Test::kGreater, static_cast<uint32_t>(x32->second), base_enosys + 1));
      section.push_back(jump(base_filter));
    } else {
      return unsupported("more than two architectures on one native one");
    }
    prepend(&tail, section);
    arch_jump[native] = static_cast<uint32_t>(tail.size());
  }
  // Any other architecture goes to the filter (and its bad-architecture action).
  prepend(&tail, {jump(static_cast<uint32_t>(tail.size()))});
  for (const auto& [native, per_arch] : last) {
    auto it = arch_jump.find(native);
    uint32_t skip = static_cast<uint32_t>(tail.size()) - (it == arch_jump.end() ? 0 : it->second);
    if (skip > 255) return tooFar();
    prepend(&tail, {jumpIf(Test::kEqual, native, skip)});
  }
  prepend(&tail, {load(4)});
  *out = std::move(tail);
  return Outcome::success();
}

Outcome buildRuncSeccompProgram(const Json& seccomp, SeccompProgram* out) {
  Config c;
  bool present = false;
  if (Outcome r = parseConfig(seccomp, &c, &present); !r.ok() || !present) {
    *out = SeccompProgram{};
    return r;
  }
  // InitSeccomp, with libseccomp-golang's NewFilter (which asks for TSYNC; runc does not pass
  // it to the kernel) and SetNoNewPrivsBit(false).
  uint32_t default_action = nativeAction(c.default_action, c.default_errno_ret);
  Libseccomp lib;
  if (Outcome o = lib.open(); !o.ok()) return o;
  FilterCtx f{.lib = lib};
  f.ctx = lib.init(default_action);
  if (f.ctx == nullptr) return Outcome::error(Code::kInternal, "seccomp: seccomp_init failed");
  if (int rc = lib.attr_set(f.ctx, SCMP_FLTATR_CTL_TSYNC, 1); rc != 0 && rc != -EOPNOTSUPP) {
    return libseccompError("set tsync", rc);
  }
  for (const Arch& a : c.arches) {
    int rc = lib.arch_add(f.ctx, a.token);
    if (rc != 0 && rc != -EEXIST) return libseccompError("add an architecture", rc);
  }
  if (int rc = lib.attr_set(f.ctx, SCMP_FLTATR_CTL_NNP, 0); rc != 0) {
    return libseccompError("clear the no_new_privs bit", rc);
  }
  for (const Rule& r : c.rules) {
    if (Outcome o = addRule(lib, f.ctx, r, default_action); !o.ok()) return o;
  }
  Insns program;
  if (Outcome o = exportProgram(lib, f.ctx, &program); !o.ok()) return o;
  // patchbpf's generatePatch. runc 1.1.5 compares defaultErrnoRet with SCMP_ACT_ERRNO(ENOSYS)
  // rather than ENOSYS, so in practice only a permissive default action skips the stub.
  Insns stub;
  bool permissive = c.default_action == Action::kAllow || c.default_action == Action::kLog ||
                    c.default_action == Action::kTrace;
  bool skip = (c.default_errno_ret && *c.default_errno_ret == kRetEnosys) || permissive;
  if (!skip) {
    if (Outcome o = runcEnosysStub(lastSyscalls(lib, c), &stub); !o.ok()) return o;
  }
  if (stub.size() + program.size() > BPF_MAXINSNS) {
    return unsupported("a program of more than " + std::to_string(BPF_MAXINSNS) + " insns");
  }
  out->stub_size = stub.size();
  out->insns = std::move(stub);
  out->insns.insert(out->insns.end(), program.begin(), program.end());
  return Outcome::success();
}

}  // namespace berth::shim
