// berthctl version / info.
#include <cstdio>
#include <iostream>

#include "cli/commands.h"
#include "cli/output.h"

namespace berth::cli {
namespace {

int runVersion(const GlobalOptions& options) {
  auto format = commandOutputFormat(options.output);
  if (!format) return 2;
  Client client(options);
  runtime::v1::VersionRequest req;
  req.set_version("v1");
  runtime::v1::VersionResponse resp;
  auto ctx = client.context();
  grpc::Status st = client.runtime().Version(ctx.get(), req, &resp);
  if (!st.ok()) {
    std::cerr << describeFailure("Version", st) << "\n";
    return 1;
  }
  if (*format == OutputFormat::kTable) {
    std::cout << keyValueTable({{"Version", resp.version()},
                                {"RuntimeName", resp.runtime_name()},
                                {"RuntimeVersion", resp.runtime_version()},
                                {"RuntimeApiVersion", resp.runtime_api_version()}});
  } else {
    std::cout << render(messageToJson(resp), *format);
  }
  return 0;
}

int runInfo(const GlobalOptions& options) {
  auto format = commandOutputFormat(options.output);
  if (!format) return 2;
  Client client(options);
  runtime::v1::StatusRequest req;
  req.set_verbose(true);
  runtime::v1::StatusResponse resp;
  auto ctx = client.context();
  grpc::Status st = client.runtime().Status(ctx.get(), req, &resp);
  if (!st.ok()) {
    std::cerr << describeFailure("Status", st) << "\n";
    return 1;
  }
  if (*format == OutputFormat::kTable) {
    std::vector<std::pair<std::string, std::string>> rows;
    for (const auto& c : resp.status().conditions()) {
      std::string value = c.status() ? "true" : "false";
      if (!c.status()) value += " (" + c.reason() + ": " + c.message() + ")";
      rows.emplace_back(c.type(), value);
    }
    std::string handlers;
    for (const auto& h : resp.runtime_handlers()) {
      if (h.name().empty()) continue;
      handlers += (handlers.empty() ? "" : ", ") + h.name();
    }
    rows.emplace_back("RuntimeHandlers", handlers);
    std::cout << keyValueTable(rows);
    // The effective configuration, each value with where it came from (file, default, flag).
    auto config = resp.info().find("config");
    auto sources = resp.info().find("configSources");
    if (config != resp.info().end() && sources != resp.info().end()) {
      nlohmann::json values = nlohmann::json::parse(config->second, nullptr, false);
      nlohmann::json from = nlohmann::json::parse(sources->second, nullptr, false);
      if (values.is_object() && from.is_object()) {
        std::vector<std::pair<std::string, std::string>> lines;
        const nlohmann::json flat = values.flatten();
        for (const auto& [key, value] : flat.items()) {
          std::string shown = value.is_string() ? value.get<std::string>() : value.dump();
          lines.emplace_back(key.substr(1), shown + "  (" + from.value(key, "?") + ")");
        }
        std::cout << "\nConfiguration (value, and where it came from):\n" << keyValueTable(lines);
      }
    }
    return 0;
  }
  // Same shape as `crictl info`: the status, handlers and features, then each info entry
  // parsed as JSON when it is JSON.
  nlohmann::json out = nlohmann::json::object();
  out["status"] = messageToJson(resp.status());
  nlohmann::json handlers = nlohmann::json::array();
  for (const auto& h : resp.runtime_handlers()) handlers.push_back(messageToJson(h));
  out["runtimeHandlers"] = handlers;
  out["features"] = messageToJson(resp.features());
  mergeInfo(resp.info(), out);
  std::cout << render(out, *format);
  return 0;
}

}  // namespace

void addRuntimeInfoCommands(CLI::App& app, const GlobalOptions& options, int& exit_code) {
  auto* version = app.add_subcommand("version", "Show the runtime's name and version");
  version->callback([&] { exit_code = runVersion(options); });
  auto* info = app.add_subcommand("info", "Show the runtime's status and configuration");
  info->callback([&] { exit_code = runInfo(options); });
}

}  // namespace berth::cli
