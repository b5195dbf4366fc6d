"""cocotb testbenches (code that runs inside the simulator) and the runner wrapper that builds them."""
