// The page: load config.json and the model with onnxruntime-web (wasm), classify dropped, picked or sample images.
// Nothing leaves the browser. window.edgecnn exposes classifyUrl and benchmark for tests and `edgecnn bench`.
import * as ort from "./ort/ort.wasm.min.mjs";
import { decodePixels, toModelInput, toProbabilities, withDefaults } from "./preprocess.js";

ort.env.wasm.wasmPaths = new URL("./ort/", import.meta.url).href;
ort.env.wasm.numThreads = 1; // threads need cross-origin isolation, which a plain static host does not give

const $ = (id) => document.getElementById(id);
const TOP = 5;
let session, config, lastInput;

function show(message, isError = false) {
  $("status").textContent = message;
  $("status").className = isError ? "error" : "";
}

async function classifyBlob(blob, name) {
  const started = performance.now();
  const pixels = await decodePixels(blob);
  const { data, inverted } = toModelInput(pixels, config.preprocessing);
  const { height, width, channels } = config.preprocessing;
  const input = new ort.Tensor("float32", data, [1, height, width, channels]);
  const prepared = performance.now();
  const output = await session.run({ [session.inputNames[0]]: input });
  const done = performance.now();
  lastInput = input;
  const probs = toProbabilities(output[session.outputNames[0]].data, config.preprocessing);
  render(probs, name, blob, { preprocessMs: prepared - started, inferenceMs: done - prepared, inverted });
  return { probs, inferenceMs: done - prepared, preprocessMs: prepared - started, inverted, input: Array.from(data) };
}

function render(probs, name, blob, timing) {
  const order = probs.map((p, i) => [p, i]).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, TOP);
  $("preview").src = URL.createObjectURL(blob);
  $("preview").alt = name;
  $("answer").textContent = `${config.class_names[order[0][1]]} (${(100 * order[0][0]).toFixed(1)}%)`;
  $("bars").replaceChildren(...order.map(([p, i]) => {
    const row = document.createElement("div");
    row.className = "bar";
    row.innerHTML = `<span class="label"></span><span class="track"><span class="fill"></span></span><span class="pct"></span>`;
    row.querySelector(".label").textContent = config.class_names[i];
    row.querySelector(".fill").style.width = `${(100 * p).toFixed(2)}%`;
    row.querySelector(".pct").textContent = `${(100 * p).toFixed(1)}%`;
    return row;
  }));
  $("latency").textContent = `inference ${timing.inferenceMs.toFixed(2)} ms · preprocessing ${timing.preprocessMs.toFixed(2)} ms` +
    (timing.inverted ? " · image inverted to match the training background" : "");
  show(`${name}: classified in your browser (onnxruntime-web ${ort.env.versions.web}, wasm)`);
}

async function classifyUrl(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return classifyBlob(await response.blob(), url.split("/").pop());
}

async function benchmark(runs = 200, warmup = 20, block = 10) {
  // Batch-1 latency of session.run alone, on the last classified image: milliseconds per call, one value per
  // block of calls (the browser's clock ticks in 0.1 ms, too coarse for a single sub-millisecond call).
  const feeds = { [session.inputNames[0]]: lastInput };
  for (let i = 0; i < warmup; i++) await session.run(feeds);
  const times = [];
  for (let i = 0; i < Math.max(1, Math.round(runs / block)); i++) {
    const t = performance.now();
    for (let j = 0; j < block; j++) await session.run(feeds);
    times.push((performance.now() - t) / block);
  }
  return times;
}

function samples() {
  $("samples").replaceChildren(...config.samples.map((s) => {
    const button = document.createElement("button");
    button.type = "button";
    button.title = `a test image (label: ${s.label})`;
    button.innerHTML = `<img alt=""><span></span>`;
    button.querySelector("img").src = s.file;
    button.querySelector("img").alt = s.label;
    button.querySelector("span").textContent = s.label;
    button.addEventListener("click", () => classifyUrl(s.file).catch((e) => show(String(e), true)));
    return button;
  }));
}

function wireInputs() {
  const pick = (file) => file && classifyBlob(file, file.name).catch((e) => show(`${file.name}: ${e.message || e}`, true));
  $("file").addEventListener("change", (event) => pick(event.target.files[0]));
  const drop = $("drop");
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    pick(event.dataTransfer.files[0]);
  });
}

async function main() {
  config = await (await fetch("config.json")).json();
  config.preprocessing = withDefaults(config.preprocessing); // before the model loads: an unknown value stops here
  $("model").textContent = `${config.model.file} · ${config.model.precision} · ${(config.model.bytes / 1024).toFixed(0)} kB`;
  document.title = `edgecnn: ${config.name}`;
  samples();
  wireInputs();
  session = await ort.InferenceSession.create(config.model.file, { executionProviders: ["wasm"] });
  window.edgecnn = { classifyUrl, benchmark, config, ready: true };
  if (config.samples.length) await classifyUrl(config.samples[0].file);
  else show("Model loaded: drop or pick an image.");
  document.body.dataset.ready = "true";
}

main().catch((error) => {
  show(`cannot start: ${error.message || error}`, true);
  document.body.dataset.ready = "error";
  console.error(error);
});
