#!/usr/bin/env bash
# ready.sh: exit 0 only while the local server serves clients; the readiness probe and
# the image's HEALTHCHECK (the seed's zkReady.sh, on `pyzk status`).
#
# Serving means a Mode of leader, follower, observer (observing), or standalone, but
# standalone only when the configuration lists no ensemble: a server configured as one
# of several that answers "standalone" is not the ensemble member it should be.
# The port and address are read from the effective configuration (ZOO_CFG_FILE).
set -uo pipefail

# shellcheck source-path=SCRIPTDIR source=zoo-cfg.sh
. "$(dirname "${BASH_SOURCE[0]}")/zoo-cfg.sh"

cfg_file=${ZOO_CFG_FILE:-/usr/local/zookeeper/run/zoo.cfg}
# Below the probes' timeoutSeconds (5), so a hung server fails the check, not the probe.
timeout_s=${ZOO_READY_TIMEOUT:-3}

port=$(cfg_get "$cfg_file" clientPort)
host=$(cfg_get "$cfg_file" clientPortAddress)
case ${host:-0.0.0.0} in
  0.0.0.0 | :: | "[::]") host=127.0.0.1 ;;
esac

if ! answer=$(pyzk status --host "$host" --port "${port:-2181}" --timeout "$timeout_s" 2>&1); then
  echo "not ready: ${answer}" >&2
  exit 1
fi
mode=$(sed -n 's/^Mode:[[:space:]]*//p' <<<"$answer" | head -n 1)
case $mode in
  leader | follower | observer | observing) ;;
  standalone)
    servers=$(cfg_server_count "$cfg_file")
    if ((servers > 1)); then
      echo "not ready: Mode: standalone, but $cfg_file lists an ensemble of $servers" >&2
      exit 1
    fi
    ;;
  *)
    echo "not ready: ${answer}" >&2
    exit 1
    ;;
esac
echo "Mode: $mode"
