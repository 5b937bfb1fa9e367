#!/usr/bin/env bash
# side-by-side-publish.sh WORK [N] [ROUNDS]: after ../shared/bench/side-by-side/run.sh left WORK (its reprepro
# repository and plugindex registry of N plugins, 10000 by default), times, interleaved round by round:
# - reprepro's `includedeb` of one new package (it re-exports and re-signs the index);
# - `plugindex publish` of one new bundle as a process of its own (no server: run.sh's +1);
# - the floor under that publish, bench/publish-floor.ts (Node.js started, openpgp.js loaded, the index
#   documents over 1 MB read, hashed, compressed both ways and written; built as the command is, into
#   WORK/publish-floor): what any publish of a registry of this size pays before the rest of its work.
# Two untimed rounds, then ROUNDS (9) timed; prints the three medians and their ratios to reprepro's.
set -euo pipefail
W=${1:?usage: side-by-side-publish.sh WORK [N] [ROUNDS]}; N=${2:-10000}; ROUNDS=${3:-9}
CO=$(cd "$(dirname "$0")/.." && pwd); SBS=${SBS:-$CO/../shared/bench/side-by-side}
export GNUPGHOME=$W/gnupg DEB_CACHE=${DEB_CACHE:-$W/debs}
R=$W/reprepro-$N; P=$W/pdx-$N
[ -d "$R" ] && [ -d "$P" ] || { echo "no $R or $P: run run.sh with WORK=$W first" >&2; exit 1; }
# Fresh names every run: past the ones run.sh and side-by-side-serve.sh use (90001 on, 95000 on).
X=$(( 97000 + $(find "$P/public/plugins" -maxdepth 1 -name 'plugin-9[7-9]*' | wc -l) ))
"$SBS/gen-debs.sh" "$X" $((X + ROUNDS + 2)) >/dev/null
node --import "$CO/node_modules/tsx/dist/esm/index.mjs" "$SBS/seed.mts" "$CO" "$P" $((ROUNDS + 2)) "$X" 1 >/dev/null
# (Arguments by the environment: build/cli.mjs builds the command when it is process.argv[1].)
OUT="$W/publish-floor" ENTRY="$CO/bench/publish-floor.ts" node -e \
  "import('$CO/build/cli.mjs').then((m) => m.buildCli(process.env.OUT, { floor: process.env.ENTRY }))"
ms() { local t0 t1; t0=$(date +%s%N); "$@" >/dev/null 2>&1 || { echo "FAILED: $*" >&2; exit 1; }; t1=$(date +%s%N); echo $(( (t1 - t0) / 1000000 )); }
med() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}'; }
r=""; p=""; f=""
for ((k = 0; k < ROUNDS + 2; k++)); do
  i=$((X + k))
  rt=$(ms reprepro -b "$R" includedeb stable "$(printf '%s/plugin-%05d_1.0.0_all.deb' "$DEB_CACHE" $i)")
  pt=$(ms node "$CO/cli/bin.mjs" publish "$P/staging/plugin-$(printf %05d $i)-0.tgz" --registry "$P")
  # The floor reads the index documents the publish just wrote, as the next publish would.
  ft=$(ms node "$W/publish-floor/floor.mjs" "$P/public" "$W/publish-floor-out")
  [ $k -ge 2 ] && { r="$r $rt"; p="$p $pt"; f="$f $ft"; }
done
cnt=$(node -e 'console.log(require(process.argv[1]).plugins.length)' "$P/public/index.json")
echo "plugindex's index lists $cnt plugins" >&2
rm_=$(echo $r | med); pm=$(echo $p | med); fm=$(echo $f | med)
echo "N=$N reprepro +1 [$r ] median $rm_ ms; plugindex publish [$p ] median $pm ms; ratio $(echo "scale=2; $pm/$rm_" | bc)x"
echo "the floor (bench/publish-floor.ts) [$f ] median $fm ms: $(echo "scale=2; $fm/$rm_" | bc)x reprepro's +1; plugindex is $(echo "scale=2; $pm/$fm" | bc)x the floor"
