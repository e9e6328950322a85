#!/usr/bin/env bash
# scripts/mutate.sh: do the tests fail when the code is wrong? Plants each
# mutation of tests/mutations.txt (a small, exact text substitution in one
# file), one at a time, in a scratch copy of the committed tree, rebuilds
# (one build folder, incrementally: a mutation costs its file's recompile)
# and runs the tests named for it. A mutation is caught when one of those
# tests fails, missed when they all pass (or skip).
#
#   scripts/mutate.sh               every mutation; a markdown table at the end
#   scripts/mutate.sh --quick       the subset marked "quick" (5, a few minutes)
#   scripts/mutate.sh --only REGEX  the mutations whose id matches REGEX
#   scripts/mutate.sh --list FILE   another list (default tests/mutations.txt)
#   scripts/mutate.sh --out FILE    also write the table to FILE
#   scripts/mutate.sh --keep        keep the scratch folder (its path is printed)
#
# Exit status: 0 every mutation caught; 1 one or more missed, or the
# unmutated tree fails its tests; 2 a usage error or a mutation that cannot
# be applied (its text is not found exactly once, or it does not compile).
# The copy is `git archive HEAD`: uncommitted changes are not part of it.
# Environment: TNREC_MUTATE_JOBS (build jobs, default 2), TMPDIR.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

list=$repo/tests/mutations.txt quick=0 only="" out="" keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1; shift ;;
    --only) [ $# -ge 2 ] || { echo "mutate: --only needs a REGEX" >&2; exit 2; }; only=$2; shift 2 ;;
    --list) [ $# -ge 2 ] || { echo "mutate: --list needs a FILE" >&2; exit 2; }; list=$(realpath "$2"); shift 2 ;;
    --out) [ $# -ge 2 ] || { echo "mutate: --out needs a FILE" >&2; exit 2; }; out=$(realpath -m "$2"); shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "mutate: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[ -f "$list" ] || { echo "mutate: no list '$list'" >&2; exit 2; }
jobs=${TNREC_MUTATE_JOBS:-2}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

work=$(mktemp -d "${TMPDIR:-/tmp}/tnrec-mutate.XXXXXX")
chmod 755 "$work"   # test_shard, as root, checks a folder as nobody, who must reach it
cleanup() {
  if [ "$keep" = 1 ]; then echo "mutate: scratch kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
src=$work/src bld=$work/build
mkdir -p "$src"
git -C "$repo" archive --format=tar HEAD | tar -x -C "$src"
# The default list is the committed one, in step with the committed code;
# a --list FILE is read as given.
if [ "$list" = "$repo/tests/mutations.txt" ]; then list=$src/tests/mutations.txt; fi

# The helper: parse the list, apply or check one mutation.
helper=$work/mutations.py
cat > "$helper" <<'PY'
import sys

def parse(path):
    muts, cur = [], None
    with open(path, encoding="utf-8") as f:
        for n, raw in enumerate(f, 1):
            line = raw.rstrip("\n")
            if line.startswith("#") or not line.strip():
                continue
            if line.startswith("== "):
                words = line[3:].split()
                cur = {"id": words[0], "quick": "quick" in words[1:], "line": n}
                muts.append(cur)
            elif cur is None:
                sys.exit("%s:%d: text before the first '== ID'" % (path, n))
            elif line.startswith(("file: ", "tests: ", "what: ")):
                k, v = line.split(": ", 1)
                cur[k] = v.strip()
            elif line.startswith("- "):
                cur["find"] = line[2:]
            elif line.startswith("+ "):
                cur["replace"] = line[2:]
            else:
                sys.exit("%s:%d: cannot read %r" % (path, n, line))
    for m in muts:
        for k in ("file", "tests", "what", "find", "replace"):
            if k not in m:
                sys.exit("%s:%d: mutation %s has no %s" % (path, m["line"], m["id"], k))
    ids = [m["id"] for m in muts]
    dup = {i for i in ids if ids.count(i) > 1}
    if dup:
        sys.exit("%s: ids used twice: %s" % (path, ", ".join(sorted(dup))))
    return muts

def main():
    cmd, path = sys.argv[1], sys.argv[2]
    muts = parse(path)
    if cmd == "list":   # id TAB quick TAB file TAB tests TAB what
        for m in muts:
            print("\t".join([m["id"], "1" if m["quick"] else "0", m["file"], m["tests"], m["what"]]))
        return 0
    if cmd in ("apply", "check"):  # apply|check ID ROOT: exit 3 unless the text occurs exactly once
        mid, root = sys.argv[3], sys.argv[4]
        m = next(x for x in muts if x["id"] == mid)
        target = root + "/" + m["file"]
        try:
            text = open(target, encoding="utf-8").read()
        except OSError as e:
            print("mutation %s: %s" % (mid, e), file=sys.stderr)
            return 3
        count = text.count(m["find"])
        if count != 1:
            print("mutation %s: %r occurs %d times in %s (want exactly 1): update tests/mutations.txt"
                  % (mid, m["find"], count, m["file"]), file=sys.stderr)
            return 3
        if cmd == "check":
            return 0
        with open(target, "w", encoding="utf-8") as f:
            f.write(text.replace(m["find"], m["replace"]))
        return 0
    sys.exit("unknown command " + cmd)

sys.exit(main())
PY

mapfile -t rows < <(python3 "$helper" list "$list") || exit 2
[ ${#rows[@]} -gt 0 ] || { echo "mutate: '$list' lists no mutation" >&2; exit 2; }
selected=()
for row in "${rows[@]}"; do
  IFS=$'\t' read -r id q file tests what <<< "$row"
  if [ "$quick" = 1 ] && [ "$q" != 1 ]; then continue; fi
  if [ -n "$only" ] && ! [[ $id =~ $only ]]; then continue; fi
  selected+=("$row")
done
[ ${#selected[@]} -gt 0 ] || { echo "mutate: no mutation selected" >&2; exit 2; }

# Every text must be found before anything is built: the list follows the code.
bad=0
for row in "${selected[@]}"; do
  IFS=$'\t' read -r id q file tests what <<< "$row"
  python3 "$helper" check "$list" "$id" "$src" || bad=1
done
[ "$bad" = 0 ] || { echo "mutate: the list does not match the code (above)" >&2; exit 2; }

t0=$SECONDS
echo "== mutate: ${#selected[@]} mutation(s) from ${list#"$repo"/}; scratch $work"
echo "== building the unmutated tree"
cmake -S "$src" -B "$bld" -DTNREC_WITH_CUDA=OFF > "$work/configure.log" 2>&1 ||
  { tail -n 30 "$work/configure.log" >&2; echo "mutate: configure failed" >&2; exit 2; }
cmake --build "$bld" -j"$jobs" > "$work/build.log" 2>&1 ||
  { tail -n 30 "$work/build.log" >&2; echo "mutate: the unmutated tree does not build" >&2; exit 2; }

# The unmutated tree must pass the tests the mutations name (skips do not count).
union=""
for row in "${selected[@]}"; do
  IFS=$'\t' read -r id q file tests what <<< "$row"
  union=${union:+$union|}$tests
done
echo "== the tests on the unmutated tree"
if ! ctest --test-dir "$bld" -R "$union" -j"$jobs" --output-on-failure > "$work/baseline.log" 2>&1; then
  tail -n 40 "$work/baseline.log" >&2
  echo "mutate: the unmutated tree fails its tests; nothing to measure" >&2
  exit 1
fi
if grep -q "\*\*\*Skipped\| Not Run" "$work/baseline.log"; then
  grep "\*\*\*Skipped\| Not Run" "$work/baseline.log" >&2
  echo "mutate: a test the mutations need was skipped on the unmutated tree (install what it names)" >&2
  exit 1
fi

table="| # | mutation | file | what | tests (ctest -R) | result | s |
|---|---|---|---|---|---|---|"
missed=0 caught=0 n=0 errors=0
for row in "${selected[@]}"; do
  IFS=$'\t' read -r id q file tests what <<< "$row"
  n=$((n + 1))
  t1=$SECONDS
  cp -p "$src/$file" "$work/original"
  python3 "$helper" apply "$list" "$id" "$src" || { errors=$((errors + 1)); continue; }
  result=""
  if ! cmake --build "$bld" -j"$jobs" > "$work/build_$id.log" 2>&1; then
    tail -n 20 "$work/build_$id.log" >&2
    echo "mutate: $id does not compile: fix its text in the list" >&2
    result="ERROR: does not compile"
    errors=$((errors + 1))
  else
    ctest --test-dir "$bld" -R "$tests" -j"$jobs" --output-on-failure > "$work/test_$id.log" 2>&1 && rc=0 || rc=$?
    if grep -q "No tests were found" "$work/test_$id.log"; then
      result="ERROR: no test matches"
      errors=$((errors + 1))
    elif [ $rc -ne 0 ]; then
      failed=$(sed -n 's/^[[:space:]]*[0-9]* - \([^ ]*\) (.*/\1/p' "$work/test_$id.log" | sort -u | paste -sd, -)
      result="caught (${failed:-ctest exit $rc})"
      caught=$((caught + 1))
    else
      result="**MISSED**"
      missed=$((missed + 1))
      cp "$work/test_$id.log" "$work/missed_$id.log"
    fi
  fi
  # Restore the file with a fresh time stamp so the next build recompiles it.
  cp "$work/original" "$src/$file"
  touch "$src/$file"
  secs=$((SECONDS - t1))
  echo "   $n/${#selected[@]} $id: $result (${secs} s)"
  # "|" inside a table cell (the regex alternations) must be escaped.
  table+="
| $n | \`$id\` | \`$file\` | ${what//|/\\|} | \`${tests//|/\\|}\` | $result | $secs |"
done

echo
echo "$table"
echo
summary="$caught caught, $missed missed, $errors error(s) of ${#selected[@]} mutations in $((SECONDS - t0)) s"
echo "$summary"
if [ -n "$out" ]; then
  { echo "$table"; echo; echo "$summary"; } > "$out"
fi
if [ "$errors" -gt 0 ]; then exit 2; fi
if [ "$missed" -gt 0 ]; then
  echo "mutate: missed mutations: the tests named for them passed with the bug in (logs in $work/missed_*.log; --keep keeps them)" >&2
  exit 1
fi
exit 0
