"""End-to-end: the official OpenAI Python SDK against a real earshot server (see conftest.py).

Tests run in file order (and after test_contract.py, which sorts first); the last two check that
the server still works after every error above and that no upload was left behind in
EARSHOT_TMP_DIR.
"""

from __future__ import annotations

import json
import os
import re

import openai
import pytest
from earshot_e2e import (
    JFK_DURATION_S,
    JFK_TEXT,
    LICENCE_OPENING,
    MODEL,
    assert_api_error,
    normalise,
    srt_cues,
    vtt_cues,
)
from openai import OpenAI
from openai.types.audio import Transcription, TranscriptionVerbose

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


# --- successful transcriptions ---------------------------------------------------------------


def test_json_is_the_default_and_returns_the_reference_text(client: OpenAI, jfk) -> None:
    raw = client.audio.transcriptions.with_raw_response.create(model=MODEL, file=jfk)
    body = json.loads(raw.http_response.text)
    transcription = raw.parse()

    assert isinstance(transcription, Transcription)
    assert normalise(transcription.text) == normalise(JFK_TEXT)
    assert transcription.text == JFK_TEXT
    # A transcription bills by whole seconds of audio, as OpenAI's whisper-1 reports it.
    assert body == {"text": JFK_TEXT, "usage": {"type": "duration", "seconds": 11}}
    assert transcription.usage is not None
    assert transcription.usage.type == "duration"
    assert transcription.usage.seconds == 11


def test_text_format_returns_a_plain_string(client: OpenAI, jfk) -> None:
    text = client.audio.transcriptions.create(model=MODEL, file=jfk, response_format="text")

    assert isinstance(text, str)
    assert not text.lstrip().startswith(("{", '"')), f"text format came back JSON-encoded: {text!r}"
    assert text.strip() == JFK_TEXT


def test_srt_format_returns_numbered_cues(client: OpenAI, jfk) -> None:
    srt = client.audio.transcriptions.create(model=MODEL, file=jfk, response_format="srt")

    assert isinstance(srt, str)
    assert re.match(r"1\n00:00:00,000 --> 00:00:\d\d,\d{3}\n\S", srt), srt
    cue_texts = srt_cues(srt, max_end_s=JFK_DURATION_S + 0.5)
    last_end = re.findall(r"--> (\d{2}:\d{2}:\d{2},\d{3})", srt)[-1]
    assert last_end.startswith("00:00:1"), f"last cue should end near 00:00:1x, not {last_end}"
    assert normalise(" ".join(cue_texts)) == normalise(JFK_TEXT)


def test_vtt_format_returns_webvtt_cues(client: OpenAI, jfk) -> None:
    vtt = client.audio.transcriptions.create(model=MODEL, file=jfk, response_format="vtt")

    assert isinstance(vtt, str)
    cue_texts = vtt_cues(vtt, max_end_s=JFK_DURATION_S + 0.5)
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
# The SDK marks the translations endpoint deprecated; earshot serves it all the same.


@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")
def test_translation_returns_english_text_without_usage(client: OpenAI, multilingual) -> None:
    raw = client.audio.translations.with_raw_response.create(model=MODEL, file=multilingual)
    body = json.loads(raw.http_response.text)
    translation = raw.parse()

    assert LICENCE_OPENING in translation.text.lower(), translation.text
    # OpenAI's translations carry no usage (only transcriptions do).
    assert set(body) == {"text"}, f"translation json has other keys than text: {sorted(body)}"
    assert body["text"] == translation.text


@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")
def test_translation_verbose_json_reports_task_translate_in_english(client: OpenAI, multilingual) -> None:
    raw = client.audio.translations.with_raw_response.create(
        model=MODEL, file=multilingual, response_format="verbose_json"
    )
    body = json.loads(raw.http_response.text)
    translation = raw.parse()

    assert body["task"] == "translate"
    assert translation.model_dump().get("task") == "translate"
    # The language of a translation is that of its output.
    assert body["language"] == "english"
    assert translation.language == "english"
    assert "usage" not in body, f"translation verbose_json carries usage: {body['usage']}"
    assert list(body) == ["task", "language", "duration", "text", "segments"], list(body)
    assert LICENCE_OPENING in translation.text.lower(), translation.text
    assert translation.duration == pytest.approx(60, abs=1)


# --- errors, as the SDK's typed exceptions ---------------------------------------------------
# Status, type, param, code and (where OpenAI's recorded response is known) message, exactly.


def test_unknown_model_is_not_found(client: OpenAI, jfk) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.audio.transcriptions.create(model="no-such-model", file=jfk)

    assert_api_error(
        caught.value,
        status=404,
        param=None,
        code="model_not_found",
        message="The model `no-such-model` does not exist or you do not have access to it.",
    )


def test_a_text_file_is_invalid_audio(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.transcriptions.create(model=MODEL, file=("notes.txt", b"hello", "text/plain"))

    assert_api_error(caught.value, status=400, param=None, code=None, message_prefix="Invalid file format")


def test_a_request_without_a_file_is_rejected(client: OpenAI) -> None:
    # The SDK's create() requires a file, so send the same multipart form without one.
    with pytest.raises(openai.BadRequestError) as caught:
        client.post(
            "/audio/transcriptions",
            body={"model": MODEL},
            options={"headers": {"Content-Type": "multipart/form-data"}},
            cast_to=Transcription,
        )

    assert_api_error(caught.value, status=400, param=None, code=None)
    assert "file" in caught.value.body["message"], caught.value.body


def test_an_unknown_language_is_rejected(client: OpenAI, jfk) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.transcriptions.create(model=MODEL, file=jfk, language="xx")

    assert_api_error(
        caught.value,
        status=400,
        param="language",
        code="invalid_language_format",
        message="Invalid language 'xx'. Language parameter must be specified in ISO-639-1 format.",
    )


def test_timestamp_granularities_need_verbose_json(client: OpenAI, jfk) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.transcriptions.create(
            model=MODEL, file=jfk, response_format="json", timestamp_granularities=["word"]
        )

    assert_api_error(caught.value, status=400, param="timestamp_granularities", code="invalid_value")


def test_temperature_above_one_is_rejected(client: OpenAI, jfk) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.transcriptions.create(model=MODEL, file=jfk, temperature=2)

    assert_api_error(caught.value, status=400, param="temperature", code="invalid_value")


def test_an_upload_over_25_mib_is_too_large(client: OpenAI) -> None:
    too_big = os.urandom(26 * 1024 * 1024)

    with pytest.raises(openai.APIStatusError) as caught:
        client.audio.transcriptions.create(model=MODEL, file=("big.wav", too_big, "audio/wav"))

    assert_api_error(
        caught.value,
        status=413,
        type="server_error",
        param=None,
        code=None,
        message="Maximum content size limit (26214400) exceeded (26214401 bytes read)",
    )


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
