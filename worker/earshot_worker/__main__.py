"""Entry point: python -m earshot_worker --model PATH_OR_ID [options].

Loads one model, says it is ready, then runs the jobs that arrive on stdin one at a time. A reader
thread keeps listening while a job runs, so that a cancel message takes effect at the next model call.
The worker exits when stdin closes, so it never outlives the gateway that started it.

SIGINT and SIGTERM are ignored: the gateway owns the shutdown (a shutdown message, then SIGKILL), and
a signal sent to its whole process group (Ctrl-C, systemd's KillMode=control-group, `tini -g`) must
not end the jobs it still lets finish. Should the gateway itself die, the worker gets SIGKILL (Linux's
parent-death signal) instead of decoding on for nobody.
"""

from __future__ import annotations

import signal

# First of all, before the slow imports below: a group signal can come at any time.
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)

import argparse
import json
import logging
import queue
import sys
import threading
import time
from typing import Any, NoReturn, cast

from . import contract
from . import transcribe
from .batching import run_batch
from .packing import packs_all, run_packed
from .transcribe import Job, LongAudioBatching, load_model, run_job, warm_up
from .messages import ProtocolWriter, TranscribeOptions


class BadArguments(Exception):
    pass


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # Report through the protocol (a fatal message) rather than argparse's exit(2) with text only.
        raise BadArguments(message)


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = _ArgumentParser(prog="earshot_worker")
    parser.add_argument("--model", required=True, help="model directory or Hugging Face repo id")
    parser.add_argument("--name", help="the model's name, for messages and logs")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--compute-type", default="int8")
    parser.add_argument("--cpu-threads", type=int, default=0)
    parser.add_argument("--download-root", default=None)
    parser.add_argument("--local-files-only", action="store_true")
    parser.add_argument("--no-warmup", action="store_true")
    parser.add_argument("--max-audio-seconds", type=float, default=float("inf"))
    parser.add_argument("--long-audio-batch-size", type=int, default=0,
                        help="decode long audio with the batched pipeline, this many chunks at a time (0: never)")
    parser.add_argument("--long-audio-seconds", type=float, default=60.0,
                        help="audio at least this long counts as long")
    parser.add_argument("--fit-short-audio-seconds", type=float, default=0.0,
                        help="decode audio at most this long with fitted windows unless a job says otherwise (0: never)")
    parser.add_argument("--pack-clip-seconds", type=float, default=0.0,
                        help="pack the clips of a transcribe_batch up to this long into shared windows (0: never)")
    parser.add_argument("--diarization-model", default=None,
                        help="speaker embedding model directory for diarization (default: the bundled one)")
    parser.add_argument("--log-level", default="INFO", type=str.upper,
                        choices=["CRITICAL", "FATAL", "ERROR", "WARNING", "WARN", "INFO", "DEBUG", "NOTSET"])
    return parser.parse_args(argv)


class Worker:
    def __init__(self, writer: ProtocolWriter, max_audio_seconds: float = float("inf"),
                 long_audio: LongAudioBatching = LongAudioBatching(), pack_clip_seconds: float = 0.0) -> None:
        self.writer = writer
        self.max_audio_seconds = max_audio_seconds
        self.long_audio = long_audio
        # With packing on, the gateway sends packable jobs as a transcribe_batch (packing.py).
        self.pack_clip_seconds = pack_clip_seconds
        # Each item is one job, or the jobs of one transcribe_batch message; None ends the loop.
        self.jobs: queue.Queue[list[Job] | None] = queue.Queue()
        self.known: dict[str, Job] = {}
        self.lock = threading.Lock()

    def read_commands(self) -> None:
        """Reader thread: queue jobs, flag cancellations, pass on relayed languages, stop on shutdown or
        end of input.

        Each command is validated against the contract (contract.schema.json). A malformed one is
        ignored with a log line, except that a job with an id is answered: bad_message for a message
        the contract refuses, invalid_options (when it runs) for options it refuses."""
        try:
            for raw in sys.stdin.buffer:
                try:
                    message: object = json.loads(raw)
                except ValueError:
                    logging.error("ignoring a malformed message: %r", raw[:200])
                    continue
                kind = message.get("type") if isinstance(message, dict) else None
                if not isinstance(message, dict) or kind not in contract.COMMAND_TYPES:
                    logging.error("ignoring a message of unknown type: %r", raw[:200])
                    continue
                if kind == "transcribe":
                    job = self.job_from({name: value for name, value in message.items() if name != "type"})
                    batch = [job] if job else []
                elif kind == "transcribe_batch":
                    # The batch itself must be a list of jobs; each job is then checked on its own.
                    refused = [error for error in contract.errors("TranscribeBatchCommand", message)
                               if len(error.absolute_path) < 2]
                    if refused:
                        logging.error("ignoring a transcribe_batch message: %s", contract.describe(refused))
                        continue
                    batch = [job for entry in message["jobs"] if (job := self.job_from(entry))]
                else:
                    schema = {"cancel": "CancelCommand", "language": "LanguageCommand"}.get(str(kind), "ShutdownCommand")
                    refused = contract.errors(schema, message)
                    if refused:
                        logging.error("ignoring a %s message: %s", kind, contract.describe(refused))
                        continue
                    if kind == "shutdown":
                        break
                    with self.lock:
                        known = self.known.get(message["job"])
                    # A job this worker no longer (or never) has is ignored: it finished, or failed.
                    if known is not None and kind == "cancel":
                        known.cancelled.set()
                    elif known is not None and kind == "language":
                        known.relayed_language.give(message["language"])
                    continue
                if batch:
                    with self.lock:
                        self.known.update((job.id, job) for job in batch)
                    self.jobs.put(batch)
        finally:
            # Whatever happens to this thread, the serving loop must learn that no more jobs come.
            self.jobs.put(None)

    def job_from(self, entry: object) -> Job | None:
        """The job one entry asks for, or None (answered with bad_message if it has an id)."""
        options = entry.get("options") if isinstance(entry, dict) else None
        # What the options say is checked when the job runs (invalid_options, as faster-whisper's own refusals).
        refused = [error for error in contract.errors("JobSpec", entry)
                   if not (isinstance(options, dict) and list(error.absolute_path)[:1] == ["options"])]
        job_id = entry.get("job") if isinstance(entry, dict) else None
        if not isinstance(job_id, str):
            logging.error("ignoring a transcribe message without a job id: %r", entry)
            return None
        if refused or not isinstance(entry, dict) or not isinstance(options, dict):
            self.writer.send({"type": "error", "job": job_id, "code": "bad_message",
                              "message": f"the contract refuses this job: {contract.describe(refused)}"})
            return None
        # The options are checked against the contract when the job runs (check_options).
        return Job(id=job_id, audio=entry["audio"], options=cast(TranscribeOptions, options))

    def serve(self, model: Any) -> None:
        while (batch := self.jobs.get()) is not None:
            try:
                if len(batch) == 1:
                    run_job(model, batch[0], self.writer.send, self.max_audio_seconds, self.long_audio)
                elif self.pack_clip_seconds > 0 and packs_all(model, batch):
                    run_packed(model, batch, self.writer.send, self.max_audio_seconds, self.long_audio,
                               self.pack_clip_seconds)
                else:
                    run_batch(model, batch, self.writer.send, self.max_audio_seconds, self.long_audio)
            finally:
                with self.lock:
                    for job in batch:
                        self.known.pop(job.id, None)


def die_with_parent() -> None:
    """Linux: SIGKILL this process when its parent dies (a gateway killed with SIGKILL cannot stop it)."""
    try:
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except Exception:  # not Linux: the worker still exits when stdin closes
        pass


def main(argv: list[str]) -> int:
    die_with_parent()
    writer = ProtocolWriter.take_over_stdout()
    try:
        args = parse_arguments(argv)
    except BadArguments as error:
        writer.send({"type": "fatal", "code": "bad_arguments", "message": f"earshot_worker: {error}"})
        return 2
    logging.basicConfig(stream=sys.stderr, level=args.log_level, format="%(levelname)s %(name)s: %(message)s")
    name = args.name or args.model
    transcribe.fit_short_audio_seconds = args.fit_short_audio_seconds
    if args.diarization_model:
        from pathlib import Path
        from . import diarize
        diarize.model_directory = Path(args.diarization_model)
    started = time.monotonic()
    try:
        model = load_model(args.model, args.device, args.compute_type, args.cpu_threads,
                           args.download_root, args.local_files_only)
        if not args.no_warmup:
            warm_up(model)
    except Exception as error:
        writer.send({"type": "fatal", "code": "model_load_failed", "message": f"could not load model {name!r}: {error}"})
        return 3
    writer.send({"type": "ready", "model": name, "load_seconds": time.monotonic() - started})
    worker = Worker(writer, args.max_audio_seconds,
                    LongAudioBatching(args.long_audio_batch_size, args.long_audio_seconds), args.pack_clip_seconds)
    threading.Thread(target=worker.read_commands, name="stdin-reader", daemon=True).start()
    worker.serve(model)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
