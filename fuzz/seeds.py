#!/usr/bin/env python3
"""Builds the seed corpus of every fuzz target from the committed fixtures (stdlib only).

    python3 fuzz/seeds.py OUT_DIR      # writes OUT_DIR/<target>/<sha1 of the input>

Seeds come from the real-Django fixtures (fixtures/django/*.json: tokens, serializer bytes,
session keys, pickles Django's cache wrote) and the serializer tables
(session-core/tests/serializers_data/), each prefixed with the selector byte that sends it down the
path it exercises (see each target's header and fuzz/src/lib.rs). Nothing is committed: the corpus
is rebuilt from the fixtures, so it follows them.
"""

import base64
import hashlib
import json
import os
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "fixtures", "django")
TABLES = os.path.join(ROOT, "session-core", "tests", "serializers_data")

# codec_for(selector & 0x0f) = serializer * 3 + variant (current, accept-legacy, sha1).
SERIALIZER_INDEX = {"json": 0, "msgpack": 1, "pickle": 2}
NOW = 1_700_000_000


def walk_strings(node):
    if isinstance(node, dict):
        for value in node.values():
            yield from walk_strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk_strings(value)
    elif isinstance(node, str):
        yield node


def load(name):
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as f:
        return json.load(f)


def table_rows(name):
    with open(os.path.join(TABLES, name), encoding="utf-8") as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            yield line.rstrip("\n").split("\t")


def main(out):
    seeds = {}

    def add(target, data):
        seeds.setdefault(target, set()).add(bytes(data))

    signing = load("signing-vectors.json")
    cases = signing["cases"]
    tokens = [c["token"] for c in cases if isinstance(c.get("token"), str)]
    db_rows = load("db-rows.json")
    file_cookie = load("file-cookie-vectors.json")
    cache = load("cache-sessions.json")
    stored = [s for s in walk_strings([db_rows, file_cookie]) if s.count(":") >= 2 and " " not in s]
    keys = [s for s in walk_strings([db_rows, file_cookie, cache]) if len(s) == 32 and s.isalnum()]

    json_inputs = [bytes.fromhex(row[0]) for row in table_rows("json_loads.txt")]
    json_inputs += [row[1].encode() for row in table_rows("json_dumps.txt")]
    msgpack_inputs = [bytes.fromhex(row[1]) for row in table_rows("msgpack_dumps.txt")]
    pickle_inputs = [bytes.fromhex(row[2]) for row in table_rows("pickle_loads.txt")]
    pickle_inputs += [bytes.fromhex(row[3]) for row in table_rows("pickle_refused.txt")]
    pickle_inputs += [base64.b64decode(e["value_b64"]) for e in cache["django_wrote"] if "value_b64" in e]
    serialized = {"json": json_inputs, "msgpack": msgpack_inputs, "pickle": pickle_inputs}
    for case in cases:
        if case.get("serialized_hex") and case.get("serializer") in serialized:
            serialized[case["serializer"]].append(bytes.fromhex(case["serialized_hex"]))

    for data in json_inputs:
        add("json", data)
    for data in msgpack_inputs:
        add("msgpack", data)
    for data in pickle_inputs:
        add("pickle", data)

    # signed_decode: whole tokens (mode 0) under each codec; serializer bytes (mode 2), plain and
    # compressed; payloads (mode 1) and zlib streams (mode 3) from the tokens.
    def token_codec(case):
        legacy = case.get("kind") in ("legacy_session", "sha1_dumps", "cross_version")
        return SERIALIZER_INDEX.get(case.get("serializer"), 0) * 3 + (1 if legacy else 0)

    token_seeds = [(token_codec(c), c["token"]) for c in cases if isinstance(c.get("token"), str)]
    token_seeds += [(0, s) for s in stored]
    for codec, token in token_seeds:
        add("signed_decode", bytes([codec]) + token.encode())
        payload = token.rsplit(":", 2)[0]
        add("signed_decode", bytes([0x10 | codec]) + payload.encode())
        if payload.startswith("."):
            try:
                raw = base64.urlsafe_b64decode(payload[1:] + "=" * (-len(payload[1:]) % 4))
                add("signed_decode", bytes([0x30 | codec]) + raw)
            except ValueError:
                pass
    for name, inputs in serialized.items():
        for data in inputs:
            for variant in range(3):
                codec = SERIALIZER_INDEX[name] * 3 + variant
                add("signed_decode", bytes([(0x60 if variant else 0x20) | codec]) + data)

    # timestamp_signer: selector, timestamp, now, max age, data.
    header = lambda selector, ts, now, age: bytes([selector]) + struct.pack("<qqq", ts, now, age)
    for token in tokens[::4]:
        add("timestamp_signer", header(0, 0, NOW, 0) + token.encode())
        add("timestamp_signer", header(4, 0, NOW + 100, 100) + token.encode())
    for ts in (0, NOW, -1, -(2**63), 2**63 - 1, 253_402_300_800):
        add("timestamp_signer", header(1, ts, NOW, 0) + b"value")
        add("timestamp_signer", header(5, ts, NOW, 60) + b"value")
        add("timestamp_signer", header(2 | 8, ts, NOW, 0) + b'{"a":1}' * 8)
    for stamp in ("1r31eq", "-1", "-", "", "zzzzzzzzzzzz", "AzL8n0Y58m7", "AzL8n0Y58m8", "-AzL8n0Y58m8"):
        add("timestamp_signer", header(3, 0, NOW, 0) + f"value:{stamp}".encode())
        add("timestamp_signer", header(7, 0, NOW, 5) + f"value:{stamp}".encode())

    # legacy_decode: legacy tokens (mode 0), serializer bytes round-tripped (modes 1, 2).
    for case in cases:
        if case.get("kind") == "legacy_session" and case.get("token"):
            add("legacy_decode", b"\x00" + case["token"].encode())
    for name, inputs in serialized.items():
        for data in inputs[:40]:
            add("legacy_decode", b"\x01" + data)
            for variant in range(3):
                codec = SERIALIZER_INDEX[name] * 3 + variant
                add("legacy_decode", bytes([2 | codec << 2]) + data)

    # Cookies: headers as browsers send them, quoted values, signed-cookie tokens.
    cookie_tokens = [c["token"] for c in cases if c.get("kind") == "signed_cookie" and c.get("token")]
    headers = [
        "sessionid=abcdefgh12345678abcdefgh12345678",
        "csrftoken=x; sessionid=abc; sessionid=def",
        'sessionid="a\\"b\\073c"; other="\\377"',
        "a=b=c; ; =; unnamed; \x1csessionid\x1f=v",
        "sessionid=k\xe9y12345",
    ] + [f"sessionid={t}" for t in cookie_tokens]
    for h in headers:
        add("cookie_parse", h.encode("latin-1"))
        add("middleware", b"\x00" + h.encode("latin-1"))
        add("middleware", b"\x03" + h.encode("latin-1"))
    for name in ("json",):
        for data in serialized[name][:60]:
            add("middleware", b"\x05" + data)
            add("middleware", b"\x0f" + data)

    # Keys: real ones, and the shapes a path traversal would take.
    for key in keys + [
        "../../etc/passwd",
        "/etc/passwd",
        "abcdefgh/../../x",
        "..\\..\\windows",
        "abcdefgh\x00ijkl",
        "ABCDEFGHIJKL",
        "a" * 209,
        "a" * 210,
        "sessionidabcdefgh12345678_out_abc",
    ]:
        add("file_store_keys", b"\x00" + key.encode())
        add("file_store_keys", b"\x01" + key.encode())

    for target, inputs in seeds.items():
        directory = os.path.join(out, target)
        os.makedirs(directory, exist_ok=True)
        for data in inputs:
            with open(os.path.join(directory, hashlib.sha1(data).hexdigest()), "wb") as f:
                f.write(data)
        print(f"{target}: {len(inputs)} seeds", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
