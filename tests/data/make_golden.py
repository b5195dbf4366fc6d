"""Regenerate the regression goldens: `python tests/data/make_golden.py` (review the diff before committing).

These pin the simulator's current behaviour so that an unintended change shows up as a test failure;
they are regression references, not independent correctness checks (those live in tests/sim).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from models.config import workload_preset

HERE = Path(__file__).parent


def golden_workloads() -> dict:
    """The small workloads the goldens are made of."""
    g = workload_preset("gpt2-small")
    g = dataclasses.replace(g, model=dataclasses.replace(g.model, gen_tokens=4))
    return {"gpt2-small-gen4": g, "bert-base-len24": workload_preset("bert-base", prompt_len=24)}


def main() -> None:
    from models.workload import shape_trace
    from sim.api import simulate

    for name, w in golden_workloads().items():
        tr = shape_trace(w)
        tr.to_csv(HERE / f"golden_{name}.csv", index=False)
        s = simulate(w, tr).summary
        (HERE / f"golden_{name}.json").write_text(json.dumps(s, indent=1, sort_keys=True) + "\n")
        print("wrote", name)


if __name__ == "__main__":
    main()
