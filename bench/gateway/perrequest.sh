#!/usr/bin/env bash
# perrequest.sh counts, per proxied request, what nginx as a reverse proxy,
# the epoll + features floor parsed by internal/h1 and relia's gateway on
# each listener engine (goroutines, and eventloop)
# (the benchmark's config: metrics, access log to a file, a breaker, a
# retry budget; GOMAXPROCS=1) spend: syscalls by kind, reads that return
# EAGAIN, context switches, and for relia and the floor the runtime's
# operations (uprobes: deadline changes, timer modifications, parks,
# scheduler rounds, yields, allocations). Counts, not times, so they hold
# on a busy machine. Two loads per proxy: a fixed rate below saturation
# (hey -q) and saturation (wrk -c50), none pinned.
#
#   cd bench && sudo gateway/perrequest.sh [RATE] [SECONDS]
#
# Needs root (perf probes and tracepoints), perf, nginx, hey and wrk.
set -euo pipefail
RATE=${1:-4000}
SECS=${2:-5}
CONNS=40
cd "$(dirname "$0")/.."
OUT=$PWD/out/perrequest
rm -rf "$OUT"
mkdir -p "$OUT/nb/tmp" "$OUT/np/tmp"
(cd .. && go build -o "$OUT/relia" ./cmd/relia)
go build -o "$OUT/floor" ./gateway/floor

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
B=$(port); NP=$(port); FL=$(port); GW=$(port); AD=$(port)
nginxconf() {
	cat >"$1/nginx.conf" <<EOC
worker_processes 1;
daemon off;
pid $1/nginx.pid;
error_log $1/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $1/tmp; proxy_temp_path $1/tmp; fastcgi_temp_path $1/tmp; uwsgi_temp_path $1/tmp; scgi_temp_path $1/tmp;
  upstream backend { server 127.0.0.1:$B; keepalive 64; }
  $2
}
EOC
}
nginxconf "$OUT/nb" "server { listen 127.0.0.1:$B; location / { return 200 \"ok\\n\"; } }"
nginxconf "$OUT/np" "server { listen 127.0.0.1:$NP; location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection \"\"; } }"
cat >"$OUT/gateway.yaml" <<EOC
kind: Gateway
version: relia/v1
spec:
  listeners: [{address: "127.0.0.1:$GW"}]
  admin: {address: "127.0.0.1:$AD"}
  accessLog: {path: "$OUT/access.log"}
  upstreams:
    - name: nginx
      targets: [{address: "127.0.0.1:$B"}]
      breaker: {consecutiveFailures: 5, openDuration: 10s}
  routes:
    - name: all
      upstream: nginx
      timeout: 5s
      retry: {attempts: 2, budget: {ratio: 20%}}
EOC
LP=$(port); LA=$(port)
sed -e "s/127.0.0.1:$GW\"}]/127.0.0.1:$LP\", engine: eventloop}]/" -e "s/127.0.0.1:$AD/127.0.0.1:$LA/" \
	-e "s#$OUT/access.log#$OUT/access-eventloop.log#" "$OUT/gateway.yaml" >"$OUT/gateway-eventloop.yaml"

PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null; perf probe -q -d "relia_rq:*" 2>/dev/null || true' EXIT
nginx -c "$OUT/nb/nginx.conf" -p "$OUT/nb" & PIDS+=($!)
nginx -c "$OUT/np/nginx.conf" -p "$OUT/np" & PIDS+=($!)
NGINX_MASTER=$!
env GOMAXPROCS=1 "$OUT/floor" -engine epoll+h1 -listen "127.0.0.1:$FL" -upstream "127.0.0.1:$B" -access-log "$OUT/floor-access.log" & PIDS+=($!)
FLOOR=$!
env GOMAXPROCS=1 "$OUT/relia" gateway --watch 0 --config "$OUT/gateway.yaml" 2>"$OUT/gateway.log" & PIDS+=($!)
RELIA=$!
env GOMAXPROCS=1 "$OUT/relia" gateway --watch 0 --config "$OUT/gateway-eventloop.yaml" 2>"$OUT/gateway-eventloop.log" & PIDS+=($!)
LOOP=$!
sleep 2
NGINX=$(pgrep -P "$NGINX_MASTER" | head -1)

# probes BIN: uprobes on the runtime's per-request operations.
probes() {
	perf probe -q -d 'relia_rq:*' 2>/dev/null || true
	local f
	for f in internal/poll.runtime_pollSetDeadline 'runtime.(*timer).modify' runtime.gopark runtime.schedule runtime.goschedImpl runtime.mallocgc; do
		perf probe -q -x "$1" --add "relia_rq:rq_$(echo "$f" | sed 's/.*\.//; s/[^a-zA-Z0-9]/_/g')=$f" >/dev/null 2>&1 || true
	done
}
EVENTS="-e raw_syscalls:sys_enter -e context-switches"
for s in read write readv writev recvfrom sendto epoll_wait epoll_pwait futex nanosleep getsockopt; do
	EVENTS="$EVENTS -e syscalls:sys_enter_$s"
done
EVENTS="$EVENTS -e syscalls:sys_exit_read --filter ret==-11"

# measure NAME PORT PID LOAD [probes]: with probes, only the runtime's
# operations are counted (each uprobe hit slows the process several
# microseconds, which changes how often a read finds its data).
measure() {
	local ev=$EVENTS n
	[ -n "${5:-}" ] && ev="-e relia_rq:*"
	hey -z 1s -c $CONNS "http://127.0.0.1:$2/" >/dev/null 2>&1 # open the connections
	perf stat -x, $ev -p "$3" -o "$OUT/perf.txt" &
	local ps=$!
	sleep 0.2
	if [ "$4" = saturation ]; then
		wrk -t1 -c50 -d"${SECS}s" "http://127.0.0.1:$2/" >"$OUT/load.txt" 2>&1
		n=$(awk '/requests in/ {print $1}' "$OUT/load.txt")
	else
		hey -z "${SECS}s" -c $CONNS -q $((RATE / CONNS)) "http://127.0.0.1:$2/" >"$OUT/load.txt" 2>&1
		n=$(awk '$1 == "[200]" {print $2}' "$OUT/load.txt")
	fi
	kill -INT $ps
	wait $ps || true
	echo "$1, $4${5:+ (runtime operations, under uprobes)}: $n requests"
	awk -F, -v n="$n" '$3 != "" && $1 ~ /^[0-9.]+$/ && $1 > 0 {
		name = $3
		if (name == "raw_syscalls:sys_enter") name = "syscalls, all"
		else if (name == "syscalls:sys_exit_read") name = "reads returning EAGAIN"
		else if (name ~ /^syscalls:sys_enter_/) { sub(/^syscalls:sys_enter_/, "", name); name = name "(2)" }
		else if (name ~ /^relia_rq:/) { sub(/^relia_rq:rq_/, "runtime ", name) }
		printf "  %-32s %7.3f a request\n", name, $1 / n
	}' "$OUT/perf.txt"
}
for load in rate saturation; do
	measure "nginx (proxy)" "$NP" "$NGINX" $load
	measure "floor: epoll + features, parsed by internal/h1" "$FL" "$FLOOR" $load
	measure "relia gateway" "$GW" "$RELIA" $load
	measure "relia gateway (event loop)" "$LP" "$LOOP" $load
done
probes "$OUT/floor"
measure "floor: epoll + features, parsed by internal/h1" "$FL" "$FLOOR" rate probes
probes "$OUT/relia"
measure "relia gateway" "$GW" "$RELIA" rate probes
measure "relia gateway (event loop)" "$LP" "$LOOP" rate probes
