"""Limits the worker keeps whatever a file or a client does: a file that lies about its duration is
not decoded past the limit, and a cancelled long job stops within a second or two, batched or not.
"""

from __future__ import annotations

import struct
import time
import wave
from pathlib import Path

import av
import numpy as np
import pytest


def messages_of(worker, job: str, timeout: float = 120.0) -> list[dict]:
    return worker.collect(job, timeout=timeout)


def assert_error(messages: list[dict], code: str) -> dict:
    last = messages[-1]
    assert last["type"] == "error" and last["code"] == code, messages[-3:]
    return last


def peak_rss_kib(pid: int) -> int:
    """The process's peak resident memory so far (VmHWM, Linux)."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))


def _mp3_frames(seconds: float, rate: int = 8000, bitrate: int = 8000) -> bytes:
    """Raw MP3 frames (no container header) of a tone."""
    codec = av.CodecContext.create("libmp3lame", "w")
    codec.sample_rate, codec.layout, codec.format, codec.bit_rate = rate, "mono", "s16p", bitrate
    t = np.arange(int(seconds * rate)) / rate
    pcm = (0.3 * np.sin(2 * np.pi * 220 * t) * 32767).astype(np.int16)
    packets = []
    for i in range(0, pcm.size, 1152):
        frame = av.AudioFrame.from_ndarray(pcm[None, i:i + 1152], format="s16p", layout="mono")
        frame.sample_rate = rate
        packets += [bytes(p) for p in codec.encode(frame)]
    packets += [bytes(p) for p in codec.encode(None)]
    return b"".join(packets)


def lying_mp3(directory: Path, repeats: int = 60) -> Path:
    """An 8 kbit/s MP3 whose Info header says 1 s, followed by `repeats` minutes more of frames (an
    hour by default, 3.6 MB). The header's byte count is made to match the file, so FFmpeg believes it."""
    head = directory / "head.mp3"
    with av.open(str(head), "w", format="mp3") as out:
        stream = out.add_stream("libmp3lame", rate=8000, layout="mono")
        stream.bit_rate = 8000
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 8000), dtype=np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    data = bytearray(head.read_bytes() + _mp3_frames(60) * repeats)
    info = data.index(b"Info")
    data[info + 12:info + 16] = struct.pack(">I", len(data) - data.index(b"\xff\xe3"))
    path = directory / "lying.mp3"
    path.write_bytes(bytes(data))
    with av.open(str(path)) as container:
        assert container.duration is not None and container.duration / av.time_base < 2, "the header must lie"
    return path


def test_a_file_that_lies_about_its_duration_is_refused_without_decoding_it_whole(
        spawn_worker, tiny_model_dir, audio_dir, tmp_path):
    worker, first = spawn_worker(tiny_model_dir, "--max-audio-seconds", "5", "--no-warmup")
    assert first["type"] == "ready"
    # A job within the limit first, so that the baseline holds what a normal job costs.
    assert worker.transcribe(audio_dir / "hotwords.mp3")[-1]["type"] == "done"
    before = peak_rss_kib(worker.process.pid)

    lying = lying_mp3(tmp_path)
    started = time.monotonic()
    error = assert_error(messages_of(worker, worker.submit(lying)), "audio_too_long")
    seconds = time.monotonic() - started
    grown_mib = (peak_rss_kib(worker.process.pid) - before) / 1024
    print(f"lying file ({lying.stat().st_size} bytes, an hour of audio): refused in {seconds:.2f} s, "
          f"peak RSS grew {grown_mib:.1f} MiB")
    assert "5 s" in error["message"]
    # Decoding it whole takes about 6 s here and 600 MB; 5 s of audio at 16 kHz float32 is 320 kB.
    assert grown_mib < 50, f"the peak resident memory grew by {grown_mib:.0f} MiB"
    assert seconds < 3, f"refused after {seconds:.1f} s"
    assert worker.transcribe(audio_dir / "hotwords.mp3")[-1]["type"] == "done"


def long_recording(directory: Path, minutes: int = 4) -> Path:
    """`minutes` of speech: the one-minute test recording, laid end to end, as 16 kHz WAV."""
    from faster_whisper.audio import decode_audio

    audio = np.concatenate([decode_audio(str(Path(__file__).resolve().parents[2] / "test" / "audio" /
                                             "multilingual.mp3"))] * minutes)
    path = directory / "long.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes((audio * 32767).astype(np.int16).tobytes())
    return path


@pytest.mark.parametrize("options", [{"batch_size": 8}, {}], ids=["batched", "sequential"])
def test_a_cancelled_long_job_stops_within_seconds(tiny_worker, tmp_path, options):
    recording = long_recording(tmp_path)
    job = tiny_worker.submit(recording, {"language": "en", **options})
    assert tiny_worker.next_message()["type"] == "info"
    # The decode is under way (the batched pipeline's first batch holds all eight chunks of this file).
    time.sleep(0.5)
    cancelled_at = time.monotonic()
    tiny_worker.send({"type": "cancel", "job": job})
    rest = messages_of(tiny_worker, job)
    seconds = time.monotonic() - cancelled_at
    print(f"{options or 'sequential'}: cancelled after {seconds:.2f} s")
    assert_error(rest, "cancelled")
    # One chunk (or one 30-second window) of tiny.en at most, even on a busy machine; before, a
    # batched job ran its whole batch of eight (about 10 s here).
    assert seconds < 4, f"the job stopped {seconds:.1f} s after the cancel"
