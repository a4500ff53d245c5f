#!/usr/bin/env python3
"""Write the release image without Docker and push it to a registry over the distribution API.

What the Dockerfile's final stage holds, written directly: one layer with /sign-action, the CA
bundle and /etc/passwd + /etc/group naming `nonroot` (65532); an OCI image config with the
entrypoint; an OCI manifest. Deterministic (fixed mtimes and owners), so the digest depends only
on the inputs. Prints the manifest digest and the compressed size.

usage: oci-image.py BINARY CA_BUNDLE REGISTRY_URL REPOSITORY TAG [ARCH]   (ARCH: amd64 default, arm64)
"""
import gzip, hashlib, io, json, sys, tarfile, urllib.request

binary, ca_bundle, registry, repo, tag = sys.argv[1:6]
arch = sys.argv[6] if len(sys.argv) > 6 else "amd64"

def add(tar, name, data, mode):
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime, info.uid, info.gid = len(data), mode, 0, 0, 0
    tar.addfile(info, io.BytesIO(data))

def add_dir(tar, name):
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
    tar.addfile(info)

raw = io.BytesIO()
with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
    for d in ("etc", "etc/ssl", "etc/ssl/certs"):
        add_dir(tar, d)
    add(tar, "sign-action", open(binary, "rb").read(), 0o755)
    add(tar, "etc/ssl/certs/ca-certificates.crt", open(ca_bundle, "rb").read(), 0o644)
    add(tar, "etc/passwd", b"root:x:0:0:root:/:/sign-action\n"
        b"nonroot:x:65532:65532:nonroot:/home/nonroot:/sign-action\n", 0o644)
    add(tar, "etc/group", b"root:x:0:\nnonroot:x:65532:\n", 0o644)
layer_tar = raw.getvalue()
layer = gzip.compress(layer_tar, compresslevel=9, mtime=0)

def digest(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()

config = json.dumps({
    "architecture": arch, "os": "linux",
    "config": {"Entrypoint": ["/sign-action"], "Labels": {
        "org.opencontainers.image.source": "https://github.com/org/sign-action"}},
    "rootfs": {"type": "layers", "diff_ids": [digest(layer_tar)]},
    "history": [{"created_by": "scripts/oci-image.py (the Dockerfile's final stage)"}],
}, separators=(",", ":")).encode()
manifest = json.dumps({
    "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
               "digest": digest(config), "size": len(config)},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": digest(layer), "size": len(layer)}],
}, separators=(",", ":")).encode()

def request(method, url, body=None, headers=None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status, r.headers

for blob in (layer, config):
    _, h = request("POST", f"{registry}/v2/{repo}/blobs/uploads/")
    loc = h["Location"]
    loc = loc if loc.startswith("http") else registry + loc
    sep = "&" if "?" in loc else "?"
    request("PUT", f"{loc}{sep}digest={digest(blob)}", blob,
            {"Content-Type": "application/octet-stream"})
status, h = request("PUT", f"{registry}/v2/{repo}/manifests/{tag}", manifest,
                    {"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
assert h["Docker-Content-Digest"] == digest(manifest), "registry changed the manifest"
print(digest(manifest), len(layer) + len(config) + len(manifest))
