// A classic-BPF evaluator for seccomp programs, for tests: what a program returns for one
// syscall (number, architecture, arguments), as the kernel would run it.
#pragma once

#include <linux/filter.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

namespace berth::testing {

struct SyscallInput {
  int32_t nr = 0;
  uint32_t arch = 0;
  uint64_t ip = 0;
  std::array<uint64_t, 6> args{};
};

// The program's return value, or nullopt with `*why` set when the program is malformed for
// the kernel (a jump or a load out of bounds, an instruction seccomp does not allow).
inline std::optional<uint32_t> evalSeccomp(const std::vector<sock_filter>& prog,
                                           const SyscallInput& in, std::string* why) {
  unsigned char data[64] = {};  // struct seccomp_data
  std::memcpy(data, &in.nr, 4);
  std::memcpy(data + 4, &in.arch, 4);
  std::memcpy(data + 8, &in.ip, 8);
  std::memcpy(data + 16, in.args.data(), 48);
  uint32_t a = 0, x = 0, mem[BPF_MEMWORDS] = {};
  for (size_t pc = 0; pc < prog.size(); ++pc) {
    const sock_filter& i = prog[pc];
    uint32_t src = BPF_SRC(i.code) == BPF_X ? x : i.k;
    auto bad = [&](const char* what) {
      *why = std::string(what) + " at " + std::to_string(pc);
      return std::nullopt;
    };
    switch (BPF_CLASS(i.code)) {
      case BPF_LD:
        if (i.code == (BPF_LD | BPF_W | BPF_ABS)) {
          if (i.k > 60 || i.k % 4 != 0) return bad("load out of seccomp_data");
          std::memcpy(&a, data + i.k, 4);
        } else if (i.code == (BPF_LD | BPF_IMM)) {
          a = i.k;
        } else if (i.code == (BPF_LD | BPF_MEM) && i.k < BPF_MEMWORDS) {
          a = mem[i.k];
        } else {
          return bad("unknown load");
        }
        break;
      case BPF_LDX:
        if (i.code == (BPF_LDX | BPF_IMM)) {
          x = i.k;
        } else if (i.code == (BPF_LDX | BPF_MEM) && i.k < BPF_MEMWORDS) {
          x = mem[i.k];
        } else {
          return bad("unknown load into X");
        }
        break;
      case BPF_ST:
      case BPF_STX:
        if (i.k >= BPF_MEMWORDS) return bad("store out of scratch memory");
        mem[i.k] = BPF_CLASS(i.code) == BPF_ST ? a : x;
        break;
      case BPF_ALU:
        switch (BPF_OP(i.code)) {
          case BPF_ADD:
            a += src;
            break;
          case BPF_SUB:
            a -= src;
            break;
          case BPF_MUL:
            a *= src;
            break;
          case BPF_AND:
            a &= src;
            break;
          case BPF_OR:
            a |= src;
            break;
          case BPF_XOR:
            a ^= src;
            break;
          case BPF_LSH:
            a = src < 32 ? a << src : 0;
            break;
          case BPF_RSH:
            a = src < 32 ? a >> src : 0;
            break;
          case BPF_NEG:
            a = 0 - a;
            break;
          default:
            return bad("unknown ALU operation");
        }
        break;
      case BPF_JMP: {
        size_t next = 0;
        if (BPF_OP(i.code) == BPF_JA) {
          next = pc + 1 + i.k;
        } else {
          bool taken = false;
          switch (BPF_OP(i.code)) {
            case BPF_JEQ:
              taken = a == src;
              break;
            case BPF_JGT:
              taken = a > src;
              break;
            case BPF_JGE:
              taken = a >= src;
              break;
            case BPF_JSET:
              taken = (a & src) != 0;
              break;
            default:
              return bad("unknown jump");
          }
          next = pc + 1 + (taken ? i.jt : i.jf);
        }
        if (next >= prog.size()) return bad("jump out of the program");
        pc = next - 1;
        break;
      }
      case BPF_RET:
        return BPF_RVAL(i.code) == BPF_A ? a : i.k;
      case BPF_MISC:
        if (BPF_MISCOP(i.code) == BPF_TAX) {
          x = a;
        } else {
          a = x;
        }
        break;
      default:
        return bad("unknown instruction class");
    }
  }
  *why = "the program ends without a return";
  return std::nullopt;
}

}  // namespace berth::testing
