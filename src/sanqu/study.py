"""The per-cell stages of a run: read inputs, derive factors, evaluate, block by block.

A :class:`Study` opens the inputs of a config on the study grid and computes,
for any :class:`~sanqu.grid.Block`, the study mask, the land-use classes, the
factors and the three evaluation results. Each block is read with the halo the
factors need, so results do not depend on the block size. Only the compact
results are kept whole-area (:class:`~sanqu.surfaces.Surfaces`); factors live
one block at a time, so memory stays bounded however large the area.

Two evaluation rules need the whole area, and run around the block loop:
cumulative-share grading needs the total of a service layer (:meth:`Study.fit`,
a first pass over the blocks, only when a config uses it), and contiguity needs
patches that cross blocks (:meth:`Evaluation.finish` on the compact grade raster,
after the loop, before the lines).
"""

from __future__ import annotations

import os
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from itertools import islice

import numpy as np

from .align import AlignedRaster, burn, grid_of, read_polygons
from .config import RESULTS, Config, factor_refs
from .errors import ConfigError, InputError
from .evaluate import Evaluation, StepStats, build_evaluations
from .factors import compute_factor, halo_cells, own_threads
from .grid import Block, Grid
from .heap import release_heap
from .rules import reclass, take
from .surfaces import RESULT_ATTRS, Surfaces
from .units import Units, quota_index, read_units

#: Most blocks computed at once (:meth:`Study._computed`; fewer with fewer threads).
IN_FLIGHT = 2


@dataclass
class Timer:
    """Accumulates wall-clock seconds per stage name.

    Stages may be timed from several threads at once inside :meth:`overlapping`,
    whose elapsed time they then share, so the stages' seconds still add up to
    the run's.

    Attributes
    ----------
    seconds : dict
        Seconds per stage, in the order stages were first entered (inside
        :meth:`overlapping`, first left).
    on_stage : callable, optional
        Told the stage name on entering a stage and ``None`` on leaving it, on the
        thread that runs the stage (a benchmark uses it to attribute memory to
        stages).
    """

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    on_stage: Callable[[str | None], None] | None = None
    _tally: dict[str, float] | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        """Time the enclosed code and add it to ``stage``."""
        if self.on_stage is not None:
            self.on_stage(stage)
        t0 = time.perf_counter()
        try:
            yield
        finally:
            spent = time.perf_counter() - t0
            with self._lock:
                into = self.seconds if self._tally is None else self._tally
                into[stage] = into.get(stage, 0.0) + spent
            if self.on_stage is not None:
                self.on_stage(None)

    @contextmanager
    def overlapping(self) -> Iterator[None]:
        """Share the enclosed wall-clock time among stages timed on several threads.

        Inside, the seconds of each stage are summed over the threads that run it
        (two blocks in flight both count, and the caller's own stages, such as
        storing a block or writing it); on leaving, the elapsed time is added to
        those stages in proportion to their sums.

        Examples
        --------
        >>> t = Timer()
        >>> with t.overlapping():
        ...     with t("read"):
        ...         pass
        >>> list(t.seconds)
        ['read']
        """
        with self._lock:
            if self._tally is not None:
                raise RuntimeError("Timer.overlapping is not reentrant")
            self._tally = {}
        t0 = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - t0
            with self._lock:
                tally, self._tally = self._tally, None
                total = sum(tally.values())
                for stage, spent in tally.items():
                    self.seconds[stage] += elapsed * spent / total if total > 0 else 0.0


@dataclass
class BlockResult:
    """Everything computed for one block (core cells only).

    Attributes
    ----------
    mask : numpy.ndarray of bool
        Study area.
    layers : dict of numpy.ndarray
        Inputs and factors by name, computed on the whole block: cells outside
        ``mask`` hold the inputs' no-data values and unmasked factor values.
    landclass : numpy.ndarray of uint8
        Land-use class index (1-based, config order), 0 outside.
    results : dict of numpy.ndarray
        The three evaluation levels by result name; for a result with a
        whole-area step (contiguity), the grades that step needs instead (see
        :meth:`Study.surfaces`). Empty when the evaluation was not asked for.
    steps : dict of dict of numpy.ndarray
        Intermediate grades per result and step (only when asked for).
    """

    mask: np.ndarray
    layers: dict[str, np.ndarray]
    landclass: np.ndarray
    results: dict[str, np.ndarray]
    steps: dict[str, dict[str, np.ndarray]]


def _around(values: np.ndarray, halo: int, cells: int) -> np.ndarray:
    """Crop an array of a block's core and ``halo`` cells around it to ``cells`` around it.

    Returns a view.

    Examples
    --------
    >>> _around(np.arange(25).reshape(5, 5), 2, 1).shape
    (3, 3)
    """
    d = halo - cells
    return values[d:values.shape[0] - d, d:values.shape[1] - d]


class Study:
    """Inputs of a config opened on the study grid, ready to compute blocks.

    Parameters
    ----------
    cfg : Config
        The validated run configuration.

    Raises
    ------
    InputError
        If an input is missing, unreadable or cannot be aligned.
    ConfigError
        If an AHP matrix is too inconsistent.
    """

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        ref = cfg.grid.reference
        self.grid: Grid = grid_of(cfg.inputs[ref].path, f"inputs.{ref}")
        self.rasters: dict[str, AlignedRaster] = {}
        try:
            for name, spec in cfg.present_inputs.items():
                self.rasters[name] = AlignedRaster(
                    f"inputs.{name}", spec.path, self.grid, categorical=spec.kind == "categorical",
                    nodata=spec.nodata, band=spec.band, misaligned=cfg.grid.misaligned)
            self.evaluations: dict[str, Evaluation] = build_evaluations(cfg)
            self.units: Units | None = read_units(cfg.units, self.grid) if cfg.units else None
            quotas = cfg.lines.farmland.unit_quotas
            if isinstance(quotas, dict):
                quota_index(self.units.codes if self.units else (), quotas)  # codes exist?
            self._polygons = {
                key: read_polygons(spec.path, key, self.grid, spec.layer,
                                   datum_shift=spec.datum_shift).geometry.values
                for key, spec in (("study_area.boundary", cfg.study_area.boundary),
                                  ("lines.red_line.protected_areas",
                                   cfg.lines.red_line.protected_areas),
                                  ("lines.ugb.special_use", cfg.lines.ugb.special_use))
                if spec is not None}
        except Exception:
            self.close()
            raise
        self.class_names = tuple(cfg.landuse.classes)
        lut_size = max(c for codes in cfg.landuse.classes.values() for c in codes) + 1
        self._class_lut = np.zeros(max(lut_size, 1), dtype=np.uint8)
        self._known = np.zeros(max(lut_size, 1), dtype=bool)
        for i, codes in enumerate(cfg.landuse.classes.values(), start=1):
            self._class_lut[codes] = i
            self._known[codes] = True
        self.absent = cfg.absent_layers()
        needed = {cfg.lines.farmland.slope_factor, cfg.lines.farmland.quality.near_factor}
        for ev in self.evaluations.values():
            needed |= ev.needed_layers()
        for name, spec in reversed(cfg.factors.items()):  # and the factors those factors read
            if name in needed:
                needed.update(factor_refs(spec))
        #: Factors computed: those some running step (or a farmland rule) reads.
        self.factors = {k: v for k, v in cfg.factors.items()
                        if k in needed and k not in self.absent}
        self.unused = [k for k in cfg.factors if k not in needed and k not in self.absent]
        own = {name: halo_cells(spec, self.grid.res) for name, spec in self.factors.items()}
        refs = {name: [r for r in factor_refs(spec) if r in self.factors]
                for name, spec in self.factors.items()}
        halo: dict[str, int] = {}
        wave: dict[str, int] = {}
        for name in self.factors:  # a factor may read earlier factors
            halo[name] = own[name] + max((halo[r] for r in refs[name]), default=0)
            wave[name] = 1 + max((wave[r] for r in refs[name]), default=-1)
        self.halo = max(halo.values(), default=0)
        margin = dict.fromkeys(self.factors, 0)  # where the factors reading it need it exact
        for name in reversed(self.factors):
            for r in refs[name]:
                margin[r] = max(margin[r], margin[name] + own[name])
        #: Per factor, the cells around a block's core it is computed on: its own halo
        #: plus the margin where the factors that read it need its values; the distances
        #: need the whole halo, slope only one cell.
        self.reach = {name: margin[name] + own[name] for name in self.factors}
        #: Factors in dependency waves: the factors of one wave run in parallel.
        self.waves = [[n for n in self.factors if wave[n] == w]
                      for w in range(max(wave.values(), default=-1) + 1)]
        self._fitted = not any(ev.share_layers for ev in self.evaluations.values())
        #: Worker threads of the per-cell stages.
        self.threads: int = cfg.grid.threads or os.cpu_count() or 1
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="sanqu")

    def __enter__(self) -> Study:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every input file and stop the worker threads."""
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown()
        for r in self.rasters.values():
            r.close()

    @property
    def notes(self) -> list[str]:
        """Remarks on the run, one line each.

        What alignment did to each input (resampling, CRS equivalence), remarks on
        the units, and which factors and evaluation steps were skipped, and why.
        """
        out = [f"inputs.{k}: {r.note}" for k, r in self.rasters.items() if r.note]
        out += list(self.units.notes if self.units else ())
        out += [f"factors.{k}: not computed, {why}" for k, why in self.absent.items()
                if k in self.cfg.factors]
        out += [f"factors.{k}: not computed, no step that runs reads it" for k in self.unused]
        for ev in self.evaluations.values():
            out += ev.notes()
        return out

    def _burn(self, key: str, block: Block) -> np.ndarray:
        """Cells of ``block``'s read window inside the polygons read for ``key``."""
        geoms = self._polygons.get(key, ())
        return burn(geoms, [1] * len(geoms), self.grid, block).astype(bool)

    def blocks(self, size: int | None = None) -> Iterator[Block]:
        """The grid's blocks with the halo this config's factors need."""
        return self.grid.blocks(size or self.cfg.grid.block_size, self.halo)

    def whole(self) -> Block:
        """One block covering the whole grid (for small areas and notebooks)."""
        return Block(0, 0, self.grid.height, self.grid.width, self.halo)

    def _classes(self, codes: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Land-use class index per cell (0 outside ``mask``); an unclassified code is an error.

        Codes of one or two unsigned bytes (the usual land-use rasters) are looked up
        in a table covering every value of their type, in one pass; other types are
        converted to int64 and clipped to the table first.
        """
        if codes.dtype.kind == "u" and codes.dtype.itemsize <= 2:
            lut = np.zeros(1 << (8 * codes.dtype.itemsize), dtype=np.uint8)
            n = min(lut.size, self._class_lut.size)
            lut[:n] = self._class_lut[:n]
            classes = take(lut, np.ascontiguousarray(codes))
            unknown = (classes == 0) & mask
            if unknown.any():
                raise self._unclassified(np.unique(codes[unknown]))
            classes[~mask] = 0
            return classes
        inside = codes[mask].astype(np.int64)
        big = inside >= self._known.size
        unknown = big | ~self._known[np.where(big, 0, inside)]
        if unknown.any():
            raise self._unclassified(np.unique(inside[unknown]))
        idx = codes.astype(np.int64).clip(0, self._known.size - 1)
        return np.where(mask, self._class_lut[idx], 0).astype(np.uint8)

    def _unclassified(self, bad: np.ndarray) -> ConfigError:
        """The error for land-use codes (sorted, unique) that belong to no class."""
        codes = bad.tolist()
        return ConfigError(
            f"landuse.classes: code {codes[0]} occurs in inputs.{self.cfg.landuse.input} but "
            f"belongs to no class (unclassified codes: {codes[:10]})")

    def compute(self, block: Block, *, keep: bool = False, timer: Timer | None = None,
                evaluate: bool = True,
                stats: dict[str, dict[str, StepStats]] | None = None) -> BlockResult:
        """Compute mask, factors and evaluations for one block.

        Parameters
        ----------
        block : Block
            The block; its halo must be at least :attr:`halo`.
        keep : bool
            Also return every intermediate evaluation grade.
        timer : Timer, optional
            Receives seconds for the stages ``read``, ``factors``, ``evaluate``.
        evaluate : bool
            Run the evaluation steps (False: inputs and factors only).
        stats : dict, optional
            Per result, the :meth:`Evaluation.stats` to accumulate into.

        Raises
        ------
        ValueError
            If the block's halo is smaller than :attr:`halo`.
        """
        if block.halo < self.halo:
            raise ValueError(f"block halo {block.halo} is below the {self.halo} cells the "
                             "factors need")
        timer = timer or Timer()
        cfg = self.cfg
        win = block.read_window
        pool = self._pool
        with timer("read"):  # one thread per input: a file is never read by two at once
            reads = dict(zip(self.rasters, pool.map(lambda r: r.read(win),
                                                    self.rasters.values()), strict=True))
            values = {k: v[0] for k, v in reads.items()}
            valid = {k: v[1] for k, v in reads.items()}
            mask = np.ones(values[cfg.grid.reference].shape, dtype=bool)
            for name in cfg.study_area.valid_inputs:
                mask &= valid[name]
            if cfg.study_area.boundary is not None:
                mask &= self._burn("study_area.boundary", block)
        with timer("factors"):
            lu = cfg.landuse.input
            landclass = self._classes(values[lu], mask & valid[lu])
            class_masks = {n: landclass == i for i, n in enumerate(self.class_names, start=1)}
            layers = dict(values)
            halos = dict.fromkeys(values, block.halo)  # cells around the core, per layer

            def factor(name: str, threads: int = 1) -> np.ndarray:
                """One factor, on the cells within its reach of the core only."""
                reach = self.reach[name]
                return compute_factor(
                    self.factors[name],
                    {k: _around(v, halos[k], reach) for k, v in layers.items()
                     if halos[k] >= reach},  # (factors with less reach it does not read)
                    {k: _around(v, block.halo, reach) for k, v in valid.items()},
                    {k: _around(v, block.halo, reach) for k, v in class_masks.items()},
                    self.grid.res, threads)

            for wave in self.waves:
                # the factors of a wave on the pool, then each that holds the GIL alone
                pooled = [n for n in wave if not own_threads(self.factors[n])]
                done = dict(zip(pooled, pool.map(factor, pooled), strict=True))
                done.update((n, factor(n, self.threads)) for n in wave if n not in done)
                layers.update(done)
                halos.update((n, self.reach[n]) for n in done)
            # contiguous copies of the core: the evaluation reads most layers several
            # times, and numpy runs several times faster on contiguous arrays than on views
            layers = {k: np.ascontiguousarray(_around(v, halos[k], 0)) for k, v in layers.items()}
            core = block.core
            mask = np.ascontiguousarray(mask[core])
            landclass = np.ascontiguousarray(landclass[core])
        results: dict[str, np.ndarray] = {}
        steps: dict[str, dict[str, np.ndarray]] = {}
        if evaluate:
            with timer("evaluate"):
                runs = dict(zip(RESULTS, pool.map(
                    lambda r: self.evaluations[r].run(layers, mask, keep,
                                                      stats[r] if stats else None),
                    RESULTS), strict=True))
                results = {k: v[0] for k, v in runs.items()}
                steps = {k: v[1] for k, v in runs.items()}
        return BlockResult(mask, layers, landclass, results, steps)

    def fit(self, *, timer: Timer | None = None) -> None:
        """Fit the cumulative-share thresholds: a first pass over every block.

        Runs only when some evaluation grades a layer by cumulative share (and
        only once). It keeps the values of those layers in the study area, 4 bytes
        a cell per layer, to rank them exactly.
        """
        if self._fitted:
            return
        wanted = {r: ev.share_layers for r, ev in self.evaluations.items() if ev.share_layers}
        parts: dict[tuple[str, str], list[np.ndarray]] = {
            (r, step): [] for r, steps in wanted.items() for step in steps}
        for block in self.blocks():
            res = self.compute(block, timer=timer, evaluate=False)
            for r, steps in wanted.items():
                for step, layer in steps.items():
                    parts[(r, step)].append(res.layers[layer][res.mask].astype(np.float32))
        for r, steps in wanted.items():
            self.evaluations[r].fit({step: np.concatenate(parts[(r, step)]) for step in steps})
        self._fitted = True

    def _computed(self, timer: Timer, keep: bool,
                  stats: dict[str, dict[str, StepStats]] | None
                  ) -> Iterator[tuple[Block, BlockResult]]:
        """Every block with its result, in order, :data:`IN_FLIGHT` blocks in flight.

        A block's serial parts (its reads, a factor wave of one, the slowest of the
        three evaluations, the caller storing its results) leave a core idle; a
        second block computed beside it fills it. Never more than two (with one
        thread, one): memory holds a few blocks whatever the number of cores. Each
        thread's timed stages go to ``timer`` (time them inside
        :meth:`Timer.overlapping`).
        """
        blocks = iter(self.blocks())
        in_flight = min(self.threads, IN_FLIGHT)
        if in_flight == 1:
            for block in blocks:
                yield block, self.compute(block, timer=timer, keep=keep, stats=stats)
            return
        with ThreadPoolExecutor(in_flight, thread_name_prefix="sanqu-block") as ahead:

            def start(block: Block) -> tuple[Block, Future[BlockResult]]:
                return block, ahead.submit(self.compute, block, timer=timer, keep=keep,
                                           stats=stats)

            flight = deque(start(b) for b in islice(blocks, in_flight))
            try:
                while flight:
                    block, result = flight.popleft()
                    done = result.result()
                    flight.extend(start(b) for b in islice(blocks, 1))
                    yield block, done
                    del done  # not held while the next block is waited for
            finally:
                for _, result in flight:
                    result.cancel()

    def _gather(self, s: Surfaces, timer: Timer,
                on_block: Callable[[Block, BlockResult], None] | None,
                progress: Callable[[int], None] | None, keep: bool,
                stats: dict[str, dict[str, StepStats]] | None) -> None:
        """Compute every block (:meth:`_computed`) and store its compact results in ``s``."""
        with closing(self._computed(timer, keep, stats)) as computed:  # joined on an error
            for i, (block, res) in enumerate(computed, start=1):
                self._store(s, i, block, res, timer, on_block, progress)
                del res  # not held while the next block is waited for

    def _store(self, s: Surfaces, i: int, block: Block, res: BlockResult, timer: Timer,
               on_block: Callable[[Block, BlockResult], None] | None,
               progress: Callable[[int], None] | None) -> None:
        """Store block ``i``'s compact results in ``s``; tell ``on_block`` and ``progress``."""
        farm = self.cfg.lines.farmland
        quality = farm.quality
        units = self.units
        with timer("evaluate"):
            sl = block.slices
            m = res.mask
            s.mask[sl] = m
            s.landclass[sl] = res.landclass
            for r, attr in RESULT_ATTRS.items():
                getattr(s, attr)[sl] = res.results[r]
            slope = res.layers[farm.slope_factor]
            s.steep[sl] = m & (slope > farm.max_slope)
            s.slope_grade[sl] = reclass(slope, quality.slope_breaks) * m
            if quality.near_factor is not None:
                s.near_grade[sl] = reclass(res.layers[quality.near_factor],
                                           quality.near_breaks) * m
            else:
                s.near_grade[sl] = m
            s.protected[sl] = m & self._burn("lines.red_line.protected_areas",
                                             block)[block.core]
            s.special[sl] = m & self._burn("lines.ugb.special_use", block)[block.core]
            if units is not None:
                s.unit[sl] = np.where(m, units.burn(self.grid, block)[block.core], 0)
        if on_block is not None:
            on_block(block, res)
        if progress is not None:
            progress(i)

    def surfaces(self, *, timer: Timer | None = None,
                 on_block: Callable[[Block, BlockResult], None] | None = None,
                 progress: Callable[[int], None] | None = None, keep: bool = False,
                 stats: dict[str, dict[str, StepStats]] | None = None,
                 on_area: Callable[[str, str, np.ndarray], None] | None = None) -> Surfaces:
        """Run every block and gather the compact whole-area rasters.

        The share thresholds are fitted first (:meth:`fit`); after the blocks, the
        whole-area evaluation steps (contiguity, then the collapse) run on the
        compact grade rasters, so the three results in the returned surfaces are
        always levels 1..3.

        Parameters
        ----------
        timer : Timer, optional
            Receives per-stage seconds.
        on_block : callable, optional
            Called with each block and its result (e.g. to write GeoTIFF windows).
        progress : callable, optional
            Called with the number of blocks finished after each block.
        keep : bool
            Keep every intermediate grade (for ``on_block`` and ``on_area``).
        stats : dict, optional
            Per result, the :meth:`Evaluation.stats` to accumulate into.
        on_area : callable, optional
            Called with ``(result, step, grades)`` for each whole-area step when ``keep``.

        Raises
        ------
        InputError
            If the study area is empty.
        """
        cfg = self.cfg
        timer = timer or Timer()
        self.fit(timer=timer)
        units = self.units
        s = Surfaces.empty(self.grid, self.class_names, units.codes if units else (),
                           units.names if units else ())
        with timer.overlapping():
            self._gather(s, timer, on_block, progress, keep, stats)
        if self.threads > 1:  # the block threads' arenas: what they freed goes back (and
            release_heap()  # the main heap's free pages, few: the blocks ran on other threads)
        if not s.mask.any():
            raise InputError(
                "study_area.valid_inputs: no cell has data in all of "
                f"{cfg.study_area.valid_inputs}")
        # Whole-area steps on the compact grade rasters, one result after the other: on
        # two threads they took longer (memory-bound passes over 10^8-cell label rasters).
        with timer("evaluate"):
            for r, attr in RESULT_ATTRS.items():
                ev = self.evaluations[r]
                if ev.needs_area:
                    levels, kept = ev.finish(getattr(s, attr), s.mask, self.grid.res, keep,
                                             stats[r] if stats else None)
                    setattr(s, attr, levels)
                    for step, grades in kept.items():
                        if on_area is not None:
                            on_area(r, step, grades)
        return s
