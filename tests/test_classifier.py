from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fashion_onnx.errors import DeviceError, ImageError, InvalidArgumentError, ModelError
from fashion_onnx.gpu import gpu_present
from fashion_onnx.infer import Classifier
from fashion_onnx.infer.contract import default_model_path


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier(device="cpu")


@pytest.fixture(scope="module")
def sample(test_set) -> tuple[np.ndarray, np.ndarray]:
    """300 real test images (uint8) and their labels."""
    images, labels = test_set
    return images[:300], labels[:300]


def test_the_embedded_model_scores_at_least_89_5_on_the_real_test_set(classifier, test_set):
    images, labels = test_set
    result = classifier.predict(images)
    accuracy = (result.labels == labels).mean()
    assert accuracy >= 0.895, accuracy
    assert classifier.provider == "CPUExecutionProvider"
    assert result.class_names[9] == "Ankle boot"  # from the model's metadata


@pytest.mark.parametrize("batch_size", [1, 7, 256])
def test_results_do_not_depend_on_the_batch_size(batch_size, classifier, sample) -> None:
    images, _ = sample
    reference = classifier.predict(images).probabilities
    got = Classifier(device="cpu", batch_size=batch_size).predict(images).probabilities
    np.testing.assert_allclose(got, reference, atol=1e-6)
    assert (got.argmax(1) == reference.argmax(1)).all()


def test_array_paths_and_pil_give_identical_results(classifier, sample, tmp_path) -> None:
    images, _ = sample
    images = images[:40]
    paths = []
    for i, pixels in enumerate(images):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(pixels, mode="L").save(paths[-1])
    from_array = classifier.predict(images).probabilities
    from_paths = classifier.predict(paths).probabilities
    from_strings = classifier.predict([str(p) for p in paths]).probabilities
    from_pil = classifier.predict([Image.open(p) for p in paths]).probabilities
    np.testing.assert_array_equal(from_paths, from_array)
    np.testing.assert_array_equal(from_strings, from_array)
    np.testing.assert_array_equal(from_pil, from_array)


def test_array_layouts_and_dtypes_agree(classifier, sample) -> None:
    images, _ = sample
    base = classifier.predict(images).probabilities
    np.testing.assert_array_equal(classifier.predict(images[:, None]).probabilities, base)
    as_float = images.astype(np.float32) / 255
    np.testing.assert_allclose(classifier.predict(as_float).probabilities, base, atol=1e-6)
    one = classifier.predict(images[0])
    assert len(one) == 1


def test_top_k_is_sorted_and_consistent(classifier, sample) -> None:
    result = classifier.predict(sample[0][:10])
    indices, probs = result.top_k(3)
    assert indices.shape == probs.shape == (10, 3)
    assert (np.diff(probs, axis=1) <= 0).all()
    assert (indices[:, 0] == result.labels).all()
    np.testing.assert_allclose(result.probabilities.sum(1), 1, atol=1e-5)


def test_inverted_and_resized_images_score_like_the_originals(classifier, test_set, tmp_path):
    images, labels = test_set[0][:500], test_set[1][:500]
    paths = []
    for i, pixels in enumerate(images):  # a product-photo look: dark garment on white, 3x size
        photo = Image.fromarray(255 - pixels, mode="L").resize((84, 84), Image.LANCZOS)
        paths.append(tmp_path / f"{i}.jpg")
        photo.convert("RGB").save(paths[-1], quality=95)
    original = (classifier.predict(images).labels == labels).mean()
    photos = (classifier.predict(paths).labels == labels).mean()
    assert abs(photos - original) <= 0.02, (original, photos)
    # a photo's garment is what differs from its background, light or dark: --invert
    # (which the 28x28 pictures follow) changes nothing there
    never = Classifier(device="cpu", invert="never").predict(paths[:100]).labels
    np.testing.assert_array_equal(never, classifier.predict(paths[:100]).labels)


def test_a_bad_file_in_the_api_names_itself(classifier, tmp_path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    with pytest.raises(ImageError, match=f"{bad}: not an image"):
        classifier.predict([bad])


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros((2, 3, 28, 28), np.uint8), "array shape"),
        (np.zeros((2, 32, 32), np.uint8), "array shape"),
        (np.zeros((2, 28, 28), np.int64), "dtype int64"),
        (np.full((1, 28, 28), np.nan, np.float32), "NaN"),
    ],
)
def test_bad_arrays_are_refused_with_the_reason(classifier, array, message) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        classifier.predict(array)


@pytest.mark.skipif(gpu_present(), reason="this machine has a GPU")
def test_cuda_on_a_cpu_machine_is_a_clear_error() -> None:
    with pytest.raises(DeviceError, match="CUDA is not usable here"):
        Classifier(device="cuda")
    assert Classifier(device="auto").provider == "CPUExecutionProvider"


@pytest.mark.gpu
@pytest.mark.skipif(not gpu_present(), reason="no CUDA GPU on this machine")
def test_cuda_matches_cpu_on_the_real_test_set(test_set) -> None:
    """Our CUDA sessions turn TF32 off (runtime.CUDA_OPTIONS): with it, Ampere and Hopper
    round fp32 matrix products to a 10-bit mantissa and 1e-5 would not hold."""
    from fashion_onnx.infer.runtime import CUDA

    images, _ = test_set
    gpu = Classifier(device="cuda")  # a DeviceError here says why CUDA is unusable
    assert gpu.provider == CUDA
    assert gpu.runner._session.get_provider_options()[CUDA]["use_tf32"] == "0"
    assert gpu.batch_size == 4096  # the CUDA default, fed through IO binding
    cpu = Classifier(device="cpu").predict(images).probabilities
    got = gpu.predict(images).probabilities
    assert np.abs(got - cpu).max() <= 1e-5
    assert (got.argmax(1) == cpu.argmax(1)).all()
    one_by_one = Classifier(device="cuda", batch_size=1).predict(images[:50]).probabilities
    assert np.abs(one_by_one - cpu[:50]).max() <= 1e-5


def test_a_model_with_another_signature_is_refused(tmp_path) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 224, 224])
    y = helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 3, 224, 224])
    graph = helper.make_graph([helper.make_node("Relu", ["input"], ["out"])], "g", [x], [y])
    path = tmp_path / "imagenet.onnx"
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
    onnx.save(model, path)
    with pytest.raises(ModelError) as info:
        Classifier(path)
    assert "Expected inputs [input tensor(float) ['N', 1, 28, 28]]" in str(info.value)
    assert "found inputs [input tensor(float) ['N', 3, 224, 224]]" in str(info.value)


def test_a_model_without_metadata_runs_on_defaults_with_a_warning(tmp_path, sample) -> None:
    onnx = pytest.importorskip("onnx")

    proto = onnx.load(str(default_model_path()))
    del proto.metadata_props[:]
    path = tmp_path / "bare.onnx"
    onnx.save(proto, path)
    with pytest.warns(UserWarning) as caught:
        bare = Classifier(path, device="cpu")
    messages = [str(w.message) for w in caught]
    assert len(messages) == 3, messages
    for key in ("class_names", "input_scale", "background"):
        assert any(f"{key} missing or malformed" in m for m in messages), key
    images, _ = sample
    np.testing.assert_array_equal(
        bare.predict(images).probabilities, Classifier(device="cpu").predict(images).probabilities
    )
    assert bare.class_names[0] == "T-shirt/top"


def test_the_embedded_cnn_scores_at_least_93_5_on_the_real_test_set(test_set) -> None:
    images, labels = test_set
    cnn = Classifier("cnn", device="cpu")
    accuracy = (cnn.predict(images).labels == labels).mean()
    assert accuracy >= 0.935, accuracy
    assert "CNN" in cnn.runner._session.get_modelmeta().custom_metadata_map["architecture"]


def test_model_names_pick_the_embedded_files() -> None:
    assert Classifier("mlp").source == str(default_model_path("mlp"))
    assert Classifier("cnn").source == str(default_model_path("cnn"))
    assert Classifier().source == str(default_model_path("mlp"))


def test_embedded_names_in_any_case_and_a_near_miss_named() -> None:
    assert Classifier("CNN").source == Classifier("cnn").source == str(default_model_path("Cnn"))
    expected = "mpl: no such model file (the embedded models are mlp and cnn: did you mean mlp?)"
    with pytest.raises(ModelError) as info:
        Classifier("mpl")
    assert str(info.value) == expected


def test_checkpoint_bytes_are_named_as_such() -> None:
    with pytest.raises(ModelError, match="<bytes>: a PyTorch checkpoint, not an ONNX model"):
        Classifier(b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19." + b"\0" * 100)


def test_a_single_path_is_one_input_not_a_string_of_characters(
    classifier, sample, tmp_path, monkeypatch
) -> None:
    from fashion_onnx.infer.files import classify_files

    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(sample[0][i], mode="L").save(folder / f"{i}.png")
    monkeypatch.chdir(tmp_path)  # relative names: iterated as characters, they name nothing
    want = {str(folder / f"{i}.png") for i in range(3)}
    for given in ("images", "images/", Path("images")):
        batches = list(classifier.classify_files(given, workers=1))
        assert [f for b in batches for f in b.failures] == [], given
        assert {str(Path(p).resolve()) for b in batches for p in b.paths} == want, given
    (batch,) = classify_files(classifier, "images/1.png", workers=1)
    assert batch.paths == ["images/1.png"] and batch.failures == []


def test_many_files_stream_with_a_bounded_window_of_chunks_in_flight(
    classifier, sample, tmp_path
) -> None:
    """Results come back while the inputs are still being read, and the inputs are read
    only a fixed window of chunks ahead of the results: memory stays flat."""
    from fashion_onnx.infer import files
    from fashion_onnx.infer.sources import PATH_CHUNK

    png = tmp_path / "x.png"
    Image.fromarray(sample[0][0], mode="L").save(png)
    workers = 2
    window = files.IN_FLIGHT_PER_WORKER * workers * PATH_CHUNK  # files in flight at most
    total = 3 * window
    taken = 0

    def inputs():
        nonlocal taken
        for _ in range(total):
            taken += 1
            yield str(png)

    returned = 0
    for batch in classifier.classify_files(inputs(), workers=workers):
        assert taken - returned <= window + PATH_CHUNK, (taken, returned)
        assert batch.failures == [] and len(batch.paths) == PATH_CHUNK
        returned += len(batch)
        if returned == PATH_CHUNK:
            assert taken < total, "the first results came only after every input was read"
    assert returned == total
