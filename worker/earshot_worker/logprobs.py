"""Per-token log probabilities for OpenAI's include[]=logprobs.

faster-whisper does not expose per-token probabilities, but CTranslate2's alignment pass (run for word
timestamps) returns the model's probability of every text token given the audio. The recorder wraps
the CTranslate2 model, keeps those probabilities as faster-whisper aligns each window, and hands each
decoded segment the ones of its own tokens. Values are the probabilities of the decoded tokens under
teacher forcing on the audio; they are not the beam search's running scores.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from typing import Any

from .messages import TokenLogprob

log = logging.getLogger("earshot_worker")


def _byte_decoder() -> dict[str, int]:
    """GPT-2's byte-level BPE alphabet (which Whisper's tokenizer uses), reversed: character -> byte."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    characters = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            characters.append(256 + extra)
            extra += 1
    return {chr(character): byte for byte, character in zip(printable, characters)}


BYTE_DECODER = _byte_decoder()


class AlignmentRecorder:
    """Stands in for the CTranslate2 Whisper model; records text token probabilities from align()."""

    def __init__(self, whisper: Any) -> None:
        self._whisper = whisper
        self.recording = False
        self.pending: deque[tuple[int, float]] = deque()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._whisper, name)

    def align(self, encoder_output: Any, start_sequence: Any, text_tokens: list[list[int]], num_frames: Any, **kwargs: Any) -> Any:
        results = self._whisper.align(encoder_output, start_sequence, text_tokens, num_frames, **kwargs)
        if self.recording:
            for tokens, result in zip(text_tokens, results):
                self.pending.extend(zip(tokens, result.text_token_probs))
        return results

    def start(self) -> None:
        self.pending.clear()
        self.recording = True

    def stop(self) -> None:
        self.recording = False
        self.pending.clear()

    def take(self, tokens: list[int], hf_tokenizer: Any) -> list[TokenLogprob] | None:
        """The logprobs of one segment's text tokens, in order; None if the record does not match."""
        result: list[TokenLogprob] = []
        for token in tokens:
            if not self.pending or self.pending[0][0] != token:
                log.warning("token probabilities out of step with the decoded segment; sending none for it")
                self.pending.clear()
                return None
            _, probability = self.pending.popleft()
            piece = hf_tokenizer.id_to_token(token) or ""
            raw = bytes(BYTE_DECODER.get(character, 0) for character in piece)
            result.append(
                {
                    "token": raw.decode("utf-8", errors="replace"),
                    "logprob": math.log(max(float(probability), 1e-30)),
                    "bytes": list(raw),
                }
            )
        return result
