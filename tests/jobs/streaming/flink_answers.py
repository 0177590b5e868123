"""Bodies of Flink's REST API as Flink 2.2 answers for the lakehouse job, shared by the
client and the ``gridlake stream status`` tests."""

from __future__ import annotations

# Vertex names as Flink 2.2 reports them for the meter pipeline (sinks chained).
V_SOURCE = (
    "Source: src_meter_reading[1] -> MiniBatchAssigner[2] -> (Calc[3] -> "
    "ConstraintEnforcer[4] -> ods_meter_reading[4]: Writer, Calc[5] -> Calc[6] -> "
    "ConstraintEnforcer[7] -> ods_quarantine[7]: Writer, Calc[8] -> "
    "(LocalGroupAggregate[9], LocalGroupAggregate[14]))"
)
V_ADS = (
    "Join[18] -> Calc[19] -> (ConstraintEnforcer[20] -> ads_meter_energy_15min[20]: Writer, "
    "ConstraintEnforcer[21] -> ads_meter_energy_15min_serving[21]: Writer)"
)

CHECKPOINTS = {
    "counts": {"restored": 0, "total": 7, "in_progress": 1, "completed": 2, "failed": 4},
    "latest": {
        "completed": {
            "className": "completed", "id": 2, "status": "COMPLETED", "is_savepoint": False,
            "trigger_timestamp": 1795225931624, "latest_ack_timestamp": 1795225937249,
            "checkpointed_size": 69883, "state_size": 73829, "end_to_end_duration": 5625,
            "num_subtasks": 4, "num_acknowledged_subtasks": 4, "checkpoint_type": "CHECKPOINT",
            "external_path": "file:/x/chk-2", "discarded": False,
        },
        "savepoint": None,
        "failed": {
            "className": "failed", "id": 1, "status": "FAILED",
            "trigger_timestamp": 1795225920000, "failure_timestamp": 1795225921000,
            "failure_message": "Checkpoint declined", "end_to_end_duration": 1000,
            "state_size": 0, "checkpointed_size": 0,
        },
        "restored": None,
    },
    "history": [
        {"className": "in_progress", "id": 3, "status": "IN_PROGRESS",
         "trigger_timestamp": 1795225937272, "latest_ack_timestamp": -1,
         "checkpointed_size": 0, "state_size": 0, "end_to_end_duration": -1},
        {"className": "completed", "id": 2, "status": "COMPLETED"},
    ],
}
