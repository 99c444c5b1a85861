// SPDY/3.1 framing for the Kubernetes streaming server (exec, attach, port-forward speak it
// through moby/spdystream): frame types, an incremental parser and the encoders.
//
// Wire layout (draft-mbelshe-httpbis-spdy-00 §2.2), all integers big-endian:
//   control: |1|version(15)|type(16)|  |flags(8)|length(24)|  payload…
//   data:    |0|stream id(31)|         |flags(8)|length(24)|  payload…
// Header blocks (SYN_STREAM, SYN_REPLY, HEADERS) are zlib streams seeded with the SPDY/3
// dictionary; each direction of a connection keeps one compression context for its lifetime,
// which is why the parser and the encoder are stateful objects rather than free functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

struct z_stream_s;  // zlib's stream state, kept out of this header

namespace berth::streaming {

inline constexpr uint16_t kSpdyVersion = 3;
inline constexpr size_t kSpdyFrameHeaderSize = 8;
// The length field has 24 bits, so no frame payload can be larger than this.
inline constexpr uint32_t kSpdyMaxFrameLength = (1u << 24) - 1;
inline constexpr uint32_t kSpdyMaxStreamId = 0x7fffffff;

enum class SpdyFrameType : uint16_t {
  kData = 0,  // not a control type: data frames carry no type field
  kSynStream = 1,
  kSynReply = 2,
  kRstStream = 3,
  kSettings = 4,
  kPing = 6,
  kGoAway = 7,
  kHeaders = 8,
  kWindowUpdate = 9,
};
std::string_view spdyFrameTypeName(SpdyFrameType type);

// Flags. FIN applies to DATA, SYN_STREAM, SYN_REPLY and HEADERS.
inline constexpr uint8_t kSpdyFlagFin = 0x01;
inline constexpr uint8_t kSpdyFlagUnidirectional = 0x02;  // SYN_STREAM only
inline constexpr uint8_t kSpdyFlagClearSettings = 0x01;   // SETTINGS only

// RST_STREAM status codes (§2.6.3).
enum class SpdyRstStatus : uint32_t {
  kProtocolError = 1,
  kInvalidStream = 2,
  kRefusedStream = 3,
  kUnsupportedVersion = 4,
  kCancel = 5,
  kInternalError = 6,
  kFlowControlError = 7,
  kStreamInUse = 8,
  kStreamAlreadyClosed = 9,
  kInvalidCredentials = 10,
  kFrameTooLarge = 11,
};

// GOAWAY status codes (§2.6.6).
enum class SpdyGoAwayStatus : uint32_t { kOk = 0, kProtocolError = 1, kInternalError = 2 };

// SETTINGS ids (§2.6.4); kInitialWindowSize is the one flow control cares about.
enum class SpdySettingId : uint32_t {
  kUploadBandwidth = 1,
  kDownloadBandwidth = 2,
  kRoundTripTime = 3,
  kMaxConcurrentStreams = 4,
  kCurrentCwnd = 5,
  kDownloadRetransRate = 6,
  kInitialWindowSize = 7,
  kClientCertificateVectorSize = 8,
};
inline constexpr uint8_t kSpdySettingPersistValue = 0x01;
inline constexpr uint8_t kSpdySettingPersisted = 0x02;

struct SpdySetting {
  uint8_t flags = 0;
  uint32_t id = 0;  // 24 bits on the wire
  uint32_t value = 0;
  bool operator==(const SpdySetting&) const = default;
};

// Header names are lowercase. On the wire a name appears once per block and several values
// are joined with NUL; in this API each value is its own pair, in order, and pairs that share
// a name are joined when encoded.
using SpdyHeaders = std::vector<std::pair<std::string, std::string>>;

// The first value of `name` (already lowercase), if present.
std::optional<std::string_view> spdyHeaderValue(const SpdyHeaders& headers, std::string_view name);

// One decoded frame. Which fields mean something depends on `type`; the rest stay zero/empty.
struct SpdyFrame {
  SpdyFrameType type = SpdyFrameType::kData;
  uint8_t flags = 0;
  // DATA, SYN_STREAM, SYN_REPLY, RST_STREAM, HEADERS, WINDOW_UPDATE (0 there = the session).
  uint32_t stream_id = 0;
  uint32_t associated_stream_id = 0;  // SYN_STREAM
  uint8_t priority = 0;               // SYN_STREAM, 0 (highest) … 7
  uint8_t slot = 0;                   // SYN_STREAM credential slot, unused by Kubernetes
  SpdyHeaders headers;                // SYN_STREAM, SYN_REPLY, HEADERS
  std::string data;                   // DATA payload
  uint32_t status = 0;                // RST_STREAM (SpdyRstStatus), GOAWAY (SpdyGoAwayStatus)
  uint32_t ping_id = 0;               // PING
  uint32_t last_good_stream_id = 0;   // GOAWAY
  uint32_t delta_window_size = 0;     // WINDOW_UPDATE
  std::vector<SpdySetting> settings;  // SETTINGS

  bool fin() const { return (flags & kSpdyFlagFin) != 0; }
  bool operator==(const SpdyFrame&) const = default;
};

struct SpdyLimits {
  // Largest frame payload accepted; bigger frames are a connection error. The default is the
  // protocol maximum because spdystream sends each Write() as a single DATA frame.
  uint32_t max_frame_length = kSpdyMaxFrameLength;
  // Largest decompressed header block; guards against a small frame that inflates hugely.
  size_t max_header_block = size_t{256} * 1024;
};

// The SPDY/3 zlib dictionary (§2.6.10.1), 1423 bytes.
std::string_view spdyHeaderDictionary();

// Decompression context for received header blocks: one per connection.
class SpdyHeaderInflater {
 public:
  explicit SpdyHeaderInflater(size_t max_block = SpdyLimits{}.max_header_block);
  ~SpdyHeaderInflater();
  SpdyHeaderInflater(const SpdyHeaderInflater&) = delete;
  SpdyHeaderInflater& operator=(const SpdyHeaderInflater&) = delete;

  // Inflates and parses one block. After an error the context is unusable: SPDY treats a
  // compression failure as fatal to the session.
  [[nodiscard]] absl::StatusOr<SpdyHeaders> decode(std::string_view compressed);

 private:
  struct End {
    void operator()(z_stream_s* zs) const;
  };
  absl::Status init();

  std::unique_ptr<z_stream_s, End> zs_;
  bool broken_ = false;
  size_t max_block_;
};

// Compression context for sent header blocks: one per connection, ends each block with
// Z_SYNC_FLUSH so the peer can decode it at once.
class SpdyHeaderDeflater {
 public:
  SpdyHeaderDeflater();
  ~SpdyHeaderDeflater();
  SpdyHeaderDeflater(const SpdyHeaderDeflater&) = delete;
  SpdyHeaderDeflater& operator=(const SpdyHeaderDeflater&) = delete;

  // Lowercases names, joins repeated names with NUL, serialises and compresses.
  // Fails on an empty name or on a zlib error (after which the context is unusable).
  [[nodiscard]] absl::StatusOr<std::string> encode(const SpdyHeaders& headers);

 private:
  struct End {
    void operator()(z_stream_s* zs) const;
  };
  absl::Status init();

  std::unique_ptr<z_stream_s, End> zs_;
  bool broken_ = false;
};

// Incremental parser for one connection's received bytes. Not thread-safe: the connection's
// read loop owns it. Feed bytes as they arrive, then call next() until it returns nullopt.
class SpdyParser {
 public:
  explicit SpdyParser(SpdyLimits limits = {});

  void feed(std::string_view bytes);
  // The next whole frame; nullopt when more bytes are needed. Unknown control frame types
  // are skipped. Errors (bad version, oversize or malformed frame, bad header block) are
  // sticky: the connection must be closed, since the stream can no longer be framed.
  [[nodiscard]] absl::StatusOr<std::optional<SpdyFrame>> next();

  size_t buffered() const { return buffer_.size() - offset_; }
  uint64_t skippedFrames() const { return skipped_frames_; }

 private:
  absl::StatusOr<SpdyFrame> decodeControl(uint16_t type, uint8_t flags, std::string_view body);
  void consume(size_t n);

  SpdyLimits limits_;
  SpdyHeaderInflater inflater_;
  std::string buffer_;
  size_t offset_ = 0;       // bytes of buffer_ already parsed
  uint32_t skip_left_ = 0;  // payload bytes of an unknown frame still to discard
  uint64_t skipped_frames_ = 0;
  absl::Status error_;
};

// SYN_STREAM as a client opens a stream (tests, and a server pushing streams).
struct SpdySynStream {
  uint32_t stream_id = 0;
  uint32_t associated_stream_id = 0;
  uint8_t priority = 0;  // 0 … 7
  uint8_t flags = 0;     // kSpdyFlagFin, kSpdyFlagUnidirectional
  SpdyHeaders headers;
};

// Encoders for frames that carry header blocks, which need the connection's compression
// context. Not thread-safe: frames must reach the wire in the order they were encoded, so
// callers encode and write under the connection's write lock.
// Every method fails with InvalidArgument on a stream id of 0 or above kSpdyMaxStreamId.
class SpdyEncoder {
 public:
  [[nodiscard]] absl::StatusOr<std::string> synStream(const SpdySynStream& syn);
  [[nodiscard]] absl::StatusOr<std::string> synReply(uint32_t stream_id, const SpdyHeaders& headers,
                                                     uint8_t flags = 0);
  [[nodiscard]] absl::StatusOr<std::string> headers(uint32_t stream_id, const SpdyHeaders& headers,
                                                    uint8_t flags = 0);
  // Any frame, dispatching on frame.type (DATA is sent as a single frame).
  [[nodiscard]] absl::StatusOr<std::string> encode(const SpdyFrame& frame);

 private:
  absl::StatusOr<std::string> headerFrame(SpdyFrameType type, uint8_t flags,
                                          std::string_view prefix, const SpdyHeaders& headers);

  SpdyHeaderDeflater deflater_;
};

// Stateless encoders. REQUIRES: stream ids in 1 … kSpdyMaxStreamId (0 allowed where noted).
inline constexpr size_t kSpdyDefaultDataChunk = size_t{32} * 1024;
// DATA frames for `payload`, split into frames of at most `max_chunk` bytes; only the last
// carries FIN. An empty payload yields one empty frame with FIN, or nothing without it.
std::string encodeSpdyData(uint32_t stream_id, std::string_view payload, bool fin,
                           size_t max_chunk = kSpdyDefaultDataChunk);
std::string encodeSpdyRstStream(uint32_t stream_id, SpdyRstStatus status);
std::string encodeSpdyPing(uint32_t ping_id);  // also the echo: reply with the same id
std::string encodeSpdyGoAway(uint32_t last_good_stream_id, SpdyGoAwayStatus status);
// stream_id 0 updates the session window (SPDY/3.1).
std::string encodeSpdyWindowUpdate(uint32_t stream_id, uint32_t delta);
std::string encodeSpdySettings(const std::vector<SpdySetting>& settings, uint8_t flags = 0);

// Both directions of one connection. The halves share no state, so the read loop may use
// parser() while writers use encoder() under their own lock.
class SpdyCodec {
 public:
  explicit SpdyCodec(SpdyLimits limits = {}) : parser_(limits) {}

  SpdyParser& parser() { return parser_; }
  SpdyEncoder& encoder() { return encoder_; }

 private:
  SpdyParser parser_;
  SpdyEncoder encoder_;
};

}  // namespace berth::streaming
