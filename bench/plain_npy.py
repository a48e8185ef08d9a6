"""Baseline for arrays: the script a user would write for a .npy of images. np.load,
one onnxruntime session, batches of 1,024, a CSV row per image. Prints {"rows"} as JSON.
Run: python -m bench.plain_npy MODEL.onnx IMAGES.npy OUT.csv
"""

from __future__ import annotations

import csv
import json
import sys

import numpy as np
import onnxruntime as ort


def main() -> None:
    model, images, out = sys.argv[1:4]
    names = json.loads(
        ort.InferenceSession(model).get_modelmeta().custom_metadata_map["class_names"]
    )
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    x = np.load(images)
    rows = 0
    with open(out, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["index", "label", "class", "confidence"])
        for start in range(0, len(x), 1024):
            batch = x[start : start + 1024].reshape(-1, 1, 28, 28).astype(np.float32) / 255
            (probs,) = session.run(["probabilities"], {"input": batch})
            for i, p in enumerate(probs, start):
                label = int(p.argmax())
                writer.writerow([i, label, names[label], f"{p[label]:.6f}"])
                rows += 1
    print(json.dumps({"rows": rows}))


if __name__ == "__main__":
    main()
