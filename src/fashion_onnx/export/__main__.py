"""``python -m fashion_onnx.export``: the same as ``fashion-export``."""

from fashion_onnx.export.cli import main

main()
