"""Amaranth RTL of SpAtten blocks and Verilog generation."""
