// SPDY/3.1 framing: round trips, shared header compression, incremental parsing, rejects.
#include "streaming/spdy_frame.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <array>
#include <string>
#include <vector>

namespace berth::streaming {
namespace {

std::string bytes(std::initializer_list<int> values) {
  std::string out;
  for (int v : values) out.push_back(static_cast<char>(v));
  return out;
}

void putU32(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
}

// A control frame with an arbitrary version, type and body, built by hand.
std::string controlFrame(uint16_t type, uint8_t flags, std::string_view body,
                         uint16_t version = kSpdyVersion) {
  std::string out;
  putU32(out, 0x80000000u | static_cast<uint32_t>(version) << 16 | type);
  putU32(out, static_cast<uint32_t>(flags) << 24 | static_cast<uint32_t>(body.size()));
  out.append(body);
  return out;
}

// Compresses `raw` as the first block of a fresh zlib stream seeded with `dict`.
std::string deflateWithDictionary(std::string_view raw, std::string_view dict) {
  z_stream zs{};
  EXPECT_EQ(deflateInit(&zs, Z_BEST_COMPRESSION), Z_OK);
  EXPECT_EQ(deflateSetDictionary(&zs, reinterpret_cast<const Bytef*>(dict.data()),
                                 static_cast<uInt>(dict.size())),
            Z_OK);
  std::string in(raw);
  zs.next_in = reinterpret_cast<Bytef*>(in.data());
  zs.avail_in = static_cast<uInt>(in.size());
  std::string out(deflateBound(&zs, static_cast<uLong>(in.size())) + 64, '\0');
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&zs, Z_SYNC_FLUSH), Z_OK);
  out.resize(out.size() - zs.avail_out);
  deflateEnd(&zs);
  return out;
}

// An uncompressed header block with the given wire entries (no lowercasing or merging).
std::string rawHeaderBlock(const std::vector<std::pair<std::string, std::string>>& entries) {
  std::string out;
  putU32(out, static_cast<uint32_t>(entries.size()));
  for (const auto& [name, value] : entries) {
    putU32(out, static_cast<uint32_t>(name.size()));
    out.append(name);
    putU32(out, static_cast<uint32_t>(value.size()));
    out.append(value);
  }
  return out;
}

// Feeds everything, then drains; fails the test on a parse error.
std::vector<SpdyFrame> parseAll(SpdyParser& parser, std::string_view wire) {
  parser.feed(wire);
  std::vector<SpdyFrame> frames;
  while (true) {
    absl::StatusOr<std::optional<SpdyFrame>> next = parser.next();
    EXPECT_TRUE(next.ok()) << next.status();
    if (!next.ok() || !next->has_value()) break;
    frames.push_back(std::move(**next));
  }
  return frames;
}

absl::Status firstError(SpdyParser& parser, std::string_view wire) {
  parser.feed(wire);
  while (true) {
    absl::StatusOr<std::optional<SpdyFrame>> next = parser.next();
    if (!next.ok()) return next.status();
    if (!next->has_value()) return absl::OkStatus();
  }
}

SpdyHeaders execHeaders(std::string_view type) { return {{"streamtype", std::string(type)}}; }

TEST(SpdyDictionaryTest, MatchesTheSpdy3DictionaryId) {
  std::string_view dict = spdyHeaderDictionary();
  EXPECT_EQ(dict.size(), 1423u);
  // Every SPDY/3 header stream names its dictionary by this Adler-32 (bytes 3-6 of the
  // zlib header, e.g. 38 ea e3 c6 a7 c2 from Chromium).
  uLong adler = adler32(adler32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(dict.data()),
                        static_cast<uInt>(dict.size()));
  EXPECT_EQ(adler, 0xe3c6a7c2u);
}

// Chromium's SpdyFramerTest.CreateSynStreamCompressed output (both its zlib builds): stream 1,
// priority 4, headers bar: foo and foo: bar.
TEST(SpdyParserTest, DecodesSynStreamCompressedByChromium) {
  const std::vector<std::string> vectors = {
      bytes({0x80, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x37, 0x00, 0x00, 0x00, 0x01, 0x00,
             0x00, 0x00, 0x00, 0x80, 0x00, 0x38, 0xEA, 0xE3, 0xC6, 0xA7, 0xC2, 0x02, 0xE5,
             0x0E, 0x50, 0xC2, 0x4B, 0x4A, 0x04, 0xE5, 0x0B, 0x66, 0x80, 0x00, 0x4A, 0xCB,
             0xCF, 0x07, 0x08, 0x20, 0x10, 0x95, 0x96, 0x9F, 0x0F, 0xA2, 0x00, 0x02, 0x28,
             0x29, 0xB1, 0x08, 0x20, 0x80, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF}),
      bytes({0x80, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x32, 0x00, 0x00, 0x00, 0x01,
             0x00, 0x00, 0x00, 0x00, 0x80, 0x00, 0x38, 0xea, 0xe3, 0xc6, 0xa7, 0xc2,
             0x02, 0xe5, 0x0e, 0x50, 0xc2, 0x4b, 0x4a, 0x04, 0xe5, 0x0b, 0x66, 0x80,
             0x00, 0x4a, 0xcb, 0xcf, 0x07, 0x08, 0x20, 0x24, 0x0a, 0x20, 0x80, 0x92,
             0x12, 0x8b, 0x00, 0x02, 0x08, 0x00, 0x00, 0x00, 0xff, 0xff}),
  };
  for (const std::string& wire : vectors) {
    SpdyParser parser;
    std::vector<SpdyFrame> frames = parseAll(parser, wire);
    ASSERT_EQ(frames.size(), 1u);
    const SpdyFrame& f = frames[0];
    EXPECT_EQ(f.type, SpdyFrameType::kSynStream);
    EXPECT_EQ(f.stream_id, 1u);
    EXPECT_EQ(f.associated_stream_id, 0u);
    EXPECT_EQ(f.priority, 4);
    EXPECT_EQ(f.flags, 0);
    EXPECT_EQ(f.headers, (SpdyHeaders{{"bar", "foo"}, {"foo", "bar"}}));
  }
}

// Byte layouts from the spec (and Chromium's framer tests) for the frames without headers.
TEST(SpdyEncoderTest, FixedFramesHaveTheSpecLayout) {
  EXPECT_EQ(encodeSpdyRstStream(1, SpdyRstStatus::kProtocolError),
            bytes({0x80, 0x03, 0x00, 0x03, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 1}));
  EXPECT_EQ(encodeSpdyPing(0x12345678),
            bytes({0x80, 0x03, 0x00, 0x06, 0, 0, 0, 4, 0x12, 0x34, 0x56, 0x78}));
  EXPECT_EQ(encodeSpdyGoAway(0, SpdyGoAwayStatus::kOk),
            bytes({0x80, 0x03, 0x00, 0x07, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(encodeSpdySettings({{.flags = kSpdySettingPersistValue,
                                 .id = static_cast<uint32_t>(SpdySettingId::kInitialWindowSize),
                                 .value = 0x0a0b0c0d}}),
            bytes({0x80, 0x03, 0x00, 0x04, 0, 0,    0,    0x0c, 0,    0,
                   0,    1,    0x01, 0,    0, 0x07, 0x0a, 0x0b, 0x0c, 0x0d}));
  EXPECT_EQ(encodeSpdyWindowUpdate(3, 0x10000),
            bytes({0x80, 0x03, 0x00, 0x09, 0, 0, 0, 8, 0, 0, 0, 3, 0, 1, 0, 0}));
  EXPECT_EQ(encodeSpdyData(5, "hi", true), bytes({0, 0, 0, 5, 0x01, 0, 0, 2, 'h', 'i'}));
}

std::vector<SpdyFrame> everyFrameType() {
  std::vector<SpdyFrame> frames;
  frames.push_back({.type = SpdyFrameType::kSynStream,
                    .flags = kSpdyFlagFin | kSpdyFlagUnidirectional,
                    .stream_id = 7,
                    .associated_stream_id = 5,
                    .priority = 3,
                    .headers = {{"streamtype", "error"}, {"accept", "a"}, {"accept", "b"}}});
  frames.push_back({.type = SpdyFrameType::kSynReply,
                    .flags = kSpdyFlagFin,
                    .stream_id = 7,
                    .headers = {{"status", "200"}}});
  frames.push_back({.type = SpdyFrameType::kHeaders,
                    .stream_id = 7,
                    .headers = {{"x-empty", ""}, {"x-more", "1"}}});
  frames.push_back({.type = SpdyFrameType::kRstStream,
                    .stream_id = kSpdyMaxStreamId,
                    .status = static_cast<uint32_t>(SpdyRstStatus::kCancel)});
  frames.push_back({.type = SpdyFrameType::kSettings,
                    .flags = kSpdyFlagClearSettings,
                    .settings = {{.flags = 0, .id = 4, .value = 100},
                                 {.flags = kSpdySettingPersisted, .id = 7, .value = 65536}}});
  frames.push_back({.type = SpdyFrameType::kSettings});
  frames.push_back({.type = SpdyFrameType::kPing, .ping_id = 0xfffffffe});
  frames.push_back({.type = SpdyFrameType::kGoAway,
                    .status = static_cast<uint32_t>(SpdyGoAwayStatus::kInternalError),
                    .last_good_stream_id = 9});
  frames.push_back({.type = SpdyFrameType::kWindowUpdate, .stream_id = 0, .delta_window_size = 1});
  frames.push_back(
      {.type = SpdyFrameType::kWindowUpdate, .stream_id = 3, .delta_window_size = 0x7fffffff});
  frames.push_back({.type = SpdyFrameType::kData, .flags = 0, .stream_id = 1, .data = "stdout"});
  frames.push_back({.type = SpdyFrameType::kData,
                    .flags = kSpdyFlagFin,
                    .stream_id = 3,
                    .data = std::string("\0bin\xff", 5)});
  frames.push_back({.type = SpdyFrameType::kData, .flags = kSpdyFlagFin, .stream_id = 3});
  return frames;
}

std::string encodeAll(const std::vector<SpdyFrame>& frames) {
  SpdyEncoder encoder;
  std::string wire;
  for (const SpdyFrame& f : frames) {
    absl::StatusOr<std::string> encoded = encoder.encode(f);
    EXPECT_TRUE(encoded.ok()) << spdyFrameTypeName(f.type) << ": " << encoded.status();
    if (encoded.ok()) wire += *encoded;
  }
  return wire;
}

TEST(SpdyCodecTest, EveryFrameTypeRoundTrips) {
  std::vector<SpdyFrame> frames = everyFrameType();
  SpdyParser parser;
  std::vector<SpdyFrame> parsed = parseAll(parser, encodeAll(frames));
  ASSERT_EQ(parsed.size(), frames.size());
  for (size_t i = 0; i < frames.size(); ++i) {
    EXPECT_EQ(parsed[i], frames[i]) << "frame " << i << " " << spdyFrameTypeName(frames[i].type);
  }
  EXPECT_EQ(parser.buffered(), 0u);
}

TEST(SpdyCodecTest, CodecPairTalksToItself) {
  SpdyCodec client;
  SpdyCodec server;
  absl::StatusOr<std::string> syn =
      client.encoder().synStream({.stream_id = 1, .headers = execHeaders("error")});
  ASSERT_TRUE(syn.ok()) << syn.status();
  std::vector<SpdyFrame> got = parseAll(server.parser(), *syn);
  ASSERT_EQ(got.size(), 1u);
  absl::StatusOr<std::string> reply = server.encoder().synReply(got[0].stream_id, {});
  ASSERT_TRUE(reply.ok()) << reply.status();
  got = parseAll(client.parser(), *reply);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].type, SpdyFrameType::kSynReply);
  EXPECT_EQ(got[0].stream_id, 1u);
  EXPECT_TRUE(got[0].headers.empty());
}

TEST(SpdyCodecTest, HeaderBlocksShareOneCompressionContext) {
  SpdyEncoder encoder;
  std::vector<std::string> wires;
  const std::array<const char*, 5> types = {"error", "stdin", "stdout", "stderr", "resize"};
  for (uint32_t i = 0; i < 5; ++i) {
    absl::StatusOr<std::string> syn = encoder.synStream(
        {.stream_id = 2 * i + 1,
         .headers = {{"streamtype", types[i]}, {"x-kubernetes-test", "a-long-shared-value"}}});
    ASSERT_TRUE(syn.ok()) << syn.status();
    wires.push_back(*syn);
  }
  // Later blocks refer back to earlier ones, so they come out smaller than the first.
  EXPECT_LT(wires[4].size(), wires[0].size());

  SpdyParser parser;
  for (uint32_t i = 0; i < 5; ++i) {
    std::vector<SpdyFrame> got = parseAll(parser, wires[i]);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].stream_id, 2 * i + 1);
    EXPECT_EQ(spdyHeaderValue(got[0].headers, "streamtype"), types[i]);
    EXPECT_EQ(spdyHeaderValue(got[0].headers, "x-kubernetes-test"), "a-long-shared-value");
  }

  // A later block alone means nothing to a fresh context.
  SpdyParser fresh;
  EXPECT_FALSE(firstError(fresh, wires[3]).ok());
}

TEST(SpdyCodecTest, RepeatedNamesAreJoinedAndNamesLowercased) {
  SpdyEncoder encoder;
  absl::StatusOr<std::string> wire =
      encoder.synReply(1, {{"X-Stream-Protocol-Version", "v4.channel.k8s.io"},
                           {"x-a", "1"},
                           {"x-stream-protocol-version", "v3.channel.k8s.io"}});
  ASSERT_TRUE(wire.ok()) << wire.status();
  SpdyParser parser;
  std::vector<SpdyFrame> got = parseAll(parser, *wire);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].headers, (SpdyHeaders{{"x-stream-protocol-version", "v4.channel.k8s.io"},
                                         {"x-stream-protocol-version", "v3.channel.k8s.io"},
                                         {"x-a", "1"}}));
}

TEST(SpdyCodecTest, ParsesAcrossEverySplitPoint) {
  std::vector<SpdyFrame> frames = everyFrameType();
  // An unknown control type (NOOP, 5) between frames is skipped wherever the split falls.
  SpdyEncoder encoder;
  std::string wire;
  for (size_t i = 0; i < frames.size(); ++i) {
    if (i == 4) wire += controlFrame(5, 0, "ignored payload");
    absl::StatusOr<std::string> encoded = encoder.encode(frames[i]);
    ASSERT_TRUE(encoded.ok()) << encoded.status();
    wire += *encoded;
  }

  for (size_t split = 0; split <= wire.size(); ++split) {
    SpdyParser parser;
    std::vector<SpdyFrame> got = parseAll(parser, std::string_view(wire).substr(0, split));
    std::vector<SpdyFrame> rest = parseAll(parser, std::string_view(wire).substr(split));
    got.insert(got.end(), rest.begin(), rest.end());
    ASSERT_EQ(got, frames) << "split at " << split;
    EXPECT_EQ(parser.skippedFrames(), 1u);
  }

  SpdyParser byte_at_a_time;
  std::vector<SpdyFrame> got;
  for (char c : wire) {
    std::vector<SpdyFrame> more = parseAll(byte_at_a_time, std::string_view(&c, 1));
    got.insert(got.end(), more.begin(), more.end());
  }
  EXPECT_EQ(got, frames);
}

TEST(SpdyEncoderTest, DataIsSplitIntoChunksWithFinOnTheLast) {
  std::string payload(100, 'x');
  SpdyParser parser;
  std::vector<SpdyFrame> got = parseAll(parser, encodeSpdyData(3, payload, true, 30));
  ASSERT_EQ(got.size(), 4u);
  std::string joined;
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].stream_id, 3u);
    EXPECT_EQ(got[i].fin(), i == 3);
    EXPECT_LE(got[i].data.size(), 30u);
    joined += got[i].data;
  }
  EXPECT_EQ(joined, payload);

  got = parseAll(parser, encodeSpdyData(3, payload, false, 50));
  ASSERT_EQ(got.size(), 2u);
  EXPECT_FALSE(got[1].fin());

  EXPECT_EQ(encodeSpdyData(3, "", false), "");
  got = parseAll(parser, encodeSpdyData(3, "", true));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0].fin());
  EXPECT_TRUE(got[0].data.empty());
}

TEST(SpdyEncoderTest, RejectsBadStreamIdsAndNames) {
  SpdyEncoder encoder;
  EXPECT_EQ(encoder.synReply(0, {}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(encoder.synStream({.stream_id = 0x80000000u}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(encoder.synStream({.stream_id = 1, .priority = 8}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(encoder.headers(1, {{"", "v"}}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(encoder.encode({.type = SpdyFrameType::kData, .stream_id = 0}).status().code(),
            absl::StatusCode::kInvalidArgument);
  // A rejected call leaves the compression context usable.
  absl::StatusOr<std::string> ok = encoder.synReply(1, {{"a", "b"}});
  ASSERT_TRUE(ok.ok()) << ok.status();
  SpdyParser parser;
  EXPECT_EQ(parseAll(parser, *ok).size(), 1u);
}

TEST(SpdyParserTest, RejectsOversizeFramesFromTheHeaderAlone) {
  SpdyParser parser({.max_frame_length = 1024});
  std::string frame = encodeSpdyData(1, std::string(2048, 'z'), false, 4096);
  absl::Status status = firstError(parser, std::string_view(frame).substr(0, 8));
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
  EXPECT_NE(status.message().find("2048"), std::string_view::npos) << status;
  // Sticky: the stream cannot be re-framed after an error.
  EXPECT_EQ(firstError(parser, encodeSpdyPing(1)).code(), absl::StatusCode::kResourceExhausted);

  SpdyParser at_limit({.max_frame_length = 1024});
  EXPECT_EQ(parseAll(at_limit, encodeSpdyData(1, std::string(1024, 'z'), false, 4096)).size(), 1u);
}

TEST(SpdyParserTest, RejectsOtherVersions) {
  for (uint16_t version : {1, 2, 4}) {
    SpdyParser parser;
    absl::Status status = firstError(parser, controlFrame(6, 0, bytes({0, 0, 0, 1}), version));
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(status.message().find("version " + std::to_string(version)), std::string_view::npos)
        << status;
  }
}

TEST(SpdyParserTest, SkipsUnknownControlTypes) {
  // NOOP (5, SPDY/2), CREDENTIAL (10) and a made-up type, one with a large payload that is
  // dropped without being buffered.
  std::string wire = controlFrame(5, 0, "") + controlFrame(10, 0, std::string(5000, 'c')) +
                     controlFrame(0x7777, 0xff, "??") + encodeSpdyPing(2);
  SpdyParser parser({.max_frame_length = 1024});
  std::vector<SpdyFrame> got;
  for (size_t i = 0; i < wire.size(); i += 100) {
    std::vector<SpdyFrame> more = parseAll(parser, std::string_view(wire).substr(i, 100));
    got.insert(got.end(), more.begin(), more.end());
    EXPECT_LT(parser.buffered(), 200u);
  }
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].type, SpdyFrameType::kPing);
  EXPECT_EQ(got[0].ping_id, 2u);
  EXPECT_EQ(parser.skippedFrames(), 3u);
}

TEST(SpdyParserTest, RejectsMalformedFrames) {
  struct Case {
    const char* name;
    std::string wire;
  };
  const std::string dict(spdyHeaderDictionary());
  const std::vector<Case> cases = {
      {"rst short", controlFrame(3, 0, bytes({0, 0, 0, 1}))},
      {"rst stream 0", controlFrame(3, 0, bytes({0, 0, 0, 0, 0, 0, 0, 1}))},
      {"rst status 0", controlFrame(3, 0, bytes({0, 0, 0, 1, 0, 0, 0, 0}))},
      {"ping long", controlFrame(6, 0, bytes({0, 0, 0, 1, 0}))},
      {"goaway short", controlFrame(7, 0, bytes({0, 0, 0, 1}))},
      {"window update short", controlFrame(9, 0, bytes({0, 0, 0, 1}))},
      {"settings count too big", controlFrame(4, 0, bytes({0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 1}))},
      {"settings trailing", controlFrame(4, 0, bytes({0, 0, 0, 0, 1}))},
      {"syn_stream short", controlFrame(1, 0, bytes({0, 0, 0, 1, 0, 0, 0, 0, 0}))},
      {"syn_reply short", controlFrame(2, 0, bytes({0, 0}))},
      {"data on stream 0", bytes({0, 0, 0, 0, 0, 0, 0, 1, 'x'})},
      {"header block not zlib", controlFrame(2, 0, bytes({0, 0, 0, 1}) + "not zlib at all")},
      {"header block with another dictionary",
       controlFrame(
           2, 0,
           bytes({0, 0, 0, 1}) + deflateWithDictionary(rawHeaderBlock({{"a", "b"}}), "other"))},
      {"header block uppercase name",
       controlFrame(
           2, 0,
           bytes({0, 0, 0, 1}) + deflateWithDictionary(rawHeaderBlock({{"Upper", "b"}}), dict))},
      {"header block duplicate name",
       controlFrame(2, 0,
                    bytes({0, 0, 0, 1}) +
                        deflateWithDictionary(rawHeaderBlock({{"a", "1"}, {"a", "2"}}), dict))},
      {"header block empty name",
       controlFrame(
           2, 0, bytes({0, 0, 0, 1}) + deflateWithDictionary(rawHeaderBlock({{"", "1"}}), dict))},
      {"header block truncated",
       controlFrame(2, 0,
                    bytes({0, 0, 0, 1}) +
                        deflateWithDictionary(rawHeaderBlock({{"a", "b"}}).substr(0, 9), dict))},
      {"header block trailing bytes",
       controlFrame(
           2, 0,
           bytes({0, 0, 0, 1}) + deflateWithDictionary(rawHeaderBlock({{"a", "b"}}) + "x", dict))},
      {"syn_reply stream 0",
       controlFrame(2, 0, bytes({0, 0, 0, 0}) + deflateWithDictionary(rawHeaderBlock({}), dict))},
  };
  for (const Case& c : cases) {
    SpdyParser parser;
    absl::Status status = firstError(parser, c.wire);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.name << ": " << status;
  }
}

TEST(SpdyParserTest, AcceptsAHandBuiltHeaderBlock) {
  // Sanity check for the malformed cases above: the same construction, well formed.
  std::string block = rawHeaderBlock({{"port", "8080"}, {"multi", std::string("a\0b", 3)}});
  std::string wire = controlFrame(
      2, 0, bytes({0, 0, 0, 9}) + deflateWithDictionary(block, spdyHeaderDictionary()));
  SpdyParser parser;
  std::vector<SpdyFrame> got = parseAll(parser, wire);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].stream_id, 9u);
  EXPECT_EQ(got[0].headers, (SpdyHeaders{{"port", "8080"}, {"multi", "a"}, {"multi", "b"}}));
}

TEST(SpdyParserTest, LimitsTheDecompressedHeaderBlock) {
  // 1 MiB of zeros compresses to about a kilobyte.
  std::string block = rawHeaderBlock({{"bomb", std::string(1 << 20, '\0')}});
  std::string wire = controlFrame(
      2, 0, bytes({0, 0, 0, 1}) + deflateWithDictionary(block, spdyHeaderDictionary()));
  ASSERT_LT(wire.size(), 4096u);
  SpdyParser parser({.max_header_block = size_t{64} * 1024});
  EXPECT_EQ(firstError(parser, wire).code(), absl::StatusCode::kResourceExhausted);
}

TEST(SpdyParserTest, AHeaderErrorBreaksTheConnection) {
  SpdyEncoder encoder;
  absl::StatusOr<std::string> good = encoder.synReply(1, {{"a", "b"}});
  ASSERT_TRUE(good.ok());
  SpdyParser parser;
  ASSERT_FALSE(firstError(parser, controlFrame(2, 0, bytes({0, 0, 0, 1}) + "junk")).ok());
  EXPECT_FALSE(firstError(parser, *good).ok());
}

}  // namespace
}  // namespace berth::streaming
