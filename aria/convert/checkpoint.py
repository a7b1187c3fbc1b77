"""A downloaded Hugging Face checkpoint folder: ``config.json``, tokenizer files and
one or more ``.safetensors`` shards (listed by ``model.safetensors.index.json``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from aria.convert.safetensors import SafetensorsFile
from aria.errors import StoreError

__all__ = ["Checkpoint"]

_INDEX = "model.safetensors.index.json"


class Checkpoint:
    """Tensor lookup across the shards of one checkpoint; tensors are memory-mapped."""

    def __init__(self, folder: Path, config: dict[str, Any], shards: list[SafetensorsFile]):
        self.folder = folder
        self.config = config
        self._where: dict[str, SafetensorsFile] = {}
        for shard in shards:
            for name in shard:
                if name in self._where:
                    raise StoreError(f"{folder.name}: tensor {name} is in two shards")
                self._where[name] = shard

    @classmethod
    def open(cls, folder: Path) -> Checkpoint:
        """Read ``config.json`` and the safetensors headers of ``folder``.

        Raises:
            StoreError: a missing or unreadable config, index or shard.
        """
        config = _json(folder / "config.json")
        index = folder / _INDEX
        if index.exists():
            weight_map = _json(index).get("weight_map")
            if not isinstance(weight_map, dict):
                raise StoreError(f"{index} has no weight_map")
            names = sorted(set(weight_map.values()))
        else:
            names = sorted(p.name for p in folder.glob("*.safetensors"))
        if not names:
            raise StoreError(f"{folder} holds no .safetensors weights")
        return cls(folder, config, [SafetensorsFile(folder / name) for name in names])

    @property
    def names(self) -> list[str]:
        return list(self._where)

    def __contains__(self, name: object) -> bool:
        return name in self._where

    def dtype(self, name: str) -> str:
        return self._shard(name).tensors[name].dtype

    def shape(self, name: str) -> tuple[int, ...]:
        return self._shard(name).tensors[name].shape

    def array(self, name: str) -> np.ndarray[Any, Any]:
        return self._shard(name).array(name)

    def float32(self, name: str) -> np.ndarray[Any, np.dtype[np.float32]]:
        return self._shard(name).float32(name)

    def _shard(self, name: str) -> SafetensorsFile:
        try:
            return self._where[name]
        except KeyError:
            raise StoreError(f"{self.folder.name}: the checkpoint has no tensor {name}") from None


def _json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StoreError(f"cannot read {path}: {exc}") from exc
    if not isinstance(value, dict):
        raise StoreError(f"{path} is not a JSON object")
    return value
