import numpy as np

from lakehouse.contracts.messages import DEVICE_REGISTRY
from mock_devices.config import FleetConfig
from mock_devices.topology import STANDARD_KVA, build_topology, size_transformer


def test_same_seed_same_topology_other_seed_differs() -> None:
    a = build_topology(FleetConfig(meters=500, seed=3))
    b = build_topology(FleetConfig(meters=500, seed=3))
    c = build_topology(FleetConfig(meters=500, seed=4))
    assert a.registry == b.registry
    assert np.array_equal(a.meter_tx, b.meter_tx)
    assert a.registry != c.registry


def test_hierarchy_is_consistent() -> None:
    t = build_topology(FleetConfig(meters=3000, seed=1))
    s = t.summary()
    assert s["meters"] == 3000 and s["substations"] >= 2 and s["feeders"] >= 3
    assert s["ess_banks"] >= 1 and s["pv_inverters"] >= 1
    # Every transformer has meters, every feeder transformers, every substation feeders.
    assert set(np.unique(t.meter_tx)) == set(range(len(t.tx_ids)))
    assert set(np.unique(t.tx_feeder)) == set(range(len(t.feeder_ids)))
    assert set(np.unique(t.feeder_sub)) == set(range(len(t.substation_ids)))
    assert (t.tx_pos_km <= t.feeder_length_km[t.tx_feeder]).all()
    assert np.isin(t.tx_rated_kva, STANDARD_KVA).all()


def test_registry_records_validate_and_point_to_parents() -> None:
    t = build_topology(FleetConfig(meters=400, seed=2))
    reg = t.registry
    assert len(reg) == sum(t.summary().values())
    for rec in reg.values():
        assert DEVICE_REGISTRY.validate({**rec, "ts": 0}) is None, rec
        if rec["device_type"] == "meter":
            parent = reg[rec["parent_id"]]
            assert parent["device_type"] == "transformer"
            assert rec["feeder_id"] == parent["feeder_id"]
        elif rec["device_type"] == "transformer":
            assert reg[rec["parent_id"]]["device_type"] == "feeder"


def test_scale_grows_the_fleet() -> None:
    small = build_topology(FleetConfig(meters=200, seed=1)).summary()
    big = build_topology(FleetConfig(meters=200, scale=10, seed=1)).summary()
    assert big["meters"] == 2000 and big["transformers"] > small["transformers"]


def test_transformer_sizing_leaves_headroom() -> None:
    assert size_transformer(100.0) == 125.0
    assert size_transformer(1e9) == STANDARD_KVA[-1]
