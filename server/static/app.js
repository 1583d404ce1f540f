// Upload or record audio, POST it to /transcribe, show the transcript and the attention map.
"use strict";

const $ = (id) => document.getElementById(id);

function show(id, text) {
  const el = $(id);
  el.textContent = text;
  el.hidden = !text;
}

function authHeaders() {
  const key = $("api-key").value.trim();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

// The model choice: the server's models (GET /v1/models, the default first). Until they can be
// listed (still loading, or an API key not typed yet) the one choice is "default", sent as no field.
async function loadModels() {
  try {
    const response = await fetch("/v1/models", { headers: authHeaders() });
    if (!response.ok) return;
    const names = (await response.json()).data.map((m) => m.id);
    const select = $("model");
    const chosen = names.includes(select.value) ? select.value : names[0];
    select.replaceChildren(...names.map((name) => new Option(name, name, false, name === chosen)));
  } catch (err) {
    // the page still works with the default model
  }
}

async function transcribe(blob, filename) {
  show("error", "");
  show("status", `Transcribing ${filename}…`);
  const form = new FormData();
  form.append("file", blob, filename);
  if ($("model").value) form.append("model", $("model").value);
  form.append("decoder", $("decoder").value);
  form.append("timestamps", "true");
  form.append("attention", "true");
  try {
    const response = await fetch("/transcribe", { method: "POST", body: form, headers: authHeaders() });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error ? body.error.message : `HTTP ${response.status}`);
    render(body);
    show("status", "");
  } catch (err) {
    show("status", "");
    show("error", err.message);
  }
}

function render(result) {
  $("result").hidden = false;
  $("transcript").textContent = result.text || "(nothing recognised)";
  $("details").textContent =
    `${result.duration.toFixed(2)} s of audio, transcribed in ${result.processing_time.toFixed(2)} s` +
    ` by ${result.model}; confidence ${(100 * result.confidence).toFixed(0)}%`;
  $("words").textContent = (result.words || [])
    .map((w) => `${w.word} [${w.start.toFixed(2)}–${w.end.toFixed(2)} s]`)
    .join("  ");
  if (result.timing_source) $("words").textContent += `  (times from ${result.timing_source})`;
  drawAttention($("attention"), result.attention, result.duration);
}

// weights: U rows (tokens) x T columns (encoder frames); each row scaled to its own maximum.
function drawAttention(canvas, attention, duration) {
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "white";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  if (!attention || !attention.weights.length) {
    ctx.fillStyle = "#5a6275";
    ctx.fillText("no attention returned for this audio", 10, 20);
    return;
  }
  const { tokens, weights } = attention;
  const rows = weights.length, cols = weights[0].length;
  const left = 80, bottom = 24, width = canvas.width - left - 24, height = canvas.height - bottom - 8;

  const image = new ImageData(cols, rows);
  weights.forEach((row, u) => {
    const top = Math.max(...row) || 1;
    row.forEach((w, t) => {
      const [r, g, b] = heat(w / top);
      image.data.set([r, g, b, 255], 4 * (u * cols + t));
    });
  });
  const cells = document.createElement("canvas");
  cells.width = cols;
  cells.height = rows;
  cells.getContext("2d").putImageData(image, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(cells, left, 8, width, height);

  ctx.fillStyle = "#1d2330";
  ctx.font = "12px system-ui, sans-serif";
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  const rowHeight = height / rows;
  tokens.forEach((token, u) => {
    if (rowHeight >= 10 || u % Math.ceil(10 / rowHeight) === 0) {
      ctx.fillText(token, left - 6, 8 + (u + 0.5) * rowHeight);
    }
  });
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  for (let i = 0; i <= 4; i++) {
    ctx.fillText(`${(duration * i / 4).toFixed(1)} s`, left + width * i / 4, 8 + height + 6);
  }
}

// 0 -> dark blue, 1 -> yellow (a short viridis-like ramp).
function heat(x) {
  const stops = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  const pos = Math.min(Math.max(x, 0), 1) * (stops.length - 1);
  const i = Math.min(Math.floor(pos), stops.length - 2), f = pos - i;
  return stops[i].map((c, k) => Math.round(c + f * (stops[i + 1][k] - c)));
}

// --- microphone: MediaRecorder -> decodeAudioData -> 16-bit PCM WAV (the server resamples) ---

let recorder = null;

async function toggleRecording() {
  const button = $("record");
  if (recorder) {
    recorder.stop();
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (err) {
    show("error", `Microphone unavailable: ${err.message}`);
    return;
  }
  const chunks = [];
  recorder = new MediaRecorder(stream);
  recorder.ondataavailable = (e) => chunks.push(e.data);
  recorder.onstop = async () => {
    stream.getTracks().forEach((t) => t.stop());
    recorder = null;
    button.textContent = "Record";
    button.classList.remove("recording");
    try {
      const encoded = await new Blob(chunks).arrayBuffer();
      const audio = await new AudioContext().decodeAudioData(encoded);
      transcribe(wavBlob(audio), "recording.wav");
    } catch (err) {
      show("error", `Could not read the recording: ${err.message}`);
    }
  };
  recorder.start();
  button.textContent = "Stop";
  button.classList.add("recording");
  show("status", "Recording… press Stop when done.");
}

function wavBlob(audio) {
  const n = audio.length, rate = audio.sampleRate;
  const mono = new Float32Array(n);
  for (let c = 0; c < audio.numberOfChannels; c++) {
    audio.getChannelData(c).forEach((x, i) => { mono[i] += x / audio.numberOfChannels; });
  }
  const view = new DataView(new ArrayBuffer(44 + 2 * n));
  const text = (offset, s) => [...s].forEach((ch, i) => view.setUint8(offset + i, ch.charCodeAt(0)));
  text(0, "RIFF"); view.setUint32(4, 36 + 2 * n, true); text(8, "WAVE");
  text(12, "fmt "); view.setUint32(16, 16, true); view.setUint16(20, 1, true); view.setUint16(22, 1, true);
  view.setUint32(24, rate, true); view.setUint32(28, 2 * rate, true); view.setUint16(32, 2, true);
  view.setUint16(34, 16, true);
  text(36, "data"); view.setUint32(40, 2 * n, true);
  mono.forEach((x, i) => view.setInt16(44 + 2 * i, Math.max(-1, Math.min(1, x)) * 32767, true));
  return new Blob([view], { type: "audio/wav" });
}

$("file").addEventListener("change", (e) => {
  const file = e.target.files[0];
  if (file) transcribe(file, file.name);
  e.target.value = "";
});
$("record").addEventListener("click", toggleRecording);
$("api-key").addEventListener("change", loadModels);
loadModels();
