#include "cri/stream_handlers.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "store/state.h"

namespace berth::cri {
namespace {

// A blocking TCP connection to the loopback address; tries IPv4, then IPv6.
absl::StatusOr<UniqueFd> dialLoopback(int32_t port) {
  absl::Status last;
  for (int family : {AF_INET, AF_INET6}) {
    UniqueFd fd(::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd.valid()) {
      last = lastErrnoStatus("socket");
      continue;
    }
    sockaddr_storage ss{};
    socklen_t len;
    if (family == AF_INET) {
      auto* a = reinterpret_cast<sockaddr_in*>(&ss);
      a->sin_family = AF_INET;
      a->sin_port = htons(static_cast<uint16_t>(port));
      a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      len = sizeof *a;
    } else {
      auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
      a->sin6_family = AF_INET6;
      a->sin6_port = htons(static_cast<uint16_t>(port));
      a->sin6_addr = in6addr_loopback;
      len = sizeof *a;
    }
    int r;
    do {
      r = ::connect(fd.get(), reinterpret_cast<sockaddr*>(&ss), len);
    } while (r != 0 && errno == EINTR);
    if (r == 0) return fd;
    last = aboutObject(
        lastErrnoStatus(absl::StrCat("dial ", family == AF_INET ? "127.0.0.1:" : "[::1]:", port)));
  }
  return last;
}

}  // namespace

absl::StatusOr<UniqueFd> dialInNetns(const std::string& netns_path, int32_t port) {
  if (netns_path.empty()) return dialLoopback(port);
  UniqueFd ns(::open(netns_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!ns.valid()) return lastErrnoStatus(absl::StrCat("open network namespace ", netns_path));
  absl::StatusOr<UniqueFd> result = absl::InternalError("not run");
  // setns() changes only the calling thread; the socket keeps the namespace it was made in.
  std::thread t([&] {
    if (::setns(ns.get(), CLONE_NEWNET) != 0) {
      result = lastErrnoStatus(absl::StrCat("enter network namespace ", netns_path));
      return;
    }
    result = dialLoopback(port);
  });
  t.join();
  return result;
}

absl::StatusOr<std::string> StreamHandlers::runningContainer(const char* rpc,
                                                              const std::string& id) const {
  if (id.empty()) return absl::InvalidArgumentError(absl::StrCat(rpc, ": container_id is required"));
  BERTH_ASSIGN_OR_RETURN(std::string full, store_.resolveContainerId(id));
  BERTH_ASSIGN_OR_RETURN(auto rec, store_.getContainer(full));
  if (rec->state != store::ContainerState::kRunning) {
    return absl::FailedPreconditionError(absl::StrCat(rpc, ": container ", full, " is in state ",
                                                      store::toString(rec->state),
                                                      ", not running"));
  }
  return full;
}

absl::StatusOr<std::string> StreamHandlers::url(streaming::StreamRequest req) const {
  if (server_ == nullptr) return absl::UnavailableError("the streaming server is not running");
  return server_->urlFor(std::move(req));
}

namespace {

// The stdio both Exec and Attach ask for, checked as containerd checks it.
template <typename Req, typename Params>
absl::Status takeStdio(const char* rpc, const Req& req, Params* p) {
  if (!req.stdin() && !req.stdout() && !req.stderr()) {
    return absl::InvalidArgumentError(
        absl::StrCat(rpc, ": one of stdin, stdout or stderr must be set"));
  }
  if (req.tty() && req.stderr()) {
    return absl::InvalidArgumentError(absl::StrCat(rpc, ": tty and stderr cannot both be set"));
  }
  p->tty = req.tty();
  p->stdin = req.stdin();
  p->stdout = req.stdout();
  p->stderr = req.stderr();
  return absl::OkStatus();
}

}  // namespace

absl::Status StreamHandlers::exec(const v1::ExecRequest& req, v1::ExecResponse* resp) {
  BERTH_ASSIGN_OR_RETURN(std::string id, runningContainer("Exec", req.container_id()));
  if (req.cmd().empty()) return absl::InvalidArgumentError("Exec: cmd is required");
  streaming::ExecParams p;
  BERTH_RETURN_IF_ERROR(takeStdio("Exec", req, &p));
  p.container_id = id;
  p.cmd.assign(req.cmd().begin(), req.cmd().end());
  BERTH_ASSIGN_OR_RETURN(std::string u, url(std::move(p)));
  resp->set_url(u);
  return absl::OkStatus();
}

absl::Status StreamHandlers::attach(const v1::AttachRequest& req, v1::AttachResponse* resp) {
  BERTH_ASSIGN_OR_RETURN(std::string id, runningContainer("Attach", req.container_id()));
  streaming::AttachParams p;
  BERTH_RETURN_IF_ERROR(takeStdio("Attach", req, &p));
  p.container_id = id;
  BERTH_ASSIGN_OR_RETURN(std::string u, url(std::move(p)));
  resp->set_url(u);
  return absl::OkStatus();
}

absl::Status StreamHandlers::portForward(const v1::PortForwardRequest& req,
                                         v1::PortForwardResponse* resp) {
  if (req.pod_sandbox_id().empty()) {
    return absl::InvalidArgumentError("PortForward: pod_sandbox_id is required");
  }
  BERTH_ASSIGN_OR_RETURN(std::string id, store_.resolveSandboxId(req.pod_sandbox_id()));
  BERTH_ASSIGN_OR_RETURN(auto pod, store_.getSandbox(id));
  if (pod->state != store::SandboxState::kReady) {
    return absl::FailedPreconditionError(absl::StrCat("PortForward: pod sandbox ", id,
                                                      " is in state ", store::toString(pod->state),
                                                      ", not ready"));
  }
  streaming::PortForwardParams p;
  p.sandbox_id = id;
  for (int32_t port : req.port()) {
    if (port <= 0 || port > 65535) {
      return absl::InvalidArgumentError(absl::StrCat("PortForward: invalid port ", port));
    }
    p.ports.push_back(port);
  }
  BERTH_ASSIGN_OR_RETURN(std::string u, url(std::move(p)));
  resp->set_url(u);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<shim::StreamedProcess>> StreamHandlers::exec(
    const streaming::ExecParams& p) {
  return containers_.execStreamed(p.container_id, p.cmd, p.tty, p.stdin);
}

absl::StatusOr<std::unique_ptr<shim::Attachment>> StreamHandlers::attach(
    const streaming::AttachParams& p) {
  return containers_.attach(p.container_id, p.stdin, p.stdout, p.stderr);
}

void StreamHandlers::attachStdinEnded(const streaming::AttachParams& p) {
  (void)containers_.attachStdinEnded(p.container_id);
}

absl::StatusOr<UniqueFd> StreamHandlers::dialPort(const std::string& sandbox_id, int32_t port) {
  BERTH_ASSIGN_OR_RETURN(auto pod, store_.getSandbox(sandbox_id));
  if (pod->state != store::SandboxState::kReady) {
    return absl::FailedPreconditionError(absl::StrCat("pod sandbox ", sandbox_id, " is not ready"));
  }
  return dialInNetns(pod->netns_path, port);
}

}  // namespace berth::cri
