"""The request trace: its schema, and reading/writing the authors' release CSV format.

A trace is a ``pandas.DataFrame`` with one row per attention request, i.e. per (step, layer, head,
query). Columns (``TRACE_COLUMNS``):

========================  =======================================================================
step                      generation step (0 = prompt / summarization)
layer, head, query        position of the request (query: index inside the step; 0 for generation)
queries                   queries this row stands for (>1 when a row summarizes a query batch)
head_dim                  D
seq_len                   tokens in the KV cache before pruning (the release ``sentence_length_L``)
keys_fetched              K rows fetched (live tokens after cascade token pruning)
key_bits                  bits per K element fetched first (MSBs under PQ); -1 unquantized
key_lsb_bits              LSB bits fetched on a refetch; -1 when PQ is off or unquantized
refetch                   whether the LSBs were fetched and Q.K recomputed
refetch_threshold         max-probability threshold; -1 when PQ is off
query_bits                bits per Q element; -1 unquantized
values_fetched            V rows fetched (after local value pruning)
value_bits                bits per V element; -1 unquantized
accumulate_importance     token importance is accumulated after this head
rescale_importance        previous importance is rescaled (release field, carried through)
token_topk                k of the token top-k run after this head; -1 when none runs
value_topk                k of the local value top-k; -1 when all values are kept
========================  =======================================================================

The release CSV (SPATTEN.md section 4) has one row per (step, layer, head) and a last line naming
the training config. :func:`read_release_csv` maps it onto the schema (``query = 0``, ``queries = 1``);
:func:`write_release_csv` writes the per-(step, layer, head) rows back in the release's own layout.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

__all__ = ["TRACE_COLUMNS", "RELEASE_COLUMNS", "read_release_csv", "write_release_csv", "empty_trace"]

TRACE_COLUMNS: dict[str, str] = {
    "step": "int64",
    "layer": "int64",
    "head": "int64",
    "query": "int64",
    "queries": "int64",
    "head_dim": "int64",
    "seq_len": "int64",
    "keys_fetched": "int64",
    "key_bits": "int64",
    "key_lsb_bits": "int64",
    "refetch": "bool",
    "refetch_threshold": "float64",
    "query_bits": "int64",
    "values_fetched": "int64",
    "value_bits": "int64",
    "accumulate_importance": "bool",
    "rescale_importance": "bool",
    "token_topk": "int64",
    "value_topk": "int64",
}

RELEASE_COLUMNS: list[str] = [
    "iteration_id",
    "layer_id",
    "head_id",
    "embedding_length_D",
    "sentence_length_L",
    "key_fetch_num",
    "quant_key_bit",
    "quant_query_bit",
    "auto_requant_thres",
    "if_requant",
    "auto_requant_incre",
    "value_fetch_num",
    "quant_value_bit",
    "if_accumulate_importance",
    "if_rescale_previous_importance",
    "if_topk",
    "topk",
]

# release column -> trace column (the booleans and if_topk are handled apart)
_RELEASE_TO_TRACE = {
    "iteration_id": "step",
    "layer_id": "layer",
    "head_id": "head",
    "embedding_length_D": "head_dim",
    "sentence_length_L": "seq_len",
    "key_fetch_num": "keys_fetched",
    "quant_key_bit": "key_bits",
    "quant_query_bit": "query_bits",
    "auto_requant_thres": "refetch_threshold",
    "if_requant": "refetch",
    "auto_requant_incre": "key_lsb_bits",
    "value_fetch_num": "values_fetched",
    "quant_value_bit": "value_bits",
    "if_accumulate_importance": "accumulate_importance",
    "if_rescale_previous_importance": "rescale_importance",
    "topk": "token_topk",
}


def empty_trace():
    """An empty trace with the schema's columns and dtypes."""
    import pandas as pd

    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in TRACE_COLUMNS.items()})


def _as_bool(col, name: str, path: str):
    s = col.astype(str).str.strip().str.lower()
    ok = s.isin(["true", "false", "1", "0"])
    if not ok.all():
        bad = col[~ok].iloc[0]
        raise ValueError(f"{path}: column {name} has a non-boolean value {bad!r}")
    return s.isin(["true", "1"]).to_numpy()


def read_release_csv(path: str | os.PathLike):
    """Read a release-format workload CSV into a trace.

    Parameters
    ----------
    path : path-like
        The CSV file. Its last line may name the training config (other fields empty).

    Returns
    -------
    (trace, config_name) : (pandas.DataFrame, str or None)

    Raises
    ------
    ValueError
        Missing file or column, or a value that is not a number / boolean, naming the column.
    """
    import pandas as pd

    p = Path(path)
    if not p.is_file():
        what = "is a folder, not a file" if p.is_dir() else "does not exist"
        raise ValueError(f"trace file {str(p)!r} {what}")
    try:
        raw = pd.read_csv(p, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise ValueError(f"{p}: not a readable CSV ({str(e).splitlines()[0]})") from None
    missing = [c for c in RELEASE_COLUMNS if c not in raw.columns]
    if missing:
        raise ValueError(f"{p}: missing column(s) {', '.join(missing)}")
    config_name = None
    if len(raw) and all(raw.iloc[-1][c] == "" for c in RELEASE_COLUMNS[1:]):
        config_name = raw.iloc[-1]["iteration_id"] or None
        raw = raw.iloc[:-1]
    if len(raw) == 0:
        raise ValueError(f"{p}: no request rows")
    out: dict[str, np.ndarray] = {}
    for rc, tc in _RELEASE_TO_TRACE.items():
        if TRACE_COLUMNS[tc] == "bool":
            out[tc] = _as_bool(raw[rc], rc, str(p))
            continue
        num = pd.to_numeric(raw[rc], errors="coerce")
        if num.isna().any():
            bad = raw[rc][num.isna()].iloc[0]
            raise ValueError(f"{p}: column {rc} has a non-numeric value {bad!r}")
        vals = num.to_numpy(dtype=np.float64)
        if TRACE_COLUMNS[tc] == "int64":
            if not np.all(vals == np.round(vals)):
                raise ValueError(f"{p}: column {rc} has a non-integer value")
            out[tc] = vals.astype(np.int64)
        else:
            out[tc] = vals
    if_topk = _as_bool(raw["if_topk"], "if_topk", str(p))
    out["token_topk"] = np.where(if_topk, out["token_topk"], -1)
    n = len(raw)
    out["query"] = np.zeros(n, np.int64)
    out["queries"] = np.ones(n, np.int64)
    # The release marks value pruning only through value_fetch_num < key_fetch_num.
    out["value_topk"] = np.where(out["values_fetched"] < out["keys_fetched"], out["values_fetched"], -1)
    for name in ("keys_fetched", "values_fetched", "seq_len", "head_dim"):
        if (out[name] < 0).any():
            raise ValueError(f"{p}: column {name} has a negative value")
    if (out["keys_fetched"] > out["seq_len"]).any():
        raise ValueError(f"{p}: key_fetch_num exceeds sentence_length_L")
    df = pd.DataFrame({c: out[c] for c in TRACE_COLUMNS})
    return df.astype(TRACE_COLUMNS), config_name


def _fmt_bool(a) -> list[str]:
    return ["True" if v else "False" for v in a]


def write_release_csv(trace, path: str | os.PathLike, config_name: str | None = None) -> None:
    """Write a trace in the release CSV layout (one row per (step, layer, head)).

    Rows with several queries (summarization) are written as they are; the release format has no query
    column, so such a file replays with ``queries = 1`` per row. Written atomically.
    """
    import pandas as pd

    missing = [c for c in TRACE_COLUMNS if c not in trace.columns]
    if missing:
        raise ValueError(f"trace is missing column(s) {', '.join(missing)}")

    def ints(col: str) -> list[str]:
        return [str(int(v)) for v in trace[col]]

    # The release's own layout: integers everywhere except D (written as a float, e.g. "64.0") and the
    # threshold; booleans as True/False; "-1" for absent values.
    rel = pd.DataFrame(
        {
            "iteration_id": ints("step"),
            "layer_id": ints("layer"),
            "head_id": ints("head"),
            "embedding_length_D": trace["head_dim"].astype(float).map(repr),
            "sentence_length_L": ints("seq_len"),
            "key_fetch_num": ints("keys_fetched"),
            "quant_key_bit": ints("key_bits"),
            "quant_query_bit": ints("query_bits"),
            "auto_requant_thres": [_fmt_thres(v) for v in trace["refetch_threshold"]],
            "if_requant": _fmt_bool(trace["refetch"]),
            "auto_requant_incre": ints("key_lsb_bits"),
            "value_fetch_num": ints("values_fetched"),
            "quant_value_bit": ints("value_bits"),
            "if_accumulate_importance": _fmt_bool(trace["accumulate_importance"]),
            "if_rescale_previous_importance": _fmt_bool(trace["rescale_importance"]),
            "if_topk": _fmt_bool(trace["token_topk"] >= 0),
            "topk": [str(int(v)) if v >= 0 else "-1" for v in trace["token_topk"]],
        },
        columns=RELEASE_COLUMNS,
    )
    if config_name is not None and ("," in config_name or "\n" in config_name or not config_name):
        raise ValueError(f"config_name = {config_name!r} must be non-empty without commas or newlines")
    p = Path(path)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", newline="") as f:
            rel.to_csv(f, index=False, lineterminator="\n")
            if config_name is not None:
                f.write(config_name + "," * (len(RELEASE_COLUMNS) - 1) + "\n")
        tmp.replace(p)
    finally:  # no partial file is left behind on failure
        if tmp.exists():
            tmp.unlink()


def _fmt_thres(v: float) -> str:
    return "-1" if v == -1 else repr(float(v))
