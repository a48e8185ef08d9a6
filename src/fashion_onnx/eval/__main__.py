"""python -m fashion_onnx.eval: the fashion-eval command."""

from fashion_onnx.eval.cli import main

main()
