// The page: load a photo model and its metadata, take a drawing or an image, show the top 3
// and the 28x28 picture the model saw. The preparation runs inside the model
// (NAME_photo.onnx); the page only hands it the picture's RGB pixels (photo.js).
import * as ort from "./node_modules/onnxruntime-web/dist/ort.wasm.min.mjs";
import { classNames, readMetadata } from "./onnx-metadata.js";
import { isPhotoModel, rgbaToRgb, runPhoto, SIDE } from "./photo.js";

// The photo models embedded in the Python package; ?model=URL adds another (a photo
// model, from fashion-export --photo) and picks it.
const MODELS = {
  mlp: "../src/fashion_onnx/assets/fashion_mlp_photo.onnx",
  cnn: "../src/fashion_onnx/assets/fashion_cnn_photo.onnx",
};
const custom = new URLSearchParams(location.search).get("model");

const $ = (id) => document.getElementById(id);
const status = (text) => ($("status").textContent = text);

ort.env.wasm.numThreads = 1; // a static server sends no cross-origin isolation headers

let session;
let classes;

async function loadModel(url) {
  session = undefined;
  status("loading model…");
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  const bytes = new Uint8Array(await response.arrayBuffer());
  classes = classNames(readMetadata(bytes));
  const loaded = await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"] });
  if (!isPhotoModel(loaded)) throw new Error(`${url} is not a photo model (make one with fashion-export --photo)`);
  session = loaded;
}

/** The source's RGB pixels at its own size, transparency laid on white. */
function pixelsOf(source, width, height) {
  const full = document.createElement("canvas");
  full.width = width;
  full.height = height;
  const ctx = full.getContext("2d", { willReadFrequently: true });
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, width, height);
  ctx.drawImage(source, 0, 0); // at its own size: no canvas resampling
  return rgbaToRgb(ctx.getImageData(0, 0, width, height).data, width, height);
}

/** Paint the model's 784 prepared bytes onto the 28x28 preview. */
function showPrepared(pixels) {
  const ctx = $("preview").getContext("2d");
  const image = ctx.createImageData(SIDE, SIDE);
  pixels.forEach((v, i) => image.data.set([v, v, v, 255], 4 * i));
  ctx.putImageData(image, 0, 0);
}

async function classify(source, width, height, label) {
  const { probabilities, prepared } = await runPhoto(session, ort, pixelsOf(source, width, height), width, height);
  showPrepared(prepared);
  const how = width === SIDE && height === SIDE ? "as given" : "the garment found, straightened, fitted, centred";
  $("preview-note").textContent = `28×28, ${how}: what the model saw`;
  // calibrated_probabilities where the file has them (the embedded models do), as fashion-infer
  render(Array.from(probabilities), label);
}

function render(probs, label) {
  const order = probs.map((p, i) => [p, i]).sort((a, b) => b[0] - a[0]);
  $("top3").replaceChildren(
    ...order.slice(0, 3).map(([p, i]) => {
      const li = document.createElement("li");
      li.dataset.label = String(i);
      li.dataset.prob = String(p);
      li.innerHTML = `<span class="name"></span> <span class="pct"></span><div class="bar"></div>`;
      li.querySelector(".name").textContent = classes[i];
      li.querySelector(".pct").textContent = `${(100 * p).toFixed(1)}%`;
      li.querySelector(".bar").style.width = `${Math.max(1, 100 * p)}%`;
      return li;
    }),
  );
  $("probs").tBodies[0].replaceChildren(
    ...probs.map((p, i) => {
      const tr = document.createElement("tr");
      tr.dataset.label = String(i);
      tr.dataset.prob = String(p);
      tr.innerHTML = "<td></td><td></td>";
      tr.cells[0].textContent = classes[i];
      tr.cells[1].textContent = `${(100 * p).toFixed(2)}%`;
      return tr;
    }),
  );
  status(`classified ${label}: ${classes[order[0][1]]}`);
}

async function classifyFile(file) {
  status(`classifying ${file.name}…`);
  try {
    // The file's own pixels, as Pillow reads them: no colour profile applied; upright as
    // its EXIF orientation says (createImageBitmap's default, as fashion-infer does).
    const bitmap = await createImageBitmap(file, { colorSpaceConversion: "none", imageOrientation: "from-image" });
    await classify(bitmap, bitmap.width, bitmap.height, file.name);
  } catch (error) {
    status(`could not read ${file.name}: ${error.message}`);
  }
}

// -- drawing -------------------------------------------------------------------------
const draw = $("draw");
const pen = draw.getContext("2d");
function clearDrawing() {
  pen.fillStyle = "#fff";
  pen.fillRect(0, 0, draw.width, draw.height);
}
clearDrawing();
pen.lineWidth = 22;
pen.lineCap = "round";
pen.lineJoin = "round";
pen.strokeStyle = "#000";
let drawing = false;
draw.addEventListener("pointerdown", (e) => {
  drawing = true;
  pen.beginPath();
  pen.moveTo(e.offsetX, e.offsetY);
});
draw.addEventListener("pointermove", (e) => {
  if (!drawing) return;
  pen.lineTo(e.offsetX, e.offsetY);
  pen.stroke();
});
for (const end of ["pointerup", "pointerleave"]) {
  draw.addEventListener(end, () => {
    if (drawing && session) classify(draw, draw.width, draw.height, "drawing");
    drawing = false;
  });
}
$("clear").addEventListener("click", clearDrawing);
$("classify-drawing").addEventListener("click", () => classify(draw, draw.width, draw.height, "drawing"));

// -- upload and drop -----------------------------------------------------------------
$("file").addEventListener("change", (e) => {
  if (e.target.files.length) classifyFile(e.target.files[0]);
  e.target.value = ""; // choosing the same file again fires again
});
const drop = $("drop");
drop.addEventListener("dragover", (e) => {
  e.preventDefault();
  drop.classList.add("over");
});
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  if (e.dataTransfer.files.length) classifyFile(e.dataTransfer.files[0]);
});

// -- the model -----------------------------------------------------------------------
const choice = $("model");
if (custom) {
  MODELS.custom = custom;
  choice.add(new Option(`from the URL: ${custom}`, "custom"));
  choice.value = "custom";
}
function useModel() {
  loadModel(MODELS[choice.value]).then(
    () => status("ready: draw, drop or choose an image"),
    (error) => status(`could not load the model: ${error.message}`),
  );
}
choice.addEventListener("change", useModel);
useModel();
