// Read an ONNX file's metadata_props (ModelProto field 14) without any dependency.
// onnxruntime's JavaScript API does not expose custom metadata, so we walk the
// protobuf wire format ourselves: only the top-level fields, skipping the graph.

function readVarint(bytes, pos) {
  let value = 0;
  let shift = 0;
  for (;;) {
    if (pos >= bytes.length) throw new Error("truncated varint");
    const byte = bytes[pos++];
    value += (byte & 0x7f) * 2 ** shift;
    if ((byte & 0x80) === 0) return [value, pos];
    shift += 7;
    if (shift > 63) throw new Error("varint too long");
  }
}

// Yield [fieldNumber, wireType, value] for each field of one message.
function* fields(bytes) {
  let pos = 0;
  while (pos < bytes.length) {
    let key;
    [key, pos] = readVarint(bytes, pos);
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (wire === 0) {
      let value;
      [value, pos] = readVarint(bytes, pos);
      yield [field, wire, value];
    } else if (wire === 2) {
      let length;
      [length, pos] = readVarint(bytes, pos);
      if (pos + length > bytes.length) throw new Error("truncated field");
      yield [field, wire, bytes.subarray(pos, pos + length)];
      pos += length;
    } else if (wire === 1 || wire === 5) {
      pos += wire === 1 ? 8 : 4;
    } else {
      throw new Error(`unsupported wire type ${wire}`);
    }
  }
}

const METADATA_PROPS = 14; // ModelProto.metadata_props: repeated StringStringEntryProto

/** @param {Uint8Array} bytes the .onnx file @returns {Record<string, string>} */
export function readMetadata(bytes) {
  const decoder = new TextDecoder();
  const props = {};
  for (const [field, wire, value] of fields(bytes)) {
    if (field !== METADATA_PROPS || wire !== 2) continue;
    let key = "";
    let text = "";
    for (const [f, w, v] of fields(value)) {
      if (w !== 2) continue;
      if (f === 1) key = decoder.decode(v);
      if (f === 2) text = decoder.decode(v);
    }
    props[key] = text;
  }
  return props;
}

export const FASHION_CLASSES = [
  "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
  "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
];

/** The class names from the metadata, or FashionMNIST's when it is missing. */
export function classNames(props) {
  try {
    const names = JSON.parse(props.class_names);
    if (Array.isArray(names) && names.length === 10) return names.map(String);
  } catch {
    // fall through to the defaults
  }
  return FASHION_CLASSES;
}

/** Pixel bytes are divided by this (metadata input_scale.divide_by, default 255). */
export function divideBy(props) {
  try {
    const value = Number(JSON.parse(props.input_scale).divide_by);
    if (value > 0) return value;
  } catch {
    // fall through to the default
  }
  return 255;
}

/**
 * Pixel bytes (light garment on dark, as FashionMNIST has them) -> the float32 input the
 * model's metadata asks for: inverted first for background "light", then / divide_by.
 */
export function modelInput(pixels, props) {
  const scale = divideBy(props);
  const light = props.background === "light";
  return Float32Array.from(pixels, (v) => (light ? 255 - v : v) / scale);
}

/**
 * The contract's probabilities from a session's results, as Python's infer/contract.py
 * reads them: "calibrated_probabilities" (files exported since #24, softmax(logits / T):
 * the confidence reported), else "probabilities", else a softmax of the first output (a
 * model that returns logits only), row by row. Top-1 is the same either way.
 */
export async function runProbabilities(session, ort, input, count) {
  const side = 28;
  const feeds = { [session.inputNames[0]]: new ort.Tensor("float32", input, [count, 1, side, side]) };
  const read = ["calibrated_probabilities", "probabilities"].filter((n) => session.outputNames.includes(n));
  const name = read.length ? read[0] : session.outputNames[0];
  const data = (await session.run(feeds, [name]))[name].data;
  if (read.length) return data;
  const out = new Float32Array(data.length);
  for (let row = 0; row < count; row++) {
    const logits = data.subarray(10 * row, 10 * row + 10);
    const top = Math.max(...logits);
    const exps = Array.from(logits, (v) => Math.exp(v - top));
    const sum = exps.reduce((a, b) => a + b, 0);
    exps.forEach((v, i) => (out[10 * row + i] = v / sum));
  }
  return out;
}
