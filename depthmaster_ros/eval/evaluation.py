"""One evaluation run: predict, align, clip, score every image of a dataset, and write the reports.

Per image: the model backend predicts at the dataset's processing resolution and returns the map at the image size
(which is the ground truth's); it is aligned (least squares, section 5.2), clipped to the dataset's depth range and
floored at 1e-6, and scored on the dataset's valid mask. Outputs in ``output``:

* ``per_image.csv``: one row per image with every metric and the alignment's scale and shift;
* ``summary.json``: the means, the settings and the checkpoint;
* ``results.md``: the table of means, with the paper's Table I numbers beside AbsRel and delta1.

With ``predictions`` set, each prediction is saved as float32 ``.npy`` (the [0, 1] map at the image size) and an
image whose prediction is already there is not predicted again: an interrupted run resumes, and a finished one
can be re-scored with another alignment without the model.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np

from .alignment import align
from .datasets import SPECS, EvalDataset
from .metrics import METRICS, depth_metrics, si_boundary_f1


def prediction_path(folder: Path, sample_name: str) -> Path:
    return folder / (sample_name.replace("/", "__").rsplit(".", 1)[0] + ".npy")


def evaluate(backend, dataset: EvalDataset, output: Path, alignment: str = "least_square_sqrt_disp",
             processing_res: int | None = None, predictions: Path | None = None, limit: int | None = None,
             progress=None, checkpoint: str = "") -> dict:
    spec = dataset.spec
    res = spec.processing_res if processing_res is None else processing_res
    output.mkdir(parents=True, exist_ok=True)
    if predictions is not None:
        predictions.mkdir(parents=True, exist_ok=True)
    count = len(dataset) if limit is None else min(limit, len(dataset))
    names = list(METRICS) + (["boundary_f1"] if spec.boundary_f1 else [])
    rows = []
    predicted = 0
    for index in range(count):
        sample = dataset.load(index)
        saved = prediction_path(predictions, sample.name) if predictions is not None else None
        if saved is not None and saved.is_file():
            relative = np.load(saved)
            if relative.shape != sample.depth.shape:
                raise ValueError(f"saved prediction {saved} has shape {relative.shape}, the image {sample.depth.shape}")
        else:
            if backend is None:
                raise ValueError(f"no saved prediction for {sample.name} and no model to predict it")
            relative = backend.infer([sample.rgb], res)[0].cpu().numpy()
            predicted += 1
            if saved is not None:
                np.save(saved, relative.astype(np.float32))
        depth, scale, shift = align(relative, sample.depth, sample.valid, alignment)
        depth = np.maximum(np.clip(depth, spec.min_depth, spec.max_depth), 1e-6)
        scores = depth_metrics(depth, sample.depth, sample.valid)
        if spec.boundary_f1:
            scores["boundary_f1"] = si_boundary_f1(depth, sample.depth, sample.valid)
        rows.append({"index": index, "image": sample.name, **scores, "scale": scale, "shift": shift})
        if progress is not None:
            progress.update(1)

    means = {name: float(np.mean([row[name] for row in rows])) for name in names}
    with open(output / "per_image.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["index", "image", *names, "scale", "shift"])
        writer.writeheader()
        writer.writerows(rows)
    summary = {"dataset": spec.name, "images": len(rows), "alignment": alignment, "processing_res": res,
               "checkpoint": checkpoint, "predicted_now": predicted, "metrics": means,
               "paper_table_1": None if spec.paper is None else {"abs_rel_percent": spec.paper[0],
                                                                 "delta1_percent": spec.paper[1]}}
    (output / "summary.json").write_text(json.dumps(summary, indent=2))
    (output / "results.md").write_text(results_table(spec.name, means, len(rows), alignment, res))
    return summary


def results_table(name: str, means: dict, images: int, alignment: str, res: int) -> str:
    spec = SPECS[name]
    lines = [f"# {name}: {images} images, alignment {alignment}, processing_res {res}", "",
             "| metric | this run | paper (Table I; boundary F1: Table VI) |", "|---|---|---|"]
    paper = {"abs_rel": spec.paper[0], "delta1": spec.paper[1]} if spec.paper else {}
    for metric, value in means.items():
        shown = f"{value * 100:.2f} %" if metric in ("abs_rel", "delta1", "delta2", "delta3") else f"{value:.4f}"
        reference = f"{paper[metric]:.1f} %" if metric in paper else ("0.337" if metric == "boundary_f1" else "")
        lines.append(f"| {metric} | {shown} | {reference} |")
    if not math.isfinite(sum(means.values())):
        lines.append("\nSome metrics are not finite: check the predictions and the dataset's masks.")
    return "\n".join(lines) + "\n"
