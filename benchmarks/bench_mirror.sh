#!/bin/bash
# benchmarks/bench_mirror.sh: throughput and peak memory of `tnrec mirror`
# on loopback, side by side with curl's single-connection download of the
# same file from the same server.
#
#   bench_mirror.sh TNREC_BIN [SIZE_MIB] [S3_SIZE_MIB] [RUNS]
#
# nginx (Debian nginx-light) serves a random file under /file/<bucket>/ on
# 127.0.0.1, as B2 behind a proxy; it also sends the file's MD5 as
# x-amz-meta-md5 so --stream can check it. Rows:
#   curl -o                    one connection, no checksum
#   curl -o + md5sum           the same plus reading the file back for its MD5
#   tnrec --connections 1 / 4  download to disk, MD5 checked, atomic rename
# and, to moto (S3 in server mode, /opt/tnrec-moto/bin/python or
# $TNREC_MOTO_PYTHON) with a smaller file, since moto keeps objects in
# Python memory and is the slow side:
#   curl -o of that file, tnrec staged (download, check, upload) and --stream.
# Each row is the median of RUNS runs; memory is the peak RSS reported by
# /usr/bin/time -v. Output: a Markdown table on stdout.
set -euo pipefail
TNREC=${1:?usage: bench_mirror.sh TNREC_BIN [SIZE_MIB] [S3_SIZE_MIB] [RUNS]}
TNREC=$(readlink -f "$TNREC")
SIZE_MIB=${2:-2048}
S3_MIB=${3:-256}
RUNS=${4:-3}
MOTO_PY=${TNREC_MOTO_PYTHON:-/opt/tnrec-moto/bin/python}
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
WORK=$(mktemp -d /tmp/bench_mirror.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
    for _ in $(seq 1 100); do
        (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "port $1 did not open" >&2
    return 1
}

mkdir -p "$WORK/www/bench"
echo "making ${SIZE_MIB} MiB and ${S3_MIB} MiB random files..." >&2
head -c $((SIZE_MIB << 20)) /dev/urandom > "$WORK/www/bench/big.bin"
head -c $((S3_MIB << 20)) /dev/urandom > "$WORK/www/bench/s3.bin"
MD5_BIG=$(md5sum "$WORK/www/bench/big.bin" | cut -d' ' -f1)
MD5_S3=$(md5sum "$WORK/www/bench/s3.bin" | cut -d' ' -f1)

PORT=$(free_port)
USER_LINE=""
[ "$(id -u)" = 0 ] && USER_LINE="user root root;"
cat > "$WORK/nginx.conf" <<EOF
$USER_LINE
worker_processes 2;
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/error.log;
events { worker_connections 256; }
http {
  access_log off;
  sendfile on;
  client_body_temp_path $WORK/t_body;
  proxy_temp_path $WORK/t_proxy;
  fastcgi_temp_path $WORK/t_fcgi;
  uwsgi_temp_path $WORK/t_uwsgi;
  scgi_temp_path $WORK/t_scgi;
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:$PORT;
    location = /file/bench/big.bin { alias $WORK/www/bench/big.bin; add_header x-amz-meta-md5 $MD5_BIG; }
    location = /file/bench/s3.bin { alias $WORK/www/bench/s3.bin; add_header x-amz-meta-md5 $MD5_S3; }
  }
}
EOF
"$NGINX" -p "$WORK" -c "$WORK/nginx.conf" -e "$WORK/error.log" &
PIDS+=($!)
wait_port "$PORT"
URL=http://127.0.0.1:$PORT/file/bench

# run_timed NAME COMMAND...: one run; appends "seconds maxrss_kib" to $WORK/NAME.
run_timed() {
    local name=$1; shift
    local t0 t1
    t0=$(date +%s.%N)
    /usr/bin/time -v -o "$WORK/time.txt" "$@" > "$WORK/last.out" 2>&1 || {
        echo "failed: $*" >&2; cat "$WORK/last.out" >&2; exit 1; }
    t1=$(date +%s.%N)
    local rss
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/time.txt")
    echo "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}') $rss" >> "$WORK/$name"
}

# median of column 1 and the max of column 2 of $WORK/NAME
summary() {
    sort -n -k1,1 "$WORK/$1" | awk '{t[NR]=$1; if ($2>m) m=$2} END {print t[int((NR+1)/2)], m}'
}

declare -a ROWS=()
row() { # NAME LABEL MIB
    local s; s=$(summary "$1")
    local t=${s% *} m=${s#* }
    ROWS+=("$(awk -v l="$2" -v s="$3" -v t="$t" -v m="$m" \
        'BEGIN {printf "| %s | %d MiB | %.2f | %.0f | %.1f |", l, s, t, s / t, m / 1024}')")
    echo "$2: ${t} s" >&2
}

for i in $(seq 1 "$RUNS"); do
    echo "disk run $i/$RUNS" >&2
    rm -f "$WORK/curl.bin"; sync
    run_timed curl curl -sS -f -o "$WORK/curl.bin" "$URL/big.bin"
    rm -f "$WORK/curl.bin"; sync
    run_timed curl_md5 bash -c "curl -sS -f -o '$WORK/curl.bin' '$URL/big.bin' && md5sum '$WORK/curl.bin'"
    rm -f "$WORK/curl.bin"
    for c in 1 4; do
        rm -rf "$WORK/out"; sync
        run_timed "tnrec_c$c" "$TNREC" mirror --connections "$c" "$URL/big.bin" "$WORK/out"
        [ "$(md5sum "$WORK/out/big.bin" | cut -d' ' -f1)" = "$MD5_BIG" ] || { echo "wrong file" >&2; exit 1; }
    done
    rm -rf "$WORK/out"
done
row curl "curl -o (1 connection, no checksum)" "$SIZE_MIB"
row curl_md5 "curl -o, then md5sum" "$SIZE_MIB"
row tnrec_c1 "tnrec mirror to disk, --connections 1" "$SIZE_MIB"
row tnrec_c4 "tnrec mirror to disk, --connections 4" "$SIZE_MIB"

if [ -x "$MOTO_PY" ] && "$MOTO_PY" -c 'import moto.server, boto3' 2>/dev/null; then
    MPORT=$(free_port)
    "$MOTO_PY" -m moto.server -H 127.0.0.1 -p "$MPORT" > "$WORK/moto.log" 2>&1 &
    PIDS+=($!)
    wait_port "$MPORT"
    export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret
    "$MOTO_PY" -c "import boto3; boto3.client('s3', endpoint_url='http://127.0.0.1:$MPORT', region_name='us-east-1').create_bucket(Bucket='bench')"
    for i in $(seq 1 "$RUNS"); do
        echo "s3 run $i/$RUNS" >&2
        rm -f "$WORK/curl.bin"
        run_timed s3_curl curl -sS -f -o "$WORK/curl.bin" "$URL/s3.bin"
        rm -f "$WORK/curl.bin"
        run_timed s3_staged "$TNREC" mirror --endpoint "http://127.0.0.1:$MPORT" --staging "$WORK/staging" \
            --part-size 16M "$URL/s3.bin" "s3://bench/staged$i"
        run_timed s3_stream "$TNREC" mirror --endpoint "http://127.0.0.1:$MPORT" --stream \
            --part-size 16M "$URL/s3.bin" "s3://bench/stream$i"
    done
    "$TNREC" mirror --verify --endpoint "http://127.0.0.1:$MPORT" "s3://bench/stream1" > /dev/null
    row s3_curl "curl -o (1 connection, no checksum)" "$S3_MIB"
    row s3_staged "tnrec mirror to S3 (moto), staged on disk, 16M parts" "$S3_MIB"
    row s3_stream "tnrec mirror to S3 (moto), --stream, 16M parts" "$S3_MIB"
else
    echo "no python with moto at $MOTO_PY: S3 rows skipped" >&2
fi

echo "| transfer | size | median s | MiB/s | peak RSS MiB |"
echo "|---|---|---|---|---|"
for r in "${ROWS[@]}"; do echo "$r"; done
