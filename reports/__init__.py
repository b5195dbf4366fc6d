"""Tables and figures built from simulation results."""
