// berthctl subcommands, grouped by the RPCs they call; each group registers its verbs.
#pragma once

#include <memory>

#include "CLI/CLI.hpp"
#include "cli/client.h"

namespace berth::cli {

// `version` and `info`.
void addRuntimeInfoCommands(CLI::App& app, const GlobalOptions& options, int& exit_code);

// `pull`, `images`, `inspecti`, `rmi`, `imagefsinfo`.
void addImageCommands(CLI::App& app, const GlobalOptions& options, int& exit_code);

// `runp`, `stopp`, `rmp`, `pods`, `inspectp`.
void addPodCommands(CLI::App& app, const GlobalOptions& options, int& exit_code);

// `create`, `start`, `stop`, `rm`, `ps`, `inspect`, `logs`, `exec`, `run`.
void addContainerCommands(CLI::App& app, const GlobalOptions& options, int& exit_code);

// `attach`, `port-forward` (exec -i/-t is in the container commands).
void addStreamCommands(CLI::App& app, const GlobalOptions& options, int& exit_code);

// `stats`, `statsp`, `events`.
void addObserveCommands(CLI::App& app, const GlobalOptions& options, int& exit_code);

}  // namespace berth::cli
