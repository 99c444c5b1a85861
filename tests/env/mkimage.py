#!/usr/bin/env python3
"""Build small container images offline and push them to an OCI registry.

Standard library only. Usable as a library (``import mkimage``) and as a CLI:

  mkimage.py push SPEC.json --registry 127.0.0.1:5000 [--username U --password P]
  mkimage.py layer LAYER.json --out layer.tar.gz
  mkimage.py testenv --registry H [--auth-registry H2 --username U --password P]

A SPEC is a JSON object (or a list of them) describing one image; see
``image_from_spec`` and tests/env/README.md. Everything that goes into a blob is
deterministic (fixed mtimes, empty owner names, sorted entries, gzip mtime 0,
canonical JSON), so digests are stable across runs on the same host.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import io
import json
import re
import subprocess
import sys
import tarfile
import urllib.error
import urllib.parse
import urllib.request

DEFAULT_MTIME = 1577836800  # 2020-01-01T00:00:00Z
DEFAULT_CREATED = "2020-01-01T00:00:00Z"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Media types.
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = {
    "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
    "none": "application/vnd.oci.image.layer.v1.tar",
}
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = {
    "gzip": "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "none": "application/vnd.docker.image.rootfs.diff.tar",
    # Docker schema2 has no zstd layer type; containerd accepts the OCI one.
    "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
}
ACCEPT_ALL = ", ".join([OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST])


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def _mode(value, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, str):
        return int(value, 8)
    return int(value)


def _norm(path: str) -> str:
    """Normalise a member path: no leading '/' or './', no trailing '/'."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if not parts:
        raise ValueError(f"empty path {path!r}")
    return "/".join(parts)


# ---------------------------------------------------------------------------
# Layer entries. Each is a plain dict so specs can be written in JSON.
# ---------------------------------------------------------------------------

def file(path, content: bytes | str = b"", mode=0o644, uid=0, gid=0,
         mtime=DEFAULT_MTIME, xattrs=None):
    if isinstance(content, str):
        content = content.encode()
    return {"type": "file", "path": path, "content": content, "mode": mode,
            "uid": uid, "gid": gid, "mtime": mtime, "xattrs": xattrs}


def directory(path, mode=0o755, uid=0, gid=0, mtime=DEFAULT_MTIME, xattrs=None):
    return {"type": "dir", "path": path, "mode": mode, "uid": uid, "gid": gid,
            "mtime": mtime, "xattrs": xattrs}


def symlink(path, target, uid=0, gid=0, mtime=DEFAULT_MTIME):
    return {"type": "symlink", "path": path, "target": target, "uid": uid,
            "gid": gid, "mtime": mtime}


def hardlink(path, target, uid=0, gid=0, mode=0o644, mtime=DEFAULT_MTIME):
    """A tar hard-link entry; `target` is another member path of this layer."""
    return {"type": "hardlink", "path": path, "target": target, "uid": uid,
            "gid": gid, "mode": mode, "mtime": mtime}


def whiteout(path):
    """Deletes `path` from lower layers (`dir/.wh.name`)."""
    return {"type": "whiteout", "path": path}


def opaque(dirpath):
    """Hides everything below `dirpath` in lower layers (`dir/.wh..wh..opq`)."""
    return {"type": "opaque", "path": dirpath}


def device(path, kind="char", major=1, minor=3, mode=0o666, uid=0, gid=0,
           mtime=DEFAULT_MTIME):
    return {"type": kind, "path": path, "major": major, "minor": minor,
            "mode": mode, "uid": uid, "gid": gid, "mtime": mtime}


def fifo(path, mode=0o644, uid=0, gid=0, mtime=DEFAULT_MTIME):
    return {"type": "fifo", "path": path, "mode": mode, "uid": uid, "gid": gid,
            "mtime": mtime}


def raw(name, kind="file", content: bytes | str = b"", target="", mode=0o644,
        uid=0, gid=0, mtime=DEFAULT_MTIME):
    """An entry whose name (and link target) is written verbatim, unchecked:
    `../escape`, `/abs/path`, `a/../../b`, ... for negative tests."""
    if isinstance(content, str):
        content = content.encode()
    return {"type": "raw", "name": name, "kind": kind, "content": content,
            "target": target, "mode": mode, "uid": uid, "gid": gid,
            "mtime": mtime}


def _entry_from_json(e: dict) -> dict:
    """Convert a JSON spec entry (modes as octal strings, content as text or
    base64, `source` host file) into an entry dict."""
    e = dict(e)
    if "content_b64" in e:
        e["content"] = base64.b64decode(e.pop("content_b64"))
    if "source" in e:
        with open(e.pop("source"), "rb") as f:
            e["content"] = f.read()
    if isinstance(e.get("content"), str):
        e["content"] = e["content"].encode()
    if "mode" in e:
        e["mode"] = _mode(e["mode"], 0o644)
    return e


def _tarinfo(e: dict) -> tuple[tarfile.TarInfo, bytes | None]:
    t = e["type"]
    data = None
    if t == "raw":
        ti = tarfile.TarInfo(e["name"])
        kind = e.get("kind", "file")
        t_kind = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE,
                  "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE,
                  "char": tarfile.CHRTYPE, "block": tarfile.BLKTYPE,
                  "fifo": tarfile.FIFOTYPE}[kind]
        ti.type = t_kind
        ti.linkname = e.get("target", "")
        if kind == "file":
            data = e.get("content", b"")
        ti.mode = _mode(e.get("mode"), 0o644)
    else:
        name = _norm(e["path"])
        if t == "whiteout":
            d, _, b = name.rpartition("/")
            name = (d + "/" if d else "") + ".wh." + b
            t = "file"
            e = {"content": b"", "mode": 0o644}
        elif t == "opaque":
            name = name + "/.wh..wh..opq"
            t = "file"
            e = {"content": b"", "mode": 0o644}
        ti = tarfile.TarInfo(name)
        if t == "file":
            ti.type = tarfile.REGTYPE
            data = e.get("content", b"")
            ti.mode = _mode(e.get("mode"), 0o644)
        elif t == "dir":
            ti.type = tarfile.DIRTYPE
            ti.name = name + "/"
            ti.mode = _mode(e.get("mode"), 0o755)
        elif t == "symlink":
            ti.type = tarfile.SYMTYPE
            ti.linkname = e["target"]
            ti.mode = 0o777
        elif t == "hardlink":
            ti.type = tarfile.LNKTYPE
            ti.linkname = _norm(e["target"])
            ti.mode = _mode(e.get("mode"), 0o644)
        elif t in ("char", "block"):
            ti.type = tarfile.CHRTYPE if t == "char" else tarfile.BLKTYPE
            ti.devmajor = int(e.get("major", 0))
            ti.devminor = int(e.get("minor", 0))
            ti.mode = _mode(e.get("mode"), 0o666)
        elif t == "fifo":
            ti.type = tarfile.FIFOTYPE
            ti.mode = _mode(e.get("mode"), 0o644)
        else:
            raise ValueError(f"unknown entry type {t!r}")
    ti.uid = int(e.get("uid", 0))
    ti.gid = int(e.get("gid", 0))
    ti.uname = ""
    ti.gname = ""
    ti.mtime = int(e.get("mtime", DEFAULT_MTIME))
    if e.get("xattrs"):
        ti.pax_headers = {"SCHILY.xattr." + k: v
                          for k, v in sorted(e["xattrs"].items())}
    if data is not None:
        ti.size = len(data)
    return ti, data


def _order(infos):
    """Sort by member name, but never emit a hard link before its target."""
    infos = sorted(infos, key=lambda p: p[0].name)
    emitted: set[str] = set()
    waiting: dict[str, list] = {}
    out = []

    def emit(item):
        out.append(item)
        name = item[0].name.rstrip("/")
        emitted.add(name)
        for w in waiting.pop(name, []):
            emit(w)

    for item in infos:
        ti = item[0]
        if ti.type == tarfile.LNKTYPE and ti.linkname not in emitted:
            waiting.setdefault(ti.linkname, []).append(item)
        else:
            emit(item)
    for items in waiting.values():  # dangling links: keep them, sorted
        out.extend(items)
    return out


class Layer:
    """One filesystem layer.

    entries:     list of entry dicts (see file(), directory(), ...)
    compression: "gzip" | "zstd" | "none"
    sort:        sort entries by name (hard links kept after their target);
                 False writes them exactly in the given order.
    """

    def __init__(self, entries, compression="gzip", sort=True,
                 tar_format=tarfile.PAX_FORMAT, comment=None):
        if compression not in OCI_LAYER:
            raise ValueError(f"unknown compression {compression!r}")
        self.entries = list(entries)
        self.compression = compression
        self.sort = sort
        self.tar_format = tar_format
        self.comment = comment
        self._tar = None
        self._blob = None

    def with_compression(self, compression) -> "Layer":
        lay = Layer(self.entries, compression, self.sort, self.tar_format,
                    self.comment)
        lay._tar = self._tar
        return lay

    @property
    def tar(self) -> bytes:
        if self._tar is None:
            infos = [_tarinfo(e) for e in self.entries]
            if self.sort:
                infos = _order(infos)
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w", format=self.tar_format,
                              encoding="utf-8") as tf:
                for ti, data in infos:
                    tf.addfile(ti, io.BytesIO(data) if data is not None else None)
            self._tar = buf.getvalue()
        return self._tar

    @property
    def blob(self) -> bytes:
        if self._blob is None:
            if self.compression == "gzip":
                self._blob = gzip.compress(self.tar, compresslevel=6, mtime=0)
            elif self.compression == "zstd":
                self._blob = subprocess.run(
                    ["zstd", "-q", "-c", "-3", "--no-progress"], input=self.tar,
                    stdout=subprocess.PIPE, check=True).stdout
            else:
                self._blob = self.tar
        return self._blob

    @property
    def diff_id(self) -> str:
        return sha256(self.tar)

    @property
    def digest(self) -> str:
        return sha256(self.blob)

    def media_type(self, style="oci") -> str:
        return (DOCKER_LAYER if style == "docker" else OCI_LAYER)[self.compression]


# ---------------------------------------------------------------------------
# Presets
# ---------------------------------------------------------------------------

PASSWD = """root:x:0:0:root:/root:/bin/sh
www-data:x:33:33:www-data:/var/www:/bin/false
berth:x:1002:1002:berth test user:/home/berth:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
"""
GROUP = """root:x:0:
www-data:x:33:
users:x:100:berth
berth:x:1002:
nobody:x:65534:
"""

_busybox_cache: dict[str, list] = {}


def busybox_entries(busybox="/bin/busybox") -> list:
    """A minimal root filesystem: static busybox with every applet as a hard
    link to /bin/busybox, /etc/passwd, /etc/group and the usual dirs."""
    if busybox not in _busybox_cache:
        with open(busybox, "rb") as f:
            binary = f.read()
        applets = subprocess.run([busybox, "--list"], stdout=subprocess.PIPE,
                                 check=True, text=True).stdout.split()
        entries = [
            directory("bin"), directory("dev"), directory("etc"),
            directory("home"), directory("home/berth", uid=1002, gid=1002),
            directory("proc", mode=0o555), directory("root", mode=0o700),
            directory("sys", mode=0o555), directory("tmp", mode=0o1777),
            directory("var"),
            file("etc/passwd", PASSWD), file("etc/group", GROUP),
            file("bin/busybox", binary, mode=0o755),
        ]
        for a in sorted(set(applets)):
            if a != "busybox" and "/" not in a:
                entries.append(hardlink("bin/" + a, "bin/busybox", mode=0o755))
        _busybox_cache[busybox] = entries
    return list(_busybox_cache[busybox])


def busybox_layer(compression="gzip", busybox="/bin/busybox") -> Layer:
    return Layer(busybox_entries(busybox), compression, comment="busybox")


# ---------------------------------------------------------------------------
# Images and indexes
# ---------------------------------------------------------------------------

CONFIG_KEYS = ("User", "ExposedPorts", "Env", "Entrypoint", "Cmd", "Volumes",
               "WorkingDir", "Labels", "StopSignal")


class Image:
    """An image manifest + config.

    config:  dict with any of CONFIG_KEYS (OCI image config `config` object).
    style:   "oci" (default) or "docker" (schema2 media types).
    """

    def __init__(self, layers, config=None, architecture="amd64", os="linux",
                 variant=None, style="oci", created=DEFAULT_CREATED,
                 annotations=None, extra=None):
        if style not in ("oci", "docker"):
            raise ValueError(f"unknown style {style!r}")
        self.layers = list(layers)
        self.config = dict(config or {})
        unknown = set(self.config) - set(CONFIG_KEYS)
        if unknown:
            raise ValueError(f"unknown config keys {sorted(unknown)}")
        self.architecture = architecture
        self.os = os
        self.variant = variant
        self.style = style
        self.created = created
        self.annotations = annotations
        self.extra = extra or {}

    @property
    def config_blob(self) -> bytes:
        cfg = {
            "architecture": self.architecture,
            "os": self.os,
            "created": self.created,
            "config": self.config,
            "rootfs": {"type": "layers",
                       "diff_ids": [l.diff_id for l in self.layers]},
            "history": [{"created": self.created,
                         "created_by": f"berth mkimage.py: {l.comment or 'layer %d' % i}"}
                        for i, l in enumerate(self.layers)],
        }
        if self.variant:
            cfg["variant"] = self.variant
        cfg.update(self.extra)
        return canonical_json(cfg)

    @property
    def config_digest(self) -> str:
        return sha256(self.config_blob)

    @property
    def media_type(self) -> str:
        return DOCKER_MANIFEST if self.style == "docker" else OCI_MANIFEST

    @property
    def manifest(self) -> bytes:
        m = {
            "schemaVersion": 2,
            "mediaType": self.media_type,
            "config": {"mediaType": DOCKER_CONFIG if self.style == "docker" else OCI_CONFIG,
                       "digest": self.config_digest,
                       "size": len(self.config_blob)},
            "layers": [{"mediaType": l.media_type(self.style), "digest": l.digest,
                        "size": len(l.blob)} for l in self.layers],
        }
        if self.annotations:
            m["annotations"] = self.annotations
        return canonical_json(m)

    @property
    def digest(self) -> str:
        return sha256(self.manifest)

    def platform(self) -> dict:
        p = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            p["variant"] = self.variant
        return p

    def blobs(self):
        """(digest, bytes) of every blob, config last."""
        for l in self.layers:
            yield l.digest, l.blob
        yield self.config_digest, self.config_blob


class Index:
    """An OCI image index (style "oci") or Docker manifest list ("docker")."""

    def __init__(self, images, style="oci", annotations=None):
        self.images = list(images)
        self.style = style
        self.annotations = annotations

    @property
    def media_type(self) -> str:
        return DOCKER_LIST if self.style == "docker" else OCI_INDEX

    @property
    def manifest(self) -> bytes:
        m = {
            "schemaVersion": 2,
            "mediaType": self.media_type,
            "manifests": [{"mediaType": i.media_type, "digest": i.digest,
                           "size": len(i.manifest), "platform": i.platform()}
                          for i in self.images],
        }
        if self.annotations:
            m["annotations"] = self.annotations
        return canonical_json(m)

    @property
    def digest(self) -> str:
        return sha256(self.manifest)


def decoy_image(architecture="arm64", variant="v8", style="oci") -> Image:
    """A tiny foreign-platform image that a correct client never pulls."""
    layer = Layer([file("DECOY", f"{architecture} decoy, must not be pulled\n")],
                  comment="decoy")
    return Image([layer], {"Cmd": ["/DECOY"]}, architecture=architecture,
                 variant=variant, style=style)


# ---------------------------------------------------------------------------
# Registry client (distribution v2 API)
# ---------------------------------------------------------------------------

class RegistryError(RuntimeError):
    pass


class Registry:
    def __init__(self, host, username=None, password=None, scheme="http",
                 timeout=60):
        self.base = f"{scheme}://{host}"
        self.host = host
        self.timeout = timeout
        self.auth = None
        if username is not None:
            tok = base64.b64encode(f"{username}:{password or ''}".encode()).decode()
            self.auth = "Basic " + tok
        self.known: dict[str, str] = {}  # blob digest -> a repo holding it

    def request(self, method, url, data=None, headers=None, ok=(200,)):
        if not url.startswith("http"):
            url = self.base + url
        req = urllib.request.Request(url, data=data, method=method)
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        if self.auth:
            req.add_header("Authorization", self.auth)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                status, hdrs, body = r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            status, hdrs, body = e.code, e.headers, e.read()
        if status not in ok:
            raise RegistryError(f"{method} {url}: HTTP {status}: "
                                f"{body[:300].decode(errors='replace')}")
        return status, hdrs, body

    def blob_exists(self, repo, digest) -> bool:
        st, _, _ = self.request("HEAD", f"/v2/{repo}/blobs/{digest}", ok=(200, 404))
        return st == 200

    def push_blob(self, repo, digest, data: bytes) -> str:
        """Upload a blob unless present; returns "exists", "mounted" or "uploaded"."""
        if self.blob_exists(repo, digest):
            self.known.setdefault(digest, repo)
            return "exists"
        url = f"/v2/{repo}/blobs/uploads/"
        src = self.known.get(digest)
        if src and src != repo:
            url += "?" + urllib.parse.urlencode({"mount": digest, "from": src})
        st, hdrs, _ = self.request("POST", url, data=b"",
                                   headers={"Content-Length": "0"}, ok=(201, 202))
        if st == 201:
            return "mounted"
        loc = urllib.parse.urljoin(self.base + "/", hdrs["Location"])
        loc += ("&" if "?" in loc else "?") + urllib.parse.urlencode({"digest": digest})
        self.request("PUT", loc, data=data, ok=(201,),
                     headers={"Content-Type": "application/octet-stream",
                              "Content-Length": str(len(data))})
        self.known.setdefault(digest, repo)
        return "uploaded"

    def push_manifest(self, repo, ref, media_type, data: bytes) -> str:
        _, hdrs, _ = self.request("PUT", f"/v2/{repo}/manifests/{ref}", data=data,
                                  ok=(201,), headers={"Content-Type": media_type})
        want = sha256(data)
        got = hdrs.get("Docker-Content-Digest")
        if got and got != want:
            raise RegistryError(f"registry digest {got} != computed {want}")
        return want

    def push_image(self, repo, image: Image, tags=()) -> str:
        for digest, data in image.blobs():
            self.push_blob(repo, digest, data)
        self.push_manifest(repo, image.digest, image.media_type, image.manifest)
        for t in tags:
            self.push_manifest(repo, t, image.media_type, image.manifest)
        return image.digest

    def push_index(self, repo, index: Index, tags=()) -> str:
        for img in index.images:
            self.push_image(repo, img)
        self.push_manifest(repo, index.digest, index.media_type, index.manifest)
        for t in tags:
            self.push_manifest(repo, t, index.media_type, index.manifest)
        return index.digest

    def get_manifest(self, repo, ref) -> tuple[str, bytes]:
        _, hdrs, body = self.request("GET", f"/v2/{repo}/manifests/{ref}",
                                     headers={"Accept": ACCEPT_ALL})
        return hdrs.get("Content-Type", ""), body


# ---------------------------------------------------------------------------
# JSON specs
# ---------------------------------------------------------------------------

def layer_from_spec(spec: dict) -> Layer:
    """{"preset": "busybox"} or {"entries": [...], "compression": "gzip",
    "sort": true}. Entry objects: {"type": "file"|"dir"|"symlink"|"hardlink"|
    "whiteout"|"opaque"|"char"|"block"|"fifo", "path": ..., ...} or
    {"type": "raw", "name": "../escape", "kind": "file", ...}."""
    comp = spec.get("compression", "gzip")
    preset = spec.get("preset")
    if preset == "busybox":
        return busybox_layer(comp, spec.get("busybox", "/bin/busybox"))
    if preset:
        raise ValueError(f"unknown layer preset {preset!r}")
    return Layer([_entry_from_json(e) for e in spec.get("entries", [])], comp,
                 sort=spec.get("sort", True), comment=spec.get("comment"))


_layer_cache: dict[str, Layer] = {}


def _cached_layer(spec: dict) -> Layer:
    key = json.dumps(spec, sort_keys=True)
    if key not in _layer_cache:
        _layer_cache[key] = layer_from_spec(spec)
    return _layer_cache[key]


def image_from_spec(spec: dict):
    """Image spec:
      {"repo": "berth-test/x", "tags": ["1.0"], "style": "oci"|"docker",
       "config": {"Env": [...], "Cmd": [...], "User": "...", ...},
       "architecture": "amd64", "os": "linux",
       "layers": [layer spec, ...],
       "index": false | true | {"decoys": [["arm64", "v8"], ...]}}
    Returns an Image, or an Index (the image plus decoys) when "index" is set."""
    style = spec.get("style", "oci")
    img = Image([_cached_layer(l) for l in spec.get("layers", [])],
                spec.get("config"), architecture=spec.get("architecture", "amd64"),
                os=spec.get("os", "linux"), variant=spec.get("variant"),
                style=style, annotations=spec.get("annotations"))
    idx = spec.get("index")
    if not idx:
        return img
    decoys = (idx.get("decoys") if isinstance(idx, dict) else None) or [["arm64", "v8"]]
    return Index([decoy_image(a, v, style) for a, v in decoys] + [img], style)


def push_spec(reg: Registry, spec: dict) -> dict:
    obj = image_from_spec(spec)
    repo, tags = spec["repo"], spec.get("tags", [])
    if isinstance(obj, Index):
        digest = reg.push_index(repo, obj, tags)
        image = obj.images[-1]
    else:
        digest = reg.push_image(repo, obj, tags)
        image = obj
    ref = f"{reg.host}/{repo}:{tags[0]}" if tags else f"{reg.host}/{repo}@{digest}"
    return {"ref": ref, "digest": digest, "manifest_digest": image.digest,
            "config_digest": image.config_digest,
            "layer_digests": [l.digest for l in image.layers],
            "media_type": obj.media_type, "tags": list(tags)}


# ---------------------------------------------------------------------------
# The standard test-environment images (tests/env/testenv.sh up)
# ---------------------------------------------------------------------------

BUSYBOX = {"preset": "busybox"}
BUSYBOX_CONFIG = {"Env": [f"PATH={DEFAULT_PATH}"], "Cmd": ["sh"]}


def _user(user):
    return dict(BUSYBOX_CONFIG, User=user)


# "env" names the keys: BERTH_TEST_IMAGE_<env> (ref of the first tag),
# BERTH_TEST_IMAGE_<env>_DIGEST (manifest or index digest),
# BERTH_TEST_IMAGE_<env>_CONFIG_DIGEST (image id of the linux/amd64 image) and,
# for indexes, BERTH_TEST_IMAGE_<env>_MANIFEST_DIGEST (linux/amd64 manifest).
STANDARD_IMAGES = [
    {"env": "BUSYBOX", "repo": "berth-test/busybox", "tags": ["1.0", "latest"],
     "layers": [BUSYBOX], "config": BUSYBOX_CONFIG, "auth": True},
    {"env": "USER_UID", "repo": "berth-test/user", "tags": ["uid"],
     "layers": [BUSYBOX], "config": _user("1002")},
    {"env": "USER_UIDGROUP", "repo": "berth-test/user", "tags": ["uidgroup"],
     "layers": [BUSYBOX], "config": _user("1003:users")},
    {"env": "USER_NAME", "repo": "berth-test/user", "tags": ["name"],
     "layers": [BUSYBOX], "config": _user("www-data")},
    {"env": "USER_NAMEGROUP", "repo": "berth-test/user", "tags": ["namegroup"],
     "layers": [BUSYBOX], "config": _user("www-data:www-data")},
    # Format variants of the same busybox rootfs.
    {"env": "BUSYBOX_INDEX", "repo": "berth-test/busybox", "tags": ["index"],
     "layers": [BUSYBOX], "config": BUSYBOX_CONFIG, "index": True},
    {"env": "BUSYBOX_DOCKER", "repo": "berth-test/busybox", "tags": ["docker"],
     "layers": [BUSYBOX], "config": BUSYBOX_CONFIG, "style": "docker"},
    {"env": "BUSYBOX_DOCKER_LIST", "repo": "berth-test/busybox",
     "tags": ["docker-list"], "layers": [BUSYBOX], "config": BUSYBOX_CONFIG,
     "style": "docker", "index": True},
    {"env": "BUSYBOX_ZSTD", "repo": "berth-test/busybox", "tags": ["zstd"],
     "layers": [dict(BUSYBOX, compression="zstd")], "config": BUSYBOX_CONFIG},
]


def env_keys(prefix: str, res: dict) -> dict:
    keys = {prefix: res["ref"], prefix + "_DIGEST": res["digest"],
            prefix + "_CONFIG_DIGEST": res["config_digest"]}
    repo_ref = res["ref"].rpartition(":")[0]
    for tag in res["tags"][1:]:  # extra tags: <prefix>_<TAG>, e.g. ..._LATEST
        keys[prefix + "_" + re.sub(r"[^A-Z0-9]", "_", tag.upper())] = f"{repo_ref}:{tag}"
    if res["manifest_digest"] != res["digest"]:
        keys[prefix + "_MANIFEST_DIGEST"] = res["manifest_digest"]
    return keys


def push_standard(registry, auth_registry=None, username=None, password=None,
                  log=None) -> dict:
    env = {}
    reg = Registry(registry)
    areg = Registry(auth_registry, username, password) if auth_registry else None
    for spec in STANDARD_IMAGES:
        res = push_spec(reg, spec)
        env.update(env_keys("BERTH_TEST_IMAGE_" + spec["env"], res))
        if log:
            log(f"pushed {res['ref']} {res['digest']}")
        if areg and spec.get("auth"):
            ares = push_spec(areg, spec)
            if ares["digest"] != res["digest"]:
                raise RegistryError("auth registry digest mismatch")
            env["BERTH_TEST_AUTH_IMAGE_" + spec["env"]] = ares["ref"]
            if log:
                log(f"pushed {ares['ref']} (auth registry)")
    return env


# ---------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------

def _load_json(path):
    if path == "-":
        return json.load(sys.stdin)
    with open(path) as f:
        return json.load(f)


def _log(msg):
    print(f"mkimage: {msg}", file=sys.stderr)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("push", help="build image(s) from a JSON spec and push them")
    p.add_argument("spec", help="JSON file (object or list of objects), '-' = stdin")
    p.add_argument("--registry", required=True, help="host:port")
    p.add_argument("--username")
    p.add_argument("--password")

    p = sub.add_parser("layer", help="write one layer blob from a JSON layer spec")
    p.add_argument("spec", help="JSON layer spec, '-' = stdin")
    p.add_argument("--out", required=True)
    p.add_argument("--uncompressed", action="store_true",
                   help="write the plain tar instead of the compressed blob")

    p = sub.add_parser("testenv", help="push the standard test images")
    p.add_argument("--registry", required=True)
    p.add_argument("--auth-registry")
    p.add_argument("--username")
    p.add_argument("--password")

    a = ap.parse_args(argv)
    try:
        if a.cmd == "push":
            specs = _load_json(a.spec)
            if isinstance(specs, dict):
                specs = [specs]
            reg = Registry(a.registry, a.username, a.password)
            out = [push_spec(reg, s) for s in specs]
            json.dump(out if len(out) > 1 else out[0], sys.stdout, indent=2)
            print()
        elif a.cmd == "layer":
            lay = layer_from_spec(_load_json(a.spec))
            with open(a.out, "wb") as f:
                f.write(lay.tar if a.uncompressed else lay.blob)
            json.dump({"digest": lay.digest, "diff_id": lay.diff_id,
                       "media_type": lay.media_type(),
                       "size": len(lay.blob)}, sys.stdout, indent=2)
            print()
        elif a.cmd == "testenv":
            env = push_standard(a.registry, a.auth_registry, a.username,
                                a.password, log=_log)
            json.dump(env, sys.stdout, indent=2, sort_keys=True)
            print()
    except (RegistryError, OSError, ValueError, KeyError,
            subprocess.CalledProcessError) as e:
        print(f"mkimage: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
