"""SpAtten inside a model's forward pass: the attention of every layer computed by the golden model.

:class:`SpAttenAttention` is what a real model (``models/real_qkv.py`` MiniLM, ``models/smollm2.py``) calls in
place of its own softmax attention. Per layer it

1. asks the cascade pruner (:class:`~spatten.models.pruning.CascadePruner`) which heads and tokens are
   still alive (:meth:`begin_layer`): the model then computes Q only for live tokens (an encoder drops pruned
   tokens' hidden states from every later layer) and reads only live tokens' K/V;
2. runs the layer through the same cores as :func:`~spatten.models.attention.run_attention`: per-layer
   power-of-two quantization of Q, K (MSB + LSB) and V, progressive quantization with the LSB refetch
   decision per (head, query), local value top-k, the integer output ``sum p_j v_j`` (``mode="fixed"``, the
   bit-accurate datapath) or the float64 equivalent (``mode="float"``);
3. turns the output back into real numbers for the next layer (fixed mode: ``code x 2**-P x`` the V scale;
   pruned heads give zeros), accumulates token and head importance, and records the request trace.

Grouped-query attention follows :mod:`spatten.models.gqa`: K/V heads are shared by their query heads (each
query head decides on its own row), and the trace carries ``kv_head`` and the union of kept values.

Importance accumulates across layers and, for a decoder in generation mode, across steps (one step per
predicted token, the newest token never pruned). Setting ``workload.pruning.enabled = False`` and
``workload.quant.enabled = False`` still runs the fixed-point datapath at ``quant.unquantized_bits``;
the dense float32 reference of a model is its own attention, not this class.
"""

from __future__ import annotations

import numpy as np
from spatten.models.attention import _LayerQuant, softmax_spec, trace_frame
from spatten.models.config import Workload
from spatten.models.gqa import group_size
from spatten.models.pruning import CascadePruner, keep_count

__all__ = ["SpAttenAttention"]


class SpAttenAttention:
    """SpAtten's attention for one model run (one text window), layer by layer and step by step.

    Parameters
    ----------
    workload : Workload
        Model shape (``layers``, ``heads``, ``kv_heads``, ``head_dim``), pruning and quantization policy.
    max_tokens : int
        Longest sequence the run will see.
    generation : bool
        Decoder generation mode: one query per step against the cache, the newest token never pruned.
    mode : {"fixed", "float"}
        Bit-accurate fixed point or float64.
    """

    def __init__(self, workload: Workload, max_tokens: int, *, generation: bool, mode: str = "fixed") -> None:
        if mode not in ("fixed", "float"):
            raise ValueError(f"mode = {mode!r} must be 'fixed' or 'float'")
        m = workload.model
        self.workload = workload
        self.mode = mode
        self.generation = generation
        self.heads, self.head_dim, self.layers = m.heads, m.head_dim, m.layers
        self.group = group_size(m.heads, m.n_kv_heads)
        self.token_schedule = workload.pruning.token_schedule(m.layers)
        self.pruner = CascadePruner(
            m.layers, m.heads, max_tokens, self.token_schedule, workload.pruning.head_schedule(m.layers),
            generation=generation, integer=mode == "fixed", min_keep=workload.pruning.token_min_keep,
        )  # fmt: skip
        self.spec = softmax_spec(m.head_dim)
        self.step = -1
        self.n = 0
        self._heads: np.ndarray | None = None
        self._tokens: np.ndarray | None = None
        names = ("step", "layer", "head", "query", "seq_len", "keys", "values", "refetch", "kv_head")
        self._cols: dict[str, list] = {c: [] for c in (*names, "kv_values", "topk")}
        self._rows = 0

    def begin_step(self, n_tokens: int) -> None:
        """Start a forward pass (encoder, or one decoder step) over ``n_tokens`` tokens."""
        self.pruner.begin_step(n_tokens)
        self.step += 1
        self.n = n_tokens

    def begin_layer(self, layer: int) -> np.ndarray:
        """Live heads and tokens of ``layer``, pruned first when the schedule says so; returns the tokens."""
        self._heads = self.pruner.layer_heads(layer)
        self._tokens = self.pruner.layer_tokens(layer)
        if self.pruner.last_token_topk >= 0 and self._rows:
            self._cols["topk"].append(np.array([self._rows - 1, self.pruner.last_token_topk]))
        return self._tokens

    def attend(self, layer: int, q: np.ndarray, k: np.ndarray, v: np.ndarray, qpos: np.ndarray) -> np.ndarray:
        """SpAtten attention of one layer over the live tokens :meth:`begin_layer` returned.

        Parameters
        ----------
        layer : int
            The layer :meth:`begin_layer` was called for.
        q : numpy.ndarray, shape (heads, queries, head_dim)
            Queries (RoPE applied where the model has it), not scaled by ``1/sqrt(head_dim)``.
        k, v : numpy.ndarray, shape (kv_heads, live tokens, head_dim)
            Keys and values of the live tokens, in the order of :meth:`begin_layer`'s positions.
        qpos : numpy.ndarray of int
            Position of each query (for the trace's ``query`` column).

        Returns
        -------
        numpy.ndarray of float32, shape (heads, queries, head_dim)
            The attention output; zeros for pruned heads.
        """
        heads, tokens = self._heads, self._tokens
        if heads is None or tokens is None:
            raise RuntimeError("begin_layer must be called before attend")
        if k.shape[1] != tokens.size or v.shape != k.shape or q.shape[0] != self.heads:
            raise ValueError(f"q {q.shape}, k {k.shape}, v {v.shape} do not match {tokens.size} live tokens")
        g = self.group
        kh, vh = (np.repeat(x, g, axis=0) if g > 1 else x for x in (k, v))
        lq = _LayerQuant((q, kh, vh), self.workload.quant, self.mode)
        v_ratio = self.workload.pruning.value_ratio
        res = lq.run(heads, None, np.arange(q.shape[1]), self.spec, v_ratio)
        self.pruner.update(tokens, heads, res.probs, res.output)
        out = np.zeros((self.heads, q.shape[1], self.head_dim), dtype=np.float32)
        if self.mode == "fixed":
            out[heads] = res.output * (2.0**-self.spec.out_bits * lq.v_scale)
        else:
            out[heads] = res.output
        self._record(layer, heads, tokens.size, np.asarray(qpos), res.refetch, res.kept)
        self._heads = self._tokens = None
        return out

    def _record(self, layer: int, heads: np.ndarray, n_live: int, qpos: np.ndarray, refetch, kept) -> None:
        hq = heads.size * qpos.size
        kv = heads // self.group
        # union of kept V rows over the live query heads of each K/V head, per query (models/gqa.py rule 3)
        union = np.zeros((heads.size, qpos.size), np.int64)
        for j in np.unique(kv):
            sel = kv == j
            union[sel] = kept[sel].any(axis=0).sum(axis=-1)
        c = self._cols
        c["step"].append(np.full(hq, self.step))
        c["layer"].append(np.full(hq, layer))
        c["head"].append(np.repeat(heads, qpos.size))
        c["query"].append(np.zeros(hq, np.int64) if self.generation else np.tile(qpos, heads.size))
        c["seq_len"].append(np.full(hq, self.n))
        c["keys"].append(np.full(hq, n_live))
        c["values"].append(np.full(hq, keep_count(self.workload.pruning.value_ratio, n_live)))
        c["refetch"].append(np.asarray(refetch).reshape(-1))
        c["kv_head"].append(np.repeat(kv, qpos.size))
        c["kv_values"].append(union.reshape(-1))
        self._rows += hq

    def trace(self):
        """The run's request trace so far (``TRACE_COLUMNS`` plus ``kv_head`` and ``kv_values_fetched``)."""
        tok_pruning = any(r < 1.0 for r in self.token_schedule)
        return trace_frame(self._cols, self.workload.quant, tok_pruning, self.head_dim)
