"""fit_window inside the worker: the window fitted to some audio, that the encoder is given each window
fitted to its content while the job runs (and Whisper's whole window again after it, however it ended),
and that decodes are bounded. What fitted windows decode to, against whole ones, is in test_worker.py."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import ctranslate2
import numpy as np
import pytest

from earshot_worker.transcribe import (
    FittedWindow,
    Job,
    WindowFitter,
    content_frames,
    fitted_window,
    load_model,
    first_repeat,
    repeats_itself,
    run_job,
)


def test_the_window_is_the_audio_plus_padding_in_whole_seconds_and_bounds_the_tokens():
    assert fitted_window(0.6) == FittedWindow(frames=500, max_new_tokens=18)
    assert fitted_window(3.0) == FittedWindow(frames=500, max_new_tokens=46)
    assert fitted_window(8.2) == FittedWindow(frames=1100, max_new_tokens=109)
    assert fitted_window(28.0) == FittedWindow(frames=3000, max_new_tokens=346)
    assert fitted_window(28.01) is None


class Recorder:
    """Stands in for the model behind the fitter: what encode() and generate() were given. Without a
    model behind it, generate() answers `decoded` (the tokens of each decode, in turn)."""

    def __init__(self, model: Any = None) -> None:
        self._model = model
        self.encoded_frames: list[int] = []
        self.max_lengths: list[int] = []
        self.on_encode: Any = None
        self.decoded: list[list[int]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def encode(self, features: Any, *args: Any, **kwargs: Any) -> Any:
        self.encoded_frames.append(np.asarray(features).shape[-1])
        if self.on_encode:
            self.on_encode()
        return self._model.encode(features, *args, **kwargs) if self._model else None

    def generate(self, features: Any, prompts: list[list[int]], *args: Any, **kwargs: Any) -> Any:
        self.max_lengths.append(kwargs["max_length"])
        if self._model:
            return self._model.generate(features, prompts, *args, **kwargs)
        tokens = self.decoded.pop(0) if self.decoded else [1, 2, 3]
        return [SimpleNamespace(sequences_ids=[tokens], scores=[-0.5], no_speech_prob=0.1)]


def padded_features(seconds: float) -> np.ndarray:
    """Features of `seconds` of sound as faster-whisper encodes them: padded with zeros to 30 s."""
    features = np.zeros((1, 80, 3000), dtype=np.float32)
    frames = round(seconds * 100)
    features[..., :frames] = np.random.default_rng(0).uniform(-1.5, 0.5, (1, 80, frames))
    features[..., frames - 1] = -0.5  # the quietest frame there can be: still not zero
    return features


def test_the_content_of_a_window_is_what_comes_before_its_zero_padding():
    assert content_frames(padded_features(3.0)) == 300
    assert content_frames(padded_features(30.0)) == 3000
    assert content_frames(np.zeros((1, 80, 3000), dtype=np.float32)) == 0


def test_the_fitter_fits_each_window_to_its_content_and_bounds_its_decode_after_the_prompt():
    inner = Recorder()
    fitter = WindowFitter(inner)
    prompt = list(range(40))

    def window(seconds: float) -> None:
        fitter.encode(ctranslate2.StorageView.from_array(padded_features(seconds)), to_cpu=False)
        fitter.generate(None, [prompt], max_length=448)

    fitter.fit(True)
    window(0.6)
    window(11.0)
    fitter.generate(None, [list(range(430))], max_length=448)  # a long prompt: never past the model's 448
    window(29.0)  # more than a fitted window holds: the whole window
    fitter.fit(False)
    window(0.6)

    assert inner.encoded_frames == [500, 1300, 3000, 3000]
    assert inner.max_lengths == [40 + 18, 40 + 142, 448, 448, 448]


def test_a_decode_repeats_itself_when_a_run_of_tokens_comes_again_over_eight_tokens_or_more():
    assert repeats_itself([7] * 8) and not repeats_itself([7] * 7)
    assert repeats_itself([9, 1, 2, 3, 4, 1, 2, 3, 4, 5]) and not repeats_itself([1, 2, 3, 1, 2, 3])
    assert repeats_itself([1, 2] * 4) and not repeats_itself([1, 2] * 3)
    assert not repeats_itself(list(range(300))) and not repeats_itself([])


def test_a_fitted_decode_that_repeats_itself_is_decoded_again_from_the_whole_window():
    inner = Recorder()
    fitter = WindowFitter(inner)
    inner.decoded = [[1, 2, 3, 4, 5] * 2, [1, 2, 3, 4, 5]]
    fitter.fit(True)
    fitter.encode(ctranslate2.StorageView.from_array(padded_features(3.0)), to_cpu=False)
    results = fitter.generate(None, [[0] * 4], max_length=448)
    assert results[0].sequences_ids[0] == [1, 2, 3, 4, 5]
    assert inner.encoded_frames == [500, 3000]
    assert inner.max_lengths == [4 + 46, 448]


def test_the_first_repeat_is_where_its_first_copy_begins_and_how_long_a_copy_is():
    assert first_repeat([5, 6] + [7] * 8) == (2, 1)
    assert first_repeat([9, 1, 2, 3, 4, 1, 2, 3, 4, 5]) == (1, 4)
    assert first_repeat([1, 2, 3, 1, 2, 3]) is None and first_repeat([]) is None
    # Of two repeats, the earlier, whatever their periods.
    assert first_repeat([4, 4, 4, 4, 4, 4, 4, 4, 1, 2, 3, 4, 1, 2, 3, 4]) == (0, 1)
    assert first_repeat([8, 1, 2, 3, 4, 1, 2, 3, 4, 6, 6, 6, 6, 6, 6, 6, 6]) == (1, 4)


def test_a_partial_decode_that_repeats_itself_is_cut_after_the_first_copy_not_decoded_again():
    inner = Recorder()
    fitter = WindowFitter(inner)
    inner.decoded = [[8, 9] + [1, 2, 3, 4, 5] * 2 + [1, 2], [6, 7]]
    fitter.fit(True, cut_repeats=True)
    fitter.encode(ctranslate2.StorageView.from_array(padded_features(3.0)), to_cpu=False)
    results = fitter.generate(None, [[0] * 4], max_length=448)
    assert results[0].sequences_ids[0] == [8, 9, 1, 2, 3, 4, 5]
    assert results[0].no_speech_prob == 0.1
    assert fitter.generate(None, [[0] * 4], max_length=448)[0].sequences_ids[0] == [6, 7]  # nothing to cut
    assert inner.encoded_frames == [500]  # the whole window was never encoded
    fitter.fit(False, cut_repeats=True)  # only fitted windows are cut
    assert not fitter.cut_repeats


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
    assert encoder.encoded_frames[0] == 1300
    assert max(encoder.encoded_frames) == 1300
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


def test_a_partial_job_cuts_repeats_while_it_runs_and_decodes_as_a_fit_window_job_when_none_comes(
        model_and_encoder, audio_dir):
    model, encoder = model_and_encoder
    fitter = model.model._model
    jfk = str(audio_dir / "jfk.flac")
    texts = []
    for options in ({"fit_window": True, "beam_size": 1}, {"fit_window": True, "partial": True, "beam_size": 1}):
        cutting = []
        encoder.on_encode = lambda: cutting.append(fitter.cut_repeats)
        try:
            sent = run(model, jfk, options)
        finally:
            encoder.on_encode = None
        assert sent[-1]["type"] == "done"
        texts.append("".join(message["segment"]["text"] for message in sent if message["type"] == "segment"))
        assert set(cutting) == {options.get("partial", False)}
    assert texts[0] == texts[1] and "ask not what your country" in texts[1].lower()
    assert not fitter.cut_repeats  # the next job is decoded as usual


def test_a_partial_job_without_timestamps_decodes_its_first_window_only(model_and_encoder, audio_dir):
    model, encoder = model_and_encoder
    jfk = str(audio_dir / "jfk.flac")
    # With word timestamps and no timestamp tokens, faster-whisper decodes again what follows the
    # last word: a second window. A partial stops after the first.
    options = {"fit_window": True, "beam_size": 1, "without_timestamps": True, "word_timestamps": True}
    windows = []
    for partial in (False, True):
        encoder.encoded_frames.clear()
        sent = run(model, jfk, {**options, "partial": partial})
        assert sent[-1]["type"] == "done"
        windows.append(len(encoder.encoded_frames))
        segments = [message["segment"] for message in sent if message["type"] == "segment"]
        assert "ask not what your country" in segments[0]["text"].lower()
    assert windows[0] >= 2 and windows[1] == 1


def test_audio_longer_than_28_s_gets_the_whole_window(model_and_encoder, audio_dir):
    model, encoder = model_and_encoder
    encoder.encoded_frames.clear()
    # 60 s of speech: two whole windows, as without fit_window.
    messages = run(model, str(audio_dir / "multilingual.mp3"), {"fit_window": True, "language": "en", "beam_size": 1})
    assert messages[-1]["type"] == "done"
    assert set(encoder.encoded_frames) == {3000}



def test_the_workers_short_audio_setting_fits_short_files_unless_the_job_says_otherwise(
        model_and_encoder, audio_dir, monkeypatch):
    from earshot_worker import transcribe

    model, encoder = model_and_encoder
    jfk = str(audio_dir / "jfk.flac")  # 11 s
    monkeypatch.setattr(transcribe, "fit_short_audio_seconds", 12.0)
    encoder.encoded_frames.clear()
    fitted = run(model, jfk, {"beam_size": 1})
    assert set(encoder.encoded_frames) == {1300}
    # The same words as the whole window gives (tiny.en on JFK).
    encoder.encoded_frames.clear()
    whole = run(model, jfk, {"beam_size": 1, "fit_window": False})
    assert set(encoder.encoded_frames) == {3000}
    text = lambda sent: "".join(m["segment"]["text"] for m in sent if m["type"] == "segment")  # noqa: E731
    assert text(fitted) == text(whole)

    # Longer than the setting: the whole window.
    monkeypatch.setattr(transcribe, "fit_short_audio_seconds", 10.0)
    encoder.encoded_frames.clear()
    run(model, jfk, {"beam_size": 1})
    assert set(encoder.encoded_frames) == {3000}
