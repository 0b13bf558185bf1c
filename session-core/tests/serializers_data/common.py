"""Shared helpers for the serializer test-table generators (stdlib only).

The tables are committed; rerun the generators only to extend them. Values are written in a small
tagged notation that the Rust tests parse independently of any serializer under test:

    n                None          t / f           True / False
    i<decimal>;      int           d<16 hex>       float, by its IEEE 754 bits (big-endian)
    s<hex>;          str, as the hex of its UTF-8 bytes
    l<count>;<items> list (tuples too)
    m<count>;<key><value>...  dict, keys as s-tokens, in order
"""

import struct


def tag(obj):
    if obj is None:
        return "n"
    if obj is True:
        return "t"
    if obj is False:
        return "f"
    if isinstance(obj, int):
        return "i%d;" % obj
    if isinstance(obj, float):
        return "d" + struct.pack(">d", obj).hex()
    if isinstance(obj, str):
        return "s" + obj.encode("utf-8").hex() + ";"
    if isinstance(obj, (list, tuple)):
        return "l%d;" % len(obj) + "".join(tag(x) for x in obj)
    if isinstance(obj, dict):
        return "m%d;" % len(obj) + "".join(tag(k) + tag(v) for k, v in obj.items())
    raise TypeError(type(obj))


def sample_values():
    """(description, value) pairs covering every kind of session value."""
    shared_list = [1, 2, "three"]
    shared_str = "".join(["shared", "-", "string"])  # built at run time, so one object
    nested = {"level": 1}
    for i in range(2, 12):
        nested = {"level": i, "child": nested, "items": [i, None, [i * 1.5]]}
    values = [
        ("empty dict", {}),
        ("none", None),
        ("true", True),
        ("false", False),
        ("zero", 0),
        ("small ints", [1, -1, 127, 128, -32, -33, 255, 256, -128, -129, 65535, 65536,
                        -32768, -32769, 2**31 - 1, 2**31, -2**31, -2**31 - 1, 2**32 - 1, 2**32,
                        2**63 - 1, -2**63]),
        ("u64 max", 2**64 - 1),
        ("2**64", 2**64),
        ("-2**64", -2**64),
        ("10**40", 10**40),
        ("-10**40", -10**40),
        ("2**127 and neighbours", [2**127 - 1, 2**127, -2**127, 2**128 - 1, 2**128]),
        ("huge int", 3**2000),
        ("floats", [0.0, -0.0, 1.0, -1.5, 0.1, 1e16, 1e15, 1e-5, 1e-4, 5e-324, 1.7976931348623157e308,
                    9007199254740992.0, 123456.789, 2.5e-10]),
        ("float specials", [float("nan"), float("inf"), float("-inf")]),
        ("empty string", ""),
        ("ascii", "hello world"),
        ("escapes", "quote\" backslash\\ slash/ <>&' \n\r\t\b\f \x00\x01\x1f \x7f"),
        ("latin-1", "café ÿ \x80 \xa0"),
        ("bmp", "’ € 中文 \ufeff \uffff"),
        ("astral", "😀 𝄞 \U0010ffff"),
        ("str 31/32 bytes", ["a" * 31, "b" * 32]),
        ("str 255/256 bytes", ["c" * 255, "d" * 256]),
        ("empty list", []),
        ("tuple", (1, "two", 3.0)),
        ("nested lists", [[1, [2, [3, [4, []]]]], []]),
        ("dict order", {"z": 1, "a": 2, "m": 3}),
        ("empty-string key", {"": "empty key", "x": {"": {}}}),
        ("unicode keys", {"clé": 1, "😀": 2, "\n": 3}),
        ("session-like", {"_auth_user_id": "42", "_auth_user_backend": "django.contrib.auth.backends.ModelBackend",
                          "_auth_user_hash": "f" * 64, "_session_expiry": 1209600,
                          "cart": {"items": [{"sku": "A1", "qty": 2, "price": 9.99}], "total": 19.98},
                          "flags": [True, False, None]}),
        ("deep nesting", nested),
        ("15 and 16 element list", [list(range(15)), list(range(16))]),
        ("15 and 16 entry dict", [{str(i): i for i in range(15)}, {str(i): i for i in range(16)}]),
        ("2001 element list (batches of 1000, then 1)", [i % 7 for i in range(2001)]),
        ("1001 entry dict (a batch of 1000, then 1)", {"%x" % i: i % 3 for i in range(1001)}),
        ("shared list", {"a": shared_list, "b": shared_list, "c": [shared_list]}),
        ("shared str", [shared_str, shared_str, {shared_str: shared_str}]),
        ("repeated keys", [{"id": i, "name": "n%d" % i} for i in range(5)]),
    ]
    return values
