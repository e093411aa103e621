"""depthmaster-eval: the paper's zero-shot evaluation on KITTI, NYUv2, ETH3D, ScanNet, DIODE (and Hypersim), and
(``--temporal``) the temporal consistency of metric depth (flicker, TAE, metric TAE, AbsRel per temporal mode) on
generated sample sequences or on sequences in the ScanNet layout.

Reads a dataset in the layout of Marigold's evaluation archives (the .tar or its extracted folder, with the
data_split file list), predicts at the dataset's processing resolution, aligns in sqrt-disparity space (or the
other alignments), clips to the dataset range, and writes per-image metrics (CSV), the means (JSON) and a markdown
table beside the paper's Table I.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..model.backends import backend_from_parameters
from ..model.checkpoint_layout import RANDOM_WEIGHTS_WARNING
from .cli_options import add_model_options, model_values, size_list


def main(argv: list[str] | None = None) -> int:
    from ..eval.alignment import ALIGNMENTS
    from ..samples.drifting_sequence import LOOP_SECONDS
    from ..eval.datasets import SPECS
    parser = argparse.ArgumentParser(prog="depthmaster-eval", description=__doc__.split("\n\n")[0])
    add_model_options(parser)
    parser.add_argument("--dataset", choices=sorted(SPECS), help="the dataset (required unless --temporal)")
    parser.add_argument("--data-root", type=Path,
                        help="folder holding the evaluation archives (e.g. kitti/kitti_eigen_split_test.tar) and "
                        "data_split/ file lists, or the dataset's own .tar / folder")
    parser.add_argument("--filenames", type=Path, help="the dataset's file list (default: found under the data root)")
    parser.add_argument("--alignment", default="least_square_sqrt_disp", choices=ALIGNMENTS)
    parser.add_argument("--processing-res", type=int, help="override the dataset's (kitti/nyu/scannet 0, eth3d 756, "
                        "diode 640)")
    parser.add_argument("--save-predictions", type=Path, help="save/reuse predictions (.npy) here: resumable")
    parser.add_argument("--output", type=Path, default=Path("eval_output"), help="reports go here")
    parser.add_argument("--limit", type=int, help="only the first N images (--temporal --data-root: scenes)")
    temporal = parser.add_argument_group("temporal consistency (instead of a dataset)")
    temporal.add_argument("--temporal", action="store_true", help="score flicker, TAE, metric TAE and AbsRel of "
                          "metric depth with temporal_mode off, align and align_smooth in each scale mode, on the "
                          "generated sample sequences (moving camera, static camera, approaching object, scene cut, "
                          "long loop) or, with --data-root, on ScanNet-layout scenes (color/, depth/, pose/, "
                          "intrinsic/; TAE's ScanNet protocol: the first 20 scenes, frames 10-179); writes "
                          "temporal.md and temporal.json")
    temporal.add_argument("--synthetic", action="store_true", help="--temporal without a model: simulated "
                          "drifting predictions (a known answer)")
    temporal.add_argument("--size", type=size_list, default=[(320, 240)], help="--temporal: WIDTHxHEIGHT of the "
                          "sequences (default 320x240)")
    temporal.add_argument("--frames", type=int, default=30, help="--temporal: frames per sequence (default 30)")
    temporal.add_argument("--loop-seconds", type=float, default=LOOP_SECONDS, help="--temporal: the long loop's "
                          f"duration at 10 Hz (default {LOOP_SECONDS:g}; 0: no loop)")
    args = parser.parse_args(argv)
    if args.temporal:
        return temporal_evaluation(args)
    if args.dataset is None or args.data_root is None:
        parser.error("--dataset and --data-root are required (or --temporal)")

    from tqdm import tqdm

    from ..eval.datasets import DatasetError, EvalDataset
    from ..eval.evaluation import evaluate
    from ..model.checkpoint import CheckpointError

    values = model_values(args)
    try:
        dataset = EvalDataset(SPECS[args.dataset], args.data_root, args.filenames)
        backend = backend_from_parameters(values)
    except (DatasetError, CheckpointError, ValueError) as exc:
        print(f"depthmaster-eval: {exc}", file=sys.stderr)
        return 2
    print(f"depthmaster-eval: {backend.describe()}", file=sys.stderr)
    if backend.random_weights:
        print(f"depthmaster-eval: {RANDOM_WEIGHTS_WARNING}", file=sys.stderr)
    total = len(dataset) if args.limit is None else min(args.limit, len(dataset))
    try:
        with tqdm(total=total, desc=args.dataset, unit="image", file=sys.stderr) as progress:
            summary = evaluate(backend, dataset, args.output, args.alignment, args.processing_res,
                               args.save_predictions, args.limit, progress, str(values["checkpoint"]))
    except (DatasetError, ValueError) as exc:
        print(f"depthmaster-eval: {exc}", file=sys.stderr)
        return 2
    finally:
        dataset.close()
    print((args.output / "results.md").read_text())
    print(f"depthmaster-eval: {summary['images']} images; reports in {args.output}", file=sys.stderr)
    return 0


def temporal_evaluation(args) -> int:
    """--temporal: the temporal stage's tables on the sample sequences or ScanNet-layout scenes
    (bench/temporal_report.py)."""
    import json
    from dataclasses import replace

    from ..eval.datasets import DatasetError
    from ..eval.scannet_sequences import scene_folders
    from ..eval.tae import SCANNET_TAE
    from ..model.checkpoint import CheckpointError
    from ..bench.temporal_report import scannet_report, temporal_report

    def fail(message: str) -> int:
        print(f"depthmaster-eval: {message}", file=sys.stderr)
        return 2

    if args.frames < 2:
        return fail(f"--frames must be >= 2, got {args.frames}")
    if args.loop_seconds < 0:
        return fail(f"--loop-seconds must be >= 0, got {args.loop_seconds}")
    if args.limit is not None and args.limit < 1:
        return fail(f"--limit must be >= 1, got {args.limit}")
    if args.data_root is not None and args.synthetic:
        return fail("--synthetic is for the generated sequences; ScanNet-layout scenes (--data-root) need the model")
    protocol = SCANNET_TAE if args.limit is None else replace(SCANNET_TAE, scenes=args.limit)
    if args.data_root is not None:
        try:
            scene_folders(args.data_root, protocol)  # a wrong folder fails before the model loads
        except DatasetError as exc:
            return fail(str(exc))
    backend = None
    if not args.synthetic:
        values = model_values(args)
        try:
            backend = backend_from_parameters(values)
        except (CheckpointError, ValueError) as exc:
            return fail(f"{exc}" + ("" if args.data_root is not None else " (--synthetic runs without a model)"))
        print(f"depthmaster-eval: {backend.describe()}", file=sys.stderr)
        if backend.random_weights:
            print(f"depthmaster-eval: {RANDOM_WEIGHTS_WARNING}", file=sys.stderr)
    if args.data_root is not None:
        try:
            results, text = scannet_report(args.data_root, backend, args.processing_res or 0, protocol,
                                           progress=lambda scene, frames: print(
                                               f"depthmaster-eval: {scene}: {frames} frames", file=sys.stderr))
        except (DatasetError, ValueError) as exc:
            return fail(str(exc))
    else:
        width, height = args.size[0]
        results, text = temporal_report(width, height, args.frames, backend, args.processing_res or 0,
                                        loop_seconds=args.loop_seconds)
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "temporal.md").write_text(text)
    (args.output / "temporal.json").write_text(json.dumps(results, indent=2))
    print(text)
    print(f"depthmaster-eval: reports in {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
