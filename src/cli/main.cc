// berthctl: a command-line client for berth (and any CRI runtime).
#include <cstdlib>

#include "CLI/CLI.hpp"
#include "cli/client.h"
#include "cli/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"berthctl: talk to a CRI runtime (berth by default)"};
  app.require_subcommand(1);
  app.fallthrough();  // global options may follow the verb: `berthctl info -o json`
  berth::cli::GlobalOptions options;
  if (const char* env = std::getenv("BERTH_RUNTIME_ENDPOINT"); env != nullptr && *env != '\0') {
    options.endpoint = env;
  }
  app.add_option("-r,--runtime-endpoint", options.endpoint,
                 "CRI endpoint (env BERTH_RUNTIME_ENDPOINT)")
      ->capture_default_str();
  app.add_option("-t,--timeout", options.timeout_seconds, "per-call timeout in seconds")
      ->capture_default_str();
  app.add_option("-o,--output", options.output, "output format: table, json or yaml")
      ->capture_default_str();
  int exit_code = 0;
  berth::cli::addRuntimeInfoCommands(app, options, exit_code);
  berth::cli::addImageCommands(app, options, exit_code);
  berth::cli::addPodCommands(app, options, exit_code);
  berth::cli::addContainerCommands(app, options, exit_code);
  berth::cli::addObserveCommands(app, options, exit_code);
  berth::cli::addStreamCommands(app, options, exit_code);
  CLI11_PARSE(app, argc, argv);
  return exit_code;
}
