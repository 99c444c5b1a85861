#include "streaming/spdy_transport.h"

#include "absl/strings/str_cat.h"

namespace berth::streaming {
namespace {

int channelOf(std::string_view type) {
  if (type == "stdin") return kStdinChannel;
  if (type == "stdout") return kStdoutChannel;
  if (type == "stderr") return kStderrChannel;
  if (type == "error") return kErrorChannel;
  if (type == "resize") return kResizeChannel;
  return -1;
}

}  // namespace

bool SpdyCommandTransport::accept(const SpdyFrame& syn) {
  auto type = spdyHeaderValue(syn.headers, "streamtype");
  int channel = type ? channelOf(*type) : -1;
  if (channel < 0) {
    spdy_.reset(syn.stream_id, SpdyRstStatus::kRefusedStream);
    return false;
  }
  spdy_.reply(syn.stream_id);
  streams_[channel] = syn.stream_id;
  channels_[syn.stream_id] = channel;
  return true;
}

absl::Status SpdyCommandTransport::awaitStreams(bool stdin, bool stdout, bool stderr, bool tty,
                                                absl::Duration timeout) {
  std::vector<int> want = {kErrorChannel};
  if (stdin) want.push_back(kStdinChannel);
  if (stdout) want.push_back(kStdoutChannel);
  if (stderr && !tty) want.push_back(kStderrChannel);
  if (tty) want.push_back(kResizeChannel);
  // The read below is bounded by a receive timeout while streams are awaited.
  spdy_.conn().setReadTimeout(static_cast<int>(absl::ToInt64Milliseconds(timeout)));
  auto missing = [&] {
    for (int c : want) {
      if (streams_.count(c) == 0) return true;
    }
    return false;
  };
  absl::Time deadline = absl::Now() + timeout;
  while (missing()) {
    if (absl::Now() > deadline) break;
    SpdyFrame f;
    if (!spdy_.readFrame(&f)) break;
    if (f.type == SpdyFrameType::kSynStream) {
      accept(f);
    } else if (f.type == SpdyFrameType::kData) {
      auto it = channels_.find(f.stream_id);
      if (it != channels_.end() && it->second == kStdinChannel) {
        ClientInput in;
        in.kind = ClientInput::Kind::kStdin;
        in.data = std::move(f.data);
        if (!in.data.empty()) pending_.push_back(std::move(in));
        if (f.fin()) {
          stdin_ended_ = true;
          ClientInput end;
          end.kind = ClientInput::Kind::kStdinEnd;
          pending_.push_back(std::move(end));
        }
      }
    } else if (f.type == SpdyFrameType::kGoAway) {
      break;
    }
  }
  spdy_.conn().setReadTimeout(0);
  if (missing()) {
    return absl::DeadlineExceededError(
        absl::StrCat("the client did not open the streams it asked for within ",
                     absl::FormatDuration(timeout)));
  }
  return absl::OkStatus();
}

ClientInput SpdyCommandTransport::next() {
  while (pending_.empty()) {
    SpdyFrame f;
    if (!spdy_.readFrame(&f)) return ClientInput{};
    switch (f.type) {
      case SpdyFrameType::kSynStream:
        accept(f);
        break;
      case SpdyFrameType::kData: {
        auto it = channels_.find(f.stream_id);
        if (it == channels_.end()) break;
        if (it->second == kStdinChannel && !stdin_ended_) {
          if (!f.data.empty()) {
            ClientInput in;
            in.kind = ClientInput::Kind::kStdin;
            in.data = std::move(f.data);
            pending_.push_back(std::move(in));
          }
          if (f.fin()) {
            stdin_ended_ = true;
            ClientInput end;
            end.kind = ClientInput::Kind::kStdinEnd;
            pending_.push_back(std::move(end));
          }
        } else if (it->second == kResizeChannel) {
          for (auto [w, h] : resize_.feed(f.data)) {
            ClientInput in;
            in.kind = ClientInput::Kind::kResize;
            in.width = w;
            in.height = h;
            pending_.push_back(std::move(in));
          }
        }
        break;
      }
      case SpdyFrameType::kRstStream: {
        auto it = channels_.find(f.stream_id);
        if (it != channels_.end() && it->second == kStdinChannel && !stdin_ended_) {
          stdin_ended_ = true;
          ClientInput end;
          end.kind = ClientInput::Kind::kStdinEnd;
          pending_.push_back(std::move(end));
        }
        break;
      }
      case SpdyFrameType::kGoAway:
        return ClientInput{};
      default:
        break;
    }
  }
  ClientInput in = std::move(pending_.front());
  pending_.pop_front();
  return in;
}

bool SpdyCommandTransport::send(int channel, std::string_view data) {
  auto it = streams_.find(channel);
  if (it == streams_.end()) return true;  // the client did not ask for it
  return spdy_.send(it->second, data);
}

void SpdyCommandTransport::closeChannel(int channel) {
  auto it = streams_.find(channel);
  if (it == streams_.end() || !closed_.insert(channel).second) return;
  spdy_.send(it->second, "", /*fin=*/true);
}

void SpdyCommandTransport::finish() {
  for (int c : {kStdoutChannel, kStderrChannel}) closeChannel(c);
  spdy_.goAway();
  spdy_.conn().endWrites();
}

}  // namespace berth::streaming
