"""Polygon features appended to a GeoPackage layer natively, the rows GDAL would write.

GDAL (through pyogrio) turns each WKB geometry into an OGR geometry and then
into a GeoPackage blob before SQLite copies it into the row: for a level of an
evaluation result cut by units, one MultiPolygon of millions of vertices, that
is two or three copies of the feature beside its WKB (a 94 MB feature: 190 to
290 MB more, 0.40 to 0.45 s). :func:`append` writes the rows with SQLite itself
(the same feature: 95 MB more, 0.26 s): a blob is the GeoPackage header
(``GP``, version 0, flags ``0x03``: little-endian with an ``[minx, maxx, miny,
maxy]`` envelope; the layer's ``srs_id``) and the WKB as given (a Polygon
promoted to a one-part MultiPolygon, as ``promote_to_multi`` does); a large one
is written into its row in pieces (:data:`PIECE_BYTES`) through SQLite's
incremental blob I/O, with no copy of it in SQLite's record when the geometry
is the table's last column (else SQLite expands the zero blob first: one
copy). The fields are bound as SQLite integers, reals and text (NaN and
masked values as NULL).

GDAL creates the layer (its table, ``gpkg_contents``, ``gpkg_geometry_columns``,
the R-tree spatial index with its triggers and the feature count triggers);
:func:`append` then, in one transaction:

* moves the geometry column to the end of the table when it has no row yet
  (:func:`_geometry_last`; GDAL makes it the second column);
* inserts the rows (the feature count trigger counts them in
  ``gpkg_ogr_contents``), with the R-tree's insert trigger set aside: it calls
  ``ST_MinX`` and the like, functions only GDAL's own SQLite connections know;
* inserts each feature's envelope into the R-tree (what the trigger would), and
  puts the trigger back as it was;
* widens ``gpkg_contents``'s extent to take the new envelopes, as GDAL does
  when it closes a layer it appended to (exactly: GDAL's SQL keeps 16
  significant digits of each bound).

The rows, R-tree entries and counts are those GDAL writes for the same
features (column by column: the geometry may come last), and the extent is
within GDAL's rounding of it (tests compare them); the file's pages are laid
out differently (the R-tree is filled entry by
entry, slower than GDAL's bulk load for many small features: the caller,
:meth:`sanqu.export.Encoded.write_gpkg`, sends only large ones here). Anything
else raises :class:`NotNative` before a row is written, and the caller has GDAL
append the features: a
geometry that is not 2D little-endian Polygon or MultiPolygon WKB, empty, with a
non-finite coordinate or a zero bound (whose sign GDAL might write otherwise),
a field value other than an integer, real, boolean or text, or one its column
would store otherwise than GDAL (:func:`_check_columns`); and rows SQLite
refuses are undone (the rollback journal is kept in memory) and left to GDAL.
"""

from __future__ import annotations

import sqlite3
import struct
from pathlib import Path

import numpy as np

from .shapefile import NotNative, _groups, _parse

#: Bytes of a blob written to SQLite at a time.
PIECE_BYTES = 1 << 24

#: Header flags: little-endian, envelope ``[minx, maxx, miny, maxy]``, not empty.
FLAGS = 0x03

#: A Polygon's WKB promoted to a one-part MultiPolygon starts with this.
MULTI_ONE = b"\x01\x06\x00\x00\x00\x01\x00\x00\x00"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _fields(values: np.ndarray, mask: np.ndarray | None, name: str) -> list[object]:
    """A field's values as SQLite binds them (None for a null; types: :func:`_check_columns`)."""
    kind = values.dtype.kind
    null = np.zeros(len(values), dtype=bool) if mask is None else np.asarray(mask, bool)
    if kind == "f":
        null = null | np.isnan(values)
    out = values.tolist()
    if kind == "O":
        for i, v in enumerate(out):
            if v is None:
                null[i] = True
            elif not isinstance(v, str):
                raise NotNative(f"field {name}: a {type(v).__name__} value")
    for i in np.flatnonzero(null).tolist():
        out[i] = None
    return out


def _boxes(wkb: np.ndarray | list[bytes | bytearray]) -> tuple[np.ndarray, np.ndarray]:
    """Each feature's box (xmin, ymin, xmax, ymax) and WKB type (3 or 6), checked.

    Features are parsed a run at a time (:func:`sanqu.shapefile._groups`): a
    large one where it lies, small ones joined in runs of about a megabyte.
    """
    box = np.empty((len(wkb), 4), dtype=np.float64)
    kinds = np.empty(len(wkb), dtype=np.uint8)
    for a, b in _groups(wkb, len(wkb)):
        part = wkb[a:b]
        lengths = np.fromiter((len(w) for w in part), dtype=np.int64, count=b - a)
        ends = np.cumsum(lengths)
        buf = np.frombuffer(part[0] if b - a == 1 else b"".join(part), dtype=np.uint8)
        buf.flags.writeable = False
        status, feat_rings, _, box[a:b], *_ = _parse(buf, ends - lengths, ends, False)
        if status != -1:
            f = a + (status if status >= 0 else -2 - status)
            raise NotNative(f"feature {f} is not finite 2D little-endian Polygon or "
                            "MultiPolygon WKB")
        if (feat_rings == 0).any():
            raise NotNative(f"an empty feature among {a}..{b - 1}")
        kinds[a:b] = buf[ends - lengths + 1]  # the type's low byte: 3 Polygon, 6 Multi
    if (box == 0).any():
        raise NotNative("a bound of zero, whose sign GDAL might write otherwise")
    return box, kinds


#: Integer column types GDAL declares, with the values they take as GDAL writes them.
INTEGER_TYPES = {"INTEGER": (-2**63, 2**63 - 1), "MEDIUMINT": (-2**31, 2**31 - 1),
                 "SMALLINT": (-2**15, 2**15 - 1), "TINYINT": (-2**7, 2**7 - 1),
                 "BOOLEAN": (0, 1)}


def _layer(con: sqlite3.Connection, layer: str) -> tuple[str, int]:
    """The geometry column and SRS id of ``layer`` (GDAL made it a MultiPolygon layer)."""
    row = con.execute("SELECT column_name, srs_id, geometry_type_name FROM "
                      "gpkg_geometry_columns WHERE table_name = ?", (layer,)).fetchone()
    if row is None or row[2] != "MULTIPOLYGON":
        raise NotNative(f"layer {layer} is not a MultiPolygon layer")
    return row[0], int(row[1])


def _check_columns(con: sqlite3.Connection, layer: str, fields: list[str],
                   values: list[np.ndarray]) -> None:
    """Refuse values SQLite would store otherwise than GDAL, given the columns' types.

    GDAL converts a value to its field's type (a real cut to an integer column,
    a number printed into a text one); SQLite keeps it or converts it its own way.
    So integer columns take integers (or booleans) in their range, real columns
    numbers, text columns text; any other column (a date) is left to GDAL.
    """
    declared = {r[1]: str(r[2]).upper() for r in
                con.execute(f"PRAGMA table_info({_quote(layer)})")}
    for name, v in zip(fields, values, strict=True):
        kind = declared.get(name)
        base = kind.split("(")[0] if kind else None
        ok = False
        if base in INTEGER_TYPES and v.dtype.kind in "biu":
            lo, hi = INTEGER_TYPES[base]
            ok = not len(v) or (int(v.min()) >= lo and int(v.max()) <= hi)
        elif base in ("REAL", "FLOAT", "DOUBLE"):
            ok = v.dtype.kind in "biuf"
        elif base == "TEXT":
            ok = v.dtype.kind == "O"
        if not ok:
            raise NotNative(f"field {name}: {v.dtype} values for a {kind} column")


def append(path: Path, layer: str, wkb: np.ndarray | list[bytes | bytearray | None],
           fields: list[str], values: list[np.ndarray],
           masks: list[np.ndarray | None] | None = None) -> None:
    """Append features to a MultiPolygon layer GDAL made in the GeoPackage ``path``.

    Parameters
    ----------
    path : Path
        The GeoPackage.
    layer : str
        Its layer (table) to append to.
    wkb : sequence of bytes-like (bytes, bytearray or memoryview)
        Each feature's geometry: 2D little-endian Polygon or MultiPolygon WKB.
    fields : list of str
        Field names, as GDAL made the columns.
    values : list of numpy.ndarray
        One array per field, a value per feature.
    masks : list of numpy.ndarray or None, optional
        Per field, where a value is null.

    Raises
    ------
    NotNative
        Before any row is written, when the rows would differ from GDAL's.
    """
    n = len(wkb)
    masks = masks if masks is not None else [None] * len(fields)
    if n == 0:
        return
    if any(w is None for w in wkb):
        raise NotNative("a feature without geometry")
    box, kinds = _boxes(wkb)
    rows = [_fields(v, m, f) for f, v, m in zip(fields, values, masks, strict=True)]
    con = sqlite3.connect(path, isolation_level=None)
    try:
        con.execute("PRAGMA synchronous = OFF")
        con.execute("PRAGMA journal_mode = MEMORY")  # appends journal little
        geom, srs = _layer(con, layer)
        _check_columns(con, layer, fields, values)
        _insert(con, layer, geom, srs, wkb, kinds, box, fields, rows)
    finally:
        con.close()


def _insert(con: sqlite3.Connection, layer: str, geom: str, srs: int, wkb: object,
            kinds: np.ndarray, box: np.ndarray, fields: list[str], rows: list[list[object]]
            ) -> None:
    """The rows, the R-tree entries and the extent, in one transaction.

    Features under :data:`PIECE_BYTES` go in by the batch with their blobs
    bound; a larger one is inserted as a zero blob that is then written in
    pieces. Either way the rows are inserted in order, so their fids are those
    GDAL gives (the next ones of the table).
    """
    trigger = f"rtree_{layer}_{geom}_insert"
    saved = con.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?",
                        (trigger,)).fetchone()
    columns = ", ".join(_quote(c) for c in [geom, *fields])
    marks = ", ".join("?" * (1 + len(fields)))
    insert = f"INSERT INTO {_quote(layer)} ({columns}) VALUES ({marks})"
    insert_zero = (f"INSERT INTO {_quote(layer)} ({columns}) VALUES (zeroblob(?)"
                   + ", ?" * len(fields) + ")")
    # the envelope in the blob's order: minx, maxx, miny, maxy (box: xmin, ymin, xmax, ymax)
    envelope = box[:, [0, 2, 1, 3]]
    heads = [struct.pack("<2sBBi4d", b"GP", 0, FLAGS, srs, *e) + (b"" if k == 6 else MULTI_ONE)
             for e, k in zip(envelope.tolist(), kinds.tolist(), strict=True)]
    con.execute("BEGIN")
    try:
        _geometry_last(con, layer, geom)
        if saved is not None:
            con.execute(f"DROP TRIGGER {_quote(trigger)}")
        # AUTOINCREMENT: past the largest fid the table ever had (deleted rows too)
        seq = con.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (layer,)).fetchone()
        top = con.execute(f"SELECT max(fid) FROM {_quote(layer)}").fetchone()[0]
        first = max(seq[0] if seq else 0, top or 0) + 1
        batch: list[int] = []

        def flush() -> None:
            con.executemany(insert, ([heads[i] + bytes(wkb[i]), *(r[i] for r in rows)]
                                     for i in batch))
            batch.clear()

        for i, w in enumerate(wkb):
            if len(w) < PIECE_BYTES:
                batch.append(i)
                continue
            flush()
            fid = con.execute(insert_zero, [len(heads[i]) + len(w),
                                            *(r[i] for r in rows)]).lastrowid
            with con.blobopen(layer, geom, fid) as blob:
                blob.write(heads[i])
                view = memoryview(w)
                for k in range(0, len(view), PIECE_BYTES):
                    blob.write(view[k:k + PIECE_BYTES])
        flush()
        last = con.execute(f"SELECT max(fid) FROM {_quote(layer)}").fetchone()[0]
        if last - first + 1 != len(heads):
            raise sqlite3.DatabaseError(f"{layer}: fids {first}..{last} for {len(heads)} rows")
        if saved is not None:
            con.executemany(f"INSERT INTO {_quote(f'rtree_{layer}_{geom}')} "
                            "VALUES (?, ?, ?, ?, ?)",
                            ((first + i, *e) for i, e in enumerate(envelope.tolist())))
            con.execute(saved[0])
        _widen_extent(con, layer, box)
        con.execute("COMMIT")
    except BaseException as exc:
        if con.in_transaction:
            con.execute("ROLLBACK")  # the in-memory journal restores every page
        if isinstance(exc, sqlite3.Error):  # undone: GDAL may write them (or say why not)
            raise NotNative(f"SQLite refused the rows: {exc}") from exc
        raise


def _geometry_last(con: sqlite3.Connection, layer: str, geom: str) -> None:
    """Move the geometry column of ``layer`` to the end of its table, if it has no row yet.

    GDAL makes the geometry the second column (after the fid). SQLite builds a
    row in memory column by column, and a zero blob followed by other values is
    expanded there: a feature of 300 MB cost 300 MB more and its pages were
    written twice. As the last column it is not expanded (about half the time
    for such a feature with 4 KB pages, and no extra memory). The table's triggers (R-tree, feature
    count), which name the column, are dropped and made again as they were;
    readers (GDAL, QGIS) find the column by name. A table with rows, or an
    SQLite before 3.35 (no ``DROP COLUMN``), keeps GDAL's order.
    """
    if sqlite3.sqlite_version_info < (3, 35, 0):
        return
    columns = con.execute(f"PRAGMA table_info({_quote(layer)})").fetchall()
    if columns[-1][1] == geom or con.execute(f"SELECT 1 FROM {_quote(layer)} LIMIT 1"
                                             ).fetchone() is not None:
        return
    kind = next(c[2] for c in columns if c[1] == geom)
    triggers = con.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND "
                           "tbl_name = ? ORDER BY rowid", (layer,)).fetchall()
    for name, _ in triggers:
        con.execute(f"DROP TRIGGER {_quote(name)}")
    con.execute(f"ALTER TABLE {_quote(layer)} DROP COLUMN {_quote(geom)}")
    con.execute(f"ALTER TABLE {_quote(layer)} ADD COLUMN {_quote(geom)} {kind}")
    for _, sql in triggers:
        con.execute(sql)


def _widen_extent(con: sqlite3.Connection, layer: str, box: np.ndarray) -> None:
    """Widen ``gpkg_contents``'s extent of ``layer`` to take ``box`` (xmin, ymin, xmax, ymax).

    The bounds are stored exactly; GDAL prints them into its SQL with SQLite's
    ``%.18g``, which keeps 16 significant digits (SQLite's own rounding).
    """
    old = con.execute("SELECT min_x, min_y, max_x, max_y FROM gpkg_contents "
                      "WHERE table_name = ?", (layer,)).fetchone()
    new = [float(box[:, 0].min()), float(box[:, 1].min()), float(box[:, 2].max()),
           float(box[:, 3].max())]
    if old is not None and None not in old:
        new = [min(new[0], old[0]), min(new[1], old[1]), max(new[2], old[2]),
               max(new[3], old[3])]
    con.execute("UPDATE gpkg_contents SET min_x = ?, min_y = ?, max_x = ?, max_y = ? "
                "WHERE table_name = ?", (*new, layer))
