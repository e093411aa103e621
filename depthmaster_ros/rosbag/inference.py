"""Where an offline run's model passes happen. The run submits each batch of jobs and takes the relative maps
back in order; :class:`LocalInference` runs them at once in this process (depthmaster-bag), the fleet runner's
remote inference sends them to model actors on other processes or machines. Either way the per-stream stages
and the outputs run in the bag's own process, in frame order."""

from __future__ import annotations


class LocalInference:
    """The frame engine's model passes, in this process, when the batch is submitted."""

    done_at_once = True  # a batch's maps are there when submit returns (a remote one: when result() returns)

    def __init__(self, engine):
        self.engine = engine

    def submit(self, jobs):
        return self.engine.infer(jobs)

    def result(self, handle) -> list:
        """Per job, its relative map, or the exception that failed its pass."""
        return handle
