"""What the gateway must know that belongs to the installed Python libraries, taken from them.

`python -m earshot_worker.facts OUT` (run by the installer, scripts/setup-python.ts) writes OUT
(.venv/earshot-facts.json), which the gateway reads at start (src/engine/engine-facts.ts): so an
upgrade of faster-whisper cannot leave the gateway with a stale copy.

  sizeNames       faster-whisper's model size names and the hub repositories they stand for
  languageCodes   the language codes Whisper's tokenizer accepts, in faster-whisper's order
  hubCache        how huggingface_hub lays out its cache: the folder of a repository, the ref the
                  gateway reads and where snapshots are (worker/tests/test_facts.py checks the
                  gateway's scanner against huggingface_hub on a cache built that way)
  sileroVadModel  the Silero VAD model faster-whisper ships (its VAD filter's own file), which the
                  gateway runs for the turn detection of live transcription (src/realtime/vad.ts)
"""

from __future__ import annotations

import json
import sys
from importlib.metadata import version
from pathlib import Path
from typing import TypedDict

from faster_whisper.tokenizer import _LANGUAGE_CODES
from faster_whisper.utils import _MODELS, get_assets_path
from huggingface_hub import constants
from huggingface_hub.file_download import repo_folder_name


class HubCacheLayout(TypedDict):
    # A repository's folder name is this prefix, then its id with "/" replaced by `separator`.
    repoFolderPrefix: str
    separator: str
    # The ref whose snapshot loads offline, a file under refs/ holding a commit hash.
    defaultRevision: str
    refsDir: str
    snapshotsDir: str


class EngineFacts(TypedDict):
    fasterWhisper: str
    huggingfaceHub: str
    sizeNames: dict[str, str]
    languageCodes: list[str]
    hubCache: HubCacheLayout
    sileroVadModel: str


# The file faster_whisper.vad.get_vad_model loads: Silero VAD v6 as faster-whisper exports it (input
# [N, 576] = 64 samples of context + 512 new, state h and c), the shape src/realtime/vad.ts feeds.
SILERO_VAD_MODEL = "silero_vad_v6.onnx"


def silero_vad_model() -> str:
    # Resolved: the same file reached through a symlinked .venv (a git worktree's) is the same fact.
    path = Path(get_assets_path()).resolve() / SILERO_VAD_MODEL
    if not path.is_file():
        raise RuntimeError(
            f"faster-whisper no longer ships {SILERO_VAD_MODEL} in {path.parent}: "
            "src/realtime/vad.ts needs that model (or an update to the one it ships)"
        )
    return str(path)


def hub_cache_layout() -> HubCacheLayout:
    # Derived from the library's own function rather than restated: "models--OWNER--NAME".
    folder = repo_folder_name(repo_id="OWNER/NAME", repo_type="model")
    prefix, _, rest = folder.partition("OWNER")
    separator = rest.partition("NAME")[0]
    if folder != f"{prefix}OWNER{separator}NAME":
        raise RuntimeError(f"huggingface_hub names a repository's cache folder in a new way: {folder!r}")
    return {
        "repoFolderPrefix": prefix,
        "separator": separator,
        "defaultRevision": constants.DEFAULT_REVISION,
        "refsDir": "refs",
        "snapshotsDir": "snapshots",
    }


def collect() -> EngineFacts:
    return {
        "fasterWhisper": version("faster-whisper"),
        "huggingfaceHub": version("huggingface_hub"),
        "sizeNames": dict(_MODELS),
        "languageCodes": list(_LANGUAGE_CODES),
        "hubCache": hub_cache_layout(),
        "sileroVadModel": silero_vad_model(),
    }


def main(argv: list[str]) -> int:
    text = json.dumps(collect(), indent=2) + "\n"
    if not argv:
        sys.stdout.write(text)
        return 0
    out = Path(argv[0])
    out.write_text(text, encoding="utf-8")
    print(f"earshot: engine facts (faster-whisper {version('faster-whisper')}) written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
