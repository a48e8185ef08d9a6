"""fashion-onnx: the PyTorch quickstart's FashionMNIST MLP, trained fast, exported to a
verified ONNX file, and run anywhere through a torch-free runtime.

Importing this package is cheap: torch is loaded only by ``fashion_onnx.models``,
``fashion_onnx.train`` and ``fashion_onnx.export``, never by ``fashion_onnx.infer``.
"""

__version__ = "0.1.0"
