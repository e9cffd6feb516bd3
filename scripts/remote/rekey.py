"""Give run folders their current names: each finished run under HOME/runs is renamed to the
name its config.yaml gives now (a run trained with an older key scheme, e.g. on a GPU before
the device type entered run keys, is otherwise never found). ID-only runs go first, since the
align runs' keys hold theirs. An old-named folder whose current name is already a finished run
(the same run, trained again under its current key) is removed. Runs made by an earlier version
of their backbone are left alone: they are runs of other code, not the current one's.

    python scripts/remote/rekey.py ~/.cache/recxplore-gpu
"""

import json
import shutil
import sys
from pathlib import Path

from recxplore import config
from recxplore.cache import MANIFEST, write_json_atomic
from recxplore.pipeline import run_folder
from recxplore.registry import BACKBONES

home = Path(sys.argv[1]).expanduser()
done = [p.parent for p in (home / "runs").glob(f"*/{MANIFEST}")]
renamed = dropped = older = 0
for folder in sorted(done, key=lambda p: ("-id-" not in p.name, p.name)):
    cfg = config.load(folder / "config.yaml", [f"paths.home={home}", "paths.runs_dir=null"])
    made_by = json.loads((folder / MANIFEST).read_text()).get("backbone_version", 1)
    if made_by != BACKBONES.entry(cfg.model.backbone).version:
        older += 1  # made by an earlier backbone: a run of other code, kept under its own name
        continue
    art = run_folder(cfg, progress=False)
    if art.path == folder:
        continue
    if (art.path / MANIFEST).is_file():
        shutil.rmtree(folder)
        dropped += 1
        continue
    if art.path.exists():
        sys.exit(f"{folder}: its current name {art.path.name} is taken by an unfinished run")
    folder.rename(art.path)  # results.json keeps its old run_dir: readers use where it is now
    manifest = json.loads((art.path / MANIFEST).read_text())
    manifest["key"] = art.path.name
    write_json_atomic(art.path / MANIFEST, manifest)
    renamed += 1
print(
    f"{renamed} of {len(done)} run folders renamed, {dropped} duplicates removed, {older} made by "
    f"an earlier version of their backbone left as they are"
)
