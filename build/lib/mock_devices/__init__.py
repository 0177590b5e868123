"""The mock device fleet: seeded, physically consistent grid telemetry with labelled faults.

Generation is pure and deterministic (:mod:`mock_devices.fleet`, :mod:`mock_devices.replay`);
data defects are a separate stage (:mod:`mock_devices.defects`); publishing to Kafka is
done by :mod:`infra.kafka_client`; :mod:`ops.cli.simulate` wires them together.

Every generator yields :data:`Record` tuples ``(topic, key, value)`` in event-time order,
where ``topic`` is the contract's topic *without* the configured prefix and ``value`` is
the message dict (or raw bytes for a deliberately malformed message).
"""

from mock_devices.config import ConfigError, FleetConfig, Record

__all__ = ["ConfigError", "FleetConfig", "Record"]
