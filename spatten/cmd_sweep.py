"""`spatten sweep SWEEP.yaml`: a design-space sweep on Dask that resumes after a crash and ends in plots.

The sweep file is validated and expanded completely before anything runs or is written (a bad file:
one line naming the key, exit 2, no output). Finished points land one by one in ``OUT/points``; a rerun
simulates only the missing ones. At the end ``OUT`` receives ``results.parquet`` (every point in
expansion order), ``summary.md``/``summary.csv``, ``sensitivity.csv``, the Pareto and sensitivity
figures and a copy of the sweep file, all moved into place only once complete.

A sweep file with an ``accuracy:`` block runs real models (MiniLM, SmolLM2) on real text: each point also
carries the quality metric, its cycles, DRAM and energy come from that run's own trace, and the report adds
quality against DRAM reduction, latency and energy with the Pareto-optimal points (``sim.sweep.real``).

Everything the run needs is checked before the output folder is made: the sweep file (its baseline among
them) and, with ``--scheduler``, the address (form ``tcp://host:port``) and that its port accepts a
connection. A run that fails before any point is stored removes the folders it made.

Stored points are keyed by their full config (and baseline), not by the simulator's code: after changing
the simulator, sweep into a fresh ``--out``. Files are renamed into place but not fsynced, so they survive
a killed process, not a power cut.
"""

from __future__ import annotations

import argparse
import shutil
import socket
from pathlib import Path
from urllib.parse import urlsplit

from spatten.output import atomic_dir
from spatten.sim.sweep.spec import SweepSpec, load_spec

#: Dask address schemes this command can reach (``inproc://`` lives inside one process, ``ucx://`` is not
#: installed).
SCHEDULER_SCHEMES = ("tcp", "tls", "ws", "wss")
#: Seconds the scheduler's port has to accept a connection before the sweep starts.
PROBE_TIMEOUT = 3.0


def _cut(value: str, limit: int = 40) -> str:
    shown = repr(value)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def check_scheduler(address: str, connect: bool = True, timeout: float = PROBE_TIMEOUT) -> tuple[str, int]:
    """Parse a Dask scheduler address and, with ``connect``, check its port accepts a connection.

    Parameters
    ----------
    address : str
        ``tcp://host:port`` (or ``tls://``, ``ws://``, ``wss://``; a bare ``host:port`` is TCP).
    connect : bool
        Also open (and close) a TCP connection to ``host:port``.
    timeout : float
        Seconds to wait for the connection.

    Returns
    -------
    (str, int)
        The host and the port.

    Raises
    ------
    ValueError
        One line naming ``--scheduler``, the address (cut) and the allowed form, or why it cannot be reached.
    """
    shown = _cut(address)
    form = f"allowed: {'|'.join(SCHEDULER_SCHEMES)}://host:port with port 1..65535"
    scheme, sep, rest = address.partition("://")
    if not sep:
        scheme, rest = "tcp", address
    if scheme not in SCHEDULER_SCHEMES:
        raise ValueError(f"--scheduler {shown}: scheme {_cut(scheme, 20)} is not supported ({form})")
    try:
        parts = urlsplit(f"//{rest}")
        host, port = parts.hostname, parts.port
    except ValueError:
        host = port = None
    if not host or port is None or not 1 <= port <= 65535 or parts.path or parts.query or parts.fragment:
        raise ValueError(f"--scheduler {shown} is not a scheduler address ({form})")
    if connect:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
        except OSError as e:
            why = e.strerror or str(e) or type(e).__name__
            raise ValueError(f"--scheduler {shown}: cannot connect to {host}:{port} ({why})") from None
    return host, port


def _first_missing(path: Path) -> Path | None:
    """The topmost of ``path`` and its parents that does not exist yet (None if ``path`` exists)."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    return missing[-1] if missing else None


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep",
        help="run a design-space sweep (YAML) on Dask: resumable Parquet results, Pareto and sensitivity "
        "plots",
    )
    p.add_argument("spec", metavar="SWEEP.yaml", help="sweep file: workloads and the fields to sweep")
    p.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes (default 2)")
    p.add_argument(
        "--scheduler", metavar="ADDRESS", help="use a running Dask scheduler, e.g. tcp://host:8786"
    )
    p.add_argument("--out", metavar="DIR", help="output folder (default sweeps/<name>)")
    p.add_argument("--dry-run", action="store_true", help="print the points and their count; run nothing")
    p.add_argument("--threads", action="store_true", help="LocalCluster workers as threads, not processes")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _print_points(spec: SweepSpec, stored: set[str]) -> None:
    if spec.accuracy is not None:
        for w in spec.workloads:
            print(f"accuracy: {spec.accuracy.describe(w)}")
    frame = spec.points_frame().drop(columns=["multipliers"])
    frame["stored"] = frame["point_id"].isin(stored).map({True: "yes", False: ""})
    print(frame.to_string(index=False))
    n_unique = len(spec.unique_points())
    n_stored = sum(p.point_id in stored for p in spec.unique_points())
    print(f"{len(spec.points)} points ({n_unique} distinct configs, {n_stored} already stored)")
    if spec.accuracy is not None:
        todo = [p.workload for p in spec.unique_points() if p.point_id not in stored]
        policies = {(w.model, w.pruning, w.quant) for w in todo}
        print(f"at most {len(policies)} model runs (one per policy; runs cached earlier are reused)")


def run(args: argparse.Namespace) -> int:
    from spatten.sim.sweep.runner import MAX_WORKERS, run_sweep
    from spatten.sim.sweep.store import PointStore

    if not 1 <= args.workers <= MAX_WORKERS:
        raise ValueError(f"--workers = {args.workers} is outside the allowed range 1..{MAX_WORKERS}")
    spec = load_spec(args.spec)
    out = Path(args.out) if args.out else Path("sweeps") / spec.name
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {str(out)!r} exists and is not a folder")
    if args.scheduler is not None:
        check_scheduler(args.scheduler, connect=not args.dry_run)  # the dry run needs no scheduler
    if args.dry_run:
        _print_points(spec, PointStore(out).done_ids())
        return 0

    # Check the output folder can be made before simulating anything (it holds the resumable store).
    created = _first_missing(out)
    with atomic_dir(out):
        pass
    try:
        result = run_sweep(
            spec,
            out,
            workers=args.workers,
            scheduler=args.scheduler,
            processes=not args.threads,
            progress=not args.no_progress,
        )
    except BaseException:
        # Nothing stored yet (the scheduler refused us, the cluster did not start): remove what we made.
        # Stored points are kept, so a rerun resumes from them.
        if created is not None and not PointStore(out).done_ids():
            shutil.rmtree(created, ignore_errors=True)
        raise
    from spatten.reports.sweep_plots import write_report

    with atomic_dir(out) as tmp:
        result.results.to_parquet(tmp / "results.parquet", index=False)
        shutil.copyfile(args.spec, tmp / "sweep.yaml")
        text = write_report(result.results, spec.params, tmp, title=f"sweep {spec.name}")
    print(text, end="")
    rate = result.n_run / result.seconds if result.seconds > 0 else 0.0
    print(
        f"{result.n_points} points ({result.n_unique} distinct): {result.n_run} simulated, "
        f"{result.n_skipped} already stored, {result.n_failed} failed, {result.n_lost} lost; "
        f"{result.seconds:.1f} s ({rate:.1f} points/s); results in {out / 'results.parquet'}"
    )
    if result.n_lost:
        print(f"{result.n_lost} points were lost (worker crash); rerun the same command to finish them")
        return 1
    return 0
