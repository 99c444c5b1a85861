// Log lines cannot be forged or flooded: messages are escaped and capped for both formats.
#include "common/logging.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "test_dir.h"

namespace berth::logging {
namespace {

struct Case {
  std::string in;
  std::string out;
};

TEST(SanitizeMessageTest, EscapesControlsAndBadBytesKeepsText) {
  const std::vector<Case> cases = {
      {"plain text, 100% ASCII ~", "plain text, 100% ASCII ~"},
      {"a\nb", "a\\nb"},
      {"a\r\nb", "a\\r\\nb"},
      {"tab\there", "tab\\there"},
      {std::string("nul\0x", 5), "nul\\x00x"},
      {"\x1b[31mred", "\\x1b[31mred"},
      {"del\x7f", "del\\x7f"},
      {"h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x98\x80", "h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x98\x80"},
      {"c1 \xc2\x85 nel", "c1 \\u0085 nel"},
      {"ls \xe2\x80\xa8 ps \xe2\x80\xa9", "ls \\u2028 ps \\u2029"},
      {"bad \xff\xfe", "bad \\xff\\xfe"},
      {"overlong \xc0\xaf", "overlong \\xc0\\xaf"},
      {"surrogate \xed\xa0\x80", "surrogate \\xed\\xa0\\x80"},
      {"cut \xe2\x82", "cut \\xe2\\x82"},
      {"too high \xf4\x90\x80\x80", "too high \\xf4\\x90\\x80\\x80"},
  };
  for (const auto& c : cases) EXPECT_EQ(sanitizeMessage(c.in), c.out) << c.in;
}

TEST(SanitizeMessageTest, CapsLongMessagesAndCountsWhatIsLeftOut) {
  std::string big(10000, 'a');
  EXPECT_EQ(sanitizeMessage(big),
            std::string(kMaxMessageBytes, 'a') + "\xe2\x80\xa6 (5904 more bytes)");
  // An escape is never cut in half: it goes out whole or not at all.
  EXPECT_EQ(sanitizeMessage("abcd\n", 5), "abcd\xe2\x80\xa6 (1 more bytes)");
  EXPECT_EQ(sanitizeMessage("abcde", 5), "abcde");
  // A multi-byte character is never cut either.
  EXPECT_EQ(sanitizeMessage("abcd\xc3\xa9", 5), "abcd\xe2\x80\xa6 (2 more bytes)");
}

// Captures what the loggers write to stderr while it lives.
class StderrCapture {
 public:
  explicit StderrCapture(const std::string& path) : path_(path) {
    std::fflush(stderr);
    saved_ = ::dup(STDERR_FILENO);
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ::dup2(fd, STDERR_FILENO);
    ::close(fd);
  }
  ~StderrCapture() { restore(); }
  std::vector<std::string> lines() {
    restore();
    std::ifstream in(path_);
    std::vector<std::string> out;
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
  }

 private:
  void restore() {
    if (saved_ < 0) return;
    std::fflush(stderr);
    ::dup2(saved_, STDERR_FILENO);
    ::close(saved_);
    saved_ = -1;
  }
  std::string path_;
  int saved_ = -1;
};

TEST(LoggingTest, ForgedLinesAndFloodsStayOnOneCappedLineInTextAndJson) {
  const std::string forged = "ref\n2026-01-01T00:00:00.000000Z info [cri] fake line";
  const std::string flood(1 << 20, 'x');
  for (Format format : {Format::kText, Format::kJson}) {
    testing::TestDir dir;
    ASSERT_TRUE(init("info", format).ok());
    auto log = get("logging_test");
    std::vector<std::string> lines;
    {
      StderrCapture capture(dir / "stderr");
      log->info("pulling {}", forged);
      log->warn("reference {} is too long", flood);
      log->flush();
      lines = capture.lines();
    }
    ASSERT_EQ(lines.size(), 2u) << "one line per record";
    EXPECT_EQ(lines[0].find("fake line"), lines[0].rfind("fake line"));
    for (const auto& line : lines) EXPECT_LT(line.size(), kMaxMessageBytes + 256);
    EXPECT_NE(lines[1].find("more bytes)"), std::string::npos);
    if (format == Format::kText) {
      EXPECT_NE(lines[0].find(" info [logging_test] pulling ref\\n2026"), std::string::npos)
          << lines[0];
    } else {
      auto j = nlohmann::json::parse(lines[0]);
      EXPECT_EQ(j["msg"], "pulling ref\\n2026-01-01T00:00:00.000000Z info [cri] fake line");
      EXPECT_EQ(j["component"], "logging_test");
    }
  }
  ASSERT_TRUE(init("info", Format::kText).ok());
}

}  // namespace
}  // namespace berth::logging
