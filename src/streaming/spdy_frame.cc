// SPDY/3.1 frame parsing and encoding; see spdy_frame.h for the wire layout.
#include "streaming/spdy_frame.h"

// Lets zlib take pointers to const input.
#define ZLIB_CONST
#include <zlib.h>

#include <algorithm>
#include <array>
#include <climits>
#include <set>

namespace berth::streaming {
namespace {

// §2.6.10.1. The dictionary is a run of words, each written as a 32-bit big-endian length
// followed by the word, and then a block of raw text (status lines, dates, media types).
// Its Adler-32, e3c6a7c2, is the DICTID in every SPDY/3 header stream.
// clang-format off
constexpr std::array<std::string_view, 65> kDictionaryWords = {
    "options", "head", "post", "put", "delete", "trace", "accept", "accept-charset",
    "accept-encoding", "accept-language", "accept-ranges", "age", "allow", "authorization",
    "cache-control", "connection", "content-base", "content-encoding", "content-language",
    "content-length", "content-location", "content-md5", "content-range", "content-type", "date",
    "etag", "expect", "expires", "from", "host", "if-match", "if-modified-since", "if-none-match",
    "if-range", "if-unmodified-since", "last-modified", "location", "max-forwards", "pragma",
    "proxy-authenticate", "proxy-authorization", "range", "referer", "retry-after", "server", "te",
    "trailer", "transfer-encoding", "upgrade", "user-agent", "vary", "via", "warning",
    "www-authenticate", "method", "get", "status", "200 OK", "version", "HTTP/1.1", "url", "public",
    "set-cookie", "keep-alive", "origin",
};
// clang-format on
constexpr std::string_view kDictionaryText =
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information"
    "204 No Content"
    "301 Moved Permanently"
    "400 Bad Request"
    "401 Unauthorized"
    "403 Forbidden"
    "404 Not Found"
    "500 Internal Server Error"
    "501 Not Implemented"
    "503 Service Unavailable"
    "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 "
    "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT"
    "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,"
    "text/plain,text/javascript,publicprivatemax-age=gzip,deflate,sdch"
    "charset=utf-8charset=iso-8859-1,utf-,*,enq=0.";

void putU16(std::string& out, uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}

void putU32(std::string& out, uint32_t v) {
  putU16(out, static_cast<uint16_t>(v >> 16));
  putU16(out, static_cast<uint16_t>(v));
}

uint32_t getU32(std::string_view in, size_t pos) {
  auto b = [&](size_t i) { return static_cast<uint32_t>(static_cast<uint8_t>(in[pos + i])); };
  return b(0) << 24 | b(1) << 16 | b(2) << 8 | b(3);
}

// Bounds-checked cursor over a frame payload or a header block.
class ByteReader {
 public:
  explicit ByteReader(std::string_view in) : in_(in) {}

  bool u8(uint8_t& v) {
    if (in_.empty()) return false;
    v = static_cast<uint8_t>(in_[0]);
    in_.remove_prefix(1);
    return true;
  }
  bool u32(uint32_t& v) {
    if (in_.size() < 4) return false;
    v = getU32(in_, 0);
    in_.remove_prefix(4);
    return true;
  }
  bool bytes(size_t n, std::string_view& v) {
    if (in_.size() < n) return false;
    v = in_.substr(0, n);
    in_.remove_prefix(n);
    return true;
  }
  size_t left() const { return in_.size(); }
  std::string_view rest() const { return in_; }

 private:
  std::string_view in_;
};

absl::Status protocolError(std::string_view what) {
  return absl::InvalidArgumentError("spdy: " + std::string(what));
}

void putControlHeader(std::string& out, SpdyFrameType type, uint8_t flags, uint32_t length) {
  putU16(out, 0x8000 | kSpdyVersion);
  putU16(out, static_cast<uint16_t>(type));
  putU32(out, static_cast<uint32_t>(flags) << 24 | length);
}

void putDataFrame(std::string& out, uint32_t stream_id, uint8_t flags, std::string_view payload) {
  putU32(out, stream_id & kSpdyMaxStreamId);
  putU32(out, static_cast<uint32_t>(flags) << 24 | static_cast<uint32_t>(payload.size()));
  out.append(payload);
}

bool validStreamId(uint32_t id) { return id != 0 && id <= kSpdyMaxStreamId; }

absl::Status checkStreamId(uint32_t id) {
  if (validStreamId(id)) return absl::OkStatus();
  return absl::InvalidArgumentError("spdy: stream id " + std::to_string(id) +
                                    " is outside 1…2^31-1");
}

bool knownControlType(uint16_t type) {
  switch (static_cast<SpdyFrameType>(type)) {
    case SpdyFrameType::kSynStream:
    case SpdyFrameType::kSynReply:
    case SpdyFrameType::kRstStream:
    case SpdyFrameType::kSettings:
    case SpdyFrameType::kPing:
    case SpdyFrameType::kGoAway:
    case SpdyFrameType::kHeaders:
    case SpdyFrameType::kWindowUpdate:
      return true;
    case SpdyFrameType::kData:
      break;
  }
  return false;
}

// Parses an uncompressed name/value block (§2.6.10): a 32-bit count, then per entry a
// 32-bit name length, the name, a 32-bit value length and the NUL-joined values.
absl::StatusOr<SpdyHeaders> parseHeaderBlock(std::string_view block) {
  ByteReader r(block);
  uint32_t count = 0;
  if (!r.u32(count)) return protocolError("header block shorter than its count");
  // Each entry takes at least 8 bytes, which bounds what a hostile count can make us reserve.
  if (count > r.left() / 8) return protocolError("header block count exceeds its size");
  SpdyHeaders headers;
  headers.reserve(count);
  std::set<std::string_view> seen;
  for (uint32_t i = 0; i < count; ++i) {
    uint32_t len = 0;
    std::string_view name;
    std::string_view value;
    if (!r.u32(len) || !r.bytes(len, name)) return protocolError("truncated header name");
    if (!r.u32(len) || !r.bytes(len, value)) return protocolError("truncated header value");
    if (name.empty()) return protocolError("empty header name");
    if (std::any_of(name.begin(), name.end(), [](char c) { return c >= 'A' && c <= 'Z'; })) {
      return protocolError("header name '" + std::string(name) + "' is not lowercase");
    }
    if (!seen.insert(name).second) {
      return protocolError("header name '" + std::string(name) + "' appears twice");
    }
    while (true) {
      size_t nul = value.find('\0');
      headers.emplace_back(std::string(name), std::string(value.substr(0, nul)));
      if (nul == std::string_view::npos) break;
      value.remove_prefix(nul + 1);
    }
  }
  if (r.left() != 0) return protocolError("bytes left over after the header block");
  return headers;
}

// Lowercases names and joins repeated names (first-seen order) into the wire form.
absl::StatusOr<std::string> serializeHeaderBlock(const SpdyHeaders& headers) {
  SpdyHeaders merged;
  for (const auto& [name, value] : headers) {
    if (name.empty()) return absl::InvalidArgumentError("spdy: empty header name");
    std::string lower = name;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; });
    auto it = std::find_if(merged.begin(), merged.end(),
                           [&](const auto& entry) { return entry.first == lower; });
    if (it == merged.end()) {
      merged.emplace_back(std::move(lower), value);
    } else {
      it->second.push_back('\0');
      it->second.append(value);
    }
  }
  std::string block;
  putU32(block, static_cast<uint32_t>(merged.size()));
  for (const auto& [name, value] : merged) {
    if (name.size() > kSpdyMaxFrameLength || value.size() > kSpdyMaxFrameLength) {
      return absl::InvalidArgumentError("spdy: header '" + name + "' does not fit in a frame");
    }
    putU32(block, static_cast<uint32_t>(name.size()));
    block.append(name);
    putU32(block, static_cast<uint32_t>(value.size()));
    block.append(value);
  }
  return block;
}

std::string zlibMessage(const z_stream& zs, int rc) {
  return zs.msg != nullptr ? std::string(zs.msg) : "zlib error " + std::to_string(rc);
}

}  // namespace

std::string_view spdyFrameTypeName(SpdyFrameType type) {
  switch (type) {
    case SpdyFrameType::kData:
      return "DATA";
    case SpdyFrameType::kSynStream:
      return "SYN_STREAM";
    case SpdyFrameType::kSynReply:
      return "SYN_REPLY";
    case SpdyFrameType::kRstStream:
      return "RST_STREAM";
    case SpdyFrameType::kSettings:
      return "SETTINGS";
    case SpdyFrameType::kPing:
      return "PING";
    case SpdyFrameType::kGoAway:
      return "GOAWAY";
    case SpdyFrameType::kHeaders:
      return "HEADERS";
    case SpdyFrameType::kWindowUpdate:
      return "WINDOW_UPDATE";
  }
  return "UNKNOWN";
}

std::optional<std::string_view> spdyHeaderValue(const SpdyHeaders& headers, std::string_view name) {
  for (const auto& [n, v] : headers) {
    if (n == name) return std::string_view(v);
  }
  return std::nullopt;
}

std::string_view spdyHeaderDictionary() {
  static const std::string dictionary = [] {
    std::string d;
    for (std::string_view word : kDictionaryWords) {
      putU32(d, static_cast<uint32_t>(word.size()));
      d.append(word);
    }
    d.append(kDictionaryText);
    return d;
  }();
  return dictionary;
}

// ---- header compression ----

void SpdyHeaderInflater::End::operator()(z_stream_s* zs) const {
  inflateEnd(zs);
  delete zs;
}

SpdyHeaderInflater::SpdyHeaderInflater(size_t max_block) : max_block_(max_block) {}
SpdyHeaderInflater::~SpdyHeaderInflater() = default;

absl::Status SpdyHeaderInflater::init() {
  auto zs = std::make_unique<z_stream_s>();
  int rc = inflateInit(zs.get());
  if (rc != Z_OK) return absl::InternalError("spdy: inflateInit: " + zlibMessage(*zs, rc));
  zs_.reset(zs.release());
  return absl::OkStatus();
}

absl::StatusOr<SpdyHeaders> SpdyHeaderInflater::decode(std::string_view compressed) {
  if (broken_) {
    return absl::FailedPreconditionError(
        "spdy: header decompression context is unusable after an earlier error");
  }
  // Any failure below leaves the shared context out of step with the peer's.
  broken_ = true;
  if (compressed.size() > UINT_MAX) return protocolError("compressed header block too large");
  if (!zs_) {
    absl::Status status = init();
    if (!status.ok()) return status;
  }
  z_stream_s& zs = *zs_;
  zs.next_in = reinterpret_cast<const Bytef*>(compressed.data());
  zs.avail_in = static_cast<uInt>(compressed.size());
  std::string block;
  std::array<Bytef, 4096> chunk;
  while (true) {
    zs.next_out = chunk.data();
    zs.avail_out = static_cast<uInt>(chunk.size());
    int rc = inflate(&zs, Z_SYNC_FLUSH);
    if (rc == Z_NEED_DICT) {  // the first block announces the dictionary by its Adler-32
      std::string_view dict = spdyHeaderDictionary();
      rc = inflateSetDictionary(&zs, reinterpret_cast<const Bytef*>(dict.data()),
                                static_cast<uInt>(dict.size()));
      if (rc != Z_OK) {
        return protocolError("header block wants a dictionary other than SPDY/3's: " +
                             zlibMessage(zs, rc));
      }
      continue;
    }
    block.append(reinterpret_cast<const char*>(chunk.data()), chunk.size() - zs.avail_out);
    if (block.size() > max_block_) {
      return absl::ResourceExhaustedError("spdy: decompressed header block exceeds " +
                                          std::to_string(max_block_) + " bytes");
    }
    if (rc == Z_STREAM_END || rc == Z_BUF_ERROR) break;  // peer ended the stream; no progress
    if (rc != Z_OK) return protocolError("corrupt header block: " + zlibMessage(zs, rc));
    if (zs.avail_in == 0 && zs.avail_out != 0) break;  // all input used, all output drained
  }
  if (zs.avail_in != 0) return protocolError("compressed bytes left over after the header block");
  absl::StatusOr<SpdyHeaders> headers = parseHeaderBlock(block);
  if (headers.ok()) broken_ = false;
  return headers;
}

void SpdyHeaderDeflater::End::operator()(z_stream_s* zs) const {
  deflateEnd(zs);
  delete zs;
}

SpdyHeaderDeflater::SpdyHeaderDeflater() = default;
SpdyHeaderDeflater::~SpdyHeaderDeflater() = default;

absl::Status SpdyHeaderDeflater::init() {
  auto zs = std::make_unique<z_stream_s>();
  int rc = deflateInit(zs.get(), Z_DEFAULT_COMPRESSION);
  if (rc != Z_OK) return absl::InternalError("spdy: deflateInit: " + zlibMessage(*zs, rc));
  zs_.reset(zs.release());
  std::string_view dict = spdyHeaderDictionary();
  rc = deflateSetDictionary(zs_.get(), reinterpret_cast<const Bytef*>(dict.data()),
                            static_cast<uInt>(dict.size()));
  if (rc != Z_OK) {
    return absl::InternalError("spdy: deflateSetDictionary: " + zlibMessage(*zs_, rc));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> SpdyHeaderDeflater::encode(const SpdyHeaders& headers) {
  absl::StatusOr<std::string> block = serializeHeaderBlock(headers);
  if (!block.ok()) return block.status();  // nothing reached the context yet
  if (broken_) {
    return absl::FailedPreconditionError(
        "spdy: header compression context is unusable after an earlier error");
  }
  broken_ = true;
  if (!zs_) {
    absl::Status status = init();
    if (!status.ok()) return status;
  }
  z_stream_s& zs = *zs_;
  zs.next_in = reinterpret_cast<const Bytef*>(block->data());
  zs.avail_in = static_cast<uInt>(block->size());
  std::string out;
  std::array<Bytef, 4096> chunk;
  do {
    zs.next_out = chunk.data();
    zs.avail_out = static_cast<uInt>(chunk.size());
    int rc = deflate(&zs, Z_SYNC_FLUSH);
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      return absl::InternalError("spdy: deflate: " + zlibMessage(zs, rc));
    }
    out.append(reinterpret_cast<const char*>(chunk.data()), chunk.size() - zs.avail_out);
  } while (zs.avail_out == 0);
  broken_ = false;
  return out;
}

// ---- parser ----

SpdyParser::SpdyParser(SpdyLimits limits) : limits_(limits), inflater_(limits.max_header_block) {}

void SpdyParser::feed(std::string_view bytes) {
  if (skip_left_ > 0 && buffered() == 0) {  // drop an unknown frame without buffering it
    size_t n = std::min<size_t>(skip_left_, bytes.size());
    bytes.remove_prefix(n);
    skip_left_ -= static_cast<uint32_t>(n);
  }
  if (offset_ > 0 && offset_ >= buffer_.size() / 2) {
    buffer_.erase(0, offset_);
    offset_ = 0;
  }
  buffer_.append(bytes);
}

void SpdyParser::consume(size_t n) {
  offset_ += n;
  if (offset_ == buffer_.size()) {
    buffer_.clear();
    offset_ = 0;
  }
}

absl::StatusOr<std::optional<SpdyFrame>> SpdyParser::next() {
  if (!error_.ok()) return error_;
  while (true) {
    if (skip_left_ > 0) {
      size_t n = std::min<size_t>(skip_left_, buffered());
      consume(n);
      skip_left_ -= static_cast<uint32_t>(n);
      if (skip_left_ > 0) return std::nullopt;
    }
    if (buffered() < kSpdyFrameHeaderSize) return std::nullopt;
    std::string_view in(buffer_.data() + offset_, buffered());
    uint32_t word0 = getU32(in, 0);
    uint32_t word1 = getU32(in, 4);
    auto flags = static_cast<uint8_t>(word1 >> 24);
    uint32_t length = word1 & 0xffffff;
    bool control = (word0 & 0x80000000u) != 0;
    auto type = static_cast<uint16_t>(word0 & 0xffff);
    if (control) {
      auto version = static_cast<uint16_t>((word0 >> 16) & 0x7fff);
      if (version != kSpdyVersion) {
        error_ = protocolError("control frame has version " + std::to_string(version) +
                               "; only SPDY/3 is supported");
        return error_;
      }
      if (!knownControlType(type)) {  // §2.2.1: unknown types are ignored
        consume(kSpdyFrameHeaderSize);
        skip_left_ = length;
        ++skipped_frames_;
        continue;
      }
    }
    if (length > limits_.max_frame_length) {
      error_ = absl::ResourceExhaustedError(
          "spdy: " +
          std::string(control ? spdyFrameTypeName(static_cast<SpdyFrameType>(type)) : "DATA") +
          " frame of " + std::to_string(length) + " bytes exceeds the limit of " +
          std::to_string(limits_.max_frame_length));
      return error_;
    }
    if (buffered() < kSpdyFrameHeaderSize + length) return std::nullopt;
    std::string_view body = in.substr(kSpdyFrameHeaderSize, length);
    absl::StatusOr<SpdyFrame> frame;
    if (control) {
      frame = decodeControl(type, flags, body);
    } else if ((word0 & kSpdyMaxStreamId) == 0) {
      frame = protocolError("DATA frame on stream 0");
    } else {
      frame.emplace();
      frame->type = SpdyFrameType::kData;
      frame->flags = flags;
      frame->stream_id = word0 & kSpdyMaxStreamId;
      frame->data.assign(body);
    }
    consume(kSpdyFrameHeaderSize + length);
    if (!frame.ok()) {
      error_ = frame.status();
      return error_;
    }
    return std::optional<SpdyFrame>(std::move(*frame));
  }
}

absl::StatusOr<SpdyFrame> SpdyParser::decodeControl(uint16_t type, uint8_t flags,
                                                    std::string_view body) {
  SpdyFrame f;
  f.type = static_cast<SpdyFrameType>(type);
  f.flags = flags;
  const std::string name(spdyFrameTypeName(f.type));
  auto bad = [&](std::string_view why) { return protocolError(name + ": " + std::string(why)); };
  auto fixedLength = [&](size_t want) {
    return body.size() == want
               ? absl::OkStatus()
               : bad("length " + std::to_string(body.size()) + ", want " + std::to_string(want));
  };
  ByteReader r(body);
  uint32_t word = 0;
  switch (f.type) {
    case SpdyFrameType::kSynStream: {
      uint8_t priority = 0;
      if (!r.u32(f.stream_id) || !r.u32(f.associated_stream_id) || !r.u8(priority) ||
          !r.u8(f.slot)) {
        return bad("shorter than 10 bytes");
      }
      f.stream_id &= kSpdyMaxStreamId;
      f.associated_stream_id &= kSpdyMaxStreamId;
      f.priority = static_cast<uint8_t>(priority >> 5);
      absl::StatusOr<SpdyHeaders> headers = inflater_.decode(r.rest());
      if (!headers.ok()) return headers.status();
      f.headers = std::move(*headers);
      if (f.stream_id == 0) return bad("stream id 0");
      return f;
    }
    case SpdyFrameType::kSynReply:
    case SpdyFrameType::kHeaders: {
      if (!r.u32(f.stream_id)) return bad("shorter than 4 bytes");
      f.stream_id &= kSpdyMaxStreamId;
      absl::StatusOr<SpdyHeaders> headers = inflater_.decode(r.rest());
      if (!headers.ok()) return headers.status();
      f.headers = std::move(*headers);
      if (f.stream_id == 0) return bad("stream id 0");
      return f;
    }
    case SpdyFrameType::kRstStream:
      if (absl::Status s = fixedLength(8); !s.ok()) return s;
      r.u32(f.stream_id);
      r.u32(f.status);
      f.stream_id &= kSpdyMaxStreamId;
      if (f.stream_id == 0) return bad("stream id 0");
      if (f.status == 0) return bad("status 0");
      return f;
    case SpdyFrameType::kSettings: {
      uint32_t count = 0;
      if (!r.u32(count) || count > r.left() / 8 || r.left() != static_cast<size_t>(count) * 8) {
        return bad("length does not match its entry count");
      }
      f.settings.resize(count);
      for (SpdySetting& s : f.settings) {
        r.u32(word);
        r.u32(s.value);
        s.flags = static_cast<uint8_t>(word >> 24);
        s.id = word & 0xffffff;
      }
      return f;
    }
    case SpdyFrameType::kPing:
      if (absl::Status s = fixedLength(4); !s.ok()) return s;
      r.u32(f.ping_id);
      return f;
    case SpdyFrameType::kGoAway:
      if (absl::Status s = fixedLength(8); !s.ok()) return s;
      r.u32(f.last_good_stream_id);
      r.u32(f.status);
      f.last_good_stream_id &= kSpdyMaxStreamId;
      return f;
    case SpdyFrameType::kWindowUpdate:
      if (absl::Status s = fixedLength(8); !s.ok()) return s;
      r.u32(f.stream_id);
      r.u32(f.delta_window_size);
      f.stream_id &= kSpdyMaxStreamId;
      f.delta_window_size &= 0x7fffffff;
      return f;
    case SpdyFrameType::kData:
      break;
  }
  return bad("not a control frame type");
}

// ---- encoders ----

absl::StatusOr<std::string> SpdyEncoder::headerFrame(SpdyFrameType type, uint8_t flags,
                                                     std::string_view prefix,
                                                     const SpdyHeaders& headers) {
  absl::StatusOr<std::string> block = deflater_.encode(headers);
  if (!block.ok()) return block.status();
  size_t length = prefix.size() + block->size();
  if (length > kSpdyMaxFrameLength) {
    return absl::InvalidArgumentError("spdy: " + std::string(spdyFrameTypeName(type)) +
                                      " header block does not fit in one frame");
  }
  std::string out;
  out.reserve(kSpdyFrameHeaderSize + length);
  putControlHeader(out, type, flags, static_cast<uint32_t>(length));
  out.append(prefix);
  out.append(*block);
  return out;
}

absl::StatusOr<std::string> SpdyEncoder::synStream(const SpdySynStream& syn) {
  if (absl::Status s = checkStreamId(syn.stream_id); !s.ok()) return s;
  if (syn.associated_stream_id > kSpdyMaxStreamId) return checkStreamId(syn.associated_stream_id);
  if (syn.priority > 7) return absl::InvalidArgumentError("spdy: priority above 7");
  std::string prefix;
  putU32(prefix, syn.stream_id);
  putU32(prefix, syn.associated_stream_id);
  prefix.push_back(static_cast<char>(syn.priority << 5));
  prefix.push_back('\0');  // credential slot
  return headerFrame(SpdyFrameType::kSynStream, syn.flags, prefix, syn.headers);
}

absl::StatusOr<std::string> SpdyEncoder::synReply(uint32_t stream_id, const SpdyHeaders& headers,
                                                  uint8_t flags) {
  if (absl::Status s = checkStreamId(stream_id); !s.ok()) return s;
  std::string prefix;
  putU32(prefix, stream_id);
  return headerFrame(SpdyFrameType::kSynReply, flags, prefix, headers);
}

absl::StatusOr<std::string> SpdyEncoder::headers(uint32_t stream_id, const SpdyHeaders& headers,
                                                 uint8_t flags) {
  if (absl::Status s = checkStreamId(stream_id); !s.ok()) return s;
  std::string prefix;
  putU32(prefix, stream_id);
  return headerFrame(SpdyFrameType::kHeaders, flags, prefix, headers);
}

absl::StatusOr<std::string> SpdyEncoder::encode(const SpdyFrame& frame) {
  switch (frame.type) {
    case SpdyFrameType::kData: {
      if (absl::Status s = checkStreamId(frame.stream_id); !s.ok()) return s;
      if (frame.data.size() > kSpdyMaxFrameLength) {
        return absl::InvalidArgumentError("spdy: DATA payload does not fit in one frame");
      }
      std::string out;
      putDataFrame(out, frame.stream_id, frame.flags, frame.data);
      return out;
    }
    case SpdyFrameType::kSynStream:
      return synStream({.stream_id = frame.stream_id,
                        .associated_stream_id = frame.associated_stream_id,
                        .priority = frame.priority,
                        .flags = frame.flags,
                        .headers = frame.headers});
    case SpdyFrameType::kSynReply:
      return synReply(frame.stream_id, frame.headers, frame.flags);
    case SpdyFrameType::kHeaders:
      return headers(frame.stream_id, frame.headers, frame.flags);
    case SpdyFrameType::kRstStream:
      if (absl::Status s = checkStreamId(frame.stream_id); !s.ok()) return s;
      return encodeSpdyRstStream(frame.stream_id, static_cast<SpdyRstStatus>(frame.status));
    case SpdyFrameType::kSettings:
      return encodeSpdySettings(frame.settings, frame.flags);
    case SpdyFrameType::kPing:
      return encodeSpdyPing(frame.ping_id);
    case SpdyFrameType::kGoAway:
      return encodeSpdyGoAway(frame.last_good_stream_id,
                              static_cast<SpdyGoAwayStatus>(frame.status));
    case SpdyFrameType::kWindowUpdate:
      return encodeSpdyWindowUpdate(frame.stream_id, frame.delta_window_size);
  }
  return absl::InvalidArgumentError("spdy: unknown frame type");
}

std::string encodeSpdyData(uint32_t stream_id, std::string_view payload, bool fin,
                           size_t max_chunk) {
  max_chunk = std::clamp<size_t>(max_chunk, 1, kSpdyMaxFrameLength);
  std::string out;
  if (payload.empty()) {
    if (fin) putDataFrame(out, stream_id, kSpdyFlagFin, {});
    return out;
  }
  size_t frames = (payload.size() + max_chunk - 1) / max_chunk;
  out.reserve(payload.size() + frames * kSpdyFrameHeaderSize);
  while (!payload.empty()) {
    std::string_view part = payload.substr(0, max_chunk);
    payload.remove_prefix(part.size());
    putDataFrame(out, stream_id, (fin && payload.empty()) ? kSpdyFlagFin : 0, part);
  }
  return out;
}

std::string encodeSpdyRstStream(uint32_t stream_id, SpdyRstStatus status) {
  std::string out;
  putControlHeader(out, SpdyFrameType::kRstStream, 0, 8);
  putU32(out, stream_id & kSpdyMaxStreamId);
  putU32(out, static_cast<uint32_t>(status));
  return out;
}

std::string encodeSpdyPing(uint32_t ping_id) {
  std::string out;
  putControlHeader(out, SpdyFrameType::kPing, 0, 4);
  putU32(out, ping_id);
  return out;
}

std::string encodeSpdyGoAway(uint32_t last_good_stream_id, SpdyGoAwayStatus status) {
  std::string out;
  putControlHeader(out, SpdyFrameType::kGoAway, 0, 8);
  putU32(out, last_good_stream_id & kSpdyMaxStreamId);
  putU32(out, static_cast<uint32_t>(status));
  return out;
}

std::string encodeSpdyWindowUpdate(uint32_t stream_id, uint32_t delta) {
  std::string out;
  putControlHeader(out, SpdyFrameType::kWindowUpdate, 0, 8);
  putU32(out, stream_id & kSpdyMaxStreamId);
  putU32(out, delta & 0x7fffffff);
  return out;
}

std::string encodeSpdySettings(const std::vector<SpdySetting>& settings, uint8_t flags) {
  std::string out;
  putControlHeader(out, SpdyFrameType::kSettings, flags,
                   static_cast<uint32_t>(4 + settings.size() * 8));
  putU32(out, static_cast<uint32_t>(settings.size()));
  for (const SpdySetting& s : settings) {
    putU32(out, static_cast<uint32_t>(s.flags) << 24 | (s.id & 0xffffff));
    putU32(out, s.value);
  }
  return out;
}

}  // namespace berth::streaming
