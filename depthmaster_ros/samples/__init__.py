"""Generated fixtures for tests, demos and smoke runs: random-weight checkpoints in the official layout, the sample scene with exact depth, the sample bag."""
