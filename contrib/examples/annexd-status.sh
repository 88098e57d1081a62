#!/bin/sh
# annexd-status.sh: one line about annexd, then one line per repository it serves.
# Talks JSON-RPC 2.0 (one JSON text per line) to annexd's unix socket with socat and jq.
#   ANNEXD_SOCKET  the socket (default: $XDG_RUNTIME_DIR/annexd/rpc.sock)
# Needs: socat, jq.   Exit status 1 when annexd does not answer.
set -eu
sock=${ANNEXD_SOCKET:-${XDG_RUNTIME_DIR:-/tmp/annexd-$(id -u)}/annexd/rpc.sock}
command -v socat >/dev/null && command -v jq >/dev/null || { echo "annexd-status: needs socat and jq" >&2; exit 2; }

# Both requests on one connection; socat waits up to 5 s for the answers after sending.
replies=$(printf '%s\n' \
  '{"jsonrpc":"2.0","id":1,"method":"daemon.status"}' \
  '{"jsonrpc":"2.0","id":2,"method":"repo.list"}' |
  socat -t 5 - "UNIX-CONNECT:$sock" 2>/dev/null) || {
  echo "annexd-status: annexd is not answering on $sock (start it: systemctl --user start annexd)" >&2; exit 1; }

# Any error response: print it and fail.
if printf '%s\n' "$replies" | jq -e -s 'map(select(.error)) | length > 0' >/dev/null; then
  printf '%s\n' "$replies" | jq -r 'select(.error) | "annexd-status: \(.error.message) (\(.error.data.reason // .error.code))"' >&2
  exit 1
fi

printf '%s\n' "$replies" | jq -r -s '
  (map(select(.id == 1))[0].result) as $s |
  (map(select(.id == 2))[0].result.repos) as $r |
  "annexd \($s.version) pid \($s.pid) up \($s.uptime | floor)s, \($s.repos) repos, \($s.connections) connections",
  ($r[] | "\(.path)\t\(.uuid)\t\(.address)\tpeers=\(.peers)")'
