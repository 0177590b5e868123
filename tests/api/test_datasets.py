from api.datasets import DATASETS


def test_keys_of_entity_rows_are_computed_from_the_grain() -> None:
    curve = DATASETS["load_curve"]
    assert curve.keyed_by_entity_and_time
    day0 = 1_772_409_600_000  # 2026-03-02T00:00Z
    # an unaligned start begins at the next 15-minute boundary
    assert curve.aligned(day0 + 1, day0 + 3_600_000) == [
        day0 + 900_000, day0 + 1_800_000, day0 + 2_700_000]
    assert curve.member("feeder", "F1", day0) == f"feeder|F1|{day0}"
    assert curve.member_entity(f"feeder|F1|{day0}") == ("feeder", "F1")
    tx = DATASETS["transformer_daily"]
    assert tx.member("transformer", "TX-1", day0) == f"TX-1|{day0}"
    assert tx.member_entity(f"TX-1|{day0}") == ("transformer", "TX-1")
    # the anomaly table's key has no grain: it is scanned, never computed
    assert not DATASETS["equipment_anomaly"].keyed_by_entity_and_time


def test_every_dataset_is_keyed_as_its_contract_says() -> None:
    for ds in DATASETS.values():
        assert ds.time_field in ds.fields and ds.entity_id_field in ds.table.record_key
        if ds.entity_type_field:
            assert ds.table.record_key[0] == ds.entity_type_field


def test_asset_health_keys_are_computable_per_asset() -> None:
    ds = DATASETS["asset_health"]
    assert ds.keyed_by_entity_and_time and ds.region_field == "region_id"
    assert ds.member("ess", "ESS-01", 86_400_000) == "ess|ESS-01|86400000"
    assert ds.member_entity("transformer|TX-00001|0") == ("transformer", "TX-00001")
