"""The conflict report: what the line and allocation rules resolved, moved, met and used.

Every whole-area stage records :class:`Finding` rows while it works (an overlap it
resolved, cells it moved and why, a quota it met, the cap it used); the pipeline
writes them to ``conflicts.csv`` and prints a summary. Areas are kept as cell
counts and turned into hectares with the grid's cell area only when written.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

#: Sections of the conflict report, in the order they are written.
SECTIONS = ("overlap", "moved", "quota", "cap")

#: Columns of ``conflicts.csv``.
COLUMNS = ("section", "item", "unit_code", "unit_name", "cells", "area_ha", "reference_ha",
           "note")


@dataclass(frozen=True)
class Finding:
    """One row of the conflict report.

    Attributes
    ----------
    section : str
        ``overlap`` (two claims on the same land, and how it was resolved),
        ``moved`` (cells a rule added, removed or re-allocated, and why),
        ``quota`` (farmland task vs. delineated area per unit and in total),
        ``cap`` (the growth boundary's cap and its use).
    item : str
        Short machine-readable name, e.g. ``red_line&cultivated``.
    cells : int
        Cells concerned.
    note : str
        What was done, in words.
    reference_cells : float, optional
        The figure ``cells`` is compared with (a quota's task, the cap), in cells.
    unit_code, unit_name : str
        Administrative unit of a quota row ("" for the whole study area).
    """

    section: str
    item: str
    cells: int
    note: str
    reference_cells: float | None = None
    unit_code: str = ""
    unit_name: str = ""

    def row(self, cell_ha: float) -> dict[str, object]:
        """The CSV row, areas in hectares given the area of one cell."""
        return {
            "section": self.section,
            "item": self.item,
            "unit_code": self.unit_code,
            "unit_name": self.unit_name,
            "cells": self.cells,
            "area_ha": round(self.cells * cell_ha, 4),
            "reference_ha": ("" if self.reference_cells is None
                             else round(self.reference_cells * cell_ha, 4)),
            "note": self.note,
        }


def rows(findings: list[Finding], cell_ha: float) -> list[dict[str, object]]:
    """CSV rows of ``findings``, ordered by section (stable within a section)."""
    order = {s: i for i, s in enumerate(SECTIONS)}
    ordered = sorted(findings, key=lambda f: order[f.section])
    return [f.row(cell_ha) for f in ordered]


def write_conflicts(path: Path, table: list[dict[str, object]]) -> None:
    """Write the conflict report as UTF-8 CSV with a BOM (spreadsheets read the Chinese)."""
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(COLUMNS))
        writer.writeheader()
        writer.writerows(table)


def summary(table: list[dict[str, object]]) -> list[str]:
    r"""A few lines for the run output: overlaps, cells moved, quotas, the cap.

    Examples
    --------
    >>> t = rows([Finding("overlap", "red_line&cultivated", 3, "cut from the red line"),
    ...           Finding("quota", "farmland", 12, "met", reference_cells=10)], 0.09)
    >>> print("\n".join(summary(t)))
    overlaps resolved: red_line&cultivated 0.27 ha (cut from the red line)
    farmland quotas: 1 floor met; total task 0.90 ha, delineated 1.08 ha
    """
    out = []
    overlaps = [r for r in table if r["section"] == "overlap" and r["cells"]]
    if overlaps:
        out.append("overlaps resolved: " + "; ".join(
            f"{r['item']} {r['area_ha']:.2f} ha ({r['note']})" for r in overlaps))
    moved = [r for r in table if r["section"] == "moved" and r["cells"]]
    if moved:
        out.append("cells moved: " + "; ".join(f"{r['item']} {r['area_ha']:.2f} ha"
                                                 for r in moved))
    floors = [r for r in table if r["section"] == "quota" and r["reference_ha"] != ""]
    if floors:
        total = next((r for r in floors if r["unit_code"] == ""), floors[-1])
        out.append(f"farmland quotas: {len(floors)} floor{'s' * (len(floors) != 1)} met; "
                   f"total task {float(total['reference_ha']):.2f} ha, "
                   f"delineated {float(total['area_ha']):.2f} ha")
    for r in table:
        if r["section"] == "cap":
            out.append(f"{r['item']}: {r['area_ha']:.2f} ha of a cap of "
                       f"{float(r['reference_ha'] or 0):.2f} ha ({r['note']})")
    return out
