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

# Cluster mode against embedded, in the same run: a VictoriaLogs cluster
# (two storage nodes, one insert/select node), a victoria-metrics
# (VM=path) and two SkyTrail nodes with --peers, --spans-url and
# --metrics-write-url; loadgen sends to node A only, so about half the
# spans are forwarded to node B. Spans per CPU second count the CPU of
# both SkyTrail nodes (every span costs its receiving node and, when
# forwarded, its owner); the engines' CPU is read from /proc beside it.
VM=${VM:-$HOME/.cache/skytrail/victoria-metrics-v1.151.0/victoria-metrics}
if [ -x "$VM" ] && [ "${CLUSTER:-1}" = 1 ]; then
  for p in 1 2; do
    "$VL" -httpListenAddr=127.0.0.1:1949$p -storageDataPath="$DIR/vls$p" -loggerLevel=WARN >"$DIR/vls$p.log" 2>&1 & pids+=($!); eval "vls$p=\$!"
  done
  "$VL" -httpListenAddr=127.0.0.1:19438 -storageDataPath="$DIR/vlfront" -storageNode=127.0.0.1:19491,127.0.0.1:19492 -loggerLevel=WARN >"$DIR/vlf.log" 2>&1 & pids+=($!); vlf=$!
  "$VM" -httpListenAddr=127.0.0.1:18428 -storageDataPath="$DIR/vm" -loggerLevel=WARN -search.latencyOffset=0s >"$DIR/vm.log" 2>&1 & pids+=($!); vmpid=$!
  sleep 2
  peers=127.0.0.1:14337,127.0.0.1:14347
  for n in a b; do
    port=$([ $n = a ] && echo 14337 || echo 14347); http=$([ $n = a ] && echo 18090 || echo 18091)
    "$BIN" server --data "$DIR/node-$n" --spans-url http://127.0.0.1:19438 --metrics-write-url http://127.0.0.1:18428/api/v1/write \
      --metrics-query-url http://127.0.0.1:18428 --node-name node-$n --peers $peers $([ $n = a ] && echo --ruler) \
      --http 127.0.0.1:$http --otlp-grpc 127.0.0.1:$port --otlp-http= --sw-grpc= --sw-http= 2>"$DIR/node-$n.log" & pids+=($!); eval "node$n=\$!"
  done
  sleep 3
  rss() { awk '/VmRSS/ {printf "%.0f MiB", $2/1024}' "/proc/$1/status"; }
  for mode in embedded cluster; do
    if [ $mode = embedded ]; then st=("$epid"); eng=(); ep=127.0.0.1:14327; else st=("$nodea" "$nodeb"); eng=("$vls1" "$vls2" "$vlf" "$vmpid"); ep=127.0.0.1:14337; fi
    s0=0; for p in "${st[@]}"; do s0=$((s0 + $(cpu "$p"))); done
    e0=0; for p in "${eng[@]}"; do e0=$((e0 + $(cpu "$p"))); done
    spans=$("$BIN" loadgen -endpoint $ep -duration 10s -quiet -json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["spans"])')
    s1=0; for p in "${st[@]}"; do s1=$((s1 + $(cpu "$p"))); done
    e1=0; for p in "${eng[@]}"; do e1=$((e1 + $(cpu "$p"))); done
    r=""; for p in "${st[@]}"; do r="$r $(rss "$p")"; done
    echo "$mode (load average $(cut -d' ' -f1 /proc/loadavg)): $spans spans in 10 s; SkyTrail CPU $(echo "scale=2; ($s1-$s0)/$tck" | bc) s," \
      "$(echo "scale=0; $spans*$tck/($s1-$s0)" | bc) spans per SkyTrail CPU-s; engines CPU $(echo "scale=2; ($e1-$e0)/$tck" | bc) s; SkyTrail RSS$r"
  done
fi
