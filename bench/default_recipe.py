"""fashion-train's default recipe, timed the same way as bench.seed_recipe.

Prints {"seconds", "accuracy"} as JSON. Run: python -m bench.default_recipe [--max-steps N]
"""

from __future__ import annotations

import argparse
import json
import time

from fashion_onnx.train.config import TrainConfig
from fashion_onnx.train.data import ensure_raw_files, load_fashion_mnist
from fashion_onnx.train.loop import train


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-steps", type=int, default=None)
    args = parser.parse_args()
    ensure_raw_files(download=False)
    start = time.perf_counter()  # from reading the data, as for the seed
    data = load_fashion_mnist(download=False)
    result = train(data, TrainConfig(max_steps=args.max_steps))
    print(json.dumps({"seconds": time.perf_counter() - start, "accuracy": result.test_accuracy}))


if __name__ == "__main__":
    main()
