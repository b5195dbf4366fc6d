"""Design-space sweeps: a YAML spec expanded into points, run on Dask, stored as an incremental Parquet set.

- :mod:`sim.sweep.spec`: parse and validate a sweep file, expand it into points, hash each point's config.
- :mod:`sim.sweep.store`: the incremental dataset (one Parquet file per finished point, atomic rename).
- :mod:`sim.sweep.runner`: run the missing points on a Dask cluster and consolidate the results.
- :mod:`sim.sweep.real`: a point of an accuracy sweep (a real model on real text, its own trace simulated).
"""

from spatten.sim.sweep.spec import AccuracySpec, SweepPoint, SweepSpec, load_spec, parse_spec, point_hash

__all__ = ["AccuracySpec", "SweepPoint", "SweepSpec", "load_spec", "parse_spec", "point_hash"]
