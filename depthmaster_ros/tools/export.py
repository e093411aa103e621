"""depthmaster-export: DepthMaster to an ONNX file for ONNX Runtime / TensorRT (the onnxruntime backend's file).

The model is exported at the processing size of --size at --processing-res (as the node would run it): input
``image`` [B, 3, h, w], the normalised image in [-1, 1]; output ``relative`` [B, 1, h, w], normalised
sqrt-disparity in [0, 1] at the processing size; dynamic batch. The export is then checked: ONNX Runtime (CPU) and
PyTorch run the same input and the largest difference is printed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .cli_options import add_model_options, add_processing_res, model_values, size_list


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="depthmaster-export", description=__doc__.split("\n\n")[0])
    add_model_options(parser, names=("checkpoint", "allow_download", "device"))
    random = parser.add_mutually_exclusive_group()
    random.add_argument("--random-full", action="store_true", help="the published architecture, random weights "
                        "(instead of --checkpoint; to measure)")
    random.add_argument("--random-tiny", action="store_true", help="the toy test architecture, random weights "
                        "(instead of --checkpoint)")
    parser.add_argument("--dtype", choices=("fp32", "fp16"), default="fp32",
                        help="precision of the exported model (default fp32; the Fourier Enhancement stays fp32)")
    parser.add_argument("--size", type=size_list, default=[(640, 480)], metavar="WIDTHxHEIGHT",
                        help="the camera images' size (default 640x480)")
    add_processing_res(parser, "768, the node's; 0 = the image size")
    parser.add_argument("--output", "-o", type=Path,
                        help="the .onnx file (default depthmaster_WxH_DTYPE.onnx at the processing size, here); "
                             "weights over 1 GiB go to FILE.data beside it")
    parser.add_argument("--check-batch", type=int, default=1, metavar="N",
                        help="frames in the check's batch (default 1; the model takes any batch)")
    parser.add_argument("--image", type=Path, help="the check's image (default: the generated sample scene)")
    parser.add_argument("--no-check", action="store_true", help="skip running the export against PyTorch")
    args = parser.parse_args(argv)
    if len(args.size) != 1:
        parser.error("--size takes one WIDTHxHEIGHT")
    if args.check_batch < 1:
        parser.error("--check-batch must be >= 1")
    if (args.random_full or args.random_tiny) and args.checkpoint is not None:
        parser.error("give one of --checkpoint PATH, --random-full or --random-tiny")
    if args.image is not None and not args.image.is_file():
        parser.error(f"--image {args.image} is not a file")
    return args


def load(args):
    values = model_values(args)
    if args.random_full or args.random_tiny:
        from ..model.architectures import random_pipeline

        return random_pipeline("full" if args.random_full else "tiny", device=values["device"], dtype=args.dtype)
    from ..model import DepthMasterPipeline

    return DepthMasterPipeline.from_pretrained(values["checkpoint"], device=values["device"], dtype=args.dtype,
                                               allow_download=values["allow_download"])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from ..model.checkpoint import CheckpointError
    from ..model.checkpoint_layout import RANDOM_WEIGHTS_WARNING
    from ..model.device import apply_cpu_threads
    from ..model.onnx_export import compare_with_eager, export_model, file_bytes
    from ..model.resize import processing_size
    from ..parameters import spec

    apply_cpu_threads(model_values(args)["cpu_threads"])
    width, height = args.size[0]
    res = spec("processing_res").default if args.processing_res is None else args.processing_res
    try:
        size = processing_size(height, width, res)
        pipeline = load(args)
    except (CheckpointError, ValueError) as exc:
        print(f"depthmaster-export: {exc}", file=sys.stderr)
        return 2
    output = args.output or Path(f"depthmaster_{size[1]}x{size[0]}_{args.dtype}.onnx")
    print(f"depthmaster-export: {pipeline.describe()}", file=sys.stderr)
    if pipeline.random_weights:
        print(f"depthmaster-export: {RANDOM_WEIGHTS_WARNING}", file=sys.stderr)
    print(f"{width}x{height} images at processing_res {res}: model at {size[1]}x{size[0]} (WxH), {args.dtype}, "
          "dynamic batch")
    if args.dtype == "fp16" and pipeline.device.type == "cpu":
        print("depthmaster-export: note: the export runs the model once in PyTorch, and PyTorch's fp16 convolutions "
              "on a CPU are about 40x slower than fp32 (the full model at 640x480: hours); export fp16 on the GPU "
              "(--device cuda), or export fp32 here", file=sys.stderr)
    start = time.perf_counter()
    try:
        export_model(pipeline, output, size)
    except (ValueError, OSError) as exc:
        print(f"depthmaster-export: {exc}", file=sys.stderr)
        return 2
    data = output.parent / (output.name + ".data")
    print(f"wrote {output}" + (f" and {data}" if data.is_file() else "") +
          f" ({file_bytes(output) / 2**20:.1f} MiB) in {time.perf_counter() - start:.1f} s")
    if args.no_check:
        return 0
    if args.image is not None:
        from .infer import read_rgb

        image = read_rgb(args.image)
    else:
        from ..samples.sample_scene import PinholeCamera, render

        image = render(PinholeCamera.with_size(size[1], size[0]))[0]
    check = compare_with_eager(pipeline, output, image, batch=args.check_batch)
    print(f"check: ONNX Runtime (CPU) vs PyTorch eager on the same {args.dtype} input, batch {args.check_batch}: "
          f"max |difference| {check['max_abs_diff']:.2e} of the [0, 1] map (eager {check['eager_s']:.2f} s, "
          f"onnxruntime {check['onnxruntime_s']:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
