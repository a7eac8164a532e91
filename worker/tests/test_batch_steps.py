"""A batched job's model calls in steps (transcribe.BatchSteps): on a CPU its chunks are encoded one at a
time and decoded a few at a time, so that a cancel is taken between steps, and the segments are what
faster-whisper's own batched pipeline gives for the whole batch at once."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest
from faster_whisper import BatchedInferencePipeline

from earshot_worker import transcribe
from earshot_worker.transcribe import CancellableBatchedPipeline, JobError, decode, load_model

from test_worker import long_recording


class Calls:
    """Stands behind the Interruptible and counts the chunks of each call into the model."""

    def __init__(self, model: Any) -> None:
        self._model = model
        self.encoded: list[int] = []
        self.generated: list[int] = []
        self.on_generate: Any = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def encode(self, features: Any, *args: Any, **kwargs: Any) -> Any:
        self.encoded.append(features.shape[0])
        return self._model.encode(features, *args, **kwargs)

    def generate(self, features: Any, prompts: Any, *args: Any, **kwargs: Any) -> Any:
        self.generated.append(len(prompts))
        if self.on_generate:
            self.on_generate()
        return self._model.generate(features, prompts, *args, **kwargs)


@pytest.fixture(scope="module")
def model_and_calls(tiny_model_dir) -> tuple[Any, Calls]:
    model = load_model(str(tiny_model_dir), "cpu", "int8", 1, None, True)
    calls = Calls(model.model._model)
    model.model._model = calls  # Interruptible -> Calls -> WindowFitter
    return model, calls


@pytest.fixture(scope="module")
def audio(audio_dir, tmp_path_factory) -> Any:
    return decode(str(long_recording(audio_dir, tmp_path_factory.mktemp("steps") / "long.wav")), float("inf"))


def segments(pipeline: Any, audio: Any) -> list[tuple]:
    found, _ = pipeline.transcribe(audio, batch_size=8, without_timestamps=False, language="en")
    return [(s.text, s.start, s.end, s.seek, s.tokens) for s in found]


@pytest.mark.parametrize("seconds", [0.0, 1000.0], ids=["one chunk a step", "the rest in one step"])
def test_steps_give_what_the_whole_batch_gives(model_and_calls, audio, monkeypatch, seconds):
    model, calls = model_and_calls
    whole = segments(BatchedInferencePipeline(model), audio)
    calls.encoded.clear()
    calls.generated.clear()
    monkeypatch.setattr(transcribe, "CANCEL_CHECK_SECONDS", seconds)
    stepped = segments(CancellableBatchedPipeline(model, threading.Event()), audio)
    assert stepped == whole
    chunks = len({segment[3] for segment in whole})
    assert chunks >= 3, "the recording gives several chunks"
    assert calls.encoded == [1] * chunks
    # The first step is one chunk (no pace yet); then as many as the pace allows.
    assert calls.generated == ([1] * chunks if seconds == 0 else [1, chunks - 1])


def test_a_cancel_is_taken_between_steps(model_and_calls, audio, monkeypatch):
    model, calls = model_and_calls
    monkeypatch.setattr(transcribe, "CANCEL_CHECK_SECONDS", 0.0)
    cancelled = threading.Event()
    calls.generated.clear()
    calls.on_generate = cancelled.set  # the cancel comes while the first step is decoded
    model.model.cancelled = cancelled
    try:
        with pytest.raises(JobError, match="cancelled"):
            segments(CancellableBatchedPipeline(model, cancelled), audio)
    finally:
        calls.on_generate = None
        model.model.cancelled = None
    assert calls.generated == [1]
    assert model.model.batch_steps is None, "a cancelled batched job leaves the steps off"


def test_after_a_batched_job_the_steps_are_off(model_and_calls, audio, monkeypatch):
    model, calls = model_and_calls
    monkeypatch.setattr(transcribe, "CANCEL_CHECK_SECONDS", 1000.0)
    segments(CancellableBatchedPipeline(model, threading.Event()), audio)
    assert model.model.batch_steps is None


def test_steps_grow_when_a_batch_is_cheaper_per_chunk_than_one_alone(monkeypatch):
    # As on two threads: one chunk alone takes 1.7 s, each more chunk in the same decode 0.3 s.
    clock = [0.0]
    monkeypatch.setattr(transcribe.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(transcribe, "CANCEL_CHECK_SECONDS", 3.0)
    sizes: list[int] = []

    def decode(part: Any, at: slice) -> list[int]:
        sizes.append(len(part))
        clock[0] += 1.7 + 0.3 * (len(part) - 1)
        return list(range(at.start, at.stop))

    steps = transcribe.BatchSteps()
    assert steps.run(np.zeros((12, 1)), lambda: None, decode) == list(range(12))
    # Sized by the pace of one chunk alone (1.7 s) every step would be one chunk; none takes over 3 s.
    assert sizes == [1, 2, 3, 2, 3, 1]
    assert all(1.7 + 0.3 * (size - 1) <= 3.0 for size in sizes)


def test_a_shard_encodes_chunk_by_chunk_and_decodes_its_chunks_in_one_call(model_and_calls, audio, monkeypatch):
    model, calls = model_and_calls
    monkeypatch.setattr(transcribe, "CANCEL_CHECK_SECONDS", 0.0)  # would be one chunk a step unsharded
    whole = segments(BatchedInferencePipeline(model), audio)
    calls.encoded.clear()
    calls.generated.clear()
    # One shard of one: all the chunks (shard_chunks), as the shard of a job shared by one worker would.
    sharded = segments(CancellableBatchedPipeline(model, threading.Event(), transcribe.Shard(0, 1)), audio)
    assert sharded == whole
    chunks = len({segment[3] for segment in whole})
    assert calls.encoded == [1] * chunks
    # Decoded at once, which costs less CPU than steps; the gateway replaces a cancelled shard's worker.
    assert calls.generated == [chunks]
