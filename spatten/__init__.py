"""The `spatten` command: the package's front door (CLI only; the work lives in models, sim, rtl, ...)."""

__version__ = "0.1.0"
