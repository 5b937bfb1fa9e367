#!/usr/bin/env bash
# side-by-side-import.sh WORK [N] [ROUNDS]: the import of N new packages/plugins, reprepro's against
# plugindex's, ROUNDS times (3 by default), the two tools taking turns to go first, each round into fresh
# repositories. One import takes seconds, and this machine's speed drifts over minutes by a fifth and more:
# `../shared/bench/side-by-side/run.sh` times each import once, one after the other, so its ratio moves
# with the drift. Here both tools meet the same drift in every round; the medians and their ratio print.
#
# WORK is a folder `run.sh` left (its GnuPG home and its .debs in WORK/debs, or DEB_CACHE); the plugindex
# bundles are seeded once into WORK/import-template (about 25 s at 10,000), then copied for each round,
# outside the time. Every round's repositories are kept, and left for you to delete once you are done
# timing: on ext4 without a journal (this machine's disk), an inode freed in the last minute (six, while its
# inode table block is not yet written back) is passed over by the next file made near it
# (`recently_deleted` in fs/ext4/ialloc.c), and an import makes 110,000 of them: after a tree of 300,000
# was deleted, imports beside it took 1.5 to 2 times as long, for minutes.
#
# A third contender in every round, the yardstick: bench/import-floor.ts, the work an import cannot do
# without, done with the core's own parts and none of the pipeline's bookkeeping (built as the command is,
# into WORK/import-floor), on a copy of the same registry. Its median says how much of the import is that
# work, and how much the pipeline's structure adds.
set -euo pipefail
W=${1:?usage: side-by-side-import.sh WORK [N] [ROUNDS]}; N=${2:-10000}; ROUNDS=${3:-3}
CO=$(cd "$(dirname "$0")/.." && pwd); SBS=${SBS:-$CO/../shared/bench/side-by-side}
export GNUPGHOME=$W/gnupg DEB_CACHE=${DEB_CACHE:-$W/debs}
KEY=$(gpg --batch --with-colons --list-secret-keys | awk -F: '/^fpr/{print $10; exit}')
[ -n "$KEY" ] || { echo "no signing key in $GNUPGHOME: run run.sh with WORK=$W first" >&2; exit 1; }
"$SBS/gen-debs.sh" 1 "$N" >/dev/null
T=$("$CO/bench/import-template.sh" "$W" "$N")
R=$W/import-rounds-$(date +%s); mkdir -p "$R"
# (Arguments by the environment: build/cli.mjs builds the command when it is process.argv[1].)
OUT="$W/import-floor" ENTRY="$CO/bench/import-floor.ts" node -e \
  "import('$CO/build/cli.mjs').then((m) => m.buildCli(process.env.OUT, { floor: process.env.ENTRY }))"
# The wall time of a command, then the CPU time (user and system) it and its children took, in ms: `times`
# in the subshell that ran only it (written to a file: in a pipe, `times` would run in a subshell of its
# own, which has no children). reprepro waits for much of its import (at 10,000 on this machine, 8.8 s for
# 5.6 s of CPU), plugindex keeps both cores busy: what moves one moves the other differently.
ms() { local t0 t1; t0=$(date +%s%N); "$@" >/dev/null 2>&1 || { echo "FAILED: $*" >&2; exit 1; }; t1=$(date +%s%N)
  times > "$R/.times-$BASHPID"
  awk -v wall=$(( (t1 - t0) / 1000000 )) 'NR == 2 { split($1, u, /[ms]/); split($2, s, /[ms]/)
    printf "%d %d %d\n", wall, (u[1] * 60 + u[2]) * 1000, (s[1] * 60 + s[2]) * 1000 }' "$R/.times-$BASHPID"
  rm -f "$R/.times-$BASHPID"; }
med() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}'; }
reprepro_import() {
  local dir=$1 s e
  for ((s = 1; s <= N; s += 500)); do e=$((s + 499)); [ $e -gt "$N" ] && e=$N
    reprepro -b "$dir" --export=silent-never includedeb stable $(for ((i = s; i <= e; i++)); do printf '%s/plugin-%05d_1.0.0_all.deb ' "$DEB_CACHE" $i; done); done
  reprepro -b "$dir" export
}
r=""; p=""; f=""; rc=""; pc=""; fc=""
for ((k = 1; k <= ROUNDS; k++)); do
  mkdir -p "$R/reprepro-$k/conf"
  printf 'Codename: stable\nArchitectures: amd64\nComponents: main\nSignWith: %s\n' "$KEY" > "$R/reprepro-$k/conf/distributions"
  for copy in pdx floor; do
    cp -a "$T" "$R/$copy-$k"
    find "$R/$copy-$k/staging" -name '*.tgz' -exec mv -t "$R/$copy-$k/incoming/" {} +
  done
  sync
  # Odd rounds reprepro first and the floor last, even rounds the other way round.
  if ((k % 2)); then
    read -r rt ru rs < <(ms reprepro_import "$R/reprepro-$k"); sync
    read -r pt pu ps < <(ms node "$CO/cli/bin.mjs" process --registry "$R/pdx-$k"); sync
    read -r ft fu fs < <(ms node "$W/import-floor/floor.mjs" "$R/floor-$k" "$R/floor-$k/out")
  else
    read -r ft fu fs < <(ms node "$W/import-floor/floor.mjs" "$R/floor-$k" "$R/floor-$k/out"); sync
    read -r pt pu ps < <(ms node "$CO/cli/bin.mjs" process --registry "$R/pdx-$k"); sync
    read -r rt ru rs < <(ms reprepro_import "$R/reprepro-$k")
  fi
  for index in "$R/pdx-$k/public/index.json" "$R/floor-$k/out/public/index.json"; do
    cnt=$(node -e 'console.log(require(process.argv[1]).plugins.length)' "$index")
    [ "$cnt" -eq "$N" ] || { echo "round $k: $index has $cnt plugins" >&2; exit 1; }
  done
  echo "round $k: reprepro $rt ms ($ru user, $rs system), plugindex $pt ms ($pu user, $ps system), floor $ft ms ($fu user, $fs system)" >&2
  r="$r $rt"; p="$p $pt"; f="$f $ft"; rc="$rc $((ru + rs))"; pc="$pc $((pu + ps))"; fc="$fc $((fu + fs))"
done
rm_=$(echo $r | med); pm=$(echo $p | med); fm=$(echo $f | med)
echo "rounds left in $R" >&2
echo "N=$N import: reprepro [$r ] median $rm_ ms; plugindex process [$p ] median $pm ms; ratio $(echo "scale=2; $pm/$rm_" | bc)x"
echo "the floor (bench/import-floor.ts) [$f ] median $fm ms: $(echo "scale=2; $fm/$rm_" | bc)x reprepro; plugindex is $(echo "scale=2; $pm/$fm" | bc)x the floor"
echo "CPU (user + system): reprepro median $(echo $rc | med) ms; plugindex median $(echo $pc | med) ms; the floor median $(echo $fc | med) ms"
