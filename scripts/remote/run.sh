#!/usr/bin/env bash
# On a remote GPU machine with torch but no recxplore cache, data or model wheels: unpack what
# pack.py packed into .remote/, run suites.sh for at most BUDGET seconds, and write the finished
# runs (without model files, except the ID-only ones that align cells reuse) to $OUT/runs.tgz,
# and the unfinished ones whole in partial.tgz.part-aa, -ab, ... (15 MiB each, so that a
# transfer with a size cap carries them): a later call with those in .remote/ resumes them.
set -u
BUDGET=${BUDGET:-460}
cd "$(dirname "$0")/../.."
export PYTHONUNBUFFERED=1
mkdir -p ~/.cache/recxplore && tar xJf .remote/home.tar.xz -C ~/.cache/recxplore || exit 2
if [ -f .remote/runs.tgz ]; then  # runs made earlier (pack.py --runs, or an earlier call)
    tar xzf .remote/runs.tgz -C ~/.cache/recxplore --exclude='sweeps/*' || exit 2
fi
if compgen -G '.remote/partial.tgz.part-*' > /dev/null; then
    cat .remote/partial.tgz.part-* | tar xz -C ~/.cache/recxplore || exit 2
fi
site=$(python3 scripts/remote/stand_ins.py .remote/packages.json) || exit 2
export PYTHONPATH="$PWD/src:$site"
python3 - <<'PY' || exit 3
import json, sys
from recxplore.cache import home_dir
from recxplore.config import load
from recxplore.data.prepare import prepare
for name, key in json.load(open(".remote/packages.json"))["dataset_keys"].items():
    ds, art = prepare(load(None, [f"data.name={name}"]).data, home_dir())
    print(name, art.key, ds.n_items, "items")
    if art.key != key:
        sys.exit(f"{name}: dataset key {art.key}, packed {key}: the stand-ins do not match")
PY
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
# MPS lets the runs' many small kernels share the GPU at once rather than time-slice it: on an
# H200, 15 ML-1M runs took 4-5 s an epoch with it; without it, 4 runs took 5-6 s and 20 runs 13.5 s.
# MPS=0 leaves it off.
if [ "${MPS:-1}" = 1 ] && command -v nvidia-cuda-mps-control > /dev/null; then
    export CUDA_MPS_PIPE_DIRECTORY=/tmp/mps CUDA_MPS_LOG_DIRECTORY=/tmp/mps-log
    mkdir -p /tmp/mps /tmp/mps-log
    timeout 10 nvidia-cuda-mps-control -d  # fails harmlessly when one runs already
    if timeout 60 python3 -c "import torch; torch.ones(1, device='cuda')"; then
        echo "MPS on"
    else
        echo quit | timeout 10 nvidia-cuda-mps-control
        unset CUDA_MPS_PIPE_DIRECTORY CUDA_MPS_LOG_DIRECTORY
        echo "MPS off"
    fi
fi
if [ "${SMOKE:-1}" = 1 ]; then  # one short run first: a broken GPU set-up fails in seconds
    timeout 120 python3 -m recxplore train --config configs/paper/base.yaml adapt.fusion=id \
        train.epochs=2 train.device=cuda paths.runs_dir=/tmp/smoke --no-progress --json \
        > "$OUT/smoke.json" || { echo "smoke run failed"; exit 4; }
    python3 -c "import json; print('smoke', json.load(open('$OUT/smoke.json'))['timing'])"
fi
timeout "$BUDGET" bash scripts/remote/suites.sh
sleep 3  # the killed runs' last checkpoint writes are atomic renames; let them land
cd ~/.cache/recxplore
find runs -mindepth 1 -maxdepth 1 -type d ! -name '*.partial' ! -name '.*' | sort > /tmp/done
echo "$(wc -l < /tmp/done) finished runs"
# the device returns at most 8 files: one archive for the finished runs, with model files only
# for the ID-only runs
find $(cat /tmp/done) sweeps -type f ! -name checkpoint.pt \( ! -name best.pt -o -path '*-id-*' \) \
    | tar czf "$OUT/runs.tgz" -T -
# What comes back may be capped in size (64 MiB in all, whole files dropped past it, runs.tgz too):
# the unfinished runs go back only as far as they fit beside it, the rest are named.
room=$(( 60 * 2**20 - $(stat -c %s "$OUT/runs.tgz") ))
: > /tmp/partial
for run in $(find runs -mindepth 1 -maxdepth 1 -type d -name '*.partial' | sort); do
    size=$(tar cz "$run" | wc -c)
    if [ "$size" -le "$room" ]; then
        echo "$run" >> /tmp/partial; room=$(( room - size ))
    else
        echo "not returned (no room; finish it on this machine or rerun it): $run"
    fi
done
echo "$(wc -l < /tmp/partial) unfinished runs returned"
[ -s /tmp/partial ] && tar cz -T /tmp/partial | split -b 15M - "$OUT/partial.tgz.part-"
ls -la "$OUT"
