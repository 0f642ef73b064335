#!/usr/bin/env python3
"""Records the server-to-server traffic of a real Apache ZooKeeper 3.8 ensemble and writes
the zk-proto quorum golden fixtures (zk-proto/tests/golden/quorum/*.txt).

Re-run (from anywhere; ~1 minute; needs java 17, python3 stdlib, the Debian jars):

    python3 zk-proto/tests/golden/quorum/capture/capture.py

How: 3 voters + 1 observer on 127.0.0.1. Every member gets its own zoo.cfg in which its
own `server.N` line has its real ports and every *other* member's line points at a
recording proxy port private to that ordered pair (member i reaches member j only through
proxy (i, j)), so every quorum and election connection passes a proxy that records both
directions. Apache accepts differing per-member server lines as long as the config
versions agree (reconfig is off, so the config text in NEWLEADER and notifications is
logged but not applied). One catch: a server that receives an election connection from a
smaller sid drops it and dials back the address *announced in the initial message* (its
real election port), which would bypass the proxy; the proxy therefore records the
initial message as sent and forwards it with the address replaced by the proxy port of
the reverse pair. The fixtures hold the bytes as Apache sent them.

Scenario (QuorumSession.java drives the official Java client):
  start -> election, discovery, DIFF sync of all members
  phase1 through follower A/B: creates (persistent, ephemeral, sequential, container,
         TTL), setData, setACL, a NODEEXISTS error txn, a multi, a multi failing in its
         second of three ops, delete, sync,
         a second session closed with its ephemeral, a session moved between followers
         (REVALIDATE)
  leader-stalled: the leader's packets to its learners are dropped by the proxies, a client
         writes through the leader, the leader logs that proposal
  kill -9 the leader -> election among the rest without that proposal; restart it -> it
         rejoins and must truncate it (TRUNC)
  phase2: writes through the surviving session and through the rejoined member; the
         emptied container is deleted by the leader's reaper (deleteContainer)
  wipe the observer's data and restart it -> SNAP
  stop everything (SIGTERM), then write the fixtures and README.md's table.
"""

import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.dirname(HERE)
CLASSPATH = os.environ.get(
    "ZK_CLASSPATH", "/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar"
)
JAVA = os.environ.get("JAVA", "java")
VOTERS = [1, 2, 3]
OBSERVERS = [4]
MEMBERS = VOTERS + OBSERVERS
TICK_MS = 1000

PACKET_NAMES = {
    1: "REQUEST", 2: "PROPOSAL", 3: "ACK", 4: "COMMIT", 5: "PING", 6: "REVALIDATE",
    7: "SYNC", 8: "INFORM", 9: "COMMITANDACTIVATE", 10: "NEWLEADER", 11: "FOLLOWERINFO",
    12: "UPTODATE", 13: "DIFF", 14: "TRUNC", 15: "SNAP", 16: "OBSERVERINFO",
    17: "LEADERINFO", 18: "ACKEPOCH", 19: "INFORMANDACTIVATE",
}
STATES = {0: "LOOKING", 1: "FOLLOWING", 2: "LEADING", 3: "OBSERVING"}
OPS = {-11: "closeSession", -10: "createSession", -1: "error", 1: "create", 2: "delete",
       5: "setData", 7: "setACL", 9: "sync", 13: "check", 14: "multi", 15: "create2",
       19: "createContainer", 20: "deleteContainer", 21: "createTTL", 3: "exists",
       4: "getData", 8: "getChildren", 11: "ping"}


def log(*a):
    print("[capture]", *a, file=sys.stderr, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ---- recording proxies ------------------------------------------------------------------

class Conn:
    def __init__(self, cid, kind, src, dst, phase):
        self.cid, self.kind, self.src, self.dst, self.phase = cid, kind, src, dst, phase
        self.fwd = bytearray()   # src -> dst, as sent by src
        self.back = bytearray()  # dst -> src


class Recorder:
    def __init__(self):
        self.lock = threading.Lock()
        self.conns = []
        self.phase = "start"
        self.listeners = []
        self.pumps = []
        # A sid whose quorum-port output (leader -> learners) is recorded but not delivered.
        self.blackhole = None

    def new_conn(self, kind, src, dst):
        with self.lock:
            c = Conn(len(self.conns) + 1, kind, src, dst, self.phase)
            self.conns.append(c)
            return c


def read_initial(sock):
    """Reads one election initial message; returns its bytes (b'' on EOF)."""
    buf = b""

    def need(n):
        nonlocal buf
        while len(buf) < n:
            chunk = sock.recv(65536)
            if not chunk:
                return False
            buf += chunk
        return True

    if not need(8):
        return buf, b""
    first = struct.unpack(">q", buf[:8])[0]
    if first >= 0:
        return buf[:8], buf[8:]
    if not need(20):
        return buf, b""
    n = struct.unpack(">i", buf[16:20])[0]
    if not 1 <= n <= 2048 or not need(20 + n):
        return buf, b""
    return buf[:20 + n], buf[20 + n:]


def pump(src_sock, dst_sock, record, drop=lambda: False):
    try:
        while True:
            chunk = src_sock.recv(65536)
            if not chunk:
                break
            record.extend(chunk)
            if not drop():
                dst_sock.sendall(chunk)
    except OSError:
        pass
    for s in (src_sock, dst_sock):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()


def serve_proxy(rec, lsock, kind, src, dst, target_port, rewrite_port):
    while True:
        try:
            client, _ = lsock.accept()
        except OSError:
            return
        try:
            upstream = socket.create_connection(("127.0.0.1", target_port), timeout=5)
            upstream.settimeout(None)
        except OSError:
            client.close()
            continue
        conn = rec.new_conn(kind, src, dst)
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def forward(client=client, upstream=upstream, conn=conn):
            if kind == "election":
                try:
                    initial, rest = read_initial(client)
                except OSError:
                    initial, rest = b"", b""
                conn.fwd.extend(initial)
                conn.fwd.extend(rest)
                out = initial
                if len(initial) > 20 and struct.unpack(">q", initial[:8])[0] < 0:
                    sid = struct.unpack(">q", initial[8:16])[0]
                    assert sid == src, f"initial message from s{src} names sid {sid}"
                    addr = f"127.0.0.1:{rewrite_port}".encode()
                    out = initial[:16] + struct.pack(">i", len(addr)) + addr
                try:
                    upstream.sendall(out + rest)
                except OSError:
                    pass
            pump(client, upstream, conn.fwd)

        for t in (threading.Thread(target=forward, daemon=True),
                  threading.Thread(target=pump, daemon=True,
                                   args=(upstream, client, conn.back,
                                         lambda: kind == "quorum" and rec.blackhole == dst))):
            t.start()
            with rec.lock:
                rec.pumps.append(t)


# ---- members ------------------------------------------------------------------------------

class Member:
    def __init__(self, sid, root):
        self.sid = sid
        self.dir = os.path.join(root, f"s{sid}")
        self.data = os.path.join(self.dir, "data")
        os.makedirs(self.data)
        with open(os.path.join(self.data, "myid"), "w") as f:
            f.write(f"{sid}\n")
        self.client = free_port()
        self.quorum = free_port()
        self.election = free_port()
        self.proc = None
        self.log = os.path.join(self.dir, "server.log")

    def start(self):
        cmd = [JAVA, "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
               "-Djava.net.preferIPv4Stack=true", "-Dzookeeper.admin.enableServer=false",
               "-Dzookeeper.forceSync=no", "-Dzookeeper.preAllocSize=1024",
               # Sync by txn log is off: a learner below the in-memory committed log gets SNAP.
               "-Dzookeeper.snapshotSizeFactor=-1",
               # TTL nodes; a container reaper that runs every 500 ms.
               "-Dzookeeper.extendedTypesEnabled=true", "-Dznode.container.checkIntervalMs=500",
               "-Dorg.slf4j.simpleLogger.defaultLogLevel=info",
               "-Dorg.slf4j.simpleLogger.showDateTime=true",
               "-cp", CLASSPATH, "org.apache.zookeeper.server.quorum.QuorumPeerMain",
               os.path.join(self.dir, "zoo.cfg")]
        logf = open(self.log, "a")
        self.proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def mode(self):
        try:
            with socket.create_connection(("127.0.0.1", self.client), timeout=2) as s:
                s.sendall(b"srvr")
                s.settimeout(3)
                data = b""
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            m = re.search(rb"Mode: (\w+)", data)
            return m.group(1).decode() if m else None
        except OSError:
            return None


def logged(member, needle):
    """Whether `needle` is in one of the member's txn log files (written before the ACK)."""
    d = os.path.join(member.data, "version-2")
    for name in os.listdir(d) if os.path.isdir(d) else []:
        if name.startswith("log."):
            with open(os.path.join(d, name), "rb") as f:
                if needle in f.read():
                    return True
    return False


def wait_for(what, pred, timeout=90):
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = pred()
        if r:
            return r
        time.sleep(0.1)
    raise RuntimeError(f"timed out waiting for {what}")


def modes(members):
    return {m.sid: m.mode() for m in members.values() if m.proc}


def ensemble_ready(members):
    ms = modes(members)
    ok = all(v in ("leader", "follower", "observer") for v in ms.values())
    if ok and list(ms.values()).count("leader") == 1:
        return ms
    return None


# ---- fixture writing ------------------------------------------------------------------------

def parse_quorum(stream):
    """Splits a quorum-port stream into ('P', bytes) / ('S', bytes) / ('X', bytes)."""
    items, at, n = [], 0, len(stream)
    while at < n:
        start = at
        if n - at < 16:
            items.append(("X", bytes(stream[start:])))
            break
        ty, zxid, dlen = struct.unpack(">iqi", stream[at:at + 16])
        at += 16
        at += max(dlen, 0)
        if at + 4 > n:
            items.append(("X", bytes(stream[start:])))
            break
        count = struct.unpack(">i", stream[at:at + 4])[0]
        at += 4
        ok = True
        for _ in range(max(count, 0) * 2):
            if at + 4 > n:
                ok = False
                break
            slen = struct.unpack(">i", stream[at:at + 4])[0]
            at += 4 + max(slen, 0)
        if not ok or at > n:
            items.append(("X", bytes(stream[start:])))
            break
        items.append(("P", bytes(stream[start:at])))
        if ty == 15:  # SNAP: raw snapshot up to and including the "BenWasHere" ustring
            sig = struct.pack(">i", 10) + b"BenWasHere"
            end = stream.find(sig, at)
            if end < 0:
                items.append(("X", bytes(stream[at:])))
                break
            items.append(("S", bytes(stream[at:end + len(sig)])))
            at = end + len(sig)
    return items


def parse_election(stream, initial):
    items, at, n = [], 0, len(stream)
    if initial and n:
        if n < 8:
            return [("X", bytes(stream))]
        first = struct.unpack(">q", stream[:8])[0]
        if first >= 0:
            end = 8
        elif n >= 20:
            end = 20 + struct.unpack(">i", stream[16:20])[0]
        else:
            end = n + 1
        if end > n:
            return [("X", bytes(stream))]
        items.append(("I", bytes(stream[:end])))
        at = end
    while at < n:
        if n - at < 4:
            items.append(("X", bytes(stream[at:])))
            break
        ln = struct.unpack(">i", stream[at:at + 4])[0]
        if at + 4 + ln > n:
            items.append(("X", bytes(stream[at:])))
            break
        items.append(("M", bytes(stream[at:at + 4 + ln])))
        at += 4 + ln
    return items


def describe_packet(p):
    ty, zxid, dlen = struct.unpack(">iqi", p[:16])
    name = PACKET_NAMES.get(ty, f"type {ty}")
    note = f"{name} zxid=0x{zxid & 0xffffffffffffffff:x}"
    data = p[16:16 + max(dlen, 0)]
    note += " data=null" if dlen < 0 else f" data={dlen}B"
    if ty in (2, 8) and len(data) >= 28:
        cid, cxid, tzxid, tm, tty = struct.unpack(">qiqqi", data[:32])
        note += f" txn {OPS.get(tty, tty)} session=0x{cid & 0xffffffffffffffff:x} cxid={cxid}"
        if tty in (1, 2, 5, 7, 15, 19, 20, 21) and len(data) >= 36:
            plen = struct.unpack(">i", data[32:36])[0]
            if 0 <= plen <= len(data) - 36:
                note += " " + data[36:36 + plen].decode("utf-8", "replace")
    if ty == 1 and len(data) >= 16:
        sid, cxid, op = struct.unpack(">qii", data[:16])
        note += f" {OPS.get(op, op)} session=0x{sid & 0xffffffffffffffff:x} cxid={cxid}"
    return name, note


def describe_notification(m):
    body = m[4:]
    if len(body) < 28:
        return f"short message ({len(body)}B)"
    st, leader, zxid, rnd = struct.unpack(">iqqq", body[:28])
    note = f"notification {STATES.get(st, st)} leader={leader} zxid=0x{zxid:x} round=0x{rnd:x}"
    if len(body) >= 40:
        note += f" peerEpoch=0x{struct.unpack('>q', body[28:36])[0]:x}"
    if len(body) > 40:
        note += f" version={struct.unpack('>i', body[36:40])[0]} ({len(body)}B)"
    return note


def write_fixtures(rec, members, roles_at_phase):
    for f in os.listdir(OUT):
        if f.endswith(".txt") and (f.startswith("quorum-") or f.startswith("election-")):
            os.remove(os.path.join(OUT, f))
    counts, files = {}, 0
    n_conns = {"quorum": 0, "election": 0}
    for c in rec.conns:
        if not c.fwd and not c.back:
            continue
        n_conns[c.kind] += 1
        for (frm, to, data, first) in ((c.src, c.dst, c.fwd, True), (c.dst, c.src, c.back, False)):
            if not data:
                continue
            if c.kind == "quorum":
                items = parse_quorum(data)
            else:
                items = parse_election(data, first)
            name = f"{c.kind}-{c.cid:03d}-s{frm}-to-s{to}.txt"
            dialler = f"s{c.src} dialled s{c.dst}"
            lines = [
                "# zk-proto quorum golden fixture: Apache ZooKeeper 3.8.0 (Debian zookeeper.jar),",
                f"# 3 voters + 1 observer (s4) on 127.0.0.1, tickTime={TICK_MS}.",
                f"# Connection {c.cid} on the {c.kind} port: {dialler} during phase '{c.phase}'",
                f"# (roles then: {roles_at_phase.get(c.phase, '?')}). This file: bytes s{frm} -> s{to}, as sent.",
                "# Recorded by zk-proto/tests/golden/quorum/capture/capture.py (see its docstring to re-run).",
                "# Lines: I = election initial message, M = election message with its int length,",
                "# P = quorum packet, S = raw snapshot + \"BenWasHere\" after a SNAP, X = bytes cut by close.",
            ]
            for kind, b in items:
                if kind == "P":
                    pname, note = describe_packet(b)
                    counts[("quorum", pname)] = counts.get(("quorum", pname), 0) + 1
                    lines.append("# " + note)
                elif kind == "M":
                    note = describe_notification(b)
                    key = ("election", "notification " + note.split()[1] if note.startswith("notification") else note)
                    counts[key] = counts.get(key, 0) + 1
                    lines.append("# " + note)
                elif kind == "I":
                    first_long = struct.unpack(">q", b[:8])[0]
                    if first_long >= 0:
                        lines.append(f"# initial message: bare sid {first_long}")
                    else:
                        sid = struct.unpack(">q", b[8:16])[0]
                        lines.append(f"# initial message: version {first_long} sid {sid} {b[20:].decode()}")
                    counts[("election", "initial message")] = counts.get(("election", "initial message"), 0) + 1
                elif kind == "S":
                    lines.append(f"# snapshot stream, {len(b)} bytes incl. the signature")
                    counts[("quorum", "snapshot stream")] = counts.get(("quorum", "snapshot stream"), 0) + 1
                else:
                    lines.append(f"# {len(b)} byte(s) of an unfinished record when the connection closed")
                    counts[(c.kind, "cut by close")] = counts.get((c.kind, "cut by close"), 0) + 1
                lines.append(f"{kind} {b.hex()}")
            with open(os.path.join(OUT, name), "w") as f:
                f.write("\n".join(lines) + "\n")
            files += 1
    table = ["| port | record | count |", "|---|---|---:|"]
    for (port, what), n in sorted(counts.items()):
        table.append(f"| {port} | {what} | {n} |")
    summary = (f"{files} files, {n_conns['quorum']} quorum and {n_conns['election']} election "
               f"connections with traffic.\n\n" + "\n".join(table) + "\n")
    readme = os.path.join(OUT, "README.md")
    text = open(readme).read() if os.path.exists(readme) else ""
    begin, end = "<!-- counts:begin -->", "<!-- counts:end -->"
    if begin in text and end in text:
        text = text.split(begin)[0] + begin + "\n" + summary + end + text.split(end)[1]
        with open(readme, "w") as f:
            f.write(text)
    print(summary)


# ---- scenario -------------------------------------------------------------------------------

def main():
    root = tempfile.mkdtemp(prefix="zk-quorum-capture-")
    rec = Recorder()
    members = {sid: Member(sid, root) for sid in MEMBERS}
    proxies = {}  # (i, j) -> (quorum proxy port, election proxy port)
    for i in MEMBERS:
        for j in MEMBERS:
            if i == j:
                continue
            ports = []
            for kind in ("quorum", "election"):
                ls = socket.socket()
                ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                ls.bind(("127.0.0.1", 0))
                ls.listen(16)
                rec.listeners.append(ls)
                ports.append((ls, kind))
            proxies[(i, j)] = (ports[0][0].getsockname()[1], ports[1][0].getsockname()[1], ports)
    for (i, j), (_, _, ports) in proxies.items():
        for ls, kind in ports:
            target = members[j].quorum if kind == "quorum" else members[j].election
            rewrite = proxies[(j, i)][1]
            threading.Thread(target=serve_proxy, args=(rec, ls, kind, i, j, target, rewrite),
                             daemon=True).start()
    for i, m in members.items():
        cfg = [f"tickTime={TICK_MS}", "initLimit=10", "syncLimit=5", f"dataDir={m.data}",
               f"clientPort={m.client}", "clientPortAddress=127.0.0.1",
               "admin.enableServer=false", "4lw.commands.whitelist=*"]
        if i in OBSERVERS:
            cfg.append("peerType=observer")
        for j in MEMBERS:
            q, e = (m.quorum, m.election) if i == j else proxies[(i, j)][:2]
            suffix = ":observer" if j in OBSERVERS else ""
            cfg.append(f"server.{j}=127.0.0.1:{q}:{e}{suffix}")
        with open(os.path.join(m.dir, "zoo.cfg"), "w") as f:
            f.write("\n".join(cfg) + "\n")

    driver = None
    roles = {}
    try:
        for m in members.values():
            m.start()
        ms = wait_for("the ensemble", lambda: ensemble_ready(members))
        roles["start"] = ", ".join(f"s{k} {v}" for k, v in sorted(ms.items()))
        log("serving:", roles["start"])
        leader = next(k for k, v in ms.items() if v == "leader")
        fa, fb = [k for k in VOTERS if k != leader]

        driver = subprocess.Popen([JAVA, "-cp", CLASSPATH, os.path.join(HERE, "QuorumSession.java")],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

        def run(cmd):
            driver.stdin.write(cmd + "\n")
            driver.stdin.flush()
            line = driver.stdout.readline().strip()
            if line != "OK " + cmd.split()[0]:
                raise RuntimeError(f"driver: {cmd!r} -> {line!r}")
            log("driver:", line)

        rec.phase = "phase1"
        roles["phase1"] = roles["start"]
        run(f"phase1 127.0.0.1:{members[fa].client} 127.0.0.1:{members[fb].client}")

        # An uncommitted proposal: the leader's packets to its learners stop arriving, a
        # client writes through the leader, the leader logs the proposal, then dies. The
        # others elect a leader without it; when it rejoins it must truncate (TRUNC).
        rec.phase = "leader-stalled"
        roles["leader-stalled"] = roles["start"]
        run(f"connect-leader 127.0.0.1:{members[leader].client}")
        rec.blackhole = leader
        run("stall")
        wait_for("the stalled proposal in the leader's txn log",
                 lambda: logged(members[leader], b"/q/trunc"), timeout=60)
        rec.phase = "leader-killed"
        log(f"kill -9 leader s{leader}")
        members[leader].stop(signal.SIGKILL)
        rec.blackhole = None
        ms = wait_for("a new leader", lambda: ensemble_ready(members))
        roles["leader-killed"] = ", ".join(f"s{k} {v}" for k, v in sorted(ms.items()))
        log("serving:", roles["leader-killed"])
        rec.phase = "leader-restarted"
        members[leader].start()
        ms = wait_for("the old leader to rejoin", lambda: (r := ensemble_ready(members)) and len(r) == 4 and r)
        roles["leader-restarted"] = ", ".join(f"s{k} {v}" for k, v in sorted(ms.items()))
        log("serving:", roles["leader-restarted"])
        new_leader = next(k for k, v in ms.items() if v == "leader")

        rec.phase = "phase2"
        roles["phase2"] = roles["leader-restarted"]
        run(f"phase2 127.0.0.1:{members[new_leader].client} 127.0.0.1:{members[leader].client}")

        rec.phase = "observer-wiped"
        obs = members[OBSERVERS[0]]
        obs.stop()
        shutil.rmtree(os.path.join(obs.data, "version-2"), ignore_errors=True)
        obs.start()
        ms = wait_for("the wiped observer", lambda: (r := ensemble_ready(members)) and len(r) == 4 and r)
        roles["observer-wiped"] = ", ".join(f"s{k} {v}" for k, v in sorted(ms.items()))
        log("serving:", roles["observer-wiped"])
        run("quit")
        driver.wait(30)
        driver = None
        rec.phase = "shutdown"
        roles["shutdown"] = roles["observer-wiped"]
        for m in members.values():
            m.stop()
        for ls in rec.listeners:
            ls.close()
        # Every member is gone, so every proxied connection has seen its close.
        with rec.lock:
            pumps = list(rec.pumps)
        for t in pumps:
            t.join(10)
            if t.is_alive():
                raise RuntimeError("a proxy connection did not close")
        write_fixtures(rec, members, roles)
    except Exception:
        for m in members.values():
            if os.path.exists(m.log):
                log(f"--- s{m.sid} log tail ---")
                with open(m.log) as f:
                    sys.stderr.write("".join(f.readlines()[-30:]))
        raise
    finally:
        if driver and driver.poll() is None:
            driver.kill()
        for m in members.values():
            m.stop(signal.SIGKILL)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
