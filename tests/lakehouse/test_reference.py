from pathlib import Path

from lakehouse.contracts.tables import TABLES
from lakehouse.reference import render_markdown

DOC = Path(__file__).resolve().parents[2] / "docs" / "tables.md"


def test_reference_lists_every_table_and_column() -> None:
    text = render_markdown(TABLES)
    for t in TABLES:
        assert f"## {t.name}" in text
        for f in t.fields:
            assert f"`{f.name}`" in text


def test_docs_page_is_up_to_date() -> None:
    assert DOC.read_text() == render_markdown(TABLES), "run `gridlake tables docs`"
