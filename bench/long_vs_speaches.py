"""One long file, one request at a time: earshot (sharded across its workers, and not) against speaches.

Run: node --import tsx scripts/run-python.ts bench/long_vs_speaches.py [--rounds 2] [--format json]

The 321.6 s file of bench/long_file.py; earshot with its defaults (two single-threaded workers; a long
request on an idle server is shared by both, EARSHOT_SHARD_LONG_AUDIO) and with sharding off; speaches
(../shared/peers/speaches/start.sh, its defaults: one process, CTranslate2's default threads, batched
pipeline, no timestamp tokens). Each request is the SDK's default (model whisper-1 for earshot,
Systran/faster-whisper-base for speaches; no language), one at a time, the servers alternating. Prints
each run's wall time, the CPU time the server's processes used, its WER against the reference, and how
busy the rest of the machine was. Not a test.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from openai import OpenAI

import benchlib as b

SPEACHES_MODEL = "Systran/faster-whisper-base"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--format", default="json", help="response_format of every request (default json)")
    parser.add_argument("--no-unsharded", action="store_true", help="skip earshot with sharding off")
    parser.add_argument("--only", action="append", default=[], help="run only this server (repeatable): "
                        "sharded, unsharded, speaches")
    parser.add_argument("--texts", type=Path, help="write each server's last text to this directory")
    args = parser.parse_args()
    b.print_machine("long file, one request: earshot vs speaches")
    with tempfile.TemporaryDirectory(prefix="earshot-bench-") as tmp:
        path, reference, duration = b.long_recording(Path(tmp), 300.0, 1.0)
        print(f"file: {duration:.1f} s, {len(b.normalise(reference))} reference words")
        servers: dict[str, tuple[str, str, int]] = {}
        started: list[b.Earshot | b.Speaches] = []
        try:
            wanted = set(args.only) or {"sharded", "unsharded", "speaches"}
            if args.no_unsharded:
                wanted.discard("unsharded")
            configs: dict[str, dict[str, str]] = {}
            if "sharded" in wanted:
                configs["earshot (sharded)"] = {}
            if "unsharded" in wanted:
                configs["earshot (not sharded)"] = {"EARSHOT_SHARD_LONG_AUDIO": "false"}
            for label, env in configs.items():
                server = b.Earshot(env, label)
                started.append(server)
                server.wait_ready()
                deadline = time.monotonic() + 120
                while server.health()["models"][0].get("workers", 0) < 2 and time.monotonic() < deadline:
                    time.sleep(0.2)
                servers[label] = (server.base_url, "whisper-1", server.gateway_pid())
            if "speaches" in wanted:
                speaches = b.Speaches(Path(tmp))
                started.append(speaches)
                speaches.wait_ready(SPEACHES_MODEL)
                servers["speaches"] = (speaches.base_url, SPEACHES_MODEL, speaches.process.pid)

            def send(label: str, audio: Path) -> str:
                base_url, model, _ = servers[label]
                client = OpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=1800)
                with open(audio, "rb") as file:
                    result = client.audio.transcriptions.create(file=file, model=model, response_format=args.format)
                return result if isinstance(result, str) else result.text

            for label in servers:  # one untimed request each
                send(label, b.AUDIO / "jfk.flac")
            for round_ in range(1, args.rounds + 1):
                for label, (_, _, pid) in servers.items():
                    window = b.CpuWindow()
                    cpu = b.tree_cpu_seconds(pid)
                    text = send(label, path)
                    window.stop()
                    used = b.tree_cpu_seconds(pid) - cpu
                    print(f"round {round_} {label:22} {window.seconds:6.2f} s  cpu {used:6.1f} s  "
                          f"WER {100 * b.wer(reference, text):5.2f} %  (other work {window.other_cores:.2f} cores, "
                          f"load {b.loadavg()})", flush=True)
                    if args.texts:
                        args.texts.mkdir(parents=True, exist_ok=True)
                        (args.texts / f"{label.split()[0]}-{label.split('(')[-1].rstrip(')').replace(' ', '-')}.txt").write_text(text)
        finally:
            for server in started:
                server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
