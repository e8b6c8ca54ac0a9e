#!/usr/bin/env bash
# Stop or (re)start ONLY the ElectrumX server of a stack started by start.sh; the node keeps running.
# (kdfd project addition to the electrum-regtest kit.)
#
#   electrumx-restart.sh stop     SIGINT ElectrumX (clean DB flush; SIGTERM/SIGKILL after 20 s), wait
#                                 until its TCP port refuses connections. Before stopping, the exact
#                                 launch environment and command line are saved from /proc into
#                                 $ER_RUN_DIR/electrumx.launch-{env,cmd}. Clears ELECTRUMX_PID in
#                                 $ER_RUN_DIR/env and removes electrumx.pid.
#   electrumx-restart.sh start    relaunch ElectrumX with the same environment, ports (TCP, SSL, admin)
#                                 and DB ($ER_RUN_DIR/electrumx/db), wait until it answers server.version
#                                 on the TCP port at the node's current height, write the new PID to
#                                 $ER_RUN_DIR/electrumx.pid and ELECTRUMX_PID= in $ER_RUN_DIR/env, and
#                                 print ELECTRUMX_PID=<pid>. A no-op (exit 0) if it already runs.
#   electrumx-restart.sh restart  stop, then start.
#   electrumx-restart.sh status   prints ELECTRUMX_PID=<pid> and exits 0 if it runs, exits 1 if not.
#
# If the saved launch files are missing (ElectrumX was killed by something else), start rebuilds the
# launch environment the same way start.sh does, from $ER_RUN_DIR/env, ER_CACHE_DIR and the ER_* knobs.
# Settings: ER_RUN_DIR, ER_CACHE_DIR, ER_PYTHON, ER_START_TIMEOUT (default 120 s) as for start.sh.
# Logs are appended to $ER_RUN_DIR/electrumx.log.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
RUN="${ER_RUN_DIR:-${TMPDIR:-/tmp}/electrum-regtest}"
PY="${ER_PYTHON:-python3}"
TIMEOUT="${ER_START_TIMEOUT:-120}"
export ER_RUN_DIR="$RUN"

log() { printf '[electrumx-restart] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null && ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$1/stat" 2>/dev/null; }
ours() { alive "$1" && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- exlaunch.py; }
envval() { sed -n "s/^$1=//p" "$RUN/env" 2>/dev/null | head -1; }
set_env_pid() { # rewrite ELECTRUMX_PID= in $RUN/env atomically
  sed "s/^ELECTRUMX_PID=.*/ELECTRUMX_PID=$1/" "$RUN/env" >"$RUN/env.tmp" && mv "$RUN/env.tmp" "$RUN/env"
}
current_pid() {
  local pid=""
  [ -f "$RUN/electrumx.pid" ] && pid="$(cat "$RUN/electrumx.pid")"
  [ -n "$pid" ] || pid="$(envval ELECTRUMX_PID)"
  if [ -n "$pid" ] && ours "$pid"; then echo "$pid"; fi
}
port_open() { # 127.0.0.1 port accepts a TCP connection
  "$PY" -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2).close()' "$1" 2>/dev/null
}

[ -f "$RUN/env" ] || die "no $RUN/env: the stack is not running (run start.sh first)"
TCP_PORT="$(envval ELECTRUM_TCP_PORT)"

do_stop() {
  local pid i
  pid="$(current_pid)"
  if [ -z "$pid" ]; then
    log "ElectrumX is not running"
  else
    # keep exactly what start.sh launched, so that start can bring back the same thing
    cat "/proc/$pid/environ" >"$RUN/electrumx.launch-env.tmp" && mv "$RUN/electrumx.launch-env.tmp" "$RUN/electrumx.launch-env"
    cat "/proc/$pid/cmdline" >"$RUN/electrumx.launch-cmd.tmp" && mv "$RUN/electrumx.launch-cmd.tmp" "$RUN/electrumx.launch-cmd"
    kill -INT "$pid" 2>/dev/null || true
    for ((i = 0; i < 200; i++)); do alive "$pid" || break; sleep 0.1; done
    if alive "$pid"; then
      log "ElectrumX (pid $pid) still running after 20s: SIGTERM"; kill -TERM "$pid" 2>/dev/null || true
      for ((i = 0; i < 100; i++)); do alive "$pid" || break; sleep 0.1; done
      if alive "$pid"; then log "ElectrumX (pid $pid): SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; sleep 0.5; fi
    fi
    log "ElectrumX (pid $pid) stopped"
  fi
  rm -f "$RUN/electrumx.pid"
  set_env_pid ""
  for ((i = 0; i < 50; i++)); do port_open "$TCP_PORT" || return 0; sleep 0.1; done
  die "127.0.0.1:$TCP_PORT still accepts connections after ElectrumX stopped"
}

launch_saved() { # relaunch from the saved /proc environ + cmdline
  local -a envv cmd
  mapfile -d '' envv <"$RUN/electrumx.launch-env"
  mapfile -d '' cmd <"$RUN/electrumx.launch-cmd"
  [ "${#cmd[@]}" -gt 0 ] || return 1
  env -i "${envv[@]}" "${cmd[@]}" </dev/null >>"$RUN/electrumx.log" 2>&1 &
  EX_PID=$!
}

launch_rebuilt() { # same environment as start.sh builds, from the recorded env file
  local cache cert key services user pass
  cert="$(envval ELECTRUM_SSL_CERT)"; key=""
  [ -z "$cert" ] || key="$(dirname "$cert")/key.pem"
  # start.sh keeps the certificate in $CACHE/ssl/: use that cache when ER_CACHE_DIR is not set
  cache="${ER_CACHE_DIR:-}"
  [ -n "$cache" ] || { [ -n "$cert" ] && cache="$(dirname "$(dirname "$cert")")"; } \
    || cache="${XDG_CACHE_HOME:-$HOME/.cache}/electrum-regtest"
  user="$(envval NODE_RPC_USER)"; pass="$(envval NODE_RPC_PASSWORD)"
  services="tcp://127.0.0.1:$TCP_PORT,rpc://127.0.0.1:$(envval ELECTRUMX_ADMIN_PORT)"
  [ -z "$(envval ELECTRUM_SSL_PORT)" ] || services="$services,ssl://127.0.0.1:$(envval ELECTRUM_SSL_PORT)"
  [ -x "$cache/venv/bin/python" ] || die "no ElectrumX venv in $cache (set ER_CACHE_DIR as for start.sh)"
  log "no saved launch environment: rebuilding it from $RUN/env (ER_POLL_MS/ER_PAD_WAIT_MS/ER_LOG_LEVEL from the environment)"
  env -i PATH="$PATH" HOME="$RUN/electrumx" LANG=C.UTF-8 \
    COIN="$(envval COIN)" NET=regtest DB_ENGINE=leveldb DB_DIRECTORY="$RUN/electrumx/db" \
    DAEMON_URL="http://$user:$pass@127.0.0.1:$(envval NODE_RPC_PORT)/" \
    SERVICES="$services" SSL_CERTFILE="$cert" SSL_KEYFILE="$key" \
    PEER_DISCOVERY=off PEER_ANNOUNCE= ALLOW_ROOT=1 CACHE_MB=64 \
    DAEMON_POLL_INTERVAL_BLOCKS="${ER_POLL_MS:-200}" DAEMON_POLL_INTERVAL_MEMPOOL="${ER_POLL_MS:-200}" \
    COST_SOFT_LIMIT=0 COST_HARD_LIMIT=0 REQUEST_SLEEP=0 \
    PAD_WAIT_MS="${ER_PAD_WAIT_MS:-0}" \
    LOG_LEVEL="${ER_LOG_LEVEL:-info}" LOG_FORMAT='%(asctime)s %(levelname)s:%(name)s:%(message)s' \
    "$cache/venv/bin/python" "$HERE/exlaunch.py" </dev/null >>"$RUN/electrumx.log" 2>&1 &
  EX_PID=$!
}

do_start() {
  local pid height deadline t0=$SECONDS
  pid="$(current_pid)"
  if [ -n "$pid" ]; then log "ElectrumX already running (pid $pid)"; echo "ELECTRUMX_PID=$pid"; return 0; fi
  alive "$(envval NODE_PID)" || die "the node (pid $(envval NODE_PID)) is not running: use start.sh"
  height="$("$PY" "$HERE/ercli.py" rpc getblockcount)" || die "node RPC does not answer"
  port_open "$TCP_PORT" && die "127.0.0.1:$TCP_PORT is already taken by another process"
  printf '\n===== electrumx-restart.sh start %s =====\n' "$(date -u +%FT%TZ)" >>"$RUN/electrumx.log"
  EX_PID=""
  if [ -s "$RUN/electrumx.launch-env" ] && [ -s "$RUN/electrumx.launch-cmd" ]; then launch_saved || EX_PID=""; fi
  [ -n "$EX_PID" ] || launch_rebuilt
  echo "$EX_PID" >"$RUN/electrumx.pid"
  set_env_pid "$EX_PID"
  deadline=$((SECONDS + TIMEOUT))
  # wait-electrum connects, negotiates server.version, and checks headers.subscribe >= height
  until "$PY" "$HERE/ercli.py" wait-electrum "$height" 1 >/dev/null 2>&1; do
    if ! alive "$EX_PID"; then
      tail -n 30 "$RUN/electrumx.log" >&2; rm -f "$RUN/electrumx.pid"; set_env_pid ""
      die "ElectrumX exited"
    fi
    if grep -q 'server failed to listen' <(tail -n 50 "$RUN/electrumx.log"); then
      kill -INT "$EX_PID" 2>/dev/null || true
      grep 'server failed to listen' "$RUN/electrumx.log" | tail -n 3 >&2
      die "ElectrumX could not listen on its old port(s)"
    fi
    [ $SECONDS -lt $deadline ] || { kill -INT "$EX_PID" 2>/dev/null || true; die "ElectrumX not serving height $height after ${TIMEOUT}s"; }
    sleep 0.2
  done
  log "ElectrumX (pid $EX_PID) serving at height $height on 127.0.0.1:$TCP_PORT in $((SECONDS - t0))s"
  echo "ELECTRUMX_PID=$EX_PID"
}

case "${1:-}" in
  stop) do_stop ;;
  start) do_start ;;
  restart) do_stop; do_start ;;
  status) pid="$(current_pid)"; [ -n "$pid" ] || { echo "ELECTRUMX_PID="; exit 1; }; echo "ELECTRUMX_PID=$pid" ;;
  *) echo "usage: $0 stop|start|restart|status   (ER_RUN_DIR as for start.sh)" >&2; exit 2 ;;
esac
