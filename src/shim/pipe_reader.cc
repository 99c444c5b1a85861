// PipeReader: non-blocking reads of output pipes, with end-of-file reported once per pipe.
#include "shim/pipe_reader.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace berth::shim {
namespace {

// Per wake-up and pipe, so that one chatty container does not starve the loop.
constexpr size_t kFairShare = 256u << 10;

}  // namespace

uint64_t PipeReader::add(UniqueFd fd, Sink sink) {
  int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags >= 0) ::fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK);
  uint64_t h = next_++;
  Pipe& p = pipes_[h];
  p.fd = std::move(fd);
  p.sink = std::move(sink);
  return h;
}

bool PipeReader::isOpen(uint64_t handle) const {
  auto it = pipes_.find(handle);
  return it != pipes_.end() && !it->second.done;
}

void PipeReader::addPollFds(std::vector<pollfd>* fds, std::vector<uint64_t>* handles) const {
  for (const auto& [h, p] : pipes_) {
    if (p.done) continue;
    fds->push_back({p.fd.get(), POLLIN, 0});
    handles->push_back(h);
  }
}

bool PipeReader::readSome(Pipe& p) {
  char buf[16384];
  size_t total = 0;
  while (total < kFairShare) {
    ssize_t n = ::read(p.fd.get(), buf, sizeof buf);
    if (n > 0) {
      total += static_cast<size_t>(n);
      p.sink(std::string_view(buf, static_cast<size_t>(n)), false);
      if (p.done) return false;  // the sink closed it
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;
    return true;  // EOF, or an error that will not go away
  }
  return false;
}

void PipeReader::finish(Pipe& p) {
  p.fd.reset();
  p.done = true;
  Sink sink = std::move(p.sink);
  p.sink = nullptr;
  sink(std::string_view(), true);
}

void PipeReader::onReady(uint64_t handle, short revents) {
  auto it = pipes_.find(handle);
  if (it == pipes_.end() || it->second.done) return;
  bool eof = readSome(it->second);
  // POLLHUP with nothing left to read is the end too (readSome saw EOF then).
  if (eof || ((revents & (POLLERR | POLLNVAL)) != 0 && !(revents & POLLIN))) finish(it->second);
}

void PipeReader::drainAndClose(uint64_t handle) {
  auto it = pipes_.find(handle);
  if (it == pipes_.end() || it->second.done) return;
  readSome(it->second);
  if (!it->second.done) finish(it->second);
}

void PipeReader::close(uint64_t handle) {
  auto it = pipes_.find(handle);
  if (it == pipes_.end() || it->second.done) return;
  // The sink may be running (closing its own pipe): sweep() destroys it later.
  it->second.fd.reset();
  it->second.done = true;
}

void PipeReader::sweep() {
  for (auto it = pipes_.begin(); it != pipes_.end();) {
    it = it->second.done ? pipes_.erase(it) : std::next(it);
  }
}

}  // namespace berth::shim
