#!/usr/bin/env node
// Classify FashionMNIST images with the fashion-onnx model in Node.js and print JSON.
//
//   node classify.mjs MODEL a.png b.png ...      28x28 PNG files
//   node classify.mjs MODEL --raw images.u8      raw bytes, N x 784 uint8, light garment on dark
//
// MODEL is an ONNX file, or mlp / cnn for the models embedded in the Python package.
// Class names, input scaling and polarity come from the model's own metadata; the input
// and output names from the session (any model that keeps the contract's shapes works).
import { readFileSync } from "node:fs";
import ort from "onnxruntime-node";
import { PNG } from "pngjs";
import { classNames, modelInput, readMetadata, runProbabilities } from "../../web/onnx-metadata.js";

const SIDE = 28;
const EMBEDDED = {
  mlp: new URL("../../src/fashion_onnx/assets/fashion_mlp.onnx", import.meta.url),
  cnn: new URL("../../src/fashion_onnx/assets/fashion_cnn.onnx", import.meta.url),
};
const PIXELS = SIDE * SIDE;

function usage(message) {
  console.error(`error: ${message}`);
  console.error("usage: node classify.mjs MODEL.onnx (--raw FILE | PNG...)");
  process.exit(2);
}

// One 28x28 PNG -> 784 grayscale bytes (the mean of R, G and B). Resizing and inversion of
// product photos are left to the caller (see fashion-infer or web/preprocess.js).
function pngToGray(path) {
  let png;
  try {
    png = PNG.sync.read(readFileSync(path));
  } catch (error) {
    throw new Error(`${path}: not a readable PNG (${error.message})`);
  }
  if (png.width !== SIDE || png.height !== SIDE) {
    throw new Error(`${path}: ${png.width}x${png.height}, expected ${SIDE}x${SIDE}`);
  }
  const gray = new Uint8Array(PIXELS);
  for (let i = 0; i < PIXELS; i++) {
    const [r, g, b] = png.data.subarray(4 * i, 4 * i + 3);
    gray[i] = Math.round((r + g + b) / 3);
  }
  return gray;
}

async function main() {
  const [modelPath, ...rest] = process.argv.slice(2);
  if (!modelPath || rest.length === 0) usage("give a model and some images");
  let names;
  let pixels;
  if (rest[0] === "--raw") {
    if (!rest[1]) usage("--raw needs a file");
    pixels = new Uint8Array(readFileSync(rest[1]));
    if (pixels.length % PIXELS !== 0) usage(`${rest[1]}: size is not a multiple of ${PIXELS}`);
    names = Array.from({ length: pixels.length / PIXELS }, (_, i) => `${rest[1]}#${i}`);
  } else {
    names = rest;
    pixels = new Uint8Array(rest.length * PIXELS);
    rest.forEach((path, i) => pixels.set(pngToGray(path), i * PIXELS));
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
    return { input: name, label, class: classes[label], probabilities: probs };
  });
  console.log(JSON.stringify(results));
}

main().catch((error) => {
  console.error(`error: ${error.message}`);
  process.exit(1);
});
