"""Requests' shares of a source: equal splits while they overlap; RAPL from a fake powercap
tree (two packages, one wrapping); the estimate per worker process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from aria.energy import EnergyAccounts, EnergyShare, RaplCounter, find_rapl_domains


class FakeSource:
    def __init__(self) -> None:
        self.total = 0.0

    def read(self) -> float:
        return self.total


def test_a_request_alone_gets_everything_spent_while_it_ran() -> None:
    source = FakeSource()
    share = EnergyShare(source.read)
    source.total = 5.0  # spent before: nobody's
    share.open("a")
    source.total = 8.0
    assert share.close("a") == pytest.approx(3.0)
    assert share.close("a") == 0.0  # once


def test_overlapping_requests_split_each_interval_equally() -> None:
    source = FakeSource()
    share = EnergyShare(source.read)
    share.open("a")
    source.total = 2.0  # a alone: 2
    share.open("b")
    source.total = 6.0  # a and b: 2 each
    a = share.close("a")
    source.total = 7.0  # b alone: 1
    b = share.close("b")
    assert a == pytest.approx(4.0) and b == pytest.approx(3.0)
    assert a + b == pytest.approx(source.total)  # shares add up to what was spent


def _package(root: Path, index: int, energy: int, max_range: int) -> None:
    path = root / f"intel-rapl:{index}"
    path.mkdir(parents=True)
    (path / "name").write_text(f"package-{index}\n")
    (path / "energy_uj").write_text(f"{energy}\n")
    (path / "max_energy_range_uj").write_text(f"{max_range}\n")


def _set(root: Path, index: int, energy: int) -> None:
    (root / f"intel-rapl:{index}" / "energy_uj").write_text(f"{energy}\n")


def test_rapl_counter_accumulates_across_wraps_of_several_packages(tmp_path: Path) -> None:
    _package(tmp_path, 0, 1_000, 10_000)
    _package(tmp_path, 1, 9_500, 10_000)
    counter = RaplCounter(find_rapl_domains(tmp_path))
    assert counter.joules() == 0.0
    _set(tmp_path, 0, 4_000)  # +3000
    _set(tmp_path, 1, 500)  # wrapped: +1000
    assert counter.joules() == pytest.approx(0.004)
    _set(tmp_path, 1, 9_000)  # +8500 (no wrap)
    _set(tmp_path, 0, 2_000)  # wrapped again: +8000
    assert counter.joules() == pytest.approx(0.0205)


def test_accounts_share_the_package_counter_among_all_requests(tmp_path: Path) -> None:
    _package(tmp_path, 0, 0, 1_000_000_000)
    accounts = EnergyAccounts(cpu_model="x", powercap_root=tmp_path)
    assert accounts.method == "rapl"
    first = accounts.open(pid=111)
    _set(tmp_path, 0, 2_000_000)  # 2 J, alone
    second = accounts.open(pid=222)  # another worker: same package
    _set(tmp_path, 0, 4_000_000)  # 2 J shared
    assert first is not None and second is not None
    one = first.close()
    _set(tmp_path, 0, 5_000_000)
    two = second.close()
    assert one.joules == pytest.approx(3.0) and two.joules == pytest.approx(2.0)
    assert one.method == "rapl" and "RAPL" in one.label


def test_accounts_estimate_each_worker_from_its_cpu_time(tmp_path: Path) -> None:
    accounts = EnergyAccounts(cpu_model="AMD EPYC 9654", powercap_root=tmp_path / "none")
    assert accounts.method == "estimate"
    burner = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; sum(range(20_000_000)); print('done', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    with burner:  # waits for it and closes its pipes
        try:
            share = accounts.open(burner.pid)
            assert accounts.open(None) is None  # no process: nothing to estimate
            assert share is not None and burner.stdout is not None
            assert burner.stdout.readline().strip() == b"done"
            reading = share.close()
            assert reading.method == "estimate" and reading.label.startswith("ESTIMATE")
            assert reading.joules > 0  # the worker's CPU time, not this process's
        finally:
            burner.kill()
