// libcurl transfers for the registry client.
#include "image/registry_http.h"

#include <curl/curl.h>

#include <array>
#include <mutex>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace berth::image {
namespace {

constexpr size_t kMaxErrorBody = 64 << 10;
constexpr long kMaxRedirects = 10;
constexpr long kStreamBufferBytes = 512 * 1024;  // CURL_MAX_READ_SIZE of older libcurls

void globalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// State shared with the callbacks of one transfer.
struct Transfer {
  const HttpRequest* request = nullptr;
  const BodySink* sink = nullptr;
  CURL* curl = nullptr;
  HttpResult* result = nullptr;
  bool code_known = false;
  bool success = false;  // the current response is 2xx
  uint64_t skip = 0;     // bytes still to drop (a 200 answer to a Range request)
  absl::Status sink_status;
  bool too_big = false;
  bool error_body_full = false;  // cut after kMaxErrorBody bytes of a non-2xx body
};

size_t onHeader(char* buffer, size_t size, size_t nitems, void* userdata) {
  auto* t = static_cast<Transfer*>(userdata);
  size_t len = size * nitems;
  absl::string_view line(buffer, len);
  while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.remove_suffix(1);
  if (absl::StartsWith(line, "HTTP/")) {  // a new response (after a redirect or 100-continue)
    t->result->headers.clear();
    t->result->body.clear();
    t->code_known = false;
    return len;
  }
  size_t colon = line.find(':');
  if (colon != absl::string_view::npos) {
    t->result->headers.emplace_back(
        absl::AsciiStrToLower(absl::StripAsciiWhitespace(line.substr(0, colon))),
        std::string(absl::StripAsciiWhitespace(line.substr(colon + 1))));
  }
  return len;
}

size_t onWrite(char* data, size_t size, size_t nmemb, void* userdata) {
  auto* t = static_cast<Transfer*>(userdata);
  size_t len = size * nmemb;
  if (!t->code_known) {
    long code = 0;
    curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &code);
    t->code_known = true;
    t->success = code >= 200 && code < 300;
    t->skip = (code == 200) ? t->request->resume_from : 0;
  }
  if (!t->success) {
    std::string& body = t->result->body;
    body.append(data, std::min(len, kMaxErrorBody - std::min(kMaxErrorBody, body.size())));
    if (body.size() < kMaxErrorBody) return len;
    t->error_body_full = true;  // enough to say what went wrong; the rest is not read
    return 0;
  }
  const char* p = data;
  size_t n = len;
  if (t->skip > 0) {
    auto drop = static_cast<size_t>(std::min<uint64_t>(t->skip, n));
    t->skip -= drop;
    p += drop;
    n -= drop;
    if (n == 0) return len;
  }
  if (t->sink != nullptr) {
    absl::Status s = (*t->sink)(p, n);
    if (!s.ok()) {
      t->sink_status = std::move(s);
      return 0;  // CURLE_WRITE_ERROR
    }
    t->result->delivered += n;
    return len;
  }
  if (t->result->body.size() + n > t->request->max_body) {
    t->too_big = true;
    return 0;
  }
  t->result->body.append(p, n);
  return len;
}

bool retryableCurlError(CURLcode code, bool connected) {
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
      return connected;  // a stalled transfer, not a server that never answered
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return true;
    default:
      return false;
  }
}

}  // namespace

std::string HttpResult::header(absl::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) return v;
  }
  return "";
}

std::vector<std::string> HttpResult::headerValues(absl::string_view name) const {
  std::vector<std::string> out;
  for (const auto& [k, v] : headers) {
    if (k == name) out.push_back(v);
  }
  return out;
}

std::string urlHost(absl::string_view url) {
  absl::string_view u = url;
  if (size_t scheme = u.find("://"); scheme != absl::string_view::npos) u = u.substr(scheme + 3);
  u = u.substr(0, u.find_first_of("/?#"));
  if (size_t at = u.rfind('@'); at != absl::string_view::npos) u = u.substr(at + 1);
  return std::string(u);
}

HttpClient::HttpClient(std::string user_agent) : user_agent_(std::move(user_agent)) {
  globalInit();
}

HttpClient::~HttpClient() {
  absl::MutexLock lock(&mu_);
  for (void* h : idle_) curl_easy_cleanup(static_cast<CURL*>(h));
  idle_.clear();
}

void* HttpClient::acquire() {
  {
    absl::MutexLock lock(&mu_);
    if (!idle_.empty()) {
      void* h = idle_.back();
      idle_.pop_back();
      return h;
    }
  }
  return curl_easy_init();
}

void HttpClient::release(void* handle) {
  auto* curl = static_cast<CURL*>(handle);
  curl_easy_reset(curl);  // keeps the connection, DNS and TLS session caches
  {
    absl::MutexLock lock(&mu_);
    if (idle_.size() < kMaxIdleHandles) {
      idle_.push_back(curl);
      return;
    }
  }
  curl_easy_cleanup(curl);
}

HttpResult HttpClient::perform(const HttpRequest& req, const BodySink* sink) {
  HttpResult result;
  auto* curl = static_cast<CURL*>(acquire());
  if (curl == nullptr) {
    result.status = absl::ResourceExhaustedError("cannot create a curl handle");
    return result;
  }
  Transfer t;
  t.request = &req;
  t.sink = sink;
  t.curl = curl;
  t.result = &result;

  curl_slist* headers = nullptr;
  for (const std::string& h : req.headers) headers = curl_slist_append(headers, h.c_str());
  std::string range;
  if (req.resume_from > 0) {
    range = absl::StrCat("Range: bytes=", req.resume_from, "-");
    headers = curl_slist_append(headers, range.c_str());
  }
  std::array<char, CURL_ERROR_SIZE> errbuf{};

  curl_easy_setopt(curl, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf.data());
  curl_easy_setopt(curl, CURLOPT_USERAGENT, user_agent_.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, req.follow_redirects ? 1L : 0L);
  curl_easy_setopt(curl, CURLOPT_MAXREDIRS, kMaxRedirects);
  curl_easy_setopt(curl, CURLOPT_UNRESTRICTED_AUTH, 0L);
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, req.skip_verify ? 0L : 1L);
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, req.skip_verify ? 0L : 2L);
  if (!req.ca_file.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, req.ca_file.c_str());
  if (!req.client_cert.empty()) {
    curl_easy_setopt(curl, CURLOPT_SSLCERT, req.client_cert.c_str());
    curl_easy_setopt(curl, CURLOPT_SSLKEY, req.client_key.c_str());
  }
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, static_cast<long>(req.connect_timeout_s));
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(req.timeout_ms));
  if (req.low_speed_time_s > 0) {
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT,
                     static_cast<long>(std::max<int64_t>(req.low_speed_bps, 1)));
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, static_cast<long>(req.low_speed_time_s));
  }
  curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &onHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &t);
  // Bodies that stream (blobs) are received in large pieces: fewer receive calls and fewer,
  // larger writes and hash updates downstream.
  if (sink != nullptr) curl_easy_setopt(curl, CURLOPT_BUFFERSIZE, kStreamBufferBytes);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &onWrite);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &t);
  if (req.method == "HEAD") {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else if (req.method == "POST") {
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
    curl_easy_setopt(curl, CURLOPT_COPYPOSTFIELDS, req.body.c_str());
  }

  CURLcode rc = curl_easy_perform(curl);
  long code = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
  curl_off_t pretransfer = 0;
  curl_easy_getinfo(curl, CURLINFO_PRETRANSFER_TIME_T, &pretransfer);
  char* effective = nullptr;
  curl_easy_getinfo(curl, CURLINFO_EFFECTIVE_URL, &effective);
  std::string host = urlHost(effective != nullptr ? effective : req.url);  // after redirects
  result.code = code;
  if (rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && t.error_body_full)) {
    result.status = absl::OkStatus();
  } else if (!t.sink_status.ok()) {
    result.sink_failed = true;
    result.status = t.sink_status;
  } else if (t.too_big) {
    result.status = absl::FailedPreconditionError(
        absl::StrCat("response from ", host, " is larger than ", req.max_body, " bytes"));
  } else {
    const bool connected = pretransfer > 0;
    result.retryable = retryableCurlError(rc, connected);
    absl::string_view why = errbuf[0] != '\0' ? absl::string_view(errbuf.data())
                                              : absl::string_view(curl_easy_strerror(rc));
    while (!why.empty() && why.back() == '\n') why.remove_suffix(1);
    result.status = absl::UnavailableError(
        connected ? absl::StrCat("transfer from registry ", host, " failed: ", why)
                  : absl::StrCat("registry ", host, " unreachable: ", why));
  }
  curl_slist_free_all(headers);
  release(curl);
  return result;
}

}  // namespace berth::image
