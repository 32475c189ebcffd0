"""The PIL + torchvision peer of bench/images.ts: one image file to a prediction, per file, timed in parts.

    /usr/bin/python3 bench/peer_images.py FILE... [--size 96] [--runs 7] [--threads N]

For each file: decode with PIL (EXIF orientation applied, RGB), resize to SIZE x SIZE with antialiasing and
make the input tensor (torchvision.transforms.functional: resize(antialias=True), to_tensor), then run the
default backbone's architecture (torchvision mobilenet_v2 `features[:12]` + pooling + a 10-class head, as
bench/peer_torch.py; random weights, speed does not depend on them) on a batch of one. Two decoders are
timed: plain `Image.open(...).convert("RGB")` (what a torchvision data set does), and the same after
`Image.draft("RGB", (SIZE, SIZE))`, PIL's DCT-domain downscaling for JPEG (its fast path). Prints one JSON
line per file: medians in ms.
"""

import argparse
import json
import os
import statistics
import sys
import time

import torch
import torchvision
import torchvision.transforms.functional as TF
from PIL import Image, ImageOps
from torch import nn


def model(classes=10):
    features = torchvision.models.mobilenet_v2(weights=None).features[:12]
    return nn.Sequential(features, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(96, classes)).eval()


def decode(path, size, draft):
    image = Image.open(path)
    if draft:
        image.draft("RGB", (size, size))
    image = ImageOps.exif_transpose(image).convert("RGB")
    # The backbone's input range is [0, 1], which is what to_tensor gives.
    return TF.to_tensor(TF.resize(image, [size, size], antialias=True)).unsqueeze(0)


def median_ms(fn, runs):
    fn()  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("files", nargs="+")
    p.add_argument("--size", type=int, default=96)
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    net = model()
    with torch.no_grad():
        x = decode(args.files[0], args.size, False)
        model_ms = median_ms(lambda: net(x), args.runs * 3)
        for path in args.files:
            plain = median_ms(lambda: decode(path, args.size, False), args.runs)
            draft = median_ms(lambda: decode(path, args.size, True), args.runs)
            record = {
                "file": os.path.basename(path),
                "decodePreprocessMs": plain,
                "draftDecodePreprocessMs": draft,
                "modelMs": model_ms,
                "torch": torch.__version__,
                "pil": Image.__version__,
                "threads": args.threads,
            }
            print(json.dumps(record), flush=True)


if __name__ == "__main__":
    sys.exit(main())
