"""Generates pickle_loads.txt and pickle_refused.txt with this machine's Python (stdlib only).

Run from this directory: python3 gen_pickle.py
"""

import collections
import datetime
import decimal
import os
import pickle
import sys

from common import sample_values, tag

with open("pickle_loads.txt", "w") as out:
    out.write("# <protocol>\\t<tagged value>\\t<hex of pickle.dumps(value, protocol)> ; %s\n"
              % sys.version.split()[0])
    for name, value in sample_values():
        for protocol in range(0, 6):
            out.write("%d\t%s\t%s\n" % (protocol, tag(value), pickle.dumps(value, protocol).hex()))


class Thing:
    pass


recursive = []
recursive.append(recursive)
recursive_dict = {}
recursive_dict["self"] = recursive_dict

# Pickles the reader must refuse: <expected error kind>\t<what>\t<hex>
REFUSED = [
    ("Unsupported", "datetime", datetime.datetime(2024, 1, 1)),
    ("Unsupported", "dict holding a datetime", {"_session_expiry": datetime.datetime(2024, 1, 1, 12, 30)}),
    ("Unsupported", "os.system", os.system),
    ("Unsupported", "class instance", Thing()),
    ("Unsupported", "bytes", b"abc"),
    ("Unsupported", "bytearray", bytearray(b"abc")),
    ("Unsupported", "set", {1, 2}),
    ("Unsupported", "frozenset", frozenset([1])),
    ("Unsupported", "Decimal", decimal.Decimal("1.5")),
    ("Unsupported", "OrderedDict", collections.OrderedDict(a=1)),
    ("Unsupported", "int dict key", {1: "one"}),
    ("Unsupported", "None dict key", {None: 1}),
    ("Unsupported", "tuple dict key", {(1, 2): 1}),
    ("Unsupported", "recursive list", recursive),
    ("Unsupported", "recursive dict", recursive_dict),
]

with open("pickle_refused.txt", "w") as out:
    out.write("# <expected SerializerError variant>\\t<protocol>\\t<what>\\t<hex> ; %s\n" % sys.version.split()[0])
    for kind, what, value in REFUSED:
        for protocol in range(0, 6):
            try:
                data = pickle.dumps(value, protocol)
            except Exception:
                continue
            out.write("%s\t%d\t%s\t%s\n" % (kind, protocol, what, data.hex()))
