"""End-to-end: the official OpenAI Python SDK against a real earshot server (see conftest.py).

Tests run in file order; the last two check that the server still works after every error above
and that no upload was left behind in EARSHOT_TMP_DIR.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import openai
import pytest
from openai import OpenAI
from openai.types.audio import Transcription, TranscriptionVerbose

JFK_TEXT = (
    "And so my fellow Americans, ask not what your country can do for you, "
    "ask what you can do for your country."
)
JFK_DURATION_S = 11.0
MODEL = "whisper-1"

SEGMENT_KEYS = {
    "id",
    "seek",
    "start",
    "end",
    "text",
    "tokens",
    "temperature",
    "avg_logprob",
    "compression_ratio",
    "no_speech_prob",
}


def normalise(text: str) -> str:
    """Lower case, punctuation dropped, whitespace collapsed."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


@pytest.fixture
def jfk(audio_dir: Path):
    with open(audio_dir / "jfk.flac", "rb") as audio_file:
        yield audio_file


@pytest.fixture
def multilingual(audio_dir: Path):
    with open(audio_dir / "multilingual.mp3", "rb") as audio_file:
        yield audio_file


# --- successful transcriptions ---------------------------------------------------------------


def test_json_is_the_default_and_returns_the_reference_text(client: OpenAI, jfk) -> None:
    transcription = client.audio.transcriptions.create(model=MODEL, file=jfk)

    assert isinstance(transcription, Transcription)
    assert normalise(transcription.text) == normalise(JFK_TEXT)
    assert transcription.text == JFK_TEXT


def test_text_format_returns_a_plain_string(client: OpenAI, jfk) -> None:
    text = client.audio.transcriptions.create(model=MODEL, file=jfk, response_format="text")

    assert isinstance(text, str)
    assert not text.lstrip().startswith(("{", '"')), f"text format came back JSON-encoded: {text!r}"
    assert text.strip() == JFK_TEXT


SRT_CUE = re.compile(
    r"(?P<index>\d+)\n"
    r"(?P<start>\d{2}:\d{2}:\d{2},\d{3}) --> (?P<end>\d{2}:\d{2}:\d{2},\d{3})\n"
    r"(?P<text>(?:.+\n)+)"
)
VTT_TIMING = re.compile(r"^(\d{2}:\d{2}:\d{2}\.\d{3}) --> (\d{2}:\d{2}:\d{2}\.\d{3})$")


def _seconds(timestamp: str) -> float:
    hours, minutes, seconds = timestamp.replace(",", ".").split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def test_srt_format_returns_numbered_cues(client: OpenAI, jfk) -> None:
    srt = client.audio.transcriptions.create(model=MODEL, file=jfk, response_format="srt")

    assert isinstance(srt, str)
    assert re.match(r"1\n00:00:00,000 --> 00:00:\d\d,\d{3}\n\S", srt), srt
    blocks = [block for block in srt.strip().split("\n\n") if block]
    assert blocks, srt
    cue_texts = []
    previous_end = 0.0
    for number, block in enumerate(blocks, start=1):
        match = SRT_CUE.fullmatch(block + "\n")
        assert match, f"malformed srt cue {number}: {block!r}"
        assert int(match["index"]) == number
        start, end = _seconds(match["start"]), _seconds(match["end"])
        assert previous_end <= start <= end <= JFK_DURATION_S + 0.5, block
        previous_end = end
        cue_texts.append(match["text"].strip())
    assert 10.0 <= previous_end <= JFK_DURATION_S + 0.5, "last cue should end near 00:00:1x"
    assert normalise(" ".join(cue_texts)) == normalise(JFK_TEXT)


def test_vtt_format_returns_webvtt_cues(client: OpenAI, jfk) -> None:
    vtt = client.audio.transcriptions.create(model=MODEL, file=jfk, response_format="vtt")

    assert isinstance(vtt, str)
    assert vtt.startswith("WEBVTT"), vtt
    header, *blocks = [block for block in vtt.strip().split("\n\n") if block]
    assert header == "WEBVTT"
    assert blocks, vtt
    cue_texts = []
    for block in blocks:
        timing, *lines = block.split("\n")
        match = VTT_TIMING.match(timing)
        assert match, f"malformed vtt cue: {block!r}"
        assert _seconds(match[1]) <= _seconds(match[2]) <= JFK_DURATION_S + 0.5
        assert lines, f"vtt cue without text: {block!r}"
        cue_texts.append(" ".join(lines))
    assert normalise(" ".join(cue_texts)) == normalise(JFK_TEXT)


def test_verbose_json_with_word_and_segment_timestamps(client: OpenAI, jfk) -> None:
    raw = client.audio.transcriptions.with_raw_response.create(
        model=MODEL,
        file=jfk,
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
    )
    body = json.loads(raw.http_response.text)
    verbose = raw.parse()

    assert isinstance(verbose, TranscriptionVerbose)
    assert verbose.language == "english"
    assert verbose.duration == pytest.approx(JFK_DURATION_S, abs=0.1)
    assert normalise(verbose.text) == normalise(JFK_TEXT)

    assert body["segments"], "no segments"
    for segment in body["segments"]:
        assert set(segment) == SEGMENT_KEYS, f"segment keys differ from OpenAI's: {sorted(segment)}"
    assert [segment["id"] for segment in body["segments"]] == list(range(len(body["segments"])))
    assert verbose.segments is not None
    for segment in verbose.segments:
        assert 0.0 <= segment.start <= segment.end <= verbose.duration
        assert segment.tokens and all(isinstance(token, int) for token in segment.tokens)

    assert verbose.words, "no words"
    starts = [word.start for word in verbose.words]
    assert starts == sorted(starts), "word starts are not monotonic"
    for word in verbose.words:
        assert word.word and word.word == word.word.strip(), f"word {word.word!r}"
        assert 0.0 <= word.start <= word.end <= verbose.duration, word
    assert normalise(" ".join(word.word for word in verbose.words)) == normalise(JFK_TEXT)


def test_verbose_json_with_only_word_timestamps_has_no_segments(client: OpenAI, jfk) -> None:
    raw = client.audio.transcriptions.with_raw_response.create(
        model=MODEL, file=jfk, response_format="verbose_json", timestamp_granularities=["word"]
    )
    body = json.loads(raw.http_response.text)
    verbose = raw.parse()

    assert verbose.words, "no words"
    assert verbose.segments is None
    assert "segments" not in body


def test_language_and_prompt_are_accepted(client: OpenAI, jfk) -> None:
    transcription = client.audio.transcriptions.create(
        model=MODEL,
        file=jfk,
        language="en",
        prompt="A speech by President John F. Kennedy.",
    )

    assert normalise(transcription.text) == normalise(JFK_TEXT)


# --- translations ----------------------------------------------------------------------------


def test_translation_returns_english_text(client: OpenAI, multilingual) -> None:
    translation = client.audio.translations.create(model=MODEL, file=multilingual)

    assert "permission is hereby granted" in translation.text.lower(), translation.text


def test_translation_verbose_json_reports_task_translate(client: OpenAI, multilingual) -> None:
    raw = client.audio.translations.with_raw_response.create(
        model=MODEL, file=multilingual, response_format="verbose_json"
    )
    body = json.loads(raw.http_response.text)
    translation = raw.parse()

    assert body["task"] == "translate"
    assert translation.model_dump().get("task") == "translate"
    assert "permission is hereby granted" in translation.text.lower(), translation.text
    assert translation.duration == pytest.approx(60, abs=10)


# --- errors, as the SDK's typed exceptions ---------------------------------------------------


def _assert_openai_error_body(error: openai.APIStatusError, code: str, param: str | None) -> None:
    """The wire body is {"error": {message, type, param, code}}; the SDK exposes its inner object."""
    wire = error.response.json()
    assert set(wire) == {"error"}, wire
    assert set(wire["error"]) == {"message", "type", "param", "code"}, wire
    assert wire["error"]["message"], wire
    assert error.body == wire["error"]
    assert error.code == code, wire
    assert error.param == param, wire
    assert error.type == "invalid_request_error", wire


def test_unknown_model_is_not_found(client: OpenAI, jfk) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.audio.transcriptions.create(model="no-such-model", file=jfk)

    assert caught.value.status_code == 404
    _assert_openai_error_body(caught.value, "model_not_found", "model")


def test_a_text_file_is_invalid_audio(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.transcriptions.create(model=MODEL, file=("notes.txt", b"hello", "text/plain"))

    assert caught.value.status_code == 400
    _assert_openai_error_body(caught.value, "invalid_audio", "file")


def test_an_unknown_language_is_rejected(client: OpenAI, jfk) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.transcriptions.create(model=MODEL, file=jfk, language="xx")

    assert caught.value.param == "language"
    _assert_openai_error_body(caught.value, "invalid_value", "language")


def test_timestamp_granularities_need_verbose_json(client: OpenAI, jfk) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.transcriptions.create(
            model=MODEL, file=jfk, response_format="json", timestamp_granularities=["word"]
        )

    assert caught.value.param == "timestamp_granularities"
    _assert_openai_error_body(caught.value, "invalid_value", "timestamp_granularities")


def test_temperature_above_one_is_rejected(client: OpenAI, jfk) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.transcriptions.create(model=MODEL, file=jfk, temperature=2)

    assert caught.value.param == "temperature"
    _assert_openai_error_body(caught.value, "invalid_value", "temperature")


def test_an_upload_over_25_mib_is_too_large(client: OpenAI) -> None:
    too_big = os.urandom(26 * 1024 * 1024)

    with pytest.raises(openai.APIStatusError) as caught:
        client.audio.transcriptions.create(model=MODEL, file=("big.wav", too_big, "audio/wav"))

    assert caught.value.status_code == 413
    assert caught.value.code == "file_too_large"
    _assert_openai_error_body(caught.value, "file_too_large", "file")


# --- after everything above (these rely on file order) ---------------------------------------


def test_zz_server_still_transcribes_after_the_errors(client: OpenAI, jfk) -> None:
    transcription = client.audio.transcriptions.create(model=MODEL, file=jfk)

    assert transcription.text == JFK_TEXT


def test_zz_uploads_directory_is_empty_after_all_requests(earshot) -> None:
    upload_dirs = earshot.upload_dirs()
    assert len(upload_dirs) == 1, f"expected one earshot-uploads-* under {earshot.tmp_dir}: {upload_dirs}"
    uploads = upload_dirs[0]
    # earshot removes an upload before it sends the response, so nothing may be left even for the
    # request just before this test.
    leftovers = sorted(f"{path.name} ({path.stat().st_size} bytes)" for path in uploads.rglob("*"))
    assert leftovers == [], f"uploads left behind in {uploads}: {leftovers}"
