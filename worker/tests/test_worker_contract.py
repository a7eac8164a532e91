"""The worker's side of the contract (earshot_worker/contract.schema.json, generated from the
gateway's src/engine/messages.ts): its types, its option lists and its batching rule are the schema's.
Every event the real worker writes in the other tests is validated against it (conftest.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from earshot_worker import contract, messages
from earshot_worker.transcribe import ALLOWED_OPTIONS, WORKER_OPTIONS, LongAudioBatching

CASES = json.loads((Path(__file__).with_name("batching-cases.json")).read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("typed", "definition"),
    [
        (messages.TranscribeOptions, "TranscribeOptions"),
        (messages.VadParameters, "VadParameters"),
        (messages.JobSpec, "JobSpec"),
        (messages.ReadyEvent, "ReadyEvent"),
        (messages.FatalEvent, "FatalEvent"),
        (messages.InfoEvent, "InfoEvent"),
        (messages.SegmentEvent, "SegmentEvent"),
        (messages.DoneEvent, "DoneEvent"),
        (messages.ErrorEvent, "ErrorEvent"),
    ],
)
def test_each_typed_dict_has_exactly_the_fields_of_its_schema(typed: Any, definition: str) -> None:
    schema = contract.DEFINITIONS[definition]
    assert set(typed.__annotations__) == set(schema["properties"])
    assert set(typed.__required_keys__) == set(schema.get("required", []))


def test_segment_word_and_logprob_types_match_their_schemas() -> None:
    segment = contract.DEFINITIONS["SegmentEvent"]["properties"]["segment"]
    assert set(messages.SegmentMessage.__annotations__) == set(segment["properties"])
    assert set(messages.SegmentMessage.__required_keys__) == set(segment["required"])
    word = segment["properties"]["words"]["anyOf"][0]["items"]
    assert set(messages.WordMessage.__annotations__) == set(word["properties"])
    assert set(messages.WordMessage.__required_keys__) == set(word["required"])
    logprob = segment["properties"]["logprobs"]["anyOf"][0]["items"]
    assert set(messages.TokenLogprob.__annotations__) == set(logprob["required"])


def test_error_and_fatal_codes_are_the_contracts() -> None:
    def consts(schema: dict[str, Any]) -> set[str]:
        return {variant["const"] for variant in schema["anyOf"]}

    assert consts(contract.DEFINITIONS["ErrorEvent"]["properties"]["code"]) == set(messages.ErrorCode.__args__)
    assert consts(contract.DEFINITIONS["FatalEvent"]["properties"]["code"]) == set(messages.FatalCode.__args__)


def test_option_lists_come_from_the_schema() -> None:
    assert WORKER_OPTIONS == {"logprobs", "batch_size", "fit_window", "partial", "diarize", "shard"}
    assert ALLOWED_OPTIONS | WORKER_OPTIONS == set(contract.DEFINITIONS["TranscribeOptions"]["properties"])
    assert "language" in ALLOWED_OPTIONS and "clip_timestamps" not in ALLOWED_OPTIONS


@pytest.mark.parametrize("case", CASES, ids=[json.dumps(case["options"]) for case in CASES])
def test_batching_rule_agrees_with_the_gateway_on_the_shared_cases(case: dict[str, Any]) -> None:
    # test/unit/contract.test.ts checks the same cases against the gateway's batchKey.
    assert contract.batchable(case["options"], "cross_request") is case["cross_request"]
    assert contract.batchable(case["options"], "long_audio") is case["long_audio"]
    # run_job asks with the job's options as sent, the worker's own among them.
    long_audio = LongAudioBatching(batch_size=8, min_seconds=60.0)
    assert long_audio.batch_size_for(case["options"], 61.0) == (8 if case["long_audio"] else None)
    assert long_audio.batch_size_for(case["options"], 59.0) is None


def test_commands_the_gateway_sends_are_valid_and_malformed_ones_are_not() -> None:
    job = {"job": "j1", "audio": "/tmp/a.wav", "options": {"task": "transcribe", "temperature": [0.0, 0.2]}}
    assert not contract.errors("WorkerCommand", {"type": "transcribe", **job})
    assert not contract.errors("WorkerCommand", {"type": "transcribe_batch", "jobs": [job, job]})
    assert not contract.errors("WorkerCommand", {"type": "cancel", "job": "j1"})
    assert not contract.errors("WorkerCommand", {"type": "shutdown"})
    assert contract.errors("WorkerCommand", {"type": "transcribe_batch", "jobs": []})
    assert contract.errors("WorkerCommand", {"type": "transcribe", "job": 7, "audio": "a", "options": {}})
    assert contract.errors("TranscribeOptions", {"beam_size": "5"})
    assert contract.errors("TranscribeOptions", {"clip_timestamps": "0"})
    assert contract.errors("TranscribeOptions", {"vad_parameters": {"window_size_samples": 512}})
