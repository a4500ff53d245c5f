#!/usr/bin/env python3
"""Independent check of a Notary signature envelope (JWS or COSE).

usage: verify_envelope.py jws|cose ENVELOPE_FILE
       verify_envelope.py ENVELOPE_FILE MEDIA_TYPE [EXPECTED_TARGET_JSON]

MEDIA_TYPE is the layer media type (application/jose+json or application/cose).
EXPECTED_TARGET_JSON, when given, is a JSON object whose members must equal those of the
payload's targetArtifact (e.g. {"mediaType": ..., "digest": ..., "size": ...}).

Verifies the signature with jwcrypto (JWS) or pycose (COSE), keys from `cryptography`,
against the leaf of the envelope's own chain, and asserts the Notary envelope rules the
Rust encoder must follow (digest sections 3 and 4): exact top-level members, base64
variants, key-sorted compact protected JSON, crit contents, cty, signing scheme, whole-second
UTC RFC 3339 times (JWS) or CBOR tag-1 integer times (COSE), x5chain as an array of bstr in
the unprotected header, core-deterministic header key order (COSE), algorithm derived from
the leaf key.

On success prints one JSON object summarising what it read (alg, signingTime, expiry as
epoch seconds, chain SHA-256 fingerprints, signingAgent, timestamp token SHA-256, payload)
and exits 0. On any failure prints the reason to stderr and exits 1.
"""
import base64
import datetime
import hashlib
import io
import json
import re
import sys

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwcrypto import jwk, jws
from jwcrypto.common import JWSEHeaderParameter
from pycose.keys import EC2Key, RSAKey
from pycose.messages import Sign1Message

CTY = "application/vnd.cncf.notary.payload.v1+json"
SCHEME = "io.cncf.notary.signingScheme"
SIGNING_TIME = "io.cncf.notary.signingTime"
EXPIRY = "io.cncf.notary.expiry"
AGENT = "io.cncf.notary.signingAgent"
TIMESTAMP = "io.cncf.notary.timestampSignature"
COSE_ALGS = {-37: "PS256", -38: "PS384", -39: "PS512", -7: "ES256", -35: "ES384", -36: "ES512"}
B64URL_NOPAD = re.compile(r"^[A-Za-z0-9_-]*$")
B64STD = re.compile(r"^[A-Za-z0-9+/]*={0,2}$")
UTC_SECONDS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


class Failure(Exception):
    pass


def require(cond, message):
    if not cond:
        raise Failure(message)


def alg_for_key(cert):
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return {2048: "PS256", 3072: "PS384", 4096: "PS512"}[key.key_size]
    if isinstance(key, ec.EllipticCurvePublicKey):
        return {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}[key.curve.name]
    raise Failure(f"unsupported leaf key {key!r}")


def b64url_nopad(name, text):
    require(isinstance(text, str), f"{name} is not a string")
    require(B64URL_NOPAD.match(text), f"{name} is not base64url without padding")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64std(name, text):
    require(isinstance(text, str), f"{name} is not a string")
    require(B64STD.match(text) and len(text) % 4 == 0, f"{name} is not standard base64 with padding")
    return base64.b64decode(text, validate=True)


def check_payload(payload):
    doc = json.loads(payload)
    require(isinstance(doc, dict), "payload is not a JSON object")
    target = doc.get("targetArtifact")
    require(isinstance(target, dict), "payload has no targetArtifact object")
    for field, kind in (("mediaType", str), ("digest", str), ("size", int)):
        require(isinstance(target.get(field), kind), f"targetArtifact.{field} missing or wrong type")
    require("artifactType" not in target, "targetArtifact must not carry artifactType")


def check_crit(crit, present, expiry):
    require(isinstance(crit, list) and crit, "crit missing or empty")
    require(crit[0] == SCHEME, f"crit must start with {SCHEME}: {crit}")
    require((EXPIRY in crit) == expiry, f"crit {crit} vs expiry present={expiry}")
    for name in crit:
        require(name in present, f"crit lists {name!r}, absent from the protected header")


def rfc3339_epoch(name, text):
    require(isinstance(text, str) and UTC_SECONDS.match(text), f"{name} {text!r} is not whole-second UTC RFC 3339")
    return int(datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc).timestamp())


def summary(alg, signing_time, expiry, chain, agent, token, payload):
    return {
        "alg": alg,
        "signingTime": signing_time,
        "expiry": expiry,
        "chain": [hashlib.sha256(c).hexdigest() for c in chain],
        "signingAgent": agent,
        "timestamp": hashlib.sha256(token).hexdigest() if token is not None else None,
        "payload": payload.decode(),
    }


def verify_jws(raw):
    env = json.loads(raw)
    require(isinstance(env, dict), "envelope is not a JSON object")
    require(sorted(env) == ["header", "payload", "protected", "signature"], f"top-level members {sorted(env)}")
    require(list(env) == ["payload", "protected", "header", "signature"], f"top-level member order {list(env)}")
    payload = b64url_nopad("payload", env["payload"])
    protected_raw = b64url_nopad("protected", env["protected"])
    b64url_nopad("signature", env["signature"])
    protected = json.loads(protected_raw)
    require(isinstance(protected, dict), "protected header is not an object")
    canonical = json.dumps(protected, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()
    require(protected_raw == canonical, "protected header is not key-sorted compact JSON")

    header = env["header"]
    require(isinstance(header, dict), "header is not an object")
    require(set(header) <= {"x5c", AGENT, TIMESTAMP}, f"unexpected unprotected members {sorted(header)}")
    require(not (set(header) & set(protected)), "a name appears in both headers")
    x5c = header.get("x5c")
    require(isinstance(x5c, list) and x5c, "x5c missing or empty")
    chain = [b64std("x5c entry", c) for c in x5c]
    token = b64std(TIMESTAMP, header[TIMESTAMP]) if TIMESTAMP in header else None
    agent = header.get(AGENT)
    require(agent is None or isinstance(agent, str), "signingAgent is not a string")

    leaf = x509.load_der_x509_certificate(chain[0])
    alg = alg_for_key(leaf)
    require(protected.get("alg") == alg, f"alg {protected.get('alg')} but leaf key requires {alg}")
    require(protected.get("cty") == CTY, f"cty {protected.get('cty')!r}")
    require(protected.get(SCHEME) == "notary.x509", f"signingScheme {protected.get(SCHEME)!r}")
    signing_time = rfc3339_epoch(SIGNING_TIME, protected.get(SIGNING_TIME))
    expiry = None
    if EXPIRY in protected:
        expiry = rfc3339_epoch(EXPIRY, protected[EXPIRY])
        require(expiry > signing_time, "expiry not after signing time")
    check_crit(protected.get("crit"), protected, EXPIRY in protected)
    check_payload(payload)

    registry = {name: JWSEHeaderParameter("Notary " + name, False, True, None) for name in protected["crit"]}
    token_obj = jws.JWS(header_registry=registry)
    token_obj.allowed_algs = [alg]
    token_obj.deserialize(raw.decode())
    token_obj.verify(jwk.JWK.from_pyca(leaf.public_key()))
    require(token_obj.payload == payload, "jwcrypto payload differs")
    return summary(alg, signing_time, expiry, chain, agent, token, payload)


def map_items(encoded):
    """(raw key bytes, key, raw value bytes, value) for each entry of a definite CBOR map."""
    require(len(encoded) > 0, "empty map encoding")
    first = encoded[0]
    require(first >> 5 == 5 and (first & 0x1F) < 24, "not a small definite-length CBOR map")
    fp = io.BytesIO(encoded[1:])
    decoder = cbor2.CBORDecoder(fp)
    items = []
    for _ in range(first & 0x1F):
        k0 = fp.tell()
        key = decoder.decode()
        k1 = fp.tell()
        value = decoder.decode()
        k2 = fp.tell()
        items.append((encoded[1 + k0:1 + k1], key, encoded[1 + k1:1 + k2], value))
    require(fp.tell() == len(encoded) - 1, "trailing bytes after the header map")
    keys = [raw for raw, _, _, _ in items]
    require(keys == sorted(keys, key=lambda k: (len(k), k)), "header keys not in core-deterministic order")
    require(len(set(keys)) == len(keys), "duplicate header keys")
    return items


def tag1_epoch(name, raw_value, value):
    require(raw_value[0] == 0xC1 and raw_value[1] >> 5 in (0, 1), f"{name} is not CBOR tag 1 with an integer")
    require(isinstance(value, datetime.datetime), f"{name} did not decode as a time")
    return int(value.timestamp())


def cose_key(cert):
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        numbers = key.public_numbers()
        as_bytes = lambda i: i.to_bytes((i.bit_length() + 7) // 8, "big")
        return RSAKey(n=as_bytes(numbers.n), e=as_bytes(numbers.e))
    numbers = key.public_numbers()
    size = (key.curve.key_size + 7) // 8
    crv = {"secp256r1": "P_256", "secp384r1": "P_384", "secp521r1": "P_521"}[key.curve.name]
    return EC2Key(crv=crv, x=numbers.x.to_bytes(size, "big"), y=numbers.y.to_bytes(size, "big"))


def verify_cose(raw):
    require(raw[:2] == b"\xd2\x84", "not a tagged COSE_Sign1 (d2 84)")
    outer = cbor2.loads(raw)
    require(isinstance(outer, cbor2.CBORTag) and outer.tag == 18, "not tag 18")
    protected_raw, unprotected, payload, signature = outer.value
    require(isinstance(payload, bytes), "payload not embedded as bstr")
    require(isinstance(signature, bytes), "signature not a bstr")

    protected = {}
    signing_time = expiry = None
    for _, key, raw_value, value in map_items(protected_raw):
        protected[key] = value
        if key == SIGNING_TIME:
            signing_time = tag1_epoch(key, raw_value, value)
        elif key == EXPIRY:
            expiry = tag1_epoch(key, raw_value, value)
    require(list(protected)[:3] == [1, 2, 3], f"protected labels {list(protected)}")
    require(protected[1] in COSE_ALGS, f"alg {protected[1]}")
    require(protected[3] == CTY, f"content type {protected[3]!r}")
    require(protected.get(SCHEME) == "notary.x509", "signingScheme")
    require(signing_time is not None, "signingTime missing")
    require(expiry is None or expiry > signing_time, "expiry not after signing time")
    require(33 not in protected, "x5chain in the protected header")
    check_crit(protected[2], protected, EXPIRY in protected)
    check_payload(payload)

    raw_unprotected = cbor2.dumps(unprotected)
    map_items(raw_unprotected)
    require(set(unprotected) <= {33, AGENT, TIMESTAMP}, f"unexpected unprotected labels {list(unprotected)}")
    chain = unprotected.get(33)
    require(isinstance(chain, list) and chain and all(isinstance(c, bytes) for c in chain),
            "x5chain must be an array of bstr")
    agent = unprotected.get(AGENT)
    require(agent is None or isinstance(agent, str), "signingAgent is not a tstr")
    token = unprotected.get(TIMESTAMP)
    require(token is None or isinstance(token, bytes), "timestampSignature is not a bstr")

    leaf = x509.load_der_x509_certificate(chain[0])
    alg = alg_for_key(leaf)
    require(COSE_ALGS[protected[1]] == alg, f"alg {COSE_ALGS[protected[1]]} but leaf key requires {alg}")
    message = Sign1Message.decode(raw)
    message.key = cose_key(leaf)
    require(message.verify_signature(), "pycose: signature does not verify")
    return summary(alg, signing_time, expiry, chain, agent, token, payload)


MEDIA_TYPES = {"application/jose+json": "jws", "application/cose": "cose"}


def main():
    args = sys.argv[1:]
    expected = None
    if len(args) == 2 and args[0] in ("jws", "cose"):
        kind, path = args
    elif len(args) in (2, 3) and args[1] in MEDIA_TYPES:
        path, kind = args[0], MEDIA_TYPES[args[1]]
        expected = json.loads(args[2]) if len(args) == 3 else None
    else:
        print(__doc__, file=sys.stderr)
        return 2
    with open(path, "rb") as f:
        raw = f.read()
    try:
        result = verify_jws(raw) if kind == "jws" else verify_cose(raw)
        if expected is not None:
            target = json.loads(result["payload"])["targetArtifact"]
            for key, value in expected.items():
                require(target.get(key) == value, f"targetArtifact.{key} is {target.get(key)!r}, expected {value!r}")
    except Exception as e:  # every failure, ours or a library's, is a verdict
        print(f"envelope rejected: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
