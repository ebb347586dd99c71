#!/usr/bin/env bash
# Embedded against remote span store, in one run on one machine: starts a
# victoria-logs (VL=path, default the tests' cached build), an embedded
# SkyTrail and one with --spans-url, drives `skytrail loadgen` at each for
# 10 s, and reports spans/s, the CPU seconds of SkyTrail and of
# VictoriaLogs, and trace-by-ID and search latencies over /api/v1.
#   go build -o /tmp/skytrail ./cmd/skytrail && bench/remotespans/run.sh /tmp/skytrail
set -euo pipefail
BIN=${1:?usage: run.sh path/to/skytrail}
VL=${VL:-$HOME/.cache/skytrail/victoria-logs-v1.52.1/victoria-logs}
[ -x "$VL" ] || { echo "no victoria-logs at $VL: run go test ./internal/storage/spanstore/ once, or set VL" >&2; exit 1; }
DIR=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$DIR"; }
trap cleanup EXIT
"$VL" -httpListenAddr=127.0.0.1:19428 -storageDataPath="$DIR/vl" -loggerLevel=WARN >"$DIR/vl.log" 2>&1 & pids+=($!); vlpid=$!
sleep 1
"$BIN" server --data "$DIR/embedded" --http 127.0.0.1:18081 --otlp-grpc 127.0.0.1:14327 --otlp-http= --sw-grpc= --sw-http= 2>"$DIR/e.log" & pids+=($!); epid=$!
"$BIN" server --data "$DIR/remote" --spans-url http://127.0.0.1:19428 --http 127.0.0.1:18080 --otlp-grpc 127.0.0.1:14317 --otlp-http= --sw-grpc= --sw-http= 2>"$DIR/r.log" & pids+=($!); rpid=$!
sleep 3

cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }
tck=$(getconf CLK_TCK)
lat() { sort -n | awk -v what="$1" '{a[NR]=$1} END {printf "  %s (%d): p50 %.1f ms, max %.1f ms\n", what, NR, a[int(NR/2)+1]*1000, a[NR]*1000}'; }
measure() { # name skytrail-pid engine-pid otlp api
  echo "$1 (load average $(cut -d' ' -f1 /proc/loadavg))"
  local s0 v0=0 s1 v1=0
  s0=$(cpu "$2"); [ "$3" != 0 ] && v0=$(cpu "$3")
  "$BIN" loadgen -endpoint "$4" -duration 10s -quiet 2>&1 | tail -1 | sed 's/^/  /'
  s1=$(cpu "$2"); [ "$3" != 0 ] && v1=$(cpu "$3")
  echo "  CPU: SkyTrail $(echo "scale=2; ($s1-$s0)/$tck" | bc) s, VictoriaLogs $(echo "scale=2; ($v1-$v0)/$tck" | bc) s"
  sleep 2
  ids=$(curl -s "$5/api/v1/traces?limit=20" | python3 -c 'import json,sys; print(" ".join(t["traceID"] for t in json.load(sys.stdin)["traces"]))')
  for id in $ids; do curl -s -o /dev/null -w "%{time_total}\n" "$5/api/v1/traces/$id"; done | lat "trace by ID"
  svcs=$(curl -s "$5/api/v1/services" | python3 -c 'import json,sys; print(" ".join(s["name"] for s in json.load(sys.stdin)["services"]))')
  for i in 1 2 3 4; do for s in $svcs; do curl -s -o /dev/null -w "%{time_total}\n" "$5/api/v1/traces?service=$s&limit=20"; done; done | lat "search by service, 20 traces"
  for i in $(seq 10); do curl -s -o /dev/null -w "%{time_total}\n" "$5/api/v1/traces?tag=error%3Dtrue&minDuration=1ms&limit=20"; done | lat "search error=true minDuration=1ms"
}
measure "embedded" "$epid" 0 127.0.0.1:14327 http://127.0.0.1:18081
measure "remote (--spans-url, single-node victoria-logs)" "$rpid" "$vlpid" 127.0.0.1:14317 http://127.0.0.1:18080
