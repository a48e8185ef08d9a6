#!/usr/bin/env node
// Classify garment images with the fashion-onnx photo model in Node.js and print JSON.
//
//   node classify.mjs MODEL a.png b.jpg ...      PNG or JPEG files, any size
//   node classify.mjs PLAIN --raw images.u8      raw bytes, N x 784 uint8, light garment on dark
//
// Options: --show-input (each row gets "pixels": the 784 bytes of the 28x28 picture the
// model saw); --files-from FILE (more images, one path a line; - reads stdin).
// onnxruntime-node 1.30 crashes (SIGSEGV) creating a session in a process whose command
// line is longer than about 30 KB (500-600 paths): given more, this script hands the paths
// to a copy of itself on stdin.
// MODEL is a photo model (NAME_photo.onnx, from fashion-export --photo), or mlp / cnn for
// the photo models embedded in the Python package. The preparation runs inside it (the
// background, the trim, straightening, the fit and the centring, as fashion-infer does);
// this file only decodes: PNG (pngjs) or JPEG (libjpeg-turbo through sharp: the pixels
// Pillow decodes, where jpeg-js differed by about a grey level) to RGB, transparency laid
// on white, turned upright by the file's EXIF orientation (../../web/photo.js).
// PLAIN is a plain model for --raw (mlp / cnn name the embedded ones); its class names,
// input scaling and polarity come from its metadata, its names from the session.
// "probabilities" in each row are the file's calibrated_probabilities where it has them
// (softmax(logits / T), as fashion-infer reports), else its probabilities.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import ort from "onnxruntime-node";
import { PNG } from "pngjs";
import sharp from "sharp";
import { classNames, modelInput, readMetadata, runProbabilities } from "../../web/onnx-metadata.js";
import { exifOrientation, isPhotoModel, rgbaToRgb, runPhoto, SIDE, upright } from "../../web/photo.js";

const ASSETS = "../../src/fashion_onnx/assets/";
const EMBEDDED = {
  photo: {
    mlp: new URL(`${ASSETS}fashion_mlp_photo.onnx`, import.meta.url),
    cnn: new URL(`${ASSETS}fashion_cnn_photo.onnx`, import.meta.url),
  },
  plain: {
    mlp: new URL(`${ASSETS}fashion_mlp.onnx`, import.meta.url),
    cnn: new URL(`${ASSETS}fashion_cnn.onnx`, import.meta.url),
  },
};
const PIXELS = SIDE * SIDE;
const LONGEST_COMMAND_LINE = 16_384; // bytes: well under where onnxruntime-node crashes
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

// One PNG or JPEG file -> upright RGB bytes, as fashion-infer decodes a photo: the whole
// picture, transparency laid on white, turned as its EXIF orientation says.
async function decodeRgb(path) {
  const bytes = readFileSync(path);
  const format = formatOf(bytes);
  let image;
  try {
    if (format === "PNG") {
      image = PNG.sync.read(bytes);
    } else if (format === "JPEG") {
      // as stored (no autorotation: upright() below turns it), RGBA whatever its bands
      const decoded = sharp(bytes, { limitInputPixels: MAX_PIXELS }).toColourspace("srgb").ensureAlpha();
      const { data, info } = await decoded.raw().toBuffer({ resolveWithObject: true });
      image = { width: info.width, height: info.height, data };
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
  return upright(rgbaToRgb(image.data, width, height), width, height, exifOrientation(bytes));
}

function parseArgs(argv) {
  const options = { showInput: false, raw: null, images: [] };
  const [modelPath, ...rest] = argv;
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i];
    if (arg === "--show-input") {
      options.showInput = true;
    } else if (arg === "--raw") {
      options.raw = rest[++i];
      if (!options.raw) usage("--raw needs a file");
    } else if (arg === "--files-from") {
      const list = rest[++i];
      if (!list) usage("--files-from needs a file (or - for stdin)");
      const text = readFileSync(list === "-" ? 0 : list, "utf8");
      options.images.push(...text.split("\n").filter((line) => line.length));
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

function row(name, probs, pixels, classes, showInput) {
  const label = probs.indexOf(Math.max(...probs));
  const out = { input: name, label, class: classes[label], probabilities: probs };
  if (showInput) out.pixels = Array.from(pixels);
  return out;
}

// A long command line: the same run in a copy of this script, given the paths on stdin.
function handOff(argv) {
  const [modelPath, ...rest] = argv;
  const flags = rest.filter((a) => a === "--show-input");
  const paths = parseArgs(argv).images;
  const child = spawnSync(
    process.execPath,
    [fileURLToPath(import.meta.url), modelPath, ...flags, "--files-from", "-"],
    { input: paths.join("\n"), stdio: ["pipe", "inherit", "inherit"], maxBuffer: 1 << 30 },
  );
  process.exit(child.status ?? 1);
}

async function main() {
  const argv = process.argv.slice(2);
  if (!argv.includes("--raw") && argv.join(" ").length > LONGEST_COMMAND_LINE) handOff(argv);
  const { modelPath, showInput, raw, images } = parseArgs(argv);
  const kind = raw ? "plain" : "photo";
  const modelBytes = new Uint8Array(readFileSync(EMBEDDED[kind][modelPath] ?? modelPath));
  const meta = readMetadata(modelBytes);
  const classes = classNames(meta);
  const session = await ort.InferenceSession.create(modelBytes);
  let results;
  if (raw) {
    if (isPhotoModel(session)) usage(`${modelPath}: --raw takes a plain model, not a photo model`);
    const pixels = new Uint8Array(readFileSync(raw)); // already prepared: used as they are
    if (pixels.length % PIXELS !== 0) usage(`${raw}: size is not a multiple of ${PIXELS}`);
    const count = pixels.length / PIXELS;
    const probabilities = await runProbabilities(session, ort, modelInput(pixels, meta), count);
    results = Array.from({ length: count }, (_, n) =>
      row(`${raw}#${n}`, Array.from(probabilities.subarray(n * 10, n * 10 + 10)),
        pixels.subarray(n * PIXELS, (n + 1) * PIXELS), classes, showInput));
  } else {
    if (!isPhotoModel(session)) {
      usage(`${modelPath}: not a photo model (input "image"); make one with fashion-export --photo`);
    }
    results = [];
    for (const path of images) {
      const { rgb, width, height } = await decodeRgb(path);
      const { probabilities, prepared } = await runPhoto(session, ort, rgb, width, height);
      results.push(row(path, Array.from(probabilities), prepared, classes, showInput));
    }
  }
  console.log(JSON.stringify(results));
}

main().catch((error) => {
  console.error(`error: ${error.message}`);
  process.exit(1);
});
