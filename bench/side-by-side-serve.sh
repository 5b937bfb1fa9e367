#!/usr/bin/env bash
# side-by-side-serve.sh WORK [N] [ROUNDS]: after ../shared/bench/side-by-side/run.sh left WORK (its reprepro
# repository and plugindex registry of N plugins, 10000 by default), starts `plugindex serve` on the registry
# and times, interleaved round by round, reprepro's `includedeb` of one new package against `plugindex
# publish` of one new bundle (which the command hands to the running server). Two untimed rounds, then
# ROUNDS (9) timed; prints both medians and their ratio. Needs reprepro, and the side-by-side's scripts.
set -euo pipefail
W=${1:?usage: side-by-side-serve.sh WORK [N] [ROUNDS]}; N=${2:-10000}; ROUNDS=${3:-9}
CO=$(cd "$(dirname "$0")/.." && pwd); SBS=${SBS:-$CO/../shared/bench/side-by-side}
export GNUPGHOME=$W/gnupg DEB_CACHE=${DEB_CACHE:-$W/debs}
R=$W/reprepro-$N; P=$W/pdx-$N
# Fresh names every run: past the ones run.sh used (90001 on) and any earlier run of this script.
X=$(( 95000 + $(find "$P/public/plugins" -maxdepth 1 -name 'plugin-9[5-9]*' | wc -l) ))
"$SBS/gen-debs.sh" "$X" $((X + ROUNDS + 2)) >/dev/null
node --import "$CO/node_modules/tsx/dist/esm/index.mjs" "$SBS/seed.mts" "$CO" "$P" $((ROUNDS + 2)) "$X" 1 >/dev/null
node "$CO/cli/bin.mjs" serve --registry "$P" --port 0 >"$W/serve.log" 2>&1 &
SERVER=$!
trap 'kill -INT $SERVER 2>/dev/null; wait $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -S "$P/.serve.sock" ] && break; sleep 0.1; done
[ -S "$P/.serve.sock" ] || { echo "plugindex serve did not start: $(cat "$W/serve.log")" >&2; exit 1; }
ms() { local t0 t1; t0=$(date +%s%N); "$@" >/dev/null 2>&1 || { echo "FAILED: $*" >&2; exit 1; }; t1=$(date +%s%N); echo $(( (t1 - t0) / 1000000 )); }
med() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}'; }
# Until the server has used no CPU for 30 ms (its work after it answered: the compressed variants, its
# collector), so that neither tool's run pays for the other's.
quiet() { local a b; for _ in $(seq 200); do a=$(cut -d' ' -f14,15 "/proc/$SERVER/stat"); sleep 0.03
  b=$(cut -d' ' -f14,15 "/proc/$SERVER/stat"); [ "$a" = "$b" ] && return; done; }
r=""; p=""
for ((k = 0; k < ROUNDS + 2; k++)); do
  i=$((X + k))
  rt=$(ms reprepro -b "$R" includedeb stable "$(printf '%s/plugin-%05d_1.0.0_all.deb' "$DEB_CACHE" $i)")
  pt=$(ms node "$CO/cli/bin.mjs" publish "$P/staging/plugin-$(printf %05d $i)-0.tgz" --registry "$P")
  # The server makes the compressed variants after it answers: untimed, it finishes before reprepro runs.
  quiet
  [ $k -ge 2 ] && { r="$r $rt"; p="$p $pt"; }
done
handed=$(grep -c '^\[publish\] accepted' "$W/serve.log" || true)
[ "$handed" -eq $((ROUNDS + 2)) ] || { echo "the server published $handed of $((ROUNDS + 2)) bundles" >&2; exit 1; }
rm_=$(echo $r | med); pm=$(echo $p | med)
echo "N=$N reprepro +1 [$r ] median $rm_ ms; plugindex publish beside serve [$p ] median $pm ms; ratio $(echo "scale=2; $pm/$rm_" | bc)x"
