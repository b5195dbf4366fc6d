"""What a pruning and quantization policy costs in model quality, measured on real models and real text.

Encoder (MiniLM-L6, :func:`encoder_accuracy`). Each window is the first ``window_len`` WordPiece tokens of
one document (``[CLS]`` and ``[SEP]`` added). Metrics:

* ``cosine_mean``: cosine similarity of the SpAtten sentence embedding to the dense float32 one, averaged
  over windows (1.0 is no change);
* ``task_accuracy`` / ``dense_task_accuracy``: a linear probe of the Brown corpus's two top-level classes,
  informative prose (genres A-J: news ... learned) against imaginative prose (K-R: fiction ... humor), from
  the embeddings. The probe (ridge regression on standardized embeddings, lambda 1) is trained on the even
  pairs of windows (one of each class) and tested on the odd pairs (other documents), separately for the
  dense and the SpAtten embeddings; the score is the
  balanced accuracy (mean of the two classes' recalls, chance 0.5). It needs the Brown corpus (its genres).

Decoder (SmolLM2, :func:`decoder_accuracy`): perplexity, protocol in ``models/smollm2.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "IMAGINATIVE",
    "EncoderAccuracy",
    "DecoderAccuracy",
    "encoder_windows",
    "encoder_accuracy",
    "decoder_accuracy",
    "WINDOW_BATCH",
    "probe_balanced_accuracy",
]

#: Brown genres of imaginative prose (categories K-R); the others are informative prose (A-J).
IMAGINATIVE = frozenset({"fiction", "mystery", "science_fiction", "adventure", "romance", "humor"})


@dataclass(frozen=True)
class EncoderAccuracy:
    """Encoder metrics of one policy (module docstring) and the run's trace.

    Attributes
    ----------
    cosine : numpy.ndarray
        Per-window cosine of the SpAtten embedding to the dense one.
    task_accuracy, dense_task_accuracy : float or None
        Balanced accuracy of the genre probe (None without genre labels).
    trace : pandas.DataFrame
        All windows' request traces, one after another (``step`` is the window).
    windows : list of dict
        Per window: name, tokens, live tokens at the end, cosine.
    """

    cosine: np.ndarray
    task_accuracy: float | None
    dense_task_accuracy: float | None
    trace: Any
    windows: list[dict] = field(default_factory=list)

    @property
    def cosine_mean(self) -> float:
        """Mean cosine over windows."""
        return float(self.cosine.mean())


def encoder_windows(
    text: str | None, window_len: int, windows: int, model: Any
) -> list[tuple[str, Any, str]]:
    """The encoder's input windows: ``(name, label, text)`` with at most ``window_len`` WordPiece tokens.

    ``text = None``: Brown documents, alternating informative and imaginative ones (so the probe sees both
    classes in training and in test), each cut to its first ``window_len`` tokens; the label is the genre.
    A text of your own: consecutive windows of ``window_len`` tokens, no labels (no probe).
    """
    from spatten.models import brown

    limit = model.config.max_positions - 2
    if isinstance(window_len, bool) or not isinstance(window_len, int) or not 1 <= window_len <= limit:
        raise ValueError(f"window_len = {window_len!r} is outside the allowed range 1..{limit}")
    if isinstance(windows, bool) or not isinstance(windows, int) or windows < 1:
        raise ValueError(f"windows = {windows!r} must be an integer >= 1")
    tok = model.tokenizer
    if text is not None:
        ids = tok.encode(text).ids[1:-1]
        if len(ids) < windows * window_len:
            raise ValueError(
                f"the text has {len(ids)} tokens: too short for {windows} windows of {window_len}"
            )
        cut = [ids[w * window_len : (w + 1) * window_len] for w in range(windows)]
        return [(f"window {w}", None, tok.decode(c)) for w, c in enumerate(cut)]
    docs = brown.documents()
    info = [d for d in docs if d.genre not in IMAGINATIVE]
    imag = [d for d in docs if d.genre in IMAGINATIVE]
    order = [d for pair in zip(info, imag, strict=False) for d in pair]
    if not 4 <= windows <= len(order):
        raise ValueError(
            f"windows = {windows} is outside the allowed range 4..{len(order)} for the Brown genre probe "
            "(two training and two test documents at least)"
        )
    return [
        (d.name, d.genre, tok.decode(tok.encode(d.text).ids[1 : window_len + 1])) for d in order[:windows]
    ]


def encoder_accuracy(
    workload: Any, inputs: list[tuple[str, Any, str]], mode: str = "fixed"
) -> EncoderAccuracy:
    """Run every window dense and with SpAtten inside MiniLM; cosine per window and the genre probe.

    Parameters
    ----------
    workload : Workload
        MiniLM's shape with the policy under test.
    inputs : list of (name, label, text)
        From :func:`encoder_windows`.
    mode : {"fixed", "float"}
        SpAtten datapath (bit-accurate fixed point or float64).
    """
    import pandas as pd
    from spatten.models.real_qkv import encode, encode_spatten, load_minilm
    from tqdm import tqdm

    model = load_minilm()
    dense, ours, rows, traces = [], [], [], []
    for i, (name, label, text) in enumerate(tqdm(inputs, desc="MiniLM windows", unit="window", leave=False)):
        e = encode(text, model).hidden[-1].mean(axis=0, dtype=np.float64)
        e /= np.linalg.norm(e)
        run = encode_spatten(text, workload, model, mode)
        dense.append(e)
        ours.append(run.embedding)
        t = run.trace.copy()
        t["step"] = i
        traces.append(t)
        rows.append({"window": name, "label": label, "tokens": int(t["seq_len"].iloc[0]),
                     "live_tokens": int(run.live.size), "cosine": float(e @ run.embedding)})  # fmt: skip
    cos = np.array([r["cosine"] for r in rows])
    labels = [lab for _, lab, _ in inputs]
    task = dense_task = None
    if all(lab is not None for lab in labels):
        y = np.array([lab in IMAGINATIVE for lab in labels])
        dense_task = probe_balanced_accuracy(np.array(dense), y)
        task = probe_balanced_accuracy(np.array(ours), y)
    return EncoderAccuracy(cos, task, dense_task, pd.concat(traces, ignore_index=True), rows)


def probe_balanced_accuracy(emb: np.ndarray, labels: np.ndarray, ridge: float = 1.0) -> float:
    """Balanced accuracy of a ridge probe trained on the even pairs of rows and tested on the odd pairs.

    Parameters
    ----------
    emb : numpy.ndarray, shape (windows, dim)
        Embeddings.
    labels : numpy.ndarray of bool, shape (windows,)
        Class of each window.
    ridge : float
        L2 penalty of the least-squares fit.
    """
    x = np.asarray(emb, dtype=np.float64)
    y = np.asarray(labels, dtype=bool)
    # windows come in (informative, imaginative) pairs: even pairs train, odd pairs test
    pair = np.arange(len(y)) // 2
    tr, te = np.flatnonzero(pair % 2 == 0), np.flatnonzero(pair % 2 == 1)
    if len(set(y[tr])) < 2 or len(set(y[te])) < 2:
        raise ValueError("the probe needs both classes among the training and the test windows")
    mu, sd = x[tr].mean(axis=0), x[tr].std(axis=0) + 1e-9
    a = np.hstack([(x - mu) / sd, np.ones((len(y), 1))])
    t = np.where(y, 1.0, -1.0)
    reg = ridge * np.eye(a.shape[1])
    reg[-1, -1] = 0.0  # no penalty on the bias
    coef = np.linalg.solve(a[tr].T @ a[tr] + reg, a[tr].T @ t[tr])
    pred = a[te] @ coef > 0
    return float(np.mean([np.mean(pred[y[te] == c] == c) for c in (False, True)]))


@dataclass(frozen=True)
class DecoderAccuracy:
    """Decoder perplexity of one policy against dense on the same windows, and the run's trace.

    Attributes
    ----------
    perplexity, dense_perplexity : float
        ``exp(mean NLL)`` over every predicted token of every window.
    window_nll, dense_window_nll : numpy.ndarray
        Mean NLL per window.
    trace : pandas.DataFrame
        All windows' traces, one after another (``step`` counts generation steps over all windows).
    """

    perplexity: float
    dense_perplexity: float
    window_nll: np.ndarray
    dense_window_nll: np.ndarray
    trace: Any


WINDOW_BATCH = 4
"""Decoder windows run in lockstep: a one-token step reads all weights, so 4 windows cost about 2 (measured
on the 2-core machine: 90 ms against 47 ms per step for all 30 layers' products and the LM head)."""


def decoder_accuracy(
    workload: Any,
    text: str,
    window_len: int,
    windows: int,
    datapath: str = "fixed",
    mode: str = "generation",
    *,
    workers: int = 1,
) -> DecoderAccuracy:
    """SmolLM2 perplexity with SpAtten inside every layer, against the dense model on the same windows.

    Protocol (``models/smollm2.py``): window ``w`` is ``ids[w*T:(w+1)*T]`` with BOS prepended; every window
    token is predicted. Every layer's attention is :class:`~spatten.models.inloop.SpAttenAttention` (cascade
    token and head pruning, local value pruning, progressive quantization with LSB refetch).

    * ``mode="generation"`` (SpAtten's GPT-2 setting): the window runs one token per step against the K/V
      cache, importance accumulated across layers and steps, so every token is predicted from the pruned,
      quantized cache of the tokens before it. The windows run in lockstep, :data:`WINDOW_BATCH` at a time
      (:func:`~spatten.models.smollm2.forward_batch`: one weight product per step for the batch). Trace
      ``step`` counts the steps over all windows.
    * ``mode="prefill"`` (pruning inside the prompt, SpAtten's BERT setting on a causal model): the whole
      window in one pass with every query at once (``SpAttenAttention(..., causal=True)``); a token pruned
      at a layer stops being a key and value of the later layers but is still predicted from. One window
      per batch; trace ``step`` is the window.

    The batches spread over ``workers`` Dask worker processes when ``workers > 1``; the result does not
    depend on ``workers``. The dense reference is the model's own float32 attention (prefill of the whole
    window).
    """
    import pandas as pd
    from spatten.models import smollm2

    if mode not in ("prefill", "generation"):
        raise ValueError(f"mode {mode!r} must be 'prefill' or 'generation'")
    policy = workload.pruning.policy
    if mode == "prefill" and policy != "spatten" and workload.pruning.enabled:
        raise ValueError(f"pruning.policy = {policy} runs on decode steps only: use --mode generation")
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 64:
        raise ValueError(f"workers = {workers!r} is outside the allowed range 1..64")
    if isinstance(window_len, bool) or not isinstance(window_len, int) or window_len < 1:
        raise ValueError(f"window_len = {window_len!r} must be an integer >= 1")
    if isinstance(windows, bool) or not isinstance(windows, int) or windows < 1:
        raise ValueError(f"windows = {windows!r} must be an integer >= 1")
    from spatten.models.limits import GOLDEN_BYTES_PER_SCORE, check_memory

    m = smollm2.load_smollm2()
    # The dense reference's float32 scores (heads x n x n, with the softmax's temporaries, about 12 B each)
    # or a causal prefill's SpAtten scores (float64 codes, masks, probabilities) for one layer at a time
    n = window_len + 1
    per_score = GOLDEN_BYTES_PER_SCORE if mode == "prefill" else 12
    check_memory(f"SmolLM2 on a window of {n:,} tokens ({mode})", per_score * m.config.heads * n * n)
    ids = smollm2.tokenize(text, m, max_tokens=windows * window_len)
    if ids.size < windows * window_len:
        raise ValueError(f"the text has {ids.size} tokens: too short for {windows} windows of {window_len}")
    if window_len + 1 > m.config.context_length:
        raise ValueError(
            f"window_len = {window_len} + BOS exceeds the context length {m.config.context_length}"
        )
    seqs = np.array(
        [
            np.concatenate([[m.config.bos_id], ids[w * window_len : (w + 1) * window_len]])
            for w in range(windows)
        ]
    )
    # the dense model on the same windows (smollm2.perplexity's protocol, without tokenizing the whole text)
    dense_nll = np.array([smollm2._token_nll(smollm2.forward(s, m)[:-1], s[1:]) for s in seqs])
    # Lockstep groups of WINDOW_BATCH windows, the last one holding the rest: a window's float32 arithmetic
    # depends on its group's size (BLAS sums a product of one row, a matrix-vector product, in another order
    # than a product of several), never on the other windows' values or on `workers`.
    size = WINDOW_BATCH if mode == "generation" else 1
    batches = [seqs[i : i + size] for i in range(0, windows, size)]
    run = _generation_windows if mode == "generation" else _prefill_windows
    if workers == 1 or len(batches) == 1:
        parts = [run(workload, b, datapath) for b in batches]
    else:
        parts = _on_dask(run, workload, batches, datapath, workers)
    nll = np.concatenate([p[0] for p in parts])
    traces = [tr for p in parts for tr in p[1]]
    for w, tr in enumerate(traces):
        tr["step"] += w * (window_len if mode == "generation" else 1)
    return DecoderAccuracy(
        float(np.exp(nll.mean())),
        float(np.exp(dense_nll.mean())),
        nll.mean(axis=1),
        dense_nll.mean(axis=1),
        pd.concat(traces, ignore_index=True),
    )


def _generation_windows(
    workload: Any, seqs: np.ndarray, datapath: str, threads: int | None = None
) -> tuple[np.ndarray, list]:
    """Per-token NLL ``(windows, T)`` and each window's trace, the windows decoded in lockstep.

    ``threads``: BLAS threads of a Dask worker (the parent's setting does not reach its processes). The
    logits never feed back (the next token is the text's), so the LM head runs once over every step's final
    hidden state after the last step instead of once per step.
    """
    from spatten.models import smollm2
    from spatten.models.inloop import SpAttenAttention
    from tqdm import tqdm

    if threads is not None:
        smollm2.DECODE_THREADS = smollm2.BLAS_THREADS = threads
    m = smollm2.load_smollm2()
    nb, n = seqs.shape
    attns = [SpAttenAttention(workload, n, generation=True, mode=datapath) for _ in range(nb)]
    caches = [smollm2.KVCache(m.config, capacity=n) for _ in range(nb)]

    def adapter(attn: SpAttenAttention):
        def attend(q: np.ndarray, k: np.ndarray, v: np.ndarray, layer: int) -> np.ndarray:
            if layer == 0:
                attn.begin_step(k.shape[1])
            live = attn.begin_layer(layer, q, k)
            return attn.attend(layer, q, k[:, live], v[:, live], np.array([k.shape[1] - 1]))

        return attend

    fns = [adapter(a) for a in attns]
    hidden = np.empty((nb, n - 1, m.config.hidden), dtype=np.float32)
    for t in tqdm(range(n - 1), desc=f"SmolLM2 batch of {nb} windows", unit="tok", leave=False):
        out = smollm2.forward_batch(
            seqs[:, t : t + 1], m, caches=caches, attentions=fns, last_only=True, head=False
        )
        hidden[:, t] = out[:, -1]
    nll = np.empty((nb, n - 1))
    with smollm2._blas().limit(limits=smollm2.BLAS_THREADS, user_api="blas"):
        for b in range(nb):
            for t0 in range(0, n - 1, 128):  # 128 rows of 49,152 logits at a time: 25 MB
                rows = hidden[b, t0 : t0 + 128]
                nll[b, t0 : t0 + rows.shape[0]] = smollm2._token_nll(
                    rows @ m.lm_head.T, seqs[b, t0 + 1 : t0 + 1 + rows.shape[0]]
                )
    return nll, [a.trace() for a in attns]


def _prefill_windows(
    workload: Any, seqs: np.ndarray, datapath: str, threads: int | None = None
) -> tuple[np.ndarray, list]:
    """Per-token NLL ``(windows, T)`` and each window's trace, each window in one causal pass.

    ``threads``: BLAS threads of a Dask worker (the parent's setting does not reach its processes).
    """
    from spatten.models import smollm2
    from spatten.models.inloop import SpAttenAttention
    from tqdm import tqdm

    if threads is not None:
        smollm2.DECODE_THREADS = smollm2.BLAS_THREADS = threads
    m = smollm2.load_smollm2()
    nw, n = seqs.shape
    nll, traces = np.empty((nw, n - 1)), []
    for w in tqdm(range(nw), desc="SmolLM2 prefill", unit="window", leave=False, disable=nw == 1):
        attn = SpAttenAttention(workload, n, generation=False, causal=True, mode=datapath)
        attn.begin_step(n)

        def attend(q: np.ndarray, k: np.ndarray, v: np.ndarray, layer: int, attn=attn) -> np.ndarray:
            live = attn.begin_layer(layer)
            return attn.attend(layer, q, k[:, live], v[:, live], np.arange(n))

        logits = smollm2.forward(seqs[w], m, attention=attend)
        nll[w] = smollm2._token_nll(logits[:-1], seqs[w, 1:])
        traces.append(attn.trace())
    return nll, traces


def _on_dask(
    run: Any, workload: Any, batches: list[np.ndarray], datapath: str, workers: int
) -> list[tuple[np.ndarray, list]]:
    """``run`` (a ``_*_windows`` function) of each batch on ``workers`` Dask processes (one BLAS thread
    each)."""
    import logging

    import dask
    from dask.distributed import Client, LocalCluster

    # as in sim/sweep/runner.py: glibc's default trim threshold (Dask's 64 KiB one slows numpy down)
    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}))
    environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}):
        cluster = LocalCluster(n_workers=min(workers, len(batches)), threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.CRITICAL)  # fmt: skip
    with cluster, Client(cluster) as client:
        from spatten.models import smollm2

        threads = smollm2.DECODE_THREADS
        futures = [client.submit(run, workload, b, datapath, threads, pure=False) for b in batches]
        return client.gather(futures)
