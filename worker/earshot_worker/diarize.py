"""Who speaks when: speaker turns of a recording, for diarized transcripts.

1. Speech regions from the Silero VAD that ships inside faster-whisper.
2. Within each region, windows of 1.6 s (the encoder's partial utterance) every WINDOW_HOP_SECONDS; a region
   shorter than a window is one window of its own length. Each window is embedded by the speaker encoder
   (speaker_encoder.py), its audio first brought to the level the encoder was trained at.
3. The windows are clustered: agglomerative, average linkage on cosine similarity (scipy.cluster.hierarchy),
   cut where the clusters merged are less alike than MERGE_SIMILARITY (or at the number of speakers asked for).
   Clusters holding less than a small share of the speech are folded into the nearest larger one.
4. With known speakers (reference clips), each cluster whose centroid is close enough to a reference takes
   its name (each name once, best matches first); the others are A, B, … in order of first appearance.
5. Each moment of speech belongs to the window whose centre is nearest: turns are the runs of one speaker,
   joined across pauses shorter than JOIN_SECONDS.

The gateway's formatters split segments at speaker changes; the worker labels every word (speaker_at).

Backends: a diarization model directory holds `encoder.json`, whose `kind` names the code that runs it
(`resemblyzer-lstm`: speaker_encoder.py). Another kind of model plugs in by adding a class with the
Diarizer's `embed` and naming it in BACKENDS.
"""

from __future__ import annotations

import bisect
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

import numpy as np
from faster_whisper.vad import VadOptions, get_speech_timestamps
from scipy.cluster.hierarchy import fcluster, linkage

from .speaker_encoder import HOP, PARTIAL_FRAMES, SAMPLING_RATE, SpeakerEncoder, mel_frames
from .messages import DiarizeOptions, SegmentMessage
from .speaker_model import INFO_FILE, default_directory

FRAME_SECONDS = HOP / SAMPLING_RATE
WINDOW_HOP_SECONDS = 0.75
# Turns of one speaker this close are one turn: a pause within a turn is part of it (as annotators mark turns).
JOIN_SECONDS = 1.0
# Regions shorter than this carry too little voice for an embedding; their words take a neighbour's speaker.
MIN_WINDOW_SECONDS = 0.4
# Average-linkage similarity below which two clusters stay apart: chosen by bench/diarization.py on its
# tuning voices (the lowest mean DER), reported on others.
MERGE_SIMILARITY = 0.63
# A cluster with less than this share of the speech is not taken for a speaker of its own unless the
# number of speakers is given.
MIN_SPEAKER_SHARE = 0.08
# A cluster takes a known speaker's name when its centroid is at least this similar to the reference.
KNOWN_SIMILARITY = 0.6
# Clustering is quadratic in memory and time (scipy's pairwise distances and linkage): at most this many
# windows are clustered; the others join the cluster of the nearest centroid.
MAX_CLUSTERED = 600
# Resemblyzer normalises each utterance to -30 dBFS (raising only) before its features.
TARGET_DBFS = -30.0
# Below faster-whisper's default threshold (0.5): quiet speech missed here is missed by the diarization (on the
# tuning voices of bench/diarization.py, 0.35 halves the speech missed, with no more confusion).
VAD = VadOptions(threshold=0.35, min_speech_duration_ms=150, min_silence_duration_ms=300, speech_pad_ms=100)


class Embedder(Protocol):
    def embed(self, windows: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class SpeakerCount:
    exact: int | None = None
    minimum: int = 1
    maximum: int | None = None


@dataclass(frozen=True)
class KnownSpeaker:
    name: str
    audio: np.ndarray


@dataclass(frozen=True)
class Turn:
    start: float
    end: float
    speaker: str


@dataclass
class Window:
    start: float  # seconds
    end: float
    embedding: np.ndarray = field(repr=False)

    @property
    def centre(self) -> float:
        return 0.5 * (self.start + self.end)


def speech_regions(audio: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) sample ranges of speech, by faster-whisper's Silero VAD."""
    return [(int(chunk["start"]), int(chunk["end"])) for chunk in get_speech_timestamps(audio, VAD)]


def _levelled(audio: np.ndarray) -> np.ndarray:
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if audio.size else 0.0
    if rms <= 1e-6:
        return audio
    gain = 10 ** ((TARGET_DBFS - 20 * np.log10(rms)) / 20)
    return audio * np.float32(gain) if gain > 1 else audio


def region_windows(audio: np.ndarray, regions: list[tuple[int, int]]) -> list[tuple[float, float, np.ndarray]]:
    """The mel windows of each region: (start s, end s, frames)."""
    hop_frames = max(1, round(WINDOW_HOP_SECONDS / FRAME_SECONDS))
    windows: list[tuple[float, float, np.ndarray]] = []
    for start, end in regions:
        frames = mel_frames(_levelled(audio[start:end]))
        count = frames.shape[0]
        offset = start / SAMPLING_RATE
        if count < MIN_WINDOW_SECONDS / FRAME_SECONDS:
            continue
        if count <= PARTIAL_FRAMES:
            windows.append((offset, offset + count * FRAME_SECONDS, frames))
            continue
        starts = list(range(0, count - PARTIAL_FRAMES + 1, hop_frames))
        if starts[-1] + PARTIAL_FRAMES < count:
            starts.append(count - PARTIAL_FRAMES)  # the region's end gets a window too
        for first in starts:
            windows.append((offset + first * FRAME_SECONDS, offset + (first + PARTIAL_FRAMES) * FRAME_SECONDS,
                            frames[first:first + PARTIAL_FRAMES]))
    return windows


def embed_windows(embedder: Embedder, windows: list[tuple[float, float, np.ndarray]]) -> list[Window]:
    """Embeddings of windows of any length: those of one length go through the encoder together."""
    embeddings: list[np.ndarray | None] = [None] * len(windows)
    by_length: dict[int, list[int]] = {}
    for index, (_, _, frames) in enumerate(windows):
        by_length.setdefault(frames.shape[0], []).append(index)
    for indices in by_length.values():
        batch = embedder.embed(np.stack([windows[i][2] for i in indices]))
        for i, embedding in zip(indices, batch):
            embeddings[i] = embedding
    return [Window(start, end, embedding) for (start, end, _), embedding in zip(windows, embeddings)
            if embedding is not None]


def utterance_embedding(embedder: Embedder, audio: np.ndarray) -> np.ndarray | None:
    """One embedding for a clip of one voice (a known speaker's reference): the mean of its windows'."""
    windows = embed_windows(embedder, region_windows(audio, speech_regions(audio) or [(0, audio.size)]))
    if not windows:
        return None
    mean: np.ndarray = np.mean([window.embedding for window in windows], axis=0)
    return mean / max(float(np.linalg.norm(mean)), 1e-12)


def agglomerate(embeddings: np.ndarray, count: SpeakerCount, weights: np.ndarray) -> np.ndarray:
    """Cluster labels 0..k-1 by average-linkage agglomeration on cosine similarity (embeddings are unit
    vectors; scipy.cluster.hierarchy). Clusters are cut where the average similarity of the pair merged
    falls below MERGE_SIMILARITY, within the minimum and maximum numbers of clusters, or at `count.exact`.
    Unless the count is exact, small clusters (by `weights`, the seconds of speech each item stands for)
    are then folded into the cluster whose average similarity to them is highest."""
    n = embeddings.shape[0]
    if n < 2:
        return np.zeros(n, dtype=np.int64)
    if count.exact is not None:
        low = high = min(count.exact, n)
    else:
        low = min(max(1, count.minimum), n)
        high = max(low, min(count.maximum if count.maximum is not None else n, n))
    # Cosine distance of unit vectors: 1 - similarity; average linkage averages it as it would the similarity.
    tree = linkage(embeddings.astype(np.float64), method="average", metric="cosine")
    labels = fcluster(tree, t=1.0 - MERGE_SIMILARITY, criterion="distance")
    found = int(labels.max())
    if found > high or found < low:
        labels = fcluster(tree, t=high if found > high else low, criterion="maxclust")
    labels = labels - 1

    if count.exact is None:
        # The sum of a cluster's vectors: the average pairwise similarity of two clusters is
        # sum_a · sum_b / (n_a n_b).
        sums = {int(k): embeddings[labels == k].sum(axis=0, dtype=np.float64) for k in np.unique(labels)}
        sizes = {k: int((labels == k).sum()) for k in sums}
        total = float(weights.sum())
        while len(sums) > low:
            shares = {k: float(weights[labels == k].sum()) / total for k in sums}
            small = min(shares, key=lambda k: shares[k])
            if shares[small] >= MIN_SPEAKER_SHARE:
                break
            nearest = max((k for k in sums if k != small),
                          key=lambda k: float(sums[small] @ sums[k]) / (sizes[small] * sizes[k]))
            labels[labels == small] = nearest
            sums[nearest] = sums[nearest] + sums.pop(small)
            sizes[nearest] += sizes.pop(small)

    _, dense = np.unique(labels, return_inverse=True)
    result: np.ndarray = dense.astype(np.int64)
    return result


def cluster(windows: list[Window], count: SpeakerCount) -> np.ndarray:
    """A label per window; at most MAX_CLUSTERED (evenly spaced) are clustered, the rest join the nearest centroid."""
    embeddings = np.stack([window.embedding for window in windows])
    weights = np.array([window.end - window.start for window in windows])
    if len(windows) == 1:
        return np.zeros(1, dtype=np.int64)
    if len(windows) <= MAX_CLUSTERED:
        return agglomerate(embeddings, count, weights)
    chosen = np.linspace(0, len(windows) - 1, MAX_CLUSTERED).round().astype(np.int64)
    sample_labels = agglomerate(embeddings[chosen], count, weights[chosen])
    centroids = np.stack([embeddings[chosen][sample_labels == label].mean(axis=0)
                          for label in range(int(sample_labels.max()) + 1)])
    labels: np.ndarray = np.argmax(embeddings @ centroids.T, axis=1)
    return labels


def speaker_names(windows: list[Window], labels: np.ndarray, known: dict[str, np.ndarray]) -> dict[int, str]:
    """Cluster label → speaker name: known names for clusters that match a reference, A, B, … for the rest."""
    order = list(dict.fromkeys(int(label) for label in labels))  # by first appearance (windows are in time order)
    centroids = {}
    for label in order:
        mean = np.mean([w.embedding for w, l in zip(windows, labels) if l == label], axis=0)
        centroids[label] = mean / max(float(np.linalg.norm(mean)), 1e-12)
    names: dict[int, str] = {}
    pairs = sorted(((float(centroids[label] @ reference), label, name)
                    for label in order for name, reference in known.items()), reverse=True)
    for similarity, label, name in pairs:
        if similarity < KNOWN_SIMILARITY:
            break
        if label not in names and name not in names.values():
            names[label] = name
    letters = (chr(ord("A") + i) if i < 26 else f"S{i + 1}" for i in range(10_000))
    for label in order:
        if label not in names:
            letter = next(letters)
            while letter in known:
                letter = next(letters)
            names[label] = letter
    return names


class Diarization:
    """The speaker turns of one recording, and the speaker at any moment of it ("A" if nobody speaks)."""

    def __init__(self, turns: list[Turn]) -> None:
        self.turns = turns
        self._starts = [turn.start for turn in turns]

    def speaker_at(self, start: float, end: float) -> str:
        """The speaker of the turn holding the middle of [start, end], or of the nearest turn."""
        if not self.turns:
            return "A"
        middle = 0.5 * (start + end)
        index = bisect.bisect_right(self._starts, middle) - 1
        candidates = [turn for turn in self.turns[max(0, index):index + 2]]
        inside = [turn for turn in candidates if turn.start <= middle <= turn.end]
        if inside:
            return inside[0].speaker
        return min(candidates, key=lambda turn: min(abs(turn.start - middle), abs(turn.end - middle))).speaker


def turns_of(windows: list[Window], labels: np.ndarray, names: dict[int, str],
             regions: list[tuple[int, int]]) -> list[Turn]:
    """Each region split where the nearest window's speaker changes; neighbouring turns of one speaker joined."""
    turns: list[Turn] = []
    centres = [window.centre for window in windows]
    for start_sample, end_sample in regions:
        start, end = start_sample / SAMPLING_RATE, end_sample / SAMPLING_RATE
        inside = [i for i, c in enumerate(centres) if start <= c <= end]
        if not inside:
            # A region too short for a window: the nearest window's speaker.
            middle = 0.5 * (start + end)
            inside = [min(range(len(centres)), key=lambda i: abs(centres[i] - middle))]
        cursor = start
        for position, i in enumerate(inside):
            following = inside[position + 1] if position + 1 < len(inside) else None
            boundary = end if following is None else 0.5 * (centres[i] + centres[following])
            speaker = names[int(labels[i])]
            if turns and turns[-1].speaker == speaker and cursor - turns[-1].end < 1e-6 + JOIN_SECONDS:
                turns[-1] = Turn(turns[-1].start, boundary, speaker)
            else:
                turns.append(Turn(cursor, boundary, speaker))
            cursor = boundary
    return turns


@dataclass(frozen=True)
class EmbeddedSpeech:
    regions: list[tuple[int, int]]  # samples
    windows: list[Window]


def speakers_of(speech: EmbeddedSpeech, count: SpeakerCount, references: dict[str, np.ndarray]) -> Diarization:
    """The turns of embedded speech; `references`: known speakers' embeddings by name."""
    windows = speech.windows
    if not windows:
        return Diarization([])
    if references and count.exact is None:
        # Known speakers are expected to speak: at least as many clusters as references.
        count = SpeakerCount(minimum=max(count.minimum, min(len(references), len(windows))), maximum=count.maximum)
    labels = cluster(windows, count)
    names = speaker_names(windows, labels, references)
    return Diarization(turns_of(windows, labels, names, speech.regions))


class Diarizer:
    """Diarizes recordings with one speaker embedding model."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    def reference(self, audio: np.ndarray) -> np.ndarray | None:
        """A known speaker's embedding from a clip of their voice; None if it holds no speech."""
        return utterance_embedding(self.embedder, audio)

    def embed(self, audio: np.ndarray) -> EmbeddedSpeech:
        """The speech regions of `audio` and the embeddings of their windows (the costly part)."""
        regions = speech_regions(audio)
        return EmbeddedSpeech(regions, embed_windows(self.embedder, region_windows(audio, regions)))

    def diarize(self, audio: np.ndarray, count: SpeakerCount = SpeakerCount(),
                references: dict[str, np.ndarray] | None = None) -> Diarization:
        """The speaker turns of `audio`; `references`: known speakers' embeddings by name."""
        return speakers_of(self.embed(audio), count, references or {})

    def diarize_with_clips(self, audio: np.ndarray, count: SpeakerCount = SpeakerCount(),
                           known: list[KnownSpeaker] | None = None) -> Diarization:
        references = {}
        for speaker in known or []:
            embedding = self.reference(speaker.audio)
            if embedding is None:
                raise ValueError(f"the reference of {speaker.name!r} holds no speech")
            references[speaker.name] = embedding
        return self.diarize(audio, count, references)


def _resemblyzer(directory: Path) -> Embedder:
    return SpeakerEncoder(directory)


# encoder.json's "kind" → how to load a model directory of that kind.
BACKENDS: dict[str, Callable[[Path], Embedder]] = {"resemblyzer-lstm": _resemblyzer}

_loaded: dict[Path, Diarizer] = {}
_lock = threading.Lock()


def load_diarizer(directory: Path) -> Diarizer:
    """The diarizer of a model directory, loaded once per process."""
    with _lock:
        if directory not in _loaded:
            info_file = directory / INFO_FILE
            if not info_file.is_file():
                raise FileNotFoundError(f"no diarization model at {directory} (it has no {INFO_FILE})")
            kind = json.loads(info_file.read_text(encoding="utf-8")).get("kind")
            if kind not in BACKENDS:
                raise ValueError(f"{info_file}: unknown kind {kind!r}; known: {', '.join(BACKENDS)}")
            _loaded[directory] = Diarizer(BACKENDS[kind](directory))
        return _loaded[directory]


# The model directory this worker diarizes with (__main__: --diarization-model).
model_directory: Path = default_directory()
# Known speakers' reference clips: OpenAI's documented bounds.
REFERENCE_SECONDS = (2.0, 10.0)


def diarize_job(options: DiarizeOptions, audio: np.ndarray, decode: Callable[[str, float], np.ndarray]) -> Diarization:
    """The diarization a job asks for. A bad reference clip raises ReferenceProblem naming it;
    `decode` reads a clip (the worker's own decoder, with its limits)."""
    diarizer = load_diarizer(model_directory)
    references: dict[str, np.ndarray] = {}
    for index, speaker in enumerate(options.get("known_speakers", [])):
        where = f"known_speaker_references[{index}] (for {speaker['name']!r})"
        try:
            clip = decode(speaker["audio"], REFERENCE_SECONDS[1] + 1)
        except Exception as error:
            raise ReferenceProblem(f"{where}: {getattr(error, 'message', error)}") from error
        seconds = clip.size / SAMPLING_RATE
        if not REFERENCE_SECONDS[0] <= seconds <= REFERENCE_SECONDS[1]:
            raise ReferenceProblem(f"{where} lasts {seconds:.1f} s; a reference must last 2 to 10 seconds")
        embedding = diarizer.reference(clip)
        if embedding is None:
            raise ReferenceProblem(f"{where} holds no speech")
        references[speaker["name"]] = embedding
    count = SpeakerCount(exact=options.get("num_speakers"), minimum=options.get("min_speakers", 1),
                         maximum=options.get("max_speakers"))
    return diarizer.diarize(audio, count, references)


class ReferenceProblem(ValueError):
    pass


def label_segment(segment: SegmentMessage, diarization: Diarization) -> None:
    """Each word gets the speaker of its moment; the segment the speaker of most of its words' time."""
    spoken: dict[str, float] = {}
    for word in segment["words"] or []:
        speaker = diarization.speaker_at(word["start"], word["end"])
        word["speaker"] = speaker
        spoken[speaker] = spoken.get(speaker, 0.0) + max(word["end"] - word["start"], 0.01)
    segment["speaker"] = (max(spoken, key=lambda name: spoken[name]) if spoken
                          else diarization.speaker_at(segment["start"], segment["end"]))
