"""A fleet run on Ray: the model actors, the bags' tasks, the progress bar, stopping, and the summary.

Resources. Every model actor holds ``cpus_per_actor`` CPUs (and ``gpus_per_actor`` GPUs on a GPU cluster: one
actor per GPU); every bag task ``cpus_per_bag`` CPUs, at most ``bags_at_once`` at a time. These are Ray's
scheduling slots, budgeted so that readers and model actors cannot starve each other: the actors must leave
room for at least one bag task, which is checked before anything starts.

Faults. A bag that cannot be read (corrupt, truncated without --salvage, not a bag) is its row in the summary;
the others go on. A model actor that dies is restarted by Ray and its pending batches retried; a bag task whose
worker dies is retried by Ray and resumes from the bag's last checkpoint. A rerun skips the bags whose output
exists and resumes the unfinished ones. A stop (Ctrl-C) asks every bag to checkpoint and return; outputs appear
only when complete, so nothing that looks finished is not.
"""

from __future__ import annotations

import json
import time
from collections import deque
from pathlib import Path

from ..model.backends import BUILTIN_BACKENDS, backend_entry
from ..model.checkpoint_layout import RANDOM_WEIGHTS_WARNING
from ..rosbag.partial_output import SUMMARY_KEY
from .bag_task import BagOptions, process_bag
from .cluster_options import ClusterOptions
from .inputs import FleetInput
from .local_ray import LocalRay
from .model_worker import ModelWorker
from .progress_board import ProgressBoard
from .summary import BagResult, FleetSummary


class FleetError(RuntimeError):
    """The run cannot start (no room for the actors, a model that does not load, ...); the text says why."""


def finished_result(source: Path, output: Path) -> BagResult:
    """The row of a bag finished by an earlier run, from its output's metadata.yaml (where the run's summary is)."""
    import yaml

    result = BagResult(str(source), str(output), status="done earlier")
    try:
        metadata = yaml.safe_load((output / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
        summary = json.loads(metadata["custom_data"][SUMMARY_KEY])
        result.take(summary)
        result.frames_in = summary["frames_done"]
    except (OSError, KeyError, TypeError, ValueError) as exc:
        result.notes.append(f"its output exists but holds no depthmaster_ros summary ({type(exc).__name__})")
    return result


class ModelCluster:
    """Ray (started here, or joined) and the model actors: ``values`` holds the model's parameters (checkpoint,
    device, dtype, backend, cpu_threads), ``max_batch`` frames per model pass (the bag tool's --batch). One
    cluster serves any number of runs with that model."""

    def __init__(self, values: dict, max_batch: int, options: ClusterOptions, log=lambda line: None):
        import ray

        self.options = options
        self.started_ray = False
        self._local = None  # the Ray instance this cluster started on this machine, ended with all its processes
        if not ray.is_initialized():
            if options.address is None:
                self._local = LocalRay(num_cpus=options.num_cpus, include_dashboard=False,
                                       object_store_memory=options.object_store_memory, log_to_driver=False)
            else:
                ray.init(address=options.address, log_to_driver=False)
            self.started_ray = True
        try:
            self._start(values, max_batch, options, log)
        except BaseException:  # a model that does not load, Ctrl-C while the actors start: leave nothing behind
            self.shutdown()
            raise

    def _start(self, values: dict, max_batch: int, options: ClusterOptions, log) -> None:
        import ray

        resources = ray.cluster_resources()
        cpus, gpus = resources.get("CPU", 0.0), resources.get("GPU", 0.0)
        gpus_per_actor = options.gpus_per_actor if options.gpus_per_actor is not None else (1.0 if gpus else 0.0)
        count = options.actors or (max(1, int(gpus // gpus_per_actor)) if gpus_per_actor else 1)
        cpus_per_actor = options.cpus_per_actor if options.cpus_per_actor is not None else (
            1.0 if gpus_per_actor else min(1.0, max(0.25, (cpus - options.cpus_per_bag) / (2 * count))))
        self.bags_at_once = options.bags_at_once or 2 * count
        needed = count * cpus_per_actor + options.cpus_per_bag
        if needed > cpus or count * gpus_per_actor > gpus:
            message = (f"{count} model actors with {cpus_per_actor:g} CPUs and {gpus_per_actor:g} GPUs each, plus "
                       f"{options.cpus_per_bag:g} CPUs for a bag task, need {needed:g} CPUs and "
                       f"{count * gpus_per_actor:g} GPUs; the cluster has {cpus:g} CPUs and {gpus:g} GPUs. Use "
                       "fewer actors or smaller --cpus-per-actor / --cpus-per-bag")
            if options.address is None:
                raise FleetError(message)
            log(f"WARNING: {message} (now; an autoscaling cluster may grow)")
        worker = ray.remote(ModelWorker).options(num_cpus=cpus_per_actor, num_gpus=gpus_per_actor,
                                                 max_restarts=options.retries, max_task_retries=options.retries)
        # A backend registered in this process goes with them, kept in the object store as long as the cluster
        # (else Ray could not restart an actor that died: ray-project/ray#53727).
        self._factory = None if values["backend"] in BUILTIN_BACKENDS else ray.put(backend_entry(values["backend"]))
        if not values["cpu_threads"]:  # torch's default would take every core in every actor
            values = {**values, "cpu_threads": max(1, int(cpus_per_actor))}
        self.actors = [worker.remote(values, max_batch, self._factory) for _ in range(count)]
        try:
            self.description = ray.get([actor.describe.remote() for actor in self.actors])[0]
            self.random_weights = ray.get(self.actors[0].random_weights.remote())
        except Exception as exc:  # noqa: BLE001 - a model that does not load: say why, in the model's words
            raise FleetError(f"the model actors could not load the model: {_cause(exc)}") from exc
        log(f"{count} model actor(s) ({cpus_per_actor:g} CPU, {gpus_per_actor:g} GPU each): {self.description}; "
            f"up to {self.bags_at_once} bags at once ({options.cpus_per_bag:g} CPU each)")
        if self.random_weights:
            log(RANDOM_WEIGHTS_WARNING)

    def shutdown(self) -> None:
        import ray

        for actor in getattr(self, "actors", []):
            ray.kill(actor)
        self.actors = []
        if self._local is not None:
            self._local.shutdown()
            self._local = None
        elif self.started_ray:
            ray.shutdown()  # a cluster joined: only this driver leaves it
        self.started_ray = False


class FleetRun:
    """``inputs`` -> one bag each in ``output_dir``, on ``cluster``'s model actors; ``params``: the parameter
    values; ``log``: lines for the user. ``stop_requested``: every bag stops at its next batch (Ctrl-C)."""

    def __init__(self, cluster: ModelCluster, inputs: list[FleetInput], output_dir: Path, params: dict,
                 options: BagOptions, log=lambda line: None):
        self.cluster, self.inputs, self.output_dir, self.params = cluster, inputs, Path(output_dir), params
        self.options, self.log = options, log
        self.stop_requested = False

    def run(self, progress=None) -> FleetSummary:
        """Every bag, at most ``bags_at_once`` at a time; ``progress`` (a tqdm) gets the frames done."""
        import ray

        began = time.monotonic()
        self.output_dir.mkdir(parents=True, exist_ok=True)
        results: dict[int, BagResult] = {}
        pending = deque()
        for index, item in enumerate(self.inputs):
            output = self.output_dir / item.name
            if output.exists():
                results[index] = finished_result(item.path, output)
            else:
                pending.append(index)
        if len(pending) < len(self.inputs):
            self.log(f"{len(self.inputs) - len(pending)} bags were finished by an earlier run: skipped")
        options = self.cluster.options
        task = ray.remote(process_bag).options(num_cpus=options.cpus_per_bag, max_retries=options.retries)
        board = ray.remote(ProgressBoard).options(num_cpus=0).remote()
        running: dict = {}
        stopping = False
        while pending or running:
            if self.stop_requested and not stopping:
                stopping = True
                board.stop.remote()
                for index in pending:
                    item = self.inputs[index]
                    results[index] = BagResult(str(item.path), str(self.output_dir / item.name))
                pending.clear()
            while pending and len(running) < self.cluster.bags_at_once:
                index = pending.popleft()
                item = self.inputs[index]
                running[task.remote(index, item.path, self.output_dir / item.name, self.params, self.options,
                                    self.cluster.actors, board)] = index
            if not running:
                break
            done, _ = ray.wait(list(running), num_returns=1, timeout=0.5)
            for ref in done:
                index = running.pop(ref)
                results[index] = self._collect(ref, index)
                self.log(_line(results[index]))
            if progress is not None:
                progress.update(ray.get(board.frames_done.remote()) - progress.n)
        if progress is not None:
            progress.update(ray.get(board.frames_done.remote()) - progress.n)
        ray.kill(board)
        return FleetSummary([results[i] for i in range(len(self.inputs))], time.monotonic() - began,
                            len(self.cluster.actors))

    def _collect(self, ref, index: int) -> BagResult:
        import ray

        try:
            return ray.get(ref)
        except Exception as exc:  # noqa: BLE001 - the task's worker died more often than Ray retries
            item = self.inputs[index]
            return BagResult(str(item.path), str(self.output_dir / item.name), status="failed",
                             error=f"its task failed {self.cluster.options.retries + 1} times: {_cause(exc)}")


def _cause(exc: BaseException) -> str:
    """The first line of a Ray error's text (its cause, not Ray's traceback)."""
    text = str(exc).strip()
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("Traceback", "File ", "ray::", "The actor died")):
            return line
    return text.splitlines()[0] if text else type(exc).__name__


def _line(result: BagResult) -> str:
    name = Path(result.output).name
    if result.status == "done":
        return (f"{name}: {result.frames_out} frames served of {result.frames_in}"
                + (f"; salvaged: {result.salvaged}" if result.salvaged else ""))
    if result.status == "interrupted":
        return f"{name}: interrupted ({'; '.join(result.notes[-1:])})"
    return f"{name}: {result.status}: {result.error}"
