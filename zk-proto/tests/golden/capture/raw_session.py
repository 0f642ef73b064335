#!/usr/bin/env python3
"""Hand-written ZooKeeper session over a raw socket (stdlib only).

Its ConnectRequest has NO trailing readOnly byte (44-byte payload instead of
the Java client's 45), which shows that the server then omits the readOnly
byte from its ConnectResponse (36-byte payload instead of 37).  After the
handshake it sends one getData("/golden") and a closeSession, and records all
frames in the same format as recording_proxy.py.
"""

import argparse
import os
import socket
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from recording_proxy import Recorder, describe_reply, describe_request  # noqa: E402


def ustring(s):
    raw = s.encode("utf-8")
    return struct.pack(">i", len(raw)) + raw


def frame(payload):
    return struct.pack(">i", len(payload)) + payload


def read_exact(sock, n):
    out = bytearray()
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise EOFError("connection closed after %d of %d bytes" % (len(out), n))
        out += chunk
    return bytes(out)


def read_frame(sock):
    head = read_exact(sock, 4)
    (n,) = struct.unpack(">i", head)
    if n < 0 or n > 0xFFFFF:
        raise ValueError("bad frame length %d" % n)
    return head + read_exact(sock, n)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--path", default="/golden")
    ap.add_argument("--timeout-ms", type=int, default=6000)
    args = ap.parse_args()

    rec = Recorder(args.out, [
        "zk-proto golden vectors: hand-written raw-socket session (Python, stdlib)",
        "ConnectRequest WITHOUT the trailing readOnly byte -> the server's ConnectResponse",
        "omits it too.  Then getData(%s, watch=false) with xid 1 and closeSession" % args.path,
        "(opcode -11) with xid 2.  Regenerate with capture/capture.sh.",
    ])
    pending = {}
    sock = socket.create_connection((args.host, args.port), timeout=10)
    try:
        rec.line("conn 1")

        def send(payload, first=False):
            f = frame(payload)
            note, xid, op, _ = describe_request(payload, first)
            if xid is not None:
                pending[xid] = op
            rec.frame("C", f, note)
            sock.sendall(f)

        def recv(first=False):
            f = read_frame(sock)
            rec.frame("S", f, describe_reply(f[4:], first, pending))
            return f[4:]

        # ConnectRequest: protocolVersion, lastZxidSeen, timeOut, sessionId, passwd -- no readOnly.
        connect = struct.pack(">iqiq", 0, 0, args.timeout_ms, 0) + struct.pack(">i", 16) + bytes(16)
        assert len(connect) == 44
        send(connect, first=True)
        resp = recv(first=True)
        if len(resp) != 36:
            raise SystemExit("expected a 36-byte ConnectResponse without readOnly, got %d" % len(resp))
        proto, timeout, session = struct.unpack(">iiq", resp[:16])
        if proto != 0 or timeout <= 0 or session == 0:
            raise SystemExit("bad ConnectResponse %r" % resp.hex())

        # getData(path, watch=false)
        send(struct.pack(">ii", 1, 4) + ustring(args.path) + b"\x00")
        reply = recv()
        xid, _zxid, err = struct.unpack(">iqi", reply[:16])
        if xid != 1 or err != 0:
            raise SystemExit("getData failed: xid=%d err=%d" % (xid, err))

        # closeSession
        send(struct.pack(">ii", 2, -11))
        reply = recv()
        xid, _zxid, err = struct.unpack(">iqi", reply[:16])
        if xid != 2 or err != 0:
            raise SystemExit("closeSession failed: xid=%d err=%d" % (xid, err))
        # The server closes the socket after the closeSession reply.
        try:
            rest = sock.recv(1)
        except OSError:
            rest = b""
        if rest:
            raise SystemExit("unexpected bytes after closeSession reply")
        rec.comment("server closed the connection after the closeSession reply")
    finally:
        sock.close()
        rec.close()


if __name__ == "__main__":
    main()
