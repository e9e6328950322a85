#!/usr/bin/env bash
# scripts/fresh_check.sh: the README's two commands on a machine nobody
# prepared. A bare minbase Debian 12 root is made with debootstrap, a clean
# `git archive` of HEAD is copied into it, and inside a chroot (with /proc,
# /sys and /dev bound) scripts/demo.sh runs, then scripts/test.sh.
#
#   scripts/fresh_check.sh                  both commands, the whole test suite
#   scripts/fresh_check.sh --demo-only      the first command only
#   scripts/fresh_check.sh --tests REGEX    the second command, tests matching REGEX
#
# Needs root (debootstrap, mount, chroot). Environment:
#   TNREC_FRESH_CACHE   folder for a tarball of the bare root, reused on the
#                       next run (default /var/cache/tnrec-fresh; "none": no
#                       cache). Only the root exactly as debootstrap left it
#                       is cached, never one with tnrec's dependencies in it.
#   TNREC_FRESH_MIRROR  Debian mirror (default http://deb.debian.org/debian)
#   TNREC_FRESH_KEEP=1  keep the root afterwards (its path is printed)
#   TNREC_FRESH_WORK    where the root is made (default /var/tmp)
# The mounts live in a private mount namespace and are also unmounted on
# every exit path, so nothing is left mounted even if this script is killed.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$(pwd)

mode=all tests=""
while [ $# -gt 0 ]; do
  case "$1" in
    --demo-only) mode=demo; shift ;;
    --tests) [ $# -ge 2 ] || { echo "fresh_check: --tests needs a REGEX" >&2; exit 2; }
             tests=$2; shift 2 ;;
    -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "fresh_check: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done

if [ "$(id -u)" -ne 0 ]; then
  echo "fresh_check: needs root (debootstrap, mount and chroot); run it with sudo" >&2
  exit 1
fi

# The inner part: run in a private mount namespace by the outer part below.
if [ "${TNREC_FRESH_INNER:-}" = 1 ]; then
  root=$TNREC_FRESH_ROOT
  mounts=()
  unmount_all() {
    local i
    for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
      umount -R "${mounts[i]}" 2>/dev/null || umount -R -l "${mounts[i]}" 2>/dev/null || true
    done
  }
  trap unmount_all EXIT
  bind() {   # bind SOURCE TARGET_IN_ROOT [mount args...]
    local target=$root$2
    mkdir -p "$target"
    mount "${@:3}" "$1" "$target"
    mounts+=("$target")
  }
  bind proc /proc -t proc
  bind /sys /sys --rbind --make-rslave
  bind /dev /dev --bind
  bind /dev/pts /dev/pts --bind
  bind tmpfs /dev/shm -t tmpfs   # Open MPI's shared memory
  # Only variables that a fresh machine could have; the CA and pip settings
  # name files that were copied into the root at the same paths.
  # TNREC_ALLOW_SKIP (scripts/test.sh) is passed on: .ci/run allows the GPU
  # tests to skip, which they do in this root (no CUDA toolkit in it).
  envs=(HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
        LANG=C.UTF-8 CI=true DEBIAN_FRONTEND=noninteractive TERM=dumb)
  for v in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY \
           PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_TRUSTED_HOST PIP_CERT PIP_DEFAULT_TIMEOUT \
           SSL_CERT_FILE SSL_CERT_DIR REQUESTS_CA_BUNDLE CURL_CA_BUNDLE TNREC_ALLOW_SKIP; do
    if [ -n "${!v:-}" ]; then envs+=("$v=${!v}"); fi
  done
  run_in_root() {   # run_in_root LABEL COMMAND
    local t0=$SECONDS
    echo "== fresh root: $1"
    chroot "$root" /usr/bin/env -i "${envs[@]}" /bin/bash -c "cd /src/tnrec && $2"
    echo "== fresh root: $1: $((SECONDS - t0)) s"
  }
  run_in_root "scripts/demo.sh (the README's first command)" "scripts/demo.sh"
  if [ "$TNREC_FRESH_MODE" = all ]; then
    if [ -n "$TNREC_FRESH_TESTS" ]; then
      run_in_root "scripts/test.sh, tests matching '$TNREC_FRESH_TESTS'" \
        "scripts/test.sh --tests '$TNREC_FRESH_TESTS'"
    else
      run_in_root "scripts/test.sh (the README's second command)" "scripts/test.sh"
    fi
  fi
  exit 0
fi

t_start=$SECONDS
if ! command -v debootstrap > /dev/null; then
  echo "fresh_check: installing debootstrap"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap
fi

mirror=${TNREC_FRESH_MIRROR:-http://deb.debian.org/debian}
cache=${TNREC_FRESH_CACHE:-/var/cache/tnrec-fresh}
work=$(mktemp -d "${TNREC_FRESH_WORK:-/var/tmp}/tnrec-fresh.XXXXXX")
root=$work/root

cleanup() {
  local rc=$?
  # Never delete a root that still has something mounted in it (that would
  # reach into the host's /dev or /sys).
  if findmnt -rn -o TARGET | grep -q "^$root"; then
    echo "fresh_check: something is still mounted under $root; not removing it" >&2
  elif [ "${TNREC_FRESH_KEEP:-0}" = 1 ]; then
    echo "fresh_check: root kept in $root"
  else
    rm -rf "$work"
  fi
  exit $rc
}
trap cleanup EXIT
# A signal stops the whole inner process group (apt, make, the tests), so
# nothing goes on running in the root while it is removed.
inner=""
stop() {
  if [ -n "$inner" ]; then
    kill -TERM -- "-$inner" 2>/dev/null || true
    wait "$inner" 2>/dev/null || true
  fi
  exit "$1"
}
trap 'stop 130' INT
trap 'stop 143' TERM

# 1. A bare minbase root, from the cache or from debootstrap.
mkdir -p "$root"
bare=$cache/bookworm-minbase-$(dpkg --print-architecture).tar
t0=$SECONDS
if [ "$cache" != none ] && [ -s "$bare" ]; then
  echo "== fresh root: bare root from the cache ($bare)"
  tar -xf "$bare" -C "$root"
else
  echo "== fresh root: debootstrap --variant=minbase bookworm ($mirror)"
  if ! debootstrap --variant=minbase bookworm "$root" "$mirror" > "$work/debootstrap.log" 2>&1; then
    tail -n 30 "$work/debootstrap.log" >&2
    echo "fresh_check: debootstrap failed (log above; is $mirror reachable?)" >&2
    exit 1
  fi
  if [ "$cache" != none ]; then
    mkdir -p "$cache"
    tar -cf "$bare.tmp.$$" -C "$root" . && mv "$bare.tmp.$$" "$bare"
  fi
fi
echo "== fresh root: bare root ready: $((SECONDS - t0)) s"

# 2. What a new machine on this network would have: DNS, the package
#    sources and their settings, and the CA trust the registries are
#    reached through.
cp -L /etc/resolv.conf "$root/etc/resolv.conf"
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list; do
  if [ -f "$f" ]; then cp "$f" "$root$f"; fi
done
for f in /etc/apt/apt.conf.d/*; do
  if [ -f "$f" ] && grep -q 'Acquire' "$f"; then cp "$f" "$root$f"; fi
done
mkdir -p "$root/etc/ssl/certs" "$root/usr/local/share/ca-certificates"
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
fi
if [ -d /usr/local/share/ca-certificates ]; then
  cp -r /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/"
fi
if [ -f /etc/pip.conf ]; then cp /etc/pip.conf "$root/etc/pip.conf"; fi

# 3. A clean archive of the committed tree.
if [ -n "$(git -C "$src" status --porcelain 2>/dev/null)" ]; then
  echo "fresh_check: note: uncommitted changes are not part of the check (git archive HEAD)"
fi
mkdir -p "$root/src/tnrec"
git -C "$src" archive --format=tar HEAD | tar -x -C "$root/src/tnrec"

# 4. The two commands, in a private mount namespace and a process group of
#    their own (run in the background so that a signal reaches stop() at once).
TNREC_FRESH_INNER=1 TNREC_FRESH_ROOT=$root TNREC_FRESH_MODE=$mode TNREC_FRESH_TESTS=$tests \
  setsid unshare --mount --propagation private bash "$src/scripts/fresh_check.sh" &
inner=$!
set +e
wait "$inner"
rc=$?
set -e
inner=""
if [ "$rc" -ne 0 ]; then
  echo "fresh_check: FAILED (exit $rc) in the fresh root; the output above says where" >&2
  exit "$rc"
fi
echo "== fresh root: all passed in $((SECONDS - t_start)) s"
