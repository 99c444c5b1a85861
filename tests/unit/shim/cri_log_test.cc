// Unit tests of the shim's CRI log writer (line format, splitting, partial lines, reopen) and of
// the protocol's base64 helpers used for exec output.
#include "shim/cri_log.h"

#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "common/fs.h"
#include "gtest/gtest.h"
#include "shim/protocol.h"

namespace berth::shim {
namespace {

// 2016-10-06T00:17:09.669794202Z
constexpr int64_t kT = 1475713029LL * 1000000000 + 669794202;
constexpr const char* kTs = "2016-10-06T00:17:09.669794202Z";

class CriLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/berth-cri-log-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/c.log";
  }
  void TearDown() override { (void)removeAll(dir_); }

  std::string contents(const std::string& path) {
    auto text = readFile(path);
    return text.ok() ? *text : "<unreadable>";
  }
  std::string line(const char* stream, const char* tag, const std::string& content) {
    return std::string(kTs) + " " + stream + " " + tag + " " + content + "\n";
  }

  std::string dir_, path_;
};

TEST(CriTimestampTest, NineFractionDigitsUtc) {
  char buf[32];
  EXPECT_EQ(formatCriTimestamp(kT, buf), 30u);
  EXPECT_STREQ(buf, kTs);
  formatCriTimestamp(0, buf);
  EXPECT_STREQ(buf, "1970-01-01T00:00:00.000000000Z");
  formatCriTimestamp(1000000005, buf);
  EXPECT_STREQ(buf, "1970-01-01T00:00:01.000000005Z");
}

TEST_F(CriLogTest, WholeLinesOfBothStreams) {
  CriLogWriter w;
  ASSERT_TRUE(w.open(path_, 0).ok());
  w.write(LogStream::kStdout, "log content\nsecond", kT);
  w.write(LogStream::kStderr, "oops\n\n", kT);
  w.write(LogStream::kStdout, " half\n", kT);
  EXPECT_EQ(contents(path_), line("stdout", "F", "log content") + line("stderr", "F", "oops") +
                                 line("stderr", "F", "") + line("stdout", "F", "second half"));
}

TEST_F(CriLogTest, CarriageReturnLineFeedEndsALine) {
  CriLogWriter w;
  ASSERT_TRUE(w.open(path_, 0).ok());
  w.write(LogStream::kStdout, "tty line\r\nsplit\r", kT);
  w.write(LogStream::kStdout, "\nmid\rdle\n", kT);
  EXPECT_EQ(contents(path_), line("stdout", "F", "tty line") + line("stdout", "F", "split") +
                                 line("stdout", "F", "mid\rdle"));
}

TEST_F(CriLogTest, LongLinesAreSplitIntoPartials) {
  CriLogWriter w;
  ASSERT_TRUE(w.open(path_, 4).ok());
  w.write(LogStream::kStdout, "abcdefghij\n", kT);  // 4 + 4 + 2
  w.write(LogStream::kStdout, "wxyz\n", kT);        // exactly max: one full line
  w.write(LogStream::kStdout, "12", kT);            // a long line arriving in pieces
  w.write(LogStream::kStdout, "3456", kT);
  w.write(LogStream::kStdout, "78\n", kT);
  EXPECT_EQ(contents(path_), line("stdout", "P", "abcd") + line("stdout", "P", "efgh") +
                                 line("stdout", "F", "ij") + line("stdout", "F", "wxyz") +
                                 line("stdout", "P", "1234") + line("stdout", "F", "5678"));
}

TEST_F(CriLogTest, UnterminatedLineIsWrittenPartialAtEnd) {
  CriLogWriter w;
  ASSERT_TRUE(w.open(path_, 0).ok());
  w.write(LogStream::kStdout, "no newline", kT);
  EXPECT_EQ(contents(path_), "");
  w.finish(LogStream::kStdout, kT);
  w.finish(LogStream::kStderr, kT);  // nothing pending: nothing written
  EXPECT_EQ(contents(path_), line("stdout", "P", "no newline"));
}

TEST_F(CriLogTest, ReopenFollowsARename) {
  CriLogWriter w;
  ASSERT_TRUE(w.open(path_, 0).ok());
  w.write(LogStream::kStdout, "before\n", kT);
  ASSERT_EQ(::rename(path_.c_str(), (path_ + ".1").c_str()), 0);
  w.write(LogStream::kStdout, "still old\n", kT);
  ASSERT_TRUE(w.reopen().ok());
  w.write(LogStream::kStdout, "after\n", kT);
  EXPECT_EQ(contents(path_ + ".1"),
            line("stdout", "F", "before") + line("stdout", "F", "still old"));
  EXPECT_EQ(contents(path_), line("stdout", "F", "after"));
}

TEST_F(CriLogTest, MissingDirectoryIsAnError) {
  CriLogWriter w;
  Outcome r = w.open(dir_ + "/no/such/dir/c.log", 0);
  EXPECT_EQ(r.code, Code::kNotFound) << r.message;
  EXPECT_NE(r.message.find("no/such/dir"), std::string::npos);
}

TEST(Base64Test, RoundTripsBinary) {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  for (size_t n : {0u, 1u, 2u, 3u, 4u, 5u, 255u, 256u}) {
    std::string in = all.substr(0, n), out;
    ASSERT_TRUE(base64Decode(base64Encode(in), &out)) << n;
    EXPECT_EQ(out, in) << n;
  }
  EXPECT_EQ(base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64Encode("fo"), "Zm8=");
  std::string out;
  EXPECT_FALSE(base64Decode("Zm9", &out));
  EXPECT_FALSE(base64Decode("Zm=v", &out));
  EXPECT_FALSE(base64Decode("Zm9!", &out));
}

}  // namespace
}  // namespace berth::shim
