// Any image on the page -> the model's 28x28 input, the same way fashion-infer does it
// (prepare.js, the port of prepare.py): drawn at full size on white (transparency laid on
// white), Pillow's grayscale, a light background inverted, trimmed to the garment, the
// longer edge fitted to 28, centred on black.
import { prepare, rgbaToGray, shrinkAsJpegDraft, SIDE } from "./prepare.js";

export { SIDE };

/**
 * @param {CanvasImageSource} source an <img>, ImageBitmap or <canvas>
 * @param {number} width the source's width  @param {number} height its height
 * @param {{jpeg?: boolean, fit?: "trim"|"full"}} options jpeg: the source is a decoded
 *   JPEG file, which Python decodes smaller when it is large (Pillow's draft mode)
 * @returns {{pixels: Uint8Array, inverted: boolean}} 784 bytes, light garment on dark
 */
export function toModelInput(source, width, height, { jpeg = false, fit = "trim" } = {}) {
  const full = document.createElement("canvas");
  full.width = width;
  full.height = height;
  const ctx = full.getContext("2d", { willReadFrequently: true });
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, width, height);
  ctx.drawImage(source, 0, 0); // at its own size: no canvas resampling
  const rgba = ctx.getImageData(0, 0, width, height).data;
  let picture = { gray: rgbaToGray(rgba, width, height), width, height };
  if (jpeg) picture = shrinkAsJpegDraft(picture.gray, width, height, fit);
  return prepare(picture.gray, picture.width, picture.height, { fit });
}

/** Is this file a JPEG? (its first bytes, whatever its name or type says) */
export async function isJpeg(file) {
  const head = new Uint8Array(await file.slice(0, 3).arrayBuffer());
  return head.length === 3 && head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff;
}

/** Paint 784 gray bytes onto a 28x28 canvas. */
export function showInput(canvas, pixels) {
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(SIDE, SIDE);
  pixels.forEach((v, i) => image.data.set([v, v, v, 255], 4 * i));
  ctx.putImageData(image, 0, 0);
}
