// Test helpers for layer unpacking: writes tar layers (plain, gzip or zstd) with libarchive,
// and a temp dir that is removed at the end of a test.
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "image/digest.h"

namespace berth::image::testing {

enum class Compression { kNone, kGzip, kZstd };

inline const char* compressionName(Compression c) {
  switch (c) {
    case Compression::kNone:
      return "none";
    case Compression::kGzip:
      return "gzip";
    case Compression::kZstd:
      return "zstd";
  }
  return "?";
}

constexpr int64_t kDefaultMtime = 1577836800;  // 2020-01-01

// The diff id of a layer file: sha256 of its content after decompression (gzip, zstd, none).
inline std::string diffIdOf(const std::string& path) {
  struct archive* a = archive_read_new();
  archive_read_support_filter_all(a);
  archive_read_support_format_raw(a);
  std::string out;
  struct archive_entry* e = nullptr;
  if (archive_read_open_filename(a, path.c_str(), 1 << 16) == ARCHIVE_OK &&
      archive_read_next_header(a, &e) == ARCHIVE_OK) {
    Sha256 hash;
    char buf[1 << 16];
    la_ssize_t n = 0;
    while ((n = archive_read_data(a, buf, sizeof buf)) > 0) hash.update(buf, n);
    if (n == 0) out = hash.finish().str();
  }
  archive_read_free(a);
  return out;
}

struct TarEntry {
  std::string name;
  unsigned type = AE_IFREG;  // AE_IFREG, AE_IFDIR, AE_IFLNK, AE_IFCHR, AE_IFBLK, AE_IFIFO
  unsigned perm = 0644;
  std::string content;
  std::string symlink;   // target of a symlink
  std::string hardlink;  // when set, the entry is a hard link to this name
  int64_t uid = 0;
  int64_t gid = 0;
  int64_t mtime = kDefaultMtime;
  unsigned major = 0;
  unsigned minor = 0;
  std::vector<std::pair<std::string, std::string>> xattrs;
};

// Builds a layer entry by entry, in the order given.
class TarBuilder {
 public:
  TarBuilder& add(TarEntry e) {
    entries_.push_back(std::move(e));
    return *this;
  }
  TarBuilder& file(const std::string& name, const std::string& content, unsigned perm = 0644) {
    return add({.name = name, .perm = perm, .content = content});
  }
  TarBuilder& dir(const std::string& name, unsigned perm = 0755) {
    return add({.name = name, .type = AE_IFDIR, .perm = perm});
  }
  TarBuilder& symlink(const std::string& name, const std::string& target) {
    return add({.name = name, .type = AE_IFLNK, .perm = 0777, .symlink = target});
  }
  TarBuilder& hardlink(const std::string& name, const std::string& target) {
    return add({.name = name, .hardlink = target});
  }
  TarBuilder& whiteout(const std::string& dir, const std::string& name) {
    return file(dir.empty() ? ".wh." + name : dir + "/.wh." + name, "");
  }
  TarBuilder& opaque(const std::string& dir) { return file(dir + "/.wh..wh..opq", ""); }

  // Writes the layer to `path` (pax format, so xattrs are kept).
  void write(const std::string& path, Compression compression = Compression::kGzip) const {
    struct archive* a = archive_write_new();
    ASSERT_NE(a, nullptr);
    if (compression == Compression::kGzip) archive_write_add_filter_gzip(a);
    if (compression == Compression::kZstd) archive_write_add_filter_zstd(a);
    archive_write_set_format_pax_restricted(a);
    ASSERT_EQ(archive_write_open_filename(a, path.c_str()), ARCHIVE_OK) << archive_error_string(a);
    for (const TarEntry& e : entries_) {
      struct archive_entry* entry = archive_entry_new();
      archive_entry_set_pathname(entry, e.name.c_str());
      archive_entry_set_uid(entry, e.uid);
      archive_entry_set_gid(entry, e.gid);
      archive_entry_set_mtime(entry, e.mtime, 0);
      archive_entry_set_perm(entry, e.perm);
      for (const auto& [k, v] : e.xattrs) {
        archive_entry_xattr_add_entry(entry, k.c_str(), v.data(), v.size());
      }
      if (!e.hardlink.empty()) {
        archive_entry_set_filetype(entry, AE_IFREG);
        archive_entry_set_hardlink(entry, e.hardlink.c_str());
        archive_entry_set_size(entry, 0);
      } else {
        archive_entry_set_filetype(entry, e.type);
        if (e.type == AE_IFLNK) archive_entry_set_symlink(entry, e.symlink.c_str());
        if (e.type == AE_IFCHR || e.type == AE_IFBLK) {
          archive_entry_set_rdevmajor(entry, e.major);
          archive_entry_set_rdevminor(entry, e.minor);
        }
        archive_entry_set_size(entry,
                               e.type == AE_IFREG ? static_cast<int64_t>(e.content.size()) : 0);
      }
      ASSERT_EQ(archive_write_header(a, entry), ARCHIVE_OK)
          << e.name << ": " << archive_error_string(a);
      if (e.type == AE_IFREG && e.hardlink.empty() && !e.content.empty()) {
        ASSERT_EQ(archive_write_data(a, e.content.data(), e.content.size()),
                  static_cast<la_ssize_t>(e.content.size()));
      }
      archive_entry_free(entry);
    }
    ASSERT_EQ(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
  }

 private:
  std::vector<TarEntry> entries_;
};

// A temp dir under /tmp, removed with everything in it when the test ends. Callers unmount
// anything mounted inside before it goes.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = "/tmp/berth-snap-test-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace berth::image::testing
