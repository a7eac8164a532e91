"""What the Python SDK end-to-end suites share: reference texts, text normalising, subtitle parsing,
and the one strict check of an OpenAI error as the SDK raises it.

Not a test module (pytest collects only test_*.py); the suites import it by name, as pytest puts
this directory on sys.path for them.
"""

from __future__ import annotations

import re

import openai

MODEL = "whisper-1"
JFK_TEXT = (
    "And so my fellow Americans, ask not what your country can do for you, "
    "ask what you can do for your country."
)
JFK_DURATION_S = 11.0
# multilingual.mp3 opens with the MIT licence read in English.
LICENCE_OPENING = "permission is hereby granted"

SRT_CUE = re.compile(
    r"(?P<index>\d+)\n"
    r"(?P<start>\d{2}:\d{2}:\d{2},\d{3}) --> (?P<end>\d{2}:\d{2}:\d{2},\d{3})\n"
    r"(?P<text>(?:.+\n)+)"
)
VTT_TIMING = re.compile(r"^(\d{2}:\d{2}:\d{2}\.\d{3}) --> (\d{2}:\d{2}:\d{2}\.\d{3})$")


def normalise(text: str) -> str:
    """Lower case, punctuation dropped, whitespace collapsed."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def seconds(timestamp: str) -> float:
    """HH:MM:SS,mmm or HH:MM:SS.mmm in seconds."""
    hours, minutes, rest = timestamp.replace(",", ".").split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(rest)


def srt_cues(srt: str, max_end_s: float) -> list[str]:
    """Checks an srt document strictly (numbering from 1, ordered timings within max_end_s) and
    returns the text of each cue."""
    blocks = [block for block in srt.strip().split("\n\n") if block]
    assert blocks, f"srt without cues: {srt!r}"
    texts = []
    previous_end = 0.0
    for number, block in enumerate(blocks, start=1):
        match = SRT_CUE.fullmatch(block + "\n")
        assert match, f"malformed srt cue {number}: {block!r}"
        assert int(match["index"]) == number, block
        start, end = seconds(match["start"]), seconds(match["end"])
        assert previous_end <= start <= end <= max_end_s, block
        previous_end = end
        texts.append(match["text"].strip())
    return texts


def vtt_cues(vtt: str, max_end_s: float) -> list[str]:
    """Checks a WebVTT document strictly (header, ordered timings within max_end_s, text in every
    cue) and returns the text of each cue."""
    assert vtt.startswith("WEBVTT\n"), vtt
    header, *blocks = [block for block in vtt.strip().split("\n\n") if block]
    assert header == "WEBVTT", header
    assert blocks, f"vtt without cues: {vtt!r}"
    texts = []
    previous_end = 0.0
    for block in blocks:
        timing, *lines = block.split("\n")
        match = VTT_TIMING.match(timing)
        assert match, f"malformed vtt cue: {block!r}"
        start, end = seconds(match[1]), seconds(match[2])
        assert previous_end <= start <= end <= max_end_s, block
        previous_end = end
        assert lines, f"vtt cue without text: {block!r}"
        texts.append(" ".join(lines))
    return texts


_UNCHECKED = object()


def assert_api_error(
    error: openai.APIStatusError,
    *,
    status: int,
    type: str = "invalid_request_error",
    param: str | None,
    code: str | None,
    message: str | None | object = _UNCHECKED,
    message_prefix: str | None = None,
) -> None:
    """The wire body is exactly {"error": {message, type, param, code}} (code and param may be
    null), and the SDK exposes the same values on the exception it raised."""
    assert error.status_code == status, f"status {error.status_code}, expected {status}: {error}"
    wire = error.response.json()
    assert set(wire) == {"error"}, wire
    assert set(wire["error"]) == {"message", "type", "param", "code"}, wire
    body = wire["error"]
    assert isinstance(body["message"], str) and body["message"], wire
    assert body["type"] == type, wire
    assert body["param"] == param, wire
    assert body["code"] == code, wire
    if message is not _UNCHECKED:
        assert body["message"] == message, wire
    if message_prefix is not None:
        assert body["message"].startswith(message_prefix), wire
    # The SDK's view of the same body.
    assert error.body == body
    assert error.type == type
    assert error.param == param
    assert error.code == code
    assert body["message"] in str(error), str(error)
