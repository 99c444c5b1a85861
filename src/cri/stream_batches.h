// Server-streaming list RPCs (StreamImages, StreamPodSandboxes, StreamContainers) send their
// items in batches, so each message stays small however many items there are.
#pragma once

#include <grpcpp/support/sync_stream.h>

#include <algorithm>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace berth::cri {

inline constexpr size_t kStreamBatchSize = 100;

// Writes `items` to `w`; `add(item, batch)` appends one item to a response message. Cancelled
// (naming `rpc`) when the client has gone away.
template <typename Resp, typename Item, typename AddFn>
absl::Status writeInBatches(absl::string_view rpc, const std::vector<Item>& items,
                            grpc::ServerWriter<Resp>* w, AddFn add) {
  for (size_t i = 0; i < items.size(); i += kStreamBatchSize) {
    Resp batch;
    for (size_t j = i; j < std::min(items.size(), i + kStreamBatchSize); ++j) add(items[j], batch);
    if (!w->Write(batch)) return absl::CancelledError(absl::StrCat(rpc, ": client went away"));
  }
  return absl::OkStatus();
}

}  // namespace berth::cri
