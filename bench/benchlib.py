"""Shared helpers for the benchmarks in bench/ (not a test; no timing assertions).

Starts earshot (test/support/earshot_server.py, as the tests do), builds test audio from test/audio, computes word
error rates, reads process memory and tells how busy the machine was with other work while a
measurement ran (so that a disturbed run can be spotted and re-run).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import signal
import statistics
import subprocess
import tarfile
import tempfile
import time
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Callable, Iterable

import av
import numpy as np
from faster_whisper.audio import decode_audio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "test" / "support"))
from earshot_server import EarshotServer, environment_without_earshot_settings  # noqa: E402
AUDIO = ROOT / "test" / "audio"
MODELS = ROOT / ".venv" / "earshot-models"
RATE = 16000
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# Reference texts, from test/audio/README.md. MIT_EN is the English part of multilingual.mp3
# (0-29.6 s): the MIT licence's permission paragraph as it is read there, which leaves out
# '(the "Software")' after "documentation files" (no pause for it in the recording).
JFK_TEXT = "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country."
MIT_EN_TEXT = (
    "Permission is hereby granted, free of charge, to any person obtaining a copy of this software and associated "
    "documentation files, to deal in the Software without restriction, including without limitation the rights to "
    "use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies of the Software, and to permit "
    "persons to whom the Software is furnished to do so, subject to the following conditions: The above copyright "
    "notice and this permission notice shall be included in all copies or substantial portions of the Software."
)
# hotwords.mp3: what base and tiny.en both transcribe with hotwords="ComfyUI" (the README gives no full text).
HOTWORDS_TEXT = "Then you go into your ComfyUI folder again in the ComfyUI"
STEREO_LEFT_TEXT = (
    "He began a confused complaint against the wizard, who had vanished behind the curtain on the left."
)
STEREO_RIGHT_TEXT = "The horizon seems extremely distant."
MIT_EN_END_SECONDS = 29.6

# LibriVox clips in pocketsphinx 5.1.1's sdist (test/data/librivox/transcription), Jane Austen, "Sense and
# Sensibility", chapter 1, public domain. The reading says "a more a amiable": kept as transcribed.
LIBRIVOX = {
    "sense_and_sensibility_01_austen_64kb-0870": "and mister john dashwood had then leisure to consider how much there might be prudently in his power to do for them",
    "sense_and_sensibility_01_austen_64kb-0880": "he was not an ill disposed young man",
    "sense_and_sensibility_01_austen_64kb-0890": "unless to be rather cold hearted and rather selfish is to be ill disposed",
    "sense_and_sensibility_01_austen_64kb-0920": "had he married a more a amiable woman he might have been made still more respectable than he was",
    "sense_and_sensibility_01_austen_64kb-0930": "he might even have been made amiable himself",
}


# ---------------------------------------------------------------- audio


def load(name: str) -> np.ndarray:
    """A recording as 16 kHz mono float32; stereo is mixed to mono (the mean of both channels)."""
    left, right = decode_audio(str(AUDIO / name), sampling_rate=RATE, split_stereo=True)
    return ((left + right) / 2).astype(np.float32)


def load_channel(name: str, channel: int) -> np.ndarray:
    return decode_audio(str(AUDIO / name), sampling_rate=RATE, split_stereo=True)[channel].astype(np.float32)


def cut(audio: np.ndarray, start: float, end: float | None = None) -> np.ndarray:
    return audio[int(start * RATE) : None if end is None else int(end * RATE)]


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE), dtype=np.float32)


def write_flac(path: Path, audio: np.ndarray) -> Path:
    """16 kHz mono 16-bit FLAC, written with PyAV."""
    pcm = np.clip(np.round(audio * 32767), -32768, 32767).astype(np.int16).reshape(1, -1)
    with av.open(str(path), "w", format="flac") as container:
        stream = container.add_stream("flac", rate=RATE, layout="mono")
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = RATE
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def load_seconds(path: Path) -> float:
    with av.open(str(path)) as container:
        return float(container.duration or 0) / av.time_base


def short_clips(directory: Path) -> list[tuple[Path, str]]:
    """16 short clips of real speech (1.5-20 s) with their reference texts (approximate for cuts)."""
    jfk = load("jfk.flac")
    multi = load("multilingual.mp3")
    hot = load("hotwords.mp3")
    stereo = load("stereo_diarization.wav")
    left = load_channel("stereo_diarization.wav", 0)
    right = load_channel("stereo_diarization.wav", 1)
    clips = [
        ("jfk", jfk, JFK_TEXT),
        ("jfk_0-5", cut(jfk, 0, 5), ""),
        ("jfk_5-11", cut(jfk, 5), ""),
        ("hotwords", hot, HOTWORDS_TEXT),
        ("stereo_mix", stereo, ""),
        ("stereo_left", left, STEREO_LEFT_TEXT),
        ("stereo_right_0-3", cut(right, 0, 3), STEREO_RIGHT_TEXT),
        ("mit_0-20", cut(multi, 0, 20), ""),
        ("mit_0-10", cut(multi, 0, 10), ""),
        ("mit_10-20", cut(multi, 10, 20), ""),
        ("mit_20-29.6", cut(multi, 20, MIT_EN_END_SECONDS), ""),
        ("german_30-45", cut(multi, 30, 45), ""),
        ("german_45-60", cut(multi, 45), ""),
        ("jfk_0-8", cut(jfk, 0, 8), ""),
        ("hotwords+stereo", np.concatenate([hot, silence(0.5), stereo]), ""),
        ("mit_5-15", cut(multi, 5, 15), ""),
    ]
    return [(write_flac(directory / f"{i:02d}_{name}.flac", audio), text) for i, (name, audio, text) in enumerate(clips)]


# ---------------------------------------------------------------- word error rate

_UNITS = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def _number_words(n: int) -> str:
    if n < 20:
        return _UNITS[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _UNITS[n % 10])
    if n < 1000:
        return _UNITS[n // 100] + " hundred" + ("" if n % 100 == 0 else " " + _number_words(n % 100))
    return " ".join(_UNITS[int(d)] for d in str(n))


def normalise(text: str) -> list[str]:
    """Lower case, numbers spelt out, punctuation dropped (/ and - split words, apostrophes vanish)."""
    text = text.lower().replace("’", "'")
    text = re.sub(r"\d+", lambda m: " " + _number_words(int(m.group())) + " ", text)
    text = re.sub(r"[/\-–—]", " ", text)
    text = text.replace("'", "")
    text = re.sub(r"[^\w\s]", " ", text)
    return text.split()


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(substitutions + deletions + insertions, reference words): word-level Levenshtein distance."""
    ref, hyp = normalise(reference), normalise(hypothesis)
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        current = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h))
        previous = current
    return previous[-1], len(ref)


def wer(reference: str, hypothesis: str) -> float:
    errors, words = word_errors(reference, hypothesis)
    return errors / max(1, words)


def align_times(reference: list[str], words: list[tuple[str, float]]) -> list[float]:
    """A time for each reference word: that of the transcribed word it is aligned with (word-level edit
    distance), interpolated between neighbours for reference words the transcript left out."""
    hyp = [w for w, _ in words]
    rows, cols = len(reference) + 1, len(hyp) + 1
    cost = [[0] * cols for _ in range(rows)]
    for i in range(rows):
        cost[i][0] = i
    for j in range(cols):
        cost[0][j] = j
    for i in range(1, rows):
        for j in range(1, cols):
            cost[i][j] = min(cost[i - 1][j] + 1, cost[i][j - 1] + 1,
                             cost[i - 1][j - 1] + (reference[i - 1] != hyp[j - 1]))
    times: list[float | None] = [None] * len(reference)
    i, j = len(reference), len(hyp)
    while i > 0 and j > 0:
        if cost[i][j] == cost[i - 1][j - 1] + (reference[i - 1] != hyp[j - 1]):
            times[i - 1] = words[j - 1][1]
            i, j = i - 1, j - 1
        elif cost[i][j] == cost[i - 1][j] + 1:
            i -= 1
        else:
            j -= 1
    known = [(k, t) for k, t in enumerate(times) if t is not None]
    if not known:
        return [0.0] * len(reference)
    return [float(np.interp(k, [k0 for k0, _ in known], [t0 for _, t0 in known])) for k in range(len(reference))]


# ---------------------------------------------------------------- the machine and its load


def machine_summary() -> dict[str, str]:
    def run(*command: str) -> str:
        try:
            return subprocess.run(command, capture_output=True, text=True, timeout=30).stdout.strip()
        except Exception as error:  # pragma: no cover - informative only
            return f"({error})"

    free = run("free", "-g").splitlines()
    mem = free[1].split() if len(free) > 1 else ["?", "?"]
    dirty = run("git", "-C", str(ROOT), "status", "--short", "src", "worker")
    return {
        "nproc": str(os.cpu_count()),
        "memory_gib": mem[1],
        "node": run("node", "--version"),
        "uptime": run("uptime"),
        "commit": run("git", "-C", str(ROOT), "rev-parse", "--short", "HEAD")
        + (f" + {len(dirty.splitlines())} uncommitted files in src/ worker/" if dirty else ""),
    }


def print_machine(title: str) -> None:
    info = machine_summary()
    print(f"== {title}")
    print(f"machine: nproc={info['nproc']} memory={info['memory_gib']} GiB node={info['node']} commit={info['commit']}")
    print(f"load at start: {info['uptime']}")


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _busy_ticks() -> int:
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields[:8]) - idle


def _proc_stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()


def descendants(root: int) -> list[int]:
    """root and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _proc_stat(int(entry.name))
            if stat:
                children.setdefault(int(stat[1]), []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def _tree_ticks(root: int) -> int:
    total = 0
    for pid in descendants(root):
        stat = _proc_stat(pid)
        if stat:  # utime stime cutime cstime (fields 14-17 of /proc/PID/stat)
            total += sum(int(x) for x in stat[11:15])
    return total


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot (all cores)."""
    return _busy_ticks() / CLOCK_TICKS


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds used so far by `root` and every process below it (0 for a process that is gone)."""
    return _tree_ticks(root) / CLOCK_TICKS


class CpuWindow:
    """CPU used by the whole machine and by this benchmark's own processes over a measurement.

    `other_cores` is the average number of cores that other work kept busy meanwhile: near 0 for an
    undisturbed run; a run with more than about 0.2 should be repeated.
    """

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.busy0 = _busy_ticks()
        self.own0 = _tree_ticks(os.getpid())
        self.seconds = self.own_cores = self.other_cores = 0.0

    def stop(self) -> "CpuWindow":
        self.seconds = time.perf_counter() - self.start
        busy = (_busy_ticks() - self.busy0) / CLOCK_TICKS
        own = (_tree_ticks(os.getpid()) - self.own0) / CLOCK_TICKS
        self.own_cores = own / self.seconds
        self.other_cores = max(0.0, busy - own) / self.seconds
        return self

    def note(self) -> str:
        return f"own {self.own_cores:.2f} cores, other work {self.other_cores:.2f} cores"


def wait_for_quiet(threshold: float = 0.2, max_wait: float = 600, sample: float = 3.0) -> float:
    """Waits (up to max_wait s) until other work keeps fewer than `threshold` cores busy over `sample` s;
    returns the last reading. Informative: a benchmark still runs after max_wait, and says so.
    BENCH_MAX_WAIT (seconds) overrides max_wait; 0 does not wait at all."""
    max_wait = float(os.environ.get("BENCH_MAX_WAIT", max_wait))
    deadline = time.perf_counter() + max_wait
    while True:
        window = CpuWindow()
        time.sleep(sample)
        other = window.stop().other_cores
        if other < threshold or time.perf_counter() > deadline:
            if other >= threshold:
                print(f"  (machine still busy: other work {other:.2f} cores after waiting {max_wait:.0f} s)")
            return other
        print(f"  (waiting for a quiet machine: other work {other:.2f} cores, load {loadavg()})", flush=True)
        time.sleep(5)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


# ---------------------------------------------------------------- earshot


def earshot_options() -> dict[str, dict[str, str]]:
    """EARSHOT_* options of the code as it is now (src/config.ts): env name -> default, description."""
    script = (
        "const m = await import('./src/config.ts');"
        "console.log(JSON.stringify(m.optionSpecs.map((s) => [s.env, {default: s.default, description: s.description}])));"
    )
    out = subprocess.run(
        ["node", "--import", "tsx", "--input-type=module", "-e", script],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def clean_environment() -> dict[str, str]:
    """This process's environment without EARSHOT_* settings, so that defaults mean defaults."""
    return environment_without_earshot_settings()


class Earshot(EarshotServer):
    """earshot started as the tests start it (test/support/earshot_server.py), in a clean environment
    (no inherited EARSHOT_* settings), with the process lookups benchmarks need."""

    def __init__(self, env: dict[str, str] | None = None, label: str = "earshot", command: list[str] | None = None,
                 new_session: bool = False) -> None:
        self._stderr = open(os.devnull, "w") if os.environ.get("BENCH_QUIET_STDERR") else None
        super().__init__(env, label, command, new_session, base_env=clean_environment(), stderr=self._stderr)

    def gateway_pid(self) -> int:
        """The node process serving (for `npm start`, the node below npm and its shell)."""
        for pid in descendants(self.process.pid):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if any(part.endswith(b"src/main.ts") for part in cmdline) and b"node" in cmdline[0]:
                return pid
        return self.process.pid

    def worker_pids(self) -> list[int]:
        result = []
        for pid in descendants(self.gateway_pid()):
            try:
                if b"earshot_worker" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    result.append(pid)
            except OSError:
                pass
        return result

    def stop(self) -> int | None:
        code = super().stop()
        if self._stderr:
            self._stderr.close()
        return code


def multipart(path: Path, fields: dict[str, str]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n".encode()
        + path.read_bytes()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def which_or_fail(name: str) -> str:
    found = shutil.which(name)
    if not found:
        raise SystemExit(f"{name} is not on PATH")
    return found


def fetch_sdist(requirement: str, sha256: str, into: Path, wanted: Callable[[str], bool]) -> None:
    """Extracts into `into` the files of a PyPI source distribution (`name==version`) whose member names
    `wanted` accepts, downloaded by pip, pinned by hash. pip prepares the sdist's metadata, which can
    take minutes for one with a compiled build."""
    name, version = requirement.split("==")
    into.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        requirements = Path(scratch) / "requirements.txt"
        requirements.write_text(f"{requirement} --hash=sha256:{sha256}\n", encoding="utf-8")
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                        "--require-hashes", "-r", str(requirements), "-d", scratch], check=True)
        (sdist,) = Path(scratch).glob("*.tar.gz")
        with tarfile.open(sdist) as archive:
            members = [m for m in archive.getmembers() if m.isfile() and wanted(m.name)]
            archive.extractall(into, members=members, filter="data")


def wait_http_ok(url: str, process: subprocess.Popen[Any], log_path: Path, label: str, timeout: float = 120) -> None:
    """Waits until GET `url` answers 200; fails if `process` exits first (with the end of its log)."""
    deadline = time.perf_counter() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{label} exited ({process.returncode}): {log_path.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.perf_counter() > deadline:
            raise RuntimeError(f"{label} did not answer {url} in time")
        time.sleep(0.1)


# ---------------------------------------------------------------- speaches, the peer

SPEACHES_START = Path(os.environ.get("SPEACHES_START", ROOT.parent / "shared" / "peers" / "speaches" / "start.sh"))
SPEACHES_HOME = Path(os.environ.get("SPEACHES_HOME", Path.home() / ".cache" / "earshot-peers" / "speaches"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def speaches_serves(model: str) -> bool:
    """Whether speaches' fake Hugging Face cache holds Systran/faster-whisper-<model> (its setup.sh installs base)."""
    return (SPEACHES_HOME / "hf-cache" / f"models--Systran--faster-whisper-{model}" / "refs" / "main").is_file()


class Speaches:
    """The peer, started with its defaults by its own start.sh (which exec's uvicorn: our child is the server)."""

    def __init__(self, directory: Path) -> None:
        if not SPEACHES_START.is_file():
            raise SystemExit(f"no speaches runner at {SPEACHES_START} (SPEACHES_START)")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.base_url = f"{self.url}/v1"
        self.log_path = directory / "speaches.log"
        self.log = open(self.log_path, "w")
        env = {k: v for k, v in clean_environment().items() if not k.startswith("SPEACHES_") and k != "PYTHONPATH"}
        self.process = subprocess.Popen([str(SPEACHES_START), str(self.port)], env=env, stdin=subprocess.DEVNULL,
                                        stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, model: str = "Systran/faster-whisper-base", timeout: float = 300) -> None:
        """Until it answers and has loaded `model` (start.sh loads it once /health answers)."""
        deadline = time.perf_counter() + timeout
        wait_http_ok(f"{self.url}/health", self.process, self.log_path, "speaches", timeout)
        while time.perf_counter() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/api/ps", timeout=5) as response:
                    if model in response.read().decode():
                        return
            except OSError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"speaches did not load {model} in time; see {self.log_path}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:  # it has been seen not to exit on SIGTERM (bench/README.md)
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()


# ---------------------------------------------------------------- passes of requests


def run_pass(send: Any, clips: list[Path], in_flight: int) -> tuple[float, list[str], list[float]]:
    """Sends every clip (send(path) -> text), `in_flight` at a time; returns the wall time, the texts
    in clip order and each request's latency."""
    from concurrent.futures import ThreadPoolExecutor

    def one(path: Path) -> tuple[str, float]:
        started = time.perf_counter()
        text = send(path)
        return text, time.perf_counter() - started

    started = time.perf_counter()
    if in_flight <= 1:
        results = [one(path) for path in clips]
    else:
        with ThreadPoolExecutor(in_flight) as pool:
            results = list(pool.map(one, clips))
    wall = time.perf_counter() - started
    return wall, [text for text, _ in results], [latency for _, latency in results]


def measured_pass(label: str, send: Any, clips: list[Path], in_flight: int, disturbed: float = 0.25,
                  attempts: int = 3) -> dict[str, Any]:
    """run_pass on a quiet machine; a pass during which other work used ≥ `disturbed` cores is repeated."""
    tried: list[dict[str, Any]] = []
    for attempt in range(attempts):
        wait_for_quiet(max_wait=300)
        window = CpuWindow()
        wall, texts, latencies = run_pass(send, clips, in_flight)
        window.stop()
        print(f"  {label:44} {in_flight} in flight: {wall:6.2f} s = {len(clips) / wall * 60:5.1f} clips/min, "
              f"median latency {median(latencies):5.2f} s ({window.note()}, load {loadavg()})", flush=True)
        tried.append({"wall": wall, "texts": texts, "latencies": latencies, "other": window.other_cores})
        if window.other_cores < disturbed:
            return tried[-1]
        if attempt < attempts - 1:
            print("    disturbed: repeating")
    print("    still disturbed: keeping the fastest attempt")
    return min(tried, key=lambda p: p["wall"])


def long_recording(directory: Path, seconds: float, gap: float = 1.0) -> tuple[Path, str, float]:
    """A FLAC of at least `seconds` of real speech: JFK, the English half of multilingual.mp3, the hotwords
    clip and the two-speaker clip mixed to mono, `gap` seconds of silence after each, repeated. Returns
    its path, its reference text and its duration."""
    jfk = load("jfk.flac")
    mit = cut(load("multilingual.mp3"), 0, MIT_EN_END_SECONDS)
    hot = load("hotwords.mp3")
    stereo = load("stereo_diarization.wav")
    unit = [jfk, silence(gap), mit, silence(gap), hot, silence(gap), stereo, silence(gap)]
    unit_text = " ".join([JFK_TEXT, MIT_EN_TEXT, HOTWORDS_TEXT, STEREO_LEFT_TEXT, STEREO_RIGHT_TEXT])
    unit_seconds = sum(part.size for part in unit) / RATE
    repeats = int(np.ceil(seconds / unit_seconds))
    audio = np.concatenate(unit * repeats)
    path = write_flac(directory / "long.flac", audio)
    return path, " ".join([unit_text] * repeats), audio.size / RATE
