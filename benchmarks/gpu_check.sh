#!/usr/bin/env bash
# benchmarks/gpu_check.sh: everything a GPU machine should check, in one
# go, within 8 minutes, writing at most 8 files.
#
#   gpu_check.sh --prebuilt BUNDLE.tar.gz [OUT_DIR]   unpack a bundle made by
#                                     benchmarks/gpu_bundle.sh and check it
#   gpu_check.sh --prebuilt DIR [OUT_DIR]             an unpacked bundle
#   gpu_check.sh [OUT_DIR]            inside an unpacked bundle: that bundle;
#                                     in a source tree: build first (Release,
#                                     sm_90; needs tnrec's build dependencies,
#                                     which a bare GPU machine lacks)
#   gpu_check.sh --find-libs [--prebuilt ...]  print the LD_LIBRARY_PATH the
#                                     check would use for the CUDA libraries
#
# Stages, each with its own time limit, all cut to end by
# TNREC_GPU_CHECK_SECONDS (default 450): the CUDA libraries found (CUDA's
# own folders first: CUDA_HOME, /usr/local/cuda*, ldconfig; then Python's
# site-packages nvidia/*/lib) and put on LD_LIBRARY_PATH; a preflight
# (driver version, one small seed3d step in fp32, fp16 and bf16); the GPU
# tests (test_gpu_net, cli_gpu.sh); seed3d training samples/s at batch
# 32/64/128/256 in fp16, bf16 and fp32 (bench_gpu_train) beside PyTorch on
# the same model and shapes (bench_gpu_torch.py); the loader's decode rate
# at 4, 8 and 16 threads; `tnrec train` on full-size fixture samples with
# the input pipeline on and off.
#
# OUT_DIR defaults to $OUT, else ./gpu-check. Written there, nothing else:
# report.md (summary first), env.txt (machine, libraries, bundle),
# preflight.log, tests.log, bench_gpu.jsonl, bench_torch.jsonl,
# bench_loader.jsonl, pipeline.log. Work files go to a scratch folder
# under $TMPDIR (/tmp), removed at the end. Exit status: 0 when the
# preflight and both GPU tests passed, else 1 (2: usage).
set -u
SRC=$(cd "$(dirname "$0")/.." && pwd)
prebuilt="" outdir="" find_libs=0
while [ $# -gt 0 ]; do
  case "$1" in
    --prebuilt) [ $# -ge 2 ] || { echo "gpu_check: --prebuilt needs a bundle" >&2; exit 2; }; prebuilt=$2; shift 2 ;;
    --find-libs) find_libs=1; shift ;;
    -h|--help) sed -n '2,31p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "gpu_check: unknown option '$1'" >&2; exit 2 ;;
    *) [ -z "$outdir" ] || { echo "gpu_check: one OUT_DIR only" >&2; exit 2; }; outdir=$1; shift ;;
  esac
done
[ -z "$prebuilt" ] && [ -f "$SRC/BUNDLE.txt" ] && prebuilt=$SRC
T0=$(date +%s)
DEADLINE=${TNREC_GPU_CHECK_SECONDS:-450}
elapsed() { echo $(( $(date +%s) - T0 )); }
# limit CAP: a stage's time limit, its own cap cut to what is left.
limit() { local r=$(( DEADLINE - $(elapsed) )); [ "$r" -lt 1 ] && r=1; [ "$r" -lt "$1" ] && echo "$r" || echo "$1"; }
W=$(mktemp -d "${TMPDIR:-/tmp}/tnrec-gpu-check.XXXXXX")
trap 'rm -rf "$W"' EXIT
PY=$(command -v python3 || true)
# PyTorch runs with the library path it was given, not the one set below
# for tnrec (its wheels bring their own CUDA libraries).
if [ -n "${LD_LIBRARY_PATH+set}" ]; then torch_env=(env "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"); else torch_env=(env -u LD_LIBRARY_PATH); fi
LDCONFIG=$(command -v ldconfig || echo /sbin/ldconfig)

# --- Where the programs are -------------------------------------------------
R=""
if [ -n "$prebuilt" ]; then
  if [ -f "$prebuilt" ]; then
    mkdir -p "$W/bundle"
    tar -C "$W/bundle" -xzf "$prebuilt" || { echo "gpu_check: cannot unpack $prebuilt" >&2; exit 1; }
    R=$W/bundle/tnrec-gpu
  elif [ -f "$prebuilt/BUNDLE.txt" ]; then R=$(cd "$prebuilt" && pwd)
  elif [ -f "$prebuilt/tnrec-gpu/BUNDLE.txt" ]; then R=$(cd "$prebuilt/tnrec-gpu" && pwd)
  else echo "gpu_check: $prebuilt is neither a bundle archive nor an unpacked bundle" >&2; exit 2
  fi
  TNREC=$R/bin/tnrec TEST_GPU_NET=$R/bin/test_gpu_net FIXTURE=$R/bin/tnrec_train_fixture
  BENCH_GPU=$R/bin/bench_gpu_train BENCH_LOADER=$R/bin/bench_train_loader
  CLI_GPU=$R/tests/train/cli_gpu.sh CKPT_PY=$R/tests/train/ckpt_loss_scale.py TORCH_PY=$R/benchmarks/bench_gpu_torch.py
  MODULE=$R/lib/libtnrec_cuda.so
else
  BUILD=${TNREC_GPU_BUILD:-$SRC/build-gpu}
  TNREC=$BUILD/bin/tnrec TEST_GPU_NET=$BUILD/tests/train/test_gpu_net FIXTURE=$BUILD/tests/train/tnrec_train_fixture
  BENCH_GPU=$BUILD/benchmarks/bench_gpu_train BENCH_LOADER=$BUILD/benchmarks/bench_train_loader
  CLI_GPU=$SRC/tests/train/cli_gpu.sh CKPT_PY=$SRC/tests/train/ckpt_loss_scale.py TORCH_PY=$SRC/benchmarks/bench_gpu_torch.py
  MODULE=$BUILD/libtnrec_cuda.so
fi

# --- The CUDA libraries -----------------------------------------------------
# The sonames the module needs (the bundle lists them), looked for in
# CUDA's own folders first, then in Python's NVIDIA wheels.
want="libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libcudnn.so.9 libnccl.so.2"
if [ -n "$R" ]; then
  w=$(sed -n 's/^cuda_needs: //p' "$R/BUNDLE.txt")
  [ -n "$w" ] && want=$w
fi
cuda_dirs=""   # the chosen folders, colon-separated
cuda_found=""  # what was found, for the report
find_cuda_libs() {  # logs to stdout
  local cands=() d h n p found
  for h in "${CUDA_HOME:-}" "${CUDA_PATH:-}" "${CUDA_ROOT:-}" /usr/local/cuda $(ls -d /usr/local/cuda-* 2> /dev/null | sort -r -V); do
    [ -n "$h" ] && cands+=("$h/lib64" "$h/lib" "$h/targets/x86_64-linux/lib")
  done
  for n in $want; do
    while read -r p; do cands+=("$(dirname "$p")"); done < <("$LDCONFIG" -p 2> /dev/null | awk -v n="$n" '$1 == n { print $NF }')
  done
  if [ -n "$PY" ]; then
    while read -r d; do [ -n "$d" ] && cands+=("$d"); done < <("$PY" - 2> /dev/null <<'EOF'
import glob, os, site, sys
roots = []
try:
    roots += site.getsitepackages()
except Exception:
    pass
try:
    roots.append(site.getusersitepackages())
except Exception:
    pass
roots += [p for p in sys.path if p.endswith(("site-packages", "dist-packages"))]
try:
    import nvidia
    roots += [os.path.dirname(p) for p in nvidia.__path__]
except Exception:
    pass
seen = set()
for r in roots:
    for d in sorted(glob.glob(os.path.join(r, "nvidia", "*", "lib"))):
        d = os.path.realpath(d)
        if d not in seen:
            seen.add(d)
            print(d)
EOF
)
  fi
  echo "looked in (in order): $(printf '%s\n' "${cands[@]}" | awk '!s[$0]++' | tr '\n' ' ')"
  for n in $want; do
    found=""
    for d in "${cands[@]}"; do
      if [ -e "$d/$n" ]; then found=$d; break; fi
    done
    if [ -z "$found" ]; then
      echo "  $n: NOT FOUND"
      cuda_found="$cuda_found**$n not found**; "
      continue
    fi
    echo "  $n: $found/$(basename "$(readlink -f "$found/$n")")"
    cuda_found="$cuda_found$(basename "$(readlink -f "$found/$n")") ($found); "
    case ":$cuda_dirs:" in *":$found:"*) ;; *) cuda_dirs=${cuda_dirs:+$cuda_dirs:}$found ;; esac
    if [ "$n" = libcudnn.so.9 ]; then
      echo "    cuDNN sub-libraries there: $(cd "$found" && ls libcudnn_*.so.9 2> /dev/null | tr '\n' ' ')"
    fi
  done
  for n in libnvrtc.so.13 libnvJitLink.so.13; do  # optional (cuDNN's run-time compiled engines)
    for d in "${cands[@]}"; do
      if [ -e "$d/$n" ]; then
        echo "  $n (optional): $d/$(basename "$(readlink -f "$d/$n")")"
        case ":$cuda_dirs:" in *":$d:"*) ;; *) cuda_dirs=$cuda_dirs:$d ;; esac
        break
      fi
    done
  done
  echo "  libcuda.so.1 (driver): $("$LDCONFIG" -p 2> /dev/null | awk '$1 == "libcuda.so.1" { print $NF; exit }' | grep . || echo "not in the loader cache")"
  if [ -n "$PY" ]; then
    "$PY" - 2> /dev/null <<'EOF'
import importlib.metadata as m
for d in sorted(m.distributions(), key=lambda d: d.metadata["Name"] or ""):
    n = d.metadata["Name"] or ""
    if n.startswith("nvidia-") or n == "torch":
        print("  pip: %s %s" % (n, d.version))
EOF
  fi
}

if [ "$find_libs" = 1 ]; then
  find_cuda_libs >&2
  echo "$cuda_dirs"
  exit 0
fi

mkdir -p "${outdir:=${OUT:-gpu-check}}"
OUTDIR=$(cd "$outdir" && pwd)
REPORT=$OUTDIR/report.md ENV=$OUTDIR/env.txt
say() { echo "$*" | tee -a "$REPORT"; }
: > "$REPORT"; : > "$ENV"
for f in preflight.log tests.log bench_gpu.jsonl bench_torch.jsonl bench_loader.jsonl pipeline.log; do : > "$OUTDIR/$f"; done
summary=()   # "stage|result|seconds"
stage_t0=0
stage_start() { stage_t0=$(date +%s); say ""; say "## $1"; }
stage_end() { summary+=("$1|$2|$(( $(date +%s) - stage_t0 ))"); }

{
  echo "# tnrec GPU check $(date -u +%FT%TZ)"
  echo "host: $(hostname), $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
  echo "os: $(. /etc/os-release 2> /dev/null && echo "$PRETTY_NAME"); $(ldd --version 2>&1 | head -1)"
  echo "python3: ${PY:-none} $([ -n "$PY" ] && "$PY" --version 2>&1)"
  echo
  if command -v nvidia-smi > /dev/null 2>&1; then nvidia-smi 2>&1; else echo "nvidia-smi: not found"; fi
  echo
  if [ -n "$R" ]; then echo "== bundle ($R)"; cat "$R/BUNDLE.txt"; echo; fi
} >> "$ENV"

NPROC=$(nproc)
say "# tnrec GPU check"
say ""
say "- $(date -u +%FT%TZ); $( [ -n "$R" ] && sed -n 's/^source: /bundle from /p' "$R/BUNDLE.txt" || echo "built from $(git -C "$SRC" describe --always --dirty 2> /dev/null)")"
say "- host: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(ldd --version 2>&1 | head -1 | sed 's/^ldd //')"
GPU_LINE=$(nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv,noheader 2> /dev/null | head -1)
say "- GPU: ${GPU_LINE:-none found (nvidia-smi missing or failed)}"
if [ -z "$R" ]; then
  # Build here (only where tnrec's build dependencies are installed).
  stage_start "Build"
  if timeout -k 10 "$(limit 120)" cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DTNREC_WITH_CUDA=ON \
        -DCMAKE_CUDA_ARCHITECTURES=90 -DBUILD_TESTING=ON > "$W/build.log" 2>&1 &&
     timeout -k 10 "$(limit 200)" cmake --build "$BUILD" -j"$NPROC" --target tnrec_cli tnrec_cuda test_gpu_net \
        tnrec_train_fixture bench_gpu_train bench_train_loader >> "$W/build.log" 2>&1; then
    say "built in $BUILD in $(elapsed) s"
    stage_end build ok
  else
    say "BUILD FAILED (the last lines are in env.txt); a machine without tnrec's build dependencies needs a bundle: benchmarks/gpu_bundle.sh, then --prebuilt"
    { echo "== build log (last 60 lines)"; tail -60 "$W/build.log"; } >> "$ENV"
    stage_end build FAILED
    exit 1
  fi
fi

# --- Libraries --------------------------------------------------------------
{ echo "== CUDA libraries"; find_cuda_libs; } >> "$ENV"
export LD_LIBRARY_PATH=$cuda_dirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
{
  echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
  echo "== ldd $MODULE"; ldd "$MODULE" 2>&1
  echo "== newest GLIBCXX: bundled $( [ -n "$R" ] && grep -a -o 'GLIBCXX_3\.4\.[0-9]*' "$R/lib/libstdc++.so.6" | sort -u -V | tail -1)," \
       "system $(p=$("$LDCONFIG" -p | awk '$1 == "libstdc++.so.6" { print $NF; exit }'); [ -n "$p" ] && grep -a -o 'GLIBCXX_3\.4\.[0-9]*' "$p" | sort -u -V | tail -1)"
} >> "$ENV" 2>&1
missing=$(ldd "$MODULE" 2>&1 | awk '/not found/ { print $1 }' | tr '\n' ' ')

say "- CUDA libraries: ${cuda_found%; }"
say "- driver library: $("$LDCONFIG" -p 2> /dev/null | awk '$1 == "libcuda.so.1" { print $NF; exit }' | grep . || echo "libcuda.so.1 not in the loader cache")"
[ -z "$missing" ] || say "- **the CUDA module cannot resolve: $missing** (see env.txt)"

# --- Preflight: seconds, not minutes, to learn that nothing works -----------
stage_start "Preflight (60 s at most)"
PF_END=$(( $(elapsed) + 60 ))
pf_limit() { local r=$(( PF_END - $(elapsed) )); [ "$r" -lt 1 ] && r=1; [ "$r" -lt "$1" ] && echo "$r" || echo "$1"; }
drv=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2> /dev/null | head -1)
if [ -z "$drv" ]; then
  say "- driver: nvidia-smi gave no driver version"
elif [ "${drv%%.*}" -lt 580 ] 2> /dev/null; then
  say "- driver: $drv, **older than R580, which CUDA 13 needs**"
else
  say "- driver: $drv"
fi
ok_precs=""
for p in fp32 fp16 bf16; do
  echo "== bench_gpu_train --precision $p (seed3d, batch 4, 4x24x48x12, 2 steps)" >> "$OUTDIR/preflight.log"
  if timeout -k 10 "$(pf_limit 25)" "$BENCH_GPU" --model seed3d --batch 4 --steps 1 --warmup 1 --frames 4 --height 24 \
       --width 48 --precision "$p" > "$W/pf.out" 2>&1; then
    ok_precs="$ok_precs $p"
    say "- $p: training steps and inference ran ($(sed -n 's/.*"device": "\([^"]*\)".*/\1/p' "$W/pf.out" | head -1))"
  else
    rc=$?
    say "- $p: **failed** (exit $rc): $(grep -v '^{' "$W/pf.out" | head -3 | tr '\n' ' ')"
  fi
  cat "$W/pf.out" >> "$OUTDIR/preflight.log"
done
if [ -z "$ok_precs" ]; then
  stage_end preflight "FAILED in every precision"
else
  stage_end preflight "ok:$ok_precs (of fp32 fp16 bf16)"
fi
status=0
[ "$ok_precs" = " fp32 fp16 bf16" ] || status=1

# --- GPU tests --------------------------------------------------------------
stage_start "GPU tests"
if [ -z "$ok_precs" ]; then
  say "not run: the preflight failed in every precision"
  stage_end tests "not run"
  status=1
else
  t_res=""
  run_test() {  # NAME CAP COMMAND...
    local name=$1 lim t1 rc
    lim=$(limit "$2"); shift 2
    echo "== $name (limit $lim s): $*" >> "$OUTDIR/tests.log"
    t1=$(date +%s)
    # ckpt_loss_scale.py loads libxxhash with ctypes: the bundle's, if any.
    LD_LIBRARY_PATH=$LD_LIBRARY_PATH${R:+:$R/lib} OMP_NUM_THREADS=$NPROC TNREC_TEST_TMP=$W/tmp_$name \
      timeout -k 10 "$lim" "$@" > "$W/t.out" 2>&1
    rc=$?
    cat "$W/t.out" >> "$OUTDIR/tests.log"
    echo "== $name: exit $rc in $(( $(date +%s) - t1 )) s" >> "$OUTDIR/tests.log"
    case $rc in
      0) say "- $name: passed ($(( $(date +%s) - t1 )) s)"; t_res="$t_res $name passed," ;;
      77) say "- $name: SKIPPED: $(grep -i 'skipped' "$W/t.out" | tail -1)"; t_res="$t_res $name SKIPPED,"; status=1 ;;
      124|137) say "- $name: **TIMED OUT** after $lim s"; t_res="$t_res $name TIMED OUT,"; status=1 ;;
      *) say "- $name: **FAILED** (exit $rc): $(grep -E 'FAIL|error|failed' "$W/t.out" | head -3 | tr '\n' ' ')"
         t_res="$t_res $name FAILED,"; status=1 ;;
    esac
  }
  run_test test_gpu_net 150 "$TEST_GPU_NET"
  run_test cli_gpu.sh 60 sh "$CLI_GPU" "$TNREC" "$FIXTURE" "$W/tmp_cli_gpu" "${PY:-python3}" "$CKPT_PY"
  t_res=${t_res%,}; stage_end tests "${t_res# }"
fi

# --- tnrec training samples/s -------------------------------------------------
stage_start "Training samples/s (seed3d, 4x120x240x12, forward+backward+Adam, batch copied from host memory each step)"
if [ -z "$ok_precs" ]; then
  say "not run: the preflight failed in every precision"
  stage_end "bench tnrec" "not run"
else
  for p in fp16 bf16 fp32; do
    case " $ok_precs " in *" $p "*) ;; *) echo "{\"precision\": \"$p\", \"skipped\": \"failed the preflight\"}" >> "$OUTDIR/bench_gpu.jsonl"; continue ;; esac
    timeout -k 10 "$(limit 70)" "$BENCH_GPU" --model seed3d --batch 32,64,128,256 --steps 8 --warmup 2 --precision "$p" \
      >> "$OUTDIR/bench_gpu.jsonl" 2>&1 || say "- bench_gpu_train $p: exit $? ($(grep -v '^{' "$OUTDIR/bench_gpu.jsonl" | tail -1))"
  done
  stage_end "bench tnrec" "$(grep -c '"train_samples_per_s"' "$OUTDIR/bench_gpu.jsonl") of 12 measured"
fi

# --- PyTorch on the same model ------------------------------------------------
stage_start "PyTorch anchor (bench_gpu_torch.py, same model and shapes)"
if [ -n "$PY" ] && "${torch_env[@]}" "$PY" -c 'import torch' > /dev/null 2>&1; then
  lim=$(limit 110)
  "${torch_env[@]}" timeout -k 10 "$lim" "$PY" "$TORCH_PY" --batch 32,64,128,256 --modes bf16,fp16,fp32 --steps 8 --warmup 3 \
    --seconds $(( lim > 25 ? lim - 25 : 1 )) >> "$OUTDIR/bench_torch.jsonl" 2>&1
  rc=$?
  [ $rc = 0 ] || say "- bench_gpu_torch.py: exit $rc ($(grep -v '^{' "$OUTDIR/bench_torch.jsonl" | tail -1))"
  say "- $(head -1 "$OUTDIR/bench_torch.jsonl" | cut -c1-300)"
  stage_end "bench PyTorch" "$(grep -c '"train_samples_per_s"' "$OUTDIR/bench_torch.jsonl") of 12 measured"
else
  say "not run: python3 cannot import torch"
  stage_end "bench PyTorch" "not run (no torch)"
fi

# Side by side: samples/s per batch, each mode, and the best of each.
say ""
say "Training samples/s (median step; the best mode of each in bold):"
say ""
"${PY:-python3}" - "$OUTDIR/bench_gpu.jsonl" "$OUTDIR/bench_torch.jsonl" <<'EOF' 2>&1 | tee -a "$REPORT"
import json, sys
def load(path):
    rows = {}
    for line in open(path, errors="replace"):
        try:
            r = json.loads(line)
        except ValueError:
            continue
        if "train_samples_per_s" in r:
            rows[(r["batch"], r["precision"])] = r
    return rows
t, p = load(sys.argv[1]), load(sys.argv[2])
modes = ["fp16", "bf16", "fp32"]
print("| batch | " + " | ".join("tnrec %s" % m for m in modes) + " | " + " | ".join("PyTorch %s" % m for m in modes)
      + " | best tnrec / best PyTorch | tnrec epoch s (171,666) |")
print("|---" * 9 + "|")
for b in sorted({k[0] for k in list(t) + list(p)}):
    cells, best = [], {}
    for name, rows in (("t", t), ("p", p)):
        vals = {m: rows[(b, m)]["train_samples_per_s"] for m in modes if (b, m) in rows}
        top = max(vals.values()) if vals else None
        best[name] = top
        for m in modes:
            v = vals.get(m)
            cells.append("-" if v is None else ("**%.0f**" % v if v == top else "%.0f" % v))
    ratio = "%.2f" % (best["t"] / best["p"]) if best["t"] and best["p"] else "-"
    epoch = "%.0f" % (171666 / best["t"]) if best["t"] else "-"
    print("| %d | %s | %s | %s |" % (b, " | ".join(cells), ratio, epoch))
for name, rows in (("tnrec", t), ("PyTorch", p)):
    inf = ["%s b%d %.0f" % (m, b, r["infer_samples_per_s"]) for (b, m), r in sorted(rows.items())]
    if inf:
        print("\n%s inference samples/s: %s" % (name, ", ".join(inf)))
EOF
dev=$(sed -n 's/.*"device": "\([^"]*\)".*/\1/p' "$OUTDIR/bench_gpu.jsonl" | head -1)
if [ -n "$dev" ]; then say ""; say "tnrec device: $dev"; fi

# --- Loader decode rate -----------------------------------------------------
stage_start "Loader decode rate (shards -> NDHWC float32 batches of 128, 384 full-size samples)"
DATA=$W/loader_data
if timeout -k 10 "$(limit 60)" "$FIXTURE" "$DATA" 384 1 4 120 240 > "$W/fx.out" 2>&1; then
  timeout -k 10 "$(limit 60)" "$BENCH_LOADER" "$DATA" --batch 128 --epochs 2 --threads 4,8,16 \
    > "$OUTDIR/bench_loader.jsonl" 2>&1 || say "- bench_train_loader: exit $?"
  say ""
  say "| threads | samples/s | per thread |"
  say "|---|---|---|"
  "${PY:-python3}" - "$OUTDIR/bench_loader.jsonl" <<'EOF' 2>&1 | tee -a "$REPORT"
import json, sys
for line in open(sys.argv[1], errors="replace"):
    try:
        r = json.loads(line)
    except ValueError:
        continue
    print("| %d | %.0f | %.0f |" % (r["threads"], r["samples_per_s"], r["samples_per_s_per_thread"]))
EOF
  stage_end loader "$(grep -c samples_per_s "$OUTDIR/bench_loader.jsonl") of 3 measured"
else
  say "could not write the fixture: $(tail -1 "$W/fx.out")"
  stage_end loader "fixture FAILED"
fi

# --- Input pipeline: the real trainer, on and off -----------------------------
stage_start "Input pipeline (tnrec train, seed3d fp16, batch 64, 384 full-size samples, epoch 2 of 2)"
if [ -z "$ok_precs" ] || [ ! -d "$DATA" ]; then
  say "not run: $( [ -z "$ok_precs" ] && echo "the preflight failed" || echo "no fixture")"
  stage_end pipeline "not run"
else
  say ""
  say "| pipeline | samples/s | data wait s | steps whose batch was copied during the step before |"
  say "|---|---|---|---|"
  p_res=""
  for mode in on off; do
    stage=1
    [ "$mode" = off ] && stage=0
    echo "== pipeline $mode (TNREC_GPU_STAGE=$stage)" >> "$OUTDIR/pipeline.log"
    if TNREC_GPU_STAGE=$stage timeout -k 10 "$(limit 60)" "$TNREC" train "$DATA" -o "$W/pipe_$mode" --model seed3d \
         --batch 64 --epochs 2 --lr 5e-4 --clipvalue 1 --class-weights none --device cuda --precision fp16 \
         --threads "$NPROC" >> "$OUTDIR/pipeline.log" 2>&1; then
      echo "== metrics.jsonl ($mode)" >> "$OUTDIR/pipeline.log"
      cat "$W/pipe_$mode/metrics.jsonl" >> "$OUTDIR/pipeline.log"
      "${PY:-python3}" - "$W/pipe_$mode/metrics.jsonl" "$mode" <<'EOF' 2>&1 | tee -a "$REPORT"
import json, sys
r = [json.loads(l) for l in open(sys.argv[1]) if l.strip()][-1]
print("| %s | %.0f | %.2f | %d |" % (sys.argv[2], r["samples_per_s"], r["data_wait_s"], r.get("gpu_staged_steps", -1)))
EOF
      p_res="$p_res $mode ok,"
    else
      say "| $mode | failed: $(tail -1 "$OUTDIR/pipeline.log") | | |"
      p_res="$p_res $mode FAILED,"
    fi
    rm -rf "$W/pipe_$mode"
  done
  p_res=${p_res%,}; stage_end pipeline "${p_res# }"
fi
rm -rf "$DATA"

# --- Summary on top of the report, every file within 16 MB ------------------
{
  sed -n '1,/^## Preflight/p' "$REPORT" | sed '$d'
  echo "## Summary"
  echo
  echo "| stage | result | s |"
  echo "|---|---|---|"
  for s in "${summary[@]}"; do echo "| ${s//|/ | } |"; done
  echo
  echo "total $(elapsed) s of $DEADLINE; exit status $status (0: the preflight and both GPU tests passed)"
  echo
  sed -n '/^## Preflight/,$p' "$REPORT"
} > "$W/report.md" && cp "$W/report.md" "$REPORT"
for f in "$OUTDIR"/report.md "$OUTDIR"/env.txt "$OUTDIR"/*.log "$OUTDIR"/*.jsonl; do
  [ -f "$f" ] || continue
  if [ "$(stat -c %s "$f")" -gt 16000000 ]; then
    { head -c 8000000 "$f"; printf '\n[... cut to fit 16 MB ...]\n'; tail -c 7000000 "$f"; } > "$W/cut" && cp "$W/cut" "$f"
  fi
done
echo "total $(elapsed) s; exit status $status; files in $OUTDIR"
exit $status
