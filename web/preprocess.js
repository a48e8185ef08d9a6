// Any image -> the model's 28x28 input, the same way fashion-infer does it:
// grayscale (transparency laid on white), invert when the border is light (a product
// photo or a drawing), pad to a square with black, resize to 28x28.
export const SIDE = 28;

function grayOf(canvas) {
  const { width, height } = canvas;
  const rgba = canvas.getContext("2d").getImageData(0, 0, width, height).data;
  const gray = new Uint8ClampedArray(width * height);
  for (let i = 0; i < gray.length; i++) {
    // ITU-R 601-2 luma, as Pillow's convert("L")
    gray[i] = Math.round((rgba[4 * i] * 299 + rgba[4 * i + 1] * 587 + rgba[4 * i + 2] * 114) / 1000);
  }
  return gray;
}

function hasLightBorder(gray, width, height) {
  let sum = 0;
  let count = 0;
  for (let x = 0; x < width; x++) {
    sum += gray[x] + gray[(height - 1) * width + x];
    count += 2;
  }
  for (let y = 1; y < height - 1; y++) {
    sum += gray[y * width] + gray[y * width + width - 1];
    count += 2;
  }
  return sum > count * 127.5;
}

/**
 * @param {CanvasImageSource} source an <img>, ImageBitmap or <canvas>
 * @param {number} width the source's width  @param {number} height its height
 * @returns {{pixels: Uint8ClampedArray, inverted: boolean}} 784 bytes, light garment on dark
 */
export function toModelInput(source, width, height) {
  const full = document.createElement("canvas");
  full.width = width;
  full.height = height;
  const ctx = full.getContext("2d", { willReadFrequently: true });
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, width, height);
  ctx.drawImage(source, 0, 0);
  let gray = grayOf(full);
  const inverted = hasLightBorder(gray, width, height);
  if (inverted) gray = gray.map((v) => 255 - v);
  if (width === SIDE && height === SIDE) return { pixels: gray, inverted };

  // Pad to a square (black) and let the canvas downscale with high-quality smoothing.
  const side = Math.max(width, height);
  const square = document.createElement("canvas");
  square.width = side;
  square.height = side;
  const sctx = square.getContext("2d");
  sctx.fillStyle = "#000";
  sctx.fillRect(0, 0, side, side);
  const image = sctx.createImageData(width, height);
  gray.forEach((v, i) => image.data.set([v, v, v, 255], 4 * i));
  sctx.putImageData(image, Math.floor((side - width) / 2), Math.floor((side - height) / 2));
  const small = document.createElement("canvas");
  small.width = SIDE;
  small.height = SIDE;
  const smallCtx = small.getContext("2d", { willReadFrequently: true });
  smallCtx.imageSmoothingEnabled = true;
  smallCtx.imageSmoothingQuality = "high";
  smallCtx.drawImage(square, 0, 0, SIDE, SIDE);
  return { pixels: grayOf(small), inverted };
}

/** Paint 784 gray bytes onto a 28x28 canvas. */
export function showInput(canvas, pixels) {
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(SIDE, SIDE);
  pixels.forEach((v, i) => image.data.set([v, v, v, 255], 4 * i));
  ctx.putImageData(image, 0, 0);
}
