#!/bin/bash
# tests/cli/cli_options.sh: the options every command shares, through the
# real binary: --help and -h (and 'tnrec help CMD', the same text), an
# --opt=value form, a value out of range (exit 2 naming the flag), progress
# lines on a pipe (at --progress-interval 1 on a training job that runs
# longer than that on any machine; at the smallest interval, 0.1 s, for the
# shorter jobs), and --quiet. Skips (77) the parts that need NetCDF when tnrec lacks it.
# usage: cli_options.sh TNREC TMPDIR
tnrec=$1
tmp=$2
fail=0
rm -rf "$tmp" && mkdir -p "$tmp" || exit 1
die() { echo "FAIL: $*" >&2; fail=1; }

# run CODE ARGS...: tnrec ARGS with stdout, stderr in $tmp/out, $tmp/err; want exit CODE
run() {
    local want=$1; shift
    "$tnrec" "$@" >"$tmp/out" 2>"$tmp/err"
    local got=$?
    grep -qE "Sanitizer|runtime error:" "$tmp/err" && die "sanitizer report from tnrec $*: $(cat "$tmp/err")"
    [ "$got" = "$want" ] || die "tnrec $* exited $got, want $want: $(head -c 600 "$tmp/err")"
}
has() { # has FILE TEXT: the last run's FILE (out/err) contains TEXT
    grep -qF -- "$2" "$tmp/$1" || die "std$1 of the last run lacks '$2': $(head -c 600 "$tmp/$1")"
}
lacks() {
    ! grep -qF -- "$2" "$tmp/$1" || die "std$1 of the last run has '$2'"
}
# progress_lines CMD: the number of plain progress lines of the last run
progress_lines() { grep -c "^tnrec $1: .*/s" "$tmp/err"; }

# --help, -h and 'tnrec help CMD' print the same text, with -h listed.
for cmd in mirror synth build merge train eval predict import dump verify plot report; do
    run 0 "$cmd" --help; has out "usage: tnrec $cmd"; has out "-h, --help"
    cp "$tmp/out" "$tmp/help_long"
    run 0 "$cmd" -h
    cmp -s "$tmp/out" "$tmp/help_long" || die "tnrec $cmd -h differs from --help"
    run 0 help "$cmd"
    cmp -s "$tmp/out" "$tmp/help_long" || die "tnrec help $cmd differs from tnrec $cmd --help"
done
run 2 help no-such-command; has err "unknown command 'no-such-command'"

# Commands with workers take -j N and --jobs N.
for cmd in synth build train eval predict verify mirror; do
    run 0 "$cmd" --help; has out "-j, --jobs N"
done
# The old spelling still works where it existed.
run 0 build --help; has out "--threads"
run 0 train --help; has out "--threads"

# Out of range and unknown names: exit 2, the flag, the rule and the value.
run 2 train d -o r --batch 0;       has err "--batch must be 1..65536, got 0"
run 2 train d -o r --epochs=0;      has err "--epochs must be at least 1, got 0"
run 2 train d -o r --epochs=zzz;    has err "--epochs must be an integer"
run 2 train d -o r --lr -1;         has err "--lr must be greater than 0"
run 2 train --model huge --summary; has err "--model takes seed3d, tiny"; has err "'huge'"
run 2 train d -o r --device gpu;    has err "--device must be one of cpu, cuda; got 'gpu'"
run 2 train d -o r --variables DBZ,FOO; has err "DBZ, VEL, KDP"; has err "'DBZ,FOO'"
run 2 synth d --samples=0;          has err "--samples must be at least 1, got 0"
run 2 build d -o o --frames=5;      has err "--frames must be 1..4, got 5"
run 2 build d -o o --variables DBZ,FOO; has err "--variables"; has err "range_folded_mask"
run 2 build d -o o --threads 0;     has err "--threads must be 1..4096, got 0"
run 2 build d -o o -j 0;            has err "-j must be 1..4096, got 0"
run 2 merge p --output;             has err "--output needs a value"
run 2 eval c d --batch=0;           has err "--batch must be 1..65536, got 0"
run 2 eval c d --device=tpu;        has err "--device must be one of cpu, cuda"
run 2 predict c d -o s.csv --jobs=0; has err "--jobs must be 1..65536, got 0"
run 2 dump d --record=-1;           has err "--record must be at least 0, got -1"
run 2 verify d --jobs=0;            has err "--jobs must be 1..256, got 0"
run 2 mirror a b --connections=99;  has err "--connections must be 1..64, got 99"
run 2 plot d --record 0 -o x.png --frame=9; has err "--frame must be 0..3, got 9"
run 2 verify d --progress-interval=0; has err "--progress-interval must be"
run 2 dump d --json=1;              has err "--json takes no value"

# Failures and usage errors in --json modes still print JSON.
run 2 eval --json --batch=0 "$tmp/none" "$tmp/none"; has out '"error": "usage"'; has out "--batch must be"
run 2 dump --json --record=x "$tmp/none"; has out '"ok": false'
run 2 verify --json; has out '"error": "usage"'
# Failures in --json modes still print JSON.
run 1 dump --json "$tmp/none";  has out '"ok": false'; has out "cannot open dataset"
run 1 verify --json "$tmp/none"; has out '"ok": false'
run 1 eval --json "$tmp/none" "$tmp/none"; has out '"ok": false'; has out '"message"'

if ! "$tnrec" --version | grep -q netcdf; then
    echo "cli_options: no NetCDF in this tnrec; the runs on data skipped"
    [ $fail = 0 ] || exit 1
    exit 77
fi

# Data: a small TorNet, its shards, a short run.
run 0 synth "$tmp/tornet" --samples=60 --seed=3 --tor-fraction=0.3 -j 1 --progress-interval=0.1
[ "$(progress_lines synth)" -ge 1 ] || die "synth printed no progress line on a pipe: $(cat "$tmp/err")"
run 0 synth "$tmp/tornet" --samples=60 --seed=3 --tor-fraction=0.3 -j 2 --force --quiet
lacks err "/s"
run 0 build "$tmp/tornet" --split=test -o "$tmp/test" --quiet
lacks err "/s"
[ ! -s "$tmp/err" ] || die "build --quiet printed: $(cat "$tmp/err")"

# build on a pipe: plain progress lines, one a second.
run 0 build "$tmp/tornet" --split=train -o "$tmp/train" -j1 --progress-interval=0.1 --shard-records=8
[ "$(progress_lines build)" -ge 1 ] || die "build printed no progress line on a pipe: $(cat "$tmp/err")"
has err "inputs"

# train: progress inside an epoch, and --max-steps says where it stopped.
run 0 train "$tmp/train" -o "$tmp/run" --batch=2 --epochs=4 --max-steps=80 --jobs=1 --progress-interval=1
[ "$(progress_lines train)" -ge 1 ] || die "train printed no progress line on a pipe: $(cat "$tmp/err")"
has err "step "; has err "loss "; has err "ETA "
has err "stopped after 80 steps (--max-steps)"
run 0 train --resume "$tmp/run" --max-steps=2 --quiet
lacks err "samples/s"

# eval and predict: progress per batch.
run 0 eval "$tmp/run/last.tnck" "$tmp/train" --batch=1 -j1 --progress-interval=0.1
[ "$(progress_lines eval)" -ge 1 ] || die "eval printed no progress line on a pipe: $(cat "$tmp/err")"
run 0 eval "$tmp/run/last.tnck" "$tmp/test" --json --quiet
has out '"roc_auc"'; lacks err "samples/s"
run 0 predict "$tmp/run/last.tnck" "$tmp/train" --output="$tmp/s.csv" --batch=1 --threads=1 --progress-interval=0.1
[ "$(progress_lines predict)" -ge 1 ] || die "predict printed no progress line on a pipe: $(cat "$tmp/err")"
run 0 eval "$tmp/run/last.tnck" "$tmp/train" --batch=1 -j1 --curves="$tmp/c.json" --progress-interval=0.1
[ "$(progress_lines eval)" -ge 1 ] || die "eval --curves printed no progress line on a pipe: $(cat "$tmp/err")"
run 0 eval "$tmp/run/last.tnck" "$tmp/train" --curves="$tmp/c.json" --quiet; lacks err "samples/s"
# report: its evaluation's progress (cairo builds only).
if "$tnrec" --version | grep -q '^features:.* cairo'; then
    run 0 report "$tmp/run" --eval="$tmp/train" -o "$tmp/r.html" --batch=1 -j1 --progress-interval=0.1
    [ "$(progress_lines report)" -ge 1 ] || die "report printed no progress line on a pipe: $(cat "$tmp/err")"
    run 0 report "$tmp/run" --eval="$tmp/train" -o "$tmp/r.html" --quiet; lacks err "samples/s"
fi

# verify: every PATH checked; the lines come an interval apart across them.
t=$tmp/train
run 0 verify -j1 --progress-interval=0.1 $t $t $t $t $t $t $t $t $t $t $t $t
[ "$(progress_lines verify)" -ge 1 ] || die "verify printed no progress line on a pipe: $(cat "$tmp/err")"
run 0 verify --quiet "$t"; lacks err "/s"

# verify checks every shard even when the dataset does not open.
cp -r "$tmp/train" "$tmp/bad"
shards=$(ls "$tmp/bad"/*.tnr)
[ "$(echo "$shards" | wc -l)" -ge 3 ] || die "want at least 3 shards, got: $shards"
for s in $(echo "$shards" | sed -n '1p;3p'); do printf 'XXXX' | dd of="$s" conv=notrunc bs=1 2>/dev/null; done
run 1 verify "$tmp/bad"
[ "$(grep -c 'not a tnrec shard' "$tmp/out")" = 2 ] || die "verify did not report both damaged shards: $(cat "$tmp/out")"
has out "2 of"

# A truncated .nc says so, with its size and the size expected.
f=$(find "$tmp/tornet/train" -name '*.nc' | head -1)
mkdir -p "$tmp/cut" && head -c 200000 "$f" > "$tmp/cut/cut.nc" && cp "$(find "$tmp/tornet/train" -name '*.nc' | sed -n 2p)" "$tmp/cut/"
run 0 build "$tmp/cut" -o "$tmp/cut_out" -q
has err "is truncated: 200000 bytes, its HDF5 superblock says $(stat -c %s "$f")"

# dump --npy writes all the fields or none (here: a directory it cannot write).
run 0 dump "$tmp/test" --npy="$tmp/npy" --json
[ "$(ls "$tmp/npy" | wc -l)" -ge 6 ] || die "dump --npy wrote too few files"
last=$(grep -o '"file": "[^"]*"' "$tmp/out" | tail -1 | sed 's/.*\///; s/"$//')
mkdir -p "$tmp/npy2/$last/x"   # a directory where the last field's file goes: its write fails
run 1 dump "$tmp/test" --record=0 --npy="$tmp/npy2" --json
has out '"ok": false'; has err "removed the"
cp "$tmp/out" "$tmp/out_loud"
rm -rf "$tmp/npy2" && mkdir -p "$tmp/npy2/$last/x"
run 1 dump "$tmp/test" --record=0 --npy="$tmp/npy2" --json -q
lacks err "removed the"; has err "error"
# (the temporary file's name in the message holds the pid)
sed -i 's/\.tmp\.[0-9]*/.tmp.PID/' "$tmp/out" "$tmp/out_loud"
cmp -s "$tmp/out" "$tmp/out_loud" || die "dump --quiet changed stdout: $(diff "$tmp/out_loud" "$tmp/out" | head -5)"
run 0 dump "$tmp/test" --records; cp "$tmp/out" "$tmp/out_loud"
run 0 dump "$tmp/test" --records --quiet
cmp -s "$tmp/out" "$tmp/out_loud" || die "dump --quiet changed stdout: $(diff "$tmp/out_loud" "$tmp/out" | head -5)"
[ "$(ls "$tmp/npy2")" = "$last" ] || die "dump --npy left files after an error: $(ls "$tmp/npy2")"

# plot: --opt=value; its failures in --json mode print JSON.
if "$tnrec" --version | grep -q cairo; then
    run 0 plot "$tmp/test" --record=0 --output="$tmp/r.svg" --sweeps=0; has out "wrote"
    rm -f "$tmp/r.svg"
    run 0 plot "$tmp/test" --record=0 -o "$tmp/r.svg" --quiet; lacks out "wrote"
    [ -s "$tmp/r.svg" ] || die "plot --quiet wrote no picture"
    run 0 plot "$tmp/test" --record=0 -o "$tmp/r.svg" -q --json; has out '"output"'
    run 1 plot "$tmp/test" --record=999 -o "$tmp/r.svg" --json; has out '"ok": false'
fi
run 0 merge "$tmp/train" --output="$tmp/merged" --progress-interval=0.1; has err "tnrec merge: 1 parts"
run 0 merge "$tmp/train" --output="$tmp/merged_quiet" --quiet; lacks err "tnrec merge"

[ $fail = 0 ] && echo "cli_options: all checks passed"
exit $fail
