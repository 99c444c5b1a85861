// Streaming sessions from berthctl (exec -i/-t, attach, port-forward).
#pragma once

#include <string>
#include <vector>

#include "cli/client.h"

namespace berth::cli {

// Exec through a streaming session with the local stdio; returns the command's exit code.
int runStreamingExec(const GlobalOptions& options, const std::string& id,
                     const std::vector<std::string>& cmd, bool interactive, bool tty,
                     const std::string& transport);

}  // namespace berth::cli
