"""Recorded machines: a filesystem tree under ``root/`` plus replayed command output.

Each fixture directory holds ``fixture.toml`` (the ``platform.system()`` and
``platform.machine()`` of the recorded machine), ``root/`` (its /proc, /sys, /dev ...)
and ``commands/<program>.txt`` (what that program printed). A program without a
recording behaves like a missing binary, as ``subprocess.run`` does.
"""

from __future__ import annotations

import errno
import subprocess
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aria.hardware import HardwareSnapshot, detect

FIXTURES = Path(__file__).parent / "fixtures"
FAMILIES = (
    "intel-xeon-sapphire-rapids",
    "amd-ryzen-zen4",
    "apple-m3-pro",
    "qualcomm-snapdragon-x-elite",
)


@dataclass(frozen=True)
class RecordedMachine:
    directory: Path
    system: str
    machine: str

    @property
    def root(self) -> Path:
        return self.directory / "root"

    def run(self, argv: Sequence[str], **_: Any) -> subprocess.CompletedProcess[str]:
        recording = self.directory / "commands" / f"{Path(argv[0]).name}.txt"
        if not recording.is_file():
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", argv[0])
        return subprocess.CompletedProcess(list(argv), 0, recording.read_text(), "")

    def detect(self) -> HardwareSnapshot:
        return detect(root=self.root, run=self.run, system=self.system, machine=self.machine)


def recorded(name: str) -> RecordedMachine:
    directory = FIXTURES / name
    meta = tomllib.loads((directory / "fixture.toml").read_text())
    return RecordedMachine(directory, meta["system"], meta["machine"])
