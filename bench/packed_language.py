"""Language detection for short clips: how accurate and how costly on shorter or shared encoder windows.

Run: node --import tsx scripts/run-python.ts bench/packed_language.py [--per-language N] [--pack N] [--json PATH]

Why: packing short clips into one 30 s window (issue 14) needs their language known; detecting it the
usual way costs one whole-window encoder pass per clip, about what the packed decode saves.

Clips (16 kHz mono, 2-6 s):
  - English, real: the distinct clips of bench/short_corpus.py (test/audio and LibriVox, cut at pauses);
  - German, real: the German half of multilingual.mp3 (the MIT licence read in German), cut the same way;
  - synthetic: espeak-ng (Debian package `espeak-ng`) speaking a few short sentences in each of
    LANGUAGES below (English and German too, to compare synthetic with real speech). A synthetic voice is
    not a person: these say how detection treats each language, not how it does on real recordings.

Per clip, with the bundled multilingual `base` (int8, one CTranslate2 thread; the mel features are
computed once and not counted):
  - full:   faster-whisper's own detection for a short clip: the features padded to 30 s (3,000 frames),
            one encoder pass, CTranslate2's detect_language on its output;
  - fitted: the same on the worker's fitted window (earshot_worker.transcribe.fitted_window: the clip
            plus 2 s of padding, whole seconds, at least 5 s);
  - tight:  the clip's own frames rounded up to a whole second, no padding;
  - packed: the clips shuffled (every language mixed: the worst case) into windows of at most `--pack`
            clips with 0.6 s of silence between them and at most 30 s, each window encoded once
            (fitted to its content), and each clip's language read by detect_language from its own slice
            of that encoder output (frames start/2 .. end/2): no encoder pass of its own. The window's own
            detection (the whole output) is printed too;
  - grouped: as packed, but a window holds only clips whose fitted guess is the same language (the
            design proposed: detect on a fitted window, group by that guess, pack, verify).
CPU per detection is the process's CPU time around encode + detect_language (for packed: the window's
encode shared by its clips, plus the clip's own detect). Agreement with full and with the true language,
overall and per language, and how accurate the guesses are above a probability threshold.
Not a test.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ctranslate2
import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.audio import decode_audio

import benchlib as b
import short_corpus
from earshot_worker.transcribe import FRAMES_PER_SECOND, fitted_window

FULL_FRAMES = 3000
PACK_GAP = 0.6
PACK_SECONDS = 30.0
SEED = 14

# Short sentences for espeak-ng, four per language, written for this benchmark.
LANGUAGES: dict[str, list[str]] = {
    "en": ["The weather was cold and the streets were empty.", "She opened the window and looked at the garden.",
           "We will meet at the station tomorrow morning.", "He forgot his keys on the kitchen table."],
    "de": ["Das Wetter war kalt und die Straßen waren leer.", "Sie öffnete das Fenster und sah in den Garten.",
           "Wir treffen uns morgen früh am Bahnhof.", "Er hat seine Schlüssel auf dem Küchentisch vergessen."],
    "fr": ["Le temps était froid et les rues étaient vides.", "Elle a ouvert la fenêtre et regardé le jardin.",
           "Nous nous retrouverons à la gare demain matin.", "Il a oublié ses clés sur la table de la cuisine."],
    "es": ["El tiempo era frío y las calles estaban vacías.", "Ella abrió la ventana y miró el jardín.",
           "Nos veremos en la estación mañana por la mañana.", "Olvidó sus llaves en la mesa de la cocina."],
    "it": ["Il tempo era freddo e le strade erano vuote.", "Lei aprì la finestra e guardò il giardino.",
           "Ci vediamo alla stazione domani mattina.", "Ha dimenticato le chiavi sul tavolo della cucina."],
    "pt": ["O tempo estava frio e as ruas estavam vazias.", "Ela abriu a janela e olhou para o jardim.",
           "Vamos nos encontrar na estação amanhã de manhã.", "Ele esqueceu as chaves na mesa da cozinha."],
    "nl": ["Het weer was koud en de straten waren leeg.", "Ze opende het raam en keek naar de tuin.",
           "We zien elkaar morgenochtend op het station.", "Hij vergat zijn sleutels op de keukentafel."],
    "pl": ["Pogoda była zimna, a ulice były puste.", "Otworzyła okno i spojrzała na ogród.",
           "Spotkamy się jutro rano na dworcu.", "Zapomniał kluczy na stole w kuchni."],
    "ru": ["Погода была холодной, и улицы были пустыми.", "Она открыла окно и посмотрела на сад.",
           "Мы встретимся на вокзале завтра утром.", "Он забыл ключи на кухонном столе."],
    "sv": ["Vädret var kallt och gatorna var tomma.", "Hon öppnade fönstret och tittade på trädgården.",
           "Vi ses på stationen i morgon bitti.", "Han glömde nycklarna på köksbordet."],
}


@dataclass
class Sample:
    name: str
    language: str
    kind: str  # "real" or "synthetic"
    audio: np.ndarray
    results: dict[str, tuple[str, float, float]] = field(default_factory=dict)  # method -> (guess, prob, cpu s)

    @property
    def seconds(self) -> float:
        return self.audio.size / b.RATE


def synthetic(directory: Path) -> list[Sample]:
    found = []
    for language, sentences in LANGUAGES.items():
        for i, sentence in enumerate(sentences):
            path = directory / f"{language}{i}.wav"
            subprocess.run(["espeak-ng", "-v", language, "-w", str(path), sentence], check=True, capture_output=True)
            audio = decode_audio(str(path), sampling_rate=b.RATE).astype(np.float32)
            found.append(Sample(f"tts_{language}{i}", language, "synthetic", audio))
    return found


def real(per_language: int) -> list[Sample]:
    english = {(c.recording, c.start, c.end): c for c in short_corpus.english_clips()}.values()
    german = short_corpus.german_clips()
    found = []
    for clips in (list(english), german):
        chosen = clips if per_language <= 0 else random.Random(SEED).sample(clips, min(per_language, len(clips)))
        for clip in chosen:
            audio = decode_audio(str(clip.path), sampling_rate=b.RATE).astype(np.float32)
            found.append(Sample(clip.name, clip.language, "real", audio))
    return found


class Detector:
    def __init__(self) -> None:
        self.model = WhisperModel(str(b.MODELS / "base"), device="cpu", compute_type="int8", cpu_threads=1)

    def mel(self, audio: np.ndarray) -> np.ndarray:
        """(80, frames) features of the audio alone, as faster-whisper computes them."""
        return self.model.feature_extractor(audio)[:, : int(round(audio.size / b.RATE * FRAMES_PER_SECOND))]

    def encode(self, features: np.ndarray) -> Any:
        return self.model.model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(features[None], dtype=np.float32)))

    def detect(self, encoded: Any) -> tuple[str, float]:
        token, prob = self.model.model.detect_language(encoded)[0][0]
        return token[2:-2], float(prob)

    def on_window(self, mel: np.ndarray, frames: int) -> tuple[str, float, float]:
        window = np.zeros((mel.shape[0], frames), np.float32)
        window[:, : min(frames, mel.shape[1])] = mel[:, :frames]
        started = time.process_time()
        guess, prob = self.detect(self.encode(window))
        return guess, prob, time.process_time() - started


def per_clip(detector: Detector, samples: list[Sample]) -> None:
    for sample in samples:
        mel = detector.mel(sample.audio)
        fitted = fitted_window(sample.seconds)
        assert fitted is not None
        tight = max(FRAMES_PER_SECOND, int(np.ceil(mel.shape[1] / FRAMES_PER_SECOND)) * FRAMES_PER_SECOND)
        for method, frames in (("full", FULL_FRAMES), ("fitted", fitted.frames), ("tight", tight)):
            sample.results[method] = detector.on_window(mel, frames)


def packed(detector: Detector, samples: list[Sample], per_pack: int, method: str, group_by: str | None) -> list[dict[str, Any]]:
    """Packs the clips (shuffled; with `group_by`, only clips that method guessed alike share a window) and
    records `method`: each clip's detection from its slice of its window's encoder output."""
    order = list(samples)
    random.Random(SEED).shuffle(order)
    if group_by:
        order.sort(key=lambda s: s.results[group_by][0])  # stable: shuffled within each guess
    gap = np.zeros(int(PACK_GAP * b.RATE), np.float32)
    windows: list[list[Sample]] = [[]]
    for sample in order:
        current = windows[-1]
        length = sum(s.seconds + PACK_GAP for s in current) + sample.seconds
        other_group = bool(group_by and current and current[-1].results[group_by][0] != sample.results[group_by][0])
        if current and (len(current) >= per_pack or length > PACK_SECONDS - 2 or other_group):
            windows.append([])
        windows[-1].append(sample)
    report = []
    for window in windows:
        parts, spans, position = [], [], 0.0
        for sample in window:
            spans.append((position, position + sample.seconds))
            parts += [sample.audio, gap]
            position += sample.seconds + PACK_GAP
        audio = np.concatenate(parts)
        mel = detector.mel(audio)
        fitted = fitted_window(audio.size / b.RATE)
        frames = fitted.frames if fitted else FULL_FRAMES
        features = np.zeros((mel.shape[0], frames), np.float32)
        features[:, : min(frames, mel.shape[1])] = mel[:, :frames]
        started = time.process_time()
        encoded = np.asarray(detector.encode(features))  # (1, frames / 2, d_model), on the CPU
        encode_cpu = time.process_time() - started
        whole = detector.detect(ctranslate2.StorageView.from_array(encoded))
        for sample, (start, end) in zip(window, spans):
            first, last = int(start * FRAMES_PER_SECOND / 2), int(np.ceil(end * FRAMES_PER_SECOND / 2))
            piece = ctranslate2.StorageView.from_array(np.ascontiguousarray(encoded[:, first:last]))
            started = time.process_time()
            guess, prob = detector.detect(piece)
            sample.results[method] = (guess, prob, encode_cpu / len(window) + time.process_time() - started)
        languages = sorted({s.language for s in window})
        report.append({"method": method, "clips": len(window), "seconds": round(audio.size / b.RATE, 1),
                       "languages": languages, "group": window[0].results[group_by][0] if group_by else None,
                       "window_guess": whole, "encode_cpu": encode_cpu})
    return report


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--per-language", type=int, default=0, help="real clips per language (default: all)")
    parser.add_argument("--pack", type=int, default=8, help="clips per packed window at most")
    parser.add_argument("--no-synthetic", action="store_true")
    parser.add_argument("--json")
    args = parser.parse_args()

    b.print_machine("language detection on short clips: full, fitted, tight and packed windows (base, int8, 1 thread)")
    with tempfile.TemporaryDirectory(prefix="earshot-bench-") as tmp:
        samples = real(args.per_language) + ([] if args.no_synthetic else synthetic(Path(tmp)))
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for sample in samples:
        counts[(sample.kind, sample.language)] += 1
    print("clips: " + ", ".join(f"{lang} {kind} {n}" for (kind, lang), n in sorted(counts.items())))
    print(f"lengths {min(s.seconds for s in samples):.2f}-{max(s.seconds for s in samples):.2f} s")

    detector = Detector()
    detector.on_window(detector.mel(samples[0].audio), FULL_FRAMES)  # warm
    window = b.CpuWindow()
    per_clip(detector, samples)
    windows = packed(detector, samples, args.pack, "packed", None)
    windows += packed(detector, samples, args.pack, "grouped", "fitted")
    window.stop()
    print(f"({window.note()}, load {b.loadavg()}; CPU times below are this process's own)")

    methods = ("full", "fitted", "tight", "packed", "grouped")
    print(f"\n{'method':8} {'CPU/clip':>9} {'= full?':>9} {'= truth':>9}   per language (= truth, real | synthetic)")
    for method in methods:
        cpu = b.median(s.results[method][2] for s in samples)
        same = sum(s.results[method][0] == s.results["full"][0] for s in samples)
        right = sum(s.results[method][0] == s.language for s in samples)
        by: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for s in samples:
            key = f"{s.language}{'' if s.kind == 'real' else '*'}"
            by[key][0] += s.results[method][0] == s.language
            by[key][1] += 1
        detail = " ".join(f"{k} {ok}/{n}" for k, (ok, n) in sorted(by.items()))
        print(f"{method:8} {1000 * cpu:7.0f}ms {same:4}/{len(samples):<4} {right:4}/{len(samples):<4}   {detail}")
    print("(* synthetic, espeak-ng; CPU/clip: median; packed: the window's encode shared by its clips + the clip's detect)")

    print("\nguesses at or above a probability threshold: clips, and how many of those are right")
    for kind in ("real", "synthetic"):
        mine = [s for s in samples if s.kind == kind]
        for method in methods:
            line = []
            for threshold in (0.5, 0.7, 0.8, 0.9):
                above = [s for s in mine if s.results[method][1] >= threshold]
                right = sum(s.results[method][0] == s.language for s in above)
                line.append(f"≥{threshold}: {len(above)}/{len(mine)}, {right} right")
            print(f"  {kind:9} {method:8} " + "; ".join(line))

    print("\nwrong guesses (truth: method guess prob)")
    for s in samples:
        wrong = [f"{m} {s.results[m][0]} {s.results[m][1]:.2f}" for m in methods if s.results[m][0] != s.language]
        if wrong:
            print(f"  {s.name:36} {s.seconds:4.1f}s {s.language}: " + ", ".join(wrong))

    print(f"\npacked windows: the whole window's own detection (grouped: the fitted guess the window was packed by)")
    for w in windows:
        print(f"  {w['method']:7} {w['group'] or '':3} {w['clips']} clips, {w['seconds']:5.1f} s, languages {','.join(w['languages'])}: "
              f"window says {w['window_guess'][0]} {w['window_guess'][1]:.2f}; encode {1000 * w['encode_cpu']:.0f} ms CPU")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "samples": [{"name": s.name, "language": s.language, "kind": s.kind, "seconds": s.seconds,
                         "results": s.results} for s in samples],
            "windows": windows}, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
