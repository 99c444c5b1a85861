// Unit tests of the shim wire protocol: framing, size limits, versions, envelopes.
#include "shim/protocol.h"

#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "common/unique_fd.h"
#include "gtest/gtest.h"
#include "shim/runtime_runner.h"

namespace berth::shim {
namespace {

struct SocketPair {
  SocketPair() {
    int fds[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    a.reset(fds[0]);
    b.reset(fds[1]);
  }
  UniqueFd a, b;
};

TEST(ShimProtocolTest, FrameRoundTripOverSocket) {
  SocketPair sp;
  Json req = makeRequest(42, "create");
  req["container_id"] = "abc";
  req["text"] = "h\xc3\xa9llo \"quoted\"\n";
  ASSERT_TRUE(writeFrame(sp.a.get(), req, monotonicMs() + 1000).ok());
  Json got;
  Outcome r = readFrame(sp.b.get(), &got, monotonicMs() + 1000);
  ASSERT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(got, req);
  EXPECT_TRUE(checkVersion(got).ok());
}

TEST(ShimProtocolTest, FrameHeaderIsBigEndianLength) {
  std::string frame;
  ASSERT_TRUE(encodeFrame(Json::object(), &frame).ok());
  ASSERT_EQ(frame.size(), 6u);  // "{}"
  EXPECT_EQ(frame.substr(0, 4), std::string("\0\0\0\x02", 4));
  EXPECT_EQ(frame.substr(4), "{}");
}

TEST(ShimProtocolTest, FrameReaderAssemblesBytewiseInput) {
  std::string f1, f2;
  ASSERT_TRUE(encodeFrame(makeRequest(1, "ping"), &f1).ok());
  ASSERT_TRUE(encodeFrame(makeRequest(2, "exits"), &f2).ok());
  std::string all = f1 + f2;
  FrameReader reader;
  std::vector<Json> frames;
  for (char ch : all) {
    reader.append(&ch, 1);
    std::string body;
    Outcome r = reader.next(&body);
    if (r.code == Code::kUnavailable) continue;
    ASSERT_TRUE(r.ok()) << r.message;
    Json j;
    ASSERT_TRUE(parseObject(body, &j).ok());
    frames.push_back(j);
  }
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0]["op"], "ping");
  EXPECT_EQ(frames[1]["id"], 2);
  EXPECT_TRUE(reader.empty());
}

TEST(ShimProtocolTest, OversizeFrameIsRejected) {
  // Reader: a header announcing one byte more than the limit.
  uint32_t n = kMaxFrameSize + 1;
  char hdr[4] = {static_cast<char>(n >> 24), static_cast<char>(n >> 16), static_cast<char>(n >> 8),
                 static_cast<char>(n)};
  FrameReader reader;
  reader.append(hdr, 4);
  std::string body;
  EXPECT_EQ(reader.next(&body).code, Code::kResourceExhausted);

  SocketPair sp;
  ASSERT_EQ(::write(sp.a.get(), hdr, 4), 4);
  Json j;
  Outcome r = readFrame(sp.b.get(), &j, monotonicMs() + 1000);
  EXPECT_EQ(r.code, Code::kResourceExhausted);
  EXPECT_NE(r.message.find("limit"), std::string::npos);

  // Writer: refuses to encode a body over the limit.
  Json big = Json::object();
  big["blob"] = std::string(kMaxFrameSize, 'x');
  std::string frame;
  EXPECT_EQ(encodeFrame(big, &frame).code, Code::kResourceExhausted);
}

TEST(ShimProtocolTest, SmallerLimitApplies) {
  std::string frame;
  ASSERT_TRUE(encodeFrame(makeRequest(1, "ping"), &frame).ok());
  FrameReader reader(8);
  reader.append(frame.data(), frame.size());
  std::string body;
  EXPECT_EQ(reader.next(&body).code, Code::kResourceExhausted);
}

TEST(ShimProtocolTest, BadVersionIsRejectedNamingBothVersions) {
  Json req = makeRequest(1, "ping");
  req["v"] = 2;
  Outcome r = checkVersion(req);
  EXPECT_EQ(r.code, Code::kInvalidArgument);
  EXPECT_NE(r.message.find("version 2"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("version 1"), std::string::npos) << r.message;
  req.erase("v");
  EXPECT_EQ(checkVersion(req).code, Code::kInvalidArgument);
}

TEST(ShimProtocolTest, MalformedBodiesAreRejected) {
  Json j;
  EXPECT_EQ(parseObject("{not json", &j).code, Code::kInvalidArgument);
  EXPECT_EQ(parseObject("[1,2]", &j).code, Code::kInvalidArgument);
  EXPECT_TRUE(parseObject("{\"a\":1}", &j).ok());
}

TEST(ShimProtocolTest, ReadTimesOutAndSeesPeerClose) {
  SocketPair sp;
  Json j;
  EXPECT_EQ(readFrame(sp.b.get(), &j, monotonicMs() + 50).code, Code::kDeadlineExceeded);
  sp.a.reset();
  EXPECT_EQ(readFrame(sp.b.get(), &j, monotonicMs() + 1000).code, Code::kUnavailable);
}

TEST(ShimProtocolTest, ReplyEnvelopes) {
  Json ok = makeOkReply(7);
  EXPECT_TRUE(replyOutcome(ok).ok());
  EXPECT_EQ(ok["id"], 7);
  Json err = makeErrorReply(8, Outcome::error(Code::kNotFound, "container \"x\" not found"));
  Outcome r = replyOutcome(err);
  EXPECT_EQ(r.code, Code::kNotFound);
  EXPECT_EQ(r.message, "container \"x\" not found");
  EXPECT_EQ(err["code"], 5);
}

TEST(ShimProtocolTest, ExitRecordRoundTrip) {
  ExitRecord rec{"c1", 1234, 143, 1700000000123456789, false};
  ExitRecord back;
  ASSERT_TRUE(exitFromJson(exitToJson(rec), &back).ok());
  EXPECT_EQ(back.container_id, "c1");
  EXPECT_EQ(back.pid, 1234);
  EXPECT_EQ(back.exit_code, 143);
  EXPECT_EQ(back.exited_at_ns, 1700000000123456789);
  EXPECT_EQ(exitFromJson(Json::object(), &back).code, Code::kInvalidArgument);
}

TEST(ShimProtocolTest, ContainerIds) {
  EXPECT_TRUE(validContainerId("abc-123_x.y+z"));
  EXPECT_FALSE(validContainerId(""));
  EXPECT_FALSE(validContainerId(".."));
  EXPECT_FALSE(validContainerId("a/b"));
  EXPECT_FALSE(validContainerId(std::string(300, 'a')));
}

TEST(ShimProtocolTest, RuntimeErrorTextPrefersJsonErrorMessages) {
  std::string log =
      "{\"level\":\"warning\",\"msg\":\"something minor\",\"time\":\"t\"}\n"
      "{\"level\":\"error\",\"msg\":\"container does not exist\",\"time\":\"t\"}\n";
  EXPECT_EQ(runtimeErrorText(log), "container does not exist");
  EXPECT_EQ(runtimeErrorText("plain failure\n\n"), "plain failure");
}

}  // namespace
}  // namespace berth::shim
