"""Sharded jobs: one long job shared among workers, each decoding a contiguous share of its chunks.

The gateway sends the same job to each idle worker with `shard: {index, count}` and joins their segments
in shard order; what the shards give together must be what the job gives unsharded."""

from __future__ import annotations

import time

import pytest

from earshot_worker.transcribe import Shard, shard_chunks

from test_worker import assert_failed_with, assert_succeeded, by_type, long_recording

FALLBACK = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]


@pytest.mark.parametrize("durations", [[], [30.0], [30.0, 5.0], [29.0, 30.0, 12.0, 30.0, 1.0, 28.0, 30.0]])
@pytest.mark.parametrize("count", [1, 2, 3, 4])
def test_shards_cover_every_chunk_once_in_order(durations, count):
    ranges = [shard_chunks(durations, Shard(index, count)) for index in range(count)]
    assert [chunk for part in ranges for chunk in part] == list(range(len(durations)))


def test_shards_share_the_work_about_equally():
    ranges = [shard_chunks([30.0] * 10, Shard(index, 2)) for index in range(2)]
    assert [len(part) for part in ranges] == [5, 5]
    # A short last chunk counts for less than a whole one, but not for nothing.
    ranges = [shard_chunks([30.0, 30.0, 30.0, 2.0], Shard(index, 2)) for index in range(2)]
    assert [len(part) for part in ranges] == [2, 2]


def test_the_first_shard_gets_less_when_it_detects_the_language_for_all():
    durations = [30.0, 30.0, 30.0, 5.0]
    assert [len(shard_chunks(durations, Shard(index, 2))) for index in range(2)] == [2, 2]
    # Detection is an encoder pass of a whole window: about half a chunk's work.
    assert [len(shard_chunks(durations, Shard(index, 2), True)) for index in range(2)] == [1, 3]


def segments_of(messages: list[dict]) -> list[dict]:
    return [m["segment"] for m in by_type(messages, "segment")]


@pytest.fixture(scope="module")
def long_worker(long_audio_worker):
    # The multilingual model: each shard detects the language from the whole audio, as the whole job does.
    return long_audio_worker


def run_shard(worker, clip, options: dict, index: int, count: int, relay: str | None = None) -> list[dict]:
    """Shard `index` of a job; `relay`: the language to pass on to it after its info, as the gateway does
    with the first shard's."""
    job = worker.submit(clip, {**options, "shard": {"index": index, "count": count}})
    if relay is not None:
        info = worker.next_message()
        assert info["type"] == "info" and info["job"] == job
        worker.send({"type": "language", "job": job, "language": relay})
        return [info, *worker.collect(job)]
    return worker.collect(job)


@pytest.fixture(scope="module")
def long_clip(audio_dir, tmp_path_factory):
    return long_recording(audio_dir, tmp_path_factory.mktemp("shards") / "long.wav")


@pytest.fixture(scope="module")
def whole_job(long_worker, long_clip):
    whole = long_worker.transcribe(long_clip, {"task": "transcribe", "temperature": FALLBACK})
    assert_succeeded(whole)
    assert by_type(whole, "info")[0]["duration"] >= 60
    return whole


def test_the_shards_of_a_long_job_give_together_what_the_whole_job_gives(long_worker, long_clip, whole_job):
    clip, whole = long_clip, whole_job
    options = {"task": "transcribe", "temperature": FALLBACK}
    language = by_type(whole, "info")[0]["language"]
    parts = [run_shard(long_worker, clip, options, 0, 2), run_shard(long_worker, clip, options, 1, 2, relay=language)]
    for part in parts:
        assert_succeeded(part)
    # Every shard reports the whole audio's info; only the first detects the language, for all.
    assert by_type(parts[0], "info")[0] | {"job": ""} == by_type(whole, "info")[0] | {"job": ""}
    later = by_type(parts[1], "info")[0]
    assert later | {"job": "", "language": language, "language_probability": 0.0} \
        == by_type(whole, "info")[0] | {"job": "", "language_probability": 0.0}
    assert later["language"] == ""
    assert all(segments_of(part) for part in parts), "each shard decodes a share of the chunks"

    def comparable(segment: dict) -> tuple:
        return segment["text"], segment["start"], segment["end"], segment["seek"], segment["tokens"]

    joined = [comparable(segment) for part in parts for segment in segments_of(part)]
    assert joined == [comparable(segment) for segment in segments_of(whole)]


def test_a_later_shard_decodes_with_the_language_relayed_to_it(long_worker, long_clip):
    options = {"task": "transcribe", "temperature": FALLBACK}
    english = run_shard(long_worker, long_clip, options, 1, 2, relay="en")
    french = run_shard(long_worker, long_clip, options, 1, 2, relay="fr")
    assert_succeeded(english)
    assert_succeeded(french)
    # The relayed language is the one the decoder is given.
    assert " ".join(s["text"] for s in segments_of(english)) != " ".join(s["text"] for s in segments_of(french))
    # A job given its language does not wait for one.
    given = run_shard(long_worker, long_clip, {**options, "language": "en"}, 1, 2)
    assert_succeeded(given)
    assert by_type(given, "info")[0]["language"] == "en"
    assert segments_of(given) == segments_of(english)


def test_a_later_shard_waiting_for_its_language_stops_at_a_cancel(long_worker, long_clip):
    job = long_worker.submit(long_clip, {"task": "transcribe", "shard": {"index": 1, "count": 2}})
    assert long_worker.next_message()["type"] == "info"
    time.sleep(0.5)
    cancelled_at = time.monotonic()
    long_worker.send({"type": "cancel", "job": job})
    assert_failed_with(long_worker.collect(job), "cancelled")
    assert time.monotonic() - cancelled_at < 4, "the wait ends at the cancel, not at its timeout"


def test_a_short_job_is_decoded_whole_by_the_first_shard_and_the_others_send_nothing(long_worker, audio_dir):
    options = {"task": "transcribe", "temperature": FALLBACK}
    whole = long_worker.transcribe(audio_dir / "jfk.flac", options)
    first = long_worker.transcribe(audio_dir / "jfk.flac", {**options, "shard": {"index": 0, "count": 2}})
    other = long_worker.transcribe(audio_dir / "jfk.flac", {**options, "shard": {"index": 1, "count": 2}})
    assert_succeeded(first)
    assert_succeeded(other)
    assert [s["text"] for s in segments_of(first)] == [s["text"] for s in segments_of(whole)]
    assert segments_of(other) == []


@pytest.mark.parametrize("shard, extra", [
    ({"index": 2, "count": 2}, {}),
    ({"index": 0, "count": 2}, {"diarize": {}}),
])
def test_a_shard_that_cannot_be_is_invalid_options(long_worker, audio_dir, shard, extra):
    messages = long_worker.transcribe(audio_dir / "jfk.flac", {"shard": shard, **extra})
    assert_failed_with(messages, "invalid_options")
