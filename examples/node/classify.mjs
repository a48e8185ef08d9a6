#!/usr/bin/env node
// Classify garment images with the fashion-onnx model in Node.js and print JSON.
//
//   node classify.mjs MODEL a.png b.jpg ...      PNG or JPEG files, any size
//   node classify.mjs MODEL --raw images.u8      raw bytes, N x 784 uint8, light garment on dark
//
// Options: --fit trim|full (default trim), --show-input (each row gets "pixels": the 784
// prepared input bytes).
// MODEL is an ONNX file, or mlp / cnn for the models embedded in the Python package.
// Images are prepared as fashion-infer prepares them (../../web/prepare.js, the port of
// prepare.py): grayscale, a light background inverted, trimmed to the garment, the longer
// edge fitted to 28, centred; 28x28 images are only inverted when their border is light.
// Class names, input scaling and polarity come from the model's own metadata; the input
// and output names from the session (any model that keeps the contract's shapes works).
// "probabilities" in each row are the file's calibrated_probabilities where it has them
// (softmax(logits / T), as fashion-infer reports), else its probabilities.
import { readFileSync } from "node:fs";
import jpeg from "jpeg-js";
import ort from "onnxruntime-node";
import { PNG } from "pngjs";
import { classNames, modelInput, readMetadata, runProbabilities } from "../../web/onnx-metadata.js";
import { FIT_CHOICES, prepare, rgbaToGray, shrinkAsJpegDraft, SIDE } from "../../web/prepare.js";

const EMBEDDED = {
  mlp: new URL("../../src/fashion_onnx/assets/fashion_mlp.onnx", import.meta.url),
  cnn: new URL("../../src/fashion_onnx/assets/fashion_cnn.onnx", import.meta.url),
};
const PIXELS = SIDE * SIDE;
const MAX_PIXELS = 40_000_000; // as fashion-infer: refuse larger images before decoding

function usage(message) {
  console.error(`error: ${message}`);
  console.error(
    "usage: node classify.mjs MODEL.onnx [--fit trim|full] [--show-input] (--raw FILE | IMAGE...)",
  );
  process.exit(2);
}

// The file's format from its first bytes; the example reads PNG and JPEG only.
function formatOf(bytes) {
  const ascii = (start, end) => String.fromCharCode(...bytes.subarray(start, end));
  if (bytes.length >= 8 && bytes[0] === 0x89 && ascii(1, 4) === "PNG") return "PNG";
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return "JPEG";
  if (bytes.length >= 12 && ascii(0, 4) === "RIFF" && ascii(8, 12) === "WEBP") return "WebP";
  if (bytes.length >= 6 && ascii(0, 3) === "GIF") return "GIF";
  if (bytes.length >= 2 && ascii(0, 2) === "BM") return "BMP";
  if (bytes.length >= 4 && (ascii(0, 4) === "II*\0" || ascii(0, 4) === "MM\0*")) return "TIFF";
  return null;
}

// One PNG or JPEG file -> its grayscale pixels, as fashion-infer decodes them: transparency
// laid on white, Pillow's RGB -> L; a large JPEG shrunk as Pillow's draft mode decodes it.
function decodeGray(path, fit) {
  const bytes = readFileSync(path);
  const format = formatOf(bytes);
  let image;
  try {
    if (format === "PNG") {
      image = PNG.sync.read(bytes);
    } else if (format === "JPEG") {
      image = jpeg.decode(bytes, { useTArray: true, maxResolutionInMP: MAX_PIXELS / 1e6 });
    }
  } catch (error) {
    throw new Error(`${path}: not a readable ${format} (${error.message})`);
  }
  if (!image) {
    const what = format ? `a ${format} file` : "not a readable PNG or JPEG";
    throw new Error(`${path}: ${what}; this example reads PNG and JPEG (fashion-infer reads more)`);
  }
  const { width, height } = image;
  if (width * height > MAX_PIXELS) throw new Error(`${path}: ${width}x${height} is over ${MAX_PIXELS} pixels`);
  const gray = rgbaToGray(image.data, width, height);
  return format === "JPEG" ? shrinkAsJpegDraft(gray, width, height, fit) : { gray, width, height };
}

function parseArgs(argv) {
  const options = { fit: "trim", showInput: false, raw: null, images: [] };
  const [modelPath, ...rest] = argv;
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i];
    if (arg === "--fit") {
      options.fit = rest[++i];
      if (!FIT_CHOICES.includes(options.fit)) usage(`--fit must be one of ${FIT_CHOICES.join(", ")}`);
    } else if (arg === "--show-input") {
      options.showInput = true;
    } else if (arg === "--raw") {
      options.raw = rest[++i];
      if (!options.raw) usage("--raw needs a file");
    } else if (arg.startsWith("--")) {
      usage(`unknown option ${arg}`);
    } else {
      options.images.push(arg);
    }
  }
  if (!modelPath || modelPath.startsWith("--")) usage("give a model and some images");
  if (options.raw && options.images.length) usage("give --raw FILE or images, not both");
  if (!options.raw && options.images.length === 0) usage("give a model and some images");
  return { modelPath, ...options };
}

async function main() {
  const { modelPath, fit, showInput, raw, images } = parseArgs(process.argv.slice(2));
  let names;
  let pixels;
  if (raw) {
    pixels = new Uint8Array(readFileSync(raw)); // already prepared: used as they are
    if (pixels.length % PIXELS !== 0) usage(`${raw}: size is not a multiple of ${PIXELS}`);
    names = Array.from({ length: pixels.length / PIXELS }, (_, i) => `${raw}#${i}`);
  } else {
    names = images;
    pixels = new Uint8Array(images.length * PIXELS);
    images.forEach((path, i) => {
      const { gray, width, height } = decodeGray(path, fit);
      pixels.set(prepare(gray, width, height, { fit }).pixels, i * PIXELS);
    });
  }

  const modelBytes = new Uint8Array(readFileSync(EMBEDDED[modelPath] ?? modelPath));
  const meta = readMetadata(modelBytes);
  const classes = classNames(meta);
  const session = await ort.InferenceSession.create(modelBytes);

  const count = names.length;
  const probabilities = await runProbabilities(session, ort, modelInput(pixels, meta), count);

  const results = names.map((name, n) => {
    const probs = Array.from(probabilities.subarray(n * 10, n * 10 + 10));
    const label = probs.indexOf(Math.max(...probs));
    const row = { input: name, label, class: classes[label], probabilities: probs };
    if (showInput) row.pixels = Array.from(pixels.subarray(n * PIXELS, (n + 1) * PIXELS));
    return row;
  });
  console.log(JSON.stringify(results));
}

main().catch((error) => {
  console.error(`error: ${error.message}`);
  process.exit(1);
});
