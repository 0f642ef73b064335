#!/bin/sh
# The entrypoint of the local Apache ZooKeeper image (build-image.sh), with the contract of
# the Docker official `zookeeper` image's entrypoint, written for a POSIX sh: when
# $ZOO_CONF_DIR/zoo.cfg does not exist it is generated from the ZOO_* variables, the data
# directory gets a `myid` from $ZOO_MY_ID, then the command runs (default
# `zkServer.sh start-foreground`).
#
#   ZOO_TICK_TIME ZOO_INIT_LIMIT ZOO_SYNC_LIMIT ZOO_MAX_CLIENT_CNXNS ZOO_STANDALONE_ENABLED
#   ZOO_ADMINSERVER_ENABLED ZOO_AUTOPURGE_PURGEINTERVAL ZOO_AUTOPURGE_SNAPRETAINCOUNT
#   ZOO_4LW_COMMANDS_WHITELIST ZOO_MY_ID ZOO_SERVERS (whitespace-separated server.N=... lines)
#   ZOO_CFG_EXTRA (whitespace-separated key=value lines) JVMFLAGS (for the JVM)
set -e

: "${ZOO_CONF_DIR:=/conf}" "${ZOO_DATA_DIR:=/data}" "${ZOO_DATA_LOG_DIR:=/datalog}"
: "${ZOO_TICK_TIME:=2000}" "${ZOO_INIT_LIMIT:=5}" "${ZOO_SYNC_LIMIT:=2}"
: "${ZOO_AUTOPURGE_PURGEINTERVAL:=0}" "${ZOO_AUTOPURGE_SNAPRETAINCOUNT:=3}"
: "${ZOO_MAX_CLIENT_CNXNS:=60}" "${ZOO_STANDALONE_ENABLED:=true}" "${ZOO_ADMINSERVER_ENABLED:=true}"

if [ ! -f "$ZOO_CONF_DIR/zoo.cfg" ]; then
  {
    echo "dataDir=$ZOO_DATA_DIR"
    echo "dataLogDir=$ZOO_DATA_LOG_DIR"
    echo "tickTime=$ZOO_TICK_TIME"
    echo "initLimit=$ZOO_INIT_LIMIT"
    echo "syncLimit=$ZOO_SYNC_LIMIT"
    echo "autopurge.snapRetainCount=$ZOO_AUTOPURGE_SNAPRETAINCOUNT"
    echo "autopurge.purgeInterval=$ZOO_AUTOPURGE_PURGEINTERVAL"
    echo "maxClientCnxns=$ZOO_MAX_CLIENT_CNXNS"
    echo "standaloneEnabled=$ZOO_STANDALONE_ENABLED"
    echo "admin.enableServer=$ZOO_ADMINSERVER_ENABLED"
    if [ -z "$ZOO_SERVERS" ]; then
      ZOO_SERVERS="server.1=localhost:2888:3888;2181"
    fi
    for server in $ZOO_SERVERS; do
      echo "$server"
    done
    if [ -n "$ZOO_4LW_COMMANDS_WHITELIST" ]; then
      echo "4lw.commands.whitelist=$ZOO_4LW_COMMANDS_WHITELIST"
    fi
    for entry in $ZOO_CFG_EXTRA; do
      echo "$entry"
    done
  } >"$ZOO_CONF_DIR/zoo.cfg"
fi

if [ ! -f "$ZOO_DATA_DIR/myid" ]; then
  echo "${ZOO_MY_ID:-1}" >"$ZOO_DATA_DIR/myid"
fi

exec "$@"
