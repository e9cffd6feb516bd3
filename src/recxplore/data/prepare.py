"""``prepare``: raw files -> processed Dataset, cached by source files and settings; then the
regime (thinning, cold-start split; ``recxplore.data.regime``), cached by the prepared dataset's
key and the regime settings.

The returned dataset's ``catalogue_key`` is the prepared dataset's key: what depends on the items
alone (their texts, so the LLM features) is keyed by it and shared by every regime."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from recxplore.cache import Artifact, stage_key
from recxplore.config import DataConfig, key_settings
from recxplore.data.dataset import Dataset
from recxplore.data.preprocess import preprocess
from recxplore.data.regime import apply_regime, catalogue, is_regime
from recxplore.data.sources import load_raw, locate
from recxplore.errors import ArtifactError

log = logging.getLogger(__name__)

DATASET_FILES = ("data.npz", "users.json", "items.jsonl")
DATA_VERSION = 3  # bump when preprocessing changes meaning, to invalidate old caches


def raw_dir(cfg: DataConfig, home: Path) -> Path:
    return Path(cfg.data_dir).expanduser() if cfg.data_dir else home / "raw"


def _source_signature(files: list[Path]) -> list[list]:
    return [[str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns] for p in files]


def prepare(cfg: DataConfig, home: Path, fresh: bool = False) -> tuple[Dataset, Artifact]:
    """Load the processed dataset (in its regime) from the cache, or build and publish it."""
    ds, art = _prepare_catalogue(catalogue(cfg), home, fresh)
    ds.catalogue_key = art.key
    if not is_regime(cfg):
        return ds, art
    settings = key_settings(cfg)
    regime = Artifact(
        home / "cache", "dataset", stage_key("regime", {"settings": settings}, (art.key,))
    )

    def build() -> Dataset:
        out = apply_regime(ds, cfg)
        _publish(regime, out, {"dataset": cfg.name, "settings": settings, "from": art.key})
        return out

    out = regime.reuse_or_build(lambda: _cached(regime, cfg.name), build, fresh)
    out.catalogue_key = art.key
    return out, regime


def _publish(art: Artifact, ds: Dataset, manifest: dict) -> None:
    folder = art.begin(fresh=True)
    try:
        ds.save(folder)
    except OSError as err:  # a partial dataset is never resumed: do not leave it taking space
        shutil.rmtree(folder, ignore_errors=True)
        raise ArtifactError(
            f"{folder}: the prepared dataset could not be written ({err.strerror or err}); "
            f"free some space (or set paths.home to another disk) and rerun"
        ) from None
    art.publish({**manifest, "stats": ds.stats()}, files=DATASET_FILES)


def _prepare_catalogue(cfg: DataConfig, home: Path, fresh: bool) -> tuple[Dataset, Artifact]:
    data_dir = raw_dir(cfg, home)
    settings = key_settings(cfg)  # where the raw files are is not; their signature is
    # The key needs the source files; finding them is cheap, reading them is not.
    files = locate(cfg.name, data_dir, cfg.source_file)
    if not files:
        load_raw(cfg.name, data_dir, cfg.source_file)  # raises the loader's "not found" message
    key = stage_key(
        "dataset",
        {"settings": settings, "version": DATA_VERSION, "files": _source_signature(files)},
    )
    art = Artifact(home / "cache", "dataset", key)

    def build() -> Dataset:
        raw = load_raw(cfg.name, data_dir, cfg.source_file)
        log.info("preprocessing %s (%d raw interactions)", cfg.name, len(raw.users))
        ds = preprocess(raw, cfg, cfg.name)
        manifest = {"dataset": cfg.name, "settings": settings}
        _publish(art, ds, {**manifest, "source_files": [str(p) for p in raw.files]})
        return ds

    # two processes on an empty cache: one builds, the other waits and reads
    return art.reuse_or_build(lambda: _cached(art, cfg.name), build, fresh), art


def _cached(art: Artifact, name: str) -> Dataset:
    for file in DATASET_FILES:
        art.file(file)  # verified against the manifest's checksum
    return Dataset.load(art.path, name)
