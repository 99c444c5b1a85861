// The inspect verbs of pods and containers: a verbose status call per id, each printed in
// crictl's shape {"status": …, "info": <the info JSON>}, JSON unless -o says otherwise.
#pragma once

#include <iostream>
#include <string>
#include <vector>

#include "cli/client.h"
#include "cli/output.h"

namespace berth::cli {

// `call(client, context, id, &response)` makes the RPC; Resp has status() and info().
// Returns the verb's exit code: 1 if any call failed, 2 for a bad -o.
template <typename Resp, typename Call>
int inspectEach(const GlobalOptions& options, const std::vector<std::string>& ids,
                const std::string& rpc, Call call) {
  auto format = commandOutputFormat(options.output, OutputFormat::kJson);
  if (!format) return 2;
  Client client(options);
  int rc = 0;
  for (const auto& id : ids) {
    Resp resp;
    auto ctx = client.context();
    grpc::Status st = call(client, ctx.get(), id, &resp);
    if (!st.ok()) {
      rc = reportFailure(rpc, st);
      continue;
    }
    nlohmann::json out;
    out["status"] = messageToJson(resp.status());
    mergeInfo(resp.info(), out);
    std::cout << render(out, *format);
  }
  return rc;
}

}  // namespace berth::cli
