#!/usr/bin/env bash
# benchmarks/synth_bench.sh TNREC_BIN [SAMPLES] [REPEATS] [SCRATCH]
# Throughput of `tnrec synth` at -j 1 and -j 2, measured side by side
# (the runs alternate), median of REPEATS runs each. The time is the
# command's own wall clock from start to the synced catalog; the CPU time
# (user + sys, from /usr/bin/time) per sample is printed too, as it is
# less sensitive to other load on a shared machine.
set -eu
tnrec=$1
n=${2:-1000}
reps=${3:-3}
dir=${4:-$(mktemp -d)}
mkdir -p "$dir"
declare -A rates
for r in $(seq "$reps"); do
    for j in 1 2; do
        rm -rf "$dir/out"
        line=$(/usr/bin/time -f "cpu %U %S" -o "$dir/time" "$tnrec" synth "$dir/out" --samples "$n" --seed "$r" -j "$j" | tail -n 1)
        cpu=$(awk '{printf "%.1f", ($2 + $3) * 1000 / '"$n"'}' "$dir/time")
        rate=$(echo "$line" | sed -n 's/.*: \([0-9.]*\) samples\/s.*/\1/p')
        mb=$(echo "$line" | sed -n 's/.*(\([0-9.]*\) MB per sample).*/\1/p')
        echo "run $r -j $j: $line; CPU $cpu ms per sample; load $(cut -d' ' -f1 /proc/loadavg)"
        rates[$j]="${rates[$j]:-} $rate"
    done
done
rm -rf "$dir/out"
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
m1=$(echo "${rates[1]}" | median)
m2=$(echo "${rates[2]}" | median)
echo "median over $reps runs of $n samples: -j 1 $m1 samples/s, -j 2 $m2 samples/s ($(awk "BEGIN {printf \"%.2f\", $m2 / $m1}")x); $mb MB per sample"
