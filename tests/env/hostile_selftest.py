#!/usr/bin/env python3
"""Smoke test of hostile_registry.py: starts it (twice: building, then from its cache), checks
that every scenario answers as tests/env/README.md says, and stops it by pid.

  hostile_selftest.py        # prints "ok"/"FAIL" per check and "N passed, M failed"
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import hostile_registry as hr  # noqa: E402
import mkimage  # noqa: E402

DEEP = b"[" * hr.DEEP


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Fail(Exception):
    pass


def want(cond, msg):
    if not cond:
        raise Fail(msg)


def eq(got, expected, what):
    want(got == expected, f"{what}: got {got!r}, want {expected!r}")


class Registry:
    """A running hostile_registry.py serve, stopped by pid."""

    def __init__(self, workdir: str, cache: str, *extra: str):
        self.dir = workdir
        os.makedirs(workdir)
        self.port_file = os.path.join(workdir, "port")
        self.log = open(os.path.join(workdir, "log"), "wb")
        start = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "hostile_registry.py"), "serve",
             "--port-file", self.port_file, "--info-file", os.path.join(workdir, "info.json"),
             "--cache-dir", cache, *extra],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        while not os.path.exists(self.port_file):
            if self.proc.poll() is not None or time.monotonic() - start > 120:
                self.stop()
                raise Fail(f"no port file; log:\n{self.log_text()[-2000:]}")
            time.sleep(0.05)
        self.ready_s = time.monotonic() - start
        self.port = int(open(self.port_file).read())
        self.info = json.load(open(os.path.join(workdir, "info.json")))
        self.s = self.info["scenarios"]
        self.gets: dict[str, int] = {}  # requests this test made, per path

    def log_text(self) -> str:
        self.log.flush()
        return open(self.log.name, errors="replace").read()

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return None
        self.log.close()
        return self.proc.returncode

    def conn(self, timeout=30):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, path, method="GET", headers=None):
        """(status, headers, body)"""
        self.gets[path] = self.gets.get(path, 0) + 1
        c = self.conn()
        try:
            c.request(method, path, headers=headers or {})
            r = c.getresponse()
            return r.status, r.headers, r.read()
        finally:
            c.close()

    def get(self, path, **kw):
        st, h, body = self.request(path, **kw)
        eq(st, 200, f"GET {path}")
        return h, body

    def manifest(self, name, ref=hr.TAG):
        return self.get(f"/v2/{self.s[name]['repo']}/manifests/{ref}")

    def blob_path(self, name, digest):
        return f"/v2/{self.s[name]['repo']}/blobs/{digest}"

    def blob(self, name, digest):
        return self.get(self.blob_path(name, digest))[1]

    def timed(self, path, seconds=2.0, more=True):
        """Reads `path` for `seconds`: (status, headers, body bytes read, first bytes, whether
        more arrived in a further 1.5 s). A thread reads, so that no read times out."""
        self.gets[path] = self.gets.get(path, 0) + 1
        c = self.conn()
        c.request("GET", path)
        sock = c.sock  # http.client lets go of it for a "Connection: close" answer
        r = c.getresponse()
        got = {"n": 0, "first": b""}

        def pump():
            try:
                while data := r.read1(1 << 20):
                    got["n"] += len(data)
                    if len(got["first"]) < 65536:
                        got["first"] += data[:65536 - len(got["first"])]
            except (OSError, http.client.HTTPException):
                pass  # the shutdown below, or an incomplete body

        t = threading.Thread(target=pump)
        t.start()
        t.join(seconds)
        n, first = got["n"], got["first"]
        going = False
        if more and t.is_alive():
            t.join(1.5)
            going = got["n"] > n
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        t.join()
        r.close()
        c.close()
        return r.status, r.headers, n, first, going


def parse(manifest: bytes) -> dict:
    """A manifest or index as JSON, without the deep annotations Python cannot parse."""
    if DEEP in manifest:
        manifest = manifest[:manifest.index(b',"annotations":')] + b"}"
    return json.loads(manifest)


# ---------------------------------------------------------------------------
# Checks (first instance)
# ---------------------------------------------------------------------------

def c_api(r: Registry):
    eq(r.request("/v2/")[0], 200, "GET /v2/")
    for path, code in ((f"/v2/nope/manifests/{hr.TAG}", "NAME_UNKNOWN"),
                       ("/v2/hostile/honest/manifests/2", "MANIFEST_UNKNOWN"),
                       ("/v2/hostile/honest/blobs/sha256:" + "0" * 64, "BLOB_UNKNOWN"),
                       ("/v2/_catalog", "NOT_FOUND")):
        st, _, body = r.request(path)
        eq(st, 404, path)
        eq(json.loads(body)["errors"][0]["code"], code, f"{path} error code")
    eq(r.request("/v2/hostile/honest/blobs/uploads/", method="POST")[0], 405, "POST")


def c_digests(r: Registry):
    """Manifests by tag and digest, configs and honestly served layers: all match."""
    no_layer = {"trickle", "endless-error", "endless-error-slow", "no-size", "size-minus-one",
                "held-layers"}
    for name, s in r.s.items():
        repo = s["repo"]
        for ref in (hr.TAG, s["digest"]):
            st, h, body = r.request(f"/v2/{repo}/manifests/{ref}", method="HEAD")
            eq((st, h["Docker-Content-Digest"], int(h["Content-Length"]), body),
               (200, s["digest"], s["manifest_size"], b""), f"{name}: HEAD manifest {ref}")
        if name == "trickle-manifest":
            continue
        h, body = r.manifest(name)
        eq(h["Content-Type"], s["media_type"], f"{name}: manifest type")
        eq(sha(body), s["digest"], f"{name}: manifest digest")
        if name == "deep-index":
            eq(parse(body)["manifests"][0]["digest"], s["manifest_digest"], "deep-index entry")
            h, body = r.manifest(name, s["manifest_digest"])
            eq(sha(body), s["manifest_digest"], "deep-index: child manifest digest")
        m = parse(body)
        eq([l["digest"] for l in m["layers"]], s["layer_digests"], f"{name}: layers")
        config = r.blob(name, s["config_digest"])
        eq(sha(config), m["config"]["digest"], f"{name}: config digest")
        eq(len(config), m["config"]["size"], f"{name}: config size")
        eq(len(config), s["config_size"], f"{name}: config_size")
        if name not in no_layer:
            for d in s["layer_digests"]:
                eq(sha(r.blob(name, d)), d, f"{name}: layer {d} digest")


def c_honest(r: Registry):
    s = r.s["honest"]
    _, m = r.manifest("honest")
    m = json.loads(m)
    layer = r.blob("honest", s["layer_digests"][0])
    eq(m["layers"][0]["size"], len(layer), "layer size")
    eq(sha(gzip.decompress(layer)), s["diff_ids"][0], "diff_id")
    eq(s["diff_ids"][0], mkimage.busybox_layer().diff_id, "busybox diff_id")
    path = r.blob_path("honest", s["layer_digests"][0])
    st, h, body = r.request(path, headers={"Range": "bytes=1000-1999"})
    eq((st, h["Content-Range"], body), (206, f"bytes 1000-1999/{len(layer)}", layer[1000:2000]),
       "Range 1000-1999")
    st, _, body = r.request(path, headers={"Range": "bytes=1000000-"})
    eq((st, body), (206, layer[1000000:]), "Range 1000000-")
    eq(r.request(path, headers={"Range": f"bytes={len(layer)}-"})[0], 416, "Range past the end")


def c_trojan(r: Registry):
    s = r.s["trojan"]
    std = mkimage.Image([mkimage.busybox_layer()], mkimage.BUSYBOX_CONFIG)
    eq(s["config_digest"], std.config_digest, "config is the standard busybox one")
    eq(s["diff_ids"], [s["claimed_diff_id"]], "claimed diff_id")
    eq(s["claimed_diff_id"], std.layers[0].diff_id, "claimed = busybox diff_id")
    blob = r.blob("trojan", s["layer_digest"])
    tar = gzip.decompress(blob)
    eq(sha(tar), s["real_diff_id"], "real diff_id")
    want(s["real_diff_id"] != s["claimed_diff_id"], "the layer is honest")
    tf = tarfile.open(fileobj=io.BytesIO(tar))
    eq(tf.extractfile("trojan").read(), b"trojan\n", "/trojan")
    want(tf.getmember("bin/sh").islnk(), "/bin/sh missing")


def c_trojan_second(r: Registry):
    s = r.s["trojan-second-layer"]
    honest = mkimage.image_from_spec(s["honest_spec"])
    eq(s["config_digest"], honest.config_digest, "config = honest_spec's")
    eq(s["diff_ids"], [l.diff_id for l in honest.layers], "diff_ids = honest_spec's")
    eq(s["claimed_diff_id"], honest.layers[1].diff_id, "claimed diff_id")
    eq(s["honest_layer_digest"], honest.layers[1].digest, "honest layer digest")
    eq(s["layer_digests"][0], honest.layers[0].digest, "first layer is busybox")
    tar = gzip.decompress(r.blob("trojan-second-layer", s["layer_digests"][1]))
    eq(sha(tar), s["real_diff_id"], "real diff_id")
    want(s["real_diff_id"] != s["claimed_diff_id"], "the second layer is honest")


def c_deep(r: Registry):
    cfg = r.blob("deep-config", r.s["deep-config"]["config_digest"])
    want(DEEP in cfg and cfg.endswith(b"]" * 1000 + b"}"), "deep-config is not deep")
    _, m = r.manifest("deep-manifest")
    want(DEEP in m, "deep-manifest is not deep")
    h, idx = r.manifest("deep-index")
    want(DEEP in idx, "deep-index is not deep")
    eq(h["Content-Type"], mkimage.OCI_INDEX, "deep-index type")


def c_big_config(r: Registry):
    s = r.s["big-config"]
    cfg = json.loads(r.blob("big-config", s["config_digest"]))
    eq(s["config_size"], hr.BIG_CONFIG, "size")
    eq(cfg["rootfs"]["diff_ids"], s["diff_ids"], "diff_ids")


def c_size_lies(r: Registry):
    s = r.s["size-lies"]
    _, m = r.manifest("size-lies")
    eq(json.loads(m)["layers"][0]["size"], hr.LIE_SIZE, "descriptor size")
    h, body = r.get(r.blob_path("size-lies", s["layer_digests"][0]))
    eq(int(h["Content-Length"]), len(body), "Content-Length")
    want(len(body) > 1000 * hr.LIE_SIZE, f"blob only {len(body)} bytes")
    eq(len(body), s["actual_size"], "actual_size")


def c_gzip_bomb(r: Registry):
    s = r.s["gzip-bomb"]
    blob = r.blob("gzip-bomb", s["layer_digests"][0])
    want(len(blob) < 2_000_000, f"blob is {len(blob)} bytes")
    d = zlib.decompressobj(31)  # checks the gzip CRC and length
    h, n, first = hashlib.sha256(), 0, b""
    for i in range(0, len(blob), 4096):
        out = d.decompress(blob[i:i + 4096])
        h.update(out)
        n += len(out)
        first = first or out[:512]
    want(d.eof and not d.unused_data, "gzip stream does not end cleanly")
    eq("sha256:" + h.hexdigest(), s["diff_ids"][0], "diff_id")
    eq(n, s["uncompressed_size"], "uncompressed size")
    ti = tarfile.TarInfo.frombuf(first[:512], "utf-8", "surrogateescape")
    eq((ti.name, ti.size), ("zeros", hr.BOMB_FILE), "tar member")


def c_entries_bomb(r: Registry):
    s = r.s["entries-bomb"]
    tar = gzip.decompress(r.blob("entries-bomb", s["layer_digests"][0]))
    eq(sha(tar), s["diff_ids"][0], "diff_id")
    kinds = {tarfile.REGTYPE: 0, tarfile.DIRTYPE: 0}
    for off in range(0, len(tar), 512):
        if tar[off:off + 512] == bytes(512):
            break
        if off % (512 * 997) == 0:  # a sample through tarfile (it checks the checksum)
            tarfile.TarInfo.frombuf(tar[off:off + 512], "utf-8", "surrogateescape")
        eq(tar[off + 257:off + 263], b"ustar\0", f"magic at {off}")
        kinds[tar[off + 156:off + 157]] += 1
    eq((kinds[tarfile.REGTYPE], kinds[tarfile.DIRTYPE]), (hr.BOMB_ENTRIES, hr.BOMB_DIRS),
       "entries")


def c_held_layers(r: Registry):
    s = r.s["held-layers"]
    eq(len(s["layer_digests"]), hr.HELD_LAYERS, "layers")
    readers = []
    for d in s["layer_digests"]:
        c = r.conn()
        c.request("GET", r.blob_path("held-layers", d))
        readers.append((d, c, c.getresponse()))
    bodies = {}
    for d, _, resp in readers:
        total = int(resp.headers["Content-Length"])
        bodies[d] = resp.read(total // 2)
        eq(len(bodies[d]), total // 2, f"{d}: first half")
    time.sleep(0.3)
    for d, c, _ in readers:
        c.sock.settimeout(0.1)
        try:
            more = c.sock.recv(1, socket.MSG_PEEK)
        except TimeoutError:
            more = b""
        c.sock.settimeout(30)
        eq(more, b"", f"{d}: sent more before the release")
    open(s["release"], "w").close()
    for d, c, resp in readers:
        bodies[d] += resp.read()
        c.close()
        eq(sha(bodies[d]), d, f"{d}: digest")
    r.gets.update({r.blob_path("held-layers", d): 1 for d in s["layer_digests"]})
    return "each blob held half-way until released"


def layer_path(r: Registry, name: str) -> str:
    return r.blob_path(name, r.s[name]["layer_digests"][0])


def stream_checks(r: Registry) -> list:
    """(name, function) pairs that read a stream for 2 s; run at the same time."""

    def slow(name, path, status, length):
        def check():
            st, h, n, _, going = r.timed(path)
            eq(st, status, "status")
            if length is not None:
                eq(int(h["Content-Length"]), length, "Content-Length")
            want(0 < n < 50, f"{n} bytes in 2 s")
            want(going, "stopped sending")
            return f"{n} bytes in 2 s"
        return check

    def fast(name, status, chunked, prefix):
        def check():
            st, h, n, first, going = r.timed(layer_path(r, name))
            eq(st, status, "status")
            want(h["Content-Length"] is None, "has a Content-Length")
            eq(h["Transfer-Encoding"], "chunked" if chunked else None, "Transfer-Encoding")
            want(n > 10_000_000, f"only {n} bytes in 2 s")
            want(going, "stopped sending")
            want(first.startswith(prefix), f"body starts {first[:40]!r}")
            if not chunked:  # a valid gzip tar stream of one huge file
                tf = tarfile.open(fileobj=io.BytesIO(zlib.decompressobj(31).decompress(first)),
                                  mode="r|")
                ti = tf.next()
                eq((ti.name, ti.size), ("hostile/endless", 1 << 40), "tar member")
            return f"{n / 1e6:.0f} MB in 2 s"
        return check

    def descriptor_size(name, want_size):
        def check():
            layer0 = json.loads(r.manifest(name)[1])["layers"][0]
            eq(layer0.get("size", "absent"), want_size, "descriptor size")
            return fast(name, 200, False, b"\x1f\x8b")()
        return check

    manifest = f"/v2/{r.s['trickle-manifest']['repo']}/manifests/{hr.TAG}"
    return [
        ("trickle: layer trickles",
         slow("trickle", layer_path(r, "trickle"), 200, r.s["trickle"]["layer_size"])),
        ("trickle-manifest: manifest trickles",
         slow("trickle-manifest", manifest, 200, r.s["trickle-manifest"]["manifest_size"])),
        ("endless-error: fast 500 body never ends",
         fast("endless-error", 500, True, hr.EndlessError.PREFIX)),
        ("endless-error-slow: slow 500 body",
         slow("endless-error-slow", layer_path(r, "endless-error-slow"), 500, None)),
        ("no-size: no size, endless blob", descriptor_size("no-size", "absent")),
        ("size-minus-one: size -1, endless blob", descriptor_size("size-minus-one", -1)),
    ]


def c_stats(r: Registry):
    st = json.loads(r.get("/_stats")[1])
    for path, n in r.gets.items():
        if path != "/_stats":
            eq(st["requests"].get(path), n, f"requests of {path}")
    want("/_stats" not in st["requests"], "/_stats counts itself")
    sent = st["bytes_sent"][layer_path(r, "endless-error")]
    want(sent > 10_000_000, f"bytes_sent {sent}")
    honest = layer_path(r, "honest")
    eq(st["methods"].get(f"GET {honest}"), r.gets[honest], "GET count of honest layer")


# ---------------------------------------------------------------------------
# Second instance: from the cache, with options
# ---------------------------------------------------------------------------

def second_instance_checks(first: Registry, second: Registry) -> list:
    def same():
        for name, s in first.s.items():
            t = second.s[name]
            for k in ("digest", "config_digest", "layer_digests", "diff_ids"):
                eq(t[k], s[k], f"{name} {k}")
        return f"ready in {second.ready_s:.1f} s"

    def cap():
        st, _, n, _, going = second.timed(layer_path(second, "endless-error"), seconds=5,
                                          more=False)
        eq(st, 500, "status")
        want(4_000_000 <= n < 4_200_000, f"{n} bytes before the end")
        return f"ended after {n} bytes"

    def rate():
        st, _, n, _, _ = second.timed(layer_path(second, "trickle"), more=False)
        want(50 < n < 400, f"{n} bytes in 2 s at 50 bytes/s")
        return f"{n} bytes in 2 s"

    return [("cached start gives the same digests", same),
            ("--endless-cap ends the stream", cap), ("--trickle-bps", rate)]


def main() -> int:
    t0 = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="berth-hostile-selftest.")
    passed = failed = 0

    def run(name, fn, *args):
        """(name, output, error, seconds)"""
        start = time.monotonic()
        try:
            return name, fn(*args), None, time.monotonic() - start
        except Exception as e:  # noqa: BLE001 (any failure is reported as such)
            return name, None, e, time.monotonic() - start

    def report(name, out, err, took):
        nonlocal passed, failed
        if err is None:
            passed += 1
            print(f"ok   {name}{f' ({out})' if out else ''}"
                  f"{f' [{took:.1f} s]' if took > 1 else ''}", flush=True)
        else:
            failed += 1
            print(f"FAIL {name}: {err if isinstance(err, Fail) else repr(err)}", flush=True)

    def check(name, fn, *args):
        report(*run(name, fn, *args))

    def parallel(checks):
        """Runs the checks in threads (they mostly wait, or hash in C), reports in order."""
        results = [None] * len(checks)

        def one(i, name, fn):
            results[i] = run(name, fn)
        threads = [threading.Thread(target=one, args=(i, n, f)) for i, (n, f) in enumerate(checks)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for res in results:
            report(*res)

    regs = []
    try:
        cache = os.path.join(tmp, "cache")
        r = Registry(os.path.join(tmp, "a"), cache)
        regs.append(r)
        print(f"ok   started, building everything, in {r.ready_s:.1f} s", flush=True)
        # A second instance from the cache the first one filled, with options.
        s = Registry(os.path.join(tmp, "b"), cache, "--trickle-bps", "50",
                     "--endless-cap", "4000000")
        regs.append(s)
        check("GET /v2/, 404s and 405", c_api, r)
        check("every manifest, config and honest layer has its digest", c_digests, r)
        check("honest: diff_id and Range", c_honest, r)
        check("trojan: busybox config over another layer", c_trojan, r)
        check("trojan-second-layer: honest_spec's config, lying second layer", c_trojan_second, r)
        check("deep-config, deep-manifest, deep-index are deep", c_deep, r)
        check("big-config: 64 MiB of valid JSON", c_big_config, r)
        check("size-lies: descriptor 1000, blob bigger", c_size_lies, r)
        check("held-layers: blobs held half-way until released", c_held_layers, r)
        parallel(stream_checks(r) + second_instance_checks(r, s) + [
            ("gzip-bomb: 1 GiB of zeros, diff_id correct", lambda: c_gzip_bomb(r)),
            ("entries-bomb: 200,000 entries, diff_id correct", lambda: c_entries_bomb(r))])
        check("/_stats counts requests and bytes", c_stats, r)
        for reg in regs:
            code = reg.stop()
            check(f"SIGTERM stops {reg.dir}", eq, code, 0, "exit code")
    except Fail as e:
        failed += 1
        print(f"FAIL {e}")
    finally:
        for reg in regs:
            reg.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{passed} passed, {failed} failed ({time.monotonic() - t0:.0f} s)")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
