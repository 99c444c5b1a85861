#!/usr/bin/env python3
"""A hostile OCI registry on loopback, for berth's security tests.

  hostile_registry.py serve --port-file F --info-file I [--host 127.0.0.1]
                            [--cache-dir D] [--trickle-bps 5] [--fast-bps 67108864]
                            [--endless-cap 1073741824]

Serves one repository per attack scenario, `hostile/<scenario>:1`, over plain HTTP. Every
blob and manifest a descriptor names has the digest it claims, so that the only thing a client
can catch is the scenario's own attack (a lying diff_id, a missing size, a body that never
ends, ...). The info file (written before the port file, which appears only once the server
answers) lists per scenario the reference to pull and the digests a test needs; see
tests/env/README.md. `GET /_stats` returns the requests and body bytes sent per path.

Standard library only, plus tests/env/mkimage.py for the layers and images.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import http.server
import json
import os
import random
import re
import signal
import sys
import tarfile
import threading
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mkimage  # noqa: E402  (lives beside this file)

TAG = "1"
REPO_PREFIX = "hostile/"
DEEP = 100_000                 # nesting depth of the deep-* JSON documents
BIG_CONFIG = 64 << 20          # bytes of the big-config config blob
BOMB_FILE = 1 << 30            # zeros in the gzip-bomb layer's single file
BOMB_ENTRIES = 200_000         # empty files in the entries-bomb layer
BOMB_DIRS = 8
LIE_SIZE = 1000                # size-lies: what the descriptor claims
DEFAULT_CAP = 1 << 30          # an "endless" response stops after this many bytes (0: never)
DEFAULT_FAST = 64 << 20        # bytes/s of a "fast" endless response: fast, yet a client that
                               # never stops takes 16 s to reach the cap and leaves CPU to others
HELD_LAYERS = 2                # layers of the held-layers image
HELD_BYTES = 1 << 20           # random bytes in each held layer's second file
HOLD_MAX_S = 60                # a held blob goes on after this long even if not released
CACHE_VERSION = "1"            # bump when a cached blob's recipe changes

SCENARIOS = ("honest", "trojan", "trojan-second-layer", "deep-config", "deep-manifest",
             "deep-index", "big-config", "trickle", "trickle-manifest", "endless-error",
             "endless-error-slow", "no-size", "size-minus-one", "size-lies", "gzip-bomb",
             "entries-bomb", "held-layers")

# The honest second layer of trojan-second-layer; a test pushes it with mkimage.py.
SECOND_LAYER_SPEC = {"entries": [{"type": "file", "path": "/etc/hostile-second",
                                  "content": "honest second layer\n"}]}


# ---------------------------------------------------------------------------
# How one object is served. serve() writes the whole response; `head` omits the body.
# ---------------------------------------------------------------------------

class Static:
    """A body with a correct Content-Length, honouring a single `Range`; `rate` (bytes/s)
    trickles it."""

    def __init__(self, data: bytes, content_type: str, rate: float | None = None):
        self.data = data
        self.content_type = content_type
        self.digest = mkimage.sha256(data)
        self.rate = rate

    def serve(self, h: "Handler", head: bool):
        total = len(self.data)
        start, end = 0, total
        status = 200
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", h.headers.get("Range", "").strip())
        if m:
            first = int(m.group(1))
            last = int(m.group(2)) if m.group(2) else total - 1
            if first >= total or last < first:
                h.send_response(416)
                h.send_header("Content-Range", f"bytes */{total}")
                h.send_header("Content-Length", "0")
                h.end_headers()
                return
            start, end, status = first, min(last + 1, total), 206
        h.send_response(status)
        h.send_header("Content-Type", self.content_type)
        h.send_header("Content-Length", str(end - start))
        h.send_header("Docker-Content-Digest", self.digest)
        h.send_header("Accept-Ranges", "bytes")
        if status == 206:
            h.send_header("Content-Range", f"bytes {start}-{end - 1}/{total}")
        h.end_headers()
        if head:
            return
        if self.rate:
            h.trickle(self.data[start:end], self.rate)
        else:
            h.send_body(self.data[start:end])


class Held:
    """A blob sent up to half its length, then held until the file `release` exists (at most
    HOLD_MAX_S), then the rest; Content-Length correct, no `Range`. A client that unpacks what
    arrives shows it while the rest is held."""

    def __init__(self, data: bytes, content_type: str, release: str):
        self.data = data
        self.content_type = content_type
        self.release = release

    def serve(self, h: "Handler", head: bool):
        h.send_response(200)
        h.send_header("Content-Type", self.content_type)
        h.send_header("Content-Length", str(len(self.data)))
        h.send_header("Docker-Content-Digest", mkimage.sha256(self.data))
        h.end_headers()
        if head:
            return
        half = len(self.data) // 2
        h.send_body(self.data[:half])
        deadline = time.monotonic() + HOLD_MAX_S
        while not os.path.exists(self.release) and time.monotonic() < deadline:
            time.sleep(0.01)
        h.send_body(self.data[half:])


class EndlessError:
    """500 with a registry error body whose message never ends (chunked), fast or trickled."""

    PREFIX = b'{"errors":[{"code":"UNKNOWN","message":"'

    def __init__(self, rate: float | None, cap: int, fast: int):
        self.rate = rate
        self.cap = cap
        self.fast = fast

    def serve(self, h: "Handler", head: bool):
        h.send_response(500)
        h.send_header("Content-Type", "application/json")
        h.send_header("Transfer-Encoding", "chunked")
        h.send_header("Connection", "close")
        h.end_headers()
        h.close_connection = True
        if head:
            return
        if self.rate:
            h.trickle_forever(self.PREFIX, b"x", self.rate, self.cap, chunked=True)
        else:
            h.stream_forever(self.PREFIX, b"x" * 65536, self.cap, self.fast, chunked=True)


class Unsized:
    """200 without Content-Length, ended by closing the connection, never ending: a gzip of a
    tar whose one file is 1 TiB of stored (incompressible) random data, so that every stage
    of a streaming client (download, gunzip, untar) sees valid input forever, while the
    bytes it writes stay close to the bytes it receives."""

    def __init__(self, cap: int, fast: int):
        self.cap = cap
        self.fast = fast
        ti = tarfile.TarInfo("hostile/endless")
        ti.size = 1 << 40  # > 8 GiB: tarfile adds a PAX size record
        ti.mtime = mkimage.DEFAULT_MTIME
        co = zlib.compressobj(0, zlib.DEFLATED, -15)
        gzip_header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
        self.head = (gzip_header + co.compress(ti.tobuf(tarfile.PAX_FORMAT))
                     + co.flush(zlib.Z_FULL_FLUSH))
        # After a full flush deflate keeps no history, so one segment can be repeated.
        data = random.Random("endless").randbytes(65536)
        self.segment = co.compress(data) + co.flush(zlib.Z_FULL_FLUSH)

    def serve(self, h: "Handler", head: bool):
        h.send_response(200)
        h.send_header("Content-Type", "application/octet-stream")
        h.send_header("Connection", "close")
        h.end_headers()
        h.close_connection = True
        if not head:
            h.stream_forever(self.head, self.segment, self.cap, self.fast, chunked=False)


# ---------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------

def deep_json(depth: int = DEEP) -> bytes:
    return b"[" * depth + b"]" * depth


def with_raw_key(obj: dict, key: str, raw: bytes) -> bytes:
    """canonical JSON of `obj` with `"key": <raw JSON>` added at the end (for values json
    cannot write: 100,000 levels deep, 64 MiB)."""
    body = mkimage.canonical_json(obj)
    sep = b"," if obj else b""
    return body[:-1] + sep + json.dumps(key).encode() + b":" + raw + b"}"


def descriptor(media_type: str, digest: str, size) -> dict:
    d = {"mediaType": media_type, "digest": digest}
    if size is not None:
        d["size"] = size
    return d


def manifest_json(config: Static, layers: list[dict], extra_raw: bytes | None = None) -> bytes:
    m = {"schemaVersion": 2, "mediaType": mkimage.OCI_MANIFEST,
         "config": descriptor(mkimage.OCI_CONFIG, config.digest, len(config.data)),
         "layers": layers}
    if extra_raw is None:
        return mkimage.canonical_json(m)
    return with_raw_key(m, "annotations", b'{"berth.hostile.deep":' + extra_raw + b"}")


def layer_desc(layer: mkimage.Layer, size="honest") -> dict:
    return descriptor(layer.media_type(), layer.digest,
                      len(layer.blob) if size == "honest" else size)


def config_json(diff_ids: list[str], scenario: str | None, config=None) -> dict:
    """An image config like mkimage's; `scenario` adds a label so its image ID is unique."""
    cfg = dict(config if config is not None else mkimage.BUSYBOX_CONFIG)
    if scenario:
        cfg["Labels"] = {"berth.hostile": scenario}
    return {"architecture": "amd64", "os": "linux", "created": mkimage.DEFAULT_CREATED,
            "config": cfg, "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created": mkimage.DEFAULT_CREATED,
                         "created_by": f"berth hostile_registry.py: layer {i}"}
                        for i in range(len(diff_ids))]}


def marker_layer(scenario: str, random_bytes: int = 0) -> mkimage.Layer:
    """A small layer unique to `scenario` (no other repository shares its digest)."""
    content = f"berth hostile registry: {scenario}\n".encode()
    if random_bytes:
        content += random.Random(scenario).randbytes(random_bytes)
    return mkimage.Layer([mkimage.file(f"hostile/{scenario}", content)], comment=scenario)


def ustar_header_fn(typeflag: bytes, mode: int, size: int = 0):
    """A fast ustar header writer for names under 100 bytes (only the name varies)."""
    mid = (b"%07o\0" % mode + b"%07o\0" % 0 + b"%07o\0" % 0 + b"%011o\0" % size
           + b"%011o\0" % mkimage.DEFAULT_MTIME)
    tail = typeflag + bytes(100) + b"ustar\x0000" + bytes(512 - 265)
    base = sum(mid) + sum(tail) + 8 * ord(" ")

    def header(name: bytes) -> bytes:
        return name.ljust(100, b"\0") + mid + b"%06o\0 " % (base + sum(name)) + tail
    return header


def tar_end(length: int) -> bytes:
    """The two zero blocks ending a tar, padded to tarfile's 10 KiB records."""
    end = length + 1024
    return bytes(1024 + (-end) % tarfile.RECORDSIZE)


class Cache:
    """Built bomb blobs kept across runs in --cache-dir (atomic writes: parallel tests share
    it). Each entry is NAME.blob plus NAME.json with its digest and diff_id."""

    def __init__(self, directory: str | None):
        self.dir = directory
        if directory:
            os.makedirs(directory, exist_ok=True)

    def get(self, name: str, build) -> tuple[bytes, dict]:
        key = f"{name}-v{CACHE_VERSION}-zlib{zlib.ZLIB_RUNTIME_VERSION}"
        if self.dir:
            try:
                with open(os.path.join(self.dir, key + ".json")) as f:
                    meta = json.load(f)
                with open(os.path.join(self.dir, key + ".blob"), "rb") as f:
                    blob = f.read()
                if mkimage.sha256(blob) == meta["digest"]:
                    return blob, meta
            except (OSError, ValueError, KeyError):
                pass
        blob, meta = build()
        meta["digest"] = mkimage.sha256(blob)
        if self.dir:
            for ext, data in ((".blob", blob), (".json", json.dumps(meta).encode())):
                tmp = os.path.join(self.dir, f".{key}{ext}.{os.getpid()}")
                with open(tmp, "wb") as f:
                    f.write(data)
                os.replace(tmp, os.path.join(self.dir, key + ext))
        return blob, meta


def build_gzip_bomb() -> tuple[bytes, dict]:
    """gzip(tar with one file of 1 GiB of zeros), about 1 MB, built in about a second: a
    1 MiB chunk of zeros compressed after a full flush gives the same bytes every time, so it
    is compressed once and repeated."""
    ti = tarfile.TarInfo("zeros")
    ti.size = BOMB_FILE
    ti.mtime = mkimage.DEFAULT_MTIME
    header = ti.tobuf(tarfile.USTAR_FORMAT)
    tail = tar_end(len(header) + BOMB_FILE)
    chunk = bytes(1 << 20)
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    parts = [b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff",
             co.compress(header) + co.flush(zlib.Z_FULL_FLUSH)]
    seg = co.compress(chunk) + co.flush(zlib.Z_FULL_FLUSH)
    again = co.compress(chunk) + co.flush(zlib.Z_FULL_FLUSH)
    if seg != again:
        raise RuntimeError("zlib does not repeat full-flushed segments")
    parts += [seg] * (BOMB_FILE // len(chunk))
    parts.append(co.compress(tail) + co.flush(zlib.Z_FINISH))
    sha = hashlib.sha256(header)
    crc = zlib.crc32(header)
    for _ in range(BOMB_FILE // len(chunk)):
        sha.update(chunk)
        crc = zlib.crc32(chunk, crc)
    sha.update(tail)
    crc = zlib.crc32(tail, crc)
    total = len(header) + BOMB_FILE + len(tail)
    parts.append(crc.to_bytes(4, "little") + (total & 0xFFFFFFFF).to_bytes(4, "little"))
    return b"".join(parts), {"diff_id": "sha256:" + sha.hexdigest(), "uncompressed_size": total}


def build_entries_bomb() -> tuple[bytes, dict]:
    """gzip(tar of BOMB_ENTRIES empty files spread over BOMB_DIRS directories)."""
    dir_header = ustar_header_fn(tarfile.DIRTYPE, 0o755)
    file_header = ustar_header_fn(tarfile.REGTYPE, 0o644)
    per_dir = BOMB_ENTRIES // BOMB_DIRS
    parts = []
    for d in range(BOMB_DIRS):
        parts.append(dir_header(b"d%d/" % d))
        parts += [file_header(b"d%d/f%06d" % (d, i)) for i in range(per_dir)]
    length = 512 * len(parts)
    parts.append(tar_end(length))
    tar = b"".join(parts)
    return gzip.compress(tar, compresslevel=6, mtime=0), {
        "diff_id": mkimage.sha256(tar), "uncompressed_size": len(tar),
        "files": per_dir * BOMB_DIRS, "dirs": BOMB_DIRS}


# ---------------------------------------------------------------------------
# The scenarios
# ---------------------------------------------------------------------------

class Repo:
    def __init__(self):
        self.manifests: dict[str, object] = {}  # tag or digest -> servable
        self.blobs: dict[str, object] = {}      # digest -> servable


class Builder:
    """Builds every scenario's repository and its entry of the info file."""

    def __init__(self, cache: Cache, rate: float, cap: int, fast: int, hold_dir: str):
        self.cache = cache
        self.hold_dir = hold_dir
        self.rate = rate
        self.cap = cap
        self.fast = fast
        self.repos: dict[str, Repo] = {}
        self.info: dict[str, dict] = {}
        self.bb = mkimage.busybox_layer()

    def static_layer(self, layer: mkimage.Layer, rate=None) -> tuple[str, Static]:
        return layer.digest, Static(layer.blob, layer.media_type(), rate)

    def config(self, scenario: str, diff_ids: list[str]) -> Static:
        return Static(mkimage.canonical_json(config_json(diff_ids, scenario)), mkimage.OCI_CONFIG)

    def add(self, scenario: str, config: Static, diff_ids: list[str], layers: list[dict],
            blobs: dict, *, manifest: Static | None = None, attack: str, **extra):
        """Registers an image: `layers` are the descriptors, `blobs` what is served."""
        if manifest is None:
            manifest = Static(manifest_json(config, layers), mkimage.OCI_MANIFEST)
        repo = self.repos.setdefault(REPO_PREFIX + scenario, Repo())
        repo.manifests[TAG] = repo.manifests[manifest.digest] = manifest
        repo.blobs[config.digest] = config
        repo.blobs.update(blobs)
        self.info[scenario] = dict({
            "repo": REPO_PREFIX + scenario, "tag": TAG, "digest": manifest.digest,
            "media_type": manifest.content_type, "manifest_size": len(manifest.data),
            "config_digest": config.digest, "config_size": len(config.data),
            "layer_digests": [l["digest"] for l in layers],
            "diff_ids": diff_ids, "attack": attack}, **extra)

    def simple(self, scenario: str, layer: mkimage.Layer, served, *, size="honest",
               attack: str, **extra):
        """One layer whose descriptor has `size` and whose blob is served by `served`."""
        self.add(scenario, self.config(scenario, [layer.diff_id]), [layer.diff_id],
                 [layer_desc(layer, size)],
                 {layer.digest: served}, attack=attack, **extra)

    def build(self):
        bb = self.bb
        self.simple("honest", bb, self.static_layer(bb)[1],
                    attack="none: a correct busybox image, served normally")

        # The standard busybox image's config (same image ID), over a layer with one more file.
        std = mkimage.Image([bb], mkimage.BUSYBOX_CONFIG)
        trojan = mkimage.Layer(mkimage.busybox_entries() + [mkimage.file("trojan", "trojan\n")],
                               comment="trojan")
        self.add("trojan", Static(std.config_blob, mkimage.OCI_CONFIG), [bb.diff_id],
                 [layer_desc(trojan)],
                 dict([self.static_layer(trojan)]),
                 attack="layer content differs from the config's diff_id (that of the standard "
                        "busybox layer); the config is the standard busybox image's",
                 claimed_diff_id=bb.diff_id, real_diff_id=trojan.diff_id,
                 layer_digest=trojan.digest, standard_config=True)

        second = mkimage.layer_from_spec(SECOND_LAYER_SPEC)
        honest2 = mkimage.Image([bb, second], mkimage.BUSYBOX_CONFIG)
        evil = mkimage.Layer([mkimage.file("etc/hostile-second", "evil second layer\n"),
                              mkimage.file("trojan", "trojan\n")], comment="evil second")
        self.add("trojan-second-layer", Static(honest2.config_blob, mkimage.OCI_CONFIG),
                 [bb.diff_id, second.diff_id], [layer_desc(bb), layer_desc(evil)],
                 dict([self.static_layer(bb), self.static_layer(evil)]),
                 attack="second layer content differs from its diff_id (the first is honest); "
                        "the config is that of honest_spec",
                 claimed_diff_id=second.diff_id, real_diff_id=evil.diff_id,
                 honest_layer_digest=second.digest, layer_digest=evil.digest,
                 honest_layer_spec=SECOND_LAYER_SPEC,
                 honest_spec={"repo": "berth-test/hostile-second", "tags": ["1"],
                              "layers": [mkimage.BUSYBOX, SECOND_LAYER_SPEC],
                              "config": mkimage.BUSYBOX_CONFIG})

        bb_blob = dict([self.static_layer(bb)])
        cfg = with_raw_key(config_json([bb.diff_id], "deep-config"), "berth.hostile.deep",
                           deep_json())
        self.add("deep-config", Static(cfg, mkimage.OCI_CONFIG), [bb.diff_id], [layer_desc(bb)],
                 bb_blob, attack=f"config JSON has arrays nested {DEEP} deep", depth=DEEP)

        config = self.config("deep-manifest", [bb.diff_id])
        self.add("deep-manifest", config, [bb.diff_id], [layer_desc(bb)], bb_blob,
                 manifest=Static(manifest_json(config, [layer_desc(bb)], deep_json()),
                                 mkimage.OCI_MANIFEST),
                 attack=f"manifest JSON has arrays nested {DEEP} deep in an annotation",
                 depth=DEEP)

        self.build_deep_index()

        empty = config_json([bb.diff_id], "big-config")
        pad = BIG_CONFIG - len(with_raw_key(empty, "berth.hostile.padding", b'""'))
        cfg = with_raw_key(empty, "berth.hostile.padding", b'"' + b"a" * pad + b'"')
        self.add("big-config", Static(cfg, mkimage.OCI_CONFIG), [bb.diff_id], [layer_desc(bb)],
                 bb_blob, attack=f"config blob of {BIG_CONFIG} bytes (valid JSON)")

        layer = marker_layer("trickle", 8192)
        self.simple("trickle", layer, self.static_layer(layer, self.rate)[1],
                    attack=f"layer blob sent at {self.rate:g} bytes/s (Content-Length correct)",
                    layer_size=len(layer.blob))

        config = self.config("trickle-manifest", [bb.diff_id])
        body = manifest_json(config, [layer_desc(bb)])
        body = with_raw_key(json.loads(body), "annotations",
                            json.dumps({"berth.hostile.padding": "a" * 16384}).encode())
        self.add("trickle-manifest", config, [bb.diff_id], [layer_desc(bb)], bb_blob,
                 manifest=Static(body, mkimage.OCI_MANIFEST, self.rate),
                 attack=f"manifest sent at {self.rate:g} bytes/s (Content-Length correct)")

        for name, rate, how in (("endless-error", None, f"fast ({self.fast} bytes/s)"),
                                ("endless-error-slow", self.rate, f"at {self.rate:g} bytes/s")):
            self.simple(name, marker_layer(name), EndlessError(rate, self.cap, self.fast),
                        attack=f"layer blob answers 500 with a chunked body that never ends, "
                               f"sent {how}")
        for name, size, says in (("no-size", None, "has no size"),
                                 ("size-minus-one", -1, "says size -1")):
            self.simple(name, marker_layer(name), Unsized(self.cap, self.fast), size=size,
                        attack=f"layer descriptor {says}; the blob has no Content-Length and "
                               "never ends (a valid gzip tar stream)")
        layer = marker_layer("size-lies", 1 << 20)
        self.simple("size-lies", layer, self.static_layer(layer)[1], size=LIE_SIZE,
                    attack=f"layer descriptor says size {LIE_SIZE}; the blob (digest correct, "
                           "Content-Length true) is far bigger",
                    claimed_size=LIE_SIZE, actual_size=len(layer.blob))

        layers = [mkimage.Layer([mkimage.file(f"held/first-{i}", f"layer {i}\n"),
                                 mkimage.file(f"held/rest-{i}",
                                              random.Random(f"held {i}").randbytes(HELD_BYTES))],
                                comment=f"held {i}") for i in range(HELD_LAYERS)]
        release = os.path.join(self.hold_dir, "release-held-layers")
        self.add("held-layers", self.config("held-layers", [l.diff_id for l in layers]),
                 [l.diff_id for l in layers], [layer_desc(l) for l in layers],
                 {l.digest: Held(l.blob, l.media_type(), release) for l in layers},
                 attack=f"none: {HELD_LAYERS} layers (held/first-N, then {HELD_BYTES} random "
                        "bytes in held/rest-N), each blob sent half-way, then held until the "
                        "file `release` exists",
                 release=release)

        for name, build, what in (
                ("gzip-bomb", build_gzip_bomb, f"one file of {BOMB_FILE} zero bytes"),
                ("entries-bomb", build_entries_bomb, f"{BOMB_ENTRIES} empty files")):
            blob, meta = self.cache.get(name, build)
            desc = descriptor(mkimage.OCI_LAYER["gzip"], meta["digest"], len(blob))
            self.add(name, self.config(name, [meta["diff_id"]]), [meta["diff_id"]], [desc],
                     {meta["digest"]: Static(blob, mkimage.OCI_LAYER["gzip"])},
                     attack=f"layer is a {len(blob)}-byte gzip of a tar of {what}; diff_id "
                            "correct", layer_size=len(blob),
                     **{k: v for k, v in meta.items() if k not in ("digest", "diff_id")})
        return self

    def build_deep_index(self):
        bb = self.bb
        config = self.config("deep-index", [bb.diff_id])
        child = Static(manifest_json(config, [layer_desc(bb)]), mkimage.OCI_MANIFEST)
        index = {"schemaVersion": 2, "mediaType": mkimage.OCI_INDEX,
                 "manifests": [{"mediaType": mkimage.OCI_MANIFEST, "digest": child.digest,
                                "size": len(child.data),
                                "platform": {"architecture": "amd64", "os": "linux"}}]}
        body = with_raw_key(index, "annotations",
                            b'{"berth.hostile.deep":' + deep_json() + b"}")
        top = Static(body, mkimage.OCI_INDEX)
        self.add("deep-index", config, [bb.diff_id], [layer_desc(bb)],
                 dict([self.static_layer(bb)]),
                 manifest=top, attack=f"index JSON has arrays nested {DEEP} deep in an "
                                      "annotation; its one manifest is honest",
                 manifest_digest=child.digest, depth=DEEP)
        self.repos[REPO_PREFIX + "deep-index"].manifests[child.digest] = child


# ---------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------

class Stats:
    """Requests and body bytes sent, per path (query string dropped). Any thread."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests: dict[str, int] = {}
        self.methods: dict[str, int] = {}
        self.bytes: dict[str, int] = {}

    def request(self, method: str, path: str):
        with self.lock:
            self.requests[path] = self.requests.get(path, 0) + 1
            key = f"{method} {path}"
            self.methods[key] = self.methods.get(key, 0) + 1

    def sent(self, path: str, n: int):
        with self.lock:
            self.bytes[path] = self.bytes.get(path, 0) + n

    def snapshot(self) -> dict:
        with self.lock:
            return {"requests": dict(self.requests), "bytes_sent": dict(self.bytes),
                    "methods": dict(self.methods)}


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def __init__(self, address, repos: dict[str, Repo]):
        super().__init__(address, Handler)
        self.repos = repos
        self.stats = Stats()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "berth-hostile-registry/1"
    timeout = 120  # a client that neither reads nor closes frees its thread eventually
    server: Server

    def do_GET(self):
        self.dispatch(head=False)

    def do_HEAD(self):
        self.dispatch(head=True)

    def refuse(self):
        self.server.stats.request(self.command, self.path.split("?", 1)[0])
        self.close_connection = True  # the request body, if any, is not read
        self.error(405, "UNSUPPORTED", f"{self.command} is not supported: read-only registry")

    do_POST = do_PUT = do_PATCH = do_DELETE = refuse

    def end_headers(self):
        self.send_header("Docker-Distribution-API-Version", "registry/2.0")
        super().end_headers()

    def log_message(self, fmt, *args):
        sys.stderr.write(f"hostile_registry: {self.address_string()} {fmt % args}\n")

    def dispatch(self, head: bool):
        self.stat_path = path = self.path.split("?", 1)[0]
        if path == "/_stats":
            return self.json(200, self.server.stats.snapshot(), head)
        self.server.stats.request(self.command, path)
        try:
            self.route(path, head)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True  # the client went away: the expected end of a stream

    def route(self, path: str, head: bool):
        if path in ("/v2", "/v2/"):
            return self.json(200, {}, head)
        m = re.fullmatch(r"/v2/(.+)/(manifests|blobs)/([^/]+)", path)
        if not m:
            return self.error(404, "NOT_FOUND", f"no route for {path}", head)
        repo = self.server.repos.get(m.group(1))
        if repo is None:
            return self.error(404, "NAME_UNKNOWN", f"repository {m.group(1)} not known", head)
        if m.group(2) == "manifests":
            obj, code = repo.manifests.get(m.group(3)), "MANIFEST_UNKNOWN"
        else:
            obj, code = repo.blobs.get(m.group(3)), "BLOB_UNKNOWN"
        if obj is None:
            return self.error(404, code, f"{m.group(3)} not known in {m.group(1)}", head)
        obj.serve(self, head)

    def json(self, status: int, obj, head: bool = False):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.send_body(body)

    def error(self, status: int, code: str, message: str, head: bool = False):
        self.json(status, {"errors": [{"code": code, "message": message}]}, head)

    # Body writers for the servables; each counts what it sent.
    def send_body(self, data: bytes, chunked: bool = False):
        for i in range(0, len(data), 65536):
            piece = data[i:i + 65536]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            self.server.stats.sent(self.stat_path, len(piece))

    def trickle(self, data: bytes, rate: float, chunked: bool = False):
        step = max(1, int(rate / 5))  # five writes a second
        for i in range(0, len(data), step):
            if i:
                time.sleep(step / rate)
            self.send_body(data[i:i + step], chunked)

    def stream_forever(self, first: bytes, repeat: bytes, cap: int, rate: int, chunked: bool):
        """`first`, then `repeat` at `rate` bytes/s until the client goes away or `cap` bytes
        are sent (then the connection is closed mid-body: the response stays incomplete)."""
        start = time.monotonic()
        self.send_body(first, chunked)
        sent = len(first)
        while not cap or sent < cap:
            ahead = sent / rate - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(ahead)
            self.send_body(repeat, chunked)
            sent += len(repeat)

    def trickle_forever(self, first: bytes, unit: bytes, rate: float, cap: int, chunked: bool):
        self.trickle(first, rate, chunked)
        step = max(1, int(rate / 5))
        sent = len(first)
        while not cap or sent < cap:
            time.sleep(step / rate)
            self.send_body(unit * step, chunked)
            sent += step


# ---------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------

def write_atomic(path: str, text: str):
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def serve(a) -> int:
    start = time.monotonic()
    hold_dir = os.path.dirname(os.path.abspath(a.info_file))
    b = Builder(Cache(a.cache_dir), a.trickle_bps, a.endless_cap, a.fast_bps, hold_dir).build()
    server = Server((a.host, 0), b.repos)
    host = f"{a.host}:{server.server_address[1]}"
    for s in b.info.values():
        s["ref"] = f"{host}/{s['repo']}:{TAG}"
        s["ref_by_digest"] = f"{host}/{s['repo']}@{s['digest']}"
    info = {"host": host, "pid": os.getpid(), "trickle_bytes_per_second": a.trickle_bps,
            "endless_cap_bytes": a.endless_cap, "fast_bytes_per_second": a.fast_bps,
            "busybox_diff_id": b.bb.diff_id, "busybox_layer_digest": b.bb.digest,
            "scenarios": {name: b.info[name] for name in SCENARIOS}}
    write_atomic(a.info_file, json.dumps(info, indent=1, sort_keys=True) + "\n")

    def stop(signum, frame):
        raise SystemExit(0)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # The socket listens already: connections queue until serve_forever accepts them.
    write_atomic(a.port_file, f"{server.server_address[1]}\n")
    print(f"hostile_registry: serving {len(SCENARIOS)} scenarios on {host} "
          f"(ready in {time.monotonic() - start:.1f} s)", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("serve", help="build the scenarios and serve them until SIGTERM")
    p.add_argument("--port-file", required=True, help="gets the port once the server is ready")
    p.add_argument("--info-file", required=True, help="gets the scenarios' refs and digests")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (loopback only)")
    p.add_argument("--cache-dir", help="keeps the built bomb blobs across runs")
    p.add_argument("--trickle-bps", type=float, default=5.0,
                   help="bytes per second of the trickled responses")
    p.add_argument("--endless-cap", type=int, default=DEFAULT_CAP,
                   help="an endless body stops after this many bytes; 0: never")
    p.add_argument("--fast-bps", type=int, default=DEFAULT_FAST,
                   help="bytes per second of the fast endless responses")
    a = ap.parse_args(argv)
    if a.trickle_bps <= 0 or a.fast_bps <= 0:
        ap.error("--trickle-bps and --fast-bps must be positive")
    return serve(a)


if __name__ == "__main__":
    sys.exit(main())
