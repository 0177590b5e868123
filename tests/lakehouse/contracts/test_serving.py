from __future__ import annotations

from lakehouse.contracts.serving import index_key, row_member, serving_key_prefix, serving_value
from lakehouse.contracts.tables import ADS_EQUIPMENT_ANOMALY, ML_SERVING_SCORE


def test_alarm_rows_are_rendered_as_the_redis_connector_writes_them() -> None:
    t = ADS_EQUIPMENT_ANOMALY
    fields = {f.name: f for f in t.fields}
    row = {"device_id": "ESS-01", "source": "ess_bms", "start_ts": 1717290000000}
    assert row_member(t, row) == "ESS-01|ess_bms|1717290000000"
    assert serving_key_prefix("gridlake:", t) == "gridlake:ads:equipment_anomaly:"
    assert index_key("gridlake:", t) == "gridlake:ads:equipment_anomaly:index"
    assert serving_value(fields["ongoing"], True) == "true"
    assert serving_value(fields["steps"], 12) == "12"
    assert float(serving_value(fields["peak_score"], 0.125) or "nan") == 0.125
    assert serving_value(fields["region_id"], None) is None
    assert serving_value(fields["peak_score"], float("nan")) is None
    assert ML_SERVING_SCORE == {t.name: "start_ts"}
