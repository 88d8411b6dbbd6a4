#!/usr/bin/env python3
"""Writes fuzz/corpus/<target>/seed-* : small valid inputs for every fuzz target, in the spirit of
the test fixtures (tests/fixtures: the same image layout, layer entry kinds and hostile names;
the docs' config and hosts.toml examples). Run it again after changing a target's input format;
inputs that once crashed live beside the seeds as crash-* and are never rewritten here.

  fuzz/make_seeds.py [OCI_LAYOUT]   # OCI_LAYOUT: an image layout for the `image` seeds
                                    # (default build/bench-fixtures/oci, from bench/run.sh)
"""
import hashlib
import io
import json
import os
import struct
import subprocess
import sys
import tarfile

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


# --- protobuf wire encoding, just what the seeds need
def varint(n):
    out = b""
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field_varint(num, n):
    return varint(num << 3) + varint(n)


def field_bytes(num, data):
    if isinstance(data, str):
        data = data.encode()
    return varint(num << 3 | 2) + varint(len(data)) + data


DIGEST0 = "sha256:" + "0" * 64


def seeds_reference():
    for i, ref in enumerate([
            "busybox", "docker.io/library/busybox:latest", "localhost:5000/a/b-c_d.e:v1.2",
            "registry.example/x@" + DIGEST0, "[::1]:5000/img:tag@" + DIGEST0,
            "Uppercase/Name", "a" * 300, "docker.io/berth/busybox:latest"]):
        write("reference", str(i), ref)


def seeds_filters():
    for i, f in enumerate([
            "", "name==docker.io/library/busybox:latest", 'labels."a.b"~=^t.o$,id',
            "name!=x,labels.a==1", "target.digest~=sha256", "labels.containerd.io/gc.ref.content",
            'name=="quoted \\" value"', "a.b.c==/x/y/", "name~=([a-z]+"]):
        write("filters", str(i), f)


def seeds_hosts():
    write("hosts_toml", "mirror", '''server = "https://registry.example"

[host."https://mirror.example:5000"]
  capabilities = ["pull", "resolve"]
  ca = "/etc/certs/ca.pem"
  client = [["/etc/certs/client.cert", "/etc/certs/client.key"]]
  skip_verify = false
  [host."https://mirror.example:5000".header]
    x-custom = ["1", "2"]

[host."http://127.0.0.1:5001"]
  capabilities = ["pull", "resolve", "push"]
  override_path = true
''')
    write("hosts_toml", "server-only", 'server = "http://localhost:5000"\nca = "ca.pem"\n')


def seeds_config():
    berthd = os.environ.get("BERTHD", os.path.join(HERE, "..", "bin", "berthd"))
    try:
        out = subprocess.run([berthd, "config", "default"], check=True, capture_output=True).stdout
        write("config", "default", out)
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"make_seeds: no `berthd config default` ({e}): config seed 'default' kept",
              file=sys.stderr)
    write("config", "node", '''version = 2
root = "/var/lib/berth"
state = "/run/berth"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs"]
oom_score = -999

[grpc]
  address = "/run/berth/berth.sock"
  max_recv_message_size = 16777216

[debug]
  level = "debug"

[proxy_plugins]
  [proxy_plugins.stargz]
    type = "snapshot"
    address = "/run/stargz.sock"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.6"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
    SystemdCgroup = true
''')


def seeds_image(layout):
    sep = b"\n--blob--\n"
    try:
        index = json.load(open(os.path.join(layout, "index.json")))
    except OSError as e:
        print(f"make_seeds: no image layout at {layout} ({e}): image seeds kept", file=sys.stderr)
        return

    def blob(d):
        algo, hexd = d.split(":")
        return open(os.path.join(layout, "blobs", algo, hexd), "rb").read()

    raw_index = json.dumps({"schemaVersion": 2, "manifests": index["manifests"][:2]}).encode()
    for m in index["manifests"]:
        name = m.get("annotations", {}).get("org.opencontainers.image.ref.name", "m")
        if name not in ("busybox", "multi", "pause"):
            continue
        manifest = blob(m["digest"])
        config = blob(json.loads(manifest)["config"]["digest"])
        write("image", name, manifest + sep + config)
        write("image", name + "-index", raw_index + sep + manifest + sep + config)


def tar_bytes(entries, fmt=tarfile.PAX_FORMAT):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for info, data in entries:
            t.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def ti(name, type_=tarfile.REGTYPE, data=b"", **kw):
    info = tarfile.TarInfo(name)
    info.type = type_
    info.size = len(data) if type_ == tarfile.REGTYPE else 0
    info.mode = kw.pop("mode", 0o644)
    info.mtime = 1700000000
    for k, v in kw.items():
        setattr(info, k, v)
    return info, (data if type_ == tarfile.REGTYPE else None)


def seeds_tar():
    import gzip
    layer = tar_bytes([
        ti("etc/", tarfile.DIRTYPE, mode=0o755),
        ti("etc/hostname", data=b"berth\n"),
        ti("etc/link", tarfile.SYMTYPE, linkname="hostname"),
        ti("etc/hard", tarfile.LNKTYPE, linkname="etc/hostname"),
        ti("bin/", tarfile.DIRTYPE, mode=0o755),
        ti("bin/sh", data=b"#!/bin/true\n", mode=0o4755),
        ti("dev/", tarfile.DIRTYPE, mode=0o755),
        ti("dev/null", tarfile.CHRTYPE, devmajor=1, devminor=3, mode=0o666),
        ti("dev/fifo", tarfile.FIFOTYPE),
    ])
    write("tar_apply", "layer", layer)
    write("tar_apply", "layer-overlay", layer + b"\0")  # odd size: applied as an overlay upperdir
    write("tar_apply", "layer-gzip", gzip.compress(layer, mtime=0))
    whiteouts = tar_bytes([
        ti("etc/", tarfile.DIRTYPE, mode=0o755),
        ti("etc/.wh.hostname"),
        ti("etc/.wh..wh..opq"),
        ti("var/", tarfile.DIRTYPE, mode=0o755, pax_headers={"SCHILY.xattr.user.k": "v"}),
        ti("var/" + "long-name-" * 20, data=b"x"),
    ])
    write("tar_apply", "whiteouts", whiteouts)
    write("tar_apply", "gnu", tar_bytes([ti("g/" + "n" * 150, data=b"gnu")], tarfile.GNU_FORMAT))
    # Hostile entries the fixtures' evil layers carry: each must be refused.
    evil = [
        [ti("../escape", data=b"evil")],
        [ti("/abs", data=b"evil")],
        [ti("out", tarfile.SYMTYPE, linkname="/"), ti("out/file", data=b"evil")],
        [ti("h", tarfile.LNKTYPE, linkname="../../etc/passwd")],
    ]
    for i, entries in enumerate(evil):
        write("tar_apply", f"evil-{i}", tar_bytes(entries))


def frame(stream, type_, body, flags=0):
    return struct.pack(">IIBB", len(body), stream, type_, flags) + body


def ttrpc_request(service, method, payload=b"", metadata=()):
    req = field_bytes(1, service) + field_bytes(2, method) + field_bytes(3, payload)
    req += field_varint(4, 1000000000)
    for k, v in metadata:
        req += field_bytes(5, field_bytes(1, k) + field_bytes(2, v))
    return req


def seeds_ttrpc():
    write("ttrpc", "echo", frame(1, 1, ttrpc_request("fuzz.Echo", "Echo", b"hello")))
    write("ttrpc", "typed", frame(1, 1, ttrpc_request("fuzz.Typed", "Call")) +
          frame(3, 1, ttrpc_request("fuzz.Typed", "Call", metadata=[("fail", "1")])))
    write("ttrpc", "unknown", frame(5, 1, ttrpc_request("no.Such", "Method")) +
          frame(2, 1, ttrpc_request("fuzz.Echo", "Echo")) + frame(7, 2, b"resp"))
    write("ttrpc", "oversize", struct.pack(">IIBB", 5 << 20, 9, 1, 0) + b"x" * 64)


def seeds_events():
    exit_ = field_bytes(1, "c1") + field_bytes(2, "c1") + field_varint(3, 42) + field_varint(4, 137)
    write("events", "exit", b"/tasks/exit\ndefault\n3\n" + exit_)
    any_ = field_bytes(1, "type.googleapis.com/containerd.runc.v1.Options") + field_bytes(2, b"")
    create = field_bytes(1, "c1") + field_bytes(2, "busybox") + field_bytes(
        3, field_bytes(1, "io.containerd.runc.v2") + field_bytes(2, any_))
    write("events", "container-create", b"/containers/create\nk8s.io\n0\n" + create)
    update = field_bytes(1, "docker.io/x:1") + field_bytes(2, field_bytes(1, "a") + field_bytes(2, "1"))
    write("events", "image-update", b"/images/update\nns\n4\n" + update)
    write("events", "bad", b"tasks\n-bad-\ncontainerd.events.Nope\n\xff\xff")


def seeds_content_write():
    def req(action, ref="", total=0, expected="", offset=0, data=b"", labels=()):
        m = field_varint(1, action) if action else b""
        if ref:
            m += field_bytes(2, ref)
        if total:
            m += field_varint(3, total)
        if expected:
            m += field_bytes(4, expected)
        if offset:
            m += field_varint(5, offset)
        if data:
            m += field_bytes(6, data)
        for k, v in labels:
            m += field_bytes(7, field_bytes(1, k) + field_bytes(2, v))
        return struct.pack("<H", len(m)) + m
    data = b"hello, content\n"
    dgst = "sha256:" + hashlib.sha256(data).hexdigest()
    write("content_write", "commit", req(0, "ref-1", len(data), dgst) + req(1, data=data[:5]) +
          req(1, offset=5, data=data[5:]) + req(2, total=len(data), expected=dgst,
                                                labels=[("containerd.io/gc.root", "x")]))
    write("content_write", "truncate", req(1, "ref-2", data=b"abc") + req(1, data=b"xyz") +
          req(0) + req(2, total=3))
    write("content_write", "bad", req(1, "ref-3", data=b"abc") + req(1, offset=7, data=b"z") +
          req(2, "other-ref"))


def main():
    layout = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "build", "bench-fixtures", "oci")
    seeds_reference()
    seeds_filters()
    seeds_hosts()
    seeds_config()
    seeds_image(layout)
    seeds_tar()
    seeds_ttrpc()
    seeds_events()
    seeds_content_write()


if __name__ == "__main__":
    main()
