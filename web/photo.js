// The photo model's client side, shared by the page (app.js) and the Node example
// (examples/node/classify.mjs). The preparation itself runs inside the model
// (NAME_photo.onnx: fashion-export --photo), so a client only decodes: RGBA pixels as a
// decoder gives them -> the upright RGB bytes the model takes, one run -> the
// probabilities and the 28x28 picture the model saw. No DOM: plain arrays in and out.

export const SIDE = 28;

/** Is this session a photo model (input "image", uint8 [height, width, 3])? */
export function isPhotoModel(session) {
  return session.inputNames.length === 1 && session.inputNames[0] === "image";
}

/**
 * RGBA bytes -> RGB bytes, transparency laid on white exactly as Pillow does it
 * (Image.alpha_composite, libImaging/AlphaComposite.c: PRECISION_BITS 7, then a rounded
 * division by 255), as fashion-infer reads a transparent picture.
 */
export function rgbaToRgb(rgba, width, height) {
  const count = width * height;
  if (rgba.length < 4 * count) throw new Error(`expected ${4 * count} RGBA bytes, got ${rgba.length}`);
  const rgb = new Uint8Array(3 * count);
  for (let i = 0; i < count; i++) {
    const a = rgba[4 * i + 3];
    for (let c = 0; c < 3; c++) {
      const v = rgba[4 * i + c];
      let out = v;
      if (a === 0) out = 255;
      else if (a !== 255) {
        const t = v * a * 128 + 255 * (255 - a) * 128 + (0x80 << 7);
        out = (((t >> 8) + t) >> 8) >> 7;
      }
      rgb[3 * i + c] = out;
    }
  }
  return rgb;
}

/** The EXIF orientation (1-8) of a JPEG's APP1 segment or a PNG's eXIf chunk; 1 without. */
export function exifOrientation(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let tiff = -1;
  if (bytes[0] === 0xff && bytes[1] === 0xd8) {
    for (let at = 2; at + 4 <= bytes.length && bytes[at] === 0xff; ) {
      const marker = bytes[at + 1];
      const length = view.getUint16(at + 2);
      if (marker === 0xe1 && String.fromCharCode(...bytes.subarray(at + 4, at + 8)) === "Exif") {
        tiff = at + 10;
        break;
      }
      if (marker === 0xda) break; // the pixels start: no EXIF before them
      at += 2 + length;
    }
  } else if (bytes[0] === 0x89 && bytes[1] === 0x50) {
    for (let at = 8; at + 8 <= bytes.length; ) {
      const length = view.getUint32(at);
      const kind = String.fromCharCode(...bytes.subarray(at + 4, at + 8));
      if (kind === "eXIf") {
        tiff = at + 8;
        break;
      }
      if (kind === "IDAT" || kind === "IEND") break;
      at += 12 + length;
    }
  }
  if (tiff < 0 || tiff + 8 > bytes.length) return 1;
  const little = bytes[tiff] === 0x49; // "II": little-endian, "MM": big
  const u16 = (at) => view.getUint16(at, little);
  const ifd = tiff + view.getUint32(tiff + 4, little);
  if (ifd + 2 > bytes.length) return 1;
  for (let i = 0, n = u16(ifd); i < n && ifd + 14 + 12 * i <= bytes.length; i++) {
    const entry = ifd + 2 + 12 * i;
    if (u16(entry) === 0x0112) {
      const value = u16(entry + 8);
      return value >= 1 && value <= 8 ? value : 1;
    }
  }
  return 1;
}

/**
 * Stored RGB pixels -> as a viewer shows them for an EXIF orientation (Pillow's
 * exif_transpose): {rgb, width, height}.
 */
export function upright(rgb, width, height, orientation) {
  if (orientation === 1) return { rgb, width, height };
  const swap = orientation >= 5;
  const w = swap ? height : width;
  const h = swap ? width : height;
  const out = new Uint8Array(rgb.length);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      // the stored pixel shown at (x, y)
      let sx = x;
      let sy = y;
      switch (orientation) {
        case 2: sx = width - 1 - x; break;
        case 3: sx = width - 1 - x; sy = height - 1 - y; break;
        case 4: sy = height - 1 - y; break;
        case 5: sx = y; sy = x; break;
        case 6: sx = y; sy = height - 1 - x; break;
        case 7: sx = width - 1 - y; sy = height - 1 - x; break;
        case 8: sx = width - 1 - y; sy = x; break;
      }
      const from = 3 * (sy * width + sx);
      out.set(rgb.subarray(from, from + 3), 3 * (y * w + x));
    }
  }
  return { rgb: out, width: w, height: h };
}

/**
 * One picture through a photo model: {probabilities, prepared}. The probabilities are
 * the file's calibrated_probabilities where it has them (softmax(logits / T), what
 * fashion-infer reports), else its probabilities; prepared is the model's own 28x28 input
 * (784 bytes, light garment on black).
 */
export async function runPhoto(session, ort, rgb, width, height) {
  const image = new ort.Tensor("uint8", rgb, [height, width, 3]);
  const read = ["calibrated_probabilities", "probabilities"].find((n) => session.outputNames.includes(n));
  const out = await session.run({ image }, [read, "prepared"]);
  return { probabilities: out[read].data, prepared: out.prepared.data };
}
