"""Generates json_dumps.txt, json_loads.txt and float_repr.txt with this machine's Python.

Run from this directory: python3 gen_json.py
"""

import json
import random
import struct
import sys

from common import sample_values, tag

sys.set_int_max_str_digits(4300)

with open("json_dumps.txt", "w") as out:
    out.write("# <tagged value>\\t<json.dumps(value, separators=(',', ':'))> ; %s\n" % sys.version.split()[0])
    for name, value in sample_values():
        out.write("%s\t%s\n" % (tag(value), json.dumps(value, separators=(",", ":"))))

LOADS_INPUTS = [
    b' {"a" : 1 , "b":[ 1 , 2 ] } \n', b'\t\n\r 1 \t', b'{"a":1,"b":2,"a":3}', b'{"a":{"x":1},"a":[]}',
    b'"caf\xe9"', b'"\xff\x80\xa0"', b'"\xc3\xa9"', b'"\x7f"', b'[1.5e3,1E400,-1e-400,0.0,-0,1e5,-1E+2,1e-2,0e0]',
    b'NaN', b'[Infinity,-Infinity,NaN]', b'123456789012345678901234567890', b'-123456789012345678901234567890',
    b'9223372036854775807', b'9223372036854775808', b'-9223372036854775808', b'-9223372036854775809',
    b'999999999999999999', b'1000000000000000000', b'"\\ud83d\\ude00"', b'"\\uD83D\\uDE00"', b'"\\/\\b\\f\\n\\r\\t\\"\\\\"',
    b'"\\u00E9\\u00e9\\u0000"', b'[]', b'{}', b'[[],{}]', b'""', b'null', b'true', b'false',
    b'0.1', b'-0.0', b'1.7976931348623157e309', b'2.4703282292062328e-324', b'2.4703282292062327e-324',
    b'7.4109846876186982e-324', b'0.30000000000000004', b'1e23', b'8.98846567431158e307',
    b'1' * 4300, b'-' + b'9' * 4300, b'1' * 4301, b'-' + b'1' * 4301,
    # Inputs Python rejects.
    b'', b' ', b'[1,]', b'{"a":1,}', b'[1 2]', b"{'a':1}", b'"\t"', b'"\n"', b'"\x00"', b'\x00', b'01', b'-01',
    b'1.', b'.5', b'+1', b'-', b'1e', b'1e+', b'1.e5', b'[1]x', b'tru', b'nul', b'"abc', b'"\\x41"', b'"\\u12"',
    b'"\\u12g4"', b'"\\', b'"\\"', b'\xef\xbb\xbf{}', b'{"a" 1}', b'[', b'{', b'{"a":}', b'{"a"}', b'{1:2}',
    b'-Infinityx', b'-NaN', b'infinity', b'nan', b'inf', b'\x0c1', b'\xa01', b'[1,,2]', b'[,1]', b'{,}',
    b'"a" "b"', b'1 2', b'True', b'None', b'[1]]', b'{}}', b'"\\ud800"', b'"\\udc00"', b'"\\ud800\\u0041"',
    b'"\\ud83d\\ud83d"', b'"\\ude00\\ud83d"', b'"x\\ud83d"',
]

with open("json_loads.txt", "w") as out:
    out.write("# <hex input bytes>\\t<tagged json.loads(input.decode('latin-1')) | ERROR | SURROGATE> ; %s\n"
              % sys.version.split()[0])
    for raw in LOADS_INPUTS:
        try:
            value = json.loads(raw.decode("latin-1"))
        except (ValueError, RecursionError):
            result = "ERROR"
        else:
            try:
                json.dumps(value).encode("utf-8")
                tag(value).encode("utf-8")
                str(value).encode("utf-8")
                result = tag(value)
            except UnicodeEncodeError:
                result = "SURROGATE"  # Python kept a lone surrogate; a Rust String cannot.
        out.write("%s\t%s\n" % (raw.hex(), result))

rng = random.Random(20261103)
floats = [0.0, -0.0, 1.0, 0.1, 1e16, 1e15, 9999999999999998.0, 1e-4, 1e-5, 0.00012345, 5e-324,
          2.2250738585072014e-308, 1.7976931348623157e308, 9007199254740992.0, 9007199254740993.0,
          123456789012345678.0, 0.3, 2 / 3, 1e22, 1e23, 100.0, 1234.5, 1e-7, 4.35, 0.000099999]
for exp in range(-30, 31):
    floats.append(10.0 ** exp)
    floats.append(1.5 * 10.0 ** exp)
    floats.append(-(7.0 / 3.0) * 10.0 ** exp)
while len(floats) < 3000:
    kind = rng.random()
    if kind < 0.6:
        bits = rng.getrandbits(64)
        f = struct.unpack(">d", bits.to_bytes(8, "big"))[0]
        if f != f or f in (float("inf"), float("-inf")):
            continue
    elif kind < 0.8:
        f = round(rng.uniform(-1e6, 1e6), rng.randint(0, 8))
    else:
        f = rng.uniform(-1, 1) * 10.0 ** rng.randint(-20, 20)
    floats.append(f)

with open("float_repr.txt", "w") as out:
    out.write("# <IEEE 754 bits, hex big-endian> <repr(float)> ; %s\n" % sys.version.split()[0])
    for f in floats:
        out.write("%s %s\n" % (struct.pack(">d", f).hex(), repr(f)))
