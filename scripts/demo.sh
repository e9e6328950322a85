#!/usr/bin/env bash
# scripts/demo.sh [OUTDIR]: the main job on the embedded default.
# Installs dependencies, builds tnrec, synthesises a small TorNet-like
# archive and builds it into record shards, then inspects and verifies them.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-out/demo}
samples=${TNREC_DEMO_SAMPLES:-600}

bash scripts/deps.sh
cmake -S . -B build >/dev/null
cmake --build build -j"$(nproc)"
tnrec=build/bin/tnrec

rm -rf "$out"
mkdir -p "$out"
echo "== tnrec synth: $samples synthetic TorNet samples"
$tnrec synth "$out/tornet" --samples "$samples" --seed 1
echo "== tnrec build: train and test splits to float16 shards"
$tnrec build "$out/tornet" --split train -o "$out/train"
$tnrec build "$out/tornet" --split test -o "$out/test"
echo "== tnrec dump"
$tnrec dump "$out/train"
echo "== tnrec verify"
$tnrec verify "$out/train" "$out/test"
