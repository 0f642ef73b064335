#!/usr/bin/env python3
"""Seeds the fuzz corpora with real frames from the golden vectors (../tests/golden/*.txt)."""
import hashlib
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
golden = os.path.join(here, "..", "tests", "golden")
corpus = os.path.join(here, "corpus")


def put(target, data):
    d = os.path.join(corpus, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)


OPS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
       100, 101, 102, 103, 104, 105, 106, 107, -10, -11, -1]

count = 0
for name in sorted(os.listdir(golden)):
    if not name.endswith(".txt"):
        continue
    streams = {"C": bytearray(), "S": bytearray()}
    first = {"C": True, "S": True}
    pending = {}
    for line in open(os.path.join(golden, name)):
        line = line.strip()
        if line.startswith("conn "):
            for k in streams:
                if streams[k]:
                    put("frame", bytes([7]) + bytes(streams[k]))
                streams[k] = bytearray()
                first[k] = True
            pending = {}
            continue
        if not line or line.startswith("#"):
            continue
        tag, hexs = line.split(" ", 1)
        frame = bytes.fromhex(hexs)
        streams[tag] += frame
        payload = frame[4:]
        count += 1
        if first[tag]:
            first[tag] = False
            put("records", bytes([0 if tag == "C" else 1]) + payload)
            continue
        xid = int.from_bytes(payload[:4], "big", signed=True)
        if tag == "C":
            put("request", payload)
            pending[xid] = int.from_bytes(payload[4:8], "big", signed=True)
        else:
            op = pending.get(xid, 0)
            pick = OPS.index(op) if op in OPS else 0
            put("reply", bytes([pick]) + payload)
    for k in streams:
        if streams[k]:
            put("frame", bytes([7]) + bytes(streams[k]))
print(f"seeded corpora from {count} golden frames", file=sys.stderr)
