"""Where every cosim case builds: one folder per parameter set under <repo>/build/cosim/ (kept)."""

from pathlib import Path

#: Where every cosim case builds, whatever folder pytest runs from.
BUILD_ROOT = Path(__file__).resolve().parents[2] / "build" / "cosim"
