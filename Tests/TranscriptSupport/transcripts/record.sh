#!/bin/bash
# Re-record all git-annex P2P transcripts from scratch.
#
#   record.sh OUTDIR
#
# Writes OUTDIR/<pair>/<session>.transcript and OUTDIR/<pair>/commands.log,
# where <pair> is a git-annex version (client and server the same version),
# or client-<v>+server-<v> for mixed pairs.  Hand-written server-side
# sessions go to OUTDIR/<version>/server-*.transcript.
#
# Environment:
#   GAVENV       PyPI git-annex venv (default /tmp/gavenv; binaries in $GAVENV/bin)
#   DEB_BIN      directory of Debian's git-annex (default /usr/bin)
#   KEEP_WORK=1  keep the temp dirs (printed) for inspection
#   PARTS        which parts to record (default "client server mixed")
#
# Needs: bash, git, python3, the two git-annex builds.  Runs as any user; all
# repositories live in temp dirs.  Nothing here talks to a real ssh server:
# recorder.py stands in for ssh and runs the remote command locally.
set -euo pipefail

OUT=${1:?usage: record.sh OUTDIR}
GAVENV=${GAVENV:-/tmp/gavenv}
DEB_BIN=${DEB_BIN:-/usr/bin}
HERE=$(cd "$(dirname "$0")" && pwd)
PY=$(python3 -c 'import sys; print(sys.executable)')
RECORDER="$HERE/recorder.py"
BASEPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

# Fixed identities so that re-recording gives the same UUIDs and commits.
SERVER_UUID=11111111-1111-4111-8111-111111111111
CLIENT_UUID=22222222-2222-4222-8222-222222222222
export GIT_AUTHOR_NAME="annexd fixtures" GIT_AUTHOR_EMAIL="fixtures@annexd.invalid"
export GIT_COMMITTER_NAME="annexd fixtures" GIT_COMMITTER_EMAIL="fixtures@annexd.invalid"
export GIT_AUTHOR_DATE="2024-01-01T00:00:00Z" GIT_COMMITTER_DATE="2024-01-01T00:00:00Z"
export GIT_CONFIG_NOSYSTEM=1 LC_ALL=C.UTF-8 TZ=UTC
unset GIT_DIR GIT_WORK_TREE GIT_SSH GIT_SSH_COMMAND GIT_ANNEX_USE_GIT_SSH || true

log() { printf '== %s\n' "$*" >&2; }

annex_version() { PATH="$1:$BASEPATH" git-annex version --raw; }

[ -x "$DEB_BIN/git-annex" ] || { echo "no $DEB_BIN/git-annex" >&2; exit 1; }
[ -x "$GAVENV/bin/git-annex" ] || { echo "no $GAVENV/bin/git-annex" >&2; exit 1; }
DEB_V=$(annex_version "$DEB_BIN")
PYPI_V=$(annex_version "$GAVENV/bin" | sed 's/-g[0-9a-f]*$//')
log "Debian git-annex $DEB_V ($DEB_BIN), PyPI git-annex $PYPI_V ($GAVENV/bin)"

# Deterministic content: "hello\n" (6 bytes) and 100 KiB of SHA-256 stream.
gen() { # gen SEED NBYTES
	"$PY" -c '
import hashlib, sys
seed, n = sys.argv[1].encode(), int(sys.argv[2])
out, i = bytearray(), 0
while len(out) < n:
    out += hashlib.sha256(seed + i.to_bytes(8, "big")).digest(); i += 1
sys.stdout.buffer.write(bytes(out[:n]))' "$1" "$2"
}
keyof() { # keyof FILE EXT -> SHA256E key of a plain file's content
	printf 'SHA256E-s%s--%s%s' "$(stat -L -c %s "$1")" "$(sha256sum "$1" | cut -d' ' -f1)" "$2"
}

WORKROOT=$(mktemp -d /tmp/annexd-rec.XXXXXX)
cleanup() {
	if [ "${KEEP_WORK:-}" = 1 ]; then
		log "kept work dirs under $WORKROOT"
	else
		rm -rf "$WORKROOT"
	fi
}
trap cleanup EXIT

new_work() {
	local w
	w=$(mktemp -d "$WORKROOT/w.XXXXXX")
	mkdir -p "$w/home"
	printf '[init]\n\tdefaultBranch = master\n[advice]\n\tdetachedHead = false\n' >"$w/home/.gitconfig"
	echo "$w"
}

# Wait until every recorder of a directory has finished writing.
wait_recorders() {
	local d=$1 i
	for i in $(seq 1 300); do
		compgen -G "$d/*.inprogress" >/dev/null || return 0
		sleep 0.1
	done
	log "WARNING: recorders in $d still running after 30s"
}

# make_server WORK BIN: server repo with small.txt and medium.bin
make_server() {
	local w=$1 bin=$2
	(
		export PATH="$bin:$BASEPATH" HOME="$w/home"
		git init -q "$w/server"
		cd "$w/server"
		git config annex.uuid "$SERVER_UUID"
		git annex init -q server
		printf 'hello\n' >small.txt
		gen medium 102400 >medium.bin
		git annex add -q small.txt medium.bin
		git commit -q -m "server: add small.txt medium.bin"
	)
}

# ------------------------------------------------------------ client sessions

# record_client CLIENT_BIN SERVER_BIN OUTDIR
record_client() {
	local cbin=$1 sbin=$2 dir=$3 w
	w=$(new_work)
	mkdir -p "$dir"
	rm -f "$dir"/*.transcript "$dir"/commands.log
	log "client sessions: client=$cbin server=$sbin -> $dir (work $w)"
	make_server "$w" "$sbin"
	local cv sv
	cv=$(annex_version "$cbin"); sv=$(annex_version "$sbin")
	(
		export HOME="$w/home"
		export PATH="$cbin:$BASEPATH"
		git clone -q "$w/server" "$w/client"
		cd "$w/client"
		git remote set-url origin "ssh://localhost$w/server"
		git config annex.uuid "$CLIENT_UUID"
		git config annex.sshcaching false

		export GIT_ANNEX_USE_GIT_SSH=1
		export GIT_SSH_COMMAND="$PY $RECORDER ssh"
		export REC_LOG="$dir/commands.log"
		export REC_SERVER_PATH="$sbin:$BASEPATH"
		export REC_SUBST="$w=/WORK"
		export REC_HEADER="client: git-annex $cv;server: git-annex $sv"

		# run NAME CMD...: run a client command, recording its p2pstdio sessions
		run() {
			local name=$1; shift
			echo "\$ $*" | sed "s#$w#/WORK#g" >>"$dir/commands.log"
			REC_DIR=$dir REC_NAME=$name REC_HEADER="$REC_HEADER;client-command: $*" "$@" \
				>"$w/out.$name" 2>&1 || echo "[$name] exit status $?" >>"$dir/commands.log"
			wait_recorders "$dir"
			sed "s#$w#/WORK#g; s/^/[$name] | /" "$w/out.$name" >>"$dir/commands.log"
		}
		# unrecorded CMD...: a client command whose sessions are not recorded
		unrecorded() { REC_LOG=/dev/null "$@" >/dev/null 2>&1 || true; wait_recorders "$dir"; }

		echo "\$ git annex init client   (setup, not recorded)" >>"$dir/commands.log"
		REC_NAME=setup git annex init -q client

		# 1. get
		run get-small git annex get small.txt
		run get-medium git annex get medium.bin

		# 2. copy --to
		printf 'world\n' >new-small.txt
		gen newmedium 102400 >new-medium.bin
		git annex add -q new-small.txt new-medium.bin
		git commit -q -m "client: add new files"
		run copy-to-small git annex copy --to origin new-small.txt
		run copy-to-medium git annex copy --to origin new-medium.bin

		# 3. drop --from (REMOVE), and a local drop (LOCKCONTENT on the remote)
		run drop-from-small git annex drop --from origin new-small.txt
		run drop-local-small git annex drop small.txt

		# 4. fsck --from (downloads and verifies) and fsck --fast --from (CHECKPRESENT)
		run fsck-from-small git annex fsck --from origin small.txt
		run fsck-from-fast-small git annex fsck --fast --from origin small.txt
		# fsck --from of a key the client's location log wrongly says is there
		run fsck-from-missing git annex fsck --from origin new-small.txt

		# 6. copy --to when the server already has the content but the client
		#    does not know it (content added independently on the server)
		#    Without --fast the client asks CHECKPRESENT first and never PUTs;
		#    with --fast it trusts its location log and PUTs -> ALREADY-HAVE.
		(cd "$w/server" && export PATH="$sbin:$BASEPATH" &&
			printf 'shared one\n' >same1.txt && printf 'shared two\n' >same2.txt &&
			git annex add -q same1.txt same2.txt && git commit -q -m "server: same*.txt")
		printf 'shared one\n' >same1.txt
		printf 'shared two\n' >same2.txt
		git annex add -q same1.txt same2.txt
		git commit -q -m "client: same*.txt"
		run copy-to-present git annex copy --to origin same1.txt
		run copy-to-already-have git annex copy --fast --to origin same2.txt

		# 5. sync --content with changes on both sides
		(cd "$w/server" && export PATH="$sbin:$BASEPATH" && printf 'from server\n' >server-new.txt &&
			git annex add -q server-new.txt && git commit -q -m "server: server-new.txt")
		printf 'from client\n' >client-new.txt
		git annex add -q client-new.txt
		git commit -q -m "client: client-new.txt"
		run sync-content git annex sync --content

		# 7. interrupted get, then resumed get.  The recorder throttles
		#    server->client bytes; the client is SIGKILLed once the partial
		#    file in .git/annex/tmp has grown past 32 KiB.
		local mkey
		mkey=$(git annex lookupkey medium.bin)
		unrecorded git annex drop medium.bin
		echo "\$ git-annex get medium.bin   (throttled, killed with SIGKILL mid-transfer)" >>"$dir/commands.log"
		REC_DIR=$dir REC_NAME=get-interrupted REC_THROTTLE=16384 \
			REC_HEADER="$REC_HEADER;client-command: git-annex get medium.bin (SIGKILLed mid-transfer)" \
			git-annex get medium.bin >"$w/out.int" 2>&1 &
		local pid=$! i sz=0
		for i in $(seq 1 300); do
			sz=$(stat -c %s ".git/annex/tmp/$mkey" 2>/dev/null || echo 0)
			[ "$sz" -ge 32768 ] && break
			sleep 0.05
		done
		kill -9 "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		wait_recorders "$dir"
		echo "[get-interrupted] killed at partial size $sz; now $(stat -c %s ".git/annex/tmp/$mkey" 2>/dev/null || echo none)" >>"$dir/commands.log"
		run get-resumed git annex get medium.bin
	)
	[ "${KEEP_WORK:-}" = 1 ] || rm -rf "$w"
}

# --------------------------------------------------- hand-written server sessions

record_server() {
	local sbin=$1 dir=$2 w sv
	w=$(new_work)
	mkdir -p "$dir"
	rm -f "$dir"/server-*.transcript
	sv=$(annex_version "$sbin")
	log "server sessions: server=$sbin -> $dir (work $w)"
	make_server "$w" "$sbin"
	printf 'new\n' >"$w/new.txt"
	export REC_VAR_KEY6 REC_VAR_ABSENTKEY REC_VAR_NEWKEY
	REC_VAR_KEY6=$(cd "$w/server" && PATH="$sbin:$BASEPATH" HOME="$w/home" git annex lookupkey small.txt)
	REC_VAR_NEWKEY=$(keyof "$w/new.txt" .txt)
	REC_VAR_ABSENTKEY="SHA256E-s3--$(printf 'abc' | sha256sum | cut -d' ' -f1).txt"
	local name
	for name in $("$PY" "$RECORDER" list-scripts); do
		rm -rf "$w/s"
		cp -a "$w/server" "$w/s"
		(
			export HOME="$w/home" PATH="$sbin:$BASEPATH"
			export REC_SUBST="$w/s=/WORK/server;$w=/WORK"
			export REC_HEADER="server: git-annex $sv"
			cd "$w"
			"$PY" "$RECORDER" script "$name" "$dir/server-$name.transcript" -- \
				git-annex-shell p2pstdio "$w/s" "$CLIENT_UUID" --uuid "$SERVER_UUID"
		)
	done
	[ "${KEEP_WORK:-}" = 1 ] || rm -rf "$w"
}

PARTS=${PARTS:-client server mixed}
case " $PARTS " in *" client "*)
	record_client "$DEB_BIN" "$DEB_BIN" "$OUT/$DEB_V"
	record_client "$GAVENV/bin" "$GAVENV/bin" "$OUT/$PYPI_V" ;;
esac
case " $PARTS " in *" server "*)
	record_server "$DEB_BIN" "$OUT/$DEB_V"
	record_server "$GAVENV/bin" "$OUT/$PYPI_V" ;;
esac
case " $PARTS " in *" mixed "*)
	record_client "$DEB_BIN" "$GAVENV/bin" "$OUT/client-$DEB_V+server-$PYPI_V"
	record_client "$GAVENV/bin" "$DEB_BIN" "$OUT/client-$PYPI_V+server-$DEB_V" ;;
esac
log "done: $OUT"
