"""One accuracy point: a real model run with a policy, its quality against dense and its own trace simulated.

:func:`run_accuracy` is what ``spatten accuracy``, sweeps over a real model and ``spatten reproduce
--accuracy`` share. It returns one flat summary: the model's metric for the policy and for dense (SmolLM2:
``perplexity``, ``dense_perplexity``, ``perplexity_increase``; MiniLM: ``cosine_mean``, ``cosine_min``,
``task_accuracy``, ``dense_task_accuracy``, ``task_accuracy_drop``), the pruning reached
(``reached_token_keep`` ...), and :data:`SIM_KEYS` of the run's trace simulated on the workload's accelerator.

:func:`cached_accuracy` keeps these summaries on disk (``$SPATTEN_CACHE_DIR/accuracy`` or
``~/.cache/spatten/accuracy``), one JSON file per key: the model, a hash of the text, windows, window length,
mode, datapath, the policy (the workload's ``pruning`` and ``quant`` sections) and the accelerator, and
:data:`VERSION`, bumped whenever a result would change.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["MODELS", "DEFAULTS", "SIM_KEYS", "AccuracyRun", "run_accuracy", "cached_accuracy", "cache_key"]

MODELS = ("minilm", "smollm2")
#: Windows and tokens per window of one run by default: MiniLM 32 Brown documents of 128 tokens (about half
#: a minute on the 2-core machine), SmolLM2 four windows of 128 tokens (in generation mode one lockstep
#: batch, as fast as fewer windows: about a minute).
DEFAULTS = {"minilm": (32, 128), "smollm2": (4, 128)}
#: Simulator summary keys reported beside the metric.
SIM_KEYS = (
    "cycles", "seconds", "dram_bytes_q", "dram_bytes_k_msb", "dram_bytes_k_lsb", "dram_bytes_v",
    "dram_bytes_total", "dram_reduction", "bounding_stage",
)  # fmt: skip
#: Bump when a change to the models, the harness or the simulator changes cached results.
VERSION = 5


@dataclass(frozen=True)
class AccuracyRun:
    """One run: the flat summary, the per-window table and the request trace (None for ``dense``)."""

    summary: dict[str, Any]
    table: Any
    trace: Any


def _resolve(
    model: str, windows: int | None, window_len: int | None, mode: str | None
) -> tuple[int, int, str]:
    if model not in MODELS:
        raise ValueError(f"model {model!r} is not one of {', '.join(MODELS)}")
    dw, dl = DEFAULTS[model]
    windows = dw if windows is None else windows
    window_len = dl if window_len is None else window_len
    for name, v in (("windows", windows), ("window_len", window_len)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} {v!r} is outside the allowed range >= 1")
    mode = mode or ("prefill" if model == "minilm" else "generation")
    if mode not in ("prefill", "generation"):
        raise ValueError(f"mode {mode!r} must be 'prefill' or 'generation'")
    if model == "minilm" and mode != "prefill":
        raise ValueError("--mode generation needs a decoder: MiniLM is an encoder (use --mode prefill)")
    return windows, window_len, mode


def run_accuracy(
    workload: Any,
    model: str,
    *,
    text: str | None = None,
    windows: int | None = None,
    window_len: int | None = None,
    mode: str | None = None,
    datapath: str = "fixed",
    dense: bool = False,
    workers: int = 1,
) -> AccuracyRun:
    """Run ``model`` with ``workload``'s policy inside every layer; quality, pruning reached, simulation.

    Parameters
    ----------
    workload : Workload
        The model's preset (``workload_preset(model)``) with the policy and accelerator under test.
    model : {"minilm", "smollm2"}
        Which real model.
    text : str, optional
        Text to run on; default the Brown corpus (MiniLM: one document per window, for the genre probe).
    windows, window_len : int, optional
        Default :data:`DEFAULTS`.
    mode : {"prefill", "generation"}, optional
        Decoder mode (default generation; prefill runs each window in one causal pass, pruning inside it);
        the encoder has prefill only.
    datapath : {"fixed", "float"}
        Bit-accurate fixed point or float64.
    dense : bool
        Only the dense model's metric (no SpAtten run, no trace).
    workers : int
        Dask worker processes for the decoder's windows (the result does not depend on it); MiniLM runs in
        this process.
    """
    windows, window_len, mode = _resolve(model, windows, window_len, mode)
    if datapath not in ("fixed", "float"):
        raise ValueError(f"datapath {datapath!r} must be 'fixed' or 'float'")
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 64:
        raise ValueError(f"workers {workers!r} is outside the allowed range 1..64")
    if workers > 1 and model == "minilm":
        raise ValueError("workers > 1 splits a decoder's windows: MiniLM runs in one process")
    out: dict[str, Any] = {"model": model, "mode": mode, "windows": windows, "window_len": window_len}
    if model == "minilm":
        table, trace = _encoder(workload, text, windows, window_len, datapath, dense, out)
    else:
        table, trace = _decoder(workload, text, windows, window_len, mode, datapath, dense, workers, out)
    if trace is not None:
        from spatten.models.attention import summarize_trace
        from spatten.sim.api import simulate

        _, overall = summarize_trace(trace, workload.model.heads)
        out.update(
            {f"reached_{k}": overall[k] for k in ("token_keep", "head_keep", "value_keep", "refetch_rate")}
        )
        if model == "smollm2" and mode == "prefill":  # causal: query i of a dense run sees i + 1 keys, not n
            w = trace["queries"]
            out["reached_token_keep"] = float(
                (trace["keys_fetched"] * w).sum() / ((trace["query"] + 1) * w).sum()
            )
        sim = simulate(workload, trace).summary
        out.update({k: sim[k] for k in SIM_KEYS})
    return AccuracyRun(out, table, trace)


def _encoder(w: Any, text: str | None, windows: int, window_len: int, datapath: str, dense: bool, out: dict):
    import numpy as np
    import pandas as pd
    from spatten.models.accuracy import (
        IMAGINATIVE,
        encoder_accuracy,
        encoder_windows,
        probe_balanced_accuracy,
    )
    from spatten.models.real_qkv import encode, load_minilm

    inputs = encoder_windows(text, window_len, windows, load_minilm())
    if dense:
        labels = [lab for _, lab, _ in inputs]
        if all(lab is not None for lab in labels):
            emb = np.array([encode(t).hidden[-1].mean(axis=0, dtype=np.float64) for _, _, t in inputs])
            y = np.array([lab in IMAGINATIVE for lab in labels])
            out["dense_task_accuracy"] = probe_balanced_accuracy(emb, y)
        return None, None
    r = encoder_accuracy(w, inputs, datapath)
    out.update({"datapath": datapath, "cosine_mean": r.cosine_mean, "cosine_min": float(r.cosine.min())})
    if r.task_accuracy is not None:
        out.update({"task_accuracy": r.task_accuracy, "dense_task_accuracy": r.dense_task_accuracy,
                    "task_accuracy_drop": r.dense_task_accuracy - r.task_accuracy})  # fmt: skip
    return pd.DataFrame(r.windows), r.trace


def _decoder(w: Any, text: str | None, windows: int, window_len: int, mode: str, datapath: str, dense: bool,
             workers: int, out: dict):  # fmt: skip
    import pandas as pd
    from spatten.models import brown, smollm2
    from spatten.models.accuracy import decoder_accuracy

    if text is None:
        text = "\n".join(d.text for d in brown.documents())
    if dense:
        out["dense_perplexity"] = smollm2.perplexity(text, window_len, windows).perplexity
        return None, None
    r = decoder_accuracy(w, text, window_len, windows, datapath, mode, workers=workers)
    out.update({"datapath": datapath, "perplexity": r.perplexity, "dense_perplexity": r.dense_perplexity,
                "perplexity_increase": r.perplexity / r.dense_perplexity - 1.0})  # fmt: skip
    table = pd.DataFrame({"window": range(windows), "nll": r.window_nll, "dense_nll": r.dense_window_nll})
    return table, r.trace


def cache_dir() -> Path:
    """Folder of the accuracy cache (``$SPATTEN_CACHE_DIR/accuracy``, else ``~/.cache/spatten/accuracy``)."""
    env = os.environ.get("SPATTEN_CACHE_DIR")
    if env:
        return Path(env) / "accuracy"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "spatten" / "accuracy"


def cache_key(workload: Any, model: str, text: str | None, windows: int | None, window_len: int | None,
              mode: str | None, datapath: str) -> str:  # fmt: skip
    """Hex digest naming one accuracy result (module docstring)."""
    from spatten.models.config import to_dict

    windows, window_len, mode = _resolve(model, windows, window_len, mode)
    d = to_dict(workload)
    key = {
        "version": VERSION,
        "model": model,
        "text": "brown" if text is None else hashlib.sha256(text.encode()).hexdigest(),
        "windows": windows,
        "window_len": window_len,
        "mode": mode,
        "datapath": datapath,
        "policy": {s: d.get(s) for s in ("pruning", "quant", "accelerator")},
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:32]


def cached_accuracy(
    workload: Any,
    model: str,
    *,
    text: str | None = None,
    windows: int | None = None,
    window_len: int | None = None,
    mode: str | None = None,
    datapath: str = "fixed",
    only_cached: bool = False,
    workers: int = 1,
) -> dict[str, Any] | None:
    """:func:`run_accuracy`'s summary, from the disk cache when present (``only_cached``: None if absent).

    ``workers`` is not part of the key: it does not change the result.
    """
    path = cache_dir() / f"{cache_key(workload, model, text, windows, window_len, mode, datapath)}.json"
    if path.is_file():
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            pass  # a damaged entry is recomputed
    if only_cached:
        return None
    summary = run_accuracy(
        workload,
        model,
        text=text,
        windows=windows,
        window_len=window_len,
        mode=mode,
        datapath=datapath,
        workers=workers,
    ).summary
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(summary, indent=2, default=_plain) + "\n")
    os.replace(tmp, path)
    return summary


def _plain(x: Any) -> Any:
    """numpy scalars as Python numbers for JSON."""
    return x.item() if hasattr(x, "item") else str(x)
