"""Content-addressed artifacts published atomically.

An artifact is a folder ``<root>/<stage>/<key>`` holding ``manifest.json``. It is built in
``<key>.partial`` (where long stages keep their checkpoints, so a rerun resumes) and renamed into
place only when complete, so a crash never leaves something that looks finished.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any, Optional, TypeVar

from recxplore.config import Section, key_settings
from recxplore.errors import ArtifactError

fcntl: Any
try:
    import fcntl
except ImportError:  # Windows: no advisory locks; concurrent sweeps then need disjoint cells
    fcntl = None

MANIFEST = "manifest.json"
R = TypeVar("R")


def home_dir(configured: Optional[str] = None) -> Path:
    """Root of all caches: the config value, else $RECXPLORE_HOME, else ~/.cache/recxplore."""
    if configured:
        return Path(configured).expanduser()
    env = os.environ.get("RECXPLORE_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "recxplore"


def stage_key(stage: str, config: Any, inputs: tuple[str, ...] = ()) -> str:
    """The cache key of every stage's output: a hash of the stage name, the settings that can
    change the output and the keys of its inputs. A config section (alone, or as a value of a
    mapping) counts by its ``key_settings``: what is marked ``key=False`` never moves a key."""
    if isinstance(config, Section):
        config = key_settings(config)
    elif isinstance(config, dict):
        config = {k: key_settings(v) if isinstance(v, Section) else v for k, v in config.items()}
    blob = json.dumps(
        {"stage": stage, "config": config, "inputs": list(inputs)},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


@contextmanager
def atomic_write(path: Path, mode: str = "w", **kwargs: Any) -> Iterator[Any]:
    """Write ``path`` through a temporary file renamed into place when the block ends: a crash
    leaves the old file, never half a new one; a failed write (a full disk) removes the
    temporary file and names ``path`` in its error."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise OSError(err.errno, err.strerror, str(path)) from None
    os.replace(tmp, path)


def write_json_atomic(path: Path, obj: Any) -> None:
    with atomic_write(path, encoding="utf-8") as f:
        json.dump(obj, f, indent=2, sort_keys=False, default=str)
        f.write("\n")


def package_versions(names: tuple[str, ...] = ("recxplore", "torch", "numpy")) -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


# (path, size, mtime_ns) of files whose checksum matched in this process: each cached file is
# hashed once per process, and again only if it changes.
_VERIFIED: set[tuple[str, int, int]] = set()


def verify_file(path: Path, sha256: str, rebuild: str) -> Path:
    """``path`` if its SHA-256 is ``sha256``; else an ``ArtifactError`` saying what to do."""
    try:
        stat = path.stat()
    except OSError:
        raise ArtifactError(f"{path}: missing or altered (not found); {rebuild}") from None
    seen = (str(path), stat.st_size, stat.st_mtime_ns)
    if seen not in _VERIFIED:
        if sha256_file(path) != sha256:
            raise ArtifactError(f"{path}: missing or altered (checksum mismatch); {rebuild}")
        _VERIFIED.add(seen)
    return path


def read_arrays(art: Artifact, name: str) -> dict[str, Any]:
    """The arrays of a safetensors file of a finished artifact, verified; an unreadable file is
    an ``ArtifactError`` naming it, never a parser's traceback."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    path = art.file(name)
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise ArtifactError(
            f"{path}: unreadable ({err}); delete {art.path} and rerun to rebuild it"
        ) from None


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on ``path`` (created if needed), held while the block runs.
    POSIX locks: across machines sharing a home they hold only where the filesystem honours
    them (local disks, NFSv4, Lustre with flock; not every network filesystem does)."""
    if fcntl is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class Artifact:
    """One cached stage output. Use ``done`` to reuse, else fill ``partial`` and ``publish``."""

    def __init__(self, root: Path, stage: str, key: str):
        self.stage = stage
        self.key = key
        self.path = Path(root) / stage / key
        self.partial = self.path.with_name(key + ".partial")

    @property
    def done(self) -> bool:
        return (self.path / MANIFEST).is_file()

    def manifest(self) -> dict[str, Any]:
        try:
            return json.loads((self.path / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise ArtifactError(
                f"{self.path / MANIFEST}: unreadable manifest ({err}); delete "
                f"{self.path} and rerun to rebuild it"
            ) from None

    def file(self, name: str) -> Path:
        """A file of this finished artifact, verified against the checksum its manifest holds
        (artifacts published before checksums were recorded are read unverified)."""
        expected = self.manifest().get("files", {}).get(name)
        rebuild = f"delete {self.path} and rerun the same command to rebuild it"
        if expected is None:
            if not (self.path / name).is_file():
                raise ArtifactError(f"{self.path / name}: missing from its artifact; {rebuild}")
            return self.path / name
        return verify_file(self.path / name, expected, rebuild)

    def reuse_or_build(
        self, read: Callable[[], R], build: Callable[[], R], fresh: bool = False
    ) -> R:
        """``read()`` this artifact if it is finished (no lock: a read-only home serves it),
        else ``build()`` it under its lock, unless another process finished it meanwhile."""
        if self.done and not fresh:
            return read()
        with self.lock():
            if self.done and not fresh:
                return read()
            return build()

    def lock(self) -> contextlib.AbstractContextManager[None]:
        """Hold an exclusive lock on this artifact (blocking), so that two processes sharing a
        cache, e.g. parallel sweeps, never build the same artifact at once: the second waits,
        then finds it done."""
        return file_lock(self.path.parent / ".locks" / self.path.name)

    def begin(self, fresh: bool = False) -> Path:
        """Create (or reuse, for resuming) the partial folder and return it. ``fresh`` discards
        both an unfinished partial folder and a finished artifact, which is then rebuilt."""
        if fresh:
            shutil.rmtree(self.partial, ignore_errors=True)
            shutil.rmtree(self.path, ignore_errors=True)
        self.partial.mkdir(parents=True, exist_ok=True)
        return self.partial

    def publish(self, manifest: dict[str, Any], files: tuple[str, ...] = ()) -> Path:
        """Write the manifest (with the SHA-256 of each of ``files``, which readers verify)
        into the partial folder, then rename it into place."""
        full = {
            "stage": self.stage,
            "key": self.key,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "versions": package_versions(),
            **manifest,
        }
        if files:
            full["files"] = {name: sha256_file(self.partial / name) for name in files}
        write_json_atomic(self.partial / MANIFEST, full)
        if self.path.exists():  # another process finished the same artifact first
            shutil.rmtree(self.partial)
        else:
            os.replace(self.partial, self.path)
        return self.path
