"""The facts the gateway takes from the engine's Python libraries (earshot_worker/facts.py, written
to .venv/earshot-facts.json by the installer, read by src/engine/engine-facts.ts)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from huggingface_hub import scan_cache_dir, try_to_load_from_cache

from earshot_worker.facts import collect

REPO_ROOT = Path(__file__).resolve().parents[2]
FACTS_FILE = Path(sys.prefix) / "earshot-facts.json"


def test_the_installed_facts_are_what_the_installed_libraries_say() -> None:
    if not FACTS_FILE.is_file():
        pytest.fail(f"{FACTS_FILE} is missing: run npm install")
    assert json.loads(FACTS_FILE.read_text(encoding="utf-8")) == collect(), (
        f"{FACTS_FILE} is stale (the Python libraries changed since it was written): run npm install"
    )


def _gateway_hub_repos(hub_cache: Path) -> set[str]:
    """The hub repositories the gateway's scanner (src/engine/models.ts) finds in a cache."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH")
    script = (
        "const { ModelRegistry } = await import(process.argv[1]);"
        "const dir = process.argv[2];"
        "const registry = new ModelRegistry({ defaultModel: '', aliases: new Map(), modelsDir: dir + '/no-models',"
        " bundled: [], bundledDir: dir + '/no-bundled', hubCacheDir: dir, hubDownload: false });"
        "const listed = await registry.list();"
        "console.log(JSON.stringify(listed.filter((l) => l.model.source.kind === 'hub').map((l) => l.model.source.repo)));"
    )
    models_ts = (REPO_ROOT / "src" / "engine" / "models.ts").as_uri()
    result = subprocess.run(
        [node, "--import", "tsx", "--input-type=module", "-e", script, models_ts, str(hub_cache)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


def test_the_gateway_reads_a_hub_cache_as_huggingface_hub_does(tmp_path: Path) -> None:
    layout = collect()["hubCache"]

    def repo(owner: str, name: str, kind: str = "models") -> Path:
        prefix = layout["repoFolderPrefix"] if kind == "models" else f"{kind}{layout['separator']}"
        folder = tmp_path / f"{prefix}{owner}{layout['separator']}{name}"
        (folder / layout["refsDir"]).mkdir(parents=True)
        return folder

    def snapshot(folder: Path, revision: str, ref: bool = True) -> None:
        (folder / layout["snapshotsDir"] / revision).mkdir(parents=True)
        (folder / layout["snapshotsDir"] / revision / "model.bin").write_bytes(b"\0")
        (folder / layout["snapshotsDir"] / revision / "config.json").write_text("{}")
        if ref:
            (folder / layout["refsDir"] / layout["defaultRevision"]).write_text(revision)

    # Loadable offline: refs/main names a snapshot holding model.bin.
    snapshot(repo("Systran", "faster-whisper-tiny"), "a1b2c3")
    snapshot(repo("someone", "whisper-ct2.v1"), "d4e5f6")
    # refs/main names a snapshot that is not there.
    (repo("broken", "ref") / layout["refsDir"] / layout["defaultRevision"]).write_text("0000")
    # A snapshot, but no refs/main.
    snapshot(repo("no", "main"), "f00d", ref=False)
    # Not a model repository.
    snapshot(repo("some", "data", kind="datasets"), "beef")

    library = {
        info.repo_id
        for info in scan_cache_dir(tmp_path).repos
        if info.repo_type == "model"
        and isinstance(try_to_load_from_cache(info.repo_id, "model.bin", cache_dir=tmp_path), str)
    }
    assert library == {"Systran/faster-whisper-tiny", "someone/whisper-ct2.v1"}
    assert _gateway_hub_repos(tmp_path) == library
