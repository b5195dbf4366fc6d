"""Policy search on the real models: the largest DRAM reduction that keeps the model's quality.

``spatten reproduce --accuracy`` answers "10x with no accuracy loss?" with a measurement. For each real model
(:data:`spatten.sim.accuracy.MODELS`) it searches the pruning and quantization policy for the largest DRAM
reduction (against the dense fp32 model, the paper's reference) that still meets :data:`CONSTRAINTS`:

* SmolLM2 (decoder, generation on Brown text): perplexity at most 1% above the dense model's;
* MiniLM (encoder, Brown documents): mean embedding cosine to the dense model at least 0.99, and the genre
  probe's balanced accuracy at most 0.5 points below dense.

Strategy: a round-robin coordinate search over five knobs, each a ladder from gentle to aggressive
(:data:`LADDERS`): K MSB bits (the LSBs keep the 12-bit key for the refetch), V bits, value keep, token keep,
head keep. It starts from the gentlest rung of every ladder (12-bit K and V, pruning off), then makes passes
over the knobs in that order, trying one step down each knob's ladder per pass. A step is kept when the
point meets the constraint and reduces DRAM traffic further; otherwise the knob is frozen, assuming quality
only worsens further down its ladder. Why so:

* Quality falls monotonically (or nearly) along each ladder, so one failed step per knob is all a frozen knob
  costs: the search evaluates 1 + (steps kept) + (knobs) points, about a dozen, where a grid over the same
  ladders has 4 x 4 x 9 x 8 x 6 = 6912 (each SmolLM2 point takes about a minute on 2 cores).
* One step per knob per pass shares the small quality budget among the knobs; running one knob to its limit
  first would spend all of it there.
* The knob order puts quantization first: on the measured points it cuts the most bytes for the least
  quality (SmolLM2, 4 x 128 Brown tokens: 8+4-bit PQ costs 1.2% perplexity for 3.9x; half the tokens
  +165%). The ladders are fine near 1 (0.95, 0.9) because the quality budget is spent within the first
  steps.

The result is a local optimum (no single further step helps), not a proof that no better policy exists.

Every point is run once: its record (the accuracy summary of :func:`spatten.sim.accuracy.run_accuracy` plus
the simulator's action counts, which the energy model needs and the accuracy summary does not keep) is
stored under ``$SPATTEN_CACHE_DIR/accuracy_search`` named by :func:`spatten.sim.accuracy.cache_key` (model,
text, windows, window length, mode, datapath, policy, accelerator and the harness version). Replaying the
same search with ``only_cached=True`` reads the records along the same path without loading a model, which
is how plain ``spatten reproduce`` shows the result in seconds. Speedup and energy saving are over the same
model's dense run (pruning and quantization off) on the same accelerator, also one cached point.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "LADDERS",
    "CONSTRAINTS",
    "METRICS",
    "Trial",
    "Search",
    "ModelSearch",
    "coordinate_search",
    "policy_workload",
    "start_policy",
    "feasible",
    "evaluate_point",
    "search_model",
    "cached_search",
    "best_table",
]

#: Bits of a whole key: the progressive MSB and LSB parts add up to the 12-bit datapath.
KEY_FULL_BITS = 12
#: Each knob's values from gentle to aggressive, in the order a pass tries them.
LADDERS: dict[str, tuple[float, ...]] = {
    "key_msb_bits": (12, 8, 6, 4),
    "value_bits": (12, 8, 6, 4),
    "value_keep": (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2),
    "token_keep": (1.0, 0.95, 0.9, 0.85, 0.8, 0.7, 0.6, 0.5),
    "head_keep": (1.0, 0.95, 0.9, 0.85, 0.8, 0.7),
}
MAX_PERPLEXITY_INCREASE = 0.01
MIN_COSINE = 0.99
MAX_TASK_ACCURACY_DROP = 0.005
CONSTRAINTS = {
    "minilm": "cosine >= 0.99, task accuracy drop <= 0.5 pt",
    "smollm2": "perplexity <= +1%",
}
#: The quality columns of each model's summary (sim.accuracy).
METRICS = {
    "minilm": ("cosine_mean", "cosine_min", "task_accuracy", "dense_task_accuracy", "task_accuracy_drop"),
    "smollm2": ("perplexity", "dense_perplexity", "perplexity_increase"),
}
RECORD_VERSION = 1
_RECORD_KEYS = (
    "reached_token_keep",
    "reached_head_keep",
    "reached_value_keep",
    "reached_refetch_rate",
    "cycles",
    "seconds",
    "dram_bytes_total",
    "dram_reduction",
)

Policy = dict[str, float]


# --- the search itself (pure: any evaluator) ---------------------------------------------------------------


@dataclass(frozen=True)
class Trial:
    """One evaluated policy: what changed, its result, whether it met the constraint and was kept."""

    policy: Policy
    knob: str | None
    result: dict[str, Any]
    feasible: bool
    accepted: bool


@dataclass(frozen=True)
class Search:
    """Every trial in evaluation order, the best feasible one, and whether the search ran to its end."""

    trials: list[Trial]
    best: Trial | None
    complete: bool


def _next_value(ladder: Sequence[float], value: float) -> float | None:
    i = list(ladder).index(value)
    return ladder[i + 1] if i + 1 < len(ladder) else None


def coordinate_search(
    start: Policy,
    ladders: Mapping[str, Sequence[float]],
    evaluate: Callable[[Policy], dict[str, Any] | None],
    is_feasible: Callable[[dict[str, Any]], bool],
    score: str = "dram_reduction",
) -> Search:
    """Round-robin coordinate search (module docstring): one step per unfrozen knob per pass.

    Parameters
    ----------
    start : dict
        Knob values to start from; each must be on its ladder.
    ladders : mapping of str to sequence
        Each knob's values from gentle to aggressive, in the order a pass visits the knobs.
    evaluate : callable
        Policy -> result dict holding ``score``; None when the result is not available (a cache-only
        replay), which ends the search as incomplete.
    is_feasible : callable
        Result -> whether it meets the quality constraint.
    score : str
        The result key to maximise.

    Returns
    -------
    Search
    """
    for k, v in start.items():
        if k in ladders and v not in ladders[k]:
            raise ValueError(f"start {k} = {v} is not on its ladder {list(ladders[k])}")
    trials: list[Trial] = []
    r = evaluate(dict(start))
    if r is None:
        return Search(trials, None, False)
    cur = Trial(dict(start), None, r, is_feasible(r), is_feasible(r))
    trials.append(cur)
    active = list(ladders) if cur.feasible else []
    while active:
        for knob in list(active):
            nxt = _next_value(ladders[knob], cur.policy[knob])
            if nxt is None:
                active.remove(knob)
                continue
            policy = {**cur.policy, knob: nxt}
            r = evaluate(policy)
            if r is None:
                return Search(trials, _best(trials, score), False)
            ok = is_feasible(r)
            keep = ok and float(r[score]) > float(cur.result[score])
            t = Trial(policy, knob, r, ok, keep)
            trials.append(t)
            if keep:
                cur = t
            else:
                active.remove(knob)
    return Search(trials, _best(trials, score), True)


def _best(trials: Sequence[Trial], score: str) -> Trial | None:
    ok = [t for t in trials if t.feasible]
    return max(ok, key=lambda t: float(t.result[score])) if ok else None


# --- policies and constraints of the real models -----------------------------------------------------------


def start_policy(model: str) -> Policy:
    """The search's start: the gentlest rung of every ladder (12-bit K and V, pruning off).

    The same for every model (``model`` is kept for the callers): starting from a preset's quantization
    instead (SmolLM2's 8+4-bit PQ costs +1.2% perplexity on 4 x 128 Brown tokens) could fail the
    constraint before the search takes a step.
    """
    return {knob: ladder[0] for knob, ladder in LADDERS.items()}


def policy_workload(model: str, policy: Mapping[str, float]) -> Any:
    """The model's preset with the policy's knobs (pruning on only when a keep ratio is below 1)."""
    from spatten.models.config import workload_preset

    w = workload_preset(model)
    keeps = {k: float(policy[k]) for k in ("token_keep", "head_keep", "value_keep")}
    msb = int(policy["key_msb_bits"])
    pruning = dataclasses.replace(w.pruning, enabled=any(v < 1.0 for v in keeps.values()), **keeps)
    quant = dataclasses.replace(
        w.quant,
        enabled=True,
        key_msb_bits=msb,
        key_lsb_bits=KEY_FULL_BITS - msb,
        progressive=msb < KEY_FULL_BITS,
        value_bits=int(policy["value_bits"]),
    )
    return dataclasses.replace(w, pruning=pruning, quant=quant)


def feasible(model: str, result: Mapping[str, Any]) -> bool:
    """Whether a result meets the model's quality constraint (:data:`CONSTRAINTS`)."""
    if model == "smollm2":
        return float(result["perplexity_increase"]) <= MAX_PERPLEXITY_INCREASE
    ok = float(result["cosine_mean"]) >= MIN_COSINE
    drop = result.get("task_accuracy_drop")  # absent when the text has no genre labels
    return ok and (drop is None or float(drop) <= MAX_TASK_ACCURACY_DROP)


# --- one point, run once ----------------------------------------------------------------------------------


def _record_path(w: Any, model: str, text: str | None, windows: int | None, window_len: int | None) -> Path:
    from spatten.sim.accuracy import cache_dir, cache_key

    key = cache_key(w, model, text, windows, window_len, None, "fixed")
    return cache_dir().parent / "accuracy_search" / f"{key}.json"


def _measure(w: Any, model: str, text: str | None, windows: int | None, window_len: int | None) -> dict:
    """Run the real model once: the accuracy summary plus the action counts of its trace simulated."""
    from spatten.sim.accuracy import run_accuracy
    from spatten.sim.api import simulate

    run = run_accuracy(w, model, text=text, windows=windows, window_len=window_len)
    actions = simulate(w, run.trace).actions
    return {**run.summary, "actions": {k: float(v) for k, v in actions.items()}}


def evaluate_point(
    w: Any,
    model: str,
    *,
    text: str | None = None,
    windows: int | None = None,
    window_len: int | None = None,
    only_cached: bool = False,
) -> dict[str, Any] | None:
    """One policy's record (accuracy summary and action counts), run once and then read from the cache.

    Returns None with ``only_cached`` when the point was never run.
    """
    path = _record_path(w, model, text, windows, window_len)
    try:
        rec = json.loads(path.read_text())
        if rec.get("record_version") == RECORD_VERSION:
            return rec
    except (OSError, ValueError):
        pass  # absent or damaged: run it
    if only_cached:
        return None
    rec = {**_measure(w, model, text, windows, window_len), "record_version": RECORD_VERSION}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(rec, indent=2, default=lambda x: x.item() if hasattr(x, "item") else str(x)))
    os.replace(tmp, path)
    return rec


# --- a model's search ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelSearch:
    """A model's search: every evaluated point (dense first) as a table, the chosen row, completeness.

    Attributes
    ----------
    model : str
    windows, window_len : int
        Size of each run.
    points : pandas.DataFrame
        One row per evaluated point: role (dense, start, step), the knob changed, the policy, the metric,
        DRAM reduction (against dense fp32), seconds, energy, speedup and energy saving over the dense run,
        feasible, accepted, chosen.
    best : dict or None
        The chosen row (largest DRAM reduction among the feasible points); None if none was feasible.
    complete : bool
        Whether every point of the search was available (always, unless ``only_cached``).
    """

    model: str
    windows: int
    window_len: int
    points: Any
    best: dict[str, Any] | None
    complete: bool


def search_model(
    model: str,
    *,
    text: str | None = None,
    windows: int | None = None,
    window_len: int | None = None,
    tech_nm: int = 40,
    progress: bool = False,
    only_cached: bool = False,
) -> ModelSearch:
    """Search ``model``'s policy (module docstring); ``only_cached`` replays the search from the cache alone.

    Parameters
    ----------
    model : {"minilm", "smollm2"}
    text : str, optional
        Default the Brown corpus.
    windows, window_len : int, optional
        Size of each run; default :data:`spatten.sim.accuracy.DEFAULTS`.
    tech_nm : int
        Technology node of the energy model (22..90).
    progress : bool
        A progress bar on stderr, one tick per point.
    only_cached : bool
        Run nothing: stop at the first point not in the cache (``complete`` False).
    """
    from spatten.sim.accuracy import DEFAULTS, MODELS
    from spatten.sim.baselines import dense_workload
    from spatten.sim.power.components import check_tech_nm
    from tqdm import tqdm

    if model not in MODELS:
        raise ValueError(f"model {model!r} is not one of {', '.join(MODELS)}")
    check_tech_nm(tech_nm)
    windows = DEFAULTS[model][0] if windows is None else windows
    window_len = DEFAULTS[model][1] if window_len is None else window_len
    for name, v in (("windows", windows), ("window_len", window_len)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} {v!r} is outside the allowed range >= 1")
    kw = {"text": text, "windows": windows, "window_len": window_len, "only_cached": only_cached}
    # TQDM_DISABLE and friends apply unless progress is off (an explicit disable=False would override them)
    bar = tqdm(
        desc=f"accuracy search {model}", unit="pt", file=sys.stderr, **({} if progress else {"disable": True})
    )
    with bar:

        def point(w: Any) -> dict[str, Any] | None:
            rec = evaluate_point(w, model, **kw)
            if rec is not None:
                bar.update()
                bar.set_postfix_str(
                    f"{rec['dram_reduction']:.2f}x {'ok' if feasible(model, rec) else 'over'}"
                )
            return rec

        dense = point(dense_workload(policy_workload(model, start_policy(model))))
        found = (
            coordinate_search(
                start_policy(model),
                LADDERS,
                lambda p: point(policy_workload(model, p)),
                lambda r: feasible(model, r),
            )
            if dense is not None
            else Search([], None, False)
        )
    points = _table(model, dense, found, tech_nm)
    best = points[points["chosen"]].iloc[0].to_dict() if points["chosen"].any() else None
    return ModelSearch(model, windows, window_len, points, best, found.complete)


def cached_search(model: str, **kw: Any) -> ModelSearch:
    """:func:`search_model` from the cache alone (loads no model); ``complete`` False if one is missing."""
    return search_model(model, **kw, only_cached=True)


def _energy(rec: Mapping[str, Any], model: str, tech_nm: int) -> dict[str, float]:
    from spatten.models.config import workload_preset
    from spatten.sim.power.energy import energy

    rep = energy(rec["actions"], workload_preset(model).accelerator, tech_nm)
    return {"energy_j": rep.total_j, "chip_energy_j": rep.chip_j}


def _table(model: str, dense: dict | None, found: Search, tech_nm: int) -> Any:
    """One row per point: policy, metric, DRAM reduction; speedup and energy saving over the dense run."""
    import pandas as pd

    rows = []
    if dense is not None:
        dense_policy = {
            "key_msb_bits": KEY_FULL_BITS,
            "value_bits": KEY_FULL_BITS,
            "value_keep": 1.0,
            "token_keep": 1.0,
            "head_keep": 1.0,
        }
        rows.append(_row(model, "dense", None, dense_policy, dense, False, tech_nm))
    for i, t in enumerate(found.trials):
        rows.append(
            _row(model, "start" if i == 0 else "step", t.knob, t.policy, t.result, t.accepted, tech_nm)
        )
    cols = [
        "model",
        "role",
        "knob",
        *LADDERS,
        "key_lsb_bits",
        *METRICS[model],
        *_RECORD_KEYS,
        "energy_j",
        "chip_energy_j",
        "speedup",
        "energy_saving",
        "feasible",
        "accepted",
        "chosen",
    ]
    t = pd.DataFrame(rows, columns=cols)
    if len(t):  # over the dense run on the same accelerator, as sim.compare.ratios
        t["speedup"] = t["seconds"].iloc[0] / t["seconds"]
        t["energy_saving"] = t["energy_j"].iloc[0] / t["energy_j"]
    if found.best is not None:
        t.loc[len(rows) - len(found.trials) + found.trials.index(found.best), "chosen"] = True
    return t


def _row(
    model: str,
    role: str,
    knob: str | None,
    policy: Mapping[str, float],
    rec: Mapping[str, Any],
    accepted: bool,
    tech_nm: int,
) -> dict[str, Any]:
    row: dict[str, Any] = {"model": model, "role": role, "knob": knob or ""}
    row.update({k: policy[k] for k in LADDERS})
    row["key_lsb_bits"] = KEY_FULL_BITS - int(policy["key_msb_bits"])
    row.update({k: rec.get(k, float("nan")) for k in (*METRICS[model], *_RECORD_KEYS)})
    row.update(_energy(rec, model, tech_nm))
    row.update({"feasible": feasible(model, rec), "accepted": accepted, "chosen": False})
    return row


# --- the summary table --------------------------------------------------------------------------------------


def policy_text(row: Mapping[str, Any]) -> str:
    """A policy in a few words: ``PQ K 8+4 b, V 8 b; keep token 0.95, head 1, value 0.8``."""
    msb, lsb = int(row["key_msb_bits"]), int(row["key_lsb_bits"])
    keeps = ", ".join(f"{k} {row[f'{k}_keep']:g}" for k in ("token", "head", "value"))
    return f"K {msb}+{lsb} b, V {int(row['value_bits'])} b; keep {keeps}"


def metric_text(model: str, row: Mapping[str, Any]) -> str:
    """The chosen point's quality next to dense's, e.g. ``ppl 62.9 vs 62.7 (+0.3%)``."""
    if model == "smollm2":
        return (
            f"ppl {row['perplexity']:.2f} vs {row['dense_perplexity']:.2f} "
            f"({100 * row['perplexity_increase']:+.2f}%)"
        )
    out = f"cosine {row['cosine_mean']:.4f} (min {row['cosine_min']:.3f})"
    if row.get("task_accuracy") == row.get("task_accuracy"):  # not NaN: the text has genre labels
        out += f"; task acc {100 * row['task_accuracy']:.1f}% vs {100 * row['dense_task_accuracy']:.1f}%"
    return out


def best_table(searches: Sequence[ModelSearch], paper_dram: float) -> tuple[Any, Any]:
    """(numbers, display) tables: one row per model with the chosen point, next to the paper's claim.

    ``numbers`` keeps the values at full precision (``accuracy_best.csv``); ``display`` is what is printed
    (model, constraint, chosen policy, metric vs dense, DRAM reduction, speedup, energy saving, paper).
    """
    import pandas as pd

    num, disp = [], []
    paper = f"{paper_dram:.1f}x DRAM, no accuracy loss (mean of 30)"
    for s in searches:
        b = s.best
        size = f"{s.windows} x {s.window_len} tok"
        n = {
            "model": s.model,
            "windows": s.windows,
            "window_len": s.window_len,
            "constraint": CONSTRAINTS[s.model],
            "points_evaluated": len(s.points),
            "paper_dram_reduction": paper_dram,
        }
        if b is None:
            num.append(n)
            disp.append(
                {
                    "model": f"{s.model} ({size})",
                    "constraint": CONSTRAINTS[s.model],
                    "chosen policy": "none meets the constraint",
                    "metric vs dense": "-",
                    "DRAM reduction": "-",
                    "speedup": "-",
                    "energy saving": "-",
                    "paper": paper,
                }
            )
            continue
        n.update({k: b[k] for k in (*LADDERS, "key_lsb_bits", *METRICS[s.model])})
        n.update(
            {
                k: b[k]
                for k in (
                    "dram_reduction",
                    "speedup",
                    "energy_saving",
                    "reached_token_keep",
                    "reached_head_keep",
                    "reached_value_keep",
                    "reached_refetch_rate",
                )
            }
        )
        num.append(n)
        disp.append(
            {
                "model": f"{s.model} ({size})",
                "constraint": CONSTRAINTS[s.model],
                "chosen policy": policy_text(b),
                "metric vs dense": metric_text(s.model, b),
                "DRAM reduction": f"{b['dram_reduction']:.2f}x",
                "speedup": f"{b['speedup']:.2f}x",
                "energy saving": f"{b['energy_saving']:.2f}x",
                "paper": paper,
            }
        )
    return pd.DataFrame(num), pd.DataFrame(disp)
