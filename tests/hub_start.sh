# Sourced: start_hub DIR LOG starts the Hub stand-in (tests/hub_server.py) over DIR on a port it
# binds itself, and sets HUB_PID and HUB_PORT once it answers; if it cannot start, says why.
start_hub() {
  local dir=$1 log=$2 port_file
  port_file=$(mktemp -u "${TMPDIR:-/tmp}/ettin-hub-port.XXXXXX")
  python3 "$(dirname "${BASH_SOURCE[0]}")/hub_server.py" "$dir" "$port_file" 2>"$log" &
  HUB_PID=$!
  HUB_PORT=
  for _ in $(seq 100); do
    [ -z "$HUB_PORT" ] && [ -s "$port_file" ] && HUB_PORT=$(cat "$port_file")
    if [ -n "$HUB_PORT" ] &&
       python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$HUB_PORT/_stats')" 2>/dev/null; then
      rm -f "$port_file"
      export HUB_PID HUB_PORT
      return 0
    fi
    if ! kill -0 "$HUB_PID" 2>/dev/null; then
      echo "the Hub stand-in exited at start; its log ($log):"; tail -5 "$log"; return 1
    fi
    sleep 0.1
  done
  echo "the Hub stand-in did not answer within 10 s (port '${HUB_PORT:-not chosen yet}'); its log ($log):"
  tail -5 "$log"
  [ -n "$HUB_PORT" ] && python3 "$(dirname "${BASH_SOURCE[0]}")/../scripts/ports.py" holder "$HUB_PORT"
  return 1
}
