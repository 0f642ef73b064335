#!/bin/sh
# `zkServer.sh start-foreground` of the local Apache ZooKeeper image (build-image.sh): runs
# QuorumPeerMain on $ZOO_CONF_DIR/zoo.cfg in the foreground, logging to stdout like the
# official image. JVMFLAGS are passed to the JVM. Only start-foreground is supported.
set -e
case "${1:-start-foreground}" in
  start-foreground) ;;
  *) echo "zkServer.sh: only start-foreground is supported in this image" >&2; exit 2 ;;
esac
# shellcheck disable=SC2086 # JVMFLAGS is a list of flags
exec "$ZK_JAVA" -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:-UsePerfData \
  -Djava.net.preferIPv4Stack=true -Dorg.slf4j.simpleLogger.logFile=System.out \
  -Dorg.slf4j.simpleLogger.defaultLogLevel=info -Dzookeeper.log.dir="${ZOO_LOG_DIR:-/logs}" \
  $JVMFLAGS -cp "$ZK_CLASSPATH" org.apache.zookeeper.server.quorum.QuorumPeerMain \
  "${ZOO_CONF_DIR:-/conf}/zoo.cfg"
