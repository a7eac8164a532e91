"""Peer comparison: earshot against faster-whisper-server (PyPI) on the same 16 clips, 8 in flight.

Run: node --import tsx scripts/run-python.ts bench/peer_compare.py [--peer-python PATH] [--rounds N]

The peer is PyPI's `faster-whisper-server` 0.0.3 (andyjjrt/faster-whisper-server, MIT: a FastAPI app
that runs faster-whisper in its request handler). It is not one of earshot's dependencies; install it
into a venv of its own, outside the project, with the same engine versions as earshot's .venv:

    python3 -m venv /work/scratch/benchhelper/peer-venv
    /work/scratch/benchhelper/peer-venv/bin/pip install faster-whisper-server==0.0.3 faster-whisper==1.2.1 ctranslate2==4.8.5

(or point --peer-python / PEER_PYTHON at another such interpreter). It is started as its own CLI does,
`python -m faster_whisper_server --config CONFIG --host 127.0.0.1 --port PORT`, with HF_HUB_OFFLINE=1
and a config that serves `whisper-1` from earshot's bundled `base` directory with device cpu,
compute_type int8, cpu_threads 2, batch_size 1 and no transcribe options (faster-whisper's defaults:
beam 5, temperature fallback, no VAD). earshot runs with its default configuration (2 cores shared
by its workers; same model and compute type) and gets the same default request (model whisper-1),
which for clips this short means exactly faster-whisper's defaults too. `--env KEY=VALUE` (repeatable)
runs earshot with another configuration instead.

Both servers are up at once (idle while the other works); the 16 clips go to each 8 in flight and
one at a time, alternately, `--rounds` times. Prints throughputs and the ratio earshot/peer (target
≥ 2× with 8 in flight). Not a test.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from openai import OpenAI

import benchlib as b

DEFAULT_PEER_PYTHON = "/work/scratch/benchhelper/peer-venv/bin/python"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Peer:
    def __init__(self, python: str, directory: Path) -> None:
        config = directory / "peer.yaml"
        config.write_text(
            "batch_size: 1\n"
            "models:\n"
            "  - name: whisper-1\n"
            f"    path: {b.MODELS / 'base'}\n"
            "    model_options:\n"
            "      device: cpu\n"
            "      compute_type: int8\n"
            "      cpu_threads: 2\n"
        )
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(directory / "peer.log", "w")
        env = {k: v for k, v in b.clean_environment().items() if k not in ("PYTHONPATH",)}
        self.process = subprocess.Popen(
            [python, "-m", "faster_whisper_server", "--config", str(config), "--host", "127.0.0.1",
             "--port", str(self.port), "--log-level", "info"],
            env={**env, "HF_HUB_OFFLINE": "1"}, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
        )
        self.log_path = directory / "peer.log"

    def wait_ready(self, timeout: float = 120) -> None:
        b.wait_http_ok(f"{self.url}/health", self.process, self.log_path, "the peer", timeout)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--peer-python", default=os.environ.get("PEER_PYTHON", DEFAULT_PEER_PYTHON))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--in-flight", type=int, default=8)
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="earshot environment setting (repeatable), e.g. --env EARSHOT_WORKERS_PER_MODEL=2")
    args = parser.parse_args()
    earshot_env = dict(item.split("=", 1) for item in args.env)
    if not Path(args.peer_python).exists():
        raise SystemExit(f"no peer interpreter at {args.peer_python}: see this script's docstring to install it")

    b.print_machine("peer comparison: earshot vs faster-whisper-server, 16 short clips")
    version = subprocess.run(
        [args.peer_python, "-c", "import importlib.metadata as m; print(*(m.version(p) for p in "
         "('faster-whisper-server', 'faster-whisper', 'ctranslate2', 'uvicorn', 'fastapi')))"],
        capture_output=True, text=True, check=True,
    ).stdout.split()
    print("peer: faster-whisper-server {} (faster-whisper {}, ctranslate2 {}, uvicorn {}, fastapi {})".format(*version))
    options = b.earshot_options()
    relevant = [k for k in options if any(w in k for w in ("THREADS", "WORKERS", "BATCH"))]
    print("earshot defaults: " + ", ".join(f"{k}={options[k]['default']}" for k in relevant))

    with tempfile.TemporaryDirectory(prefix="earshot-bench-") as tmp:
        directory = Path(tmp)
        clips = [path for path, _ in b.short_clips(directory)]
        peer = Peer(args.peer_python, directory)
        earshot = b.Earshot(earshot_env, "earshot")
        print(f"earshot configuration: {earshot_env or 'defaults'}")
        try:
            earshot.wait_ready()
            peer.wait_ready()
            workers = int(earshot_env.get("EARSHOT_WORKERS_PER_MODEL", options.get("EARSHOT_WORKERS_PER_MODEL", {}).get("default", "1")))
            deadline = time.perf_counter() + 120
            while earshot.health()["models"][0].get("workers", 0) < workers and time.perf_counter() < deadline:
                time.sleep(0.1)
            clients = {
                "peer": OpenAI(base_url=f"{peer.url}/v1", api_key="unused", max_retries=0, timeout=900),
                "earshot": OpenAI(base_url=earshot.base_url, api_key="unused", max_retries=0, timeout=900),
            }

            def sender(client: OpenAI) -> Any:
                def send(path: Path) -> str:
                    with open(path, "rb") as audio:
                        return client.audio.transcriptions.create(file=audio, model="whisper-1").text
                return send

            senders = {name: sender(client) for name, client in clients.items()}
            for name, send in senders.items():  # the peer loads its model on the first request
                started = time.perf_counter()
                text = send(b.AUDIO / "jfk.flac")
                print(f"{name} first request {time.perf_counter() - started:.2f} s: {text.strip()!r}")
                b.run_pass(send, clips[:2] * 2, 4)

            passes: dict[tuple[str, int], list[dict[str, Any]]] = {}
            for _ in range(args.rounds):
                for in_flight in (args.in_flight, 1):
                    for name, send in senders.items():
                        passes.setdefault((name, in_flight), []).append(
                            b.measured_pass(name, send, clips, in_flight))
            best = {key: min(value, key=lambda p: p["wall"]) for key, value in passes.items()}
        finally:
            peer.stop()
            earshot.stop()

    print(f"\n== summary (fastest pass of each; load now {b.loadavg()})")
    for in_flight in (args.in_flight, 1):
        peer_pass, earshot_pass = best[("peer", in_flight)], best[("earshot", in_flight)]
        ratio = peer_pass["wall"] / earshot_pass["wall"]
        same = sum(p.strip() == e.strip() for p, e in zip(peer_pass["texts"], earshot_pass["texts"]))
        target = (f" (target ≥ 2x: {'MET' if ratio >= 2 else 'MISSED'})" if in_flight > 1 else "")
        print(f"{in_flight} in flight: peer {peer_pass['wall']:6.2f} s ({len(clips) / peer_pass['wall'] * 60:5.1f} clips/min, "
              f"median latency {b.median(peer_pass['latencies']):.2f} s, max {max(peer_pass['latencies']):.2f} s)  "
              f"earshot {earshot_pass['wall']:6.2f} s ({len(clips) / earshot_pass['wall'] * 60:5.1f} clips/min, "
              f"median latency {b.median(earshot_pass['latencies']):.2f} s, max {max(earshot_pass['latencies']):.2f} s)  "
              f"earshot/peer throughput {ratio:.2f}x{target}; identical transcripts {same}/{len(clips)}")


if __name__ == "__main__":
    main()
