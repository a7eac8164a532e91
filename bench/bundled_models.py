"""Speed of each bundled model on this machine, straight through faster-whisper (no server).

Run: node --import tsx scripts/run-python.ts bench/bundled_models.py
Prints, for each bundled model and each recording, the wall time of a full transcription (after one
warm-up decode) and the real-time factor (audio seconds per second of compute).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from faster_whisper import WhisperModel

from earshot_worker.bundled import load_catalogue, models_root

AUDIO = Path(__file__).resolve().parents[1] / "test" / "audio"
RECORDINGS = ["jfk.flac", "multilingual.mp3"]
THREADS = os.cpu_count() or 1


def main() -> None:
    print(f"cores={THREADS} compute_type=int8 beam_size=5 (faster-whisper defaults)")
    for entry in load_catalogue():
        path = models_root() / entry["name"]
        size_mb = sum(f.stat().st_size for f in path.iterdir()) / 1e6
        started = time.monotonic()
        model = WhisperModel(str(path), device="cpu", compute_type="int8", cpu_threads=THREADS)
        load = time.monotonic() - started
        segments, _ = model.transcribe(str(AUDIO / "jfk.flac"))
        list(segments)
        for recording in RECORDINGS:
            started = time.monotonic()
            segments, info = model.transcribe(str(AUDIO / recording))
            text = "".join(segment.text for segment in segments).strip()
            elapsed = time.monotonic() - started
            print(
                f"{entry['name']:8} {size_mb:6.0f} MB load {load:4.1f} s  {recording:17} "
                f"{info.duration:5.1f} s audio in {elapsed:5.2f} s = {info.duration / elapsed:5.1f}x real time"
                f"  [{info.language}] {text[:70]}"
            )


if __name__ == "__main__":
    main()
