#!/bin/bash
# tests/cli/cli_usage.sh: help, version and usage errors of the tnrec command.
# usage: cli_usage.sh TNREC
tnrec=$1
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
expect() { # expect CODE ARGS...: run tnrec ARGS, want exit CODE
    local want=$1; shift
    "$tnrec" "$@" >$tmp/out 2>$tmp/err
    local got=$?
    if grep -qE "Sanitizer|runtime error:" $tmp/err; then
        echo "FAIL: sanitizer report from tnrec $*" >&2
        cat $tmp/err >&2
        fail=1
    fi
    if [ "$got" != "$want" ]; then
        echo "FAIL: tnrec $* exited $got, want $want" >&2
        cat $tmp/err >&2
        fail=1
    fi
}
has() { # has FILE TEXT: the last run's FILE (out/err) contains TEXT
    if ! grep -qF -- "$2" "$tmp/$1"; then
        echo "FAIL: std$1 lacks '$2'" >&2
        fail=1
    fi
}
expect 0 --help;            has out "dump"; has out "verify"
expect 0 --version;         has out "tnrec "; has out "features:"; has out "gpu: "
# The GPU line names cuDNN and NCCL when the CUDA module is built, else says so.
if grep -q "^features:.* cuda" "$tmp/out"; then
    grep -Eq "^gpu: CUDA [0-9.]+, cuDNN [0-9]+\.[0-9]+\.[0-9]+, NCCL [0-9]+\.[0-9]+\.[0-9]+" "$tmp/out" ||
        { echo "FAIL: --version does not name the CUDA, cuDNN and NCCL versions: $(cat "$tmp/out")" >&2; fail=1; }
else
    has out "built without CUDA"
fi
expect 0 dump --help;       has out "usage: tnrec dump"; has out "--records"; has out "--npy"
expect 0 verify --help;     has out "usage: tnrec verify"; has out "-j, --jobs N"
expect 2;                   has err "usage: tnrec"
expect 2 no-such-command;   has err "unknown command 'no-such-command'"
expect 2 dump --no-such-option x; has err "unknown option '--no-such-option'"; has err "hint:"
expect 2 verify --no-such-option x; has err "unknown option '--no-such-option'"
expect 2 dump;              has err "no PATH given"
expect 2 verify;            has err "no PATH given"
expect 0 plot --help;       has out "usage: tnrec plot"; has out "--frames all"; has out "--mask"
expect 2 plot;              has err "no PATH given"
expect 2 plot x --record 0; has err "no output file"
# More sources than a build takes, after '--' as before it: refused, not cut short.
many=$(seq -f "$tmp/none%g.nc" 1 1025)
expect 2 build -o "$tmp/ds" $many;    has err "too many arguments"
expect 2 build -o "$tmp/ds" -- $many; has err "too many arguments"
[ $fail = 0 ] && echo "cli_usage: all checks passed"
exit $fail
