// An image -> the model's input, as edgecnn/preprocess.py's load_image does it, in the browser.
// Same steps, same integer arithmetic: 8-bit gray by Pillow's formula (transparency on white),
// auto-invert by the border ring's median, and (only when the size differs) trim, longest-edge
// Lanczos resize and centring on the background colour. At the model's own size the result is
// identical to Python's; the resize follows Pillow's algorithm in floating point (off by at most 1 of 255).

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
  let w = width, h = height, crop = work;
  if (bottom >= 0) {
    w = right - left + 1; h = bottom - top + 1;
    crop = new Uint8Array(w * h * channels);
    for (let y = 0; y < h; y++) {
      crop.set(work.subarray(((top + y) * width + left) * channels, ((top + y) * width + left + w) * channels), y * w * channels);
    }
  }
  const scale = Math.min(outH / h, outW / w);
  const newW = Math.max(1, Math.min(outW, roundHalfEven(w * scale)));
  const newH = Math.max(1, Math.min(outH, roundHalfEven(h * scale)));
  let resized = crop;
  if (newW !== w || newH !== h) {
    const across = newW !== w ? resample1d(crop, w, h, channels, newW, true) : crop;
    resized = newH !== h ? resample1d(across, newW, h, channels, newH, false) : across;
  }
  const canvas = new Uint8Array(outW * outH * channels);
  for (let i = 0; i < outW * outH; i++) for (let c = 0; c < channels; c++) canvas[i * channels + c] = fill[c];
  const ox = (outW - newW) >> 1, oy = (outH - newH) >> 1;
  for (let y = 0; y < newH; y++) {
    canvas.set(resized.subarray(y * newW * channels, (y + 1) * newW * channels), ((oy + y) * outW + ox) * channels);
  }
  return canvas;
}

export function toModelInput({ width, height, rgba }, preprocessing) {
  // Float32 in [0, 1], (H, W, C) of the model: load_image(size, channels, invert="auto", background).
  const channels = preprocessing.channels;
  const n = width * height;
  const gray = toGray(rgba, n);
  let work = gray;
  if (channels === 3) {
    work = new Uint8Array(n * 3);
    for (let i = 0; i < n; i++) for (let c = 0; c < 3; c++) work[3 * i + c] = rgba[4 * i + c];
  }
  const background = ["dark", "light"].includes(preprocessing.background) ? preprocessing.background : null;
  const invert = background !== null && (median(ringValues(gray, width, height, 1, 0)) > 127) !== (background === "light");
  if (invert) {
    for (let i = 0; i < gray.length; i++) gray[i] = 255 - gray[i];
    if (work !== gray) for (let i = 0; i < work.length; i++) work[i] = 255 - work[i];
  }
  const { height: outH, width: outW } = preprocessing;
  const pixels = width === outW && height === outH ? work : fit(work, gray, width, height, channels, outH, outW);
  const out = new Float32Array(pixels.length);
  for (let i = 0; i < pixels.length; i++) out[i] = Math.fround(pixels[i] / 255);
  return { data: out, inverted: invert };
}
