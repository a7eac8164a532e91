"""Live transcription with the official Python SDK's realtime client against the real server, on real
recordings: server VAD over several turns, words while speaking, manual commit, the beta shapes, clear,
bad events, many sessions at once, a client that leaves mid-turn."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import urllib.request
from pathlib import Path

import pytest
from openai import AsyncOpenAI

from conftest import RunningServer
from earshot_e2e import JFK_TEXT, normalise
from realtime_support import RATE, pcm16, run_session, silence, transcription_session

ERROR = "error"
COMPLETED = "conversation.item.input_audio_transcription.completed"
DELTA = "conversation.item.input_audio_transcription.delta"


@pytest.fixture(scope="module")
def aclient(earshot: RunningServer) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=earshot.base_url, api_key="not-needed", max_retries=0, timeout=60)


@pytest.fixture(scope="module")
def jfk_pcm(audio_dir: Path) -> bytes:
    return pcm16(audio_dir / "jfk.flac")


@pytest.fixture(scope="module")
def hotwords_pcm(audio_dir: Path) -> bytes:
    return pcm16(audio_dir / "hotwords.mp3")


def words_of(text: str) -> list[str]:
    return normalise(text).split()


def word_error_rate(reference: str, hypothesis: str) -> float:
    ref, hyp = words_of(reference), words_of(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        previous, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (r != h))
    return row[len(hyp)] / max(1, len(ref))


def test_server_vad_over_several_turns_sends_words_while_speaking(
    aclient: AsyncOpenAI, jfk_pcm: bytes, hotwords_pcm: bytes
) -> None:
    # JFK (who pauses between his phrases), a pause, another speaker, a pause; streamed at real time.
    audio = silence(0.5) + jfk_pcm + silence(1.5) + hotwords_pcm + silence(1.5)
    live = asyncio.run(run_session(aclient, transcription_session(), audio, pace=1.0, expect_completed=None, timeout=40))
    assert [r.event for r in live.events if r.type == ERROR] == []
    kinds = [r.type for r in live.events]
    assert kinds[0] == "session.created"
    assert "session.updated" in kinds
    started = live.of("input_audio_buffer.speech_started")
    stopped = live.of("input_audio_buffer.speech_stopped")
    committed = live.of("input_audio_buffer.committed")
    assert len(started) == len(stopped) == len(committed) >= 2
    assert [e["item_id"] for e in started] == [e["item_id"] for e in committed]
    # audio_start_ms includes the 300 ms of prefix padding before the speech (JFK speaks from ≈ 0.3 s
    # into his recording, 0.8 s into the session's audio).
    assert 0 <= started[0]["audio_start_ms"] <= 900
    assert all(a["audio_start_ms"] < b["audio_end_ms"] for a, b in zip(started, stopped))
    assert committed[0]["previous_item_id"] is None
    assert [e["previous_item_id"] for e in committed[1:]] == [e["item_id"] for e in committed[:-1]]
    transcripts = live.transcripts()
    assert len(transcripts) == len(committed)
    for item, transcript in zip(committed, transcripts):
        # The deltas of a turn put together are its transcript, exactly.
        assert live.deltas_of(item["item_id"]) == transcript
    together = " ".join(transcripts)
    assert word_error_rate(JFK_TEXT, " ".join(transcripts[:-1])) <= 0.15, together
    assert "folder" in normalise(transcripts[-1]), together
    for completed in live.of(COMPLETED):
        assert completed["usage"]["type"] == "duration" and completed["usage"]["seconds"] >= 1
    # Words arrive while the speaker is still speaking: some turn has a delta before its speech_stopped.
    stop_at = {r.event["item_id"]: r.at for r in live.events if r.type == "input_audio_buffer.speech_stopped"}
    early = [r for r in live.events if r.type == DELTA and r.at < stop_at[r.event["item_id"]]]
    assert early, "no words arrived while a turn was being spoken"
    assert all(r.event["event_id"] for r in live.events)


def test_manual_commit_transcribes_the_buffer(aclient: AsyncOpenAI, hotwords_pcm: bytes) -> None:
    live = asyncio.run(
        run_session(aclient, transcription_session(turn_detection=None), hotwords_pcm, commit=True)
    )
    assert live.of("input_audio_buffer.speech_started") == []
    (committed,) = live.of("input_audio_buffer.committed")
    (transcript,) = live.transcripts()
    assert "folder" in normalise(transcript), transcript
    assert live.deltas_of(committed["item_id"]) == transcript


def test_beta_transcription_session_shapes(aclient: AsyncOpenAI, jfk_pcm: bytes) -> None:
    update = {
        "type": "transcription_session.update",
        "session": {
            "input_audio_format": "pcm16",
            "input_audio_transcription": {"model": "whisper-1", "language": "en"},
            "turn_detection": None,
        },
    }
    live = asyncio.run(
        run_session(aclient, None, b"", extra=[json.dumps(update), *appends(jfk_pcm), json.dumps(
            {"type": "input_audio_buffer.commit"})])
    )
    kinds = [r.type for r in live.events]
    assert "transcription_session.updated" in kinds, kinds
    assert live.of("conversation.item.created"), kinds
    (transcript,) = live.transcripts()
    assert word_error_rate(JFK_TEXT, transcript) <= 0.15


def appends(audio: bytes, seconds: float = 0.5) -> list[str]:
    step = int(RATE * seconds) * 2
    return [
        json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(audio[i : i + step]).decode()})
        for i in range(0, len(audio), step)
    ]


def test_clear_discards_the_buffer(aclient: AsyncOpenAI, jfk_pcm: bytes, hotwords_pcm: bytes) -> None:
    # JFK is appended then cleared; only what follows the clear is transcribed.
    extra: list[dict[str, object] | str] = [
        json.dumps({"type": "input_audio_buffer.clear", "event_id": "clear-1"}),
        *appends(hotwords_pcm),
        json.dumps({"type": "input_audio_buffer.commit"}),
    ]
    live = asyncio.run(run_session(aclient, transcription_session(turn_detection=None), jfk_pcm, extra=extra))
    assert len(live.of("input_audio_buffer.cleared")) == 1
    (transcript,) = live.transcripts()
    assert "country" not in normalise(transcript)
    assert "folder" in normalise(transcript)


def test_bad_events_get_error_events_and_the_session_goes_on(aclient: AsyncOpenAI, hotwords_pcm: bytes) -> None:
    bad: list[dict[str, object] | str] = [
        "this is not json",
        json.dumps({"type": "input_audio_buffer.commit", "event_id": "empty-commit"}),
        json.dumps({"type": "input_audio_buffer.append", "audio": "%%% not base64 %%%", "event_id": "bad-b64"}),
        json.dumps({"type": "no.such.event", "event_id": "unknown-type"}),
        json.dumps({"type": "session.update", "event_id": "bad-threshold", "session": {
            "type": "transcription", "audio": {"input": {"turn_detection": {"type": "server_vad", "threshold": 7}}}}}),
        *appends(hotwords_pcm),
        json.dumps({"type": "input_audio_buffer.commit"}),
    ]
    live = asyncio.run(run_session(aclient, transcription_session(turn_detection=None), b"", extra=bad))
    errors = [e["error"] for e in live.of(ERROR)]
    assert len(errors) == 5, errors
    assert all(error["type"] == "invalid_request_error" and error["message"] for error in errors)
    by_event = {error.get("event_id"): error for error in errors}
    assert set(by_event) >= {"empty-commit", "bad-b64", "unknown-type", "bad-threshold"}
    assert by_event["bad-threshold"]["param"] == "session.audio.input.turn_detection.threshold"
    # The session survived all of it: the real audio after the bad events is transcribed.
    (transcript,) = live.transcripts()
    assert "folder" in normalise(transcript)


def test_many_sessions_at_once(aclient: AsyncOpenAI, hotwords_pcm: bytes) -> None:
    async def all_sessions() -> list[str]:
        sessions = [
            run_session(aclient, transcription_session(turn_detection=None), hotwords_pcm, commit=True, timeout=120)
            for _ in range(6)
        ]
        return [transcript for live in await asyncio.gather(*sessions) for transcript in live.transcripts()]

    transcripts = asyncio.run(all_sessions())
    assert len(transcripts) == 6
    assert all("folder" in normalise(t) for t in transcripts), transcripts


def cancelled_jobs(earshot: RunningServer) -> float:
    with urllib.request.urlopen(f"{earshot.address}/metrics") as response:
        metrics = response.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("earshot_job_duration_seconds_count") and 'outcome="cancelled"' in line
    )


def test_a_client_that_leaves_mid_turn_cancels_its_job(earshot: RunningServer, aclient: AsyncOpenAI, jfk_pcm: bytes) -> None:
    async def leave_after_commit() -> None:
        async with aclient.realtime.connect(extra_query={"intent": "transcription"}) as connection:
            await connection.session.update(session=transcription_session(turn_detection=None))  # type: ignore[arg-type]
            long_audio = jfk_pcm * 2
            step = RATE * 2
            for offset in range(0, len(long_audio), step):
                await connection.input_audio_buffer.append(audio=base64.b64encode(long_audio[offset : offset + step]).decode())
            await connection.input_audio_buffer.commit()
            async for event in connection:
                if event.type == "input_audio_buffer.committed":
                    # Leave while the turn is being decoded: its job starts within milliseconds of the
                    # commit, and 22 s of audio take the decoder more than a second.
                    await asyncio.sleep(0.3)
                    return

    seen, cancelled = len(earshot.logs), cancelled_jobs(earshot)
    asyncio.run(leave_after_commit())
    deadline = time.monotonic() + 30
    done: list[dict[str, object]] = []
    while not done and time.monotonic() < deadline:
        done = [entry for entry in earshot.logs[seen:] if entry.get("msg") == "realtime session done"]
        time.sleep(0.2)
    assert done, "the session was not logged as done"
    # The turn's job was cancelled, not decoded for no one, and its audio file is gone.
    while cancelled_jobs(earshot) == cancelled and time.monotonic() < deadline:
        time.sleep(0.2)
    assert cancelled_jobs(earshot) == cancelled + 1
    assert not any(any(path.iterdir()) for path in earshot.upload_dirs())
