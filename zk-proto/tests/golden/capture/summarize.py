#!/usr/bin/env python3
"""Parse golden vector files, check their consistency, print a per-opcode table.

Checks: every line is a comment, `conn N` (N = 1, 2, ... in order) or a
`C`/`S` frame in lowercase hex whose 4-byte length prefix equals the payload
length; each connection starts with a ConnectRequest / ConnectResponse; every
normal reply's xid is the oldest outstanding request xid of that connection
(pings xid -2, auth xid -4 and notifications xid -1 are outside that queue).
Exit status 1 on any violation.
"""

import collections
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from recording_proxy import EVENT_TYPES, OPS, i32, i64  # noqa: E402

ERRORS = {0: "OK", -2: "RUNTIMEINCONSISTENCY", -6: "UNIMPLEMENTED", -8: "BADARGUMENTS",
          -101: "NONODE", -102: "NOAUTH", -103: "BADVERSION", -108: "NOCHILDRENFOREPHEMERALS",
          -110: "NODEEXISTS", -111: "NOTEMPTY", -121: "NOWATCHER", -123: "RECONFIGDISABLED"}


def parse(path):
    conns = []
    with open(path, encoding="ascii") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            if line.startswith("conn "):
                n = int(line[5:])
                if n != len(conns) + 1:
                    raise ValueError("%s:%d: conn %d out of order" % (path, lineno, n))
                conns.append([])
                continue
            d, _, hx = line.partition(" ")
            if d not in ("C", "S") or not hx or hx != hx.lower():
                raise ValueError("%s:%d: bad line %r" % (path, lineno, line[:40]))
            if not conns:
                raise ValueError("%s:%d: frame before any conn line" % (path, lineno))
            fr = bytes.fromhex(hx)
            if len(fr) < 4 or i32(fr, 0) != len(fr) - 4:
                raise ValueError("%s:%d: length prefix mismatch" % (path, lineno))
            conns[-1].append((d, fr[4:], lineno))
    return conns


def analyse(path):
    conns = parse(path)
    req = collections.Counter()
    rep = collections.Counter()
    errs = collections.defaultdict(collections.Counter)
    events = collections.Counter()
    extra = collections.Counter()
    problems = []
    for ci, frames in enumerate(conns, 1):
        first_c = first_s = True
        queue = collections.deque()
        for d, p, lineno in frames:
            if d == "C":
                if first_c:
                    first_c = False
                    extra["ConnectRequest %d bytes" % len(p)] += 1
                    continue
                xid, op = i32(p, 0), i32(p, 4)
                req[op] += 1
                if op == 11 and xid != -2:
                    problems.append("line %d: ping with xid %d" % (lineno, xid))
                if op == 100 and xid != -4:
                    problems.append("line %d: auth with xid %d" % (lineno, xid))
                if xid not in (-2, -4):
                    queue.append((xid, op))
            else:
                if first_s:
                    first_s = False
                    extra["ConnectResponse %d bytes" % len(p)] += 1
                    continue
                xid, zxid, err = i32(p, 0), i64(p, 4), i32(p, 12)
                if xid == -1:
                    events[(i32(p, 16), i32(p, 20))] += 1
                    rep[0] += 1
                    continue
                if xid == -2:
                    rep[11] += 1
                    errs[11][err] += 1
                    continue
                if xid == -4:
                    rep[100] += 1
                    errs[100][err] += 1
                    continue
                if not queue:
                    problems.append("line %d: reply xid %d with nothing outstanding" % (lineno, xid))
                    continue
                want, op = queue.popleft()
                if want != xid:
                    problems.append("line %d: reply xid %d, expected %d" % (lineno, xid, want))
                rep[op] += 1
                errs[op][err] += 1
        if queue:
            extra["requests without reply (conn %d)" % ci] += len(queue)
    return conns, req, rep, errs, events, extra, problems


def table(path):
    conns, req, rep, errs, events, extra, problems = analyse(path)
    out = []
    out.append("File `%s`: %d connection(s), %d frames." % (
        os.path.basename(path), len(conns), sum(len(c) for c in conns)))
    out.append("")
    out.append("| opcode | name | C frames | S frames | reply err codes (count) |")
    out.append("|---:|---|---:|---:|---|")
    for op in sorted(set(req) | set(rep), key=lambda o: (o < 0, abs(o))):
        e = ", ".join("%d %s (%d)" % (k, ERRORS.get(k, ""), v) for k, v in sorted(errs[op].items(),
                                                                              key=lambda kv: -kv[0]))
        if op == 0:
            e = ", ".join("%s/state %d (%d)" % (EVENT_TYPES.get(t, t), s, v)
                          for (t, s), v in sorted(events.items()))
        out.append("| %d | %s | %d | %d | %s |" % (op, OPS.get(op, "?"), req[op], rep[op], e))
    for k, v in sorted(extra.items()):
        out.append("| — | %s | | | %d |" % (k, v))
    return "\n".join(out), problems


def main():
    bad = False
    for path in sys.argv[1:]:
        text, problems = table(path)
        print(text)
        print()
        for p in problems:
            print("PROBLEM %s: %s" % (path, p), file=sys.stderr)
            bad = True
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
