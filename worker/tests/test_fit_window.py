"""fit_window inside the worker: the window a job gets, that the encoder is given only that window
while the job runs (and Whisper's whole window again after it, however it ended), and that decodes
are bounded. What the fitted window decodes to, against the whole window, is in test_worker.py."""

from __future__ import annotations

from typing import Any

import ctranslate2
import numpy as np
import pytest

from earshot_worker.transcribe import FittedWindow, Job, WindowFitter, fitted_window, load_model, run_job


def test_the_window_is_the_audio_plus_padding_in_whole_seconds_and_bounds_the_tokens():
    assert fitted_window(0.6) == FittedWindow(frames=500, max_new_tokens=18)
    assert fitted_window(3.0) == FittedWindow(frames=500, max_new_tokens=46)
    assert fitted_window(8.2) == FittedWindow(frames=1100, max_new_tokens=109)
    assert fitted_window(28.0) == FittedWindow(frames=3000, max_new_tokens=346)
    assert fitted_window(28.01) is None


class Recorder:
    """Stands in for the model behind the fitter: what encode() and generate() were given."""

    def __init__(self, model: Any = None) -> None:
        self._model = model
        self.encoded_frames: list[int] = []
        self.max_lengths: list[int] = []
        self.on_encode: Any = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def encode(self, features: Any, *args: Any, **kwargs: Any) -> Any:
        self.encoded_frames.append(np.asarray(features).shape[-1])
        if self.on_encode:
            self.on_encode()
        return self._model.encode(features, *args, **kwargs) if self._model else None

    def generate(self, features: Any, prompts: list[list[int]], *args: Any, **kwargs: Any) -> Any:
        self.max_lengths.append(kwargs["max_length"])
        return self._model.generate(features, prompts, *args, **kwargs) if self._model else None


def test_the_fitter_trims_the_features_and_bounds_the_decode_after_the_prompt():
    inner = Recorder()
    fitter = WindowFitter(inner)
    features = ctranslate2.StorageView.from_array(np.zeros((1, 80, 3000), dtype=np.float32))
    prompt = list(range(40))

    fitter.fit(FittedWindow(frames=500, max_new_tokens=18))
    fitter.encode(features, to_cpu=False)
    fitter.generate(None, [prompt], max_length=448)
    fitter.generate(None, [list(range(430))], max_length=448)  # a long prompt: never past the model's 448
    fitter.fit(None)
    fitter.encode(features, to_cpu=False)
    fitter.generate(None, [prompt], max_length=448)

    assert inner.encoded_frames == [500, 3000]
    assert inner.max_lengths == [58, 448, 448]


@pytest.fixture(scope="module")
def model_and_encoder(tiny_model_dir) -> tuple[Any, Recorder]:
    """The tiny.en model as the worker loads it, with a Recorder behind its WindowFitter."""
    model = load_model(str(tiny_model_dir), "cpu", "int8", 1, None, True)
    fitter = model.model._model  # Interruptible -> WindowFitter
    assert isinstance(fitter, WindowFitter)
    recorder = Recorder(fitter._model)
    fitter._model = recorder
    return model, recorder


def run(model: Any, audio: str, options: dict[str, Any], job: Job | None = None) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []
    run_job(model, job or Job(id="j", audio=audio, options=options), sent.append)
    return sent


def test_a_fit_window_job_encodes_its_window_and_the_next_job_the_whole_one(model_and_encoder, audio_dir):
    model, encoder = model_and_encoder
    jfk = str(audio_dir / "jfk.flac")  # 11 s: a window of 13 s

    encoder.encoded_frames.clear()
    assert run(model, jfk, {"fit_window": True, "beam_size": 1})[-1]["type"] == "done"
    assert set(encoder.encoded_frames) == {1300}
    assert max(encoder.max_lengths) < 448

    # Cancelled while it encodes its first window: the job ends, and its window with it.
    cancelled = Job(id="c", audio=jfk, options={"fit_window": True})
    encoder.on_encode = cancelled.cancelled.set
    try:
        assert run(model, jfk, {}, cancelled)[-1]["code"] == "cancelled"
    finally:
        encoder.on_encode = None

    encoder.encoded_frames.clear()
    encoder.max_lengths.clear()
    assert run(model, jfk, {"beam_size": 1})[-1]["type"] == "done"
    assert set(encoder.encoded_frames) == {3000}
    assert set(encoder.max_lengths) == {448}


def test_audio_longer_than_28_s_gets_the_whole_window(model_and_encoder, audio_dir):
    model, encoder = model_and_encoder
    encoder.encoded_frames.clear()
    # 60 s of speech: two whole windows, as without fit_window.
    messages = run(model, str(audio_dir / "multilingual.mp3"), {"fit_window": True, "language": "en", "beam_size": 1})
    assert messages[-1]["type"] == "done"
    assert set(encoder.encoded_frames) == {3000}


def test_a_decode_that_loops_is_recognised_and_speech_is_not() -> None:
    from earshot_worker.transcribe import repeats_itself
    # Loops seen from fitted windows on real recordings (G.711 hotwords.mp3; a 0.6 s clip of JFK).
    assert repeats_itself(" Then you go into your confu i folder again into confu i folder again into confu i folder")
    assert repeats_itself(" N N N N N N N N")
    assert repeats_itself(
        " Then you go into your confu i folder again in the confu i folder."
        " Then you go into your confu i folder again in the confu i folder."
    )
    # Real speech: JFK's repeated words are not a loop, nor is a short word said twice.
    assert not repeats_itself(
        " And so my fellow Americans, ask not what your country can do for you,"
        " ask what you can do for your country."
    )
    assert not repeats_itself(" No, no, I said the the other one.")
    assert not repeats_itself("")
