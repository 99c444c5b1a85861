// CRI log lines read back for `berthctl logs`: parsing, P/F joining, streams, tail, rotation.
#include "cli/cri_log_reader.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace berth::cli {
namespace {

constexpr char kTs[] = "2016-10-06T00:17:09.669794202Z";

std::string line(const char* stream, const char* tag, const std::string& content) {
  return std::string(kTs) + " " + stream + " " + tag + " " + content + "\n";
}

// Messages as "o:text\n" / "e:text" (no newline) strings, easy to compare.
struct Collected {
  std::vector<std::string> out;
  CriLogReader reader{[this](LogMessage&& m) {
    out.push_back(std::string(m.stream == LogStream::kStdout ? "o:" : "e:") + m.text +
                  (m.newline ? "\n" : ""));
  }};
};

TEST(CriLogReaderTest, ParsesALine) {
  // The parsed views point into the text, which must outlive them.
  const std::string text = std::string(kTs) + " stderr F hello  world ";
  auto l = parseCriLogLine(text);
  ASSERT_TRUE(l.has_value());
  EXPECT_EQ(l->timestamp, kTs);
  EXPECT_EQ(l->stream, LogStream::kStderr);
  EXPECT_FALSE(l->partial);
  EXPECT_EQ(l->content, "hello  world ") << "content is kept byte for byte";

  const std::string empty_text = std::string(kTs) + " stdout F ";
  auto empty = parseCriLogLine(empty_text);
  ASSERT_TRUE(empty.has_value());
  EXPECT_EQ(empty->content, "");

  auto tagged = parseCriLogLine("2024-01-02T03:04:05+01:00 stdout P:extra x");
  ASSERT_TRUE(tagged.has_value()) << "offset zones and extra tag fields are allowed";
  EXPECT_TRUE(tagged->partial);
  EXPECT_EQ(tagged->content, "x");
}

TEST(CriLogReaderTest, RejectsMalformedLines) {
  for (const std::string& bad : {
           std::string(""),
           std::string("hello"),
           std::string("yesterday stdout F x"),
           std::string("2016-10-06 00:17:09Z stdout F x"),
           std::string("2016-10-06T00:17:09.Z stdout F x"),
           std::string(kTs) + " stdin F x",
           std::string(kTs) + " stdout X x",
           std::string(kTs) + " stdout F",
           std::string(kTs) + " stdout",
       }) {
    EXPECT_FALSE(parseCriLogLine(bad).has_value()) << bad;
  }
}

TEST(CriLogReaderTest, FullLinesComeOutWhole) {
  Collected c;
  c.reader.feed(line("stdout", "F", "one") + line("stdout", "F", "") + line("stdout", "F", "two"));
  EXPECT_EQ(c.out, (std::vector<std::string>{"o:one\n", "o:\n", "o:two\n"}));
}

TEST(CriLogReaderTest, JoinsPartialsPerStream) {
  Collected c;
  // stderr's line lands between stdout's fragments; the fragments still join.
  c.reader.feed(line("stdout", "P", "ab") + line("stderr", "F", "oops") + line("stdout", "P", "cd") +
                line("stdout", "F", "ef") + line("stderr", "P", "tail"));
  EXPECT_EQ(c.out, (std::vector<std::string>{"e:oops\n", "o:abcdef\n"}));
  c.reader.finish();
  EXPECT_EQ(c.out.back(), "e:tail") << "a fragment never ended goes out without a newline";
  EXPECT_EQ(c.reader.malformed(), 0u);
}

TEST(CriLogReaderTest, LinesSplitAcrossReads) {
  std::string text = line("stdout", "P", "he") + line("stdout", "F", "llo") +
                     line("stderr", "F", "x");
  Collected c;
  for (char ch : text) c.reader.feed(std::string_view(&ch, 1));
  EXPECT_EQ(c.out, (std::vector<std::string>{"o:hello\n", "e:x\n"}));
}

TEST(CriLogReaderTest, SkipsAndCountsMalformedLines) {
  Collected c;
  c.reader.feed(line("stdout", "F", "a") + "garbage\n" + line("stdout", "F", "b"));
  c.reader.feed(std::string(kTs) + " stdout F unterminated");
  EXPECT_EQ(c.out, (std::vector<std::string>{"o:a\n", "o:b\n"}));
  EXPECT_EQ(c.reader.malformed(), 1u);
  c.reader.finish();
  EXPECT_EQ(c.out.back(), "o:unterminated\n") << "the last line may lack its '\\n'";
}

TEST(CriLogReaderTest, TailKeepsTheLastWholeLines) {
  for (int64_t n : {-1, 0, 2, 10}) {
    LogTail tail(n);
    CriLogReader reader([&](LogMessage&& m) { tail.add(std::move(m)); });
    reader.feed(line("stdout", "F", "1") + line("stderr", "F", "2") + line("stdout", "P", "3a") +
                line("stdout", "F", "3b") + line("stdout", "F", "4"));
    std::vector<std::string> got;
    for (const auto& m : tail.messages()) got.push_back(m.text);
    if (n == 0) {
      EXPECT_TRUE(got.empty());
    } else if (n == 2) {
      EXPECT_EQ(got, (std::vector<std::string>{"3a3b", "4"})) << "fragments count as one line";
    } else {
      EXPECT_EQ(got, (std::vector<std::string>{"1", "2", "3a3b", "4"})) << n;
    }
  }
}

class CriLogFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "berth-logs-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/0.log";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void append(const std::string& path, const std::string& text) {
    std::ofstream(path, std::ios::app) << text;
  }

  std::string dir_, path_;
};

TEST_F(CriLogFileTest, FollowsGrowthRotationAndTruncation) {
  append(path_, line("stdout", "F", "1") + line("stdout", "P", "2a"));
  Collected c;
  CriLogFile file(path_, c.reader);
  ASSERT_TRUE(file.open().ok());
  ASSERT_TRUE(file.poll().ok());
  EXPECT_EQ(c.out, (std::vector<std::string>{"o:1\n"}));

  append(path_, line("stdout", "F", "2b"));
  ASSERT_EQ(*file.poll(), line("stdout", "F", "2b").size());
  EXPECT_EQ(c.out.back(), "o:2a2b\n");
  EXPECT_EQ(*file.poll(), 0u);

  // Rotation: renamed away, the writer adds a little more, then reopens a new file.
  std::filesystem::rename(path_, path_ + ".1");
  append(path_ + ".1", line("stdout", "F", "3") + line("stderr", "P", "4a"));
  ASSERT_TRUE(file.poll().ok()) << "the path missing for a moment is no error";
  EXPECT_EQ(c.out.back(), "o:3\n");
  append(path_ + ".1", line("stdout", "F", "5"));
  append(path_, line("stderr", "F", "4b") + line("stdout", "F", "6"));
  ASSERT_TRUE(file.poll().ok());
  EXPECT_EQ(c.out, (std::vector<std::string>{"o:1\n", "o:2a2b\n", "o:3\n", "o:5\n", "e:4a4b\n",
                                             "o:6\n"}));

  // Truncated in place: read again from the start.
  std::ofstream(path_, std::ios::trunc) << line("stdout", "F", "7");
  ASSERT_TRUE(file.poll().ok());
  EXPECT_EQ(c.out.back(), "o:7\n");
}

TEST_F(CriLogFileTest, MissingFileIsAnError) {
  Collected c;
  CriLogFile file(path_, c.reader);
  EXPECT_FALSE(file.open().ok());
  EXPECT_FALSE(file.poll().ok());
}

}  // namespace
}  // namespace berth::cli
