// An image -> the model's input, as edgecnn/preprocess.py's load_image does it, in the browser.
// Same steps, same integer arithmetic: 8-bit gray by Pillow's formula (transparency on white),
// auto-invert by the border ring's median and (only when the size differs) the bundle's resize:
// "fit" (trim, longest-edge Lanczos resize, centre on the background colour), "stretch" (Lanczos to
// the model's size) or "center-crop" (the largest centred box of the model's aspect ratio, then Lanczos).
// Then the 0..255 pixels become the model's input range in float32. At the model's own size the result
// is identical to Python's; the resize follows Pillow's algorithm in floating point (off by at most 1 of 255,
// unless Lanczos overshoot clips in the 8-bit intermediate and Pillow ran its passes in the other order).

const TRIM_THRESHOLD = 16;

export async function decodePixels(blob) {
  // RGBA bytes of the first frame, composited on white like Pillow's _flatten.
  const bitmap = await createImageBitmap(blob, { colorSpaceConversion: "none", premultiplyAlpha: "none" });
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, bitmap.width, bitmap.height);
  ctx.drawImage(bitmap, 0, 0);
  const data = ctx.getImageData(0, 0, bitmap.width, bitmap.height, { colorSpace: "srgb" }).data;
  return { width: bitmap.width, height: bitmap.height, rgba: data };
}

function toGray(rgba, n) {
  // Pillow's RGB -> L: (R*19595 + G*38470 + B*7471 + 0x8000) >> 16.
  const gray = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    gray[i] = (rgba[4 * i] * 19595 + rgba[4 * i + 1] * 38470 + rgba[4 * i + 2] * 7471 + 0x8000) >> 16;
  }
  return gray;
}

function median(values) {
  // numpy.median: the mean of the two middle values for an even count.
  const v = Float64Array.from(values).sort();
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

function ringValues(plane, width, height, channels, channel) {
  const ring = Math.max(1, Math.floor(Math.min(height, width) / 28));
  const out = [];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (y < ring || y >= height - ring || x < ring || x >= width - ring) out.push(plane[(y * width + x) * channels + channel]);
    }
  }
  return out;
}

function roundHalfEven(x) {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function lanczos(x) {
  if (x > -3 && x < 3) {
    if (x === 0) return 1;
    const px = Math.PI * x;
    return (3 * Math.sin(px) * Math.sin(px / 3)) / (px * px);
  }
  return 0;
}

function resample1d(src, inW, inH, channels, outW, horizontal) {
  // One pass of Pillow's separable resampling (ImagingResampleHorizontal/Vertical), rounded to 8 bits.
  const inLen = horizontal ? inW : inH;
  const outLen = outW;
  const scale = inLen / outLen;
  const filterscale = Math.max(scale, 1);
  const support = 3 * filterscale;
  const w = horizontal ? outLen : inW;
  const h = horizontal ? inH : outLen;
  const out = new Uint8Array(w * h * channels);
  for (let o = 0; o < outLen; o++) {
    const center = (o + 0.5) * scale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inLen);
    const k = [];
    let total = 0;
    for (let x = xmin; x < xmax; x++) {
      const v = lanczos((x - center + 0.5) / filterscale);
      k.push(v);
      total += v;
    }
    for (let i = 0; i < k.length; i++) k[i] = total ? k[i] / total : 0;
    const lines = horizontal ? inH : inW;
    for (let line = 0; line < lines; line++) {
      for (let c = 0; c < channels; c++) {
        let acc = 0;
        for (let i = 0; i < k.length; i++) {
          const idx = horizontal ? (line * inW + xmin + i) : ((xmin + i) * inW + line);
          acc += src[idx * channels + c] * k[i];
        }
        const dst = horizontal ? (line * outLen + o) : (o * inW + line);
        out[dst * channels + c] = Math.min(255, Math.max(0, Math.round(acc)));
      }
    }
  }
  return out;
}

function resize(src, w, h, channels, newW, newH) {
  // Image.resize((newW, newH), LANCZOS): horizontal pass first, then vertical, as Pillow's Resample.c does
  // (the Pillow 13.0.0 wheel was seen to run the vertical pass first for some sizes).
  if (newW === w && newH === h) return src;
  const across = newW !== w ? resample1d(src, w, h, channels, newW, true) : src;
  return newH !== h ? resample1d(across, newW, h, channels, newH, false) : across;
}

function crop(src, width, channels, left, top, w, h) {
  // Image.crop((left, top, left + w, top + h)) of an interleaved (H, W, C) plane.
  const out = new Uint8Array(w * h * channels);
  for (let y = 0; y < h; y++) {
    const start = ((top + y) * width + left) * channels;
    out.set(src.subarray(start, start + w * channels), y * w * channels);
  }
  return out;
}

function fit(work, gray, width, height, channels, outH, outW) {
  // _fit: trim the background, resize the longest edge to fit, centre on the background colour.
  const fill = [];
  for (let c = 0; c < channels; c++) fill.push(Math.trunc(median(ringValues(work, width, height, channels, c))));
  const ref = Math.trunc(median(ringValues(gray, width, height, 1, 0)));
  let top = height, bottom = -1, left = width, right = -1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (Math.abs(gray[y * width + x] - ref) > TRIM_THRESHOLD) {
        top = Math.min(top, y); bottom = Math.max(bottom, y); left = Math.min(left, x); right = Math.max(right, x);
      }
    }
  }
  let w = width, h = height, trimmed = work;
  if (bottom >= 0) {
    w = right - left + 1; h = bottom - top + 1;
    trimmed = crop(work, width, channels, left, top, w, h);
  }
  const scale = Math.min(outH / h, outW / w);
  const newW = Math.max(1, Math.min(outW, roundHalfEven(w * scale)));
  const newH = Math.max(1, Math.min(outH, roundHalfEven(h * scale)));
  const resized = resize(trimmed, w, h, channels, newW, newH);
  const canvas = new Uint8Array(outW * outH * channels);
  for (let i = 0; i < outW * outH; i++) for (let c = 0; c < channels; c++) canvas[i * channels + c] = fill[c];
  const ox = (outW - newW) >> 1, oy = (outH - newH) >> 1;
  for (let y = 0; y < newH; y++) {
    canvas.set(resized.subarray(y * newW * channels, (y + 1) * newW * channels), ((oy + y) * outW + ox) * channels);
  }
  return canvas;
}

export function centerCropBox(width, height, outW, outH) {
  // The largest centred box of the model's aspect ratio: [left, top, w, h] (the contract's integer arithmetic).
  if (width / height > outW / outH) {
    const w = roundHalfEven((height * outW) / outH);
    return [(width - w) >> 1, 0, w, height];
  }
  const h = roundHalfEven((width * outH) / outW);
  return [0, (height - h) >> 1, width, h];
}

const RESIZES = {
  // (work, gray, width, height, channels, outH, outW) -> the (outH, outW, channels) pixels, per the bundle's resize.
  fit,
  stretch: (work, gray, width, height, channels, outH, outW) => resize(work, width, height, channels, outW, outH),
  "center-crop": (work, gray, width, height, channels, outH, outW) => {
    const [left, top, w, h] = centerCropBox(width, height, outW, outH);
    return resize(crop(work, width, channels, left, top, w, h), w, h, channels, outW, outH);
  },
};

// uint8 pixel -> the model's input value, in float32 (u / 255 is rounded to float32 first, as numpy does).
const INPUT_RANGES = {
  "0-1": (u) => Math.fround(u / 255),
  "0-255": (u) => u,
  "-1-1": (u) => Math.fround(Math.fround(u / 255) * 2 - 1),
};
const OUTPUTS = ["probabilities", "logits"];

export function withDefaults(preprocessing) {
  // Older bundles lack the last three keys: they mean [0, 1] input, "fit" and probabilities out.
  // A value this page does not know is refused, so a newer bundle never runs with the wrong numbers.
  const p = { input_range: "0-1", resize: "fit", output: "probabilities", ...preprocessing };
  const known = { input_range: Object.keys(INPUT_RANGES), resize: Object.keys(RESIZES), output: OUTPUTS };
  for (const [key, values] of Object.entries(known)) {
    if (!values.includes(p[key])) throw new Error(`preprocessing ${key} ${JSON.stringify(p[key])} is not one of ${values.join(", ")}`);
  }
  if (![1, 3].includes(p.channels)) throw new Error(`preprocessing channels must be 1 or 3, got ${JSON.stringify(p.channels)}`);
  return p;
}

export function toModelInput({ width, height, rgba }, preprocessing) {
  // Float32 (H, W, C) of the model in its input range: load_image(size, channels, invert="auto", background, resize).
  const p = withDefaults(preprocessing);
  const channels = p.channels;
  const n = width * height;
  const gray = toGray(rgba, n);
  let work = gray;
  if (channels === 3) {
    work = new Uint8Array(n * 3);
    for (let i = 0; i < n; i++) for (let c = 0; c < 3; c++) work[3 * i + c] = rgba[4 * i + c];
  }
  const background = ["dark", "light"].includes(p.background) ? p.background : null;
  const invert = background !== null && (median(ringValues(gray, width, height, 1, 0)) > 127) !== (background === "light");
  if (invert) {
    for (let i = 0; i < gray.length; i++) gray[i] = 255 - gray[i];
    if (work !== gray) for (let i = 0; i < work.length; i++) work[i] = 255 - work[i];
  }
  const { height: outH, width: outW } = p;
  const pixels = width === outW && height === outH ? work : RESIZES[p.resize](work, gray, width, height, channels, outH, outW);
  const scale = INPUT_RANGES[p.input_range];
  const out = new Float32Array(pixels.length);
  for (let i = 0; i < pixels.length; i++) out[i] = scale(pixels[i]);
  return { data: out, inverted: invert };
}

export function toProbabilities(outputs, preprocessing) {
  // The model's outputs as probabilities: softmax (max-subtracted, rounded to float32) when it gives logits.
  const values = Array.from(outputs);
  if (withDefaults(preprocessing).output !== "logits") return values;
  const top = Math.max(...values);
  const exps = values.map((v) => Math.fround(Math.exp(Math.fround(v - top))));
  const total = Math.fround(exps.reduce((a, b) => a + b, 0));
  return exps.map((e) => Math.fround(e / total));
}
