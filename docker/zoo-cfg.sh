# shellcheck shell=bash
# zoo-cfg.sh: reading a zoo.cfg (a Java properties file: key=value, key = value or
# key: value; # and ! comments). Sourced by entrypoint.sh and ready.sh, so both read
# the configuration alike.

# The value of KEY in FILE, the last one winning (as when pyzk reads the file); nothing
# when the key is absent or the file unreadable.
#   cfg_get FILE KEY
cfg_get() {
  [ -r "$1" ] || return 0
  awk -v key="$2" '
    /^[ \t]*[#!]/ { next }
    {
      line = $0
      sub(/^[ \t]+/, "", line)
      k = line; sub(/[ \t]*[=:].*$/, "", k)
      if (k == key) { v = line; sub(/^[^=:]*[=:][ \t]*/, "", v); sub(/[ \t]+$/, "", v); found = v }
    }
    END { if (found != "") print found }
  ' "$1"
}

# The server.N lines of FILE: all of them, or server.ID's only.
#   cfg_servers FILE [ID]
cfg_servers() {
  [ -r "$1" ] || return 0
  grep -E "^[[:space:]]*server\.${2:-[0-9]+}[[:space:]]*[=:]" "$1" || true
}

# How many server.N lines FILE has.
#   cfg_server_count FILE
cfg_server_count() {
  local lines
  lines=$(cfg_servers "$1")
  if [ -z "$lines" ]; then echo 0; else wc -l <<<"$lines"; fi
}
