#!/usr/bin/env bash
# Back on this machine: put the runs a remote machine returned (runs.tgz from run.sh) under
# their own home, HOME_GPU (default ~/.cache/recxplore-gpu), which shares this machine's cache,
# then rewrite each suite's sweep.json there from the cache (the remote paths are meaningless
# here; a run that did not finish remotely is recorded as failed, not retrained).
#   scripts/remote/unpack.sh FOLDER SUITE...
# To finish such runs here from their checkpoints, on the CPU:
#   recxplore sweep configs/paper/SUITE.yaml train.device=cuda paths.home=HOME_GPU --finish-on cpu
set -euo pipefail
from=$1; shift
home=${HOME_GPU:-$HOME/.cache/recxplore-gpu}
main=${RECXPLORE_HOME:-$HOME/.cache/recxplore}
mkdir -p "$home"
for link in cache models; do [ -e "$home/$link" ] || ln -s "$main/$link" "$home/$link"; done
tar xzf "$from/runs.tgz" -C "$home" --exclude='sweeps/*'
[ -f "$from/id-models.tgz" ] && tar xzf "$from/id-models.tgz" -C "$home"  # older calls' archive
cd "$(dirname "$0")/../.."
python3 scripts/remote/rekey.py "$home"
for suite in "$@"; do
    recxplore sweep "configs/paper/$suite.yaml" train.device=cuda "paths.home=$home" \
        --no-progress -q --json > /dev/null || true
    python3 -c "import json, sys; r = json.load(open(sys.argv[1])); \
print(sys.argv[2], sum(x['status'] == 'ok' for x in r['runs']), 'ok of', len(r['runs']))" \
        "$home/sweeps/$suite/sweep.json" "$suite"
done
