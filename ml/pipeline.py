"""Glue shared by the CLI, the benchmark and the tests: seeded scenarios and one fit.

:class:`SiteScenario` describes a simulated ESS site (seed, fleet size, BMS interval,
channel subset) with a normal training period and a test period with a fixed fault
plan (thermal runaway onsets and cell imbalances on both banks). :func:`fit_model`
trains (or fine-tunes), picks the threshold on held-out normal data and evaluates on
labelled test data; :func:`register` stores the outcome.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from lakehouse.contracts.messages import ESS_BMS
from ml.data.sources import DataDescription, Series, SimulatorSource
from ml.evaluation import Evaluation, ThresholdMethod, choose_threshold, evaluate_model
from ml.inference import Scorer
from ml.models.anomalybert import AnomalyBert, AnomalyBertConfig
from ml.registry import ModelMetadata, ModelRegistry
from ml.training.train import TrainConfig, TrainResult, train
from ml.training.transfer import transfer
from mock_devices.config import FleetConfig, parse_time_ms
from mock_devices.faults import FaultRequest

HOUR_MS = 3_600_000


def ess_fault_plan(day: str) -> tuple[FaultRequest, ...]:
    """The benchmark's faults on ``day`` (two banks ``ESS-01``, ``ESS-02``).

    Each bank gets one thermal runaway onset (45 min) and one 3-hour cell imbalance.
    """
    def at(kind: str, dev: str, hhmm: str, hours: float | None = None) -> FaultRequest:
        dur = None if hours is None else int(hours * HOUR_MS)
        return FaultRequest(kind, dev, parse_time_ms(f"{day}T{hhmm}"), dur)

    return (
        at("ess_thermal_runaway", "ESS-01", "02:00"),
        at("ess_cell_imbalance", "ESS-02", "04:00", 3.0),
        at("ess_cell_imbalance", "ESS-01", "11:00", 3.0),
        at("ess_thermal_runaway", "ESS-02", "14:00"),
    )


@dataclass(frozen=True)
class SiteScenario:
    """A simulated ESS site: a normal training day and a labelled test day.

    Attributes:
        name: Site name.
        seed: Simulator seed.
        meters: Fleet size (sets the ESS ratings through the substation peaks).
        ess_interval_s: BMS interval in seconds.
        channels: Channel subset of the ESS contract (``None``: all numeric fields).
        train_start: First day of the normal period.
        train_hours: Length of the normal period (training plus validation).
        test_start: Day of the labelled test period.
        test_hours: Length of the test period.
        validation_fraction: Tail of every normal series held out for thresholds.

    """

    name: str
    seed: int
    meters: int = 50
    ess_interval_s: int = 10
    channels: tuple[str, ...] | None = None
    train_start: str = "2024-06-01"
    train_hours: float = 24.0
    test_start: str = "2024-06-02"
    test_hours: float = 24.0
    validation_fraction: float = 0.15

    def _fleet(self) -> FleetConfig:
        return FleetConfig(meters=self.meters, ess_interval_s=self.ess_interval_s,
                           seed=self.seed)

    def normal_source(self) -> SimulatorSource:
        """The fault-free period."""
        return SimulatorSource(ESS_BMS, self._fleet(), self.train_start, self.train_hours,
                               channels=self.channels, site=self.name)

    def test_source(self) -> SimulatorSource:
        """The labelled test period (:func:`ess_fault_plan`)."""
        return SimulatorSource(ESS_BMS, self._fleet(), self.test_start, self.test_hours,
                               faults=ess_fault_plan(self.test_start[:10]),
                               channels=self.channels, site=self.name)


SITE_A = SiteScenario("site-a", seed=7, meters=50)
"""The benchmark's source site."""
SITE_B = SiteScenario("site-b", seed=11, meters=400)
"""The benchmark's transfer target (other seed, larger banks)."""


def split_validation(series: Sequence[Series], fraction: float) -> tuple[list[Series],
                                                                         list[Series]]:
    """Hold out the last ``fraction`` of every series: (training, validation)."""
    train_part, val_part = [], []
    for s in series:
        cut = int(round(len(s) * (1.0 - fraction)))
        train_part.append(s.slice(0, cut))
        val_part.append(s.slice(cut, len(s)))
    return train_part, val_part


@dataclass
class FitOutcome:
    """A trained model with its threshold and (optional) test evaluation."""

    result: TrainResult
    threshold: float
    threshold_method: ThresholdMethod
    evaluation: Evaluation | None
    data: DataDescription
    train_config: TrainConfig
    parent_id: str | None = None
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def model(self) -> AnomalyBert:
        """The trained network."""
        return self.result.model

    def scorer(self, batch_size: int = 64) -> Scorer:
        """A scorer of the trained network."""
        return Scorer(self.result.model, self.result.scaler, batch_size=batch_size)


def fit_model(
    normal: Sequence[Series],
    data: DataDescription,
    train_config: TrainConfig,
    model_config: AnomalyBertConfig | None = None,
    parent: AnomalyBert | None = None,
    parent_id: str | None = None,
    test: Sequence[Series] | None = None,
    validation_fraction: float = 0.15,
    threshold_method: ThresholdMethod = ThresholdMethod.QUANTILE,
    label_tuned: bool = False,
) -> FitOutcome:
    """Train from scratch (``model_config``) or fine-tune (``parent``), then threshold.

    The threshold comes from the held-out tail of the normal series; ``test`` (labelled)
    is only used for the evaluation.

    Raises:
        ValueError: Neither or both of ``model_config`` and ``parent`` given.

    """
    if (model_config is None) == (parent is None):
        raise ValueError("give exactly one of model_config and parent")
    fit_part, val_part = split_validation(normal, validation_fraction)
    if parent is not None:
        result: TrainResult = transfer(parent, fit_part, train_config)
    else:
        assert model_config is not None
        result = train(fit_part, model_config, train_config)
    scorer = Scorer(result.model, result.scaler)
    threshold = choose_threshold(scorer, val_part, threshold_method,
                                 degradation=train_config.degradation)
    evaluation = None
    if test is not None:
        evaluation = evaluate_model(scorer, test, threshold, threshold_method.value,
                                    label_tuned=label_tuned)
    return FitOutcome(result, threshold, threshold_method, evaluation, data, train_config,
                      parent_id, extra={"train_seconds": round(result.seconds, 3),
                                        "steps_per_s": round(result.steps_per_s, 3),
                                        "final_loss": round(result.final_loss, 5)})


def register(registry: ModelRegistry, outcome: FitOutcome) -> ModelMetadata:
    """Store a fitted model with its data description, scaler, metrics and threshold."""
    return registry.save(
        outcome.result.model, outcome.result.scaler, outcome.data,
        outcome.train_config.to_dict(), metrics=outcome.evaluation,
        threshold=outcome.threshold, parent_id=outcome.parent_id, extra=dict(outcome.extra),
    )
