"""Prometheus metrics of the ML service: ``GET /metrics`` (docs/operations.md).

* ``gridlake_ml_requests_total{method,route,status}``,
  ``gridlake_ml_request_duration_seconds{method,route}``: every request
  (:class:`infra.metrics.RequestMetrics`);
* ``gridlake_ml_scores_total{kind,endpoint,outcome}`` (``ok`` or ``error``),
  ``gridlake_ml_score_duration_seconds{kind,endpoint}`` and
  ``gridlake_ml_scored_steps_total{kind,endpoint}``: scoring by model kind;
* ``gridlake_ml_active_model_info{model_id,kind}`` (1 for the active model, no series
  without one) and ``gridlake_ml_active_model`` (1 with an active model, else 0).

The service is one uvicorn process: the figures are that process's. ``/metrics`` answers
only with ``ml.metrics_public`` (the default; the service binds loopback): the service has
no credentials of its own, so where it is reachable from other hosts, turn it off and
scrape through a proxy that authenticates.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from infra.metrics import BUCKETS, RequestMetrics

HTTP = RequestMetrics("gridlake_ml", "ML service")
SCORES = Counter("gridlake_ml_scores_total", "Scoring calls by model kind, endpoint and "
                 "outcome.", ["kind", "endpoint", "outcome"])
SCORE_LATENCY = Histogram("gridlake_ml_score_duration_seconds", "Time to score one call "
                          "(reading the lake included for score/lake).",
                          ["kind", "endpoint"], buckets=BUCKETS)
STEPS = Counter("gridlake_ml_scored_steps_total", "Time steps scored, by model kind.",
                ["kind", "endpoint"])


@contextmanager
def scoring(kind: str, endpoint: str) -> Iterator[Callable[[int], None]]:
    """Time and count one scoring call; the body reports the steps it scored."""
    started = time.perf_counter()
    steps = [0]

    def scored(n: int) -> None:
        steps[0] += n

    try:
        yield scored
    except Exception:
        SCORES.labels(kind, endpoint, "error").inc()
        raise
    SCORES.labels(kind, endpoint, "ok").inc()
    SCORE_LATENCY.labels(kind, endpoint).observe(time.perf_counter() - started)
    STEPS.labels(kind, endpoint).inc(steps[0])


class _ActiveModel:
    """The active model, read from the model manager on each scrape."""

    def __init__(self, active: Callable[[], Any]) -> None:
        self.active = active

    def collect(self) -> Iterator[Metric]:
        snap = self.active()
        info = GaugeMetricFamily("gridlake_ml_active_model_info", "The active model "
                                 "(value 1).", labels=["model_id", "kind"])
        up = GaugeMetricFamily("gridlake_ml_active_model", "1 with an active model, else 0.")
        if snap is not None:
            loaded = snap[0]
            info.add_metric([loaded.model_id, loaded.metadata.kind], 1)
        up.add_metric([], 0 if snap is None else 1)
        yield info
        yield up


def install_metrics(app: FastAPI, public: bool, active: Callable[[], Any]) -> None:
    """Add the request middleware and ``GET /metrics`` (when ``public``).

    Args:
        app: The service.
        public: ``ml.metrics_public``.
        active: The model manager's snapshot (``(loaded, scorer)`` or None).

    """
    model = _ActiveModel(active)

    class _Exposed:
        def collect(self) -> Iterator[Metric]:
            yield from REGISTRY.collect()
            yield from model.collect()

    if public:
        @app.get("/metrics", include_in_schema=False)
        def metrics() -> Response:
            return Response(generate_latest(_Exposed()),
                            media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(HTTP.middleware(app))
