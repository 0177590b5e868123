"""Unit tests of the lakehouse benchmark's figures (no services)."""

from __future__ import annotations

from ops.bench.streaming import checkpoint_figures


def _cp(cid: int, status: str, trigger: int, duration: int, state: int = 0) -> dict[str, object]:
    return {"id": cid, "status": status, "trigger_timestamp": trigger,
            "end_to_end_duration": duration, "state_size": state}


def test_checkpoint_figures_only_count_checkpoints_since_the_mark() -> None:
    history = [
        _cp(5, "IN_PROGRESS", 5_000, 100),
        _cp(4, "COMPLETED", 4_000, 3_000, state=3 * 2**20),
        _cp(3, "FAILED", 3_000, 9_000),
        _cp(2, "COMPLETED", 2_000, 1_000, state=2**20),
        _cp(1, "COMPLETED", 1_000, 60_000, state=50 * 2**20),  # before the mark
    ]
    got = checkpoint_figures(history, since_ms=2_000)
    assert got == {"completed": 2, "failed": 1, "duration_p50_s": 2.0,
                   "duration_max_s": 3.0, "state_mb": 3.0}


def test_checkpoint_figures_without_completed_checkpoints_have_no_durations() -> None:
    assert checkpoint_figures([_cp(1, "FAILED", 10, 5)], since_ms=0) == {
        "completed": 0, "failed": 1}
