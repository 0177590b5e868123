"""Device telemetry and registry messages (JSON on Kafka)."""

from __future__ import annotations

from lakehouse.contracts.schema import Field, FieldType, MessageContract

S, INT, D, B, TS, BOOL = (
    FieldType.STRING, FieldType.INT, FieldType.DOUBLE, FieldType.BIGINT, FieldType.TIMESTAMP,
    FieldType.BOOLEAN,
)

METER_REGISTER_MAX_KWH = 99_999_999.99
"""Largest value of a meter's energy registers (8 + 2 digits, large enough for the C&I
meters of the fleet): the next count rolls over to
0 (quality rule ``register_rollover``, docs/indicators.md)."""

METER_READING = MessageContract(
    name="meter_reading",
    topic="meter.readings",
    key_field="device_id",
    event_time_field="ts",
    description="A smart meter's register and instantaneous values at one instant.",
    fields=(
        Field("device_id", S, description="Meter id, e.g. MTR-000001."),
        Field("ts", TS, "ms", "Event time: epoch milliseconds UTC when the meter read."),
        Field(
            "energy_import_kwh", D, "kWh",
            "Cumulative forward (import) active energy register; never decreases.",
            minimum=0.0, maximum=METER_REGISTER_MAX_KWH,
        ),
        Field(
            "energy_export_kwh", D, "kWh",
            "Cumulative reverse (export) active energy register; never decreases.",
            minimum=0.0, maximum=METER_REGISTER_MAX_KWH,
        ),
        Field("voltage_v", D, "V", "Phase-A RMS voltage.", minimum=0.0, maximum=500.0),
        Field("current_a", D, "A", "Phase-A RMS current.", minimum=0.0, maximum=1000.0),
        Field("active_power_kw", D, "kW", "Active power, import positive.",
              minimum=-1000.0, maximum=1000.0),
        Field("seq", B, "", "Per-meter sequence number of the reading.", minimum=0),
        Field("reactive_power_kvar", D, "kvar",
              "Reactive power, lagging (inductive) positive.", minimum=-1000.0, maximum=1000.0),
        Field("power_factor", D, "", "Displacement power factor |P|/S (1.0 when S is 0).",
              minimum=0.0, maximum=1.0),
        Field("interval_s", INT, "s",
              "Reading interval: 900 for 15-minute AMI interval reads, 60 for 1-minute reads.",
              minimum=1),
        Field("voltage_b_v", D, "V", "Phase-B RMS voltage; absent on single-phase meters.",
              required=False, minimum=0.0, maximum=500.0),
        Field("voltage_c_v", D, "V", "Phase-C RMS voltage; absent on single-phase meters.",
              required=False, minimum=0.0, maximum=500.0),
        Field("current_b_a", D, "A", "Phase-B RMS current; absent on single-phase meters.",
              required=False, minimum=0.0, maximum=1000.0),
        Field("current_c_a", D, "A", "Phase-C RMS current; absent on single-phase meters.",
              required=False, minimum=0.0, maximum=1000.0),
    ),
)

FEEDER_SCADA = MessageContract(
    name="feeder_scada",
    topic="scada.feeder",
    key_field="feeder_id",
    event_time_field="ts",
    description="1-minute SCADA measurement at a medium-voltage feeder head (breaker).",
    fields=(
        Field("feeder_id", S, description="Feeder id, e.g. FDR-0001."),
        Field("substation_id", S, description="Substation whose bus feeds the feeder."),
        Field("ts", TS, "ms", "Event time: epoch milliseconds UTC of the measurement."),
        Field("energy_import_kwh", D, "kWh",
              "Cumulative forward energy delivered into the feeder (its meters plus "
              "technical losses); never decreases.", minimum=0.0),
        Field("energy_export_kwh", D, "kWh",
              "Cumulative reverse energy (back-feed from the feeder to the bus); "
              "never decreases.", minimum=0.0),
        Field("active_power_kw", D, "kW", "Active power into the feeder, forward positive.",
              minimum=-100000.0, maximum=100000.0),
        Field("reactive_power_kvar", D, "kvar", "Reactive power into the feeder.",
              minimum=-100000.0, maximum=100000.0),
        Field("current_a", D, "A", "Phase-A RMS current.", minimum=0.0, maximum=5000.0),
        Field("current_b_a", D, "A", "Phase-B RMS current.", minimum=0.0, maximum=5000.0),
        Field("current_c_a", D, "A", "Phase-C RMS current.", minimum=0.0, maximum=5000.0),
        Field("bus_voltage_kv", D, "kV", "Line-to-line RMS voltage of the substation MV bus.",
              minimum=0.0, maximum=50.0),
        Field("breaker_closed", BOOL, "", "Whether the feeder breaker is closed."),
        Field("seq", B, "", "Per-feeder sequence number.", minimum=0),
    ),
)

SUBSTATION_SCADA = MessageContract(
    name="substation_scada",
    topic="scada.substation",
    key_field="substation_id",
    event_time_field="ts",
    description="1-minute SCADA measurement of a substation's HV/MV transformer and MV bus.",
    fields=(
        Field("substation_id", S, description="Substation id, e.g. SUB-01."),
        Field("ts", TS, "ms", "Event time: epoch milliseconds UTC of the measurement."),
        Field("hv_voltage_kv", D, "kV", "Line-to-line RMS voltage on the HV side.",
              minimum=0.0, maximum=500.0),
        Field("bus_voltage_kv", D, "kV", "Line-to-line RMS voltage of the MV bus.",
              minimum=0.0, maximum=50.0),
        Field("frequency_hz", D, "Hz", "System frequency.", minimum=45.0, maximum=65.0),
        Field("active_power_kw", D, "kW",
              "Active power through the main transformer (feeders + ESS charging − PV).",
              minimum=-1000000.0, maximum=1000000.0),
        Field("reactive_power_kvar", D, "kvar", "Reactive power through the main transformer.",
              minimum=-1000000.0, maximum=1000000.0),
        Field("energy_import_kwh", D, "kWh", "Cumulative energy imported from the HV grid.",
              minimum=0.0),
        Field("energy_export_kwh", D, "kWh", "Cumulative energy exported to the HV grid.",
              minimum=0.0),
        Field("oltc_tap_position", INT, "", "On-load tap changer position of the main "
              "transformer (0 = nominal, +1 raises the MV voltage by 1.25 %).",
              minimum=-8, maximum=8),
        Field("seq", B, "", "Per-substation sequence number.", minimum=0),
    ),
)

TRANSFORMER_TELEMETRY = MessageContract(
    name="transformer_telemetry",
    topic="transformer.telemetry",
    key_field="transformer_id",
    event_time_field="ts",
    description="1-minute reading of a distribution transformer's terminal unit: load and "
                "IEEE C57.91 thermal state.",
    fields=(
        Field("transformer_id", S, description="Distribution transformer id, e.g. TX-00001."),
        Field("ts", TS, "ms", "Event time: epoch milliseconds UTC of the reading."),
        Field("load_kva", D, "kVA", "Apparent power through the transformer.",
              minimum=0.0, maximum=100000.0),
        Field("load_pu", D, "", "Load as a fraction of the rated kVA.", minimum=0.0, maximum=5.0),
        Field("active_power_kw", D, "kW", "Active power through the transformer.",
              minimum=-100000.0, maximum=100000.0),
        Field("lv_voltage_v", D, "V", "Mean phase RMS voltage at the LV terminals.",
              minimum=0.0, maximum=500.0),
        Field("ambient_temp_c", D, "°C", "Ambient air temperature.", minimum=-60.0,
              maximum=60.0),
        Field("top_oil_temp_c", D, "°C", "Top-oil temperature.", minimum=-60.0, maximum=250.0),
        Field("hot_spot_temp_c", D, "°C", "Winding hot-spot temperature.",
              minimum=-60.0, maximum=300.0),
        Field("aging_factor", D, "",
              "Insulation aging acceleration factor F_AA (1.0 at a 110 °C hot spot).",
              minimum=0.0),
        Field("tap_position", INT, "", "Off-circuit tap position (+1 raises LV by 2.5 %).",
              minimum=-2, maximum=2),
        Field("seq", B, "", "Per-transformer sequence number.", minimum=0),
    ),
)

TRANSFORMER_DGA = MessageContract(
    name="transformer_dga",
    topic="transformer.dga",
    key_field="transformer_id",
    event_time_field="ts",
    description="Online dissolved-gas analysis of a transformer's oil (hourly).",
    fields=(
        Field("transformer_id", S, description="Distribution transformer id."),
        Field("ts", TS, "ms", "Event time: epoch milliseconds UTC of the sample."),
        Field("h2_ppm", D, "ppm", "Hydrogen.", minimum=0.0, maximum=100000.0),
        Field("ch4_ppm", D, "ppm", "Methane.", minimum=0.0, maximum=100000.0),
        Field("c2h2_ppm", D, "ppm", "Acetylene.", minimum=0.0, maximum=100000.0),
        Field("c2h4_ppm", D, "ppm", "Ethylene.", minimum=0.0, maximum=100000.0),
        Field("c2h6_ppm", D, "ppm", "Ethane.", minimum=0.0, maximum=100000.0),
        Field("co_ppm", D, "ppm", "Carbon monoxide.", minimum=0.0, maximum=100000.0),
        Field("seq", B, "", "Per-transformer DGA sample number.", minimum=0),
    ),
)

ESS_BMS = MessageContract(
    name="ess_bms",
    topic="ess.bms",
    key_field="ess_id",
    event_time_field="ts",
    description="Battery management system reading of an ESS battery bank (1 Hz).",
    fields=(
        Field("ess_id", S, description="Battery bank id, e.g. ESS-01."),
        Field("ts", TS, "ms", "Event time: epoch milliseconds UTC of the reading."),
        Field("dc_voltage_v", D, "V", "DC bus voltage of the bank.", minimum=0.0,
              maximum=2000.0),
        Field("dc_current_a", D, "A", "DC current, discharge positive.",
              minimum=-5000.0, maximum=5000.0),
        Field("power_kw", D, "kW", "DC power, discharge positive.",
              minimum=-10000.0, maximum=10000.0),
        Field("soc_pct", D, "%", "State of charge (coulomb counted).", minimum=0.0,
              maximum=100.0),
        Field("max_cell_temp_c", D, "°C", "Highest cell temperature.", minimum=-40.0,
              maximum=200.0),
        Field("min_cell_temp_c", D, "°C", "Lowest cell temperature.", minimum=-40.0,
              maximum=200.0),
        Field("max_cell_voltage_v", D, "V", "Highest cell voltage.", minimum=0.0, maximum=5.0),
        Field("min_cell_voltage_v", D, "V", "Lowest cell voltage.", minimum=0.0, maximum=5.0),
        Field("cell_voltage_gap_mv", D, "mV", "Max − min cell voltage.", minimum=0.0,
              maximum=5000.0),
        Field("state", S, "", "charging, discharging, idle or fault (BMS tripped)."),
        Field("seq", B, "", "Per-bank sequence number.", minimum=0),
    ),
)

PV_INVERTER = MessageContract(
    name="pv_inverter",
    topic="pv.inverter",
    key_field="inverter_id",
    event_time_field="ts",
    description="1-minute reading of a utility PV plant's inverter.",
    fields=(
        Field("inverter_id", S, description="Inverter id, e.g. PV-01."),
        Field("ts", TS, "ms", "Event time: epoch milliseconds UTC of the reading."),
        Field("irradiance_w_m2", D, "W/m²", "Plane-of-array irradiance.", minimum=0.0,
              maximum=1500.0),
        Field("module_temp_c", D, "°C", "PV module temperature.", minimum=-40.0, maximum=100.0),
        Field("dc_power_kw", D, "kW", "DC power from the array.", minimum=0.0,
              maximum=100000.0),
        Field("ac_power_kw", D, "kW", "AC power exported to the bus.", minimum=0.0,
              maximum=100000.0),
        Field("dc_voltage_v", D, "V", "DC input voltage.", minimum=0.0, maximum=1500.0),
        Field("energy_kwh", D, "kWh", "Cumulative AC energy; never decreases.", minimum=0.0),
        Field("state", S, "", "running or standby."),
        Field("seq", B, "", "Per-inverter sequence number.", minimum=0),
    ),
)

DEVICE_REGISTRY = MessageContract(
    name="device_registry",
    topic="device.registry",
    key_field="device_id",
    event_time_field="ts",
    compacted=True,
    description="One version of a device's master data (dimension); the topic is compacted "
                "so the latest version per device is always available.",
    fields=(
        Field("device_id", S, description="Device id (the asset position)."),
        Field("ts", TS, "ms", "Event time: when this version took effect."),
        Field("version", INT, "", "Version number of the device's record, from 1.", minimum=1),
        Field("change_type", S, "", "create, replace (equipment swapped), move "
              "(re-parented in the topology), update (attributes edited) or retire."),
        Field("device_type", S, "",
              "substation, feeder, transformer, meter, ess or pv_inverter."),
        Field("model", S, "", "Equipment model."),
        Field("manufacturer", S, "", "Equipment manufacturer."),
        Field("serial_number", S, "", "Serial number of the installed equipment."),
        Field("status", S, "", "in_service or retired."),
        Field("install_date", S, "", "Date (yyyy-MM-dd) the equipment was installed."),
        Field("region_id", S, "", "Region of the device."),
        Field("latitude", D, "°", "WGS84 latitude.", minimum=-90.0, maximum=90.0),
        Field("longitude", D, "°", "WGS84 longitude.", minimum=-180.0, maximum=180.0),
        Field("parent_id", S, "", "Topology parent: region for substations, substation for "
              "feeders, ESS and PV, feeder for transformers, transformer for meters."),
        Field("substation_id", S, "", "Substation upstream of the device.", required=False),
        Field("feeder_id", S, "", "Feeder upstream of the device.", required=False),
        Field("transformer_id", S, "", "Distribution transformer of a meter.",
              required=False),
        Field("rated_power_kva", D, "kVA", "Rated apparent power (kW for PV, ESS).",
              required=False, minimum=0.0),
        Field("rated_energy_kwh", D, "kWh", "Rated energy of a battery bank.",
              required=False, minimum=0.0),
        Field("rated_voltage_kv", D, "kV", "Rated (line-to-line) voltage.", required=False,
              minimum=0.0),
        Field("phases", INT, "", "1 or 3 (meters).", required=False, minimum=1, maximum=3),
        Field("customer_class", S, "", "residential, commercial or industrial (meters).",
              required=False),
        Field("pv_capacity_kw", D, "kW", "Rooftop PV behind a prosumer meter.",
              required=False, minimum=0.0),
        Field("position_km", D, "km", "Distance from the substation along the feeder.",
              required=False, minimum=0.0),
        Field("length_km", D, "km", "Length of a feeder's main line.", required=False,
              minimum=0.0),
    ),
)

SIM_LABEL = MessageContract(
    name="sim_label",
    topic="sim.labels",
    key_field="label_id",
    event_time_field="start_ts",
    description="Ground truth of the simulator: one injected fault or data defect.",
    fields=(
        Field("label_id", S, description="Unique id of the label within a run."),
        Field("kind", S, "", "fault or defect."),
        Field("type", S, "", "Fault or defect type, e.g. transformer_overload, duplicate."),
        Field("device_id", S, "", "Affected device (message key for defects)."),
        Field("topic", S, "", "Topic (without prefix) where the anomaly shows."),
        Field("start_ts", TS, "ms", "First affected event time (inclusive)."),
        Field("end_ts", TS, "ms", "End of the affected event time (exclusive)."),
        Field("detail", S, "", "JSON object with the parameters of the anomaly.",
              required=False),
        Field("seed", B, "", "Seed of the run that produced the label."),
    ),
)

MESSAGES: tuple[MessageContract, ...] = (
    METER_READING,
    FEEDER_SCADA,
    SUBSTATION_SCADA,
    TRANSFORMER_TELEMETRY,
    TRANSFORMER_DGA,
    ESS_BMS,
    PV_INVERTER,
    DEVICE_REGISTRY,
    SIM_LABEL,
)
