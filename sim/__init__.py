"""Cycle-approximate performance model of SpAtten: DRAM, pipeline stages, baselines."""
