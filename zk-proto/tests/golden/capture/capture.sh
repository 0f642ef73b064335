#!/usr/bin/env bash
# Regenerates the zk-proto golden vectors from a real ZooKeeper 3.8 server and the
# official Java client.  Usage (from anywhere):
#
#     bash zk-proto/tests/golden/capture/capture.sh
#
# Needs: java + javac (17), /usr/share/java/zookeeper.jar (Debian `zookeeper` 3.8.0),
# /usr/share/java/slf4j-simple.jar, python3 (stdlib only).
# Writes zk-proto/tests/golden/java-3.8-session.txt and python-raw-no-readonly.txt,
# only if every step succeeded (the old files are kept otherwise).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
GOLDEN="$(dirname "$HERE")"
ZK_JAR="${ZK_JAR:-/usr/share/java/zookeeper.jar}"
SLF4J_JAR="${SLF4J_JAR:-/usr/share/java/slf4j-simple.jar}"
JAVA_OUT="$GOLDEN/java-3.8-session.txt"
RAW_OUT="$GOLDEN/python-raw-no-readonly.txt"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/zk-golden.XXXXXX")"
ZK_PID=""
PROXY_PID=""
CLIENT_PID=""

log() { echo "[capture] $*" >&2; }

stop_pid() { # stop_pid <pid> <name>: TERM, wait up to 5 s, then KILL
    local pid="$1" name="$2" i
    [ -n "$pid" ] || return 0
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "$name ($pid) did not stop, killing"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    stop_pid "$CLIENT_PID" GoldenSession
    stop_pid "$PROXY_PID" proxy
    stop_pid "$ZK_PID" zookeeper
    if [ "$rc" -ne 0 ]; then
        log "FAILED (exit $rc); server log tail:"
        tail -n 30 "$WORK/zk.log" >&2 2>/dev/null || true
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

four_letter() { # four_letter <port> <cmd>: prints the reply, empty on failure
    python3 - "$1" "$2" <<'EOF' 2>/dev/null || true
import socket, sys
try:
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1)
    s.sendall(sys.argv[2].encode())
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    sys.stdout.write(data.decode("ascii", "replace"))
except OSError:
    pass
EOF
}

[ -r "$ZK_JAR" ] || { log "missing $ZK_JAR"; exit 1; }
[ -r "$SLF4J_JAR" ] || { log "missing $SLF4J_JAR"; exit 1; }

# --- 1. private standalone ZooKeeper 3.8 ---------------------------------------------
ZK_PORT="$(free_port)"
mkdir -p "$WORK/data"
# JAAS file shared by the server ("Server" section: SASL DIGEST-MD5 user golden) and the
# client JVM ("GoldenClient" section, used only by the final SASL session of GoldenSession).
cat >"$WORK/jaas.conf" <<'EOF'
Server {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_golden="golden-sasl-pw";
};
GoldenClient {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    username="golden"
    password="golden-sasl-pw";
};
EOF
cat >"$WORK/zoo.cfg" <<EOF
tickTime=500
dataDir=$WORK/data
clientPort=$ZK_PORT
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=*
authProvider.sasl=org.apache.zookeeper.server.auth.SASLAuthenticationProvider
EOF
log "starting ZooKeeper on 127.0.0.1:$ZK_PORT (work dir $WORK)"
java -Xmx256m \
    -Dzookeeper.extendedTypesEnabled=true \
    -Dzookeeper.admin.enableServer=false \
    -Djava.security.auth.login.config="$WORK/jaas.conf" \
    -Dorg.slf4j.simpleLogger.defaultLogLevel=info \
    -cp "$ZK_JAR:$SLF4J_JAR" \
    org.apache.zookeeper.server.quorum.QuorumPeerMain "$WORK/zoo.cfg" \
    >"$WORK/zk.log" 2>&1 &
ZK_PID=$!
for i in $(seq 1 100); do
    [ "$(four_letter "$ZK_PORT" ruok)" = "imok" ] && break
    kill -0 "$ZK_PID" 2>/dev/null || { log "ZooKeeper exited early"; exit 1; }
    sleep 0.1
done
[ "$(four_letter "$ZK_PORT" ruok)" = "imok" ] || { log "ZooKeeper did not answer ruok"; exit 1; }
ZK_VERSION="$(four_letter "$ZK_PORT" srvr | sed -n 's/^Zookeeper version: //p' | cut -d, -f1)"
log "server up: $ZK_VERSION"

# --- 2. recording proxy ---------------------------------------------------------------
JAVA_TMP="$WORK/java-session.txt"
python3 "$HERE/recording_proxy.py" \
    --upstream-port "$ZK_PORT" \
    --port-file "$WORK/proxy.port" \
    --out "$JAVA_TMP" \
    --go-file "$WORK/go" \
    --cut-prefix /golden/cut-now \
    --comment "zk-proto golden vectors: official Java client (zookeeper.jar 3.8.0, ClientCnxnSocketNIO)" \
    --comment "talking to Apache ZooKeeper $ZK_VERSION standalone (tickTime=500, extendedTypesEnabled=true)," \
    --comment "recorded by capture/recording_proxy.py while capture/GoldenSession.java ran." \
    --comment "Format: 'conn N' starts a TCP connection; 'C <hex>' client->server frame, 'S <hex>'" \
    --comment "server->client frame, each including its 4-byte big-endian length prefix, in the" \
    --comment "order the proxy received them.  '#' lines are decoded notes, not data." \
    --comment "Regenerate with: bash zk-proto/tests/golden/capture/capture.sh" \
    >"$WORK/proxy.log" 2>&1 &
PROXY_PID=$!
for i in $(seq 1 50); do
    [ -s "$WORK/proxy.port" ] && break
    kill -0 "$PROXY_PID" 2>/dev/null || { log "proxy exited early"; cat "$WORK/proxy.log" >&2; exit 1; }
    sleep 0.1
done
PROXY_PORT="$(cat "$WORK/proxy.port")"
log "recording proxy on 127.0.0.1:$PROXY_PORT"

# --- 3. Java session through the proxy -------------------------------------------------
mkdir -p "$WORK/classes"
javac -nowarn -cp "$ZK_JAR" -d "$WORK/classes" "$HERE/GoldenSession.java"
log "running GoldenSession"
timeout 60 java -Xmx256m \
    -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
    -Djava.security.auth.login.config="$WORK/jaas.conf" \
    -Dgolden.sasl.context=GoldenClient \
    -cp "$WORK/classes:$ZK_JAR:$SLF4J_JAR" \
    GoldenSession "127.0.0.1:$PROXY_PORT" "127.0.0.1:$ZK_PORT" "$WORK/go" >&2 &
CLIENT_PID=$!
# `wait` (unlike a foreground command) lets the INT/TERM trap run at once.
wait "$CLIENT_PID" || { log "GoldenSession failed"; exit 1; }
CLIENT_PID=""
sleep 0.3   # let the proxy see the server's EOF after closeSession
stop_pid "$PROXY_PID" proxy
PROXY_PID=""
if [ -s "$WORK/proxy.log" ]; then
    log "proxy log:"; cat "$WORK/proxy.log" >&2
fi

# --- 4. hand-written raw session without the readOnly byte -------------------------------
RAW_TMP="$WORK/raw-session.txt"
python3 "$HERE/raw_session.py" --port "$ZK_PORT" --out "$RAW_TMP" --path /golden

# --- 5. check and install ------------------------------------------------------------------
python3 "$HERE/summarize.py" "$JAVA_TMP" "$RAW_TMP" >"$WORK/summary.md"
cat "$WORK/summary.md" >&2
mv -f "$JAVA_TMP" "$JAVA_OUT"
mv -f "$RAW_TMP" "$RAW_OUT"
log "wrote $JAVA_OUT"
log "wrote $RAW_OUT"
