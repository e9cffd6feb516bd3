#!/usr/bin/env bash
# The suites run on the remote GPU, many runs at once (see run.sh). ML-1M starts first: its
# runs are the long ones.
cd "$(dirname "$0")/../.."
start=$(date +%s)
sweep() {
    local name=$1; shift
    python3 -m recxplore sweep "configs/paper/$name.yaml" train.device=cuda "$@" --no-progress \
        --json > "/tmp/sweep-$name.json" 2>> "$OUT/sweeps.log"
    local rc=$?
    echo "$(( $(date +%s) - start )) s: $name finished (exit $rc)"
}
if [ -n "${PLAN:-}" ]; then  # e.g. PLAN="adapter:10 final:4": these sweeps at once
    for entry in $PLAN; do sweep "${entry%%:*}" --jobs "${entry##*:}" & done
    wait
    exit
fi
sweep final-ml-1m --jobs 8 &
(
    sweep adapter --jobs 5
    python3 scripts/remote/top_cells.py ~/.cache/recxplore/sweeps/adapter/sweep.json 3 \
        configs/paper/adapter-ml-1m.yaml --set data.name=ml-1m --skip id moe/replace/nopca \
        && cp configs/paper/adapter-ml-1m.yaml "$OUT/"
    sweep adapter-ml-1m --jobs 5 &
    sweep backbone --jobs 5
    sweep final --jobs 5
    sweep pooling --jobs 5
    sweep extractor --jobs 5
    sweep fusion --jobs 5
    wait
) &
wait
