"""The benchmark's own arithmetic: percentiles, goals, a profile's shares, its options."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from bench.__main__ import QUICK, BenchOptions, parse
from bench.driver import percentile
from bench.profile import summarize
from bench.report import Ratio, run_name
from bench.temporal_requests import handled_between, requests_by_operation
from bench.webhooks import _spread


def test_a_percentile_is_a_measured_value_by_nearest_rank() -> None:
    values = [float(n) for n in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile(values, 1.0) == 100.0
    assert percentile([3.0, 1.0, 2.0], 0.99) == 3.0
    assert percentile([], 0.99) == 0.0


def test_a_goal_is_a_floor_or_a_ceiling() -> None:
    assert Ratio("rate", 0.8, 0.8, at_least=True).met
    assert not Ratio("rate", 0.79, 0.8, at_least=True).met
    assert Ratio("p99", 1.5, 1.5, at_least=False).met
    assert not Ratio("p99", 1.51, 1.5, at_least=False).met
    assert "NOT MET" in Ratio("p99", 2.0, 1.5, at_least=False).line()


def test_copies_of_one_event_are_spread_over_the_run() -> None:
    assert _spread([{"id": "a"}, {"id": "b"}], 2) == [
        {"id": "a"},
        {"id": "b"},
        {"id": "a"},
        {"id": "b"},
    ]


def test_a_profile_counts_busy_samples_by_their_innermost_library(tmp_path: Path) -> None:
    folded = tmp_path / "worker.folded"
    folded.write_text(
        "run (worker.py:10);select (selectors.py:1);EpollSelector.select (selectors.py:468) 50\n"
        "run (worker.py:10);reserve (activities/inventory.py:5);execute "
        "(sqlalchemy/engine/base.py:9) 30\n"
        "run (worker.py:10);encode (temporalio/converter.py:3);validate "
        "(pydantic/type_adapter.py:7) 10\n"
        "run (worker.py:10);render (notifications/render.py:4) 10\n"
    )
    profile = summarize("worker", folded)
    assert profile is not None
    assert (profile.samples, profile.idle_samples) == (50, 50)
    assert profile.by_library == {
        "SQLAlchemy / SQLModel": 0.6,
        "pydantic": 0.2,
        "our code": 0.2,
    }
    assert profile.top_functions[0] == ("execute (sqlalchemy/engine/base.py:9)", 0.6)


def test_no_profile_from_a_missing_or_empty_file(tmp_path: Path) -> None:
    assert summarize("api", tmp_path / "absent.folded") is None
    (tmp_path / "empty.folded").write_text("")
    assert summarize("api", tmp_path / "empty.folded") is None


def test_quick_mode_and_sizes_from_the_command_line() -> None:
    assert parse([]) == BenchOptions()
    assert parse(["--quick"]) == QUICK
    chosen = parse(["--quick", "--checkouts", "12", "--open-checkouts", "40", "--profile"])
    assert (chosen.checkouts, chosen.open_checkouts, chosen.quick, chosen.profile) == (
        12,
        40,
        True,
        True,
    )
    with pytest.raises(SystemExit):
        parse(["--concurrency", "0"])


def test_a_run_is_named_by_its_start_in_utc() -> None:
    started = datetime(2026, 12, 1, 3, 4, 5, tzinfo=UTC)
    assert run_name(started, quick=False) == "20261201T030405Z"
    assert run_name(started, quick=True) == "20261201T030405Z-quick"


EXPOSITION = """\
# HELP service_requests service_requests counter
# TYPE service_requests counter
service_requests{namespace="default",operation="SignalWorkflowExecution",service_name="frontend"} 12
service_requests{namespace="default",operation="PollWorkflowTaskQueue",service_name="frontend"} 40
service_requests{namespace="_unknown_",operation="PollWorkflowTaskQueue",service_name="matching"} 2
service_requests_total_bogus{operation="SignalWorkflowExecution"} 99
persistence_requests{operation="UpdateWorkflowExecution"} 7
"""


def test_temporal_requests_are_summed_per_operation_and_counted_between_reads() -> None:
    before = requests_by_operation(EXPOSITION)
    assert before == {"SignalWorkflowExecution": 12.0, "PollWorkflowTaskQueue": 42.0}
    after = {"SignalWorkflowExecution": 15.0, "PollWorkflowTaskQueue": 52.0, "StartWorkflow": 1.0}
    assert handled_between(before, after) == {
        "PollWorkflowTaskQueue": 10,
        "SignalWorkflowExecution": 3,
        "StartWorkflow": 1,
    }
