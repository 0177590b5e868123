"""The filter-stall benchmark runs without the stack and measures what it says."""

from __future__ import annotations

from api.output import MAX_FILTER_CHARS, split_filter
from api.validation import MAX_FILTERS
from infra.settings import GridLakeSettings
from ops.bench import api_stall


def test_worst_filters_are_the_longest_accepted_and_parse() -> None:
    filters = api_stall.worst_filters()
    assert len(filters) == MAX_FILTERS
    assert all(len(f) == MAX_FILTER_CHARS for f in filters)
    name, op, value = split_filter(filters[0])
    assert (name, op, value[0], value[-1]) == ("entity_id", "=", "x", "y")


def test_small_run_measures_health_under_load(settings: GridLakeSettings) -> None:
    got = api_stall.run_benchmark(settings, probes=50, load_clients=1)
    assert got["health_idle"]["n"] == 50 and got["health_under_worst_filters"]["n"] == 50
    assert got["worst_filter_requests"]["n"] > 0
    # parsed in full, then the query needs the serving copy or the lake: none here
    assert got["worst_filter_requests"]["statuses"] == [503]
    assert got["filter_12000_spaces_status"] == 422
    assert got["old_regex_12000_spaces_s"] > 0.1  # the quadratic case, for comparison
