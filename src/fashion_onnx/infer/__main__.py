"""``python -m fashion_onnx.infer``: the same as ``fashion-infer``."""

from fashion_onnx.infer.cli import main

main()
