"""faster-whisper's own answers for the live-transcription tests (test/support/reference-audio.ts runs this
with the project's Python): its audio decoding, its Silero VAD model's probabilities, its speech timestamps;
and G.711 as FFmpeg (PyAV) encodes and decodes it.

  decode FILE RATE                 FILE decoded by faster_whisper.decode_audio at RATE Hz, mono: float32 LE on stdout
  g711-encode FILE CODEC           FILE decoded at 8 kHz, encoded by FFmpeg's CODEC (pcm_mulaw, pcm_alaw): bytes on stdout
  g711-decode CODEC                G.711 bytes on stdin decoded by FFmpeg's CODEC: int16 LE on stdout
  probs                            float32 LE 16 kHz samples on stdin; the probability of every 512-sample chunk,
                                   from faster-whisper's SileroVADModel, as float32 LE on stdout
  speech THRESHOLD MIN_SILENCE_MS  float32 LE 16 kHz samples on stdin; get_speech_timestamps (no padding) as JSON
"""

from __future__ import annotations

import json
import sys

import av
import numpy as np
from faster_whisper.audio import decode_audio
from faster_whisper.vad import VadOptions, get_speech_timestamps, get_vad_model

CHUNK = 512


def read_samples() -> np.ndarray:
    return np.frombuffer(sys.stdin.buffer.read(), dtype="<f4").astype(np.float32)


def main(argv: list[str]) -> int:
    command = argv[0]
    if command == "decode":
        audio = decode_audio(argv[1], sampling_rate=int(argv[2]))
        sys.stdout.buffer.write(audio.astype("<f4").tobytes())
    elif command == "g711-encode":
        pcm = np.round(decode_audio(argv[1], sampling_rate=8000) * 32768).astype("<i2")
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = 8000
        encoder = av.CodecContext.create(argv[2], "w")
        encoder.sample_rate, encoder.format, encoder.layout = 8000, "s16", "mono"
        for packet in [*encoder.encode(frame), *encoder.encode(None)]:
            sys.stdout.buffer.write(bytes(packet))
    elif command == "g711-decode":
        decoder = av.CodecContext.create(argv[1], "r")
        decoder.sample_rate, decoder.layout = 8000, "mono"
        for decoded in decoder.decode(av.Packet(sys.stdin.buffer.read())):
            sys.stdout.buffer.write(decoded.to_ndarray().astype("<i2").tobytes())
    elif command == "probs":
        samples = read_samples()
        whole = len(samples) // CHUNK * CHUNK
        # SileroVADModel zeroes the last 64 samples of its input's last chunk (it builds the next chunk's
        # context in place, on a view of the audio): one more chunk of silence keeps that off the audio
        # compared, and its probability is dropped.
        padded = np.concatenate([samples[:whole], np.zeros(CHUNK, dtype=np.float32)])
        probabilities = get_vad_model()(padded)[: whole // CHUNK]
        sys.stdout.buffer.write(np.asarray(probabilities, dtype="<f4").reshape(-1).tobytes())
    elif command == "speech":
        options = VadOptions(threshold=float(argv[1]), min_silence_duration_ms=int(argv[2]), speech_pad_ms=0)
        speeches = get_speech_timestamps(read_samples(), options)
        json.dump([{"start": s["start"], "end": s["end"]} for s in speeches], sys.stdout)
    else:
        raise SystemExit(f"unknown command {command!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
