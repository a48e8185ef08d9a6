"""``python -m fashion_onnx.train``: the same as ``fashion-train``."""

from fashion_onnx.train.cli import main

main()
