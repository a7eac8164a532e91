"""Short clips side by side: earshot (packing on and off), the bare library at its best, speaches.

Run: node --import tsx scripts/run-python.ts bench/short_clips.py [--clips N] [--rounds N] [--no-language]
         [--model base|tiny.en] [--latency-runs N] [--systems bare,speaches,earshot,earshot-unpacked]
         [--variant NAME:KEY=VALUE[,KEY=VALUE] ...]
         [--json PATH]

Clips: bench/short_corpus.py (116 clips of real English speech, 2-6 s each, cut at pauses, with
reference texts; built once into ~/.cache/earshot-bench). `--clips N` takes the first N (a quick check).

Systems, all on this machine's cores at once available, one after the other, each sent the same clips
with `--in-flight` (8) requests in flight:
  - bare: faster-whisper alone at its best here: two processes (one per core) of one CTranslate2 thread
    each, the same model directory (.venv/earshot-models/<model>, int8), taking the clips from one queue,
    with the options earshot's default request maps to for a short clip: WhisperModel.transcribe(audio,
    language=...) with faster-whisper's defaults (beam 5, temperature fallback, no VAD).
  - speaches with its defaults (the peer installed by ../shared/peers/speaches, started by its start.sh;
    one model copy, CTranslate2's 4 threads, VAD then its batched pipeline), model
    Systran/faster-whisper-<model>. Its setup.sh installs only base; tiny.en is run when its fake Hugging
    Face cache also holds Systran/faster-whisper-tiny.en, and skipped (said so) otherwise.
  - earshot with its defaults (packing of short clips on, where the code has it), model whisper-1 on
    EARSHOT_DEFAULT_MODEL=<model>;
  - earshot-unpacked: the same with packing off (`--pack-off`, default EARSHOT_PACK_MAX_CLIPS=0), when the
    code has that option;
  - earshot-NAME for each `--variant NAME:KEY=VALUE,...`: earshot with those settings (e.g.
    `--variant fit:EARSHOT_FIT_SHORT_AUDIO_SECONDS=10`), compared like the others.
Every request gives `language` (en) to every system, or, with --no-language, none does.

Each round runs every system once (the order turns round by round); a pass during which other work
kept 0.25 cores or more busy is repeated (twice at most), and each line prints the load. The fastest
pass of each system counts. Then single-request latency: one short clip (the corpus clip nearest 3 s),
sent alone to earshot with packing on and off alternately, `--latency-runs` times each; medians.

Prints: total time, clips/s, median latency under load, word error rate against the references
(benchlib's normaliser, summed over all clips), ratios earshot/bare and earshot/speaches, and the
targets of issue 14: throughput ≥ 2× bare and ≥ 2.5× speaches, WER ≤ bare + 0.3 point, single-request
latency no worse with packing than without. Not a test.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Callable

from openai import OpenAI

import benchlib as b
import short_corpus

PACK_OFF = "EARSHOT_PACK_MAX_CLIPS=0"
LATENCY_CLIP_SECONDS = 3.0
DISTURBED = 0.25

Send = Callable[[Path], str]


# ---------------------------------------------------------------- bare faster-whisper: two processes

_model: Any = None


def _load_bare(model_dir: str, language: str | None, warm: str) -> None:
    global _model
    from faster_whisper import WhisperModel
    _model = WhisperModel(model_dir, device="cpu", compute_type="int8", cpu_threads=1)
    list(_model.transcribe(warm, language=language)[0])


def _bare_transcribe(path: str, language: str | None) -> str:
    segments, _ = _model.transcribe(path, language=language)
    return "".join(segment.text for segment in segments)


class Bare:
    """faster-whisper in two processes of one thread each, fed from one queue."""

    def __init__(self, model: str, language: str | None, warm: Path) -> None:
        self.language = language
        self.pool = ProcessPoolExecutor(2, multiprocessing.get_context("spawn"), initializer=_load_bare,
                                        initargs=(str(b.MODELS / model), language, str(warm)))
        for future in [self.pool.submit(_bare_transcribe, str(warm), language) for _ in range(4)]:
            future.result()  # both processes loaded and warm

    def send(self, path: Path) -> str:
        return self.pool.submit(_bare_transcribe, str(path), self.language).result()

    def stop(self) -> None:
        self.pool.shutdown(cancel_futures=True)


# ---------------------------------------------------------------- earshot


def start_earshot(env: dict[str, str], label: str, options: dict[str, dict[str, str]]) -> b.Earshot:
    server = b.Earshot(env, label)
    server.wait_ready()
    workers = int({**{k: v["default"] for k, v in options.items()}, **env}.get("EARSHOT_WORKERS_PER_MODEL", "1"))
    deadline = time.perf_counter() + 120
    while server.health()["models"][0].get("workers", 0) < workers and time.perf_counter() < deadline:
        time.sleep(0.1)
    return server


def sender(base_url: str, model: str, language: str | None) -> Send:
    client = OpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=1800)

    def send(path: Path) -> str:
        with open(path, "rb") as audio:
            if language:
                return client.audio.transcriptions.create(file=audio, model=model, language=language).text
            return client.audio.transcriptions.create(file=audio, model=model).text
    return send


# ---------------------------------------------------------------- results


def corpus_wer(clips: list[short_corpus.Clip], texts: list[str]) -> float:
    errors = words = 0
    for clip, text in zip(clips, texts):
        e, n = b.word_errors(clip.reference, text)
        errors, words = errors + e, words + n
    return errors / max(1, words)


def verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clips", type=int, default=0, help="the first N clips of the corpus (default: all 116)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--in-flight", type=int, default=8)
    parser.add_argument("--model", default="base", choices=("base", "tiny.en"))
    parser.add_argument("--no-language", action="store_true", help="send no language to any system")
    parser.add_argument("--latency-runs", type=int, default=15)
    parser.add_argument("--attempts", type=int, default=3, help="tries of a pass disturbed by other work")
    parser.add_argument("--systems", default="bare,speaches,earshot,earshot-unpacked")
    parser.add_argument("--pack-off", default=PACK_OFF, metavar="KEY=VALUE",
                        help=f"the earshot setting that turns packing off (default {PACK_OFF})")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME:KEY=VALUE[,KEY=VALUE]",
                        help="one more earshot server with these settings, named earshot-NAME (repeatable)")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    language = None if args.no_language else "en"
    wanted = args.systems.split(",")

    b.print_machine(f"short clips: earshot vs bare faster-whisper vs speaches ({args.model}, int8, "
                    f"{args.in_flight} in flight, language {language or 'not given'})")
    options = b.earshot_options()
    pack_key, pack_off = args.pack_off.split("=", 1)
    packing = pack_key in options
    print("earshot defaults: " + ", ".join(f"{k}={v['default']}" for k, v in options.items()
                                            if any(w in k for w in ("THREADS", "WORKERS", "BATCH", "PACK"))))
    if not packing:
        print(f"({pack_key} is not an option of this code: earshot runs with its defaults only)")
        wanted = [w for w in wanted if w != "earshot-unpacked"]
    if "speaches" in wanted and not b.speaches_serves(args.model):
        print(f"(speaches' cache has no Systran/faster-whisper-{args.model}: its setup.sh installs only base; "
              "speaches left out)")
        wanted = [w for w in wanted if w != "speaches"]

    clips = short_corpus.english_clips()
    if args.clips:
        clips = clips[: args.clips]
    paths = [clip.path for clip in clips]
    latency_clip = min(clips, key=lambda c: abs(c.seconds - LATENCY_CLIP_SECONDS))
    print(f"{len(clips)} clips, {sum(c.seconds for c in clips):.1f} s of audio, "
          f"{sum(len(b.normalise(c.reference)) for c in clips)} reference words ({clips[0].path.parent})")

    earshot_env = {"EARSHOT_DEFAULT_MODEL": args.model} if args.model != "base" else {}
    systems: dict[str, Send] = {}
    stoppers: list[Callable[[], object]] = []
    servers: dict[str, b.Earshot] = {}
    passes: dict[str, list[dict[str, Any]]] = {}
    latency: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="earshot-bench-") as tmp:
        try:
            if "bare" in wanted:
                bare = Bare(args.model, language, latency_clip.path)
                stoppers.append(bare.stop)
                systems["bare"] = bare.send
            if "speaches" in wanted:
                peer = b.Speaches(Path(tmp))
                stoppers.append(peer.stop)
                peer.wait_ready()
                systems["speaches"] = sender(f"{peer.url}/v1", f"Systran/faster-whisper-{args.model}", language)
            variants = [(f"earshot-{name}", dict(item.split("=", 1) for item in settings.split(",")))
                        for name, settings in (variant.split(":", 1) for variant in args.variant)]
            wanted += [name for name, _ in variants]
            for name, env in (("earshot", {}), ("earshot-unpacked", {pack_key: pack_off}), *variants):
                if name in wanted:
                    print(f"{name}: {env or 'defaults'}")
                    server = start_earshot({**earshot_env, **env}, name, options)
                    stoppers.append(server.stop)
                    servers[name] = server
                    systems[name] = sender(server.base_url, "whisper-1", language)
            for name, send in systems.items():
                started = time.perf_counter()
                text = send(latency_clip.path)
                print(f"{name}: first request {time.perf_counter() - started:.2f} s: {text.strip()!r}")
                b.run_pass(send, paths[:4], 4)  # every worker warm

            print(f"\n-- {len(clips)} clips, {args.in_flight} in flight (a pass disturbed by other work is repeated)")
            names = list(systems)
            for round_ in range(args.rounds):
                order = names[round_ % len(names):] + names[: round_ % len(names)]
                for name in order:
                    result = b.measured_pass(name, systems[name], paths, args.in_flight, DISTURBED, args.attempts)
                    result["wer"] = corpus_wer(clips, result["texts"])
                    passes.setdefault(name, []).append(result)

            if servers:
                print(f"\n-- single request: {latency_clip.name} ({latency_clip.seconds:.2f} s), alone, "
                      f"{args.latency_runs} runs each, alternating")
                for name, server in servers.items():
                    systems[name](latency_clip.path)
                b.wait_for_quiet(max_wait=300)
                window = b.CpuWindow()
                for _ in range(args.latency_runs):
                    for name in servers:
                        time.sleep(0.4)  # CTranslate2's threads spin a while after a decode
                        started = time.perf_counter()
                        systems[name](latency_clip.path)
                        latency.setdefault(name, []).append(time.perf_counter() - started)
                window.stop()
                for name, values in latency.items():
                    print(f"  {name:18} median {1000 * b.median(values):7.1f} ms (min {1000 * min(values):.1f}, "
                          f"max {1000 * max(values):.1f})")
                print(f"  ({window.note()}, load {b.loadavg()})")
        finally:
            for stop in reversed(stoppers):
                stop()

    best = {name: min(results, key=lambda p: p["wall"]) for name, results in passes.items()}
    print(f"\n== summary: {len(clips)} clips ({sum(c.seconds for c in clips):.1f} s), {args.model}, language "
          f"{language or 'not given'}, {args.in_flight} in flight; fastest pass of {args.rounds}; load now {b.loadavg()}")
    print(f"{'system':18} {'time':>8} {'clips/s':>8} {'median latency':>15} {'WER':>7}  other work")
    for name, result in best.items():
        print(f"{name:18} {result['wall']:7.2f}s {len(clips) / result['wall']:8.3f} {b.median(result['latencies']):14.2f}s "
              f"{100 * result['wer']:6.2f}%  {result['other']:.2f} cores")
    summary: dict[str, Any] = {"clips": len(clips), "audio_seconds": sum(c.seconds for c in clips), "model": args.model,
                               "language": language, "in_flight": args.in_flight,
                               "systems": {name: {k: v for k, v in r.items() if k != "texts"} for name, r in best.items()},
                               "latency": latency}
    for name in best:
        if not name.startswith("earshot"):
            continue
        mine = best[name]
        if "bare" in best:
            ratio = best["bare"]["wall"] / mine["wall"]
            points = 100 * (mine["wer"] - best["bare"]["wer"])
            print(f"{name} / bare: throughput {ratio:.2f}x (target ≥ 2x: {verdict(ratio >= 2)}), "
                  f"WER {points:+.2f} points (target ≤ +0.3: {verdict(points <= 0.3)})")
        if "speaches" in best:
            ratio = best["speaches"]["wall"] / mine["wall"]
            print(f"{name} / speaches: throughput {ratio:.2f}x (target ≥ 2.5x: {verdict(ratio >= 2.5)})")
    for name in latency:
        if name == "earshot-unpacked" or "earshot-unpacked" not in latency:
            continue
        on, off = b.median(latency[name]), b.median(latency["earshot-unpacked"])
        print(f"single request, {name} vs earshot-unpacked: {1000 * on:.1f} ms vs {1000 * off:.1f} ms "
              f"({1000 * (on - off):+.1f} ms; target: no worse: {verdict(on <= off * 1.05)}, within 5 %)")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
