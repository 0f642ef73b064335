#!/usr/bin/env bash
# Builds a local Docker image of Apache ZooKeeper that behaves like the Docker official
# `zookeeper` image (same ENTRYPOINT/CMD contract and ZOO_* variables, see
# docker-entrypoint.sh), WITHOUT pulling anything: the root filesystem is packed from this
# machine's own files (the Debian `zookeeper` package's jars, the OpenJDK 17 runtime, the
# host's /bin/sh and the shared libraries they need) and loaded with `docker import`.
# zk-testkit's `containers::ZooKeeper` runs it with `.with_image("zk-rs/zookeeper", "3.8-local")`.
#
#   bash tests/container/build-image.sh            # build if missing (fast when present)
#   ZK_IMAGE_REBUILD=1 bash tests/container/build-image.sh
#
# The image is `$ZK_TESTKIT_IMAGE` (default zk-rs/zookeeper:3.8-local). It also removes
# containers left behind by killed test processes (label zk-rs.testkit=<pid> on a pid that
# no longer exists, see tests/src/container.rs).
set -euo pipefail

IMAGE="${ZK_TESTKIT_IMAGE:-zk-rs/zookeeper:3.8-local}"
LABEL=zk-rs.testkit

docker info >/dev/null 2>&1 || { echo "build-image: docker is not usable (is the daemon running, may we use its socket?)" >&2; exit 1; }

# Leaked containers of test processes that died (SIGKILL) before their Drop ran: the label's
# value is the owning process id; containers of running test processes are left alone.
stale=$(docker ps -a --filter "label=$LABEL" --format "{{.ID}} {{.Label \"$LABEL\"}}" 2>/dev/null \
  | while read -r id pid; do
      case "$pid" in ''|*[!0-9]*) echo "$id" ;; *) [ -d "/proc/$pid" ] || echo "$id" ;; esac
    done)
if [ -n "$stale" ]; then
  echo "build-image: removing $(echo "$stale" | wc -l) container(s) left by dead test processes"
  # shellcheck disable=SC2086
  docker rm -f $stale >/dev/null || true
fi

if [ -z "${ZK_IMAGE_REBUILD:-}" ] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "build-image: $IMAGE present"
  exit 0
fi

start=$(date +%s.%N)
old_id=$(docker image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)
JAVA_BIN=$(readlink -f "$(command -v java)")
JAVA_HOME=$(dirname "$(dirname "$JAVA_BIN")")
ZK_JAR=/usr/share/java/zookeeper.jar
test -f "$ZK_JAR" || { echo "build-image: $ZK_JAR missing (run .ci/setup)" >&2; exit 1; }
test -f /usr/share/java/slf4j-simple.jar || { echo "build-image: slf4j-simple.jar missing" >&2; exit 1; }

root=$(mktemp -d /tmp/zk-rs-image.XXXXXX)
trap 'rm -rf "$root"' EXIT

# 1. The Java runtime, symlinks resolved (several point into /etc/java-17-openjdk), without
#    what a headless server never loads.
mkdir -p "$root$JAVA_HOME"
tar -C "$JAVA_HOME" --exclude=./jmods --exclude=./include --exclude=./man --exclude=./docs \
  --exclude=./legal --exclude=./lib/src.zip --exclude=./lib/ct.sym -chf - . 2>/dev/null \
  | tar -C "$root$JAVA_HOME" -xf - || true
test -x "$root$JAVA_HOME/bin/java" || { echo "build-image: copying $JAVA_HOME failed" >&2; exit 1; }

# 2. The ZooKeeper jar, every jar its manifest Class-Path names (transitively) and
#    slf4j-simple for logging, at the same absolute paths (the manifests use them).
jars=$(python3 - "$ZK_JAR" /usr/share/java/slf4j-simple.jar <<'EOF'
import sys, zipfile, os
seen, todo = [], list(sys.argv[1:])
while todo:
    jar = todo.pop()
    if jar in seen or not os.path.exists(jar):
        continue
    seen.append(jar)
    try:
        text = zipfile.ZipFile(jar).read("META-INF/MANIFEST.MF").decode("utf-8", "replace")
    except KeyError:
        continue
    text = text.replace("\r\n", "\n").replace("\n ", "")
    for line in text.split("\n"):
        if line.startswith("Class-Path:"):
            for entry in line.split(":", 1)[1].split():
                if entry.startswith("/"):
                    todo.append(entry)
print("\n".join(seen))
EOF
)
for jar in $jars; do
  mkdir -p "$root$(dirname "$jar")"
  cp -L "$jar" "$root$jar"
done

# 3. The shared libraries of every ELF file in the runtime (ldd resolves them on this host).
libs=$(find "$JAVA_HOME/" -type f \( -name '*.so' -o -path '*/bin/*' \) -exec ldd {} + 2>/dev/null \
  | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u)
for lib in $libs; do
  case "$lib" in "$JAVA_HOME"/*) continue ;; esac
  real=$(readlink -f "$lib")
  [ -f "$real" ] || continue
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$real" "$root$lib"
done
# The dynamic loader as the ELF interpreter path names it.
mkdir -p "$root/lib64"
cp -L /lib64/ld-linux-x86-64.so.2 "$root/lib64/"

# 4. A shell for the entrypoint (the host's /bin/sh, its libraries come with it).
here=$(cd "$(dirname "$0")" && pwd)
for bin in /bin/sh; do
  real=$(readlink -f "$bin")
  mkdir -p "$root/bin" "$root$(dirname "$real")"
  cp -L "$real" "$root$real"
  [ "$real" = "$bin" ] || ln -sf "$real" "$root$bin"
  for lib in $(ldd "$real" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }'); do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
done
mkdir -p "$root/usr/local/bin"
cp "$here/docker-entrypoint.sh" "$root/docker-entrypoint.sh"
cp "$here/zkServer.sh" "$root/usr/local/bin/zkServer.sh"
chmod 0755 "$root/docker-entrypoint.sh" "$root/usr/local/bin/zkServer.sh"

# 5. A minimal /etc and the directories of the official image.
mkdir -p "$root/etc" "$root/tmp" "$root/conf" "$root/data" "$root/datalog" "$root/logs"
chmod 1777 "$root/tmp"
echo 'root:x:0:0:root:/root:/nonexistent' >"$root/etc/passwd"
echo 'root:x:0:' >"$root/etc/group"
printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$root/etc/nsswitch.conf"

# 6. Import with the official image's contract: ENTRYPOINT docker-entrypoint.sh, CMD
#    zkServer.sh start-foreground, the same defaults and exposed ports.
tar -C "$root" -cf - . | docker import \
  --change 'ENTRYPOINT ["/docker-entrypoint.sh"]' \
  --change 'CMD ["zkServer.sh", "start-foreground"]' \
  --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
  --change "ENV ZK_JAVA=$JAVA_HOME/bin/java" \
  --change "ENV ZK_CLASSPATH=$ZK_JAR:/usr/share/java/slf4j-simple.jar" \
  --change 'ENV ZOO_CONF_DIR=/conf ZOO_DATA_DIR=/data ZOO_DATA_LOG_DIR=/datalog ZOO_LOG_DIR=/logs ZOO_TICK_TIME=2000 ZOO_INIT_LIMIT=5 ZOO_SYNC_LIMIT=2 ZOO_AUTOPURGE_PURGEINTERVAL=0 ZOO_AUTOPURGE_SNAPRETAINCOUNT=3 ZOO_MAX_CLIENT_CNXNS=60 ZOO_STANDALONE_ENABLED=true ZOO_ADMINSERVER_ENABLED=true' \
  --change 'EXPOSE 2181 2888 3888 8080' \
  --change 'WORKDIR /tmp' \
  --change "LABEL org.opencontainers.image.description=\"Apache ZooKeeper $(dpkg-query -W -f='${Version}' zookeeper 2>/dev/null || echo 3.8) from the host's Debian packages, with the official image's entrypoint contract (zk-rs tests)\"" \
  - "$IMAGE" >/dev/null
# A rebuild leaves the previous image untagged: remove it (if no container uses it).
if [ -n "$old_id" ] && [ "$old_id" != "$(docker image inspect -f '{{.Id}}' "$IMAGE")" ]; then
  docker rmi "$old_id" >/dev/null 2>&1 || true
fi
end=$(date +%s.%N)
size=$(docker image inspect -f '{{.Size}}' "$IMAGE")
echo "build-image: built $IMAGE ($((size / 1024 / 1024)) MiB) in $(python3 -c "print(f'{$end - $start:.1f}')") s"
