"""Cascade token pruning, cascade head pruning and local value pruning (SPATTEN.md section 1).

Counts
------
A keep ratio r of n items keeps ``keep_count(r, n) = max(1, floor(r * n))`` items (``n = 0`` keeps 0);
the release traces use the same floor (0.9 of 1024 keys -> 921; 0.2 of 921 values -> 184).

Cascade (:class:`CascadePruner`), for summarization (one step, all tokens) and generation (one step per
generated token, the KV cache growing by one each step)
------------------------------------------------------------------------------------------------------
State: token importance ``s_tok`` (one entry per token position), head importance ``s_head`` (one entry per
head index), and per layer the tokens and heads still alive there. Before layer l of a step:

1. Heads: the candidates are the heads alive at layer l in earlier steps and used by layer l-1 in this
   step. If more than ``keep_count(head_schedule[l], H)`` remain, the top-k of ``s_head`` among them
   (``models.topk.topk_ref``: ties keep the lowest index) survive.
2. Tokens: the candidates are the tokens alive at layer l in earlier steps (plus this step's new token)
   and fetched by layer l-1 in this step. If more than ``k = keep_count(token_schedule[l], n)`` remain,
   where n is the current sequence length (ratios are relative to the original length), the top-k of
   ``s_tok`` survive; in generation the newest token is always kept (its score is raised above all).
   No top-k runs before any importance exists (layer 0 of the first step).
3. A pruned token or head never returns at that layer or any later one (the sets only shrink, except
   for the newly generated token).

After layer l (:meth:`CascadePruner.update`): ``s_tok[j] += sum over live heads h and queries i of
prob[h, i, j]`` and ``s_head[m] += sum over queries i and dims d of |out[m, i, d]|``; importance keeps
accumulating across layers and steps.

Local value pruning (:func:`value_keep_mask`): per (head, query) only the ``keep_count(value_ratio, n)``
largest probabilities (top-k rule: ties keep the lowest index) have their V rows fetched and multiplied.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from spatten.models.config import check_float
from spatten.models.topk import topk_ref

__all__ = [
    "keep_count",
    "keep_counts",
    "value_keep_mask",
    "topk_rows",
    "select_top",
    "token_importance",
    "head_importance",
    "CascadePruner",
]


def keep_count(ratio: float, n: int) -> int:
    """Items kept out of ``n`` at keep ratio ``ratio`` in (0, 1]: ``max(1, floor(ratio * n))``, 0 if n = 0."""
    check_float("ratio", ratio, 0.0, 1.0, lo_open=True)
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise ValueError(f"n = {n!r} must be an integer >= 0")
    if n == 0:
        return 0
    # The epsilon absorbs binary-fraction error (0.29 * 100 = 28.999...) without moving exact products.
    return max(1, min(int(n), math.floor(ratio * n + 1e-9)))


def keep_counts(ratio: float, n: npt.ArrayLike) -> np.ndarray:
    """:func:`keep_count` of every count in ``n`` (int64 array of the same shape), the same arithmetic."""
    check_float("ratio", ratio, 0.0, 1.0, lo_open=True)
    a = np.asarray(n)
    if a.dtype.kind not in "iu" or (a.size and a.min() < 0):
        raise ValueError("n must hold integers >= 0")
    a = a.astype(np.int64)
    k = np.maximum(1, np.minimum(a, np.floor(ratio * a + 1e-9).astype(np.int64)))
    return np.where(a == 0, 0, k)


def topk_rows(scores: npt.ArrayLike, k: int) -> np.ndarray:
    """Boolean mask of ``topk_ref(row, k)`` for every row along the last axis, vectorized.

    A stable sort of the negated scores puts the largest first and, among equal scores, the lowest
    index first, which is exactly ``topk_ref``'s tie rule.
    """
    a = np.asarray(scores)
    if a.ndim == 0 or a.shape[-1] == 0:
        raise ValueError(f"scores must have a non-empty last axis, got shape {a.shape}")
    if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
        raise ValueError("scores contains NaN or inf")
    n = a.shape[-1]
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 0 <= k <= n:
        raise ValueError(f"k = {k!r} is outside the allowed range 0..{n}")
    return _topk_mask(a, k)


def _topk_mask(a: np.ndarray, k: int | np.ndarray) -> np.ndarray:
    """:func:`topk_rows` without checks; ``k`` is one count for every row or an int array of per-row
    counts (shape ``a.shape[:-1]``, each in 0..n)."""
    n = a.shape[-1]
    if np.ndim(k) == 0 and k == n:
        return np.ones(a.shape, dtype=bool)
    if a.dtype.kind == "f" and np.ndim(k) == 0:
        if k == 0:
            return np.zeros(a.shape, dtype=bool)
        # No sort (floats have no radix key): the k-th largest value t of each row, everything above it,
        # and as many entries equal to t as still fit, lowest index first (topk_ref's tie rule).
        t = np.partition(a, n - k, axis=-1)[..., n - k : n - k + 1]
        above, tie = a > t, a == t
        return above | (tie & (np.cumsum(tie, axis=-1) <= k - above.sum(axis=-1, keepdims=True)))
    mask = np.zeros(a.shape, dtype=bool)
    if a.dtype.kind == "f":
        key = -a.astype(np.float64)
    else:
        hi = int(a.max())
        if hi - int(a.min()) < 1 << 16:  # codes (probabilities): a 16-bit key sorts by radix, same order
            key = (hi - a).astype(np.uint16)
        else:
            key = -a.astype(np.int64)
    order = np.argsort(key, axis=-1, kind="stable").reshape(-1, n)
    flat = order + (np.arange(order.shape[0]) * n)[:, None]  # indices into the flattened mask
    if np.ndim(k) == 0:
        mask.reshape(-1)[flat[:, :k]] = True
    else:  # row r keeps the first k[r] of its order
        mask.reshape(-1)[flat] = np.arange(n) < np.asarray(k).reshape(-1, 1)
    return mask


def value_keep_mask(probs: npt.ArrayLike, ratio: float) -> np.ndarray:
    """Local value pruning: mask of the V rows kept per row of ``probs`` (shape (..., n)).

    Keeps ``keep_count(ratio, n)`` largest probabilities of every row (ties: lowest index).
    """
    a = np.asarray(probs)
    if a.ndim == 0 or a.shape[-1] == 0:
        raise ValueError(f"probs must have a non-empty last axis, got shape {a.shape}")
    return topk_rows(a, keep_count(ratio, a.shape[-1]))


def select_top(
    importance: npt.ArrayLike, candidates: npt.ArrayLike, k: int, protect: int | None = None
) -> np.ndarray:
    """Indices (ascending) of the ``k`` candidates with the largest importance.

    Parameters
    ----------
    importance : array_like, shape (N,)
        Importance of every position.
    candidates : array_like of int, shape (m,)
        Positions eligible (ascending).
    k : int
        Number to keep, 0..m.
    protect : int, optional
        A position among the candidates that is always kept (the newest token in generation).

    Returns
    -------
    numpy.ndarray of int64
    """
    imp = np.asarray(importance)
    cand = np.asarray(candidates, dtype=np.int64)
    if imp.ndim != 1 or cand.ndim != 1 or cand.size == 0:
        raise ValueError(f"importance must be (N,), candidates non-empty (m,); got {imp.shape}, {cand.shape}")
    if cand.min() < 0 or cand.max() >= imp.size:
        raise ValueError(f"candidates must be positions in 0..{imp.size - 1}")
    sc = imp[cand].astype(np.float64 if imp.dtype.kind == "f" else np.int64)
    if protect is not None:
        pos = np.flatnonzero(cand == protect)
        if pos.size != 1:
            raise ValueError(f"protect = {protect} is not one of the candidates")
        if k < 1:
            raise ValueError("k must be >= 1 when a position is protected")
        sc = sc.copy()
        sc[pos[0]] = sc.max() + 1
    return cand[topk_ref(sc, k)]


def token_importance(probs: npt.ArrayLike) -> np.ndarray:
    """Per-token importance contribution of one layer: ``probs`` (heads, queries, n) summed to (n,)."""
    a = np.asarray(probs)
    if a.ndim != 3:
        raise ValueError(f"probs must have shape (heads, queries, n), got {a.shape}")
    return a.sum(axis=(0, 1))


def head_importance(out: npt.ArrayLike) -> np.ndarray:
    """Per-head importance contribution of one layer: ``|out|`` (heads, queries, D) summed to (heads,)."""
    a = np.asarray(out)
    if a.ndim != 3:
        raise ValueError(f"out must have shape (heads, queries, D), got {a.shape}")
    return np.abs(a).sum(axis=(1, 2))


class CascadePruner:
    """State of cascade token and head pruning across layers and generation steps (module docstring).

    Parameters
    ----------
    layers, heads : int
        Model shape.
    max_tokens : int
        Largest sequence length that will be seen (prompt + generated tokens).
    token_schedule, head_schedule : sequence of float
        Keep ratio per layer in (0, 1], relative to the original token / head count.
    generation : bool
        True: the newest token of every step is never pruned.
    integer : bool
        True: importance is accumulated in int64 (bit-accurate mode, probability codes); else float64.
    min_keep : int
        Token pruning never leaves fewer live tokens than this (``pruning.token_min_keep``).
    """

    def __init__(
        self,
        layers: int,
        heads: int,
        max_tokens: int,
        token_schedule: Sequence[float],
        head_schedule: Sequence[float],
        generation: bool,
        integer: bool = False,
        min_keep: int = 0,
    ) -> None:
        for name, v in (("layers", layers), ("heads", heads), ("max_tokens", max_tokens)):
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
                raise ValueError(f"{name} = {v!r} must be an integer >= 1")
        for name, sched in (("token_schedule", token_schedule), ("head_schedule", head_schedule)):
            if len(sched) != layers:
                raise ValueError(f"{name} has {len(sched)} entries but there are {layers} layers")
            for i, r in enumerate(sched):
                check_float(f"{name}[{i}]", r, 0.0, 1.0, lo_open=True)
        self.layers, self.heads, self.max_tokens = int(layers), int(heads), int(max_tokens)
        self.token_schedule = tuple(float(r) for r in token_schedule)
        self.head_schedule = tuple(float(r) for r in head_schedule)
        self.generation = bool(generation)
        self.min_keep = int(min_keep)
        dt = np.int64 if integer else np.float64
        self.s_tok = np.zeros(self.max_tokens, dtype=dt)
        self.s_head = np.zeros(self.heads, dtype=dt)
        self.alive_tok = np.ones((self.layers, self.max_tokens), dtype=bool)
        self.alive_head = np.ones((self.layers, self.heads), dtype=bool)
        self.n = 0
        self.step = -1
        self._prev_tok: np.ndarray | None = None
        self._prev_head: np.ndarray | None = None
        self._has_importance = False
        self.last_token_topk = -1
        self.last_head_topk = -1

    def begin_step(self, n_tokens: int) -> None:
        """Start a step with ``n_tokens`` tokens in the cache (never fewer than the previous step)."""
        if not isinstance(n_tokens, int | np.integer) or not max(1, self.n) <= n_tokens <= self.max_tokens:
            raise ValueError(
                f"n_tokens = {n_tokens!r} is outside the allowed range {max(1, self.n)}..{self.max_tokens}"
            )
        self.n = int(n_tokens)
        self.step += 1
        self._prev_tok = None
        self._prev_head = None

    def layer_heads(self, layer: int) -> np.ndarray:
        """Live head indices of ``layer`` (ascending), pruning first if the schedule asks for it."""
        cand = self.alive_head[layer].copy()
        if self._prev_head is not None:
            cand &= self._prev_head
        idx = np.flatnonzero(cand)
        k = keep_count(self.head_schedule[layer], self.heads)
        self.last_head_topk = -1
        if idx.size > k and self._has_importance:
            idx = select_top(self.s_head, idx, k)
            self.last_head_topk = k
        mask = np.zeros(self.heads, dtype=bool)
        mask[idx] = True
        self.alive_head[layer] = mask
        self._prev_head = mask
        return idx

    def layer_tokens(self, layer: int) -> np.ndarray:
        """Live token positions of ``layer`` in this step (ascending), pruning first when due."""
        cand = self.alive_tok[layer, : self.n].copy()
        if self._prev_tok is not None:
            cand &= self._prev_tok
        idx = np.flatnonzero(cand)
        k = max(keep_count(self.token_schedule[layer], self.n), min(self.n, self.min_keep))
        self.last_token_topk = -1
        if idx.size > k and self._has_importance:
            protect = self.n - 1 if self.generation else None
            idx = select_top(self.s_tok[: self.n], idx, k, protect=protect)
            self.last_token_topk = k
        mask = np.zeros(self.n, dtype=bool)
        mask[idx] = True
        self.alive_tok[layer, : self.n] = mask
        self._prev_tok = mask
        return idx

    def update(self, tokens: np.ndarray, heads: np.ndarray, probs: np.ndarray, out: np.ndarray) -> None:
        """Accumulate importance after a layer.

        Parameters
        ----------
        tokens : (n_live,) token positions the layer attended to.
        heads : (h_live,) head indices the layer computed.
        probs : (h_live, queries, n_live) probabilities (codes in integer mode).
        out : (h_live, queries, D) attention outputs.
        """
        p, o = np.asarray(probs), np.asarray(out)
        if p.ndim != 3 or p.shape[0] != len(heads) or p.shape[2] != len(tokens):
            want = f"(heads {len(heads)}, queries, tokens {len(tokens)})"
            raise ValueError(f"probs shape {p.shape} must be {want}")
        if o.ndim != 3 or o.shape[:2] != p.shape[:2]:
            raise ValueError(f"out shape {o.shape} must be (heads, queries, D) matching probs {p.shape}")
        self.s_tok[tokens] += token_importance(probs).astype(self.s_tok.dtype)
        self.s_head[heads] += head_importance(out).astype(self.s_head.dtype)
        self._has_importance = True
