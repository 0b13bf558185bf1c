"""Generates msgpack_dumps.txt with Python's `msgpack` package (not in the stdlib):

    python3 -m venv /tmp/venv-msgpack && /tmp/venv-msgpack/bin/pip install msgpack
    /tmp/venv-msgpack/bin/python gen_msgpack.py
"""

import sys

import msgpack

from common import sample_values, tag

with open("msgpack_dumps.txt", "w") as out:
    out.write("# <tagged value>\\t<hex of msgpack.packb(value, use_bin_type=True)> ; msgpack %s, Python %s\n"
              % (msgpack.version, sys.version.split()[0]))
    for name, value in sample_values():
        try:
            packed = msgpack.packb(value, use_bin_type=True)
        except OverflowError:
            continue  # ints beyond 64 bits: Python's msgpack cannot pack them
        out.write("%s\t%s\n" % (tag(value), packed.hex()))
