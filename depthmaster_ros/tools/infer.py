"""depthmaster-infer: DepthMaster on image files.

For each input image writes, into --output:
  NAME_pred.npy      float32 H x W, normalised sqrt-disparity in [0, 1] (1 = near)
  NAME_pred.png      the same as 16-bit PNG (value * 65535, truncated, as the official run.py)
  NAME_colored.png   the same through a colormap, for people
Unreadable files are reported and skipped; the exit code is 1 if any input failed, 2 if nothing could start.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from ..model.backends import backend_from_parameters
from ..model.checkpoint_layout import RANDOM_WEIGHTS_WARNING
from .cli_options import add_colormap, add_model_options, add_processing_res, model_values

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="depthmaster-infer",
        description="Predict relative depth (normalised sqrt-disparity, 1 = near) for image files with DepthMaster.",
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders of images")
    parser.add_argument("--output", "-o", required=True, type=Path, help="folder for the results (created)")
    add_model_options(parser)
    add_processing_res(parser, "the checkpoint's, 768; 0 = native size")
    add_colormap(parser)
    return parser.parse_args(argv)


def collect_inputs(inputs: list[str]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Image files named directly or found (non-recursively, sorted) in named folders; plus (input, reason) for
    inputs that do not exist."""
    files: list[Path] = []
    problems: list[tuple[str, str]] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                problems.append((item, f"folder has no images ({', '.join(sorted(IMAGE_SUFFIXES))})"))
            files += found
        elif path.is_file():
            files.append(path)
        else:
            problems.append((item, "no such file or folder"))
    return files, problems


def output_stems(files: list[Path]) -> list[str]:
    """Output names: the file stem, made unique with a numeric suffix when two inputs share it."""
    seen: dict[str, int] = {}
    stems = []
    for path in files:
        count = seen.get(path.stem, 0)
        seen[path.stem] = count + 1
        stems.append(path.stem if count == 0 else f"{path.stem}_{count + 1}")
    return stems


def read_rgb(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        image.load()
        return np.asarray(image.convert("RGB"))


def write_outputs(prediction: np.ndarray, output: Path, stem: str, colormap: str) -> None:
    from PIL import Image

    from ..colormap import colorize

    np.save(output / f"{stem}_pred.npy", prediction.astype(np.float32))
    Image.fromarray((prediction * 65535.0).astype(np.uint16)).save(output / f"{stem}_pred.png")
    Image.fromarray(colorize(prediction, colormap)).save(output / f"{stem}_colored.png")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from tqdm import tqdm

    from ..model.checkpoint import CheckpointError

    try:
        backend = backend_from_parameters(model_values(args))
    except (CheckpointError, ValueError) as exc:
        print(f"depthmaster-infer: {exc}", file=sys.stderr)
        return 2
    print(f"depthmaster-infer: {backend.describe()}", file=sys.stderr)
    if backend.random_weights:
        print(f"depthmaster-infer: {RANDOM_WEIGHTS_WARNING}", file=sys.stderr)

    files, failures = collect_inputs(args.inputs)
    args.output.mkdir(parents=True, exist_ok=True)
    done = 0
    for path, stem in zip(tqdm(files, desc="depthmaster", unit="image", file=sys.stderr), output_stems(files)):
        try:
            image = read_rgb(path)
        except Exception as exc:  # PIL raises many types for bad files
            failures.append((str(path), f"cannot read image: {exc}"))
            tqdm.write(f"skipping {path}: cannot read image: {exc}", file=sys.stderr)
            continue
        try:
            prediction = backend.infer([image], args.processing_res)[0].cpu().numpy()
        except ValueError as exc:  # e.g. an image too small for the requested processing resolution
            failures.append((str(path), str(exc)))
            tqdm.write(f"skipping {path}: {exc}", file=sys.stderr)
            continue
        write_outputs(prediction, args.output, stem, args.colormap)
        done += 1

    print(f"depthmaster-infer: {done} image(s) written to {args.output}, {len(failures)} failed", file=sys.stderr)
    for item, reason in failures:
        print(f"  failed: {item}: {reason}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
