"""Facts shared by training, export and inference. Torch-free."""

from __future__ import annotations

# The FashionMNIST label order, as in the PyTorch quickstart.
CLASS_NAMES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
NUM_CLASSES = len(CLASS_NAMES)
IMAGE_SIZE = 28  # FashionMNIST images are 28x28 grayscale
INPUT_FEATURES = IMAGE_SIZE * IMAGE_SIZE  # 784, what Flatten gives the first Linear
HIDDEN_FEATURES = 512

# The ONNX contract: one float32 input [N, 1, 28, 28] in [0, 1], two outputs [N, 10].
INPUT_NAME = "input"
OUTPUT_NAMES: tuple[str, str] = ("logits", "probabilities")
# A third output of files exported since #24: softmax(logits / T), T fitted on training images.
CALIBRATED_NAME = "calibrated_probabilities"
EXPORTED_OUTPUTS: tuple[str, str, str] = (*OUTPUT_NAMES, CALIBRATED_NAME)

# Keys of the ONNX file's metadata_props. Apps in any language read these.
META_CLASS_NAMES = "class_names"  # JSON list of strings, index = label
META_INPUT_LAYOUT = "input_layout"  # "NCHW"
META_INPUT_SHAPE = "input_shape"  # JSON list, "N" for the dynamic batch axis
META_INPUT_SCALE = "input_scale"  # JSON: input float = pixel byte / divide_by, within range
META_BACKGROUND = "background"  # "dark" (light garment on dark) or "light"
META_ARCHITECTURE = "architecture"
META_SOURCE_SHA256 = "source_checkpoint_sha256"
META_PACKAGE_VERSION = "fashion_onnx_version"
META_TORCH_VERSION = "torch_version"
META_OPSET = "opset"
META_TEST_ACCURACY = "test_accuracy"
META_PRECISION = "precision"  # fp32 | fp16 | int8
META_TEMPERATURE = "temperature"  # T of calibrated_probabilities = softmax(logits / T)
META_CALIBRATION = "calibration"  # JSON: what T was fitted on, ECE before and after
# The energy score above which a row is "not one of mine" (keeps 95% of training images):
META_OOD_THRESHOLD = "ood_threshold"

# What the metadata says by default, and what infer assumes when a file has none.
DEFAULT_DIVIDE_BY = 255.0  # float32 = uint8 / 255, range [0, 1], as torchvision's ToTensor
DEFAULT_INPUT_SCALE = (
    '{"divide_by": 255.0, "range": [0.0, 1.0], "note": "float32 = uint8 / 255, as ToTensor"}'
)
DEFAULT_BACKGROUND = "dark"  # FashionMNIST polarity: a light garment on a dark background

# Inference: the devices, and images per engine call on each (measured in bench/).
DEVICES: tuple[str, ...] = ("auto", "cuda", "cpu")
DEFAULT_BATCH_CPU = 512  # the engine's sweet spot on CPU
DEFAULT_BATCH_CUDA = 4096  # big batches amortise the copies and the kernel launches

DEFAULT_OPSET = 18  # runs on current onnxruntime, onnxruntime-node and onnxruntime-web

# Export verification defaults per architecture, shared by the library and the CLI.
# The largest allowed |ONNX - torch| of logits and of probabilities:
DEFAULT_ATOL = {"mlp": 1e-5, "cnn": 1e-5}
# Logits are unbounded, and float32 rounds relative to their size, so theirs is also allowed
# LOGITS_RTOL x |torch's logit| (torch.testing.assert_close's float32 rtol): a logit of 40
# is 3 float32 steps of 3.8e-6 from torch's at 1.14e-5.
LOGITS_RTOL = 1.3e-6
# The most test accuracy (points) a variant (int8, fp16) may lose:
DEFAULT_MAX_DROP_POINTS = {"mlp": 0.3, "cnn": 0.5}
# Training images fashion-train holds out for fashion-export's temperature (which ones:
# fashion_mnist.held_out):
HELD_OUT = 5_000
