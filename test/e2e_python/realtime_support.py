"""What the realtime suites share: real recordings as the 24 kHz pcm16 the Realtime API takes, a session
over the official SDK's realtime client that streams audio at a chosen pace while it collects the
server's events, and the checks every transcription session must pass.

Not a test module; test_realtime*.py import it by name.
"""

from __future__ import annotations

import asyncio
import base64
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from faster_whisper import decode_audio
from openai import AsyncOpenAI

RATE = 24_000
APPEND_SECONDS = 0.1


def pcm16(path: Path, rate: int = RATE) -> bytes:
    """A recording as mono pcm16 little-endian at `rate` (the Realtime API's `audio/pcm` is 24 kHz)."""
    samples = decode_audio(str(path), sampling_rate=rate)
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()


def silence(seconds: float, rate: int = RATE) -> bytes:
    return bytes(2 * int(seconds * rate))


@dataclass
class Received:
    """A server event as a plain dict, with when it arrived (seconds since the session opened)."""
    at: float
    event: dict[str, Any]

    @property
    def type(self) -> str:
        return str(self.event["type"])


@dataclass
class LiveSession:
    events: list[Received] = field(default_factory=list)
    opened: float = field(default_factory=time.monotonic)
    close_code: int | None = None

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [r.event for r in self.events if r.type == kind]

    def first(self, kind: str) -> Received:
        return next(r for r in self.events if r.type == kind)

    def transcripts(self) -> list[str]:
        return [e["transcript"] for e in self.of("conversation.item.input_audio_transcription.completed")]

    def deltas_of(self, item_id: str) -> str:
        return "".join(
            e["delta"] for e in self.of("conversation.item.input_audio_transcription.delta") if e["item_id"] == item_id
        )


async def run_session(
    client: AsyncOpenAI,
    session: dict[str, Any] | None,
    audio: bytes,
    *,
    pace: float = 0.0,
    commit: bool = False,
    expect_completed: int | None = 1,
    extra: list[dict[str, Any] | str] | None = None,
    timeout: float = 60.0,
    query: dict[str, str] | None = None,
) -> LiveSession:
    """Opens a transcription session, sends `session.update` (GA) with `session` unless None, streams
    `audio` in 100 ms appends (`pace` = seconds of wall clock per second of audio; 0 = as fast as it
    goes), commits if asked, sends `extra` events, and collects events until `expect_completed` turns
    are completed or failed (None: until all audio is sent and every turn begun is finished), or the
    timeout."""
    live = LiveSession()
    all_sent = asyncio.Event()

    def finished() -> bool:
        done = len(live.of("conversation.item.input_audio_transcription.completed")) + len(
            live.of("conversation.item.input_audio_transcription.failed")
        )
        if expect_completed is not None:
            return done >= expect_completed
        begun = len(live.of("input_audio_buffer.speech_started"))
        return all_sent.is_set() and done >= 1 and done == len(live.of("input_audio_buffer.committed")) >= begun

    async with client.realtime.connect(extra_query=query or {"intent": "transcription"}) as connection:
        async def receive() -> None:
            async for event in connection:
                live.events.append(Received(time.monotonic() - live.opened, event.model_dump(mode="json")))
                if finished():
                    return

        receiver = asyncio.create_task(receive())
        if session is not None:
            await connection.session.update(session=session)  # type: ignore[arg-type]
        step = int(RATE * APPEND_SECONDS) * 2
        started = time.monotonic()
        for offset in range(0, len(audio), step):
            await connection.input_audio_buffer.append(audio=base64.b64encode(audio[offset : offset + step]).decode())
            if pace:
                due = started + pace * (offset + step) / (2 * RATE)
                await asyncio.sleep(max(0.0, due - time.monotonic()))
        if commit:
            await connection.input_audio_buffer.commit()
        for event in extra or []:
            if isinstance(event, str):
                await connection.send_raw(event)
            else:
                await connection.send(event)  # type: ignore[arg-type]
        all_sent.set()
        if finished():
            receiver.cancel()
            return live
        try:
            await asyncio.wait_for(receiver, timeout)
        except TimeoutError:
            raise AssertionError(f"the session did not finish in {timeout} s: {[r.type for r in live.events]}") from None
    return live


def transcription_session(**audio_input: Any) -> dict[str, Any]:
    """A GA transcription session update: English, earshot's default model unless given."""
    config: dict[str, Any] = {"transcription": {"model": "whisper-1", "language": "en"}}
    config.update(audio_input)
    return {"type": "transcription", "audio": {"input": config}}
