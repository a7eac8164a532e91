"""Concurrency: 16 short real clips sent 8 in flight vs one at a time, for earshot configurations.

Run: node --import tsx scripts/run-python.ts bench/concurrency.py [--rounds N] [--configs NAME,...]

Clips (1.5-20 s, made from test/audio, 16 kHz mono FLAC): jfk, its cuts, hotwords, the
stereo recording mixed and per channel, parts of the MIT licence reading in English and German.
Requests: the openai SDK, model whisper-1, default options. For each configuration earshot is
started afresh (bundled `base`, int8), warmed with one request per worker, then the 16 clips are
sent one at a time and 8 in flight, alternately, `--rounds` times; the fastest undisturbed pass of
each kind counts. Configurations:

  w1t2      EARSHOT_WORKERS_PER_MODEL=1 EARSHOT_CPU_THREADS=2 (one process, two threads)
  w2t1      EARSHOT_WORKERS_PER_MODEL=2 EARSHOT_CPU_THREADS=1 (two processes, one thread each)
  w2t2      EARSHOT_WORKERS_PER_MODEL=2 EARSHOT_CPU_THREADS=2 (two processes, two threads each:
            4 threads on 2 cores when both work, 2 threads for a request alone)
  w1t2+batch8, w2t1+batch8, w2t2+batch8
            the same with cross-request batching on (EARSHOT_MAX_BATCH=8), when that option exists;
            w1t2 and w2t1 then run with it off (EARSHOT_MAX_BATCH=1)
  default   earshot's own defaults, when they equal none of the above

Prints throughput (clips per minute), the ratio of 8-in-flight to one-at-a-time throughput (target
≥ 1.5×) and which configuration is fastest. Not a test.
"""

from __future__ import annotations

import argparse
import os
import time
import tempfile
from pathlib import Path
from typing import Any

from openai import OpenAI

import benchlib as b


def configurations(options: dict[str, dict[str, str]]) -> tuple[dict[str, dict[str, str]], str | None]:
    """The configurations to measure, and the name of the one that equals earshot's defaults (if any)."""
    configs: dict[str, dict[str, str]] = {
        "w1t2": {"EARSHOT_WORKERS_PER_MODEL": "1", "EARSHOT_CPU_THREADS": "2"},
        "w2t1": {"EARSHOT_WORKERS_PER_MODEL": "2", "EARSHOT_CPU_THREADS": "1"},
        "w2t2": {"EARSHOT_WORKERS_PER_MODEL": "2", "EARSHOT_CPU_THREADS": "2"},
    }
    batch = options.get("EARSHOT_MAX_BATCH")
    if batch:
        for name in ("w1t2", "w2t1", "w2t2"):
            configs[f"{name}+batch8"] = {**configs[name], "EARSHOT_MAX_BATCH": "8"}
            configs[name]["EARSHOT_MAX_BATCH"] = "1"  # "1 turns cross-request batching off"

    def effective(env: dict[str, str]) -> tuple[str, ...]:
        def value(key: str, fallback: str) -> str:
            return env.get(key, options.get(key, {}).get("default", fallback))
        workers = int(value("EARSHOT_WORKERS_PER_MODEL", "1"))
        threads = int(value("EARSHOT_CPU_THREADS", "0")) or max(1, (os.cpu_count() or 1) // workers)
        return str(workers), str(threads), value("EARSHOT_MAX_BATCH", "1")

    default = next((name for name, env in configs.items() if effective(env) == effective({})), None)
    if default is None:
        configs["default"] = {}
        default = "default"
    return configs, default


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--configs", default="", help="comma-separated subset of the configurations")
    parser.add_argument("--in-flight", type=int, default=8)
    args = parser.parse_args()

    b.print_machine("concurrency: 16 short clips, 8 in flight vs one at a time")
    options = b.earshot_options()
    relevant = [k for k in options if any(w in k for w in ("THREADS", "WORKERS", "BATCH"))]
    print("earshot defaults: " + ", ".join(f"{k}={options[k]['default']}" for k in relevant))
    configs, default = configurations(options)
    print(f"earshot's default configuration is {default}")
    if args.configs:
        configs = {name: env for name, env in configs.items() if name in args.configs.split(",")}

    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="earshot-bench-") as tmp:
        clips_with_text = b.short_clips(Path(tmp))
        clips = [path for path, _ in clips_with_text]
        print(f"{len(clips)} clips, {sum(b.load_seconds(p) for p in clips):.1f} s of audio in all")
        for name, env in configs.items():
            print(f"\n-- {name}: {env or '(defaults)'}")
            with b.Earshot(env, name) as server:
                server.wait_ready()
                expected = int(env.get("EARSHOT_WORKERS_PER_MODEL", options.get("EARSHOT_WORKERS_PER_MODEL", {}).get("default", "1")))
                deadline = time.perf_counter() + 120
                while server.health().get("models", [{}])[0].get("workers", 0) < expected and time.perf_counter() < deadline:
                    time.sleep(0.1)
                health = server.health().get("models", [{}])[0]
                print(f"  ready at {server.url}, workers={health.get('workers')}")
                client = OpenAI(base_url=server.base_url, api_key="unused", max_retries=0, timeout=600)

                def send(path: Path) -> str:
                    with open(path, "rb") as audio:
                        return client.audio.transcriptions.create(file=audio, model="whisper-1").text

                b.run_pass(send, clips[:2] * 2, 4)  # every worker warm
                passes: dict[int, list[dict[str, Any]]] = {1: [], args.in_flight: []}
                for _ in range(args.rounds):
                    for in_flight in passes:
                        passes[in_flight].append(b.measured_pass(name, send, clips, in_flight))
                results[name] = {k: min(v, key=lambda p: p["wall"]) for k, v in passes.items()}
                sequential, parallel = results[name][1], results[name][args.in_flight]
                differing = sum(s != p for s, p in zip(sequential["texts"], parallel["texts"]))
                print(f"  {differing} of {len(clips)} transcripts differ between the two modes")

    print(f"\n== summary (fastest pass of each kind; throughput in clips/min; load now {b.loadavg()})")
    print(f"{'config':12} {'one at a time':>14} {str(args.in_flight) + ' in flight':>12} {'ratio':>7}  other work (cores)")
    for name, passes in results.items():
        sequential, parallel = passes[1], passes[args.in_flight]
        ratio = sequential["wall"] / parallel["wall"]
        print(f"{name + ('*' if name == default else ''):12} {len(clips) / sequential['wall'] * 60:14.1f} {len(clips) / parallel['wall'] * 60:12.1f} "
              f"{ratio:6.2f}x  {sequential['other']:.2f} / {parallel['other']:.2f}"
              f"   (target ≥ 1.5x: {'MET' if ratio >= 1.5 else 'MISSED'})")
    print(f"(* earshot's default configuration)")
    for in_flight, what in ((1, "one at a time"), (args.in_flight, f"{args.in_flight} in flight")):
        ranked = sorted(results, key=lambda name: results[name][in_flight]["wall"])
        best, runner_up = ranked[0], ranked[1] if len(ranked) > 1 else None
        margin = (f", {results[runner_up][in_flight]['wall'] / results[best][in_flight]['wall']:.2f}x {runner_up}"
                  if runner_up else "")
        print(f"fastest {what}: {best}{margin}")


if __name__ == "__main__":
    main()
