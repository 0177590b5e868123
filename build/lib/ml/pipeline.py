"""Glue shared by the CLI, the benchmarks and the tests: one fit, from any series source.

:func:`fit_model` trains (or fine-tunes), picks the threshold on the held-out tail of the
normal series (:func:`split_validation`) and evaluates on labelled test data;
:func:`register` stores the outcome. The series may come from any
:class:`~ml.data.sources.SeriesSource`: a file, the lake, or the simulator's seeded sites,
which live on the simulator's side of that protocol (callers wanting them import them there).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ml.data.sources import DataDescription, Series
from ml.evaluation import Evaluation, ThresholdMethod, choose_threshold, evaluate_model
from ml.inference import Scorer
from ml.models.anomalybert import AnomalyBert, AnomalyBertConfig
from ml.registry import ModelMetadata, ModelRegistry
from ml.training.train import TrainConfig, TrainResult, train
from ml.training.transfer import transfer

VALIDATION_FRACTION = 0.15
"""Default fraction of every normal series held out to choose the threshold."""


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
    validation_fraction: float = VALIDATION_FRACTION,
    threshold_method: ThresholdMethod = ThresholdMethod.QUANTILE,
    label_tuned: bool = False,
    quantile: float = 0.995,
) -> FitOutcome:
    """Train from scratch (``model_config``) or fine-tune (``parent``), then threshold.

    The threshold comes from the held-out tail of the normal series (``quantile`` of its
    scores, or the synthetic rule); ``test`` (labelled) is only used for the evaluation,
    which names the rule (e.g. ``quantile:0.995``).

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
                                 degradation=train_config.degradation, quantile=quantile)
    rule = (f"quantile:{quantile:g}" if threshold_method is ThresholdMethod.QUANTILE
            else threshold_method.value)
    evaluation = None
    if test is not None:
        evaluation = evaluate_model(scorer, test, threshold, rule, label_tuned=label_tuned)
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
