// Any grayscale picture -> the model's 28x28 input, as FashionMNIST itself was made: the
// port of src/fashion_onnx/infer/prepare.py that the page (preprocess.js) and the Node
// example (examples/node/classify.mjs) share. No DOM: plain arrays in, plain arrays out.
//
// It gives the same bytes as Python on the same grayscale pixels (tests/test_photo_parity.py
// checks it): Pillow's resampling (libImaging/Resample.c) and RGB->L conversion
// (libImaging/Convert.c) are ported here exactly, integer arithmetic included.
export const SIDE = 28;
export const TRIM_THRESHOLD = 32; // grey levels a garment differs from the background by
export const INVERT_CHOICES = ["auto", "always", "never"];
export const FIT_CHOICES = ["trim", "full"];

// -- grayscale, as Pillow's alpha_composite onto white, then convert("L") -------------

/**
 * RGBA bytes -> grayscale bytes, exactly as Pillow does it: transparency laid on white
 * (Image.alpha_composite, libImaging/AlphaComposite.c), then ITU-R 601-2 luma
 * (convert("L"), libImaging/Convert.c: L = (R*19595 + G*38470 + B*7471 + 0x8000) >> 16).
 * @param {Uint8Array|Uint8ClampedArray} rgba width * height * 4 bytes
 * @returns {Uint8Array} width * height bytes
 */
export function rgbaToGray(rgba, width, height) {
  const count = width * height;
  if (rgba.length < 4 * count) throw new Error(`expected ${4 * count} RGBA bytes, got ${rgba.length}`);
  const gray = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    let r = rgba[4 * i];
    let g = rgba[4 * i + 1];
    let b = rgba[4 * i + 2];
    const a = rgba[4 * i + 3];
    if (a !== 255) {
      // AlphaComposite.c over opaque white: coef1 = a * 128, coef2 = (255 - a) * 128
      // (PRECISION_BITS 7), then a rounded division by 255 (SHIFTFORDIV255).
      const coef1 = a * 128;
      const coef2 = (255 - a) * 128;
      const over = (c) => {
        const t = c * coef1 + 255 * coef2 + (0x80 << 7);
        return (((t >> 8) + t) >> 8) >> 7;
      };
      if (a === 0) {
        r = g = b = 255;
      } else {
        r = over(r);
        g = over(g);
        b = over(b);
      }
    }
    gray[i] = (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16;
  }
  return gray;
}

// -- Pillow's resampling (libImaging/Resample.c), 8 bits a pixel ----------------------

const FILTERS = {
  // box: 1 on (-0.5, 0.5], as Pillow since 7.0
  box: { support: 0.5, weight: (x) => (x > -0.5 && x <= 0.5 ? 1.0 : 0.0) },
  bilinear: {
    support: 1.0,
    weight: (x) => {
      const ax = Math.abs(x);
      return ax < 1.0 ? 1.0 - ax : 0.0;
    },
  },
  bicubic: {
    support: 2.0,
    weight: (x) => {
      const a = -0.5;
      const ax = Math.abs(x);
      if (ax < 1.0) return ((a + 2.0) * ax - (a + 3.0)) * ax * ax + 1;
      if (ax < 2.0) return (((ax - 5) * ax + 8) * ax - 4) * a;
      return 0.0;
    },
  },
};

const PRECISION_BITS = 32 - 8 - 2;
const PRECISION = 2 ** PRECISION_BITS;

/** precompute_coeffs + normalize_coeffs_8bpc: per output pixel, [first input, count, int weights]. */
function coefficients(inSize, outSize, filter) {
  const scale = inSize / outSize; // (double)(in1 - in0) / outSize with box (0, 0, w, h)
  const filterscale = Math.max(scale, 1.0);
  const support = filter.support * filterscale;
  const invFilterscale = 1.0 / filterscale;
  const result = [];
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    const weights = new Float64Array(Math.max(xmax, 0));
    let ww = 0.0;
    for (let x = 0; x < xmax; x++) {
      const w = filter.weight((x + xmin - center + 0.5) * invFilterscale);
      weights[x] = w;
      ww += w;
    }
    const ints = new Int32Array(weights.length);
    for (let x = 0; x < xmax; x++) {
      const k = ww !== 0.0 ? weights[x] / ww : weights[x];
      ints[x] = k < 0 ? Math.trunc(-0.5 + k * PRECISION) : Math.trunc(0.5 + k * PRECISION);
    }
    result.push({ first: xmin, weights: ints });
  }
  return result;
}

// clip8: the accumulator shifted down by PRECISION_BITS, clamped to 0..255 (Pillow's
// lookup table covers -640..639, far beyond what 8-bit inputs can reach).
function clip8(sum) {
  const v = sum >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/** One pass along rows (horizontal) or columns (vertical) of a (height, width) image. */
function resamplePass(src, width, height, outSize, filter, horizontal) {
  const coeffs = coefficients(horizontal ? width : height, outSize, filter);
  const outW = horizontal ? outSize : width;
  const outH = horizontal ? height : outSize;
  const out = new Uint8Array(outW * outH);
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      const { first, weights } = coeffs[horizontal ? x : y];
      let sum = 1 << (PRECISION_BITS - 1);
      for (let i = 0; i < weights.length; i++) {
        const pixel = horizontal ? src[y * width + first + i] : src[(first + i) * width + x];
        sum += pixel * weights[i];
      }
      out[y * outW + x] = clip8(sum | 0); // Pillow sums in a 32-bit int
    }
  }
  return out;
}

/**
 * Pillow's Image.resize for a mode "L" image: two passes, each skipped when its dimension
 * does not change (ImagingResampleInner). Pillow 13 runs the vertical pass first when the
 * height shrinks by more than twice as many pixels as the width does (Pillow PR #9549;
 * read from its compiled ImagingResampleInner); the order changes a pixel by 1 at most.
 * @param {Uint8Array} gray height * width bytes, row by row
 * @param {"box"|"bilinear"|"bicubic"} filterName
 * @returns {Uint8Array} newHeight * newWidth bytes
 */
export function resize(gray, width, height, newWidth, newHeight, filterName) {
  const filter = FILTERS[filterName];
  if (!filter) throw new Error(`unknown filter ${filterName}; use one of ${Object.keys(FILTERS).join(", ")}`);
  let pixels = gray;
  const verticalFirst = newHeight < height && height - newHeight > 2 * (width - newWidth);
  if (verticalFirst) {
    pixels = resamplePass(pixels, width, height, newHeight, filter, false);
    if (newWidth !== width) pixels = resamplePass(pixels, width, newHeight, newWidth, filter, true);
  } else {
    if (newWidth !== width) pixels = resamplePass(pixels, width, height, newWidth, filter, true);
    if (newHeight !== height) pixels = resamplePass(pixels, newWidth, height, newHeight, filter, false);
  }
  return pixels === gray ? Uint8Array.from(gray) : pixels;
}

// -- JPEGs, decoded smaller as Pillow's draft mode does (images.py) ----------------------

/**
 * By how much Python decodes a JPEG of this size: libjpeg shrinks it by 8, 4 or 2 while
 * decoding when at least ``least`` pixels a side remain (Pillow's Image.draft with
 * images.py's draft_size: 8 x 28 when trimming, 28 for fit "full"); 1 when it cannot.
 */
export function jpegDraftScale(width, height, fit = "trim") {
  const least = fit === "full" ? SIDE : 8 * SIDE;
  const scale = Math.min(Math.floor(width / least), Math.floor(height / least));
  return [8, 4, 2].find((s) => scale >= s) ?? 1;
}

/**
 * A JPEG's full-size grayscale pixels -> what Python's draft-mode decode gives: each
 * scale x scale block averaged (libjpeg's reduced-size IDCT is that average within one
 * grey level), the size rounded up as libjpeg does.
 * @returns {{gray: Uint8Array, width: number, height: number}}
 */
export function shrinkAsJpegDraft(gray, width, height, fit = "trim") {
  const scale = jpegDraftScale(width, height, fit);
  if (scale === 1) return { gray, width, height };
  const outW = Math.ceil(width / scale);
  const outH = Math.ceil(height / scale);
  const out = new Uint8Array(outW * outH);
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      let sum = 0;
      let count = 0;
      for (let yy = y * scale; yy < Math.min((y + 1) * scale, height); yy++) {
        for (let xx = x * scale; xx < Math.min((x + 1) * scale, width); xx++) {
          sum += gray[yy * width + xx];
          count++;
        }
      }
      out[y * outW + x] = Math.round(sum / count);
    }
  }
  return { gray: out, width: outW, height: outH };
}

// -- the preparation (prepare.py) ------------------------------------------------------

/** Is the picture a product photo (light border, dark garment)? has_light_background. */
export function hasLightBackground(gray, width, height) {
  if (height < 3 || width < 3) {
    let sum = 0;
    for (let i = 0; i < width * height; i++) sum += gray[i];
    return sum / (width * height) > 127.5;
  }
  let sum = 0;
  for (let i = 0; i < width * height; i++) sum += gray[i];
  for (let y = 1; y < height - 1; y++) {
    for (let x = 1; x < width - 1; x++) sum -= gray[y * width + x];
  }
  const count = width * height - (height - 2) * (width - 2);
  return sum > (count * 255.0) / 2;
}

// The border's pixels in the order prepare.py's garment_box concatenates them (the first
// and last rows, then the first and last columns without their ends).
function borderPixels(gray, width, height) {
  const border = [];
  for (let x = 0; x < width; x++) border.push(gray[x]);
  for (let x = 0; x < width; x++) border.push(gray[(height - 1) * width + x]);
  for (let y = 1; y < height - 1; y++) border.push(gray[y * width]);
  for (let y = 1; y < height - 1; y++) border.push(gray[y * width + width - 1]);
  return border;
}

/** int(np.median(values)): the middle value, or the mean of the middle two, truncated. */
function medianInt(values) {
  const sorted = values.slice().sort((a, b) => a - b);
  const n = sorted.length;
  const mid = n >> 1;
  return n % 2 ? sorted[mid] : Math.trunc((sorted[mid - 1] + sorted[mid]) / 2);
}

/**
 * The garment's rows and columns in a picture on a dark background: everything that differs
 * from the border's median by more than TRIM_THRESHOLD. null for a blank picture.
 * @returns {{top: number, bottom: number, left: number, right: number} | null} bottom and right exclusive
 */
export function garmentBox(gray, width, height) {
  const background = medianInt(borderPixels(gray, width, height));
  let top = height;
  let bottom = -1;
  let left = width;
  let right = -1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (Math.abs(gray[y * width + x] - background) > TRIM_THRESHOLD) {
        if (y < top) top = y;
        if (y > bottom) bottom = y;
        if (x < left) left = x;
        if (x > right) right = x;
      }
    }
  }
  if (bottom < 0) return null;
  return { top, bottom: bottom + 1, left, right: right + 1 };
}

// Python's round(): halves go to the even neighbour (only positive values come here).
function roundHalfEven(x) {
  const floor = Math.floor(x);
  const rest = x - floor;
  if (rest > 0.5) return floor + 1;
  if (rest < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/** Copy rows top..bottom, columns left..right of a (height, width) image. */
function crop(gray, width, { top, bottom, left, right }) {
  const w = right - left;
  const out = new Uint8Array((bottom - top) * w);
  for (let y = top; y < bottom; y++) out.set(gray.subarray(y * width + left, y * width + right), (y - top) * w);
  return out;
}

/** Paste a (h, w) image onto a black (side, side) canvas at (top, left). */
function pasteOnBlack(gray, width, height, side, top, left) {
  const canvas = new Uint8Array(side * side);
  for (let y = 0; y < height; y++) canvas.set(gray.subarray(y * width, (y + 1) * width), (top + y) * side + left);
  return canvas;
}

/** fit_and_centre: the longer edge resized to 28 (bicubic), its box centred on black. */
export function fitAndCentre(gray, width, height) {
  const longer = Math.max(width, height);
  const newH = Math.max(1, roundHalfEven((height * SIDE) / longer));
  const newW = Math.max(1, roundHalfEven((width * SIDE) / longer));
  let pixels = gray;
  if (newH !== height || newW !== width) pixels = resize(gray, width, height, newW, newH, "bicubic");
  const top = Math.floor((SIDE - newH + 1) / 2);
  const left = Math.floor((SIDE - newW + 1) / 2);
  return pasteOnBlack(pixels, newW, newH, SIDE, top, left);
}

/** fit_full_frame: padded to a square with black, then resized whole (fit "full"). */
export function fitFullFrame(gray, width, height) {
  const side = Math.max(width, height);
  let square = gray;
  if (height !== width) {
    square = pasteOnBlack(gray, width, height, side, Math.floor((side - height) / 2), Math.floor((side - width) / 2));
  }
  return resize(square, side, side, SIDE, SIDE, side > SIDE ? "box" : "bilinear");
}

/**
 * A grayscale picture -> the model's 28x28 input, light garment on dark (prepare.py's
 * ``prepare``): invert a light background, trim to the garment, fit the longer edge to 28,
 * centre. A 28x28 picture only gets the inversion check; a blank one is fitted whole.
 * @param {Uint8Array|Uint8ClampedArray} gray width * height bytes, row by row
 * @param {{invert?: "auto"|"always"|"never", fit?: "trim"|"full"}} options
 * @returns {{pixels: Uint8Array, inverted: boolean}} 784 bytes
 */
export function prepare(gray, width, height, { invert = "auto", fit = "trim" } = {}) {
  if (!INVERT_CHOICES.includes(invert)) {
    throw new Error(`invert must be one of ${INVERT_CHOICES.join(", ")}, got ${JSON.stringify(invert)}`);
  }
  if (!FIT_CHOICES.includes(fit)) {
    throw new Error(`fit must be one of ${FIT_CHOICES.join(", ")}, got ${JSON.stringify(fit)}`);
  }
  if (!(width >= 1 && height >= 1) || gray.length !== width * height) {
    throw new Error(`expected ${width}x${height} = ${width * height} gray bytes, got ${gray.length}`);
  }
  const inverted = invert === "always" || (invert === "auto" && hasLightBackground(gray, width, height));
  let pixels = Uint8Array.from(gray);
  if (inverted) pixels = pixels.map((v) => 255 - v);
  if (width === SIDE && height === SIDE) return { pixels, inverted };
  if (fit === "full") return { pixels: fitFullFrame(pixels, width, height), inverted };
  const box = garmentBox(pixels, width, height);
  if (box === null) return { pixels: fitFullFrame(pixels, width, height), inverted };
  const cropped = crop(pixels, width, box);
  return { pixels: fitAndCentre(cropped, box.right - box.left, box.bottom - box.top), inverted };
}
