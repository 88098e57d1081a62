# Shared by the bench-* scripts that need a SOCKS stand-in, annexd daemons and stock
# git-annex peers. Source it after setting root, tmp, ns (a network namespace with lo up),
# ANNEXD, CLI and STANDIN, and defining die; background pids go into the array pids, which
# the caller's cleanup kills.

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.2f", b-a}'; }
median() { sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a/b}'; }
mib() { awk -v k="$1" 'BEGIN{printf "%.1f", k/1024}'; }

# rpc SOCKET METHOD [JSON-PARAMS|@FILE]: the result, as JSON.
rpc() {
  python3 - "$@" <<'EOF'
import json, socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(600); s.connect(sys.argv[1])
req = {"jsonrpc": "2.0", "id": 1, "method": sys.argv[2]}
if len(sys.argv) > 3:
    a = sys.argv[3]
    req["params"] = json.load(open(a[1:])) if a.startswith("@") else json.loads(a)
s.sendall((json.dumps(req) + "\n").encode())
buf = b""
while not buf.endswith(b"\n"):
    c = s.recv(1 << 20)
    if not c: break
    buf += c
r = json.loads(buf)
if "error" in r: sys.exit("rpc %s: %s" % (sys.argv[2], r["error"]))
print(json.dumps(r["result"]))
EOF
}

# A valid v3 onion name of a fresh ed25519 key (for stock remotedaemon's creds/p2paddrs).
fresh_onion() {
  openssl genpkey -algorithm ed25519 2>/dev/null | openssl pkey -pubout -outform DER 2>/dev/null | tail -c 32 |
    python3 -c 'import sys,hashlib,base64; k=sys.stdin.buffer.read(); c=hashlib.sha3_256(b".onion checksum"+k+b"\x03").digest()[:2]; print(base64.b32encode(k+c+b"\x03").decode().lower()+".onion")'
}

# The SOCKS stand-in on 127.0.0.1:9050 in the namespace (what stock git-annex dials), mapping
# onion:port to unix sockets listed in $tmp/map. DELAY_MS>0 (standin_delayed) adds that delay
# to every chunk in each direction and one round trip to every CONNECT.
start_standin() { # [delay-ms]
  [ -f "$tmp/map" ] || : > "$tmp/map"
  if [ "${1:-0}" != 0 ]; then
    ip netns exec "$ns" python3 -u "$root/scripts/socks-delay.py" "$1" "$STANDIN" 127.0.0.1 9050 "$tmp/map" > "$tmp/standin.out" &
  else
    ip netns exec "$ns" python3 -u "$STANDIN" 127.0.0.1 9050 "$tmp/map" > "$tmp/standin.out" &
  fi
  standin_pid=$!; pids+=("$standin_pid")
  for _ in $(seq 200); do grep -q ready "$tmp/standin.out" 2>/dev/null && return; sleep 0.05; done
  die "the SOCKS stand-in did not start"
}
stop_pid() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# start_daemon NAME [in-ns]: annexd --tor none with state in $tmp/NAME; sets daemon_sock, daemon_pid.
start_daemon() {
  local d=$tmp/$1 wrap=()
  [ "${2:-}" = ns ] && wrap=(ip netns exec "$ns")
  mkdir -p "$d"
  "${wrap[@]}" "$ANNEXD" daemon --state-dir "$d/state" --socket "$d/rpc.sock" --log-level error --tor none "${@:3}" 2>>"$d/log" &
  daemon_pid=$!; pids+=("$daemon_pid"); daemon_sock=$d/rpc.sock
  for _ in $(seq 300); do rpc "$daemon_sock" daemon.status >/dev/null 2>&1 && return; sleep 0.05; done
  die "annexd $1 did not answer: $(cat "$d/log")"
}
cli() { local s=$1; shift; ANNEXD_SOCKET=$s "$CLI" "$@"; }

# serve_stock SERVER [PUBLISH] [COMMAND]: stock git-annex (COMMAND, default `remotedaemon
# --foreground`; `assistant --foreground` runs the assistant, whose remotedaemon serves)
# serving SERVER as a tor-annex peer: stock_address_for, then start_stock.
serve_stock() { stock_address_for "$1" "${2:-}"; start_stock "$1" "${3:-}"; }

# stock_address_for SERVER [PUBLISH]: SERVER's torrc (for a mount namespace to bind-mount on
# /etc/tor/torrc) naming the socket DIR/s, a fresh onion routed to it by the stand-in, and an
# address with a fresh token; sets stock_address (tor-annex::ONION:1234:TOKEN) and stock_dir.
# PUBLISH: a function that publishes DIR/s and prints the onion (a real tor) instead of the
# stand-in's map.
stock_address_for() {
  local srv=$1 publish=${2:-} uuid onion sockdir
  uuid=$(git -C "$srv" config annex.uuid); sockdir=$(mktemp -d "$tmp/rd.XXXX")
  if [ -n "$publish" ]; then onion=$("$publish" "$sockdir"); else onion=$(fresh_onion); fi
  printf 'HiddenServiceDir /var/lib/tor/tor-annex_%s_%s\nHiddenServicePort 1234 unix:%s/s\n' "$(id -u)" "$uuid" "$sockdir" > "$sockdir/torrc"
  mkdir -p "$srv/.git/annex/creds"; echo "tor-annex::$onion:1234" > "$srv/.git/annex/creds/p2paddrs"
  stock_address=$(cd "$srv" && git annex p2p --gen-addresses 2>/dev/null | grep '^tor-annex::' | head -1)
  stock_dir=$sockdir
  [ -n "$publish" ] || echo "$onion:1234 $sockdir/s" >> "$tmp/map"
}

# start_stock SERVER [COMMAND]: `git annex COMMAND` (default `remotedaemon --foreground`) in
# SERVER with its torrc (from stock_address_for: stock_dir) bind-mounted, in the namespace,
# where 127.0.0.1:9050 (which stock git-annex dials for its own tor-annex remotes) is the
# stand-in; waits until it listens on stock_dir/s; sets stock_rd_pid. Output: stock_dir/log.
start_stock() {
  local srv=$1 command=${2:-remotedaemon --foreground} sockdir=$stock_dir
  rm -f "$sockdir/s" "$sockdir/stdin"; mkfifo "$sockdir/stdin"
  # remotedaemon stops at EOF on stdin: the fifo's writer (sleep) keeps it open.
  ip netns exec "$ns" unshare -m sh -c "mount --bind $sockdir/torrc /etc/tor/torrc && cd $srv && exec git annex $command" \
    < "$sockdir/stdin" >> "$sockdir/log" 2>&1 &
  stock_rd_pid=$!; pids+=("$stock_rd_pid")
  sleep 1000000 > "$sockdir/stdin" & pids+=($!)
  for _ in $(seq 400); do [ -S "$sockdir/s" ] && break; sleep 0.05; done
  [ -S "$sockdir/s" ] || die "git annex $command did not listen on $sockdir/s: $(tail -5 "$sockdir/log")"
}
