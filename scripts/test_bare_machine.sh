#!/usr/bin/env bash
# Run a command on "a bare machine": in a private mount namespace where this machine's CUDA toolkit is gone.
#
#   scripts/test_bare_machine.sh CMD [ARGS...]     (`make test-bare` runs the real-toolchain tests this way)
#
# Hidden (an empty tmpfs over each directory, an empty non-executable file bound over each file):
# /usr/local/cuda-*, /opt/cuda*, /usr/local/cuda when it is a directory (a link into a hidden one leads
# nowhere), every `nvcc` on PATH, and the small wrapper scripts in /usr/local/bin that exec into a toolkit
# (/usr/local/bin/{nvcc,ptxas,fatbinary,...} -> /usr/local/cuda-13.0/bin/...). Nothing outside the namespace
# changes: the mounts vanish with it. Needs root (unshare -m) or unprivileged user namespaces (unshare -rm).
# Exit 77: no mount namespace could be made here (the tests skip; under CI=true that is an error).
set -euo pipefail

if [ "${MB_BARE_INSIDE:-}" != 1 ]; then
  [ "$#" -gt 0 ] || { echo "usage: $0 CMD [ARGS...]" >&2; exit 2; }
  self="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
  for how in "-m" "-r -m"; do
    # shellcheck disable=SC2086
    if unshare $how --propagation private true 2>/dev/null; then
      # shellcheck disable=SC2086
      exec env MB_BARE_INSIDE=1 unshare $how --propagation private "$self" "$@"
    fi
  done
  echo "test_bare_machine: cannot create a mount namespace here (needs root, or user namespaces for unshare -rm)" >&2
  exit 77
fi

empty_file="$(mktemp)"
chmod 0644 "$empty_file"
hidden=()
hide_dir() { mount -t tmpfs -o size=64k,mode=0755 mamba-build-bare "$1" && hidden+=("$1"); }
hide_file() { mount --bind "$empty_file" "$1" && hidden+=("$1"); }

for d in /usr/local/cuda-* /opt/cuda /opt/cuda-* /usr/lib/cuda; do
  if [ -d "$d" ] && [ ! -L "$d" ]; then hide_dir "$d"; fi
done
if [ -d /usr/local/cuda ] && [ ! -L /usr/local/cuda ]; then hide_dir /usr/local/cuda; fi
IFS=: read -r -a path_dirs <<< "${PATH:-}"
for d in "${path_dirs[@]}"; do
  if [ -e "$d/nvcc" ] && [ -x "$d/nvcc" ]; then hide_file "$d/nvcc"; fi
done
for f in /usr/local/bin/*; do
  # a short script that execs into a CUDA toolkit (the wrappers this machine has)
  if [ -f "$f" ] && [ -x "$f" ] && [ "$(stat -c %s "$f")" -lt 4096 ] && head -c 2 "$f" | grep -q '#!' \
      && grep -q 'cuda' "$f"; then
    hide_file "$f"
  fi
done

visible=""
for d in "${path_dirs[@]}" /usr/local/cuda/bin /usr/local/cuda-13.0/bin; do
  if [ -f "$d/nvcc" ] && [ -x "$d/nvcc" ]; then visible="$d/nvcc"; fi
done
if [ -n "$visible" ]; then
  echo "test_bare_machine: a CUDA toolkit is still visible ($visible): giving up" >&2
  exit 1
fi
echo "test_bare_machine: hidden ${#hidden[@]} paths: ${hidden[*]:-none}" >&2
exec "$@"
