"""Polygon features appended to a shapefile natively, with the bytes GDAL would write.

GDAL (through pyogrio) costs 50 to 70 ns a vertex to write a shapefile: each
WKB geometry becomes an OGR geometry, then coordinate vectors, then a shapelib
object, then a record. :func:`append` writes the same records straight from the
WKB, in numba, and the attribute records with numpy: the ``.shp``, ``.shx`` and
``.dbf`` files it leaves are byte for byte those GDAL 3.12 (pyogrio's) leaves
when it appends the same features, but for the DBF header's date, which is the
one given (GDAL stamps the day it writes). Memory: the features' WKB is read
where it lies (joined only in runs of small features, :data:`GROUP_BYTES`), the
ring tables take 25 bytes a ring, and records go to the files in blocks
(:data:`OUT_BYTES`, :data:`DBF_BYTES`), so a feature of any size is written
with little more than its WKB in memory.

GDAL creates the layer (``.prj``, ``.cpg``, the DBF field descriptors, an empty
``.shp``/``.shx`` of shape type Polygon); :func:`append` reads what it needs from
those files and follows GDAL's rules:

* Geometries (:func:`_parse`, :func:`_emit`): Polygon or
  MultiPolygon WKB (little-endian, 2D) become one Polygon record (type 5) whose
  parts are the rings, polygon after polygon; empty polygons and empty rings
  are dropped, and a feature with no ring left (or no geometry, None) is a null
  record (type 0).
  Rings are oriented as GDAL ≥ 3.7 orients them (``SHAPE_REWIND_ON_WRITE``
  unset): a polygon's first ring is reversed when ``OGRLineString::isClockwise``
  finds it anticlockwise, the others when it finds them clockwise
  (:func:`_is_clockwise`). Bounding boxes fold the vertices in their written
  order with shapelib's ``MIN``/``MAX`` (``a < b ? a : b``), which decides the
  sign of a zero bound.
* Attributes (:func:`_field_block`): the OGR type of each DBF field is the one
  GDAL reads from its descriptor (``N``/``F`` with decimals or width ≥ 10 is a
  Real, or an Integer64 when it has no decimals and width < 19; narrower ``N`` is
  an Integer; ``L`` a boolean; ``C`` text). Integers are ``%*lld`` in the
  field's width, reals ``%*.*f`` with its decimals (cut to the width, as
  shapelib does), text is encoded in the layer's encoding (the ``.cpg``), cut at
  a NUL byte and padded with spaces; nulls (a masked value, a NaN) are ``*``
  for numbers, ``?`` for booleans and spaces for text. Records start with the
  deletion flag (a space) and the file ends with ``0x1A``.

Whatever :func:`append` does not reproduce exactly raises :class:`NotNative`
before anything is written, or after its writes are undone: a value that GDAL
would widen a field for, or write with a warning (a real cut to another value,
an integer outside an Integer field), text not encodable in the layer's encoding
(or a ``.cpg`` other than ``UTF-8`` and ``GBK``), a date field, a geometry other
than 2D little-endian Polygon/MultiPolygon or with a non-finite coordinate,
files past 2 GB (GDAL warns), or a GDAL setting that changes the writer
(``SHAPE_REWIND_ON_WRITE``, ``SHAPE_ENCODING``). The caller then has GDAL append
the same features (:meth:`sanqu.export.Encoded.write_shapefile`), to files left
exactly as GDAL would have them.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd
import pyogrio
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from .trace import _grow

#: Shape types written (shapelib ``SHPT_NULL``, ``SHPT_POLYGON``).
SHPT_NULL, SHPT_POLYGON = 0, 5

#: WKB of an empty MultiPolygon (written, like a missing geometry, as a null record).
EMPTY = b"\x01\x06\x00\x00\x00\x00\x00\x00\x00"

#: WKB bytes of the features parsed at a time (joined into one buffer).
GROUP_BYTES = 1 << 20

#: Size of the buffer ``.shp`` records are written from.
OUT_BYTES = 1 << 22

#: Bytes of DBF records formatted at a time.
DBF_BYTES = 1 << 22

#: Largest file GDAL writes without its 2 GB warning (``VSI_SHP_WriteMoreDataOK``).
SIZE_LIMIT = 2**31 - 1

#: Python codecs of the ``.cpg`` encodings whose recoding matches GDAL's (iconv).
CODECS = {"UTF-8": "utf-8", "GBK": "gbk"}

#: GDAL settings under which this writer does not reproduce GDAL.
GDAL_SETTINGS = ("SHAPE_REWIND_ON_WRITE", "SHAPE_ENCODING", "SHAPE_2GB_LIMIT")


class NotNative(ValueError):
    """The features are not written natively: have GDAL append them (nothing was written)."""


@dataclass(frozen=True)
class DbfField:
    """One field descriptor of a DBF header.

    Attributes
    ----------
    name : str
        Field name (ASCII).
    kind : str
        DBF type letter (``C``, ``N``, ``F``, ``L``, ``D``...).
    offset, width, decimals : int
        Byte offset in a record (after the deletion flag), width in bytes, decimals.
    """

    name: str
    kind: str
    offset: int
    width: int
    decimals: int

    @property
    def ogr(self) -> str:
        """The OGR type GDAL gives the field when it opens the file (``SHPReadOGRFeatureDefn``).

        Examples
        --------
        >>> [DbfField("a", k, 1, w, d).ogr for k, w, d in
        ...  [("N", 9, 0), ("N", 18, 0), ("N", 24, 15), ("N", 20, 0), ("C", 80, 0), ("L", 1, 0)]]
        ['integer', 'integer64', 'real', 'real', 'string', 'boolean']
        """
        if self.kind in "NF":
            if self.decimals > 0 or self.width >= 10:
                return "integer64" if self.decimals == 0 and self.width < 19 else "real"
            return "integer"
        return {"L": "boolean", "D": "date"}.get(self.kind, "string")

    @property
    def null(self) -> bytes:
        """The byte a null value fills the field with (shapelib ``DBFGetNullCharacter``)."""
        return {"N": b"*", "F": b"*", "D": b"0", "L": b"?"}.get(self.kind, b" ")


@dataclass(frozen=True)
class DbfHeader:
    """What the writer needs of a DBF file's header.

    Attributes
    ----------
    records : int
        Number of records.
    header_length, record_length : int
        Bytes of the header and of one record.
    fields : tuple of DbfField
        The field descriptors, in order.
    """

    records: int
    header_length: int
    record_length: int
    fields: tuple[DbfField, ...]

    @classmethod
    def parse(cls, head: bytes) -> DbfHeader:
        """Read a header as shapelib's ``DBFOpen`` does (``head``: at least its first bytes).

        Examples
        --------
        >>> head = bytes([3, 100, 1, 1, 2, 0, 0, 0, 65, 0, 11, 0]) + bytes(20)
        >>> head += b"id" + bytes(9) + b"N" + bytes(4) + bytes([10, 0]) + bytes(14)
        >>> h = DbfHeader.parse(head)
        >>> h.records, h.header_length, h.record_length
        (2, 65, 11)
        >>> h.fields
        (DbfField(name='id', kind='N', offset=1, width=10, decimals=0),)
        """
        records = head[4] | head[5] << 8 | head[6] << 16 | (head[7] & 0x7F) << 24
        header_length = head[8] | head[9] << 8
        record_length = head[10] | head[11] << 8
        fields = []
        offset = 1
        for i in range((header_length - 32) // 32):
            d = head[32 + 32 * i:64 + 32 * i]
            if len(d) < 32 or d[0] == 0x0D:
                break
            kind = chr(d[11])
            width, decimals = (d[16] + 256 * d[17], 0) if kind == "C" else (d[16], d[17])
            name = d[:11].split(b"\0", 1)[0].decode("latin-1").rstrip(" ")
            fields.append(DbfField(name, kind, offset, width, decimals))
            offset += width
        return cls(records, header_length, record_length, tuple(fields))


def gdal_date() -> dt.date:
    """The date GDAL stamps into a DBF header it appends to: today, in UTC."""
    return dt.datetime.now(dt.UTC).date()


def date_bytes(date: dt.date) -> bytes:
    """A date as the DBF header holds it (bytes 1 to 3: years since 1900, month, day).

    Examples
    --------
    >>> list(date_bytes(dt.date(2000, 1, 1)))
    [100, 1, 1]
    """
    return bytes([(date.year - 1900) & 0xFF, date.month, date.day])


def stamp_date(path: Path, date: dt.date) -> None:
    """Write ``date`` into the header of the ``.dbf`` of the shapefile ``path``."""
    with Path(path).with_suffix(".dbf").open("r+b") as fh:
        fh.seek(1)
        fh.write(date_bytes(date))


def append(path: Path, wkb: np.ndarray, fields: list[str], values: list[np.ndarray],
           masks: list[np.ndarray | None], *, date: dt.date | None = None) -> None:
    """Append features to a shapefile GDAL created, as GDAL would append them.

    Parameters
    ----------
    path : Path
        The ``.shp`` file (its ``.shx``, ``.dbf`` and ``.cpg`` beside it).
    wkb : numpy.ndarray of bytes-like (bytes, bytearray or memoryview)
        One Polygon or MultiPolygon WKB per feature.
    fields : list of str
        Field names, one per DBF field (any order, case as in the DBF or not).
    values : list of numpy.ndarray
        Per field, its values (numbers, booleans, or ``str`` objects).
    masks : list of numpy.ndarray or None
        Per field, where it is null (None: nowhere but NaN).
    date : datetime.date, optional
        Date written to the DBF header (default: GDAL's, today in UTC).

    Raises
    ------
    NotNative
        If GDAL would write these features otherwise than this writer does (see the
        module's notes); the files are then as they were.

    Examples
    --------
    >>> import tempfile, pyogrio.raw, shapely
    >>> folder = Path(tempfile.mkdtemp())
    >>> wkb = shapely.to_wkb(np.array([shapely.box(0, 0, 1, 1)]))
    >>> args = (wkb, [np.array([7])], ["id"])
    >>> for name in ("gdal", "native"):
    ...     pyogrio.raw.write(folder / f"{name}.shp", wkb[:0], [np.array([7])[:0]], ["id"],
    ...                       crs="EPSG:4527", geometry_type="MultiPolygon", encoding="UTF-8")
    >>> pyogrio.raw.write(folder / "gdal.shp", *args, crs="EPSG:4527",
    ...                   geometry_type="MultiPolygon", append=True)
    >>> append(folder / "native.shp", wkb, ["id"], [np.array([7])], [None])
    >>> all((folder / f"gdal.{e}").read_bytes() == (folder / f"native.{e}").read_bytes()
    ...     for e in ("shp", "shx", "dbf"))
    True
    """
    n = len(wkb)
    if n == 0:
        return  # GDAL writes nothing, not even the date
    for name in GDAL_SETTINGS:
        if os.environ.get(name) is not None or _gdal_option(name) is not None:
            raise NotNative(f"GDAL setting {name} is set")
    path = Path(path)
    files = _Files.open(path)
    try:
        dbf = files.dbf
        by_name = {f.name.upper(): f for f in dbf.fields}
        if not dbf.fields or len(fields) != len(dbf.fields) or \
                {name.upper() for name in fields} != set(by_name):
            raise NotNative("the fields are not the DBF's")
        codec = _codec(path)
        columns = [(by_name[name.upper()], np.asarray(v), m)
                   for name, v, m in zip(fields, values, masks, strict=True)]
        files.check_room(n, wkb_bytes(wkb))
        caches: list[dict[str, bytes]] = [{} for _ in columns]
        try:
            for a, b in _groups(wkb, max(1, DBF_BYTES // dbf.record_length)):
                block = _dbf_block(dbf, columns, codec, caches, a, b)  # before this group's writes
                files.write_features(wkb[a:b])
                files.write_dbf(block)
            files.finish(date or gdal_date())
        except BaseException:
            files.undo()
            raise
    finally:
        files.close()


def _gdal_option(name: str) -> str | None:
    """A GDAL configuration option as pyogrio's GDAL has it."""
    return pyogrio.get_gdal_config_option(name)


def _codec(path: Path) -> str:
    """Python codec of the layer's encoding (its ``.cpg``), as GDAL recodes text to it."""
    cpg = path.with_suffix(".cpg")
    if not cpg.exists():
        raise NotNative("no .cpg: GDAL's encoding is not known")
    name = cpg.read_bytes().decode("ascii", "replace").strip()
    for key, codec in CODECS.items():
        if name.upper() == key:
            return codec
    raise NotNative(f"encoding {name!r} of {cpg.name} is not one GDAL's recoding is known for")


def wkb_bytes(wkb: np.ndarray) -> int:
    """Bytes of WKB of the features (None: no geometry)."""
    return sum(len(w) for w in wkb if w is not None)


def _groups(wkb: np.ndarray, most: int) -> Iterator[tuple[int, int]]:
    """Runs of features of at most ``most`` features and about :data:`GROUP_BYTES` of WKB."""
    n = len(wkb)
    a = 0
    while a < n:
        size = len(wkb[a] or EMPTY)
        b = a + 1
        while b < n and b - a < most and size + len(wkb[b] or EMPTY) <= GROUP_BYTES:
            size += len(wkb[b] or EMPTY)
            b += 1
        yield a, b
        a = b


# ---------------------------------------------------------------------------------- files


@dataclass
class _Files:
    """The three files of a shapefile open for appending, and what undoes the appending."""

    handles: dict[str, BinaryIO]  # "shp", "shx", "dbf"
    heads: dict[str, bytes]  # each file's header as it was
    dbf: DbfHeader
    shp_size: int  # from the .shp header: where GDAL appends
    records: int  # from the .shx header
    bounds: np.ndarray  # xmin, ymin, xmax, ymax, zmin, zmax, mmin, mmax
    tails: dict[str, tuple[int, bytes, int]]  # file -> (end of its records, bytes after, size)
    written: bool = False

    @classmethod
    def open(cls, path: Path) -> _Files:
        """Open ``path``'s ``.shp``, ``.shx`` and ``.dbf`` at the end of their records."""
        handles: dict[str, BinaryIO] = {}
        try:
            for ext in ("shp", "shx", "dbf"):
                handles[ext] = path.with_suffix(f".{ext}").open("r+b")
            self = cls._read(handles)
        except (OSError, NotNative) as exc:
            for h in handles.values():
                h.close()
            if isinstance(exc, NotNative):
                raise
            raise NotNative(f"{path.stem}: {exc}") from exc
        return self

    @classmethod
    def _read(cls, handles: dict[str, BinaryIO]) -> _Files:
        heads = {ext: h.read(100 if ext != "dbf" else 32) for ext, h in handles.items()}
        dbf_head = heads["dbf"]
        if len(heads["shp"]) < 100 or len(heads["shx"]) < 100 or len(dbf_head) < 32 or \
                heads["shx"][:4] != b"\0\0\x27\x0a":
            raise NotNative("not a shapefile GDAL wrote")
        dbf = DbfHeader.parse(dbf_head + handles["dbf"].read(
            max(0, (dbf_head[8] | dbf_head[9] << 8) - 32)))
        shp_size = 2 * int.from_bytes(heads["shp"][24:28], "big")
        records = ((int.from_bytes(heads["shx"][24:28], "big") & 0x7FFFFFFF) - 50) // 4
        if heads["shp"][32] != SHPT_POLYGON or records != dbf.records or shp_size < 100:
            raise NotNative("not a polygon layer GDAL wrote")
        ends = {"shp": shp_size, "shx": 100 + 8 * records,
                "dbf": dbf.header_length + dbf.records * dbf.record_length}
        tails = {}
        for ext, h in handles.items():
            size = h.seek(0, os.SEEK_END)
            if ends[ext] > size:
                raise NotNative(f"the .{ext} is shorter than its header says")
            h.seek(ends[ext])
            tails[ext] = (ends[ext], h.read(), size)
            h.seek(ends[ext])
        bounds = np.frombuffer(heads["shp"][36:100], dtype="<f8").copy()
        return cls(handles, heads, dbf, shp_size, records, bounds, tails)

    def check_room(self, n: int, wkb_bytes: int) -> None:
        """Stop if a file could pass 2 GB (where GDAL warns) with ``n`` more features.

        A record takes at most 52 bytes more than its WKB (empty rings are dropped).
        """
        most = (self.shp_size + wkb_bytes + 52 * n, 100 + 8 * (self.records + n),
                self.dbf.header_length + (self.dbf.records + n) * self.dbf.record_length + 1)
        if max(most) > SIZE_LIMIT:
            raise NotNative("a file could pass 2 GB, where GDAL warns")

    def write_features(self, wkb: np.ndarray | list[bytes | None]) -> None:
        """Append the records of ``wkb`` to the ``.shp`` and ``.shx``; fold their bounds in."""
        n = len(wkb)
        if any(w is None for w in wkb):  # no geometry: a null record, as GDAL writes it
            wkb = [EMPTY if w is None else w for w in wkb]
        lengths = np.fromiter((len(w) for w in wkb), dtype=np.int64, count=n)
        ends = np.cumsum(lengths)
        starts = ends - lengths
        # one feature: its own buffer, not copied (it may be most of a chunk)
        buf = np.frombuffer(wkb[0] if n == 1 else b"".join(wkb), dtype=np.uint8)
        buf.flags.writeable = False  # a bytearray's too: one signature for numba to compile
        status, feat_rings, feat_points, box, ring_pos, ring_n, ring_first, ring_rev = \
            _parse(buf, starts, ends)
        if status >= 0:
            raise NotNative(f"feature {status} is not 2D little-endian Polygon or "
                            f"MultiPolygon WKB")
        if status < -1:
            raise NotNative(f"feature {-2 - status} has a non-finite coordinate (GDAL refuses "
                            f"it)")
        ring0 = np.concatenate([[0], np.cumsum(feat_rings)])
        size = np.where(feat_rings > 0, 52 + 4 * feat_rings + 16 * feat_points, 12)
        total = int(size.sum())
        if self.shp_size + total > SIZE_LIMIT:
            raise NotNative("the .shp would pass 2 GB, where GDAL warns")
        index = np.empty((n, 2), dtype=">i4")
        index[:, 0] = (self.shp_size + np.cumsum(size) - size) // 2
        index[:, 1] = (size - 8) // 2
        out = np.empty(min(OUT_BYTES, total), dtype=np.uint8)
        state = np.zeros(4, dtype=np.int64)
        self.written = True
        while state[0] < n:
            k = _emit(buf, self.records + 1, feat_rings, feat_points, box, ring0, ring_pos,
                      ring_n, ring_first, ring_rev, state, out)
            self.handles["shp"].write(out[:k].data)
        self.handles["shx"].write(index.tobytes())
        _fold_bounds(self.bounds, box, feat_rings, self.records == 0)
        self.records += n
        self.shp_size += total

    def write_dbf(self, block: np.ndarray) -> None:
        """Append formatted DBF records."""
        self.written = True
        self.handles["dbf"].write(block.data)

    def finish(self, date: dt.date) -> None:
        """The end-of-file byte after the records, and the headers (``SHPWriteHeader``...)."""
        shp, shx, dbf = self.handles["shp"], self.handles["shx"], self.handles["dbf"]
        dbf.write(b"\x1a")
        head = bytearray(100)  # as SHPWriteHeader makes it, from the handle's fields
        head[0:4] = b"\0\0\x27\x0a"
        head[24:28] = (self.shp_size // 2).to_bytes(4, "big")
        head[28:33] = (1000).to_bytes(4, "little") + self.heads["shp"][32:33]
        head[36:100] = self.bounds.astype("<f8").tobytes()
        shp.seek(0)
        shp.write(head)
        head[24:28] = ((100 + 8 * self.records) // 2).to_bytes(4, "big")
        shx.seek(0)
        shx.write(head)
        head = bytearray(self.heads["dbf"])
        head[1:4] = date_bytes(date)
        head[4:8] = self.records.to_bytes(4, "little")
        dbf.seek(0)
        dbf.write(head)

    def undo(self) -> None:
        """Put the files back as they were: the bytes after their records, lengths, headers."""
        if not self.written:
            return
        for ext, h in self.handles.items():
            end, tail, size = self.tails[ext]
            h.seek(end)
            h.write(tail)
            h.truncate(size)
            h.seek(0)
            h.write(self.heads[ext])

    def close(self) -> None:
        """Close the files."""
        for h in self.handles.values():
            h.close()


def _fold_bounds(bounds: np.ndarray, box: np.ndarray, rings: np.ndarray, first: bool) -> None:
    """Fold records' boxes into the file's bounds as ``SHPWriteObject`` folds their vertices.

    shapelib starts from the first record's first vertex (zeros for a null first
    record) and takes ``MIN(h, v) = h < v ? h : v`` vertex by vertex: the bound
    stays unless a vertex is smaller, and otherwise becomes the *last* vertex
    equal to the minimum (which matters only for the sign of a zero). A
    record's box is the same fold of its vertices, so folding the boxes gives
    the same bounds. Z and M fold with 0 (shapelib's zeroed arrays).

    Examples
    --------
    >>> bounds = np.zeros(8)
    >>> _fold_bounds(bounds, np.array([[1.0, 0.0, 2.0, 1.0], [-0.0, 5.0, 1.0, 6.0]]),
    ...              np.array([1, 1]), True)
    >>> bounds[:4].tolist()
    [-0.0, 0.0, 2.0, 6.0]
    """
    null = rings == 0
    if first:
        bounds[:] = 0.0
        if not null[0]:
            bounds[:4] = box[0]
        null = null.copy()
        null[0] = True  # folded
    rest = box[~null]
    if not len(rest):
        return
    for j in range(4):
        values = rest[:, j]
        best = values.min() if j < 2 else values.max()
        keeps = bounds[j] < best if j < 2 else bounds[j] > best
        if not keeps:
            bounds[j] = values[values == best][-1]
    bounds[4:] = np.where(np.array([-1, 1, -1, 1]) * bounds[4:] > 0, bounds[4:], 0.0)


# ------------------------------------------------------------------------------ geometries


@njit(cache=True, nogil=True)
def _u32(buf: np.ndarray, k: int) -> int:
    return (np.int64(buf[k]) | np.int64(buf[k + 1]) << 8 | np.int64(buf[k + 2]) << 16
            | np.int64(buf[k + 3]) << 24)


@intrinsic
def _f64(typingctx: object, buf: types.Array, pos: types.Integer) -> tuple:
    """The little-endian float64 at byte ``pos`` of a uint8 array (WKB points are unaligned)."""
    def codegen(context, builder, sig, args):
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        ptr = builder.bitcast(builder.gep(data, [args[1]]), ir.DoubleType().as_pointer())
        return builder.load(ptr, align=1)
    return types.float64(buf, pos), codegen


@intrinsic
def _copy16(typingctx: object, out: types.Array, k: types.Integer, buf: types.Array,
            pos: types.Integer) -> tuple:
    """Copy the 16 bytes (a point) at ``buf[pos]`` to ``out[k]``, unaligned."""
    def codegen(context, builder, sig, args):
        dst = context.make_array(sig.args[0])(context, builder, args[0]).data
        src = context.make_array(sig.args[2])(context, builder, args[2]).data
        i128 = ir.IntType(128).as_pointer()
        value = builder.load(builder.bitcast(builder.gep(src, [args[3]]), i128), align=1)
        builder.store(value, builder.bitcast(builder.gep(dst, [args[1]]), i128), align=1)
        return context.get_dummy_value()
    return types.none(out, k, buf, pos), codegen


@njit(cache=True, nogil=True)
def _is_clockwise(buf: np.ndarray, pos: int, n: int, lowest: int, repeated: bool) -> bool:
    """``OGRLineString::isClockwise`` of the ring of ``n`` points at byte ``pos``.

    ``lowest`` is its lowest rightmost vertex among the first ``n - 1`` (the
    first such), ``repeated`` whether a vertex scanned after it equals it. The
    sign of the cross product there; Green's formula when that vertex is
    repeated or a neighbour lies within 1e-5 of it (GDAL #5342, #3356).
    """
    if n < 2:
        return True
    eps = 1.0e-5
    v = pos + 16 * lowest
    vx, vy = _f64(buf, v), _f64(buf, v + 8)
    fallback = repeated
    q = pos + 16 * (lowest - 1 if lowest > 0 else n - 2)
    dx0, dy0 = _f64(buf, q) - vx, _f64(buf, q + 8) - vy
    if abs(dx0) < eps and abs(dy0) < eps:
        fallback = True
    q = pos + 16 * (lowest + 1 if lowest + 1 < n - 1 else 0)
    dx1, dy1 = _f64(buf, q) - vx, _f64(buf, q + 8) - vy
    if abs(dx1) < eps and abs(dy1) < eps:
        fallback = True
    cross = dx1 * dy0 - dx0 * dy1
    if not fallback:
        if cross > 0:
            return False
        if cross < 0:
            return True
    # Green's formula: x[i] * (y[i + 1] - y[i - 1]), wrapping at both ends
    total = _f64(buf, pos) * (_f64(buf, pos + 24) - _f64(buf, pos + 16 * (n - 1) + 8))
    for i in range(1, n - 1):
        q = pos + 16 * i
        total += _f64(buf, q) * (_f64(buf, q + 24) - _f64(buf, q - 8))
    q = pos + 16 * (n - 1)
    total += _f64(buf, q) * (_f64(buf, pos + 8) - _f64(buf, q - 8))
    return total < 0


@njit(cache=True, nogil=True)
def _parse(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, tables: bool = True
           ) -> tuple:
    """The rings GDAL writes of each feature's WKB (``buf[starts[i]:ends[i]]``), in one pass.

    Without ``tables`` the rings are counted but not listed (the ring tables
    come back empty, no ring's orientation is worked out, and a zero bound is
    not folded again): what :mod:`sanqu.gpkg` needs, a feature's box and size.

    Polygons whose first ring is empty, and empty rings, are left out (GDAL
    ignores them). A polygon's exterior ring is reversed when anticlockwise, its
    holes when clockwise (:func:`_is_clockwise`). A feature's box is shapelib's
    fold of the written vertices with ``MIN(a, b) = a < b ? a : b`` from the
    first: the minimum whatever the order, but for its sign when it is zero, so
    only then is it folded again in written order (:func:`_fold_box`).

    Returns
    -------
    status : int
        -1, or the first feature that is not 2D little-endian Polygon or
        MultiPolygon WKB, or ``-2 - f`` for a feature ``f`` with a non-finite
        coordinate.
    feat_rings, feat_points : numpy.ndarray of int64
        Rings and points written of each feature (no ring: a null record).
    box : numpy.ndarray of float64, shape (n, 4)
        Each feature's xmin, ymin, xmax, ymax (zeros for a null record).
    ring_pos, ring_n, ring_first : numpy.ndarray of int64
        Each ring's coordinates (byte in ``buf``), points, and first point's
        index in its feature.
    ring_rev : numpy.ndarray of bool
        Whether GDAL writes the ring reversed.
    """
    n = starts.size
    feat_rings = np.zeros(n, dtype=np.int64)
    feat_points = np.zeros(n, dtype=np.int64)
    box = np.zeros((n, 4), dtype=np.float64)
    cap = max(16, n, buf.size // 128) if tables else 0  # rings of 7 points or more; grown
    ring_pos = np.empty(cap, dtype=np.int64)
    ring_n = np.empty(cap, dtype=np.int64)
    ring_first = np.empty(cap, dtype=np.int64)
    ring_rev = np.empty(cap, dtype=np.bool_)
    r = 0
    status = -1
    for f in range(n):
        k = starts[f]
        end = ends[f]
        if k + 5 > end or buf[k] != 1:
            status = f
            break
        kind = _u32(buf, k + 1)
        k += 5
        polygons = 1
        if kind == 6:
            if k + 4 > end:
                status = f
                break
            polygons = _u32(buf, k)
            k += 4
        elif kind != 3:
            status = f
            break
        r0 = r
        points = 0
        lo_x = lo_y = np.inf
        hi_x = hi_y = -np.inf
        finite = 0.0  # stays 0 while every coordinate is finite (0 * inf and 0 * NaN are NaN)
        for _ in range(polygons):
            if kind == 6:
                if k + 9 > end or buf[k] != 1 or _u32(buf, k + 1) != 3:
                    status = f
                    break
                k += 5
            if k + 4 > end:
                status = f
                break
            count = _u32(buf, k)
            k += 4
            keep = True
            for j in range(count):
                if k + 4 > end:
                    status = f
                    break
                m = _u32(buf, k)
                k += 4
                if 16 * m > end - k:
                    status = f
                    break
                if j == 0 and m == 0:
                    keep = False  # POLYGON EMPTY: GDAL drops the whole polygon
                if keep and m > 0 and not tables:
                    for i in range(m):
                        q = k + 16 * i
                        x, y = _f64(buf, q), _f64(buf, q + 8)
                        finite += 0.0 * x + 0.0 * y
                        lo_x = min(lo_x, x)
                        hi_x = max(hi_x, x)
                        lo_y = min(lo_y, y)
                        hi_y = max(hi_y, y)
                    r += 1
                    points += m
                elif keep and m > 0:
                    if r == ring_pos.size:
                        ring_pos, ring_n = _grow(ring_pos), _grow(ring_n)
                        ring_first, ring_rev = _grow(ring_first), _grow(ring_rev)
                    v = 0
                    vx, vy = _f64(buf, k), _f64(buf, k + 8)
                    repeated = False
                    for i in range(m):
                        q = k + 16 * i
                        x, y = _f64(buf, q), _f64(buf, q + 8)
                        finite += 0.0 * x + 0.0 * y
                        lo_x = lo_x if lo_x < x else x
                        hi_x = hi_x if hi_x > x else x
                        lo_y = lo_y if lo_y < y else y
                        hi_y = hi_y if hi_y > y else y
                        # the lowest rightmost of the first m - 1 vertices (selects, no branch)
                        inner = 0 < i < m - 1
                        lower = inner and (y < vy or (y == vy and x > vx))
                        same = inner and y == vy and x == vx
                        repeated = (repeated or same) and not lower
                        v = i if lower else v
                        vx = x if lower else vx
                        vy = y if lower else vy
                    cw = _is_clockwise(buf, k, m, v, repeated)
                    ring_pos[r] = k
                    ring_n[r] = m
                    ring_first[r] = points
                    ring_rev[r] = not cw if j == 0 else cw
                    r += 1
                    points += m
                k += 16 * m
            if status >= 0:
                break
        if status >= 0:
            break
        if finite != 0.0:
            status = -2 - f
            break
        feat_rings[f] = r - r0
        feat_points[f] = points
        if r > r0:
            box[f, 0], box[f, 1], box[f, 2], box[f, 3] = lo_x, lo_y, hi_x, hi_y
            if tables and (lo_x == 0.0 or lo_y == 0.0 or hi_x == 0.0 or hi_y == 0.0):
                _fold_box(buf, r0, r, ring_pos, ring_n, ring_rev, box[f])
    r = r if tables else 0
    return (status, feat_rings, feat_points, box, ring_pos[:r], ring_n[:r], ring_first[:r],
            ring_rev[:r])


@njit(cache=True, nogil=True)
def _fold_box(buf: np.ndarray, r0: int, r1: int, ring_pos: np.ndarray, ring_n: np.ndarray,
              ring_rev: np.ndarray, box: np.ndarray) -> None:
    """A feature's box folded vertex by vertex in written order (``SHPComputeExtents``)."""
    first = True
    for r in range(r0, r1):
        n = ring_n[r]
        for i in range(n):
            q = ring_pos[r] + 16 * (n - 1 - i if ring_rev[r] else i)
            x, y = _f64(buf, q), _f64(buf, q + 8)
            if first:
                box[0] = box[2] = x
                box[1] = box[3] = y
                first = False
            box[0] = box[0] if box[0] < x else x
            box[1] = box[1] if box[1] < y else y
            box[2] = box[2] if box[2] > x else x
            box[3] = box[3] if box[3] > y else y


@njit(cache=True, nogil=True)
def _put_i32(out: np.ndarray, k: int, v: int, big: bool) -> None:
    for j in range(4):
        out[k + (3 - j if big else j)] = (v >> (8 * j)) & 0xFF


@njit(cache=True, nogil=True)
def _put_f64(out: np.ndarray, k: int, v: float, xy: np.ndarray, xy_bytes: np.ndarray) -> None:
    xy[0] = v
    for q in range(8):
        out[k + q] = xy_bytes[q]


@njit(cache=True, nogil=True)
def _emit(buf: np.ndarray, number: int, feat_rings: np.ndarray, feat_points: np.ndarray,
          box: np.ndarray, ring0: np.ndarray, ring_pos: np.ndarray, ring_n: np.ndarray,
          ring_first: np.ndarray, ring_rev: np.ndarray, state: np.ndarray, out: np.ndarray
          ) -> int:
    """Write ``.shp`` records into ``out`` from ``state`` on, as far as they fit.

    ``state`` is (feature, phase, ring, point) with phase 0 the record's head,
    1 its part starts, 2 its points; it is updated for the next call. Record
    ``f`` is numbered ``number + f``. Returns the bytes written.
    """
    xy = np.empty(2, dtype=np.float64)
    xy_bytes = xy.view(np.uint8)
    f, phase, r, p = state[0], state[1], state[2], state[3]
    cap = out.size
    k = 0
    full = False
    while f < feat_rings.size and not full:
        if phase == 0:
            null = feat_rings[f] == 0
            need = 12 if null else 52
            if k + need > cap:
                break
            _put_i32(out, k, number + f, True)
            length = 4 if null else 44 + 4 * feat_rings[f] + 16 * feat_points[f]
            _put_i32(out, k + 4, length // 2, True)
            _put_i32(out, k + 8, SHPT_NULL if null else SHPT_POLYGON, False)
            if null:
                k += 12
                f += 1
                continue
            for q in range(4):
                _put_f64(out, k + 12 + 8 * q, box[f, q], xy, xy_bytes)
            _put_i32(out, k + 44, feat_rings[f], False)
            _put_i32(out, k + 48, feat_points[f], False)
            k += 52
            phase, r = 1, ring0[f]
        if phase == 1:
            while r < ring0[f + 1]:
                if k + 4 > cap:
                    full = True
                    break
                _put_i32(out, k, ring_first[r], False)
                k += 4
                r += 1
            if full:
                break
            phase, r, p = 2, ring0[f], 0
        while r < ring0[f + 1]:
            n = ring_n[r]
            pos = ring_pos[r]
            m = min(n - p, (cap - k) // 16)
            if ring_rev[r]:
                for i in range(p, p + m):
                    _copy16(out, k, buf, pos + 16 * (n - 1 - i))
                    k += 16
            else:
                for i in range(p, p + m):
                    _copy16(out, k, buf, pos + 16 * i)
                    k += 16
            p += m
            if p < n:
                full = True
                break
            r += 1
            p = 0
        if full:
            break
        phase = 0
        f += 1
    state[0], state[1], state[2], state[3] = f, phase, r, p
    return k


# ------------------------------------------------------------------------------ attributes


def _dbf_block(dbf: DbfHeader, columns: list[tuple[DbfField, np.ndarray, np.ndarray | None]],
               codec: str, caches: list[dict[str, bytes]], a: int, b: int) -> np.ndarray:
    """The DBF records of features ``a`` to ``b - 1``: ``(b - a, record_length)`` bytes."""
    block = np.full((b - a, dbf.record_length), ord(" "), dtype=np.uint8)
    for (field, values, mask), cache in zip(columns, caches, strict=True):
        block[:, field.offset:field.offset + field.width] = _field_block(
            field, values[a:b], None if mask is None else mask[a:b], codec, cache)
    return block


def _field_block(field: DbfField, values: np.ndarray, mask: np.ndarray | None, codec: str,
                 cache: dict[str, bytes]) -> np.ndarray:
    """The bytes of one field in each record, ``(n, width)``, as GDAL formats them.

    Nulls: masked values, NaNs (pyogrio's ``nan_as_null``) and None objects.
    ``cache`` keeps the encoded text values between calls.
    """
    n = len(values)
    null = np.zeros(n, dtype=bool) if mask is None else np.asarray(mask, dtype=bool).copy()
    kind = values.dtype.kind
    if kind == "f":
        null |= np.isnan(values)
    ogr = field.ogr
    width = field.width
    if ogr == "string" and kind == "O":
        return _text_block(field, values, null, codec, cache)
    if ogr in ("integer", "integer64"):
        cells = _integer_cells(field, values, null)
    elif ogr == "real":
        cells = _real_cells(field, values, null)
    elif ogr == "boolean" and kind == "b":
        cells = [b"T" if v else b"F" for v in values.tolist()]
    else:
        raise NotNative(f"field {field.name}: {ogr} field given {values.dtype} values")
    pad = field.null * width
    joined = b"".join(pad if z else c.ljust(width)
                      for c, z in zip(cells, null.tolist(), strict=True))
    return np.frombuffer(joined, dtype=np.uint8).reshape(n, width)


def _text_block(field: DbfField, values: np.ndarray, null: np.ndarray, codec: str,
                cache: dict[str, bytes]) -> np.ndarray:
    """Text as GDAL writes it: recoded, cut at a NUL byte, padded with spaces (nulls too).

    Each distinct value is encoded once; one wider than the field stops here
    (GDAL widens the field), and so does one that is not text (or None).
    """
    codes, uniques = pd.factorize(values)  # None (and other missing values) -> -1
    missing = (codes < 0) & ~null
    if missing.any() and any(v is not None for v in values[missing].tolist()):
        raise NotNative(f"field {field.name}: a missing value other than None")
    used = np.zeros(len(uniques) + 1, dtype=bool)
    used[codes[~null]] = True
    blank = b" " * field.width
    rows = [blank] * (len(uniques) + 1)  # the last: null
    for i in np.flatnonzero(used[:-1]).tolist():
        v = uniques[i]
        if not isinstance(v, str):
            raise NotNative(f"field {field.name}: {type(v).__name__} value")
        cell = cache.get(v)
        if cell is None:
            try:
                cell = v.encode(codec).split(b"\0", 1)[0]
            except UnicodeEncodeError as exc:
                raise NotNative(f"field {field.name}: {v!r} is not {codec} text") from exc
            if len(cell) > min(field.width, 254):
                raise NotNative(f"field {field.name}: {v!r} is wider than the field "
                                f"(GDAL widens it)")
            cache[v] = cell
        rows[i] = cell.ljust(field.width)
    table = np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(len(rows), field.width)
    codes[null | (codes < 0)] = len(uniques)
    return table[codes]


def _integer_cells(field: DbfField, values: np.ndarray, null: np.ndarray) -> list[bytes]:
    """``%*lld`` in the field's width (at most 31); a wider value stops here (GDAL widens)."""
    kind = values.dtype.kind
    if kind == "f":
        ok = ~null
        v = values[ok]
        if (v != np.trunc(v)).any() or (np.abs(v) > 2.0**53).any():
            raise NotNative(f"field {field.name}: a real value for an integer field")
        ints = np.zeros(len(values), dtype=np.int64)
        ints[ok] = v.astype(np.int64)
    elif kind in "iu":
        if kind == "u" and len(values) and values.max() > np.iinfo(np.int64).max:
            raise NotNative(f"field {field.name}: an integer beyond int64")
        ints = values.astype(np.int64)
    else:
        raise NotNative(f"field {field.name}: integer field given {values.dtype} values")
    if field.ogr == "integer" and len(ints) and \
            ((ints[~null] < -(2**31)).any() or (ints[~null] > 2**31 - 1).any()):
        raise NotNative(f"field {field.name}: a value beyond an Integer field (GDAL clamps it)")
    w = min(field.width, 31)
    cells = [b"%*d" % (w, i) for i in ints.tolist()]
    if any(len(c) > field.width for c, z in zip(cells, null.tolist(), strict=True) if not z):
        raise NotNative(f"field {field.name}: a value wider than the field (GDAL widens it)")
    return cells


def _real_cells(field: DbfField, values: np.ndarray, null: np.ndarray) -> list[bytes]:
    """``%*.*f`` with the field's decimals, cut to its width when it reads back the same."""
    kind = values.dtype.kind
    if kind not in "fiu" or (kind == "u" and len(values) and
                             values.max() > np.iinfo(np.int64).max):
        raise NotNative(f"field {field.name}: real field given {values.dtype} values")
    w, d = min(field.width, 254), field.decimals
    reals = values.astype(np.float64).tolist()
    cells = []
    for v, z in zip(reals, null.tolist(), strict=True):
        if z:
            cells.append(b"")
            continue
        if d == 0 and abs(v) > 2.0**53:
            raise NotNative(f"field {field.name}: {v!r} beyond 2^53 (GDAL warns)")
        cell = b"%*.*f" % (w, d, v)
        if len(cell) > field.width:
            cell = cell[:field.width]
            if float(cell) != v:
                raise NotNative(f"field {field.name}: {v!r} does not fit (GDAL warns)")
        cells.append(cell)
    return cells
