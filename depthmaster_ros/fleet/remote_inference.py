"""Model passes in model actors, for a bag's frame loop (``rosbag/bag_run.py``): each batch goes to the next
actor in turn (every bag starts at a different one), and its relative maps come back through Ray's object store
as float32 arrays. Same interface as :class:`~depthmaster_ros.rosbag.inference.LocalInference`."""

from __future__ import annotations

import numpy as np
import torch

from .model_worker import model_job


class RemoteInference:
    done_at_once = False

    def __init__(self, actors: list, first: int = 0):
        if not actors:
            raise ValueError("no model actor")
        self.actors = actors
        self.turn = first

    def submit(self, jobs):
        actor = self.actors[self.turn % len(self.actors)]
        self.turn += 1
        return actor.infer.remote([model_job(job) for job in jobs])

    def result(self, handle) -> list:
        import ray

        # a copy: the object store's arrays are read-only, and stages may change a frame's map in place
        return [torch.from_numpy(np.array(item)) if isinstance(item, np.ndarray) else item
                for item in ray.get(handle)]
