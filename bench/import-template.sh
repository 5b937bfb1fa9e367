#!/usr/bin/env bash
# import-template.sh WORK N: prints WORK/import-template-N, a registry whose staging/ holds N new plugins'
# bundles (one version each), seeded the first time it is asked for (about 25 s at 10,000): what the
# import benchmarks copy for each round (ab-import.sh).
set -euo pipefail
W=${1:?usage: import-template.sh WORK N}; N=${2:?usage: import-template.sh WORK N}
CO=$(cd "$(dirname "$0")/.." && pwd); SBS=${SBS:-$CO/../shared/bench/side-by-side}
T=$W/import-template-$N
if [ ! -d "$T" ]; then
  node "$CO/cli/bin.mjs" init --registry "$T.tmp" >/dev/null
  node --import "$CO/node_modules/tsx/dist/esm/index.mjs" "$SBS/seed.mts" "$CO" "$T.tmp" "$N" 1 1 >/dev/null
  mv "$T.tmp" "$T"
fi
echo "$T"
