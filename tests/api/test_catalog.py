from typing import Any

from api.catalog import DeviceCatalog
from infra.settings import GridLakeSettings


def _rec(device_id: str, version: int, region: str, **extra: Any) -> dict[str, Any]:
    return {"device_id": device_id, "ts": 1_000 * version, "version": version,
            "change_type": "create" if version == 1 else "update", "device_type": "meter",
            "model": "M", "manufacturer": "X", "serial_number": "S", "status": "in_service",
            "install_date": "2020-01-01", "region_id": region, "latitude": 31.0,
            "longitude": 121.0, "parent_id": "TX-1", **extra}


def test_latest_version_wins_whatever_the_order(settings: GridLakeSettings) -> None:
    cat = DeviceCatalog(settings)
    moves: list[int] = []
    cat.on_region_change(lambda: moves.append(1))
    assert cat.apply(_rec("M-1", 2, "R2"))
    assert not cat.apply(_rec("M-1", 1, "R1"))  # an older version read later changes nothing
    assert cat.get("M-1")["region_id"] == "R2"  # type: ignore[index]
    assert moves == []
    assert cat.apply(_rec("M-1", 3, "R1"))
    assert moves == [1]  # who may see M-1 changed
    assert cat.entity("meter", "M-1") == (True, "R1")
    assert cat.entity("transformer", "M-1") == (False, None)  # wrong type
    assert cat.entity("region", "R2") == (True, "R2")  # regions ever seen
    assert cat.region_of("meter", "nope") is None


def test_records_violating_the_contract_are_skipped(settings: GridLakeSettings) -> None:
    cat = DeviceCatalog(settings)
    bad = _rec("M-2", 1, "R1")
    del bad["model"]
    assert not cat.apply(bad)
    assert not cat.apply({**_rec("M-3", 1, "R1"), "latitude": "north"})
    assert len(cat) == 0 and cat.skipped == 2
    cat._take(b"{not json")  # noqa: SLF001 - the topic reader's entry point
    cat._take(b"[1, 2]")  # noqa: SLF001
    assert cat.skipped == 4
