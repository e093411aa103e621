"""Metric scale for DepthMaster's relative output: the robust line fit, its tracking over time, and the scale
sources (one module each in ``sources/``, registered in one place) that turn what a robot measures into pairs."""
