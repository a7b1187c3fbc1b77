"""RAPL parsing (fixture powercap trees, wraparound) and the labelled TDP estimate."""

from __future__ import annotations

from pathlib import Path

import pytest

from aria.energy import (
    EnergyMeter,
    counter_delta,
    find_rapl_domains,
    load_tdp_table,
    tdp_estimate,
)


def _domain(root: Path, directory: str, name: str, energy: int, max_range: int) -> Path:
    path = root / directory
    path.mkdir(parents=True)
    (path / "name").write_text(name + "\n")
    (path / "energy_uj").write_text(f"{energy}\n")
    (path / "max_energy_range_uj").write_text(f"{max_range}\n")
    return path / "energy_uj"


@pytest.fixture
def powercap(tmp_path: Path) -> Path:
    root = tmp_path / "powercap"
    _domain(root, "intel-rapl:0", "package-0", 1_000, 10_000)
    _domain(root, "intel-rapl:0/intel-rapl:0:0", "core", 500, 10_000)  # inside the package
    _domain(root, "intel-rapl:0:0", "core", 500, 10_000)  # flat sysfs link form
    _domain(root, "intel-rapl:1", "package-1", 9_000, 10_000)
    _domain(root, "intel-rapl:2", "psys", 5, 10_000)
    (root / "intel-rapl").mkdir()  # the control-type directory has no counters
    return root


def test_counter_delta_handles_wraparound() -> None:
    assert counter_delta(100, 250, 1_000) == 150
    assert counter_delta(900, 50, 1_000) == 150
    assert counter_delta(7, 7, 1_000) == 0


def test_find_domains_keeps_packages_only(powercap: Path) -> None:
    domains = find_rapl_domains(powercap)
    assert [d.name for d in domains] == ["package-0", "package-1"]
    assert all(d.max_range_uj == 10_000 for d in domains)


def test_missing_or_unreadable_powercap_gives_no_domains(tmp_path: Path) -> None:
    assert find_rapl_domains(tmp_path / "absent") == []
    broken = tmp_path / "pc"
    _domain(broken, "intel-rapl:0", "package-0", 1, 10).write_text("not a number")
    assert find_rapl_domains(broken) == []


def test_meter_sums_packages_across_a_wrap(powercap: Path) -> None:
    meter = EnergyMeter(cpu_model="Some CPU", powercap_root=powercap)
    assert meter.method == "rapl"
    meter.start()
    (powercap / "intel-rapl:0" / "energy_uj").write_text("3000\n")  # +2000 uJ
    (powercap / "intel-rapl:1" / "energy_uj").write_text("1000\n")  # wrapped: +2000 uJ
    reading = meter.stop()
    assert reading.method == "rapl"
    assert reading.joules == pytest.approx(0.004)
    assert "RAPL" in reading.label and "package-0" in reading.label


def test_tdp_estimate_matches_the_table() -> None:
    table = load_tdp_table()
    epyc = tdp_estimate("AMD EPYC 7763 64-Core Processor", table)
    assert epyc.watts_per_core == pytest.approx(280 / 64)
    assert "EPYC" in epyc.label and epyc.label.startswith("ESTIMATE")
    # first match wins: the specific Xeon entry comes before the generic one
    spr = tdp_estimate("Intel(R) Xeon(R) Platinum 8480+", table)
    assert spr.watts_per_core == pytest.approx(350 / 56)


def test_unknown_cpu_uses_the_documented_default() -> None:
    estimate = tdp_estimate("Mystery Chip 9000", load_tdp_table())
    assert estimate.watts_per_core == pytest.approx(65 / 8)
    assert "documented default" in estimate.label


def test_meter_without_rapl_estimates_from_cpu_time(tmp_path: Path) -> None:
    meter = EnergyMeter(cpu_model="AMD Ryzen 7 5800X", powercap_root=tmp_path / "none")
    assert meter.method == "estimate"
    meter.start()
    deadline = sum(range(3_000_000))  # burn some CPU time
    reading = meter.stop()
    assert deadline > 0
    assert reading.method == "estimate"
    assert reading.label.startswith("ESTIMATE")
    assert reading.joules >= 0
