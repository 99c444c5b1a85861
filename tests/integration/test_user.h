// The "other local user" of security tests: a system account made for one test and removed
// at its end, and a way to run code as that user in a child process.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>

namespace berth::testing {

class TestUser {
 public:
  // useradd --system --no-create-home (a fresh name per object); fails the test if it cannot.
  TestUser();
  // userdel.
  ~TestUser();
  TestUser(const TestUser&) = delete;
  TestUser& operator=(const TestUser&) = delete;

  bool ok() const { return uid_ != 0; }
  const std::string& name() const { return name_; }
  uid_t uid() const { return uid_; }
  gid_t gid() const { return gid_; }

  // Runs `fn` in a forked child that has dropped to this user (no supplementary groups, no
  // capabilities); returns fn's result (0..255) as the child's exit code, or -1 if the child
  // died otherwise or outlived `timeout_s` (it is then killed).
  int runAs(const std::function<int()>& fn, int timeout_s = 60) const;

 private:
  std::string name_;
  uid_t uid_ = 0;
  gid_t gid_ = 0;
};

}  // namespace berth::testing
