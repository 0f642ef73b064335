#!/usr/bin/env bash
# Builds the zk-server-lite image that zk-testkit's `containers::ZkServerLite` starts: a
# `FROM scratch` image (Dockerfile.zk-server-lite) holding one statically linked
# `zk-server-lite` binary (glibc, `-C target-feature=+crt-static`, stripped) and a default
# /conf/zoo.cfg. Nothing is pulled.
#
#   bash tests/container/build-lite-image.sh          # build if missing or older than the sources
#   ZK_IMAGE_REBUILD=1 bash tests/container/build-lite-image.sh
#
# The image is `$ZK_TESTKIT_LITE_IMAGE` (default zk-rs/zk-server-lite:local).
set -euo pipefail
cd "$(dirname "$0")/../.."

IMAGE="${ZK_TESTKIT_LITE_IMAGE:-zk-rs/zk-server-lite:local}"
TARGET=x86_64-unknown-linux-gnu
docker info >/dev/null 2>&1 || { echo "build-lite-image: docker is not usable (is the daemon running, may we use its socket?)" >&2; exit 1; }

# Rebuild when the image is missing or a source of the server is newer than the image.
if [ -z "${ZK_IMAGE_REBUILD:-}" ] && created=$(docker image inspect -f '{{.Created}}' "$IMAGE" 2>/dev/null); then
  created_s=$(date -d "$created" +%s)
  newest=$(find zk-server-lite zk-proto Cargo.lock tests/container/Dockerfile.zk-server-lite -type f -printf '%T@\n' | sort -n | tail -1 | cut -d. -f1)
  if [ "$newest" -le "$created_s" ]; then
    echo "build-lite-image: $IMAGE present"
    exit 0
  fi
fi

start=$(date +%s.%N)
# The static build gets its own target directory (other RUSTFLAGS would rebuild the
# workspace's dependencies in target/ on every switch).
RUSTFLAGS="-C target-feature=+crt-static" cargo build -q --release --locked \
  -p zk-server-lite --bin zk-server-lite --target "$TARGET" --target-dir target/static
bin="target/static/$TARGET/release/zk-server-lite"
if readelf -l "$bin" | grep -q INTERP; then
  echo "build-lite-image: $bin is not statically linked" >&2
  exit 1
fi

ctx=$(mktemp -d /tmp/zk-rs-lite-image.XXXXXX)
trap 'rm -rf "$ctx"' EXIT
cp "$bin" "$ctx/zk-server-lite"
strip "$ctx/zk-server-lite"
mkdir -p "$ctx/tmp"
chmod 1777 "$ctx/tmp"
printf 'clientPort=2181\ntickTime=2000\ndataDir=/tmp/zk-data\n4lw.commands.whitelist=*\n' >"$ctx/zoo.cfg"
old_id=$(docker image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)
docker build -q -f tests/container/Dockerfile.zk-server-lite \
  --label "org.opencontainers.image.description=zk-server-lite $(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1), statically linked (zk-rs)" \
  -t "$IMAGE" "$ctx" >/dev/null
if [ -n "$old_id" ] && [ "$old_id" != "$(docker image inspect -f '{{.Id}}' "$IMAGE")" ]; then
  docker rmi "$old_id" >/dev/null 2>&1 || true
fi
end=$(date +%s.%N)
size=$(docker image inspect -f '{{.Size}}' "$IMAGE")
echo "build-lite-image: built $IMAGE ($((size / 1024)) KiB) in $(python3 -c "print(f'{$end - $start:.1f}')") s"
