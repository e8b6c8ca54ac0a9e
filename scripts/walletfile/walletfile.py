#!/usr/bin/env python3
"""Independent implementation of KDF's wallet file (EncryptedData), to cross-check kdfd.

Written from the format rules in kdf-wallet-compat.md 2.12, with argon2-cffi and cryptography
(not the Rust crates kdfd uses), so that a shared misunderstanding cannot pass both sides.

  walletfile.py encrypt --format v1|legacy --password P --mnemonic M   # prints the JSON
  walletfile.py decrypt --password P FILE                              # prints the mnemonic

decrypt exits 1 on a wrong tag (wrong password), 2 on an unreadable file.
Run it with the python that ensure-venv.sh prints.
"""
import argparse
import base64
import hashlib
import hmac
import json
import os
import sys

from argon2.low_level import Type, hash_secret_raw
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

# What older KDF really hashed with (argon2 0.5's Argon2::default()), whatever it wrote.
LEGACY_KDF = dict(m=19456, t=2, p=1, version=0x13, type=Type.ID)
V1_PARAMS = {"algorithm": "argon2id", "version": 19, "m_cost": 65536, "t_cost": 2,
             "p_cost": 1, "output_len": 32}
LEGACY_PARAMS = {"algorithm": "Argon2id", "version": "0x13", "m_cost": 65536, "t_cost": 2,
                 "p_cost": 1}
TYPES = {"argon2id": Type.ID, "argon2i": Type.I, "argon2d": Type.D}


def phc_b64_encode(raw):
    """PHC salt string: standard alphabet, no padding."""
    return base64.b64encode(raw).decode().rstrip("=")


def phc_b64_decode(s):
    return base64.b64decode(s + "=" * (-len(s) % 4), validate=True)


def kdf_settings(data):
    """(m, t, p, version, type) used for this file's keys."""
    if "version" not in data:
        k = LEGACY_KDF
        return k["m"], k["t"], k["p"], k["version"], k["type"]
    if data["version"] != 1:
        raise ValueError("unsupported version %r" % data["version"])
    p = data["key_derivation_details"]["Argon2"]["params"]
    version = p["version"]
    if isinstance(version, str):
        version = int(version, 16)
    if p.get("output_len", 32) != 32:
        raise ValueError("output_len must be 32")
    return p["m_cost"], p["t_cost"], p["p_cost"], version, TYPES[p["algorithm"].lower()]


def derive(password, salt_str, settings):
    m, t, p, version, typ = settings
    return hash_secret_raw(secret=password.encode(), salt=phc_b64_decode(salt_str),
                           time_cost=t, memory_cost=m, parallelism=p, hash_len=32,
                           type=typ, version=version)


def encrypt(fmt, password, mnemonic):
    data = {}
    if fmt == "v1":
        data["version"] = 1
    params = V1_PARAMS if fmt == "v1" else LEGACY_PARAMS
    data["encryption_algorithm"] = "AES256CBC"
    data["key_derivation_details"] = {"Argon2": {
        "params": params,
        "salt_aes": phc_b64_encode(os.urandom(16)),
        "salt_hmac": phc_b64_encode(os.urandom(16)),
    }}
    settings = kdf_settings(data)
    argon = data["key_derivation_details"]["Argon2"]
    key_aes = derive(password, argon["salt_aes"], settings)
    key_hmac = derive(password, argon["salt_hmac"], settings)
    iv = os.urandom(16)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(mnemonic.encode()) + padder.finalize()
    enc = Cipher(algorithms.AES(key_aes), modes.CBC(iv)).encryptor()
    ct = enc.update(padded) + enc.finalize()
    tag = hmac.new(key_hmac, ct + iv, hashlib.sha256).digest()
    data["iv"] = base64.b64encode(iv).decode()
    data["ciphertext"] = base64.b64encode(ct).decode()
    data["tag"] = base64.b64encode(tag).decode()
    return data


def decrypt(data, password):
    """The mnemonic, or None on a tag mismatch."""
    settings = kdf_settings(data)
    argon = data["key_derivation_details"]["Argon2"]
    key_aes = derive(password, argon["salt_aes"], settings)
    key_hmac = derive(password, argon["salt_hmac"], settings)
    iv = base64.b64decode(data["iv"], validate=True)
    ct = base64.b64decode(data["ciphertext"], validate=True)
    tag = base64.b64decode(data["tag"], validate=True)
    if not hmac.compare_digest(hmac.new(key_hmac, ct + iv, hashlib.sha256).digest(), tag):
        return None
    dec = Cipher(algorithms.AES(key_aes), modes.CBC(iv)).decryptor()
    padded = dec.update(ct) + dec.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return (unpadder.update(padded) + unpadder.finalize()).decode()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("encrypt")
    e.add_argument("--format", choices=["v1", "legacy"], default="v1")
    e.add_argument("--password", required=True)
    e.add_argument("--mnemonic", required=True)
    d = sub.add_parser("decrypt")
    d.add_argument("--password", required=True)
    d.add_argument("file")
    a = ap.parse_args()
    if a.cmd == "encrypt":
        print(json.dumps(encrypt(a.format, a.password, a.mnemonic), separators=(",", ":")))
        return 0
    try:
        with open(a.file, "rb") as f:
            data = json.load(f)
        out = decrypt(data, a.password)
    except (ValueError, KeyError, TypeError) as err:
        print("unreadable wallet file: %s" % err, file=sys.stderr)
        return 2
    if out is None:
        print("wrong password (HMAC tag mismatch)", file=sys.stderr)
        return 1
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
