"""Memory and start-up: earshot's processes against a bare faster-whisper process.

Run: node --import tsx scripts/run-python.ts bench/memory_startup.py [--requests 500] [--starts 3]

1. Start-up: `npm start` in the project (PORT=0, HOST=127.0.0.1, bundled default model) until
   /health answers 200, median of --starts runs; also the time to the "earshot listening" line, and
   `node --import tsx src/main.ts` directly for comparison. Target ≤ 10 s.
2. Memory (earshot with its default configuration, started as test/support/server.ts does): the
   gateway's RSS when it listens, once /health is 200, and the worker's after one transcription
   against a fresh bare Python process that loads the same model (base, int8, 2 threads) and
   transcribes the same clip (jfk.flac). Target: gateway ≤ 120 MB.
3. Growth: RSS of the gateway and of each worker after 100 and after --requests requests of short
   clips (2 in flight, the 16 clips of bench/concurrency.py in turn). Target ≤ +10 % from 100 to the end.
Not a test.
"""

from __future__ import annotations

import argparse
import gc
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from openai import OpenAI

import benchlib as b

BARE = r"""
import sys, time
from faster_whisper import WhisperModel
def rss():
    for line in open('/proc/self/status'):
        if line.startswith('VmRSS:'):
            return int(line.split()[1]) / 1024
started = time.perf_counter()
before = rss()
model = WhisperModel(sys.argv[1], device='cpu', compute_type='int8', cpu_threads=2)
loaded = rss()
load_seconds = time.perf_counter() - started
segments, _ = model.transcribe(sys.argv[2])
text = ''.join(s.text for s in segments)
print(f'{before:.1f} {loaded:.1f} {rss():.1f} {load_seconds:.2f}')
"""


def startup(command: list[str], label: str) -> tuple[float, float]:
    server = b.Earshot({}, label, command=command, new_session=True)
    try:
        ready = server.wait_ready(timeout=120)
        assert server.listening_at is not None
        return server.listening_at - server.started, ready
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--starts", type=int, default=3)
    args = parser.parse_args()
    b.print_machine("memory and start-up")

    print("\n-- start-up to /health 200 (bundled default model)")
    b.wait_for_quiet(max_wait=300)
    window = b.CpuWindow()
    runs: dict[str, list[tuple[float, float]]] = {"npm start": [], "node --import tsx src/main.ts": []}
    commands = {
        "npm start": ["npm", "start"],
        "node --import tsx src/main.ts": ["node", "--import", "tsx", str(b.ROOT / "src" / "main.ts")],
    }
    for _ in range(args.starts):
        for label, command in commands.items():
            listening, ready = startup(command, label)
            runs[label].append((listening, ready))
            print(f"  {label:30} listening after {listening:5.2f} s, /health 200 after {ready:5.2f} s")
    window.stop()
    print(f"  ({window.note()}, load {b.loadavg()})")
    bare_load = subprocess.run(
        [sys.executable, "-c", "import time; t = time.perf_counter(); from faster_whisper import WhisperModel; "
         f"WhisperModel({str(b.MODELS / 'base')!r}, device='cpu', compute_type='int8', cpu_threads=2); "
         "print(f'{time.perf_counter() - t:.2f}')"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    print(f"  for scale: a bare python importing faster_whisper and loading base takes {bare_load} s")

    print("\n-- memory")
    jfk = b.AUDIO / "jfk.flac"
    bare = subprocess.run([sys.executable, "-c", BARE, str(b.MODELS / "base"), str(jfk)],
                          capture_output=True, text=True, check=True).stdout.split()
    bare_start, bare_loaded, bare_after, _ = (float(x) for x in bare)
    print(f"  bare faster-whisper process: {bare_start:.0f} MiB at start, {bare_loaded:.0f} MiB with the model loaded, "
          f"{bare_after:.0f} MiB after transcribing jfk.flac")

    with tempfile.TemporaryDirectory(prefix="earshot-bench-") as tmp:
        clips = [path for path, _ in b.short_clips(Path(tmp))]
        server = b.Earshot({}, "earshot (default config)")
        try:
            server.wait_listening()
            gateway = server.gateway_pid()
            at_listen = b.rss_mib(gateway)
            server.wait_ready()
            at_ready = b.rss_mib(gateway)
            workers_ready = {pid: b.rss_mib(pid) for pid in server.worker_pids()}
            client = OpenAI(base_url=server.base_url, api_key="unused", max_retries=0, timeout=600)

            def send(path: Path) -> str:
                with open(path, "rb") as audio:
                    return client.audio.transcriptions.create(file=audio, model="whisper-1").text

            send(jfk)
            time.sleep(0.5)
            after_one = b.rss_mib(gateway), {pid: b.rss_mib(pid) for pid in server.worker_pids()}
            print(f"  gateway (pid {gateway}): {at_listen:.0f} MiB when listening, {at_ready:.0f} MiB at /health 200, "
                  f"{after_one[0]:.0f} MiB after one request  (target ≤ 120 MB = 114 MiB: "
                  f"{'MET' if max(at_listen, at_ready, after_one[0]) * 1.048576 <= 120 else 'MISSED'})")
            for pid, rss in after_one[1].items():
                print(f"  worker (pid {pid}): {workers_ready.get(pid, float('nan')):.0f} MiB at /health 200, {rss:.0f} MiB "
                      f"after one transcription of jfk.flac = {rss / bare_after:.2f}x the bare process ({rss - bare_after:+.0f} MiB)")

            print(f"\n-- {args.requests} requests of short clips, 2 in flight")
            samples: dict[int, tuple[float, dict[int, float]]] = {1: after_one}
            sent = 1
            checkpoints = sorted({100, args.requests})
            window = b.CpuWindow()
            started = time.perf_counter()
            for checkpoint in checkpoints:
                count = checkpoint - sent
                batch = [clips[(sent + i) % len(clips)] for i in range(count)]
                b.run_pass(send, batch, 2)
                sent = checkpoint
                gc.collect()
                time.sleep(1.0)
                samples[checkpoint] = b.rss_mib(gateway), {pid: b.rss_mib(pid) for pid in server.worker_pids()}
                workers = ", ".join(f"{rss:.0f}" for rss in samples[checkpoint][1].values())
                print(f"  after {checkpoint:4} requests ({time.perf_counter() - started:5.0f} s): gateway "
                      f"{samples[checkpoint][0]:.0f} MiB, worker(s) {workers} MiB", flush=True)
            window.stop()
            print(f"  ({window.note()}, load {b.loadavg()}; restarts {server.health()['models'][0].get('restarts')})")
        finally:
            server.stop()

    print(f"\n== summary (load now {b.loadavg()})")
    for label, values in runs.items():
        print(f"start-up {label:30} median /health 200 after {b.median(r for _, r in values):.2f} s "
              f"(listening after {b.median(l for l, _ in values):.2f} s); runs: "
              + ", ".join(f"{r:.2f}" for _, r in values)
              + (f"  (target ≤ 10 s: {'MET' if b.median(r for _, r in values) <= 10 else 'MISSED'})"
                 if label == "npm start" else ""))
    first, mid, last = samples[1], samples[100], samples[max(samples)]
    print(f"gateway RSS: {at_listen:.0f} MiB listening, {at_ready:.0f} MiB ready, {first[0]:.0f} after 1, "
          f"{mid[0]:.0f} after 100, {last[0]:.0f} after {max(samples)} requests "
          f"({100 * (last[0] / mid[0] - 1):+.1f} % from 100; target ≤ +10 %: {'MET' if last[0] <= 1.1 * mid[0] else 'MISSED'})")
    for pid in last[1]:
        if pid in mid[1]:
            print(f"worker {pid} RSS: {first[1].get(pid, float('nan')):.0f} MiB after 1, {mid[1][pid]:.0f} after 100, "
                  f"{last[1][pid]:.0f} after {max(samples)} requests ({100 * (last[1][pid] / mid[1][pid] - 1):+.1f} % from 100; "
                  f"target ≤ +10 %: {'MET' if last[1][pid] <= 1.1 * mid[1][pid] else 'MISSED'}); "
                  f"bare process {bare_after:.0f} MiB")
        else:
            print(f"worker {pid} was replaced between 100 and {max(samples)} requests")


if __name__ == "__main__":
    main()
