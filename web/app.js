// The page: load the model and its metadata, take a drawing or an image, show the top 3.
import * as ort from "./node_modules/onnxruntime-web/dist/ort.wasm.min.mjs";
import { classNames, modelInput, readMetadata, runProbabilities } from "./onnx-metadata.js";
import { isJpeg, showInput, toModelInput } from "./preprocess.js";

// The models embedded in the Python package; ?model=URL adds another and picks it.
const MODELS = {
  mlp: "../src/fashion_onnx/assets/fashion_mlp.onnx",
  cnn: "../src/fashion_onnx/assets/fashion_cnn.onnx",
};
const custom = new URLSearchParams(location.search).get("model");

const $ = (id) => document.getElementById(id);
const status = (text) => ($("status").textContent = text);

ort.env.wasm.numThreads = 1; // a static server sends no cross-origin isolation headers

let session;
let classes;
let meta;

async function loadModel(url) {
  session = undefined;
  status("loading model…");
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  const bytes = new Uint8Array(await response.arrayBuffer());
  meta = readMetadata(bytes);
  classes = classNames(meta);
  session = await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"] });
}

async function classify(source, width, height, label, { jpeg = false } = {}) {
  const { pixels, inverted } = toModelInput(source, width, height, { jpeg });
  showInput($("preview"), pixels);
  const how = width === 28 && height === 28 ? "as given" : "trimmed to the garment, fitted, centred";
  $("preview-note").textContent = `28×28, ${how}, light garment on dark${inverted ? " (inverted)" : ""}`;
  // calibrated_probabilities where the file has them (the embedded models do), as fashion-infer
  const probabilities = await runProbabilities(session, ort, modelInput(pixels, meta), 1);
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
    // The file's own pixels, as Pillow reads them: no colour profile applied.
    const bitmap = await createImageBitmap(file, { colorSpaceConversion: "none" });
    await classify(bitmap, bitmap.width, bitmap.height, file.name, { jpeg: await isJpeg(file) });
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
