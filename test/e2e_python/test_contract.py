"""OpenAI contract conformance: the official Python SDK, used as its documentation shows, against
the session's real earshot server (conftest.py).

Streaming, logprobs, translations in every format, the models API, chunking_strategy,
faster-whisper's knobs through extra_body, and OpenAI's exact error shapes.
"""

from __future__ import annotations

import io
import json
import math
import struct
import time
import wave
from typing import Any, BinaryIO

import openai
import pytest
from earshot_e2e import (
    JFK_TEXT,
    LICENCE_OPENING,
    MODEL,
    assert_api_error,
    normalise,
    srt_cues,
    vtt_cues,
)
from openai import OpenAI
from openai.types.audio import (
    Transcription,
    TranscriptionTextDeltaEvent,
    TranscriptionTextDoneEvent,
    Translation,
    TranslationVerbose,
)

MULTILINGUAL_DURATION_S = 59.9
CANCELLED_LOG = "client disconnected; job cancelled"


def _delta_and_done(events: list[Any]) -> tuple[list[TranscriptionTextDeltaEvent], TranscriptionTextDoneEvent]:
    """A stream is delta events, then exactly one done event, last."""
    assert events, "the stream had no events"
    *deltas, done = events
    kinds = [type(event).__name__ for event in events]
    assert all(isinstance(delta, TranscriptionTextDeltaEvent) for delta in deltas), kinds
    assert isinstance(done, TranscriptionTextDoneEvent), kinds
    assert all(delta.type == "transcript.text.delta" and delta.delta for delta in deltas), deltas
    assert done.type == "transcript.text.done"
    return deltas, done


def _utf8(logprobs: list[Any]) -> str:
    """The text that a list of logprob entries (SDK objects or wire dicts) spells."""
    pieces = [entry["bytes"] if isinstance(entry, dict) else entry.bytes for entry in logprobs]
    return bytes(int(byte) for piece in pieces for byte in piece).decode("utf-8")


def _wav(duration_s: float, sample_rate: int = 16_000) -> bytes:
    """A valid 16 kHz mono 16-bit PCM WAV holding a 440 Hz tone."""
    frames = round(duration_s * sample_rate)
    samples = (round(8000 * math.sin(2 * math.pi * 440 * n / sample_rate)) for n in range(frames))
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(sample_rate)
        writer.writeframes(b"".join(struct.pack("<h", sample) for sample in samples))
    return buffer.getvalue()


def _wait_for_log(earshot: Any, request_id: str, message: str, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if any(entry.get("reqId") == request_id and entry.get("msg") == message for entry in list(earshot.logs)):
            return True
        time.sleep(0.1)
    return False


# --- streaming -------------------------------------------------------------------------------


def test_stream_sends_word_deltas_then_a_done_event_with_usage(client: OpenAI, jfk: BinaryIO) -> None:
    stream = client.audio.transcriptions.create(file=jfk, model=MODEL, stream=True)

    assert isinstance(stream, openai.Stream)
    assert stream.response.headers["content-type"].startswith("text/event-stream")
    deltas, done = _delta_and_done(list(stream))

    assert len(deltas) >= 5, f"expected the text word by word, got {len(deltas)} deltas"
    assert "".join(delta.delta for delta in deltas) == done.text
    assert done.text == JFK_TEXT
    assert done.logprobs is None and all(delta.logprobs is None for delta in deltas)
    assert done.usage is not None, "the done event has no usage"
    assert done.usage.type == "duration"
    assert done.usage.model_dump(exclude_none=True) == {"type": "duration", "seconds": 11}


def test_stream_with_text_format_streams_too(client: OpenAI, jfk: BinaryIO) -> None:
    stream = client.audio.transcriptions.create(file=jfk, model=MODEL, stream=True, response_format="text")

    assert isinstance(stream, openai.Stream)
    deltas, done = _delta_and_done(list(stream))

    assert len(deltas) >= 5
    assert "".join(delta.delta for delta in deltas) == done.text == JFK_TEXT


def test_stream_of_an_undecodable_file_is_a_plain_400(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.transcriptions.create(
            file=("notes.txt", b"this is not audio", "text/plain"), model=MODEL, stream=True
        )

    assert caught.value.response.headers["content-type"].startswith("application/json")
    assert_api_error(caught.value, status=400, param=None, code=None, message_prefix="Invalid file format")


def test_stream_with_srt_format_is_unsupported(client: OpenAI, jfk: BinaryIO) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.transcriptions.create(file=jfk, model=MODEL, stream=True, response_format="srt")

    assert_api_error(caught.value, status=400, param="response_format", code="unsupported_value")


@pytest.mark.parametrize("how", ["close", "with"])
def test_closing_a_stream_early_cancels_its_job_and_the_server_keeps_serving(
    client: OpenAI, earshot: Any, multilingual: BinaryIO, jfk: BinaryIO, how: str
) -> None:
    # 60 s of audio: the job is still running when the client goes away after the first word.
    if how == "close":
        stream = client.audio.transcriptions.create(file=multilingual, model=MODEL, stream=True)
        first = next(iter(stream))
        stream.close()
    else:
        with client.audio.transcriptions.create(file=multilingual, model=MODEL, stream=True) as stream:
            for first in stream:
                break
    request_id = stream.response.headers["x-request-id"]

    assert isinstance(first, TranscriptionTextDeltaEvent)
    assert stream.response.is_closed
    # The next request is served in full (it queues behind the cancelled job on the one worker).
    transcription = client.audio.transcriptions.create(file=jfk, model=MODEL)
    assert transcription.text == JFK_TEXT
    # ... and the abandoned job was stopped, not run to its end (README: a client that disconnects
    # cancels its job).
    assert _wait_for_log(earshot, request_id, CANCELLED_LOG), f"no '{CANCELLED_LOG}' log for {request_id}"


# --- logprobs --------------------------------------------------------------------------------


def test_include_logprobs_returns_every_token(client: OpenAI, jfk: BinaryIO) -> None:
    raw = client.audio.transcriptions.with_raw_response.create(file=jfk, model=MODEL, include=["logprobs"])
    body = json.loads(raw.http_response.text)
    transcription = raw.parse()

    assert isinstance(transcription, Transcription)
    assert transcription.text == JFK_TEXT
    assert set(body) == {"text", "logprobs", "usage"}, sorted(body)
    wire = body["logprobs"]
    assert isinstance(wire, list) and len(wire) >= len(JFK_TEXT.split()), wire
    for entry in wire:
        assert set(entry) == {"token", "logprob", "bytes"}, entry
        assert isinstance(entry["token"], str) and entry["token"], entry
        # A certain token's logprob may be a plain 0 on the wire.
        assert isinstance(entry["logprob"], (int, float)) and not isinstance(entry["logprob"], bool), entry
        assert -100 < entry["logprob"] <= 0, entry
        assert all(isinstance(byte, int) and 0 <= byte <= 255 for byte in entry["bytes"]), entry
        assert bytes(entry["bytes"]).decode("utf-8") == entry["token"], entry
    assert any(entry["logprob"] < 0 for entry in wire), "every logprob is 0"
    # The tokens spell the text; the first carries Whisper's leading space.
    assert _utf8(wire) == " " + transcription.text

    assert transcription.logprobs is not None
    assert [entry.token for entry in transcription.logprobs] == [entry["token"] for entry in wire]
    assert [entry.logprob for entry in transcription.logprobs] == [entry["logprob"] for entry in wire]
    assert _utf8(transcription.logprobs) == " " + transcription.text


def test_streamed_logprobs_come_with_each_delta_and_in_full_at_the_end(client: OpenAI, jfk: BinaryIO) -> None:
    stream = client.audio.transcriptions.create(file=jfk, model=MODEL, stream=True, include=["logprobs"])
    deltas, done = _delta_and_done(list(stream))

    assert done.text == JFK_TEXT
    assert done.logprobs, "the done event has no logprobs"
    assert _utf8(done.logprobs) == " " + done.text
    for delta in deltas:
        assert delta.logprobs, f"delta {delta.delta!r} has no logprobs"
        assert _utf8(delta.logprobs).strip() == delta.delta.strip(), delta
        assert all(entry.logprob is not None and entry.logprob <= 0 for entry in delta.logprobs), delta
    per_delta = [entry.model_dump() for delta in deltas for entry in delta.logprobs or []]
    assert per_delta == [entry.model_dump() for entry in done.logprobs]


# --- translations, every format --------------------------------------------------------------
# The SDK marks the translations endpoint deprecated; earshot serves it all the same.

translation = pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")


@translation
def test_translation_json(client: OpenAI, multilingual: BinaryIO) -> None:
    raw = client.audio.translations.with_raw_response.create(file=multilingual, model=MODEL, response_format="json")
    body = json.loads(raw.http_response.text)
    result = raw.parse()

    assert isinstance(result, Translation)
    assert LICENCE_OPENING in result.text.lower(), result.text
    assert set(body) == {"text"}, sorted(body)


@translation
def test_translation_text(client: OpenAI, multilingual: BinaryIO) -> None:
    text = client.audio.translations.create(file=multilingual, model=MODEL, response_format="text")

    assert isinstance(text, str)
    assert not text.lstrip().startswith(("{", '"')), f"text format came back JSON-encoded: {text[:80]!r}"
    assert text.lower().startswith(LICENCE_OPENING), text


@translation
def test_translation_srt(client: OpenAI, multilingual: BinaryIO) -> None:
    srt = client.audio.translations.create(file=multilingual, model=MODEL, response_format="srt")

    assert isinstance(srt, str)
    assert srt.startswith("1\n00:00:00,000 --> "), srt[:80]
    cues = srt_cues(srt, max_end_s=MULTILINGUAL_DURATION_S + 0.5)
    assert len(cues) >= 2, cues
    assert normalise(cues[0]).startswith(LICENCE_OPENING), cues


@translation
def test_translation_vtt(client: OpenAI, multilingual: BinaryIO) -> None:
    vtt = client.audio.translations.create(file=multilingual, model=MODEL, response_format="vtt")

    assert isinstance(vtt, str)
    cues = vtt_cues(vtt, max_end_s=MULTILINGUAL_DURATION_S + 0.5)
    assert len(cues) >= 2, cues
    assert normalise(cues[0]).startswith(LICENCE_OPENING), cues


@translation
def test_translation_verbose_json(client: OpenAI, multilingual: BinaryIO) -> None:
    raw = client.audio.translations.with_raw_response.create(
        file=multilingual, model=MODEL, response_format="verbose_json"
    )
    body = json.loads(raw.http_response.text)
    result = raw.parse()

    assert isinstance(result, TranslationVerbose)
    assert body["task"] == "translate"
    assert result.language == "english"
    assert result.duration == pytest.approx(MULTILINGUAL_DURATION_S, abs=0.2)
    assert LICENCE_OPENING in result.text.lower(), result.text
    assert result.segments, "no segments"
    assert normalise(" ".join(segment.text for segment in result.segments)) == normalise(result.text)
    assert "usage" not in body and "words" not in body, sorted(body)


# --- models API ------------------------------------------------------------------------------


def test_models_list_has_the_aliases_and_the_bundled_models(client: OpenAI) -> None:
    models = list(client.models.list())
    ids = [model.id for model in models]

    assert {"whisper-1", "base", "tiny.en"} <= set(ids), ids
    assert len(ids) == len(set(ids)), f"duplicate ids: {ids}"
    for model in models:
        assert model.object == "model", model
        assert isinstance(model.created, int) and model.created >= 0, model
        assert isinstance(model.owned_by, str) and model.owned_by, model


def test_models_retrieve_whisper_1(client: OpenAI) -> None:
    model = client.models.retrieve("whisper-1")
    listed = {entry.id: entry for entry in client.models.list()}

    assert model.id == "whisper-1"
    assert model.object == "model"
    assert model.model_dump() == listed["whisper-1"].model_dump()


def test_models_retrieve_unknown_is_not_found(client: OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve("no-such-model")

    assert_api_error(
        caught.value,
        status=404,
        param=None,
        code="model_not_found",
        message="The model `no-such-model` does not exist or you do not have access to it.",
    )


# --- chunking_strategy -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "chunking_strategy",
    [
        "auto",
        {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": 500},
    ],
    ids=["auto", "server_vad"],
)
def test_chunking_strategy(client: OpenAI, jfk: BinaryIO, chunking_strategy: Any) -> None:
    transcription = client.audio.transcriptions.create(file=jfk, model=MODEL, chunking_strategy=chunking_strategy)

    assert normalise(transcription.text) == normalise(JFK_TEXT)


# --- faster-whisper's knobs, as extra_body ---------------------------------------------------


def test_beam_size_1(client: OpenAI, jfk: BinaryIO) -> None:
    transcription = client.audio.transcriptions.create(file=jfk, model=MODEL, extra_body={"beam_size": 1})

    assert normalise(transcription.text) == normalise(JFK_TEXT)


def test_hotwords_bring_out_a_product_name(client: OpenAI, hotwords: BinaryIO) -> None:
    transcription = client.audio.transcriptions.create(file=hotwords, model=MODEL, extra_body={"hotwords": "ComfyUI"})

    assert "ComfyUI" in transcription.text, transcription.text


def test_batch_size_8(client: OpenAI, multilingual: BinaryIO) -> None:
    transcription = client.audio.transcriptions.create(file=multilingual, model=MODEL, extra_body={"batch_size": 8})

    assert normalise(transcription.text).startswith(LICENCE_OPENING), transcription.text
    assert transcription.usage is not None and transcription.usage.model_dump(exclude_none=True) == {
        "type": "duration",
        "seconds": 60,
    }


def test_vad_parameters_as_a_json_string(client: OpenAI, jfk: BinaryIO) -> None:
    transcription = client.audio.transcriptions.create(
        file=jfk, model=MODEL, extra_body={"vad_parameters": '{"threshold":0.3}'}
    )

    assert normalise(transcription.text) == normalise(JFK_TEXT)


def test_vad_parameters_are_validated(client: OpenAI, jfk: BinaryIO) -> None:
    # Proves the JSON string above is read, not ignored.
    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.transcriptions.create(file=jfk, model=MODEL, extra_body={"vad_parameters": '{"threshold":3}'})

    assert caught.value.code == "invalid_value"
    assert caught.value.param is not None and caught.value.param.startswith("vad_parameters"), caught.value.body


def test_beam_size_0_is_invalid(client: OpenAI, jfk: BinaryIO) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.transcriptions.create(file=jfk, model=MODEL, extra_body={"beam_size": 0})

    assert_api_error(caught.value, status=400, param="beam_size", code="invalid_value")


# --- exact errors ----------------------------------------------------------------------------


def test_empty_model_is_a_missing_parameter(client: OpenAI, jfk: BinaryIO) -> None:
    # The SDK's signature requires a model; an empty one is what reaches the server as "no model".
    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.transcriptions.create(file=jfk, model="")

    assert_api_error(caught.value, status=400, param="model", code="missing_required_parameter")


def test_unknown_response_format(client: OpenAI, jfk: BinaryIO) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.transcriptions.create(file=jfk, model=MODEL, response_format="xml")  # type: ignore[arg-type]

    assert_api_error(
        caught.value,
        status=400,
        param="response_format",
        code="invalid_value",
        message="Invalid value: 'xml'. Supported values are: 'json', 'text', 'srt', 'verbose_json', 'vtt', and 'diarized_json'.",
    )


def test_temperature_2_is_out_of_range(client: OpenAI, jfk: BinaryIO) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.transcriptions.create(file=jfk, model=MODEL, temperature=2)

    assert_api_error(caught.value, status=400, param="temperature", code="invalid_value")


def test_audio_shorter_than_a_tenth_of_a_second(client: OpenAI) -> None:
    short = _wav(0.05)
    with wave.open(io.BytesIO(short)) as check:  # the fixture itself: valid, 16 kHz mono, 0.05 s
        assert (check.getnchannels(), check.getframerate(), check.getnframes()) == (1, 16_000, 800)

    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.transcriptions.create(file=("short.wav", io.BytesIO(short), "audio/wav"), model=MODEL)

    assert_api_error(caught.value, status=400, param="file", code="audio_too_short")


def test_diarized_json_of_a_translation_is_unsupported(client: OpenAI, jfk: BinaryIO) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.translations.create(file=jfk, model=MODEL, response_format="diarized_json")  # type: ignore[arg-type]

    assert_api_error(caught.value, status=400, param="response_format", code="unsupported_value")
