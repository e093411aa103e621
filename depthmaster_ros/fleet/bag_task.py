"""One bag of a fleet run, as a Ray task: depthmaster-bag's run (``rosbag/bag_run.py``, the same frame loop,
pairing, stages, writing and crash-safe output) with its model passes sent to the model actors. Always resumes a
saved run of its output, so a task that Ray retries after its worker died, or a rerun of the fleet, continues
from the bag's last checkpoint. Every failure becomes the bag's row in the summary; nothing here stops the
other bags."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from ..rosbag.bag_run import BagRun, Interrupted
from ..rosbag.io import BagError
from ..rosbag.partial_output import disk_full_message, partial_folder
from ..rosbag.topics import inspect_input
from .progress_board import BoardProgress
from .remote_inference import RemoteInference
from .summary import BagResult


@dataclass(frozen=True)
class BagOptions:
    """depthmaster-bag's options of a run (the same for every bag of a fleet run)."""

    image_topic: str | None = None
    camera_info_topic: str | None = None
    inputs: dict = field(default_factory=dict)  # measurement input name -> topic named by the user
    output_namespace: str | None = None
    storage: str = "mcap"
    batch: int = 1
    copy_input: bool = True
    split_frames: int = 100
    salvage: bool = False
    in_flight: int = 2  # batches a bag keeps at the model actors


def process_bag(index: int, source: Path, output: Path, params: dict, options: BagOptions, actors: list,
                board) -> BagResult:
    import torch

    # One thread: a bag's post-processing is small work per frame, bags run side by side, and more threads than
    # Ray's CPU slots spin against each other (the outputs do not depend on it).
    torch.set_num_threads(1)
    began = time.monotonic()
    result = BagResult(str(source), str(output), status="failed")
    run = None
    try:
        found = inspect_input(source, params["scale_mode"], options.image_topic, options.camera_info_topic,
                              options.inputs, options.salvage)
        result.frames_in = found.frames
        if found.report is not None:
            result.salvaged = found.report.summary()
        run = BagRun(None, params, source, output, found.topics, options.output_namespace, options.storage,
                     options.batch, options.copy_input, split_frames=options.split_frames, salvage=options.salvage,
                     inference=RemoteInference(actors, first=index), in_flight=options.in_flight,
                     log=result.notes.append)
        progress = BoardProgress(board, index, run)
        try:
            run.run(resume="auto", progress=progress)
        finally:
            progress.flush()
        result.status = "done"
    except Interrupted:
        result.status = "interrupted"
        result.notes.append(f"stopped; {run.state.frames_done} frames saved in {partial_folder(output)}")
    except OSError as exc:
        saved = run.saved_frames if run is not None else 0
        result.error = disk_full_message(exc, partial_folder(output), saved, result.frames_in,
                                         "the same depthmaster-fleet command") or f"{type(exc).__name__}: {exc}"
    except (BagError, ValueError) as exc:
        result.error = str(exc)
    except Exception as exc:  # noqa: BLE001 - whatever went wrong, it is this bag's failure, reported
        result.error = f"{type(exc).__name__}: {exc}"
    if run is not None:
        state = run.state
        result.take(state.summary())
        result.frames_this_run = state.frames_done - run.resumed_frames
    result.seconds = time.monotonic() - began
    result.fps = result.frames_this_run / result.seconds if result.seconds > 0 else None
    return result
