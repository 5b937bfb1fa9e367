#!/usr/bin/env bash
# ab-import.sh WORK [N] [ROUNDS] BUILD... : the import of N new plugins (`plugindex process`), by each build,
# ROUNDS times (5 by default) in turn, the order rotating every round, each into a fresh copy of one seeded
# registry; prints each build's medians of wall, user and system time (GNU time), then of the time each
# step of the batch had ended at (PLUGINDEX_STEPS, ms since the process started). A BUILD is a built
# command's entry, `dist/cli/plugindex.mjs` of a checkout (`node build/cli.mjs --outdir DIR` writes one),
# after Node.js's own flags if any, as one word: '--max-semi-space-size=64 dist/cli/plugindex.mjs'.
# What one change to the import is worth: this machine's speed drifts by a fifth and more over minutes,
# more than most changes, so builds meet the same drift only when they take turns; the CPU times move less
# than the wall time. The seeded registry is made once (import-template.sh: WORK/import-template-N). The
# rounds' registries are kept (WORK/ab-rounds-<time>), to delete once you are done timing: on ext4 without
# a journal (this machine's disk), an inode freed in the last minute (six, while its inode table block is
# not yet written back) is passed over by the next file made near it (`recently_deleted` in
# fs/ext4/ialloc.c), and an import makes 110,000 of them: after a tree of 300,000 was deleted, imports
# beside it took 1.5 to 2 times as long, for minutes. With DROP_CACHES=1 (as root), the page cache is dropped
# before each round's copy: once it had filled the memory, rounds ran slower and further apart.
set -euo pipefail
W=${1:?usage: ab-import.sh WORK [N] [ROUNDS] BUILD...}; N=${2:-10000}; ROUNDS=${3:-5}; shift 3
[ $# -ge 1 ] || { echo "name at least one build (a dist/cli/plugindex.mjs)" >&2; exit 1; }
CO=$(cd "$(dirname "$0")/.." && pwd)
T=$("$CO/bench/import-template.sh" "$W" "$N")
R=$W/ab-rounds-$(date +%s); mkdir -p "$R"
builds=("$@"); count=${#builds[@]}; n=0
for ((k = 0; k < ROUNDS; k++)); do
  for ((j = 0; j < count; j++)); do
    b=$(( (j + k) % count )); n=$((n + 1)); d=$R/$n
    if [ "${DROP_CACHES:-}" = 1 ]; then sync; echo 1 > /proc/sys/vm/drop_caches; fi
    cp -a "$T" "$d"; find "$d/staging" -name '*.tgz' -exec mv -t "$d/incoming/" {} +; sync
    # Unquoted on purpose: a build may start with Node.js's flags (none of these words holds a space).
    # shellcheck disable=SC2086
    if ! PLUGINDEX_STEPS=1 /usr/bin/time -f "$b %e %U %S" -a -o "$R/times" node ${builds[$b]} process \
      --registry "$d" >/dev/null 2>"$R/steps-$n"; then
      cat "$R/steps-$n" >&2
      exit 1
    fi
    sed -n "s/^plugindex: \([a-z-]*\) at \([0-9]*\) ms$/$b \1 \2/p" "$R/steps-$n" >>"$R/steps"
    cnt=$(node -e 'console.log(require(process.argv[1]).plugins.length)' "$d/public/index.json")
    [ "$cnt" -eq "$N" ] || { echo "${builds[$b]}: the index has $cnt plugins, not $N" >&2; exit 1; }
  done
done
med() { sort -n | awk '{a[NR]=$1} END {print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}'; }
echo "rounds left in $R" >&2
for ((b = 0; b < count; b++)); do
  col() { awk -v b="$b" -v c="$1" '$1 == b {print $c}' "$R/times" | med; }
  echo "${builds[$b]}: wall $(col 2) s, user $(col 3) s, system $(col 4) s (medians of $ROUNDS)"
  steps=""
  for s in judged rendered logged plugin-documents committed outcomes; do
    at=$(awk -v b="$b" -v s="$s" '$1 == b && $2 == s {print $3}' "$R/steps" | med)
    [ -n "$at" ] && steps="$steps $s $at,"
  done
  echo "  steps ended at (ms):${steps%,}"
done
