#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Record editor for tests/integration/store_tamper.sh: plays the attacker
who can write store_dir (docs/STORE.md). Python standard library only.

  dump FILE                          JSON of the record's fields
  legacy OUT ATTRS_FROM KID WRAPPED  write a format-1 record (what the module
                                     wrote before format 2) with the attrs of
                                     record ATTRS_FROM, value WRAPPED (file)
  setattr FILE TYPE HEX              set attribute TYPE (hex) in FILE; v1: the
                                     CRC is recomputed; v2: the HMAC cannot be
  swapvalue A B                      swap wrapped/sealed values of A and B
  plant2 OUT ID ATTRS_FROM KID WRAPPED  a format-2 record with a made-up HMAC
"""
import json
import os
import struct
import sys
import zlib


def parse(buf):
    r = {}
    if buf[:8] == b"AKVOBJ1\n":
        r["format"], p = 1, 8
    elif buf[:8] == b"AKVOBJ2\n":
        r["format"], p = 2, 8
        n = buf[p]
        r["id"] = buf[p + 1:p + 1 + n].decode()
        p += 1 + n
        r["gen"] = struct.unpack_from("<Q", buf, p)[0]
        p += 8
    else:
        raise SystemExit("not a record")
    n = struct.unpack_from("<I", buf, p)[0]
    r["attrs"] = buf[p + 4:p + 4 + n]
    p += 4 + n
    for f in ("kid", "alg"):
        n = struct.unpack_from("<H", buf, p)[0]
        r[f] = buf[p + 2:p + 2 + n].decode()
        p += 2 + n
    n = struct.unpack_from("<I", buf, p)[0]
    r["wrapped"] = buf[p + 4:p + 4 + n]
    p += 4 + n
    if r["format"] == 2:
        n = struct.unpack_from("<I", buf, p)[0]
        r["sealed"] = buf[p + 4:p + 4 + n]
        p += 4 + n
    r["tail"] = buf[p:]  # CRC (v1) or HMAC (v2)
    return r


def build(r):
    kid, alg = r["kid"].encode(), r["alg"].encode()
    out = b"AKVOBJ1\n" if r["format"] == 1 else b"AKVOBJ2\n"
    if r["format"] == 2:
        rid = r["id"].encode()
        out += bytes([len(rid)]) + rid + struct.pack("<Q", r["gen"])
    out += struct.pack("<I", len(r["attrs"])) + r["attrs"]
    out += struct.pack("<H", len(kid)) + kid + struct.pack("<H", len(alg)) + alg
    out += struct.pack("<I", len(r["wrapped"])) + r["wrapped"]
    if r["format"] == 1:
        return out + struct.pack("<I", zlib.crc32(out) & 0xFFFFFFFF)
    out += struct.pack("<I", len(r["sealed"])) + r["sealed"]
    return out + r["tail"]  # the old HMAC: an attacker has no key for it


def attrs_set(blob, typ, val):
    # token/attr.h TLV: "AKA1" | u32 count | (u64 type | u32 len | bytes)*
    assert blob[:4] == b"AKA1"
    count = struct.unpack_from("<I", blob, 4)[0]
    p, items, found = 8, [], False
    for _ in range(count):
        t, n = struct.unpack_from("<QI", blob, p)
        v = blob[p + 12:p + 12 + n]
        p += 12 + n
        if t == typ:
            v, found = val, True
        items.append((t, v))
    if not found:
        items.append((typ, val))
    out = b"AKA1" + struct.pack("<I", len(items))
    for t, v in items:
        out += struct.pack("<QI", t, len(v)) + v
    return out


def rd(path):
    with open(path, "rb") as f:
        return f.read()


def wr(path, data):
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)


def main(a):
    if a[0] == "dump":
        r = parse(rd(a[1]))
        print(json.dumps({k: (v.hex() if isinstance(v, bytes) else v)
                          for k, v in r.items()}))
    elif a[0] == "legacy":
        src = parse(rd(a[2]))
        wr(a[1], build({"format": 1, "attrs": src["attrs"], "kid": a[3],
                        "alg": "RSA-OAEP-256", "wrapped": rd(a[4])}))
    elif a[0] == "setattr":
        r = parse(rd(a[1]))
        r["attrs"] = attrs_set(r["attrs"], int(a[2], 16), bytes.fromhex(a[3]))
        wr(a[1], build(r))
    elif a[0] == "swapvalue":
        x, y = parse(rd(a[1])), parse(rd(a[2]))
        for f in ("wrapped", "sealed", "kid", "alg"):
            if f in x and f in y:
                x[f], y[f] = y[f], x[f]
        wr(a[1], build(x))
        wr(a[2], build(y))
    elif a[0] == "plant2":
        src = parse(rd(a[3]))
        wr(a[1], build({"format": 2, "id": a[2], "gen": 1,
                        "attrs": src["attrs"], "kid": a[4],
                        "alg": "RSA-OAEP-256", "wrapped": rd(a[5]),
                        "sealed": os.urandom(44), "tail": os.urandom(32)}))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
