"""``python -m fashion_onnx.serve``: the same as ``fashion-serve``."""

from fashion_onnx.serve.cli import main

main()
