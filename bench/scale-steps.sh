#!/bin/bash
# bench/scale-steps.sh: single obnam steps on the scale benchmark's synthetic
# FUSE source (bench/synthfs.ts), keeping the repository between runs, so one
# step (fsck, a walk of the mount) can be measured before and after a change
# on the same repository without backing up again. Each step prints wall
# seconds, CPU seconds (user+system) and peak RSS (GNU time, or VmHWM of the
# mount process). Needs `npx tsc -p .` first; run as root (drops the page
# cache before each step, like bench:scale).
#
#   bench/scale-steps.sh FILES STEP...
#     FILES   file count of the data set (bench/scale-data.ts)
#     STEP    init (new repository, production scrypt cost), backup,
#             prof-backup (the same under node --cpu-prof, profiles in
#             $BENCH_DIR/FILES/prof), fsck, walk (mount, find every file of
#             the latest snapshot, read every 100th; MOUNT_ARGS are passed
#             to obnam mount, e.g. "--cache-size 64M"), prof-walk (the
#             same under node --cpu-prof, profiles in $BENCH_DIR/FILES/prof-walk), restic-init,
#             restic-backup, restic-walk (the same with restic, repository
#             FILES/restic, RESTIC_PASSWORD bench)
#   BENCH_DIR   work directory (default /tmp/obnam-scale-steps): FILES/repo
#   OBNAM       the obnam entry script (default bin/obnam; e.g. a copy of an
#               older build's dist with its own entry, for before/after)
set -euo pipefail
FILES=$1; shift
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OBNAM=${OBNAM:-$ROOT/bin/obnam}
W=${BENCH_DIR:-/tmp/obnam-scale-steps}/$FILES
export OBNAM_PASSPHRASE=bench RESTIC_PASSWORD=bench OBNAM_NO_PROGRESS=1 UV_THREADPOOL_SIZE=16
mkdir -p "$W/src"
fusermount -u -z "$W/src" 2>/dev/null || true
rm -f "$W/in"; mkfifo "$W/in"
node "$ROOT/dist/bench/synthfs.js" "$W/src" "$FILES" < "$W/in" > "$W/synthfs.out" &
SYNTHFS=$!
exec 3>"$W/in" # synthfs unmounts and exits when this closes
trap 'exec 3>&-; wait $SYNTHFS || true; fusermount -u -z "$W/src" 2>/dev/null || true' EXIT
for _ in $(seq 300); do grep -q mounted "$W/synthfs.out" && break; sleep 0.1; done
drop() { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; }
T="%e s, %U+%S CPU s, peak RSS %M KiB"
# walk LABEL DIR CMD...: mounts with CMD (its last argument the mount point),
# finds every file below DIR of the mount, reads every 100th, unmounts.
# Peak RSS is the mount process's VmHWM: while mounting (for obnam, scrypt of
# the key slot: 128 MiB at the default cost), then reset (clear_refs) and
# read again after the walk, so the walk's own peak is shown apart.
walk() {
  local label=$1 dir=$2; shift 2
  local M=$W/mnt; mkdir -p "$M"
  "$@" > "$W/mount.out" 2> "$W/mount.err" &
  local P=$!
  for _ in $(seq 600); do grep -q " $M " /proc/mounts && break; sleep 0.1; done
  local HWM0; HWM0=$(awk '/VmHWM/ { print $2 }' "/proc/$P/status")
  echo 5 > "/proc/$P/clear_refs"
  local T0; T0=$(date +%s.%N)
  local N; N=$(find "$M/$dir/" -type f | tee "$W/files.txt" | wc -l)
  awk 'NR % 100 == 0' "$W/files.txt" | xargs -r -d '\n' cat > /dev/null
  local T1; T1=$(date +%s.%N)
  local HWM; HWM=$(awk '/VmHWM/ { print $2 }' "/proc/$P/status")
  local CPU; CPU=$(awk '{ print ($14 + $15) / 100 }' "/proc/$P/stat")
  fusermount -u "$M"; wait $P || true
  echo "walk $label: $N files, $(echo "$T1 - $T0" | bc) s, $CPU CPU s, peak RSS $(( (HWM > HWM0 ? HWM : HWM0) / 1024 )) MiB (mounting $((HWM0 / 1024)) MiB, walk $((HWM / 1024)) MiB)"
}
for step in "$@"; do
  case $step in
    init) rm -rf "$W/repo"; node "$OBNAM" --repo "$W/repo" init > /dev/null ;;
    backup) drop; /usr/bin/time -f "backup $FILES: $T" node "$OBNAM" --repo "$W/repo" backup "$W/src" > /dev/null ;;
    prof-backup) drop; rm -rf "$W/prof"
      /usr/bin/time -f "prof-backup $FILES: $T" node --cpu-prof --cpu-prof-dir="$W/prof" "$OBNAM" --repo "$W/repo" backup "$W/src" > /dev/null ;;
    fsck) drop; /usr/bin/time -f "fsck $FILES: $T" node "$OBNAM" --repo "$W/repo" fsck | tail -1 ;;
    walk|prof-walk) drop
      prof=(); label=""
      if [ "$step" = prof-walk ]; then rm -rf "$W/prof-walk"; prof=(--cpu-prof --cpu-prof-dir="$W/prof-walk"); label=" (profiled)"; fi
      # shellcheck disable=SC2086
      walk "obnam $FILES$label ${MOUNT_ARGS:-}" latest node "${prof[@]}" "$OBNAM" --repo "$W/repo" mount "$W/mnt" ${MOUNT_ARGS:-} ;;
    restic-init) rm -rf "$W/restic"; restic -q -r "$W/restic" init > /dev/null ;;
    restic-backup) drop; /usr/bin/time -f "restic-backup $FILES: $T" restic -q -r "$W/restic" backup "$W/src" > /dev/null ;;
    restic-walk) drop; walk "restic $FILES" "snapshots/latest$W/src" restic -r "$W/restic" mount "$W/mnt" ;;
    *) echo "unknown step $step" >&2; exit 2 ;;
  esac
done
