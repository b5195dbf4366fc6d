"""Sweep files: parse and validate the YAML, expand it into points, hash each point's full config.

A sweep file names the workloads and, for any config field addressed as ``section.field``, a list of
values, a range or a random sample::

    name: small                       # optional; default: the file's stem
    workloads: [gpt2-small]           # presets of models.config.MODELS (required, at least one)
    accelerator: spatten              # optional preset of models.config.ACCELERATORS
    baseline: spatten                 # optional; passed to sim.api.simulate(baseline=...)
    fixed:                            # optional; one value per field, applied to every point first
      model.layers: 2
    sweep:                            # the axes; the points are their Cartesian product
      accelerator.qk_multipliers: [64, 128, 256]                  # a list
      accelerator.hbm_channels: {start: 2, stop: 16, step: 2}     # a range, stop included
      accelerator.pv_multipliers: {start: 64, stop: 512, factor: 2}   # a geometric range
      quant.refetch_threshold: {distribution: uniform, low: 0.0, high: 0.2, n: 4, seed: 7}

Random samples draw ``n`` values per axis from ``numpy.random.default_rng(seed)`` (``seed`` defaults to 0,
so a file always expands to the same points). Distributions: ``uniform`` and ``loguniform`` (``low``,
``high``; integers in ``[low, high]`` for an integer field) and ``choice`` (``values``).

A workload may be a real model (``minilm``, ``smollm2``) measured for accuracy: an ``accuracy:`` block
runs each point's policy inside the real model on real text (:mod:`sim.sweep.real`) and adds the quality
columns to the point's row::

    workloads: [smollm2]
    accuracy:                         # optional; only with real-model workloads (minilm, smollm2)
      windows: 4                      # windows (MiniLM: Brown documents); default 32 / 2 (sim.accuracy)
      window_len: 128                 # tokens per window; default 128
      mode: generation                # prefill | generation; default prefill (MiniLM), generation (SmolLM2)
      datapath: fixed                 # fixed | float; default fixed (bit-accurate)
      text: my_text.txt               # optional UTF-8 file, relative to the sweep file; default Brown

The real model fixes the shape, so ``model.*`` fields are refused in such a sweep (as is
``quant.shape_refetch_rate``, which the real trace does not use), and the baseline must be ``spatten``.
``accuracy: {}`` (or an empty ``accuracy:``) takes every default.

Every problem raises ``ValueError``/``TypeError`` whose one-line message starts with the offending key
(``sweep.accelerator.qk_multipliers: ...``), before anything is run or written.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import itertools
import json
import math
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from spatten.models.config import (
    ACCELERATORS,
    MODELS,
    Workload,
    check_override_keys,
    replace_path,
    to_dict,
    workload_preset,
)

__all__ = [
    "MAX_POINTS",
    "REAL_MODELS",
    "SCHEMA",
    "AccuracySpec",
    "SweepPoint",
    "SweepSpec",
    "config_fields",
    "load_spec",
    "parse_spec",
    "point_hash",
]

#: Hard cap on the points one file may expand to (a typo such as step 1e-6 should fail, not hang).
MAX_POINTS = 1_000_000
#: Sweeps of at least this many points show a progress bar while they expand (about 4 s of work).
EXPAND_PROGRESS_FROM = 20_000
#: Part of every point hash; bump it when the meaning of a stored result row changes.
SCHEMA = "spatten-sweep-1"

_TOP_KEYS = ("name", "workloads", "accelerator", "baseline", "fixed", "sweep", "accuracy")
#: Workloads that are real models (an ``accuracy:`` block may run them on real text).
REAL_MODELS = ("minilm", "smollm2")
_ACCURACY_KEYS = ("windows", "window_len", "mode", "datapath", "text")
_MODES = ("prefill", "generation")
_DATAPATHS = ("fixed", "float")
#: Fields a real model fixes or ignores: setting them in an accuracy sweep would silently do nothing.
_REAL_FIXED = ("model.", "quant.shape_refetch_rate")
_RANGE_KEYS = {"start", "stop", "step", "factor"}
_RANDOM_KEYS = {"distribution", "n", "seed", "low", "high", "values"}
_DISTRIBUTIONS = ("uniform", "loguniform", "choice")


def config_fields() -> dict[str, str]:
    """Every sweepable field as ``section.field`` mapped to its declared type name.

    Returns
    -------
    dict of str to str
        For example ``{"accelerator.qk_multipliers": "int", "quant.refetch_threshold": "float", ...}``.
    """
    out: dict[str, str] = {}
    default = Workload()
    for sec in dataclasses.fields(Workload):
        for f in dataclasses.fields(type(getattr(default, sec.name))):
            out[f"{sec.name}.{f.name}"] = f.type if isinstance(f.type, str) else f.type.__name__
    return out


def point_hash(workload: Workload, baseline: str, accuracy: Mapping[str, Any] | None = None) -> str:
    """Hash of a point's full config (every field of every section, plus the baseline).

    Parameters
    ----------
    workload : Workload
        The fully resolved config of the point.
    baseline : str
        The simulator baseline the point runs with.
    accuracy : mapping, optional
        :meth:`AccuracySpec.key` of a real-model point; None (shape-only points) leaves it out of the
        payload, so shape-only hashes are those of sweeps made before accuracy sweeps existed.

    Returns
    -------
    str
        20 hex digits of a SHA-256 over canonical JSON (sorted keys, floats in round-trip repr), so equal
        configs hash equal however the sweep file wrote them.
    """
    payload = {"schema": SCHEMA, "baseline": baseline, "config": to_dict(workload)}
    if accuracy is not None:
        payload["accuracy"] = dict(accuracy)
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


@dataclass(frozen=True)
class AccuracySpec:
    """How each point of a real-model sweep measures accuracy: the ``accuracy:`` block, validated.

    Attributes
    ----------
    windows, window_len : int or None
        Windows and tokens per window; None: :data:`sim.accuracy.DEFAULTS` of the model.
    mode : str or None
        ``prefill`` or ``generation``; None: the model's default.
    datapath : str
        ``fixed`` (bit-accurate) or ``float``.
    text_file : str or None
        The text file as written in the sweep file (None: the Brown corpus).
    text : str or None
        Its contents, read when the file is parsed.
    """

    windows: int | None = None
    window_len: int | None = None
    mode: str | None = None
    datapath: str = "fixed"
    text_file: str | None = None
    text: str | None = dataclasses.field(default=None, repr=False)

    def settings(self, model: str) -> dict[str, Any]:
        """``windows``, ``window_len``, ``mode`` and ``datapath`` for ``model``, defaults filled in."""
        from spatten.sim.accuracy import DEFAULTS

        windows, window_len = DEFAULTS[model]
        return {
            "windows": windows if self.windows is None else self.windows,
            "window_len": window_len if self.window_len is None else self.window_len,
            "mode": self.mode or ("prefill" if model == "minilm" else "generation"),
            "datapath": self.datapath,
        }

    def key(self, model: str) -> dict[str, Any]:
        """What a point's row depends on besides its config: :meth:`settings` and the text's SHA-256."""
        text = "brown" if self.text is None else hashlib.sha256(self.text.encode()).hexdigest()
        return {**self.settings(model), "text": text}

    def describe(self, model: str) -> str:
        """One line for people: ``minilm: 4 windows x 8 tokens, prefill, fixed datapath, Brown corpus``."""
        s = self.settings(model)
        text = f"text {self.text_file}" if self.text_file else "Brown corpus"
        return (
            f"{model}: {s['windows']} windows x {s['window_len']} tokens, {s['mode']}, "
            f"{s['datapath']} datapath, {text}"
        )


@dataclass(frozen=True)
class SweepPoint:
    """One point of a sweep.

    Attributes
    ----------
    index : int
        Position in the expansion order (workloads outermost, then axes in file order, last fastest).
    point_id : str
        :func:`point_hash` of the full config; equal configs share it and are simulated once.
    workload_name : str
        The preset the point starts from.
    params : tuple of (str, Any)
        The swept fields and this point's value of each.
    workload : Workload
        The full, validated config.
    """

    index: int
    point_id: str
    workload_name: str
    params: tuple[tuple[str, Any], ...]
    workload: Workload


@dataclass(frozen=True)
class SweepSpec:
    """A parsed, validated, expanded sweep file.

    Attributes
    ----------
    name : str
        The sweep's name.
    workloads : tuple of str
        Preset names.
    accelerator : str
        Accelerator preset all workloads start from.
    baseline : str
        Simulator baseline.
    fixed : tuple of (str, Any)
        Fields set on every point before the sweep.
    axes : tuple of (str, tuple)
        Each swept field with its expanded values, in file order.
    points : tuple of SweepPoint
        The expansion.
    accuracy : AccuracySpec or None
        Set for a real-model sweep: every point runs its model on real text (:mod:`sim.sweep.real`).
    """

    name: str
    workloads: tuple[str, ...]
    accelerator: str
    baseline: str
    fixed: tuple[tuple[str, Any], ...]
    axes: tuple[tuple[str, tuple[Any, ...]], ...]
    points: tuple[SweepPoint, ...]
    accuracy: AccuracySpec | None = None

    @property
    def params(self) -> list[str]:
        """Names of the swept fields, in file order."""
        return [name for name, _ in self.axes]

    def unique_points(self) -> list[SweepPoint]:
        """The first point of each distinct ``point_id``, in expansion order."""
        seen: set[str] = set()
        out = []
        for p in self.points:
            if p.point_id not in seen:
                seen.add(p.point_id)
                out.append(p)
        return out

    def points_frame(self):
        """One row per point: ``index``, ``point_id``, ``workload``, each swept field, ``multipliers``.

        ``multipliers`` (Q.K plus prob.V multipliers) is the area proxy of the Pareto plot.
        """
        import pandas as pd

        rows = []
        for p in self.points:
            row: dict[str, Any] = {"index": p.index, "point_id": p.point_id, "workload": p.workload_name}
            for k, v in p.params:
                row[k] = list(v) if isinstance(v, tuple) else v
            acc = p.workload.accelerator
            row["multipliers"] = acc.qk_multipliers + acc.pv_multipliers
            rows.append(row)
        cols = ["index", "point_id", "workload", *self.params, "multipliers"]
        return pd.DataFrame(rows, columns=cols)


def load_spec(path: str | Path) -> SweepSpec:
    """Read, validate and expand a sweep file.

    Parameters
    ----------
    path : str or Path
        The YAML file.

    Raises
    ------
    ValueError, TypeError
        One line naming the offending key: unknown field, empty range, wrong type, bad YAML (or YAML that is
        not UTF-8, nests deeper than 64 levels or expands through aliases beyond 100000 nodes).
    """
    from spatten.models.safe_load import load_yaml

    p = Path(path)
    data = load_yaml(p, "sweep file")  # not UTF-8, too deep or an alias bomb: one line naming the file
    return parse_spec(data, default_name=p.stem, base_dir=p.parent)


def parse_spec(data: Any, default_name: str = "sweep", base_dir: str | Path | None = None) -> SweepSpec:
    """Validate and expand a sweep given as a mapping (the YAML document).

    Parameters
    ----------
    data : mapping
        Keys ``name``, ``workloads``, ``accelerator``, ``baseline``, ``fixed``, ``sweep``, ``accuracy``
        (see module doc).
    default_name : str
        Name used when ``data`` has none.
    base_dir : str or Path, optional
        Folder a relative ``accuracy.text`` is read from (the sweep file's); default the working folder.

    Returns
    -------
    SweepSpec
    """
    if not isinstance(data, Mapping):
        raise TypeError(f"sweep file must be a mapping with keys {', '.join(_TOP_KEYS)}")
    for key in data:
        if key not in _TOP_KEYS:
            raise ValueError(f"unknown sweep key {key!r} (allowed: {', '.join(_TOP_KEYS)})")
    name = _check_name(data["name"] if "name" in data else default_name, given="name" in data)
    workloads = _parse_workloads(data.get("workloads"))
    accelerator = data.get("accelerator", "spatten")
    if not isinstance(accelerator, str) or accelerator not in ACCELERATORS:
        raise ValueError(f"accelerator = {_cut(accelerator)} is not one of {', '.join(ACCELERATORS)}")
    baseline = data.get("baseline", "spatten")
    from spatten.sim.api import BASELINES  # here: the simulator's own list, without importing it at load

    if not isinstance(baseline, str) or baseline not in BASELINES:
        raise ValueError(f"baseline = {_cut(baseline)} is not one of {', '.join(BASELINES)}")
    types = config_fields()
    fixed = _parse_fixed(data.get("fixed"), types)
    axes = _parse_axes(data.get("sweep"), types)
    accuracy = None
    if "accuracy" in data:
        accuracy = _parse_accuracy(data["accuracy"], workloads, base_dir)
        _check_real_sweep(fixed, axes, baseline)
    check_override_keys({**{k: [v] for k, v in fixed}, **{k: list(v) for k, v in axes}}, "sweep")
    keys = frozenset(k for k, _ in fixed) | frozenset(k for k, _ in axes)  # all fields the sweep sets

    total = len(workloads) * math.prod(len(v) for _, v in axes)
    if total > MAX_POINTS:
        raise ValueError(f"sweep: {total} points exceeds the limit of {MAX_POINTS}")

    from tqdm import tqdm

    points: list[SweepPoint] = []
    # about 0.2 ms a point (each is a validated Workload and its hash): say so before a long expansion
    bar = tqdm(total=total, desc=f"sweep {name}: expanding", unit="pt", file=sys.stderr,
               disable=total < EXPAND_PROGRESS_FROM, mininterval=0.5)  # fmt: skip
    for wname in workloads:
        base = _preset(wname, accelerator)
        for key, value in fixed:
            base = _apply(base, f"fixed.{key}", key, value, keys)
        # Each value alone on the base first, so a bad value is reported by its own key.
        for key, values in axes:
            for v in values:
                _check_schedules(_apply(base, f"sweep.{key}", key, v, keys), f"sweep.{key}")
        for combo in itertools.product(*(values for _, values in axes)):
            params = tuple((key, v) for (key, _), v in zip(axes, combo, strict=True))
            w = base
            where = f"sweep point {len(points)} ({wname}, " + ", ".join(f"{k}={v!r}" for k, v in params) + ")"
            for key, v in params:
                w = _apply(w, where, key, v, keys)
            _check_schedules(w, where)
            key = accuracy.key(wname) if accuracy else None
            points.append(SweepPoint(len(points), point_hash(w, baseline, key), wname, params, w))
            bar.update()
    bar.close()
    return SweepSpec(name, workloads, accelerator, baseline, fixed, axes, tuple(points), accuracy)


def _cut(value: Any, limit: int = 40) -> str:
    """``repr(value)`` cut to ``limit`` characters, for a one-line message."""
    shown = repr(value)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


#: A sweep's name names its folder under ``sweeps/``: a plain folder name, never a path or a hidden name.
_NAME_RE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}")
_NAME_FORM = "1..64 letters, digits, '-', '_' or '.', not starting with '.'"


def _check_name(name: Any, given: bool = True) -> str:
    """The sweep's ``name`` if it is a plain folder name; a one-line ValueError naming ``name`` otherwise.

    ``given`` is False when the name is the sweep file's stem (the file has no ``name:``).
    """
    if isinstance(name, str) and _NAME_RE.fullmatch(name):
        return name
    source = "" if given else " (the sweep file's name; set name: in the file)"
    raise ValueError(f"name = {_cut(name)}{source} must be {_NAME_FORM}: it names the folder under sweeps/")


def _parse_accuracy(raw: Any, workloads: tuple[str, ...], base_dir: str | Path | None) -> AccuracySpec:
    """The ``accuracy:`` block: known keys, valid values, real-model workloads only."""
    raw = {} if raw is None else raw
    if not isinstance(raw, Mapping):
        raise TypeError(f"accuracy must be a mapping with keys {', '.join(_ACCURACY_KEYS)}, got {raw!r}")
    for key in raw:
        if key not in _ACCURACY_KEYS:
            raise ValueError(f"accuracy.{key}: unknown key (allowed: {', '.join(_ACCURACY_KEYS)})")
    for w in workloads:
        if w not in REAL_MODELS:
            raise ValueError(
                f"accuracy: workload {w!r} is shape-only; an accuracy sweep runs real models "
                f"({', '.join(REAL_MODELS)})"
            )
    counts = {}
    for key in ("windows", "window_len"):
        v = raw.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= MAX_POINTS):
            raise ValueError(f"accuracy.{key} = {v!r} must be an integer in 1..{MAX_POINTS}")
        counts[key] = v
    mode = raw.get("mode")
    if mode is not None and mode not in _MODES:
        raise ValueError(f"accuracy.mode = {mode!r} is not one of {', '.join(_MODES)}")
    if mode == "generation" and "minilm" in workloads:
        raise ValueError("accuracy.mode = 'generation' needs a decoder: minilm is an encoder (use prefill)")
    datapath = raw.get("datapath", "fixed")
    if datapath not in _DATAPATHS:
        raise ValueError(f"accuracy.datapath = {datapath!r} is not one of {', '.join(_DATAPATHS)}")
    text_file = raw.get("text")
    text = None
    if text_file is not None:
        if not isinstance(text_file, str) or not text_file:
            raise TypeError(f"accuracy.text = {text_file!r} must be the path of a UTF-8 text file")
        from spatten.models.brown import read_text

        path = Path(base_dir or ".") / text_file
        try:
            text = read_text(path)
        except ValueError as e:
            raise ValueError(f"accuracy.text: {e}") from None
    return AccuracySpec(counts["windows"], counts["window_len"], mode, datapath, text_file, text)


def _check_real_sweep(
    fixed: tuple[tuple[str, Any], ...], axes: tuple[tuple[str, tuple[Any, ...]], ...], baseline: str
) -> None:
    """Refuse what a real-model run would silently ignore: model shape fields, the shape-only refetch rate."""
    for where, entries in (("fixed", fixed), ("sweep", axes)):
        for key, _ in entries:
            if key.startswith(_REAL_FIXED):
                raise ValueError(
                    f"{where}.{key}: has no effect in an accuracy sweep (the real model and its text fix the "
                    "shape, lengths and refetches); remove it or drop the accuracy block"
                )
    if baseline != "spatten":
        raise ValueError(
            f"baseline = {baseline!r}: an accuracy sweep simulates SpAtten on the run's own trace "
            "(baseline must be spatten)"
        )


def _parse_workloads(raw: Any) -> tuple[str, ...]:
    if raw is None:
        raise ValueError(f"workloads is required: a list of presets ({', '.join(MODELS)})")
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise TypeError(f"workloads must be a non-empty list of presets ({', '.join(MODELS)})")
    from spatten.models.hf_config import HF_PRESETS

    for w in raw:
        if w not in MODELS and w not in HF_PRESETS:
            raise ValueError(f"workloads: {w!r} is not one of {', '.join([*MODELS, *HF_PRESETS])}")
    return tuple(raw)


def _preset(name: str, accelerator: str) -> Workload:
    """A package preset, or a Hugging Face preset at its default lengths (sweeps vary them)."""
    from spatten.models.hf_config import HF_PRESETS, hf_workload

    if name in HF_PRESETS:
        return hf_workload(HF_PRESETS[name], accelerator)
    return workload_preset(name, accelerator)


def _check_key(key: Any, where: str, types: Mapping[str, str]) -> str:
    if not isinstance(key, str):
        raise TypeError(f"{where}: key {key!r} must be a string section.field")
    if key not in types:
        close = difflib.get_close_matches(key, list(types), n=1)
        hint = f" (did you mean {close[0]}?)" if close else " (fields are written section.field)"
        raise ValueError(f"{where}.{key}: unknown config field{hint}")
    return key


def _normalise(value: Any, type_name: str) -> Any:
    """Coerce YAML scalars to the field's type where lossless, so 0 and 0.0 hash the same."""
    if type_name == "float" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if type_name.startswith("tuple") and isinstance(value, list):
        return tuple(float(x) if isinstance(x, int) and not isinstance(x, bool) else x for x in value)
    return value


def _apply(w: Workload, where: str, key: str, value: Any, also_set: frozenset[str]) -> Workload:
    try:
        return replace_path(w, key, value, also_set)
    except (ValueError, TypeError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        if where.startswith(("sweep.", "fixed.")) and msg.startswith(key):
            raise type(e)(f"{where.split('.', 1)[0]}.{msg}") from None
        raise type(e)(f"{where}: {msg}") from None


def _check_schedules(w: Workload, where: str) -> None:
    """Per-layer schedules must fit the layer count; check now rather than inside a worker."""
    try:
        w.pruning.token_schedule(w.model.layers)
        w.pruning.head_schedule(w.model.layers)
        if w.pruning.enabled and w.pruning.policy != "spatten" and w.model.mode != "generation":
            raise ValueError(
                f"pruning.policy = {w.pruning.policy} applies to generation workloads (decode steps)"
            )
    except (ValueError, TypeError) as e:
        raise type(e)(f"{where}: {str(e).splitlines()[0]}") from None


def _parse_fixed(raw: Any, types: Mapping[str, str]) -> tuple[tuple[str, Any], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        raise TypeError("fixed must be a mapping of section.field: value")
    out = []
    for key, value in raw.items():
        _check_key(key, "fixed", types)
        if isinstance(value, Mapping):
            raise TypeError(f"fixed.{key}: must be one value, not a mapping (sweep it under sweep:)")
        out.append((key, _normalise(value, types[key])))
    return tuple(out)


def _parse_axes(raw: Any, types: Mapping[str, str]) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        raise TypeError("sweep must be a mapping of section.field: list, range or random sample")
    axes = []
    for key, spec in raw.items():
        _check_key(key, "sweep", types)
        where = f"sweep.{key}"
        type_name = types[key]
        if isinstance(spec, list):
            if not spec:
                raise ValueError(f"{where}: empty list of values")
            values = list(spec)
        elif isinstance(spec, Mapping):
            keys = set(spec)
            if "distribution" in keys:
                values = _random_values(spec, where, type_name)
            elif keys & _RANGE_KEYS:
                values = _range_values(spec, where)
            else:
                raise ValueError(
                    f"{where}: a mapping must be a range {{start, stop, step|factor}} or a random sample "
                    f"{{distribution, n, seed, ...}}, got keys {sorted(map(str, keys))}"
                )
        else:
            values = [spec]
        axes.append((key, tuple(_normalise(v, type_name) for v in values)))
    return tuple(axes)


def _number(spec: Mapping[str, Any], key: str, where: str) -> int | float:
    if key not in spec:
        raise ValueError(f"{where}.{key} is required")
    v = spec[key]
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise TypeError(f"{where}.{key} must be a finite number, got {v!r}")
    return v


def _tidy(x: float) -> float:
    """Drop float noise from start + i * step (0.30000000000000004 -> 0.3)."""
    return float(f"{x:.12g}")


def _range_values(spec: Mapping[str, Any], where: str) -> list[Any]:
    extra = set(spec) - _RANGE_KEYS
    if extra:
        allowed = "start, stop, step or factor"
        raise ValueError(f"{where}: unknown range key(s) {sorted(map(str, extra))} (allowed: {allowed})")
    start, stop = _number(spec, "start", where), _number(spec, "stop", where)
    if ("step" in spec) == ("factor" in spec):
        raise ValueError(f"{where}: a range needs exactly one of step or factor")
    all_int = all(isinstance(spec[k], int) for k in spec)
    if "step" in spec:
        step = _number(spec, "step", where)
        if step == 0:
            raise ValueError(f"{where}.step = 0 must be non-zero")
        span = (stop - start) / step
        if span < 0:
            raise ValueError(f"{where}: empty range (start {start}, stop {stop}, step {step})")
        n = math.floor(span + 1e-9) + 1
        if n > MAX_POINTS:
            raise ValueError(f"{where}: {n} values exceeds the limit of {MAX_POINTS}")
        return [start + i * step if all_int else _tidy(start + i * step) for i in range(n)]
    factor = _number(spec, "factor", where)
    if start <= 0 or stop <= 0 or factor <= 0 or factor == 1:
        raise ValueError(f"{where}: a geometric range needs start > 0, stop > 0 and factor > 0, != 1")
    span = math.log(stop / start) / math.log(factor)
    if span < -1e-9:
        raise ValueError(f"{where}: empty range (start {start}, stop {stop}, factor {factor})")
    n = math.floor(span + 1e-9) + 1
    if n > MAX_POINTS:
        raise ValueError(f"{where}: {n} values exceeds the limit of {MAX_POINTS}")
    if all_int:
        return [start * factor**i for i in range(n)]
    return [_tidy(start * factor**i) for i in range(n)]


def _random_values(spec: Mapping[str, Any], where: str, type_name: str) -> list[Any]:
    extra = set(spec) - _RANDOM_KEYS
    if extra:
        raise ValueError(
            f"{where}: unknown random-sample key(s) {sorted(map(str, extra))} "
            f"(allowed: {', '.join(sorted(_RANDOM_KEYS))})"
        )
    dist = spec["distribution"]
    if dist not in _DISTRIBUTIONS:
        raise ValueError(f"{where}.distribution = {dist!r} is not one of {', '.join(_DISTRIBUTIONS)}")
    n = spec.get("n")
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"{where}.n must be an integer >= 1, got {n!r}")
    if not 1 <= n <= MAX_POINTS:
        raise ValueError(f"{where}.n = {n} is outside the allowed range 1..{MAX_POINTS}")
    seed = spec.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise TypeError(f"{where}.seed must be an integer >= 0, got {seed!r}")
    rng = np.random.default_rng(seed)
    if dist == "choice":
        values = spec.get("values")
        if not isinstance(values, list) or not values:
            raise ValueError(f"{where}.values must be a non-empty list for distribution choice")
        return [values[int(i)] for i in rng.integers(0, len(values), size=n)]
    if type_name not in ("int", "float"):
        raise TypeError(f"{where}: field of type {type_name} can only use distribution choice")
    low, high = _number(spec, "low", where), _number(spec, "high", where)
    if low > high:
        raise ValueError(f"{where}: empty interval (low {low} > high {high})")
    if dist == "loguniform" and low <= 0:
        raise ValueError(f"{where}.low = {low} must be > 0 for distribution loguniform")
    if type_name == "int":
        if not (isinstance(low, int) and isinstance(high, int)):
            raise TypeError(f"{where}: low and high must be integers for an integer field")
        if dist == "uniform":
            return [int(x) for x in rng.integers(low, high, size=n, endpoint=True)]
        draws = np.exp(rng.uniform(math.log(low), math.log(high), size=n))
        return [int(min(high, max(low, round(float(x))))) for x in draws]
    if dist == "uniform":
        return [float(x) for x in rng.uniform(low, high, size=n)]
    return [float(x) for x in np.exp(rng.uniform(math.log(low), math.log(high), size=n))]
