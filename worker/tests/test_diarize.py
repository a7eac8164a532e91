"""Diarization (earshot_worker/diarize.py) through the real worker, on real voices: the two speakers of
stereo_diarization.wav (one per channel) put one after the other, and JFK alone."""

from __future__ import annotations

import io
import pickle
import wave
from pathlib import Path

import numpy as np
import pytest
from faster_whisper.audio import decode_audio

from earshot_worker import speaker_model
from earshot_worker.diarize import Diarization, SpeakerCount, Turn, agglomerate, label_segment

RATE = 16000
LEFT_TEXT = "confused complaint against wizard"
RIGHT_TEXT = "horizon seems extremely distant"  # "the" is in both


def write_wav(path: Path, audio: np.ndarray) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
    return path


@pytest.fixture(scope="module")
def voices(tmp_path_factory: pytest.TempPathFactory, audio_dir: Path) -> dict[str, Path]:
    """The left voice (0–5 s), a pause, then the right voice (its 2.4 s of speech): and each voice alone."""
    left, right = decode_audio(str(audio_dir / "stereo_diarization.wav"), split_stereo=True)
    right = right[int(0.2 * RATE):int(2.8 * RATE)]
    directory = tmp_path_factory.mktemp("voices")
    pause = np.zeros(int(0.8 * RATE), dtype=np.float32)
    return {
        "conversation": write_wav(directory / "conversation.wav", np.concatenate([left, pause, right, pause])),
        "left": write_wav(directory / "left.wav", left),
        "right": write_wav(directory / "right.wav", right),
        "short": write_wav(directory / "short.wav", right[:RATE]),
    }


def segments(messages: list[dict]) -> list[dict]:
    assert messages[-1]["type"] == "done", messages[-1]
    return [m["segment"] for m in messages if m["type"] == "segment"]


def speaker_of(found: list[dict], text: str) -> set[str]:
    """The speakers of the words of `text` (as lower-case words without punctuation)."""
    wanted = set(text.split())
    return {w["speaker"] for s in found for w in s["words"] if w["word"].strip(" ,.").lower() in wanted}


def test_one_voice_is_one_speaker(tiny_worker, audio_dir):
    found = segments(tiny_worker.transcribe(audio_dir / "jfk.flac", {"diarize": {}}))
    assert found
    assert {s["speaker"] for s in found} == {"A"}
    assert all(w["speaker"] == "A" for s in found for w in s["words"])


def test_two_voices_are_two_speakers_each_word_with_its_own(tiny_worker, voices):
    found = segments(tiny_worker.transcribe(voices["conversation"], {"diarize": {}}))
    assert speaker_of(found, LEFT_TEXT) == {"A"}
    assert speaker_of(found, RIGHT_TEXT) == {"B"}


def test_num_speakers_one_gives_one_speaker(tiny_worker, voices):
    found = segments(tiny_worker.transcribe(voices["conversation"], {"diarize": {"num_speakers": 1}}))
    assert {w["speaker"] for s in found for w in s["words"]} == {"A"}


def test_known_speakers_are_named_by_their_references(tiny_worker, voices):
    known = [{"name": "horizon", "audio": str(voices["right"])}, {"name": "wizard", "audio": str(voices["left"])}]
    found = segments(tiny_worker.transcribe(voices["conversation"], {"diarize": {"known_speakers": known}}))
    assert speaker_of(found, LEFT_TEXT) == {"wizard"}
    assert speaker_of(found, RIGHT_TEXT) == {"horizon"}


@pytest.mark.parametrize(("reference", "says"), [("short", "lasts 1.0 s"), ("text", "no audio track")])
def test_a_bad_reference_is_invalid_speaker_reference_naming_it(tiny_worker, voices, tmp_path, reference, says):
    text = tmp_path / "notes.txt"
    text.write_text("not audio\n" * 50)
    clip = text if reference == "text" else voices[reference]
    known = [{"name": "wizard", "audio": str(voices["left"])}, {"name": "x", "audio": str(clip)}]
    messages = tiny_worker.transcribe(voices["conversation"], {"diarize": {"known_speakers": known}})
    assert messages[-1]["type"] == "error" and messages[-1]["code"] == "invalid_speaker_reference", messages[-1]
    assert "known_speaker_references[1]" in messages[-1]["message"] and says in messages[-1]["message"]
    assert str(tmp_path) not in messages[-1]["message"]


def test_agglomeration_follows_the_threshold_and_the_counts():
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((3, 16))
    points = np.concatenate([centre + 0.05 * rng.standard_normal((10, 16)) for centre in centres])
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    weights = np.ones(len(points))
    labels = agglomerate(points, SpeakerCount(), weights)
    assert len(set(labels)) == 3
    assert all(len(set(labels[i * 10:(i + 1) * 10])) == 1 for i in range(3))
    assert len(set(agglomerate(points, SpeakerCount(exact=2), weights))) == 2
    assert len(set(agglomerate(points, SpeakerCount(maximum=2), weights))) == 2
    assert len(set(agglomerate(points, SpeakerCount(minimum=5), weights))) == 5


def test_a_segment_takes_the_speaker_of_most_of_its_words():
    diarization = Diarization([Turn(0.0, 1.0, "A"), Turn(1.2, 4.0, "B")])
    segment = {"start": 0.0, "end": 4.0, "words": [
        {"word": " one", "start": 0.1, "end": 0.6, "probability": 1.0},
        {"word": " two", "start": 1.3, "end": 2.0, "probability": 1.0},
        {"word": " three", "start": 2.1, "end": 3.9, "probability": 1.0},
    ]}
    label_segment(segment, diarization)  # type: ignore[arg-type]
    assert [w["speaker"] for w in segment["words"]] == ["A", "B", "B"]
    assert segment["speaker"] == "B"


def test_the_checkpoint_reader_refuses_anything_but_tensors():
    class Evil:
        def __reduce__(self):
            return (print, ("ran",))

    file = io.BytesIO()
    for header in (speaker_model._MAGIC, 1001, {}):
        pickle.dump(header, file, protocol=2)
    pickle.dump({"model_state": Evil()}, file, protocol=2)
    file.seek(0)
    with pytest.raises(pickle.UnpicklingError, match="print, which this reader does not allow"):
        speaker_model.read_legacy_checkpoint(file)
