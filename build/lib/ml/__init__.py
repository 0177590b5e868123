"""Equipment anomaly detection for GridLake (AnomalyBERT) and its microservice.

Subpackages: :mod:`ml.models` (the network, no I/O), :mod:`ml.data` (series sources,
synthetic degradation, scaling), :mod:`ml.training` (training and transfer);
modules :mod:`ml.inference`, :mod:`ml.evaluation`, :mod:`ml.registry`,
:mod:`ml.service` (FastAPI), :mod:`ops.cli.ml` (``gridlake ml``) and :mod:`ops.bench.ml`.
"""
