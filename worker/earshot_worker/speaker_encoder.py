"""Speaker embeddings on numpy: Resemblyzer's voice encoder (converted by speaker_model.py) and its features.

The features are Resemblyzer's (librosa's melspectrogram with its defaults): 16 kHz audio, 25 ms Hann
windows every 10 ms (n_fft 400, centred, zero-padded), power spectrum, 40 Slaney mel bands from 0 to 8 kHz,
not logarithmic. The network: a 3-layer LSTM over the frames of a window, the last layer's final hidden
state through a linear layer and a ReLU, L2-normalised: a 256-d embedding whose cosine similarity with
another tells whether the two windows are the same voice. Resemblyzer embeds partial utterances of 160
frames (1.6 s); so do we.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .speaker_model import HIDDEN, LAYERS, MELS, WEIGHTS_FILE

SAMPLING_RATE = 16000
N_FFT = 400
HOP = 160
# Frames in one partial utterance (1.6 s), as Resemblyzer.
PARTIAL_FRAMES = 160
# Windows run through the LSTM together: bounds the memory of one step (a few MB).
BATCH = 256


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (librosa's default, htk=False): linear below 1 kHz, logarithmic above."""
    f_sp = 200.0 / 3
    mels = hz / f_sp
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(hz >= min_log_hz, min_log_mel + np.log(np.maximum(hz, 1e-10) / min_log_hz) / logstep, mels)


def _mel_to_hz(mels: np.ndarray) -> np.ndarray:
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(mels >= min_log_mel, min_log_hz * np.exp(logstep * (mels - min_log_mel)), f_sp * mels)


def mel_filters(sr: int = SAMPLING_RATE, n_fft: int = N_FFT, n_mels: int = MELS) -> np.ndarray:
    """librosa.filters.mel(sr, n_fft, n_mels) with its defaults: triangles on the Slaney scale, area-normalised."""
    fftfreqs = np.linspace(0, sr / 2, 1 + n_fft // 2)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(np.array(0.0)), _hz_to_mel(np.array(sr / 2.0)), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fftfreqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels]))[:, None]
    return weights.astype(np.float32)


_FILTERS = mel_filters()
# scipy.signal.get_window("hann", N_FFT): the periodic Hann window librosa uses.
_WINDOW = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)


def mel_frames(audio: np.ndarray) -> np.ndarray:
    """(frames, 40) mel power frames of 16 kHz audio, one every 10 ms, frame i centred on sample 160·i."""
    padded = np.pad(audio.astype(np.float32, copy=False), N_FFT // 2)
    count = 1 + (padded.size - N_FFT) // HOP
    if count <= 0:
        return np.zeros((0, MELS), dtype=np.float32)
    frames = np.lib.stride_tricks.as_strided(padded, shape=(count, N_FFT),
                                             strides=(padded.strides[0] * HOP, padded.strides[0]))
    spectrum = np.fft.rfft(frames * _WINDOW, axis=1)
    power = (spectrum.real ** 2 + spectrum.imag ** 2).astype(np.float32)
    mels: np.ndarray = power @ _FILTERS.T
    return mels


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (np.tanh(0.5 * x) + 1.0)


@dataclass
class _Layer:
    w_ih_t: np.ndarray
    w_hh_t: np.ndarray
    bias: np.ndarray


class SpeakerEncoder:
    """Embeds windows of mel frames; one instance per worker (the weights are 5.7 MB)."""

    def __init__(self, directory: Path) -> None:
        with np.load(directory / WEIGHTS_FILE) as weights:
            self.layers = [
                _Layer(np.ascontiguousarray(weights[f"lstm.weight_ih_l{i}"].T),
                       np.ascontiguousarray(weights[f"lstm.weight_hh_l{i}"].T),
                       weights[f"lstm.bias_ih_l{i}"] + weights[f"lstm.bias_hh_l{i}"])
                for i in range(LAYERS)
            ]
            self.linear_t = np.ascontiguousarray(weights["linear.weight"].T)
            self.linear_bias = weights["linear.bias"]

    def embed(self, windows: np.ndarray) -> np.ndarray:
        """(n, frames, 40) mel windows of equal length → (n, 256) L2-normalised embeddings."""
        out = np.zeros((windows.shape[0], HIDDEN), dtype=np.float32)
        for start in range(0, windows.shape[0], BATCH):
            out[start:start + BATCH] = self._embed_batch(windows[start:start + BATCH])
        return out

    def _embed_batch(self, windows: np.ndarray) -> np.ndarray:
        batch, steps, _ = windows.shape
        sequence = windows.astype(np.float32, copy=False)
        hidden = np.zeros((batch, HIDDEN), dtype=np.float32)
        for layer in self.layers:
            # PyTorch's LSTM: gates i, f, g, o; the input projection of every step at once.
            projected = (sequence.reshape(batch * steps, -1) @ layer.w_ih_t + layer.bias).reshape(batch, steps, -1)
            hidden = np.zeros((batch, HIDDEN), dtype=np.float32)
            cell = np.zeros((batch, HIDDEN), dtype=np.float32)
            outputs = np.empty((batch, steps, HIDDEN), dtype=np.float32)
            for t in range(steps):
                gates = projected[:, t] + hidden @ layer.w_hh_t
                i = _sigmoid(gates[:, :HIDDEN])
                f = _sigmoid(gates[:, HIDDEN:2 * HIDDEN])
                g = np.tanh(gates[:, 2 * HIDDEN:3 * HIDDEN])
                o = _sigmoid(gates[:, 3 * HIDDEN:])
                cell = f * cell + i * g
                hidden = o * np.tanh(cell)
                outputs[:, t] = hidden
            sequence = outputs
        raw = np.maximum(hidden @ self.linear_t + self.linear_bias, 0.0)
        norms = np.linalg.norm(raw, axis=1, keepdims=True)
        embeddings: np.ndarray = raw / np.maximum(norms, 1e-12)
        return embeddings
