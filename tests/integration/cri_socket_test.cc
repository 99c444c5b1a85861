// Attacks on berthd's CRI socket, each run against a real berthd that must stay alive and keep
// serving: a flood of connections beyond its open-file limit (issue 12, point 3: gRPC's own
// listener stopped accepting for good after EMFILE), requests that do not parse, and client
// strings made to forge or flood berthd's log.
#include <fcntl.h>
#include <grpcpp/generic/generic_stub.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "berthd_fixture.h"

namespace berth::testing {
namespace {

namespace v1 = runtime::v1;

// Sets `key = value` in the [grpc] table the fixture writes (a second [grpc] table in
// extra_toml would be invalid TOML).
void setGrpcKey(const Berthd& d, const std::string& line) {
  std::string text = slurp(d.configPath());
  size_t at = text.find("[grpc]\n");
  ASSERT_NE(at, std::string::npos) << text;
  text.insert(at + 7, line + "\n");
  std::ofstream(d.configPath()) << text;
}

// Lowers berthd's open-file limit, as `prlimit --nofile=N:N --pid` would.
void limitFds(pid_t pid, rlim_t n) {
  rlimit r{.rlim_cur = n, .rlim_max = n};
  ASSERT_EQ(::prlimit(pid, RLIMIT_NOFILE, &r, nullptr), 0) << std::strerror(errno);
}

// The flood needs more descriptors than berthd has: raise this process's own soft limit.
void roomForFds(rlim_t n) {
  rlimit r{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &r), 0);
  if (r.rlim_cur < n) {
    r.rlim_cur = std::min(n, r.rlim_max);
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &r), 0);
  }
  ASSERT_GE(r.rlim_cur, n) << "the hard open-file limit is too low for this test";
}

// Raw connections that never speak HTTP/2, all closed when it goes.
class Flood {
 public:
  Flood(const std::string& path, int n) {
    for (int i = 0; i < n; ++i) {
      int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (fd < 0) break;
      timeval tv{.tv_sec = 2, .tv_usec = 0};  // a full backlog blocks connect(): not for long
      ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
      sockaddr_un addr{};
      addr.sun_family = AF_UNIX;
      path.copy(addr.sun_path, sizeof(addr.sun_path) - 1);
      if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(fd);
        ++failed_;
        continue;
      }
      fds_.push_back(fd);
    }
  }
  ~Flood() { close(); }
  void close() {
    for (int fd : fds_) ::close(fd);
    fds_.clear();
  }
  size_t connected() const { return fds_.size(); }
  int failed() const { return failed_; }

  // How many connections berthd has closed (refused), waiting until at least `want` are or
  // `timeout` passes.
  size_t closedByBerthd(size_t want, std::chrono::seconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    std::vector<bool> closed(fds_.size(), false);
    size_t n = 0;
    do {
      std::vector<pollfd> p;
      for (int fd : fds_) p.push_back({fd, POLLIN, 0});
      ::poll(p.data(), p.size(), 100);
      for (size_t i = 0; i < p.size(); ++i) {
        if (closed[i] || p[i].revents == 0) continue;
        char buf[256];
        ssize_t got = ::recv(fds_[i], buf, sizeof buf, MSG_DONTWAIT);
        if (got == 0 || (got < 0 && errno != EAGAIN)) {
          closed[i] = true;
          ++n;
        }
      }
    } while (n < want && std::chrono::steady_clock::now() < deadline);
    return n;
  }

 private:
  std::vector<int> fds_;
  int failed_ = 0;
};

bool versionAnswers(const std::shared_ptr<grpc::Channel>& channel, int timeout_s = 5) {
  auto stub = v1::RuntimeService::NewStub(channel);
  v1::VersionResponse resp;
  auto ctx = Berthd::context(timeout_s);
  return stub->Version(ctx.get(), {}, &resp).ok();
}

std::shared_ptr<grpc::Channel> newChannel(const Berthd& d) {
  grpc::ChannelArguments args;
  args.SetInt("grpc.use_local_subchannel_pool", 1);  // never share the fixture's connection
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 500);
  return grpc::CreateCustomChannel("unix:" + d.socket(), grpc::InsecureChannelCredentials(), args);
}

// A fresh client gets an answer within `timeout`.
bool newClientServed(const Berthd& d, std::chrono::seconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (versionAnswers(newChannel(d), 2)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

// The regression test of issue 12, point 3: before, the first EMFILE ended gRPC's listener and
// every later CRI call timed out until berthd was restarted.
TEST(CriSocketTest, ConnectionFloodIsBoundedAndServiceResumesAfterIt) {
  constexpr int kBound = 32;
  constexpr int kFlood = 2000;  // far beyond berthd's 512 descriptors
  Berthd d;
  setGrpcKey(d, "max_connections = " + std::to_string(kBound));
  ASSERT_TRUE(d.start()) << d.log();
  limitFds(d.pid(), 512);
  roomForFds(kFlood + 256);
  ASSERT_TRUE(versionAnswers(d.channel())) << "the client already connected";

  Flood flood(d.socket(), kFlood);
  ASSERT_EQ(flood.connected(), static_cast<size_t>(kFlood)) << flood.failed() << " failed";
  // All but (at most) the bound are refused: closed by berthd at once.
  size_t refused = flood.closedByBerthd(kFlood - kBound, std::chrono::seconds(60));
  EXPECT_GE(refused, static_cast<size_t>(kFlood - kBound));
  // kubelet's connection keeps working, and a new client is refused while the flood holds
  // every slot.
  EXPECT_TRUE(versionAnswers(d.channel())) << d.log();
  EXPECT_FALSE(versionAnswers(newChannel(d), 2));

  flood.close();
  EXPECT_TRUE(newClientServed(d, std::chrono::seconds(30))) << d.log();
  EXPECT_TRUE(versionAnswers(d.channel()));
  EXPECT_EQ(d.stop(SIGTERM), 0) << d.log();
}

// With a bound the open-file limit cannot hold (the limit lowered after start-up), accept
// fails with EMFILE: berthd backs off and accepts again once descriptors are free.
TEST(CriSocketTest, AcceptErrorsDoNotStopTheServer) {
  constexpr int kFlood = 1500;
  Berthd d;  // grpc.max_connections: 1024, above the 256 descriptors berthd keeps
  ASSERT_TRUE(d.start()) << d.log();
  limitFds(d.pid(), 256);
  roomForFds(kFlood + 256);

  {
    Flood flood(d.socket(), kFlood);
    EXPECT_GT(flood.connected(), 256u);
    // The flood is held until berthd has run out of descriptors (it accepts one connection at
    // a time: on a busy machine that takes a moment).
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (d.log().find("Too many open files") == std::string::npos &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_NE(d.log().find("Too many open files"), std::string::npos)
        << "berthd never ran out of descriptors, so this test would prove nothing";
    EXPECT_TRUE(versionAnswers(d.channel())) << "an established connection needs no new fd";
  }
  EXPECT_TRUE(newClientServed(d, std::chrono::seconds(30))) << d.log();
  EXPECT_EQ(::kill(d.pid(), 0), 0) << "berthd is alive";
}

// Connections that never make a call do not hold their slot for ever: after the idle timeout
// berthd closes them, and new clients are taken again.
TEST(CriSocketTest, IdleConnectionsAreClosedAndFreeTheirSlots) {
  constexpr int kBound = 4;
  Berthd d;
  setGrpcKey(
      d, "max_connections = " + std::to_string(kBound) + "\nidle_connection_timeout_seconds = 1");
  ASSERT_TRUE(d.start()) << d.log();
  Flood idle(d.socket(), 3 * kBound);
  ASSERT_EQ(idle.connected(), static_cast<size_t>(3 * kBound));
  // The refused ones at once, the others once they have been idle for a second.
  EXPECT_EQ(idle.closedByBerthd(3 * kBound, std::chrono::seconds(60)),
            static_cast<size_t>(3 * kBound));
  EXPECT_TRUE(newClientServed(d, std::chrono::seconds(30))) << d.log();
  EXPECT_TRUE(versionAnswers(d.channel())) << "the fixture's client reconnects";
}

// A unary call with hand-made bytes; the status berthd answers.
grpc::Status rawCall(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                     const std::string& bytes) {
  grpc::GenericStub stub(channel);
  grpc::Slice slice(bytes);
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  auto ctx = Berthd::context(10);
  std::promise<grpc::Status> done;
  stub.UnaryCall(ctx.get(), method, grpc::StubOptions(), &request, &response,
                 [&done](grpc::Status st) { done.set_value(std::move(st)); });
  return done.get_future().get();
}

TEST(CriSocketTest, MalformedRequestsAreInvalidArgumentNamingTheField) {
  Berthd d;
  ASSERT_TRUE(d.start()) << d.log();
  // RunPodSandboxRequest{config: {metadata: {name: "\xff\xfe"}}}.
  std::string bad_name("\x0a\x06\x0a\x04\x0a\x02\xff\xfe", 8);
  grpc::Status st = rawCall(d.channel(), "/runtime.v1.RuntimeService/RunPodSandbox", bad_name);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  EXPECT_EQ(st.error_message(),
            "malformed runtime.v1.RunPodSandboxRequest: field runtime.v1.PodSandboxMetadata.name "
            "is not valid UTF-8");

  // Truncated garbage, to the other service.
  st = rawCall(d.channel(), "/runtime.v1.ImageService/ImageStatus", std::string("\x0a\x40xy", 4));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  EXPECT_EQ(st.error_message(),
            "malformed runtime.v1.ImageStatusRequest: not a valid protobuf message");

  EXPECT_TRUE(versionAnswers(d.channel())) << d.log();
  v1::ListPodSandboxResponse pods;
  auto ctx = Berthd::context();
  ASSERT_TRUE(d.runtime().ListPodSandbox(ctx.get(), {}, &pods).ok());
  EXPECT_EQ(pods.items_size(), 0) << "nothing was created";
}

TEST(CriSocketTest, ClientStringsCannotForgeOrFloodLogLines) {
  const std::string forged = "2026-01-01T00:00:00.000000Z error [daemon] forged line";
  Berthd d;  // logs at debug: every call is logged with its image or id
  ASSERT_TRUE(d.start()) << d.log();
  {
    v1::RunPodSandboxRequest req;
    req.mutable_config()->mutable_metadata()->set_name("p");
    req.set_runtime_handler("x\n" + forged);
    v1::RunPodSandboxResponse resp;
    auto ctx = Berthd::context();
    EXPECT_EQ(d.runtime().RunPodSandbox(ctx.get(), req, &resp).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  }
  for (const std::string& ref :
       {"busybox\n" + forged, "busybox\r\x1b[2K" + forged, std::string(1 << 20, 'a')}) {
    v1::ImageStatusRequest req;
    req.mutable_image()->set_image(ref);
    v1::ImageStatusResponse resp;
    auto ctx = Berthd::context();
    d.image().ImageStatus(ctx.get(), req, &resp);  // fails or not: it is logged either way
  }
  {
    v1::PodSandboxStatusRequest req;
    req.set_pod_sandbox_id("abc\n" + forged);
    v1::PodSandboxStatusResponse resp;
    auto ctx = Berthd::context();
    grpc::Status st = d.runtime().PodSandboxStatus(ctx.get(), req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << st.error_message();
  }
  EXPECT_TRUE(versionAnswers(d.channel()));
  EXPECT_EQ(d.stop(SIGTERM), 0);

  std::istringstream log(d.log());
  int mentions = 0;
  for (std::string line; std::getline(log, line);) {
    EXPECT_NE(line.rfind(forged, 0), 0u) << "forged line: " << line;
    EXPECT_EQ(line.find('\r'), std::string::npos) << line;
    EXPECT_EQ(line.find('\x1b'), std::string::npos) << line;
    EXPECT_LT(line.size(), 4096u + 256u) << line.substr(0, 200);
    if (line.find("forged line") != std::string::npos) ++mentions;
  }
  EXPECT_GE(mentions, 3) << "the attack strings reached the log (escaped): " << d.log();
}

// "Max open files" of /proc/<pid>/limits: {soft, hard}; {0, 0} when unreadable.
std::pair<uint64_t, uint64_t> openFileLimits(const std::string& limits_text) {
  std::istringstream in(limits_text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("Max open files", 0) != 0) continue;
    std::istringstream fields(line.substr(14));
    uint64_t soft = 0, hard = 0;
    fields >> soft >> hard;
    return {soft, hard};
  }
  return {0, 0};
}

// The pid of this daemon's shim for a pod (its command line names the daemon's dir), or -1.
pid_t shimOf(const Berthd& d) {
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string cmd = slurp(e.path().string() + "/cmdline");
    if (cmd.find("berth-shim") != std::string::npos && cmd.find(d.dir()) != std::string::npos) {
      return std::stoi(name);
    }
  }
  return -1;
}

// berthd raises its own soft limit to the hard limit; the programs it starts (a CNI plugin,
// the pod's shim) get the limit berthd was started with.
TEST(CriSocketTest, ChildrenGetTheOpenFileLimitBerthdWasStartedWith) {
  constexpr rlim_t kStartedWith = 1024;
  rlimit mine{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &mine), 0);
  if (mine.rlim_max <= kStartedWith) GTEST_SKIP() << "the hard limit leaves nothing to raise";
  Berthd d;
  // A chained CNI plugin that writes down its own limits.
  std::string probe_out = d.dir() + "/probe-limits";
  std::ofstream(d.cniBinDir() + "/limitprobe") << R"(#!/usr/bin/python3
import json, os, sys
conf = json.load(sys.stdin)
cmd = os.environ.get("CNI_COMMAND")
if cmd == "ADD":
    with open(conf["out"], "w") as f:
        f.write(open("/proc/self/limits").read())
    json.dump(conf.get("prevResult", {"cniVersion": conf.get("cniVersion")}), sys.stdout)
elif cmd == "VERSION":
    json.dump({"cniVersion": "1.0.0", "supportedVersions": ["0.4.0", "1.0.0"]}, sys.stdout)
)";
  std::filesystem::permissions(d.cniBinDir() + "/limitprobe", std::filesystem::perms::owner_all);
  d.writeCniConfig(R"({"type": "limitprobe", "out": ")" + probe_out + R"("})");

  rlimit lowered = mine;
  lowered.rlim_cur = kStartedWith;
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &lowered), 0);
  bool started = d.start();  // berthd inherits the lowered soft limit
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &mine), 0);
  ASSERT_TRUE(started) << d.log();
  auto daemon = openFileLimits(slurp("/proc/" + std::to_string(d.pid()) + "/limits"));
  EXPECT_EQ(daemon.first, mine.rlim_max) << "berthd raised its soft limit to the hard limit";

  v1::RunPodSandboxRequest req;
  auto* c = req.mutable_config();
  c->mutable_metadata()->set_name("limits");
  c->mutable_metadata()->set_namespace_("default");
  c->mutable_metadata()->set_uid("uid-limits");
  c->mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_network(v1::POD);
  v1::RunPodSandboxResponse resp;
  auto ctx = Berthd::context(120);
  grpc::Status st = d.runtime().RunPodSandbox(ctx.get(), req, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message() << "\n" << d.log();

  auto plugin = openFileLimits(slurp(probe_out));
  EXPECT_EQ(plugin.first, kStartedWith) << slurp(probe_out);
  pid_t shim = shimOf(d);
  ASSERT_GT(shim, 0);
  auto shim_limits = openFileLimits(slurp("/proc/" + std::to_string(shim) + "/limits"));
  EXPECT_EQ(shim_limits.first, kStartedWith);
  EXPECT_EQ(shim_limits.second, mine.rlim_max);
}

}  // namespace
}  // namespace berth::testing
