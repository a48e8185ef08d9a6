"""Draw a finished run's plots again with today's code, without training.

    python scripts/replot.py models/fashion_mlp.pth models/plots
    python scripts/replot.py models/fashion_cnn.pth models/plots-cnn

The curves and per-class bars come from the metrics JSON beside the checkpoint
(fashion-train's model.json), the 3x3 sample grid from the checkpoint's predictions on the
real test set. ``make model-plots`` runs both lines.
"""

from __future__ import annotations

import sys
from pathlib import Path

from fashion_onnx.train.plots import replot


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    for path in replot(Path(argv[0]), Path(argv[1])):
        print(f"Plot: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
