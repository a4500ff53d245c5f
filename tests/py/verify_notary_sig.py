#!/usr/bin/env python3
"""Independent check of a raw Notary signature with Python `cryptography`.

usage: verify_notary_sig.py CERT_PEM MESSAGE_FILE SIGNATURE_FILE

The algorithm follows from the certificate key as Notary defines it (RSA 2048/3072/4096 ->
RSASSA-PSS SHA-256/384/512 with salt length = hash length; EC P-256/384/521 -> ECDSA
SHA-256/384/512 with the signature as fixed-width R||S). Exit 0 and print the algorithm when
the signature verifies, exit 1 otherwise.
"""
import sys

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature


def main() -> int:
    cert_path, msg_path, sig_path = sys.argv[1:4]
    with open(cert_path, "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    with open(msg_path, "rb") as f:
        message = f.read()
    with open(sig_path, "rb") as f:
        signature = f.read()
    key = cert.public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            h = {2048: hashes.SHA256(), 3072: hashes.SHA384(), 4096: hashes.SHA512()}[key.key_size]
            key.verify(
                signature,
                message,
                padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size),
                h,
            )
            name = f"PS{h.digest_size * 8}"
        elif isinstance(key, ec.EllipticCurvePublicKey):
            h = {256: hashes.SHA256(), 384: hashes.SHA384(), 521: hashes.SHA512()}[key.curve.key_size]
            width = (key.curve.key_size + 7) // 8
            if len(signature) != 2 * width:
                print(f"ECDSA signature is {len(signature)} bytes, expected {2 * width}")
                return 1
            r = int.from_bytes(signature[:width], "big")
            s = int.from_bytes(signature[width:], "big")
            key.verify(encode_dss_signature(r, s), message, ec.ECDSA(h))
            name = f"ES{h.digest_size * 8}"
        else:
            print("unsupported key type")
            return 1
    except InvalidSignature:
        print("signature does not verify")
        return 1
    print(f"OK {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
