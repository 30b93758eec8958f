"""Plots: training curves, attention maps, positional encodings."""
