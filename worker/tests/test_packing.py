"""Packing (earshot_worker/packing.py): short clips of a transcribe_batch decoded side by side in shared
windows, each job getting back what it gets decoded alone. Real models, real recordings cut into clips.

A packed clip's segments carry only text tokens; a clip decoded alone (run_job) carries faster-whisper's
timestamp tokens as well: that is how these tests tell which clips were packed.
"""

from __future__ import annotations

import re
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from faster_whisper.audio import decode_audio

from earshot_worker.packing import Clip, _owner, lay_out
from earshot_worker.transcribe import Job

RATE = 16000
# Cut between words (by base's word timestamps): jfk.flac's three phrases; the English first half of
# multilingual.mp3 in four clips of about 5 s.
JFK_CUTS = [0.0, 2.4, 7.5, 11.0]
LICENSE_CUTS = [0.0, 4.82, 9.64, 14.7, 19.22]
OPTIONS: dict[str, Any] = {"task": "transcribe", "language": "en", "temperature": [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]}


def normalise(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def by_type(messages: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [m for m in messages if m["type"] == kind]


def transcript(messages: list[dict[str, Any]]) -> str:
    return "".join(m["segment"]["text"] for m in by_type(messages, "segment"))


def word_edits(reference: str, hypothesis: str) -> int:
    """Word-level edit distance between two normalised texts."""
    ref, hyp = reference.split(), hypothesis.split()
    row = list(range(len(hyp) + 1))
    for i, word in enumerate(ref, 1):
        previous, row = row, [i] + [0] * len(hyp)
        for j, other in enumerate(hyp, 1):
            row[j] = min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (word != other))
    return row[-1]


def assert_succeeded(messages: list[dict[str, Any]]) -> None:
    assert messages[-1]["type"] == "done", f"the job failed: {messages[-1]!r}"


def write_clip(path: Path, samples: np.ndarray) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return path


@pytest.fixture(scope="module")
def clips(audio_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("clips")
    jfk = decode_audio(str(audio_dir / "jfk.flac"), sampling_rate=RATE)
    license_text = decode_audio(str(audio_dir / "multilingual.mp3"), sampling_rate=RATE)
    result = {}
    for i, (start, end) in enumerate(zip(JFK_CUTS, JFK_CUTS[1:])):
        result[f"jfk{i}"] = write_clip(folder / f"jfk{i}.wav", jfk[int(start * RATE):int(end * RATE)])
    result["hotwords"] = audio_dir / "hotwords.mp3"
    for i, (start, end) in enumerate(zip(LICENSE_CUTS, LICENSE_CUTS[1:])):
        result[f"license{i}"] = write_clip(folder / f"license{i}.wav", license_text[int(start * RATE):int(end * RATE)])
    noise = (np.random.default_rng(7).standard_normal(3 * RATE) * 0.003).astype(np.float32)
    result["noise"] = write_clip(folder / "noise.wav", noise)
    return result


def jobs_for(clips: dict[str, Path], names: list[str], options: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    return [{"job": f"{prefix}-{name}", "audio": str(clips[name]), "options": options} for name in names]


def packed(messages: list[dict[str, Any]], job: str) -> bool:
    """Whether the job's segments came from a packed window (text tokens only, see the module doc)."""
    segments = [m["segment"] for m in by_type(messages, "segment") if m["job"] == job]
    return bool(segments) and all(token < 50257 for segment in segments for token in segment["tokens"])


def of_job(messages: list[dict[str, Any]], job: str) -> list[dict[str, Any]]:
    return [m for m in messages if m["job"] == job]


def test_packed_clips_give_each_job_what_it_gets_alone(packing_worker, clips):
    names = ["jfk0", "jfk1", "jfk2", "hotwords", "license0", "license1", "license2", "license3"]
    alone = {}
    for name in names:
        messages = packing_worker.transcribe(clips[name], OPTIONS)
        assert_succeeded(messages)
        alone[name] = normalise(transcript(messages))
    # Half of the jobs ask for words: they are packed with the others all the same.
    jobs = [{**job, "options": {**OPTIONS, "word_timestamps": True} if i % 2 else OPTIONS}
            for i, job in enumerate(jobs_for(clips, names, OPTIONS, "p"))]
    messages = packing_worker.run_batch(jobs)

    assert not by_type(messages, "error")
    differences = {}
    for i, name in enumerate(names):
        job = f"p-{name}"
        own = of_job(messages, job)
        assert [m["type"] for m in own][0] == "info" and own[-1]["type"] == "done", own
        differences[name] = word_edits(alone[name], normalise(transcript(own)))
        info = own[0]
        assert info["language"] == "en"
        duration = info["duration"]
        segments = [m["segment"] for m in by_type(own, "segment")]
        assert [segment["id"] for segment in segments] == list(range(len(segments)))
        for segment in segments:
            assert 0 <= segment["start"] <= segment["end"] <= duration, (name, segment)
            assert segment["logprobs"] is None
            assert segment["avg_logprob"] < 0
            if i % 2:
                assert segment["words"], (name, segment)
                assert "".join(word["word"] for word in segment["words"]) == segment["text"]
                for word in segment["words"]:
                    assert 0 <= word["start"] <= word["end"] <= duration, (name, word)
            else:
                assert segment["words"] is None
    # The same text after normalisation, but for a word at a clip's edge now and then: a window decodes
    # its clips in one context (and a temperature fallback samples), so an edge word may come out
    # otherwise ("without" as "with that" once in several runs).
    assert sum(differences.values()) <= 2, differences
    # Most of them at least were packed (a clip may fall back to a decode of its own).
    assert sum(packed(messages, f"p-{name}") for name in names) >= len(names) // 2


def test_a_packed_clip_never_carries_words_of_another(packing_worker, clips):
    names = ["jfk0", "license0", "jfk2", "hotwords"]
    messages = packing_worker.run_batch(jobs_for(clips, names, OPTIONS, "own"))
    texts = {name: normalise(transcript(of_job(messages, f"own-{name}"))) for name in names}
    # Words only one of these recordings says.
    own_words = {"jfk0": "americans", "license0": "permission", "jfk2": "country", "hotwords": "folder"}
    for name, text in texts.items():
        for other, word in own_words.items():
            assert (word in text.split()) == (name == other), (name, text)
    assert all(packed(messages, f"own-{name}") for name in names), packing_worker.stderr_tail()


def test_a_clip_of_noise_is_decoded_alone_and_every_clip_gets_what_it_gets_alone(packing_worker, clips):
    names = ["jfk0", "noise", "jfk1", "license1"]
    alone = {}
    for name in names:
        messages = packing_worker.transcribe(clips[name], OPTIONS)
        assert_succeeded(messages)
        alone[name] = normalise(transcript(messages))
    messages = packing_worker.run_batch(jobs_for(clips, names, OPTIONS, "fallback"))
    assert not by_type(messages, "error")
    # Whatever the noise decodes to alone, it gets the same, from a decode of its own. (Word timestamps
    # may stretch a neighbour's first word over the noise: that neighbour is then decoded alone too.)
    assert not packed(messages, "fallback-noise"), packing_worker.stderr_tail()
    for name in names:
        assert normalise(transcript(of_job(messages, f"fallback-{name}"))) == alone[name], name
    assert any(packed(messages, f"fallback-{name}") for name in names), packing_worker.stderr_tail()


def test_a_cancelled_packed_clip_ends_cancelled_and_the_others_finish(packing_worker, clips):
    names = ["jfk0", "jfk1", "license0", "license1"]
    jobs = jobs_for(clips, names, OPTIONS, "cancel")
    packing_worker.send({"type": "transcribe_batch", "jobs": jobs})
    packing_worker.send({"type": "cancel", "job": "cancel-jfk1"})
    messages = []
    pending = {job["job"] for job in jobs}
    while pending:
        message = packing_worker.next_message()
        messages.append(message)
        if message["type"] in ("done", "error"):
            pending.discard(message["job"])
    cancelled = of_job(messages, "cancel-jfk1")
    assert cancelled[-1]["type"] == "error" and cancelled[-1]["code"] == "cancelled"
    for name in ["jfk0", "license0", "license1"]:
        own = of_job(messages, f"cancel-{name}")
        assert own[-1]["type"] == "done", own
        assert transcript(own).strip()


def test_jobs_that_need_a_decode_of_their_own_are_not_packed(packing_worker, clips):
    # No language on a multilingual model, and an initial prompt: both decoded alone (run_batch).
    for options in ({"task": "transcribe"}, {**OPTIONS, "initial_prompt": "Kennedy."}):
        messages = packing_worker.run_batch(jobs_for(clips, ["jfk0", "jfk1"], options, "own-decode"))
        assert not by_type(messages, "error")
        assert not any(packed(messages, f"own-decode-{name}") for name in ["jfk0", "jfk1"])


def test_an_english_only_model_packs_without_a_language(spawn_worker, clips, tiny_model_dir):
    worker, first = spawn_worker(tiny_model_dir, "--pack-clip-seconds", "10")
    assert first["type"] == "ready"
    options = {"task": "transcribe", "temperature": [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]}
    messages = worker.run_batch(jobs_for(clips, ["jfk0", "license0"], options, "en"))
    assert not by_type(messages, "error")
    assert all(packed(messages, f"en-{name}") for name in ["jfk0", "license0"])
    assert "americans" in normalise(transcript(of_job(messages, "en-jfk0"))).split()


# -- the split, without a model --------------------------------------------------------------------


def placed(durations: list[float], gap: float = 0.6) -> list[Clip]:
    clips = [Clip(Job(str(i), "", {}), np.zeros(int(seconds * RATE), dtype=np.float32)) for i, seconds in enumerate(durations)]
    windows = lay_out(clips, gap=gap)
    assert len(windows) == 1
    return clips


def test_clips_are_laid_into_windows_of_at_most_30_seconds_with_gaps():
    clips = [Clip(Job(str(i), "", {}), np.zeros(8 * RATE, dtype=np.float32)) for i in range(5)]
    windows = lay_out(clips)
    assert [len(window) for window in windows] == [3, 2]
    assert [clip.offset for clip in windows[0]] == pytest.approx([0.0, 8.6, 17.2])
    assert all(window[-1].end <= 30.0 for window in windows)


def test_a_word_over_two_clips_or_inside_a_gap_makes_both_sides_unsure():
    clips = placed([3.0, 3.0, 3.0])  # at 0-3, 3.6-6.6, 7.2-10.2
    assert _owner(clips, 1.0, 1.5) == (0, [])
    # Reaching into a gap, mostly in one clip: that clip's.
    assert _owner(clips, 2.6, 3.3) == (0, [])
    assert _owner(clips, 3.2, 4.2) == (1, [])
    # Mostly in the gap, though it overlaps one clip only.
    assert sorted(_owner(clips, 2.9, 3.5)[1]) == [0, 1]
    # A punctuation mark without duration, in its clip.
    assert _owner(clips, 6.6, 6.6) == (1, [])
    # Over the gap into both clips.
    assert _owner(clips, 2.7, 3.9)[1] == [0, 1]
    # Inside the gap between the last two.
    assert sorted(_owner(clips, 6.7, 7.1)[1]) == [1, 2]
    # A tiny gap: a word cannot reach over it without overlapping both sides.
    tight = placed([3.0, 3.0], gap=0.05)
    assert _owner(tight, 2.8, 3.3)[1] == [0, 1]
