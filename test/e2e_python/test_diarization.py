"""Diarization through the real server with the Python SDK: the two voices of stereo_diarization.wav one
after the other, labelled A/B, named by reference clips, streamed as transcript.text.segment events."""

from __future__ import annotations

import base64
import io
import wave
from pathlib import Path

import numpy as np
import pytest
from faster_whisper.audio import decode_audio
from openai import BadRequestError, OpenAI

RATE = 16000


def wav_bytes(audio: np.ndarray) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(2)
        file.setframerate(RATE)
        file.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
    return out.getvalue()


@pytest.fixture(scope="module")
def voices(audio_dir: Path) -> dict[str, bytes]:
    left, right = decode_audio(str(audio_dir / "stereo_diarization.wav"), split_stereo=True)
    right = right[int(0.2 * RATE):int(2.8 * RATE)]
    pause = np.zeros(int(0.8 * RATE), dtype=np.float32)
    return {"conversation": wav_bytes(np.concatenate([left, pause, right, pause])),
            "left": wav_bytes(left), "right": wav_bytes(right)}


def data_url(audio: bytes) -> str:
    return "data:audio/wav;base64," + base64.b64encode(audio).decode()


def test_diarized_json_labels_each_voice(client: OpenAI, voices):
    result = client.audio.transcriptions.create(file=("talk.wav", voices["conversation"]), model="whisper-1",
                                                response_format="diarized_json")
    assert result.task == "transcribe" and result.duration > 8
    assert [(s.id, s.speaker, s.type) for s in result.segments] == [
        ("seg_0", "A", "transcript.text.segment"), ("seg_1", "B", "transcript.text.segment")]
    assert "wizard" in result.segments[0].text and "horizon" in result.segments[1].text
    assert result.text == "".join(s.text for s in result.segments).strip()


def test_known_speakers_get_their_names(client: OpenAI, voices):
    result = client.audio.transcriptions.create(
        file=("talk.wav", voices["conversation"]), model="whisper-1", response_format="diarized_json",
        extra_body={"known_speaker_names": ["wizard", "horizon"],
                    "known_speaker_references": [data_url(voices["left"]), data_url(voices["right"])]})
    assert [s.speaker for s in result.segments] == ["wizard", "horizon"]


def test_stream_sends_segment_events_then_done(client: OpenAI, voices):
    events = list(client.audio.transcriptions.create(file=("talk.wav", voices["conversation"]), model="whisper-1",
                                                     response_format="diarized_json", stream=True))
    assert [e.type for e in events] == ["transcript.text.segment", "transcript.text.segment", "transcript.text.done"]
    assert [e.speaker for e in events[:2]] == ["A", "B"]


def test_one_speaker_and_vtt_voice_labels(client: OpenAI, audio_dir: Path):
    with open(audio_dir / "jfk.flac", "rb") as audio:
        vtt = client.audio.transcriptions.create(file=audio, model="whisper-1", response_format="vtt",
                                                 extra_body={"speaker_labels": "true"})
    cues = [line for line in str(vtt).splitlines() if line.startswith("<v ")]
    assert cues and all(line.startswith("<v A>") for line in cues)


@pytest.mark.parametrize(("reference", "says"), [
    ("not a data url", "not a base64 data URL"),
    (data_url(b"hello there, not audio"), "could not be decoded"),
    (data_url(wav_bytes(np.zeros(RATE // 2, dtype=np.float32))), "must last 2 to 10 seconds"),
])
def test_a_bad_reference_is_a_400_naming_the_field(client: OpenAI, voices, reference, says):
    with pytest.raises(BadRequestError) as raised:
        client.audio.transcriptions.create(file=("talk.wav", voices["conversation"]), model="whisper-1",
                                           response_format="diarized_json",
                                           extra_body={"known_speaker_names": ["a"], "known_speaker_references": [reference]})
    assert raised.value.body["param"] == "known_speaker_references"
    assert says in raised.value.body["message"]


def test_names_without_references_are_a_400(client: OpenAI, voices):
    with pytest.raises(BadRequestError) as raised:
        client.audio.transcriptions.create(file=("talk.wav", voices["conversation"]), model="whisper-1",
                                           response_format="diarized_json", extra_body={"known_speaker_names": ["a"]})
    assert raised.value.body["param"] == "known_speaker_references"
