"""fashion-train's recipe for one architecture, timed the same way as bench.seed_recipe.

Prints {"seconds", "accuracy", "curve"} as JSON, curve = [[epoch, seconds, accuracy], ...].
Run: python -m bench.default_recipe [--arch mlp|cnn] [--max-steps N]
"""

from __future__ import annotations

import argparse
import json
import time

from fashion_onnx.train.config import recipe
from fashion_onnx.train.data import ensure_raw_files, load_fashion_mnist
from fashion_onnx.train.loop import train


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--arch", default="mlp", choices=("mlp", "cnn"))
    parser.add_argument("--max-steps", type=int, default=None)
    args = parser.parse_args()
    ensure_raw_files(download=False)
    start = time.perf_counter()  # from reading the data, as for the seed
    data = load_fashion_mnist(download=False)
    loaded = time.perf_counter() - start
    result = train(data, recipe(args.arch, max_steps=args.max_steps))
    curve = [[e.epoch, loaded + e.seconds, e.test_accuracy] for e in result.epochs]
    print(
        json.dumps(
            {
                "seconds": time.perf_counter() - start,
                "accuracy": result.test_accuracy,
                "bf16": result.bf16,
                "curve": curve,
            }
        )
    )


if __name__ == "__main__":
    main()
