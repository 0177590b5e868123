"""The generated reference page of every lakehouse table (``docs/tables.md``)."""

from __future__ import annotations

from collections.abc import Iterable

from lakehouse.contracts import TableContract

LAYER_ORDER = ("ods", "dim", "dwd", "dws", "ads")
HEADER = (
    "# Lakehouse tables\n\n"
    "Generated from `lakehouse/contracts/tables.py` by `gridlake tables docs`; do not edit.\n"
    "Each table is a Hudi table at `<hdfs.lake_uri>/<layer>/<name>`.\n"
)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(tables: Iterable[TableContract]) -> str:
    """Markdown reference: an overview (one row per table) and each table's columns."""
    ordered = sorted(tables, key=lambda t: (LAYER_ORDER.index(t.layer), t.name))
    lines = [HEADER, "## Overview\n",
             "| table | layer | holds | grain | record key | ordering | partition | fed by |",
             "|---|---|---|---|---|---|---|---|"]
    for t in ordered:
        lines.append(
            f"| [`{t.name}`](#{t.name}) | {t.layer.upper()} | {_cell(t.description)} | "
            f"{_cell(t.grain)} | {', '.join(t.record_key)} | {t.ordering_field} | "
            f"{', '.join(t.partition_fields) or '—'} | {_cell(t.fed_by)} |"
        )
    for t in ordered:
        retention = f"{t.retention_days} days" if t.retention_days else "forever"
        lines += [
            "", f"## {t.name}", "",
            f"{t.description} Grain: {t.grain}. Hudi {t.table_type}, {t.index_type} index; "
            f"retention: {retention}.", "",
            "| column | type | unit | description |", "|---|---|---|---|",
        ]
        for f in t.fields:
            key = " (key)" if f.name in t.record_key else ""
            lines.append(
                f"| `{f.name}`{key} | {f.type.value} | {f.unit or ''} | {_cell(f.description)} |"
            )
    return "\n".join(lines) + "\n"
