#!/usr/bin/env python3
"""Recording TCP proxy for ZooKeeper client connections (stdlib only).

Sits between a ZooKeeper client and a server, splits each direction's byte
stream into frames (4-byte big-endian length prefix + payload) and appends
every complete frame, in the order the proxy received it, to the output file:

    # comment lines start with '#'
    conn 1
    C <lowercase hex of one client->server frame, length prefix included>
    S <lowercase hex of one server->client frame, length prefix included>
    conn 2
    ...

A frame is written to the file before it is forwarded, so a request line
always precedes the reply it caused.

Cut on cue: when the client sends a create (opcode 1/15/19/21) whose path
starts with --cut-prefix, the proxy forwards the server's reply to that
request, then closes both sockets.  The NEXT client connection is accepted
by the kernel but not served (not read, no upstream connection) until the
file --go-file appears (the capture program creates it after it has changed
the watched nodes through a direct, unrecorded handle).  The proxy deletes
the go file and serves the connection.  If the go file does not appear
within --hold-timeout seconds the proxy gives up and closes that connection.

The listening port is written to --port-file once the proxy listens (bind
to port 0 by default, so there is no free-port race).
"""

import argparse
import os
import signal
import socket
import sys
import threading
import time

MAX_FRAME = 16 * 1024 * 1024  # anything bigger is not a ZooKeeper frame here

OPS = {
    0: "notification", 1: "create", 2: "delete", 3: "exists", 4: "getData",
    5: "setData", 6: "getACL", 7: "setACL", 8: "getChildren", 9: "sync",
    11: "ping", 12: "getChildren2", 13: "check", 14: "multi", 15: "create2",
    16: "reconfig", 17: "checkWatches", 18: "removeWatches",
    19: "createContainer", 20: "deleteContainer", 21: "createTTL",
    22: "multiRead", 100: "auth", 101: "setWatches", 102: "sasl",
    103: "getEphemerals", 104: "getAllChildrenNumber", 105: "setWatches2",
    106: "addWatch", 107: "whoAmI", -10: "createSession", -11: "closeSession",
    -1: "error",
}
# Ops whose request record starts with a path ustring.
PATH_FIRST = {1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13, 15, 17, 18, 19, 21, 103, 104, 106}
CREATE_OPS = {1, 15, 19, 21}
EVENT_TYPES = {-1: "None", 1: "NodeCreated", 2: "NodeDeleted", 3: "NodeDataChanged",
               4: "NodeChildrenChanged"}


def i32(b, off):
    return int.from_bytes(b[off:off + 4], "big", signed=True)


def i64(b, off):
    return int.from_bytes(b[off:off + 8], "big", signed=True)


def ustring(b, off):
    n = i32(b, off)
    if n < 0:
        return None, off + 4
    return b[off + 4:off + 4 + n].decode("utf-8", "replace"), off + 4 + n


class Recorder:
    """Serialises writes of all connections into one output file."""

    def __init__(self, path, header_lines=()):
        self.lock = threading.Lock()
        self.closed = False
        self.f = open(path, "w", encoding="ascii")
        for line in header_lines:
            self.comment(line)

    def comment(self, text):
        with self.lock:
            if self.closed:
                return
            for line in str(text).splitlines() or [""]:
                self.f.write(("# " + line).rstrip() + "\n")
            self.f.flush()

    def line(self, text):
        with self.lock:
            if self.closed:
                return
            self.f.write(text + "\n")
            self.f.flush()

    def frame(self, direction, frame, note=None):
        with self.lock:
            if self.closed:
                return
            if note:
                self.f.write("# " + note + "\n")
            self.f.write(direction + " " + frame.hex() + "\n")
            self.f.flush()

    def close(self):
        with self.lock:
            self.closed = True
            self.f.close()


def describe_request(payload, first):
    """Return (note, xid, opcode, path) for a client->server payload."""
    if first:
        extra = "with" if len(payload) > 44 else "WITHOUT"
        return ("ConnectRequest (%d bytes, %s trailing readOnly byte)" % (len(payload), extra),
                None, None, None)
    if len(payload) < 8:
        return "short client frame", None, None, None
    xid, op = i32(payload, 0), i32(payload, 4)
    path = None
    if op in PATH_FIRST and len(payload) >= 12:
        try:
            path, _ = ustring(payload, 8)
        except Exception:  # pragma: no cover - annotation only
            path = None
    note = "xid=%d %s(%d)" % (xid, OPS.get(op, "?"), op)
    if path is not None:
        note += " " + path
    return note, xid, op, path


def describe_reply(payload, first, pending):
    if first:
        extra = "with" if len(payload) > 36 else "WITHOUT"
        sid = i64(payload, 8) if len(payload) >= 16 else 0
        return "ConnectResponse (%d bytes, %s trailing readOnly byte) session=0x%x" % (
            len(payload), extra, sid & 0xFFFFFFFFFFFFFFFF)
    if len(payload) < 16:
        return "short server frame"
    xid, zxid, err = i32(payload, 0), i64(payload, 4), i32(payload, 12)
    if xid == -1:
        t, s = i32(payload, 16), i32(payload, 20)
        p, _ = ustring(payload, 24)
        return "notification xid=-1 zxid=%d %s(%d) state=%d %s" % (
            zxid, EVENT_TYPES.get(t, "?"), t, s, p)
    op = pending.get(xid)
    name = OPS.get(op, "?") if op is not None else "?"
    return "reply xid=%d (%s) zxid=0x%x err=%d" % (xid, name, zxid, err)


class Connection:
    def __init__(self, proxy, num, client, upstream, after_cut):
        self.proxy = proxy
        self.num = num
        self.client = client
        self.upstream = upstream
        self.after_cut = after_cut
        self.pending = {}          # xid -> opcode, for annotating replies
        self.cut_xid = None        # xid of the create that triggers the cut
        self.done = threading.Event()
        self.dead = False          # once cut/closed, nothing more is recorded
        self.lock = threading.Lock()

    def run(self):
        rec = self.proxy.rec
        rec.line("conn %d" % self.num)
        if self.after_cut:
            rec.comment("reconnect after the proxy cut the previous connection "
                        "(expect auth, then setWatches/setWatches2)")
        t1 = threading.Thread(target=self.pump, args=(self.client, self.upstream, "C"),
                              daemon=True)
        t2 = threading.Thread(target=self.pump, args=(self.upstream, self.client, "S"),
                              daemon=True)
        t1.start()
        t2.start()
        t1.join()
        t2.join()

    def shutdown(self):
        with self.lock:
            self.dead = True
        for s in (self.client, self.upstream):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass

    def pump(self, src, dst, direction):
        rec = self.proxy.rec
        buf = bytearray()
        first = True
        raw = False
        try:
            while True:
                try:
                    data = src.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    break
                if raw:
                    dst.sendall(data)
                    continue
                buf += data
                while len(buf) >= 4:
                    n = i32(buf, 0)
                    if n < 0 or n > MAX_FRAME:
                        rec.comment("conn %d %s: bad length prefix 0x%s, passing the rest "
                                    "through unrecorded" % (self.num, direction, buf[:4].hex()))
                        raw = True
                        dst.sendall(bytes(buf))
                        buf.clear()
                        break
                    if len(buf) < 4 + n:
                        break
                    frame = bytes(buf[:4 + n])
                    del buf[:4 + n]
                    payload = frame[4:]
                    cut_after = False
                    with self.lock:
                        if self.dead:
                            return
                        if direction == "C":
                            note, xid, op, path = describe_request(payload, first)
                            if xid is not None:
                                self.pending[xid] = op
                                if (op in CREATE_OPS and path is not None
                                        and path.startswith(self.proxy.cut_prefix)):
                                    self.cut_xid = xid
                                    note += "  <- cue: the proxy cuts the connection after its reply"
                        else:
                            note = describe_reply(payload, first, self.pending)
                            if not first and len(payload) >= 4:
                                xid = i32(payload, 0)
                                if self.cut_xid is not None and xid == self.cut_xid:
                                    cut_after = True
                        rec.frame(direction, frame, note if self.proxy.annotate else None)
                        if cut_after:
                            # Nothing after this reply is recorded or forwarded.
                            self.dead = True
                            self.proxy.arm_hold()
                            rec.comment("proxy cut: the reply above is forwarded, then both "
                                        "sockets of conn %d are closed" % self.num)
                    first = False
                    dst.sendall(frame)
                    if cut_after:
                        self.shutdown()
                        return
        except OSError:
            pass
        finally:
            with self.lock:
                was_dead = self.dead
            if not was_dead:
                if buf:
                    rec.comment("conn %d %s: %d trailing bytes of an incomplete frame at EOF"
                                % (self.num, direction, len(buf)))
                # Propagate the half-close to the other side.
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass


class Proxy:
    def __init__(self, args):
        self.args = args
        self.cut_prefix = args.cut_prefix
        self.annotate = not args.no_annotate
        self.go_file = args.go_file
        self.hold = threading.Event()
        self.rec = Recorder(args.out, args.comment or ())
        self.count = 0

    def arm_hold(self):
        self.hold.set()

    def serve(self):
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((self.args.listen_host, self.args.listen_port))
        ls.listen(16)
        port = ls.getsockname()[1]
        if self.args.port_file:
            tmp = self.args.port_file + ".tmp"
            with open(tmp, "w") as f:
                f.write("%d\n" % port)
            os.replace(tmp, self.args.port_file)
        while True:
            client, _ = ls.accept()
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            after_cut = self.hold.is_set()
            if after_cut:
                if not self.wait_go():
                    self.rec.comment("go file did not appear within %.1fs; connection dropped"
                                     % self.args.hold_timeout)
                    client.close()
                    continue
                self.hold.clear()
            try:
                upstream = socket.create_connection((self.args.upstream_host,
                                                     self.args.upstream_port), timeout=5)
                upstream.settimeout(None)
                upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError as e:
                self.rec.comment("upstream connect failed: %s" % e)
                client.close()
                continue
            self.count += 1
            conn = Connection(self, self.count, client, upstream, after_cut)
            threading.Thread(target=conn.run, daemon=True).start()

    def wait_go(self):
        if not self.go_file:
            return True
        deadline = time.monotonic() + self.args.hold_timeout
        while time.monotonic() < deadline:
            if os.path.exists(self.go_file):
                os.remove(self.go_file)
                return True
            time.sleep(0.01)
        return False


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--listen-host", default="127.0.0.1")
    ap.add_argument("--listen-port", type=int, default=0)
    ap.add_argument("--port-file", help="write the listening port here once listening")
    ap.add_argument("--upstream-host", default="127.0.0.1")
    ap.add_argument("--upstream-port", type=int, required=True)
    ap.add_argument("--out", required=True, help="vector file to write")
    ap.add_argument("--cut-prefix", default="/golden/cut-now")
    ap.add_argument("--go-file", help="after a cut, serve the next connection only once "
                                      "this file exists (it is then deleted)")
    ap.add_argument("--hold-timeout", type=float, default=10.0)
    ap.add_argument("--comment", action="append", help="header comment line (repeatable)")
    ap.add_argument("--no-annotate", action="store_true",
                    help="do not write a decoded '# ...' note before each frame")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    proxy = Proxy(args)
    try:
        proxy.serve()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        proxy.rec.close()


if __name__ == "__main__":
    main()
