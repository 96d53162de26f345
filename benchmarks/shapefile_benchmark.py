"""Time writing one polygon layer to a shapefile: GDAL alone vs the native writer.

    .venv/bin/python benchmarks/shapefile_benchmark.py /tmp/b2000t/planning_db.gpkg STBHZYXPJJG

The layer is read with ``pyogrio.read_dataframe`` and encoded once
(:class:`sanqu.export.Encoded`); then, ``--repeat`` times each, it is written
to a new shapefile by GDAL (``Encoded.write``, as sanqu wrote shapefiles
before) and by ``Encoded.write_shapefile`` (GDAL creates the empty layer,
:func:`sanqu.shapefile.append` writes the features), and the three files are
checked to be the same bytes. Prints the fastest time of each, nanoseconds per
vertex, their ratio, and the peak resident memory of each write above the
memory held before it (``VmHWM``, Linux only).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import pyogrio
import shapely
from lines_benchmark import staged  # beside this file

from sanqu.export import Encoded, vector_env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("path", type=Path, help="a vector file")
    parser.add_argument("layer", help="a polygon layer of it")
    parser.add_argument("--encoding", default="UTF-8", choices=["UTF-8", "GBK"])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    df = pyogrio.read_dataframe(args.path, layer=args.layer)
    vertices = int(shapely.get_num_coordinates(df.geometry.values).sum())
    enc = Encoded.of(df)
    print(f"{args.layer}: {len(df)} features, {vertices:,} vertices, "
          f"{sum(len(w) for w in enc.wkb) / 2**20:.1f} MB of WKB")
    folder = Path(tempfile.mkdtemp(prefix="shp-bench-"))
    enc.write_shapefile(folder / "warm.shp", args.encoding, create=True)  # numba compiles/loads
    options = {"driver": "ESRI Shapefile", "encoding": args.encoding,
               "layer_options": {"DBF_DATE_LAST_UPDATE": "2000-01-01"}}
    times: dict[str, list[float]] = {"gdal": [], "native": []}
    peaks: dict[str, float] = {}
    with vector_env():
        for _ in range(args.repeat):
            for name in times:
                target = folder / name
                shutil.rmtree(target, ignore_errors=True)
                target.mkdir()
                path = target / "layer.shp"
                t0 = time.perf_counter()
                if name == "gdal":
                    _, _, peak = staged(lambda p=path: enc.write(p, **options))
                else:
                    _, _, peak = staged(lambda p=path: enc.write_shapefile(p, args.encoding,
                                                                           create=True))
                times[name].append(time.perf_counter() - t0)
                peaks[name] = max(peaks.get(name, 0.0), peak)
            same = all((folder / "gdal" / f"layer.{e}").read_bytes()
                       == (folder / "native" / f"layer.{e}").read_bytes()
                       for e in ("shp", "shx", "dbf", "cpg", "prj"))
            assert same, "the native writer's files differ from GDAL's"
    shutil.rmtree(folder)
    best = {k: min(v) for k, v in times.items()}
    for name, seconds in best.items():
        print(f"{name:>6}: {seconds:.4f} s  {seconds / vertices * 1e9:5.1f} ns/vertex  "
              f"peak +{peaks[name]:.0f} MB")
    print(f"GDAL / native: {best['gdal'] / best['native']:.1f}x (fastest of {args.repeat}; "
          f"files identical)")


if __name__ == "__main__":
    main()
