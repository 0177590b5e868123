from __future__ import annotations

import random
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from lakehouse.contracts.serving import (
    hash_fields,
    index_key,
    index_score,
    java_double_string,
    row_member,
    serving_key_prefix,
    serving_value,
)
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


# What Java's Double.toString prints (docs/connectors.md: "numbers in Java's toString"),
# taken from OpenJDK 17 and the JDK 19+ specification.
@pytest.mark.parametrize(("value", "java"), [
    (0.0, "0.0"), (-0.0, "-0.0"), (1.0, "1.0"), (100.0, "100.0"), (12.0, "12.0"),
    (0.1, "0.1"), (0.125, "0.125"), (-1234.5, "-1234.5"), (0.001, "0.001"),
    (9999999.999, "9999999.999"), (1e7, "1.0E7"), (123456789.0, "1.23456789E8"),
    (0.00099, "9.9E-4"), (1e-5, "1.0E-5"), (-2.5e-7, "-2.5E-7"), (1 / 3, "0.3333333333333333"),
    (2.0 / 3e9, "6.666666666666666E-10"), (1.7976931348623157e308, "1.7976931348623157E308"),
    (5e-324, "4.9E-324"), (float("inf"), "Infinity"), (float("-inf"), "-Infinity"),
    (float("nan"), "NaN"),
])
def test_doubles_render_as_javas_double_to_string(value: float, java: str) -> None:
    assert java_double_string(value) == java


def test_serving_value_uses_the_java_rendering() -> None:
    fields = {f.name: f for f in ADS_EQUIPMENT_ANOMALY.fields}
    assert serving_value(fields["peak_score"], 1e-5) == "1.0E-5"
    assert serving_value(fields["peak_score"], 2) == "2.0"
    assert serving_value(fields["steps"], 3.0) == "3"  # pandas gives BIGINTs with nulls as floats


JAVA_PROGRAM = """
import java.io.*;
public class PrintDoubles {
  public static void main(String[] args) throws IOException {
    BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
    StringBuilder out = new StringBuilder();
    for (String l; (l = in.readLine()) != null; ) {
      out.append(Double.toString(Double.longBitsToDouble(Long.parseLong(l)))).append('\\n');
    }
    System.out.print(out);
  }
}
"""


def test_doubles_render_as_the_local_jvm_does(tmp_path: Path) -> None:
    """Against the JVM that runs the connector: every kind of value telemetry produces."""
    java = shutil.which("java")
    if java is None:
        pytest.skip("no java on PATH")
    rnd = random.Random(5)
    values = [rnd.uniform(-1e4, 1e4) for _ in range(3000)]
    values += [round(rnd.uniform(-1e4, 1e4), rnd.randint(0, 6)) for _ in range(3000)]
    values += [rnd.random() * 10.0 ** rnd.randint(-12, 15) for _ in range(3000)]
    values += [rnd.randint(-10**9, 10**9) / 10 ** rnd.randint(0, 8) for _ in range(3000)]
    source = tmp_path / "PrintDoubles.java"
    source.write_text(JAVA_PROGRAM)
    bits = "".join(f"{struct.unpack('<q', struct.pack('<d', v))[0]}\n" for v in values)
    out = subprocess.run([java, str(source)], input=bits, capture_output=True, text=True,
                         timeout=120, check=True).stdout.splitlines()
    differ = [(v, j) for v, j in zip(values, out, strict=True) if java_double_string(v) != j]
    assert not differ, differ[:10]


def test_hash_fields_and_index_score_follow_the_connector() -> None:
    t = ADS_EQUIPMENT_ANOMALY
    row = {"device_id": "ESS-01", "source": "ess_bms", "start_ts": 1717290000000,
           "steps": 4, "peak_score": 0.5, "ongoing": False, "region_id": None}
    present, absent = hash_fields(t, row)
    assert present["start_ts"] == "1717290000000" and present["ongoing"] == "false"
    assert present["peak_score"] == "0.5" and present["steps"] == "4"
    assert "region_id" in absent and "substation_id" in absent  # null or missing: HDEL
    assert set(present) | set(absent) == set(t.field_names)
    assert not set(present) & set(absent)
    assert index_score(t, "start_ts", row) == 1717290000000.0
    assert index_score(t, "start_ts", {**row, "start_ts": None}) == 0.0
    with pytest.raises(KeyError):
        index_score(t, "nope", row)
