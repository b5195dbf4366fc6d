"""KV-cache policies on SpAtten's hardware: which cached tokens' K and V a decode step reads.

``pruning.policy`` picks one; all of them run on the same datapath (the same quantization, progressive
refetch and local value pruning), so they differ only in the tokens they keep and in what choosing them
costs. Each keeps a *budget* of ``B(n) = max(1, min(n, token_min_keep), floor(token_keep * n))`` of the
``n`` tokens in the cache (:func:`budget`), in every layer:

``spatten``
    SpAtten's cascade token and head pruning (:class:`spatten.models.pruning.CascadePruner`): importance
    accumulated over heads, layers and steps, a per-layer schedule, pruned tokens gone for good.
``h2o``
    H2O (Zhang et al., NeurIPS 2023): the most recent ``ceil(recent_fraction * B)`` tokens plus the heavy
    hitters, the tokens with the largest attention accumulated in that layer over the steps so far. Once
    evicted a token never returns. State: one score per cached token per layer, which does not fit on chip
    for long contexts: each (step, layer) reads the live tokens' scores and writes them back,
    ``2 x keys x IMPORTANCE_BITS / 8`` bytes; the eviction is a top-k of ``B`` out of ``keys + 1`` on the
    top-k engine.
``streamingllm``
    StreamingLLM (Xiao et al., ICLR 2024): the first ``sink_tokens`` (attention sinks) and the most recent
    ``B - sink_tokens``. No scores, no selection work; the kept K/V sit in two contiguous runs.
``quest``
    Quest (Tang et al., ICML 2024): the cache in pages of ``page_size`` tokens, each with the element-wise
    minimum and maximum of its keys. A step bounds every page's score by
    ``sum_d max(q_d min_d, q_d max_d)`` (two dot products per page on the Q.K unit), keeps the
    ``floor(B / page_size)`` best pages (at least one; the current page always), and reads their keys.
    Metadata: the min/max vectors of every page of the K/V head, ``2 x pages x head_dim x key bits / 8``
    bytes per (step, layer, K/V head); the page choice is a top-k over pages on the top-k engine. Nothing is
    evicted: another step may choose other pages.

Simplifications, stated: the three KV policies choose one token set per layer for all heads (H2O and Quest
choose per head in their papers; a shared choice is what SpAtten's token pruning does and what keeps a GQA
group's K/V fetch whole), they do not prune heads, and they run on decode steps only (the prompt pass is
dense; the accuracy harness therefore runs them in generation mode). The budget applies from the first
decode step.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = [
    "budget",
    "policy_keys",
    "KVPolicyPruner",
    "H2OPruner",
    "StreamingPruner",
    "QuestPruner",
    "make_pruner",
]


def budget(pruning: Any, n: int) -> int:
    """Tokens a KV policy keeps out of ``n`` cached ones (module docstring)."""
    if n <= 0:
        return 0
    b = max(1, min(n, pruning.token_min_keep), math.floor(pruning.token_keep * n + 1e-9))
    return min(n, b)


def policy_keys(pruning: Any, n: Any) -> np.ndarray:
    """Keys a decode step reads under ``pruning.policy`` (not ``spatten``) with ``n`` tokens cached.

    StreamingLLM keeps at least its sinks and the newest token; Quest whole pages (the current one may be
    partial), at least one.
    """
    n = np.asarray(n, dtype=np.int64)
    b = np.maximum(
        1, np.maximum(np.minimum(n, pruning.token_min_keep), np.floor(pruning.token_keep * n + 1e-9))
    )
    b = np.minimum(n, b.astype(np.int64))
    if pruning.policy == "streamingllm":
        b = np.minimum(n, np.maximum(b, pruning.sink_tokens + 1))
    elif pruning.policy == "quest":
        s = pruning.page_size
        b = np.minimum(n, np.maximum(1, b // s) * s)
    return b


class KVPolicyPruner:
    """The interface of :class:`~spatten.models.pruning.CascadePruner` for a KV policy (generation only).

    ``layer_tokens(layer, q, k)`` gets the layer's queries ``(heads, 1, D)`` and every cached key
    ``(kv_heads, n, D)`` (Quest needs them); ``update`` accumulates what the policy keeps as state.
    Heads are never pruned.
    """

    def __init__(self, pruning: Any, layers: int, heads: int, max_tokens: int) -> None:
        self.pruning = pruning
        self.layers, self.heads, self.max_tokens = int(layers), int(heads), int(max_tokens)
        self.n = 0
        self.step = -1
        self.last_token_topk = -1
        self.last_head_topk = -1

    def begin_step(self, n_tokens: int) -> None:
        """Start a decode step with ``n_tokens`` cached (the newest last)."""
        if not isinstance(n_tokens, int | np.integer) or not max(1, self.n) <= n_tokens <= self.max_tokens:
            raise ValueError(
                f"n_tokens = {n_tokens!r} is outside the allowed range {max(1, self.n)}..{self.max_tokens}"
            )
        self.n = int(n_tokens)
        self.step += 1

    def layer_heads(self, layer: int) -> np.ndarray:
        """Every head (KV policies prune none)."""
        return np.arange(self.heads)

    def layer_tokens(
        self, layer: int, q: np.ndarray | None = None, k: np.ndarray | None = None
    ) -> np.ndarray:
        raise NotImplementedError

    def update(self, tokens: np.ndarray, heads: np.ndarray, probs: np.ndarray, out: np.ndarray) -> None:
        """Nothing to accumulate (H2O overrides)."""


class StreamingPruner(KVPolicyPruner):
    """StreamingLLM: the attention sinks and the most recent tokens."""

    def layer_tokens(
        self, layer: int, q: np.ndarray | None = None, k: np.ndarray | None = None
    ) -> np.ndarray:
        n = self.n
        b = int(policy_keys(self.pruning, n))
        sinks = min(self.pruning.sink_tokens, b - 1)
        return np.concatenate([np.arange(sinks), np.arange(n - (b - sinks), n)]).astype(np.int64)


class H2OPruner(KVPolicyPruner):
    """H2O: recent tokens plus heavy hitters by attention accumulated per layer; evicted tokens stay out."""

    def __init__(self, pruning: Any, layers: int, heads: int, max_tokens: int) -> None:
        super().__init__(pruning, layers, heads, max_tokens)
        self.score = np.zeros((self.layers, self.max_tokens))
        self.alive = np.zeros((self.layers, self.max_tokens), dtype=bool)
        self._layer = 0

    def layer_tokens(
        self, layer: int, q: np.ndarray | None = None, k: np.ndarray | None = None
    ) -> np.ndarray:
        n = self.n
        self._layer = layer
        alive = self.alive[layer]
        alive[n - 1] = True  # the newest token enters the cache
        idx = np.flatnonzero(alive[:n])
        b = int(policy_keys(self.pruning, n))
        self.last_token_topk = -1
        if idx.size > b:
            recent = min(b, math.ceil(self.pruning.recent_fraction * b))
            old, new = idx[: idx.size - recent], idx[idx.size - recent :]
            heavy = b - recent
            # the heavy hitters: largest accumulated attention, lowest position first on ties
            order = np.lexsort((old, -self.score[layer, old]))
            keep = np.sort(old[order[:heavy]])
            idx = np.concatenate([keep, new])
            alive[:n] = False
            alive[idx] = True
            self.last_token_topk = b
        return idx

    def update(self, tokens: np.ndarray, heads: np.ndarray, probs: np.ndarray, out: np.ndarray) -> None:
        """Add each kept token's attention (summed over heads and queries) to the score of the layer
        :meth:`layer_tokens` last chose for."""
        self.score[self._layer, tokens] += np.asarray(probs, dtype=np.float64).sum(axis=(0, 1))


class QuestPruner(KVPolicyPruner):
    """Quest: the pages whose key bounds promise the largest scores, the current page always."""

    def layer_tokens(
        self, layer: int, q: np.ndarray | None = None, k: np.ndarray | None = None
    ) -> np.ndarray:
        if q is None or k is None:
            raise ValueError("quest chooses pages from the layer's queries and keys: pass q and k")
        n = self.n
        s = self.pruning.page_size
        b = int(policy_keys(self.pruning, n))
        pages = -(-n // s)
        keep_pages = max(1, b // s) if b < n else pages
        self.last_token_topk = -1
        if keep_pages >= pages:
            return np.arange(n, dtype=np.int64)
        kv = np.asarray(k, dtype=np.float64)[:, :n]
        pad = pages * s - n
        if pad:  # the partial last page: its real keys only
            edge = np.repeat(kv[:, -1:], pad, axis=1)
            kv = np.concatenate([kv, edge], axis=1)
        paged = kv.reshape(kv.shape[0], pages, s, kv.shape[2])
        kmin, kmax = paged.min(axis=2), paged.max(axis=2)  # (kv_heads, pages, D)
        qh = np.asarray(q, dtype=np.float64)[:, -1]  # (heads, D)
        g = qh.shape[0] // kv.shape[0]
        qg = qh.reshape(kv.shape[0], g, -1)
        bound = np.maximum(qg[:, :, None] * kmin[:, None], qg[:, :, None] * kmax[:, None]).sum(axis=-1)
        score = bound.sum(axis=(0, 1))  # (pages,): all heads share the choice
        score[-1] = np.inf  # the current page
        order = np.lexsort((np.arange(pages), -score))
        chosen = np.sort(order[:keep_pages])
        self.last_token_topk = keep_pages
        tok = (chosen[:, None] * s + np.arange(s)[None, :]).reshape(-1)
        return tok[tok < n].astype(np.int64)


def make_pruner(pruning: Any, layers: int, heads: int, max_tokens: int) -> KVPolicyPruner:
    """The golden pruner of ``pruning.policy`` (not ``spatten``)."""
    cls = {"h2o": H2OPruner, "streamingllm": StreamingPruner, "quest": QuestPruner}.get(pruning.policy)
    if cls is None:
        raise ValueError(
            f"pruning.policy = {pruning.policy!r} has no KV-policy pruner (spatten: CascadePruner)"
        )
    return cls(pruning, layers, heads, max_tokens)
