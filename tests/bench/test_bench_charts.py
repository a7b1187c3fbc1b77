"""Charts are drawn from result JSON alone (so committed results can be re-plotted)."""

from __future__ import annotations

from pathlib import Path

from aria.bench import ternary_chart

PNG = b"\x89PNG\r\n\x1a\n"


def _row(size: str, fmt: str, params: int, rate: float, traffic: float) -> dict[str, object]:
    summary = {"median": rate, "min": rate, "max": rate, "n": 1}
    return {"size": size, "format": fmt, "params": params, "gen_tok_s": summary,
            "bytes_per_token": traffic}  # fmt: skip


def test_ternary_chart_tolerates_a_missing_format(tmp_path: Path) -> None:
    study = {
        "results": [
            _row("200M", "Q4_0", 200, 60.0, 110e6),
            _row("100M", "Q4_0", 100, 90.0, 55e6),
            _row("100M", "TQ1_0", 100, 120.0, 25e6),  # no 200M TQ1_0 row
        ]
    }
    out = ternary_chart(study, tmp_path / "charts" / "t.png")
    assert out.read_bytes()[:8] == PNG
    assert out.stat().st_size < 200_000
