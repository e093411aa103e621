"""Where a fleet run's Ray runs and how its work is shared out (no Ray or torch imported here: the command line's
help needs the defaults)."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_CPUS_PER_BAG = 0.25


@dataclass
class ClusterOptions:
    """Where and how big: ``address`` None starts a local Ray instance on this machine (``num_cpus``, default all
    cores); else joins that cluster (``auto``, ``HOST:PORT`` of ``ray start --head``, or ``ray://HOST:10001``).
    None for a size: chosen from the cluster (one actor per GPU, or one on the CPU)."""

    address: str | None = None
    num_cpus: float | None = None
    object_store_memory: int | None = None  # bytes, for a local instance
    actors: int | None = None
    gpus_per_actor: float | None = None
    cpus_per_actor: float | None = None
    cpus_per_bag: float = DEFAULT_CPUS_PER_BAG
    bags_at_once: int | None = None
    retries: int = 3  # Ray's restarts of a dead actor / retries of a dead bag task
