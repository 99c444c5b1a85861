// berthctl pull / images / inspecti / rmi / imagefsinfo.
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "cli/commands.h"
#include "cli/output.h"
#include "cli/progress.h"

namespace berth::cli {
namespace {

namespace v1 = runtime::v1;

// "sha256:abcdef…" → "abcdef012345" (13 chars, like crictl's IMAGE ID column).
std::string shortId(const std::string& id) {
  std::string hex = id.substr(id.find(':') == std::string::npos ? 0 : id.find(':') + 1);
  return hex.substr(0, 13);
}


struct PullArgs {
  std::string image;
  std::string creds;  // user:password
  std::string auth;
};

int runPull(const GlobalOptions& options, const PullArgs& args) {
  Client client(options);
  v1::PullImageRequest req;
  req.mutable_image()->set_image(args.image);
  if (!args.creds.empty()) {
    auto colon = args.creds.find(':');
    req.mutable_auth()->set_username(args.creds.substr(0, colon));
    if (colon != std::string::npos) req.mutable_auth()->set_password(args.creds.substr(colon + 1));
  }
  if (!args.auth.empty()) req.mutable_auth()->set_auth(args.auth);
  v1::PullImageResponse resp;
  grpc::ClientContext ctx;  // pulls may take long: no deadline beyond the server's own
  grpc::Status st;
  absl::Notification finished;
  std::thread puller([&] {
    st = client.image().PullImage(&ctx, req, &resp);
    finished.Notify();
  });
  // PullImage is one unary call; progress comes from ImageStatus' verbose info meanwhile.
  bool tty = ::isatty(STDOUT_FILENO) != 0;
  size_t drawn = 0;
  std::set<std::string> reported;
  // Progress every 200 ms, and done as soon as the pull is.
  while (!finished.WaitForNotificationWithTimeout(absl::Milliseconds(200))) {
    v1::ImageStatusRequest sreq;
    sreq.mutable_image()->set_image(args.image);
    sreq.set_verbose(true);
    v1::ImageStatusResponse sresp;
    auto sctx = client.context();
    if (!client.image().ImageStatus(sctx.get(), sreq, &sresp).ok()) continue;
    auto it = sresp.info().find("pullProgress");
    if (it == sresp.info().end()) continue;
    auto lines = progressLines(nlohmann::json::parse(it->second, nullptr, false), 30);
    if (tty) {
      if (drawn > 0) std::printf("\033[%zuA", drawn);  // back to the first bar
      for (const auto& l : lines) std::printf("\033[2K%s\n", l.c_str());
      drawn = lines.size();
    } else {
      for (const auto& l : lines) {
        if (l.find(": done") != std::string::npos && reported.insert(l).second) {
          std::printf("%s\n", l.c_str());
        }
      }
    }
    std::fflush(stdout);
  }
  puller.join();
  if (!st.ok()) {
    std::cerr << describeFailure("PullImage", st) << "\n";
    return 1;
  }
  std::cout << "Image is up to date for " << resp.image_ref() << "\n";
  return 0;
}

int runImages(const GlobalOptions& options, const std::string& filter, bool quiet,
              bool show_digests) {
  auto format = commandOutputFormat(options.output);
  if (!format) return 2;
  Client client(options);
  v1::ListImagesRequest req;
  if (!filter.empty()) req.mutable_filter()->mutable_image()->set_image(filter);
  v1::ListImagesResponse resp;
  auto ctx = client.context();
  grpc::Status st = client.image().ListImages(ctx.get(), req, &resp);
  if (!st.ok()) {
    std::cerr << describeFailure("ListImages", st) << "\n";
    return 1;
  }
  if (quiet) {
    for (const auto& i : resp.images()) std::cout << i.id() << "\n";
    return 0;
  }
  if (*format != OutputFormat::kTable) {
    std::cout << render(messageToJson(resp), *format);
    return 0;
  }
  std::printf(show_digests ? "%-50s %-20s %-15s %-15s %s\n" : "%-50s %-20s %s%-15s %s\n", "IMAGE",
              "TAG", show_digests ? "DIGEST" : "", "IMAGE ID", "SIZE");
  for (const auto& i : resp.images()) {
    std::vector<std::pair<std::string, std::string>> rows;
    for (const auto& t : i.repo_tags()) {
      auto colon = t.rfind(':');
      rows.emplace_back(t.substr(0, colon), t.substr(colon + 1));
    }
    if (rows.empty()) {
      for (const auto& dg : i.repo_digests()) rows.emplace_back(dg.substr(0, dg.find('@')), "<none>");
    }
    std::string digest;
    if (i.repo_digests_size() > 0) {
      const auto& dg = i.repo_digests(0);
      digest = dg.substr(dg.find('@') + 8, 13);
    }
    for (const auto& [repo, tag] : rows) {
      if (show_digests) {
        std::printf("%-50s %-20s %-15s %-15s %s\n", repo.c_str(), tag.c_str(), digest.c_str(),
                    shortId(i.id()).c_str(), humanBytes(i.size()).c_str());
      } else {
        std::printf("%-50s %-20s %-15s %s\n", repo.c_str(), tag.c_str(), shortId(i.id()).c_str(),
                    humanBytes(i.size()).c_str());
      }
    }
  }
  return 0;
}

int runInspecti(const GlobalOptions& options, const std::vector<std::string>& images) {
  auto format = commandOutputFormat(options.output, OutputFormat::kJson);
  if (!format) return 2;
  Client client(options);
  int rc = 0;
  for (const auto& image : images) {
    v1::ImageStatusRequest req;
    req.mutable_image()->set_image(image);
    req.set_verbose(true);
    v1::ImageStatusResponse resp;
    auto ctx = client.context();
    grpc::Status st = client.image().ImageStatus(ctx.get(), req, &resp);
    if (!st.ok()) {
      std::cerr << describeFailure("ImageStatus", st) << "\n";
      rc = 1;
      continue;
    }
    if (!resp.has_image()) {
      std::cerr << "image \"" << image << "\" not found\n";
      rc = 1;
      continue;
    }
    nlohmann::json out;
    out["status"] = messageToJson(resp.image());
    mergeInfo(resp.info(), out);
    std::cout << render(out, *format);
  }
  return rc;
}

int runRmi(const GlobalOptions& options, const std::vector<std::string>& images) {
  Client client(options);
  int rc = 0;
  for (const auto& image : images) {
    v1::RemoveImageRequest req;
    req.mutable_image()->set_image(image);
    v1::RemoveImageResponse resp;
    auto ctx = client.context();
    grpc::Status st = client.image().RemoveImage(ctx.get(), req, &resp);
    if (!st.ok()) {
      std::cerr << describeFailure("RemoveImage", st) << "\n";
      rc = 1;
      continue;
    }
    std::cout << "Deleted: " << image << "\n";
  }
  return rc;
}

int runImageFsInfo(const GlobalOptions& options) {
  auto format = commandOutputFormat(options.output);
  if (!format) return 2;
  Client client(options);
  v1::ImageFsInfoResponse resp;
  auto ctx = client.context();
  grpc::Status st = client.image().ImageFsInfo(ctx.get(), {}, &resp);
  if (!st.ok()) {
    std::cerr << describeFailure("ImageFsInfo", st) << "\n";
    return 1;
  }
  if (*format != OutputFormat::kTable) {
    std::cout << render(messageToJson(resp), *format);
    return 0;
  }
  for (const auto& fs : resp.image_filesystems()) {
    std::cout << keyValueTable({{"Mountpoint", fs.fs_id().mountpoint()},
                                {"UsedBytes", humanBytes(fs.used_bytes().value())},
                                {"InodesUsed", std::to_string(fs.inodes_used().value())}});
  }
  return 0;
}

}  // namespace

void addImageCommands(CLI::App& app, const GlobalOptions& options, int& exit_code) {
  auto pull_args = std::make_shared<PullArgs>();
  auto* pull = app.add_subcommand("pull", "Pull an image from a registry");
  pull->add_option("image", pull_args->image, "image reference")->required();
  pull->add_option("--creds", pull_args->creds, "registry credentials, USER:PASSWORD");
  pull->add_option("--auth", pull_args->auth, "base64 of USER:PASSWORD");
  pull->callback([&, pull_args] { exit_code = runPull(options, *pull_args); });

  auto filter = std::make_shared<std::string>();
  auto quiet = std::make_shared<bool>(false);
  auto digests = std::make_shared<bool>(false);
  auto* images = app.add_subcommand("images", "List images");
  images->alias("img");
  images->add_option("filter", *filter, "only the image this reference names");
  images->add_flag("-q,--quiet", *quiet, "only image ids");
  images->add_flag("--digests", *digests, "show digests");
  images->callback([&, filter, quiet, digests] {
    exit_code = runImages(options, *filter, *quiet, *digests);
  });

  auto inspect_images = std::make_shared<std::vector<std::string>>();
  auto* inspecti = app.add_subcommand("inspecti", "Show image status and verbose info");
  inspecti->add_option("image", *inspect_images, "image references or ids")->required();
  inspecti->callback([&, inspect_images] { exit_code = runInspecti(options, *inspect_images); });

  auto rm_images = std::make_shared<std::vector<std::string>>();
  auto* rmi = app.add_subcommand("rmi", "Remove images");
  rmi->add_option("image", *rm_images, "image references or ids")->required();
  rmi->callback([&, rm_images] { exit_code = runRmi(options, *rm_images); });

  auto* fsinfo = app.add_subcommand("imagefsinfo", "Show the image filesystem's usage");
  fsinfo->callback([&] { exit_code = runImageFsInfo(options); });
}

}  // namespace berth::cli
