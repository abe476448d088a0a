#!/usr/bin/env bash
# entrypoint.sh: write pyzk's configuration from the environment, then exec the server.
#
# The seed's contract, kept: MYID=N is written to dataDir/myid, and the ensemble is the
# seed's three Services, server.N=zookeeperN:2888:3888, unless the environment says
# otherwise. Its defects, fixed:
#   - the configuration is rendered afresh on every start from a template that is never
#     written (ZOO_CONF_DIR/zoo.cfg) to ZOO_CFG_FILE: a restarted container gets the same
#     file, never a second copy of the server lines;
#   - an ensemble member without a valid id refuses to start (the seed wrote myid 0).
#
# Environment (all optional):
#   MYID (or ZOO_MY_ID)    this server's id, 1..255. Unset: standalone, unless ZOO_SERVERS
#                          (or the template) lists an ensemble, or dataDir/myid exists.
#   ZOO_MYID_FROM_ORDINAL  "true": the id is the host name's ordinal suffix + 1
#                          (StatefulSet pod zookeeper-0 is server 1).
#   ZOO_SERVERS            the ensemble, entries separated by spaces or commas, each either
#                          "server.N=host:2888:3888[...]" or "host[:2888:3888][...]"
#                          (numbered 1, 2, ... in order). Set and empty: standalone.
#                          Unset: the template's server lines if it has any, else
#                          zookeeper1..3 when an id is given, else standalone.
#   ZOO_TICK_TIME ZOO_INIT_LIMIT ZOO_SYNC_LIMIT ZOO_DATA_DIR ZOO_DATA_LOG_DIR
#   ZOO_CLIENT_PORT ZOO_CLIENT_PORT_ADDRESS ZOO_MAX_CLIENT_CNXNS ZOO_STANDALONE_ENABLED
#   ZOO_AUTOPURGE_PURGEINTERVAL ZOO_AUTOPURGE_SNAPRETAINCOUNT ZOO_4LW_COMMANDS_WHITELIST
#   ZOO_ADMINSERVER_ENABLED ZOO_ADMIN_SERVER_PORT ZOO_QUORUM_LISTEN_ON_ALL_IPS
#                          one zoo.cfg key each (names as in the official ZooKeeper image)
#   ZOO_CFG_EXTRA          any further "key=value" settings, separated by spaces
#   ZOO_CONF_DIR           where the template zoo.cfg is (default /usr/local/zookeeper/conf)
#   ZOO_CFG_FILE           the effective file (default /usr/local/zookeeper/run/zoo.cfg)
#
# Arguments: none or "pyzk [flags]" runs the server with the effective file (flags are
# passed on, e.g. --log-level DEBUG); flags alone mean "pyzk FLAGS"; anything else
# ("pyzk status", "bash") is run as given, with no configuration step.
# Exit status 2: the environment cannot start a server (the message says why).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=zoo-cfg.sh
. "$(dirname "${BASH_SOURCE[0]}")/zoo-cfg.sh"

readonly EXIT_CONFIG=2
readonly DEFAULT_SERVERS="zookeeper1 zookeeper2 zookeeper3"
readonly QUORUM_PORT=2888 ELECTION_PORT=3888
# ZooKeeper's documented range for an ensemble member's id.
readonly MYID_MIN=1 MYID_MAX=255

conf_dir=${ZOO_CONF_DIR:-/usr/local/zookeeper/conf}
cfg_file=${ZOO_CFG_FILE:-/usr/local/zookeeper/run/zoo.cfg}

# environment variable -> zoo.cfg key
readonly ENV_KEYS=(
  ZOO_TICK_TIME=tickTime
  ZOO_INIT_LIMIT=initLimit
  ZOO_SYNC_LIMIT=syncLimit
  ZOO_DATA_DIR=dataDir
  ZOO_DATA_LOG_DIR=dataLogDir
  ZOO_CLIENT_PORT=clientPort
  ZOO_CLIENT_PORT_ADDRESS=clientPortAddress
  ZOO_MAX_CLIENT_CNXNS=maxClientCnxns
  ZOO_STANDALONE_ENABLED=standaloneEnabled
  ZOO_AUTOPURGE_PURGEINTERVAL=autopurge.purgeInterval
  ZOO_AUTOPURGE_SNAPRETAINCOUNT=autopurge.snapRetainCount
  ZOO_4LW_COMMANDS_WHITELIST=4lw.commands.whitelist
  ZOO_ADMINSERVER_ENABLED=admin.enableServer
  ZOO_ADMIN_SERVER_PORT=admin.serverPort
  ZOO_QUORUM_LISTEN_ON_ALL_IPS=quorumListenOnAllIPs
)

die() {
  echo "entrypoint: $*" >&2
  exit "$EXIT_CONFIG"
}

info() {
  echo "entrypoint: $*" >&2
}

# The template without the lines whose keys are given (server.* lines too, when told).
cfg_without() {
  local file=$1 drop_servers=$2
  shift 2
  awk -v drop_servers="$drop_servers" -v keys="$*" '
    BEGIN { n = split(keys, list, " "); for (i = 1; i <= n; i++) drop[list[i]] = 1 }
    /^[ \t]*[#!]/ || /^[ \t]*$/ { print; next }
    {
      k = $0; sub(/^[ \t]+/, "", k); sub(/[ \t]*[=:].*$/, "", k)
      if (k in drop) next
      if (drop_servers == "yes" && k ~ /^server\.[0-9]+$/) next
      print
    }
  ' "$file"
}

is_id() {
  [[ $1 =~ ^[0-9]+$ ]] && ((10#$1 >= MYID_MIN && 10#$1 <= MYID_MAX))
}

# "server.N=spec" lines from ZOO_SERVERS-style text.
server_lines() {
  local n=0 entry spec entries
  read -r -a entries <<<"${1//,/ }"
  for entry in ${entries[@]+"${entries[@]}"}; do
    n=$((n + 1))
    if [[ $entry =~ ^server\.([0-9]+)=(.+)$ ]]; then
      local sid=${BASH_REMATCH[1]} rest=${BASH_REMATCH[2]}
      is_id "$sid" || die "ZOO_SERVERS: ${entry%%=*} is not a server id ($MYID_MIN..$MYID_MAX)"
      echo "server.$((10#$sid))=$rest"
      continue
    fi
    [[ $entry != *=* ]] || die "ZOO_SERVERS: '$entry' is neither server.N=host:port:port nor a host"
    spec=$entry
    [[ $spec == *:* ]] || spec="$spec:$QUORUM_PORT:$ELECTION_PORT"
    echo "server.$n=$spec"
  done
}

# Which id this server has, by the documented order; empty when none is given.
resolve_myid() {
  local id=${MYID:-${ZOO_MY_ID:-}} host
  if [ -z "$id" ] && [ "${ZOO_MYID_FROM_ORDINAL:-false}" = true ]; then
    host=${HOSTNAME:-$(hostname)}
    host=${host%%.*}
    [[ $host =~ -([0-9]+)$ ]] || die "ZOO_MYID_FROM_ORDINAL: host name '$host' has no -N suffix"
    id=$((10#${BASH_REMATCH[1]} + 1))
  fi
  if [ -n "$id" ]; then
    is_id "$id" || die "MYID: '$id' is not a server id ($MYID_MIN..$MYID_MAX)"
    echo $((10#$id))
  fi
}

render_config() {
  local template=$1 myid=$2 servers_text=$3 replace_servers=$4
  local overrides=() keys=() extra=() pair var key
  for pair in "${ENV_KEYS[@]}"; do
    var=${pair%%=*}
    key=${pair#*=}
    if [ -n "${!var:-}" ]; then
      overrides+=("$key=${!var}")
      keys+=("$key")
    fi
  done
  read -r -a extra <<<"${ZOO_CFG_EXTRA:-}"
  for pair in ${extra[@]+"${extra[@]}"}; do
    [[ $pair == ?*=* ]] || die "ZOO_CFG_EXTRA: '$pair' is not key=value"
    overrides+=("$pair")
    keys+=("${pair%%=*}")
  done
  {
    echo "# Written by entrypoint.sh at every start from $template and the environment;"
    echo "# edits here are lost. myid ${myid:-(none)}."
    cfg_without "$template" "$replace_servers" ${keys[@]+"${keys[@]}"}
    if ((${#overrides[@]})); then
      echo "# from the environment"
      printf '%s\n' "${overrides[@]}"
    fi
    if [ -n "$servers_text" ]; then
      echo "# the ensemble"
      printf '%s\n' "$servers_text"
    fi
  }
}

prepare() {
  local template="$conf_dir/zoo.cfg" myid servers_text="" replace_servers=no
  [ -r "$template" ] || die "no template configuration at $template"
  myid=$(resolve_myid)

  if [ -n "${ZOO_SERVERS+set}" ]; then
    # Given, possibly empty (standalone): it replaces whatever the template lists.
    servers_text=$(server_lines "$ZOO_SERVERS")
    replace_servers=yes
  elif [ -z "$(cfg_servers "$template")" ]; then
    local data_dir
    data_dir=${ZOO_DATA_DIR:-$(cfg_get "$template" dataDir)}
    if [ -z "$myid" ] && [ -s "$data_dir/myid" ]; then
      myid=$(tr -d '[:space:]' <"$data_dir/myid")
      is_id "$myid" || die "myid: $data_dir/myid holds '$myid', not a server id"
    fi
    [ -n "$myid" ] && servers_text=$(server_lines "$DEFAULT_SERVERS")
  fi

  local tmp
  mkdir -p "$(dirname "$cfg_file")"
  tmp=$(mktemp "$cfg_file.XXXXXX")
  render_config "$template" "$myid" "$servers_text" "$replace_servers" >"$tmp"
  mv -f "$tmp" "$cfg_file"

  local data_dir log_dir count
  data_dir=$(cfg_get "$cfg_file" dataDir)
  log_dir=$(cfg_get "$cfg_file" dataLogDir)
  [ -n "$data_dir" ] || die "dataDir: not set (template $template, ZOO_DATA_DIR)"
  for dir in "$data_dir" ${log_dir:+"$log_dir"}; do
    mkdir -p "$dir" 2>/dev/null && [ -w "$dir" ] ||
      die "$dir is not writable by uid $(id -u): give the volume to that user (chown, fsGroup)"
  done
  count=$(cfg_server_count "$cfg_file")

  if [ -z "$myid" ] && [ -s "$data_dir/myid" ]; then
    myid=$(tr -d '[:space:]' <"$data_dir/myid")
  fi
  if ((count > 1)); then
    [ -n "$myid" ] || die "MYID: not set, and this server is one of an ensemble of $count" \
      "(set MYID, or ZOO_SERVERS= for a standalone server)"
    is_id "$myid" || die "myid: '$myid' is not a server id ($MYID_MIN..$MYID_MAX)"
    [ -n "$(cfg_servers "$cfg_file" "$myid")" ] ||
      die "MYID: $myid has no server.$myid line in the ensemble of $count"
  fi
  if [ -n "$myid" ]; then
    if [ -s "$data_dir/myid" ]; then
      local had
      had=$(tr -d '[:space:]' <"$data_dir/myid")
      [ "$had" = "$myid" ] ||
        die "MYID: $myid, but $data_dir/myid holds $had: this volume belongs to another server"
    fi
    echo "$myid" >"$data_dir/myid"
    export MYID=$myid
  fi
  info "myid ${myid:-none}, $count server line(s), configuration $cfg_file:"
  grep -Ev '^[[:space:]]*(#|$)' "$cfg_file" | sed 's/^/    /' >&2
}

main() {
  if [ $# -eq 0 ] || [[ $1 == -* ]]; then
    set -- pyzk "$@"
  fi
  if [ "$1" = pyzk ] && [ "${2:-}" != status ]; then
    prepare
    shift
    exec pyzk --config "$cfg_file" "$@"
  fi
  exec "$@"
}

main "$@"
