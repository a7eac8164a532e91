"""The worker contract, as the gateway defines it: contract.schema.json, generated from
src/engine/messages.ts by `npm run contract` (never edited by hand).

The worker validates every command it reads against it, takes the names of the options it accepts
from it, and reads the batching rule (`x-unbatched`) from it. Its tests validate every event the
worker writes against it (worker/tests/conftest.py).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from jsonschema import Draft202012Validator, ValidationError

SCHEMA_FILE = Path(__file__).with_name("contract.schema.json")
SCHEMA: dict[str, Any] = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
DEFINITIONS: dict[str, Any] = SCHEMA["$defs"]

BatchKind = Literal["cross_request", "long_audio", "packing"]

_validators: dict[str, Draft202012Validator] = {}


def validator(definition: str) -> Draft202012Validator:
    """A validator for one of the contract's definitions (TranscribeOptions, WorkerEvent, ...)."""
    if definition not in _validators:
        if definition not in DEFINITIONS:
            raise KeyError(f"the contract defines no {definition!r}")
        _validators[definition] = Draft202012Validator({"$ref": f"#/$defs/{definition}", "$defs": DEFINITIONS})
    return _validators[definition]


def errors(definition: str, value: object) -> list[ValidationError]:
    """What is wrong with `value` as a `definition`, most relevant first; empty when it is valid."""
    return sorted(validator(definition).iter_errors(value), key=lambda error: [str(p) for p in error.absolute_path])


def describe(found: list[ValidationError]) -> str:
    """One line for a list of validation errors: where each is (a JSON path) and what it is."""
    parts = []
    for error in found:
        where = "/".join(str(part) for part in error.absolute_path)
        parts.append(f"{where}: {error.message}" if where else error.message)
    return "; ".join(parts)


_OPTIONS: dict[str, Any] = DEFINITIONS["TranscribeOptions"]["properties"]
# Options the worker handles itself rather than passing to faster-whisper's transcribe().
WORKER_OPTIONS = frozenset(name for name, schema in _OPTIONS.items() if schema.get("x-worker") is True)
# faster-whisper transcribe() keyword arguments a job may set.
ALLOWED_OPTIONS = frozenset(_OPTIONS) - WORKER_OPTIONS
COMMAND_TYPES = frozenset(
    variant["properties"]["type"]["const"] for variant in DEFINITIONS["WorkerCommand"]["anyOf"]
)
EVENT_TYPES = frozenset(variant["properties"]["type"]["const"] for variant in DEFINITIONS["WorkerEvent"]["anyOf"])


def batchable(options: Mapping[str, object], kind: BatchKind) -> bool:
    """Whether a job with these options may be decoded in a batch of this kind (or, for `packing`,
    packed into a shared window): the contract's `x-unbatched` rule, which the gateway's batchKey and
    packKey read too (src/engine/messages.ts `batchable`)."""
    for name, value in options.items():
        if value is None or name not in _OPTIONS:
            continue
        rule = _OPTIONS[name].get("x-unbatched", {}).get(kind)
        if rule == "any" or (isinstance(rule, list) and any(_same(value, item) for item in rule)):
            return False
    return True


def _same(value: object, item: object) -> bool:
    # JSON equality: true is not 1.
    return type(value) is type(item) and value == item
