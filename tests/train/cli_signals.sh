#!/bin/sh
# tests/train/cli_signals.sh: SIGTERM and SIGINT during `tnrec train`
# finish the step under way, write last.tnck and exit 143 / 130 with one
# line on stderr giving the resume command; that command (run as printed)
# completes the run with the final weights of an uninterrupted one, bit
# for bit (same thread counts). A signal during `tnrec predict` or `tnrec
# eval` stops it (130 / 143, one line) with no scores or curves file,
# finished or temporary. With `mpi`, a signal to one rank of `mpirun -n 2` stops
# both after the same step, and the resumed run matches an uninterrupted
# 2-rank run.
# usage: cli_signals.sh single|mpi TNREC FIXTURE_PROGRAM PYTHON COMPARE_SCRIPT WORKDIR
# Exit 77 (skipped) for `mpi` when MPI is not compiled in or mpirun is missing.
set -eu
MODE=$1 TNREC=$2 FIXTURE=$3 PY=$4 COMPARE=$5 WORK=$6
if [ "$MODE" = mpi ]; then
    if ! "$TNREC" --version | grep -q ' mpi'; then echo "tnrec built without MPI: skipped"; exit 77; fi
    if ! command -v mpirun > /dev/null 2>&1; then echo "no mpirun: skipped"; exit 77; fi
fi
rm -rf "$WORK" && mkdir -p "$WORK"
fail() { echo "FAIL: $*"; for f in "$WORK"/err*.txt; do [ -f "$f" ] && { echo "$f:"; cat "$f"; }; done; exit 1; }
export OMP_NUM_THREADS=1

"$FIXTURE" "$WORK/train" 96 5 4 24 32
"$FIXTURE" "$WORK/val" 16 6 4 24 32
ARGS="$WORK/train --val $WORK/val --model c8,p122,c8,g,d8,o --epochs 4 --batch 4 --lr 0.01 --seed 2 -j 1"
if [ "$MODE" = mpi ]; then
    # Open MPI's mpirun ends its job on a signal; each rank writes its pid
    # so the test can signal one rank, as a scheduler or a user might.
    LAUNCH="mpirun --allow-run-as-root --oversubscribe -n 2 -x OMP_NUM_THREADS=1 -x ASAN_OPTIONS=detect_leaks=0"
else
    LAUNCH=""
fi

# start OUT ERR ARGS...: runs tnrec in the background; $pid is whom to signal.
start() {
    out=$1 err=$2
    shift 2
    rm -f "$WORK"/pid.*
    if [ "$MODE" = mpi ]; then
        $LAUNCH sh -c 'echo $$ > "$0.$OMPI_COMM_WORLD_RANK"; shift; exec "$@"' "$WORK/pid" x "$TNREC" "$@" > "$out" 2> "$err" &
        job=$!
        n=0
        while [ ! -s "$WORK/pid.1" ]; do n=$((n + 1)); [ $n -lt 600 ] || fail "rank 1 did not start"; sleep 0.05; done
        pid=$(cat "$WORK/pid.1")
    else
        "$TNREC" "$@" > "$out" 2> "$err" &
        job=$!
        pid=$job
    fi
}

# await_line PATTERN FILE NONE ENDED: waits (up to a minute) until FILE
# has a line matching PATTERN while $job runs; fails saying NONE when the
# line never comes, ENDED when the job ends first.
await_line() {
    n=0
    while ! grep -q "$1" "$2"; do
        n=$((n + 1))
        [ $n -lt 1200 ] || fail "$3"
        kill -0 "$job" 2> /dev/null || fail "$4"
        sleep 0.05
    done
}

# reap: waits for $job; its exit status in $rc.
reap() {
    set +e
    wait "$job"; rc=$?
    set -e
}

# stopped SIG CODE ERR: the run exited CODE, and ERR's one line (the
# launcher's own report aside) says SIG and gives the resume command.
stopped() {
    reap
    [ $rc -eq "$2" ] || fail "exit $rc after $1, expected $2"
    grep -q "^tnrec train: stopped by $1 after .*last.tnck written; resume with: .*tnrec train --resume $WORK/run" "$3" \
        || fail "no resume line after $1"
    [ "$(grep -c '^tnrec' "$3")" -eq 1 ] || fail "more than one line from tnrec after $1"
    resume=$(sed -n 's/^tnrec train: stopped by .* resume with: //p' "$3")
    case "$resume" in
        "mpirun -n 2 tnrec "*) [ "$MODE" = mpi ] || fail "mpirun in a 1-process resume line" ;;
        "tnrec "*) [ "$MODE" != mpi ] || fail "no mpirun in the resume line of a 2-rank run" ;;
        *) fail "resume line: $resume" ;;
    esac
    # The loader threads carry over, spelt as the option is today.
    case "$resume" in *" -j 1"*) ;; *) fail "resume line lacks -j 1: $resume" ;; esac
}

# resume_args: the printed command's arguments after `tnrec`.
resume_args() { printf '%s\n' "$resume" | sed 's/^.*tnrec //'; }

# interrupt N SIG CODE ARGS...: runs tnrec ARGS (output in outN.txt,
# errors in errN.txt), sends SIG once an epoch line shows the next epoch
# under way, several steps from its end, and checks the stop (stopped).
interrupt() {
    k=$1 sig=$2 code=$3
    shift 3
    start "$WORK/out$k.txt" "$WORK/err$k.txt" "$@"
    await_line '^epoch ' "$WORK/out$k.txt" "no epoch line in $WORK/out$k.txt" "the run ended before the signal"
    kill -"$sig" "$pid"
    stopped "SIG$sig" "$code" "$WORK/err$k.txt"
}

# The uninterrupted run.
$LAUNCH "$TNREC" train $ARGS -o "$WORK/full" > "$WORK/full.txt"

# SIGTERM in epoch 2, then SIGINT in the resumed run, then to the end.
interrupt 1 TERM 143 train $ARGS -o "$WORK/run"
grep -q "after step [0-9]* of epoch 2" "$WORK/err1.txt" || fail "SIGTERM did not stop inside epoch 2"
interrupt 2 INT 130 $(resume_args)
$LAUNCH "$TNREC" $(resume_args) > "$WORK/out3.txt" 2> "$WORK/err3.txt" || fail "the final resume"
grep -q '^epoch 4/4' "$WORK/out3.txt" || fail "the final resume did not reach epoch 4"
[ "$(wc -l < "$WORK/run/metrics.jsonl")" -eq 4 ] || fail "metrics.jsonl lines"
"$PY" "$COMPARE" "$WORK/full/last.tnck" "$WORK/run/last.tnck" 0 || fail "resumed run differs from the uninterrupted one"
[ "$MODE" = mpi ] && { echo "cli_signals mpi: all checks passed"; exit 0; }

# predict and eval: a signal stops the evaluation before its next batch;
# exit 130 / 143, one line saying it stopped and that nothing was
# written, no scores or curves file, finished or temporary. --batch 1
# -j 1 over 300 records makes the job last seconds; the signal is sent
# once the first progress line shows it under way.
"$FIXTURE" "$WORK/big" 300 7 4 48 64
"$TNREC" train "$WORK/big" -o "$WORK/bigrun" --model c16,c16,g,o --epochs 1 --batch 50 --max-steps 1 \
    --class-weights none > /dev/null
# scored CMD SIG CODE ARGS...: runs `tnrec CMD` with ARGS, signals it
# mid-run, checks how it ended.
scored() {
    cmd=$1 sig=$2 code=$3
    shift 3
    err="$WORK/err_$cmd.$sig.txt"
    "$TNREC" "$cmd" "$WORK/bigrun" "$WORK/big" --batch 1 -j 1 --progress-interval 0.1 "$@" > /dev/null 2> "$err" &
    job=$!
    await_line "^tnrec $cmd: batch " "$err" "$cmd printed no progress" \
        "$cmd ended before SIG$sig could be sent: make its dataset larger"
    kill -"$sig" "$job"
    reap
    [ $rc -ne 0 ] || fail "$cmd finished before SIG$sig arrived: make its dataset larger"
    [ $rc -eq "$code" ] || fail "$cmd exited $rc after SIG$sig, expected $code"
    [ "$(grep -c "^tnrec $cmd: stopped .*(SIG$sig); nothing written\$" "$err")" -eq 1 ] \
        || fail "$cmd: no single 'stopped ... nothing written' line after SIG$sig"
    [ "$(grep -v "^tnrec $cmd: batch " "$err" | grep -c .)" -eq 1 ] || fail "$cmd printed more than the stop line"
    [ -z "$(ls "$WORK" | grep -E '^(scores\.csv|curves\.json)')" ] \
        || fail "$cmd left a file after SIG$sig: $(ls "$WORK" | grep -E '^(scores|curves)')"
}
scored predict INT 130 -o "$WORK/scores.csv"
scored predict TERM 143 -o "$WORK/scores.csv"
scored eval INT 130 --curves "$WORK/curves.json"
scored eval TERM 143 --json --curves "$WORK/curves.json"
echo "cli_signals: all checks passed"
