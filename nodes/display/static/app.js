// EIFER live biofeedback page: receives JSON messages over a WebSocket and draws them with
// Canvas 2D in one requestAnimationFrame loop, redrawing only the panels whose data changed.
// No libraries, no network fetches beyond this server.
"use strict";

const COLORS = { meas: "#4fc3f7", pred: "#ffb74d", grid: "#263040", text: "#e8edf2",
  muted: "#8a96a6", good: "#66bb6a", warn: "#ffca28", bad: "#ef5350", truth: "#f5f5f5",
  landmark: "#4dd0e1" };
const TRACE_CAPACITY = 4096;

const S = {
  ws: null, connected: false, retryDelayMs: 500, retryAtMs: 0, retryTimer: null,
  hello: null, rows: [], latest: {}, receivedAtMs: {}, dirty: new Set(), lastDataMs: -Infinity,
  traces: null, traceHead: 0, traceCount: 0, tLatest: 0, scales: {},
  heat: null, head: null, pendingSent: [],
  fbConfig: null, face: null, faceSeq: 0, faceShownSeq: 0, hasTruth: false,
  quality: null, qualityWasLive: false, spots: null, tipLabel: null,
};
// Read out by tests and benchmarks/display_latency.py.
window.eiferStats = { received: {}, paints: 0, latency_ms: [], draw_latency_ms: [], connects: 0,
  skipped: 0, draw_ms: {}, bad: {},
  face: { decoded: 0, failed: 0, frame: null, image_size: null, drawn: 0, box: null, crop: false,
    landmarks: 0, truth_box: null, truth_phi: 0, truth_activation: 0 },
  quality: { live: false, drawn: 0, states: {}, texts: {}, tip: null, trace_marks: {} } };

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------- connection, with backoff
function connect() {
  S.retryTimer = null;
  const ws = new WebSocket(`ws://${location.host}/ws`);
  S.ws = ws;
  ws.onopen = () => {
    S.connected = true; S.retryDelayMs = 500;
    window.eiferStats.connects += 1;
    setBadge();
  };
  ws.onmessage = (ev) => onText(ev.data);
  ws.onclose = () => {
    S.connected = false; S.ws = null;
    S.retryAtMs = performance.now() + S.retryDelayMs;
    S.retryTimer = setTimeout(connect, S.retryDelayMs);
    S.retryDelayMs = Math.min(S.retryDelayMs * 2, 8000);
    setBadge();
  };
  ws.onerror = () => {};  // onclose follows and schedules the retry
}

function send(obj) { if (S.ws && S.connected) S.ws.send(JSON.stringify(obj)); }

function setBadge() {
  const badge = $("conn"), nodata = $("nodata");
  const now = performance.now();
  let text, cls, overlay = "";
  if (!S.connected) {
    const inS = Math.max(0, Math.ceil((S.retryAtMs - now) / 1000));
    text = S.retryTimer ? `reconnecting${inS > 0 ? " in " + inS + " s" : "…"}` : "connecting…";
    cls = "bad"; overlay = "Disconnected: reconnecting…";
  } else if (!S.hello || now - S.lastDataMs > 1000 * (S.hello.stale_after_s || 2)) {
    text = "no data"; cls = "warn"; overlay = "No data from the pipeline";
  } else { text = "live"; cls = "ok"; }
  if (badge.textContent !== text) badge.textContent = text;
  badge.className = "badge " + cls;
  if (nodata.textContent !== overlay) nodata.textContent = overlay;
  nodata.classList.toggle("hidden", overlay === "");
  document.body.classList.toggle("stale", overlay !== "");  // dim what is no longer live
}

// ---------------------------------------------------------------- messages
// The server checks every bus message against the contract; this is the second line of defence:
// a message the page cannot handle is counted (eiferStats.bad) and forgotten, never kept as the
// topic's latest state, so the next good message draws normally.
function onText(text) {
  let msg = null;
  try { msg = JSON.parse(text); } catch (err) { msg = null; }
  if (!msg || typeof msg !== "object" || typeof msg.topic !== "string" ||
      !msg.fields || typeof msg.fields !== "object") {
    badMessage("unreadable", "not a {topic, fields} message");
    return;
  }
  const previous = S.latest[msg.topic];
  try {
    onMessage(msg);
  } catch (err) {
    if (previous === undefined) delete S.latest[msg.topic]; else S.latest[msg.topic] = previous;
    badMessage(msg.topic, err);
  }
}

function badMessage(topic, why) {
  const bad = window.eiferStats.bad;
  bad[topic] = (bad[topic] || 0) + 1;
  if (bad[topic] <= 3) console.warn(`message on ${topic} not shown:`, String(why));
}

function onMessage(msg) {
  const topic = msg.topic;
  const st = window.eiferStats;
  st.received[topic] = (st.received[topic] || 0) + 1;
  S.latest[topic] = msg;
  S.receivedAtMs[topic] = performance.now();
  switch (topic) {
    case "hello": onHello(msg.fields); break;
    case "muscle": onMuscle(msg); break;
    case "expression": onExpression(msg); break;
    case "face": onFace(msg); break;
    case "quality": onQuality(msg); break;
    case "feedback": S.dirty.add("feedback"); S.dirty.add("symmetry"); break;
    case "feedback_config": onFeedbackConfig(msg.fields); break;
    case "instruction": S.dirty.add("instruction"); break;
    case "status": S.dirty.add("status"); break;
    case "display": st.skipped = msg.fields.skipped; S.dirty.add("status"); break;
  }
}

function onExpression(msg) {
  S.lastDataMs = performance.now(); S.dirty.add("phi"); S.dirty.add("head");
  if (Array.isArray(msg.fields.phi_truth)) { S.hasTruth = true; window.eiferStats.face.truth_phi += 1; }
}

// ---------------------------------------------------------------- the live face (topic "face")
// The JPEGs arrive as base64 text; they are decoded off the animation loop (Image.decode) and
// only a picture that decoded replaces the one on screen, so a corrupt one is counted, not shown.
function jpegImage(b64) {
  const img = new Image();
  img.src = "data:image/jpeg;base64," + b64;
  return img.decode().then(() => img);
}

function onFace(msg) {
  const f = msg.fields;
  if (typeof f.image !== "string" || !Array.isArray(f.image_size) || typeof f.scale !== "number") {
    throw new Error("face message without image, image_size or scale");
  }
  const seq = ++S.faceSeq, st = window.eiferStats.face;
  Promise.all([jpegImage(f.image), typeof f.crop === "string" ? jpegImage(f.crop) : null])
    .then(([img, crop]) => {
      if (seq < S.faceShownSeq) return;  // a newer one was already shown
      if (img.naturalWidth !== f.image_size[0] || img.naturalHeight !== f.image_size[1]) {
        throw new Error(`image is ${img.naturalWidth}x${img.naturalHeight}, not ${f.image_size}`);
      }
      S.faceShownSeq = seq;
      S.face = { fields: f, frame: msg.frame, img, crop };
      st.decoded += 1; st.frame = msg.frame; st.image_size = f.image_size;
      S.dirty.add("face");
    })
    .catch((err) => { st.failed += 1; badMessage("face", err); });
}

function fitRect(w, h, W, H) {
  const s = Math.min(W / w, H / h);
  return { x: (W - w * s) / 2, y: (H - h * s) / 2, s };
}

function strokeBox(g, box, r, color, dashed) {
  if (!Array.isArray(box) || box.length !== 4 || box.some((v) => v == null)) return false;
  g.save();
  g.strokeStyle = color; g.lineWidth = 2.5;
  if (dashed) g.setLineDash([7, 5]);
  g.strokeRect(r.x + box[0] * r.s, r.y + box[1] * r.s, box[2] * r.s, box[3] * r.s);
  g.restore();
  return true;
}

function drawFace() {
  const st = window.eiferStats.face;
  $("face").classList.toggle("hidden", !S.face);
  $("face-note").classList.toggle("hidden", !!S.face);
  if (!S.face) { $("face-meta").textContent = ""; return; }
  const [g, W, H] = ctx2d("face");
  const { fields: f, img, crop } = S.face;
  const cropW = Math.min(H - 22, W * 0.3), imageW = W - cropW - 12;
  const r = fitRect(img.naturalWidth, img.naturalHeight, imageW, H);
  st.rect = { x: r.x, y: r.y, s: r.s, crop_x: W - cropW, crop_w: cropW };  // CSS px, for tests
  g.drawImage(img, r.x, r.y, img.naturalWidth * r.s, img.naturalHeight * r.s);
  // the detector's box: solid when found on this frame, dashed when kept from an earlier one;
  // drawn over the landmarks, the true box (a simulated source's) over both
  const drawBoxes = () => {
    st.box = strokeBox(g, f.face_box, r, COLORS.pred, !f.face_detected) ? f.face_box : null;
    st.truth_box = strokeBox(g, f.truth_face_box, r, COLORS.good, true) ? f.truth_face_box : null;
  };
  st.landmarks = 0;
  if (Array.isArray(f.landmarks)) {
    g.fillStyle = COLORS.landmark;
    for (const p of f.landmarks) {
      if (!Array.isArray(p) || p[0] == null || p[1] == null) continue;
      g.fillRect(r.x + p[0] * r.s - 1, r.y + p[1] * r.s - 1, 2, 2);
      st.landmarks += 1;
    }
  }
  drawBoxes();
  const cx = W - cropW, cy = 0;
  g.fillStyle = "#202834"; g.fillRect(cx, cy, cropW, cropW);
  if (crop) g.drawImage(crop, cx, cy, cropW, cropW);
  else {
    g.fillStyle = COLORS.muted; g.font = "13px DejaVu Sans, Arial"; g.textAlign = "center";
    g.fillText("no face yet", cx + cropW / 2, cy + cropW / 2); g.textAlign = "left";
  }
  st.crop = !!crop;
  g.fillStyle = COLORS.muted; g.font = "12px DejaVu Sans, Arial"; g.textAlign = "center";
  g.fillText("crop the encoders see", cx + cropW / 2, Math.min(H - 4, cropW + 16)); g.textAlign = "left";
  st.drawn += 1;
  const parts = [`frame ${S.face.frame ?? "–"}`, `${f.source_size ? f.source_size.join("×") : "?"} px`,
    f.face_detected ? "face detected" : (f.face_box ? "box kept" : "no face")];
  if (f.truth_face_box) parts.push("true box dashed green");
  const meta = parts.join(" · ");
  if ($("face-meta").textContent !== meta) $("face-meta").textContent = meta;
}

function onHello(h) {
  const index = new Map(h.labels.map((l, i) => [l, i]));
  const used = new Set();
  S.rows = [];
  for (const [left, right] of h.pairs || []) {
    const li = index.get(left), ri = index.get(right);
    S.rows.push({ name: prettyMuscle(h.muscles[li]) || left, right: ri, left: li });
    used.add(li); used.add(ri);
  }
  h.labels.forEach((l, i) => {
    if (!used.has(i)) S.rows.push({ name: (prettyMuscle(h.muscles[i]) || l) + " (" + l + ")",
      right: h.sides[i] === "left" ? null : i, left: h.sides[i] === "left" ? i : null });
  });
  S.hello = h;
  const n = h.labels.length;
  S.traces = { t: new Float64Array(TRACE_CAPACITY), meas: new Float32Array(TRACE_CAPACITY * n),
    pred: new Float32Array(TRACE_CAPACITY * n), truth: new Float32Array(TRACE_CAPACITY * n), n };
  S.traceHead = 0; S.traceCount = 0; S.order = null; S.orderKey = "";
  S.heat = buildHeatmap(h.positions);
  loadHead(h);
  buildElectrodeMap(h);
  for (const k of ["traces", "heatmap", "symmetry", "phi", "status", "instruction", "face"]) S.dirty.add(k);
}

function prettyMuscle(m) { return (m || "").replace(/_/g, " "); }

// Channel order of a muscle message -> scheme order (indices into the message arrays).
function channelOrder(channels) {
  const key = channels ? channels.join(",") : "";
  if (key === S.orderKey && S.order) return S.order;
  const labels = S.hello.labels;
  const where = new Map((channels || labels).map((l, i) => [l, i]));
  S.order = labels.map((l) => (where.has(l) ? where.get(l) : -1));
  S.orderKey = key;
  return S.order;
}

// Measured and predicted vectors in comparable units for drawing.
function muscleViews(f) {
  const normalised = !!f.normalised;
  const meas = normalised ? f.emg_measured : (f.emg_measured_uv || f.emg_measured);
  let pred = null, predOwnScale = false;
  if (normalised) pred = f.emg_from_video || null;
  else if (f.emg_from_video_uv) pred = f.emg_from_video_uv;
  else if (f.emg_from_video) { pred = f.emg_from_video; predOwnScale = true; }
  return { meas: f.emg_missing ? null : meas, pred, normalised, predOwnScale };
}

function onMuscle(msg) {
  const f = msg.fields;
  if (!S.hello || !S.traces) return;
  S.lastDataMs = performance.now();
  const v = muscleViews(f);
  const order = channelOrder(f.channels);
  const tr = S.traces, n = tr.n, slot = S.traceHead;
  const t = msg.t != null ? msg.t : performance.now() / 1000;
  tr.t[slot] = t;
  const truth = Array.isArray(f.truth_activation) ? f.truth_activation : null;
  if (truth) { S.hasTruth = true; window.eiferStats.face.truth_activation += 1; }
  for (let i = 0; i < n; i++) {
    const j = order[i];
    tr.meas[slot * n + i] = v.meas && j >= 0 && v.meas[j] != null ? v.meas[j] : NaN;
    tr.pred[slot * n + i] = v.pred && j >= 0 && v.pred[j] != null ? v.pred[j] : NaN;
    tr.truth[slot * n + i] = truth && j >= 0 && truth[j] != null ? truth[j] : NaN;
  }
  S.traceHead = (slot + 1) % TRACE_CAPACITY;
  S.traceCount = Math.min(S.traceCount + 1, TRACE_CAPACITY);
  S.tLatest = t;
  if (S.muscleView && S.muscleView.normalised !== v.normalised) S.scales = {};  // units changed
  S.muscleView = v;
  if (typeof f.sent_unix_s === "number") S.pendingSent.push(f.sent_unix_s);
  S.dirty.add("traces"); S.dirty.add("heatmap");
}

function onFeedbackConfig(c) {
  S.fbConfig = c;
  fillSelect($("target-select"), ["", ...c.targets], c.target, (v) => shortTarget(v) || "(none)");
  fillSelect($("metric-select"), c.metrics, c.metric, (v) => v);
  S.dirty.add("feedback");
}

// "file:/path/to/reference-20261125-021500.toml" -> "reference-20261125-021500"
function shortTarget(name) {
  return name.startsWith("file:") ? name.slice(5).split("/").pop().replace(/\.toml$/, "") : name;
}

function fillSelect(sel, values, current, label) {
  const key = values.join("\u0001");
  if (sel.dataset.key !== key) {
    sel.textContent = "";
    for (const v of values) {
      const o = document.createElement("option");
      o.value = v; o.textContent = label(v); sel.appendChild(o);
    }
    sel.dataset.key = key;
  }
  sel.value = current;
}

// ---------------------------------------------------------------- canvas helpers
function ctx2d(id) {
  const c = $(id), dpr = window.devicePixelRatio || 1;
  const w = Math.max(1, Math.round(c.clientWidth * dpr)), h = Math.max(1, Math.round(c.clientHeight * dpr));
  if (c.width !== w || c.height !== h) { c.width = w; c.height = h; }
  const g = c.getContext("2d");
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, c.clientWidth, c.clientHeight);
  return [g, c.clientWidth, c.clientHeight];
}

function decayScale(key, seen, floor) {
  const prev = S.scales[key] || floor;
  const next = Math.max(floor, seen, prev * 0.98);  // rises at once, falls gently
  S.scales[key] = next;
  return next;
}

function fmt(x, d = 1) { return x == null || Number.isNaN(x) ? "–" : Number(x).toFixed(d); }

// ---------------------------------------------------------------- traces
function drawTraces() {
  const [g, W, H] = ctx2d("traces");
  window.eiferStats.quality.trace_marks = {};
  const tr = S.traces, v = S.muscleView;
  if (!tr || !S.rows.length || !v) return;
  $("truth-legend").classList.toggle("hidden", !S.hasTruth);
  $("emg-unit").textContent = v.normalised ? "normalised to the participant's maximum"
    : "microvolts (no participant profile)" + (v.predOwnScale ? "; video prediction on its own 0..1 scale" : "");
  const span = S.hello.trace_seconds, tEnd = S.tLatest, n = tr.n;
  const labelW = 170, colGap = 16, colW = (W - labelW - colGap) / 2;
  const rowH = H / S.rows.length;
  g.font = "14px DejaVu Sans, Arial"; g.textBaseline = "middle";
  g.fillStyle = COLORS.muted;
  g.fillText("participant's right", labelW, 8);
  g.fillText("participant's left", labelW + colW + colGap, 8);
  const count = S.traceCount, start = (S.traceHead - count + TRACE_CAPACITY) % TRACE_CAPACITY;
  // at most one point per 2 px: 90 Hz x 10 s is 900 samples for a ~700 px wide trace
  let visible = 0;
  for (let k = 0; k < count; k++) if (tr.t[(start + k) % TRACE_CAPACITY] >= tEnd - span) visible++;
  const step = Math.max(1, Math.ceil(visible / Math.max(1, colW / 2)));
  S.rows.forEach((row, r) => {
    const y0 = r * rowH + (r === 0 ? 14 : 0), h = rowH - (r === 0 ? 14 : 0) - 3;
    g.fillStyle = COLORS.text; g.fillText(row.name, 4, y0 + h / 2);
    // one scale per row so left and right are directly comparable
    let seen = 0;
    for (const ch of [row.right, row.left]) {
      if (ch == null) continue;
      for (let k = 0; k < count; k++) {
        const s = (start + k) % TRACE_CAPACITY;
        if (tr.t[s] < tEnd - span) continue;
        const m = tr.meas[s * n + ch];
        if (m > seen) seen = m;
        if (!v.predOwnScale) { const p = tr.pred[s * n + ch]; if (p > seen) seen = p; }
      }
    }
    const scale = decayScale("row" + r, seen * 1.1, v.normalised ? 1.0 : 5.0);
    [row.right, row.left].forEach((ch, side) => {
      const x0 = labelW + side * (colW + colGap);
      g.strokeStyle = COLORS.grid; g.lineWidth = 1;
      g.strokeRect(x0, y0, colW, h);
      if (ch == null) return;
      // the true activation (0..1) where a simulated source has it, on the row's scale when
      // the EMG is normalised to the participant's maximum (comparable), else on its own
      const lines = [[tr.meas, COLORS.meas, scale], [tr.pred, COLORS.pred, v.predOwnScale ? 1.0 : scale]];
      if (S.hasTruth) lines.push([tr.truth, COLORS.truth, v.normalised ? scale : 1.0]);
      for (const [arr, color, sc] of lines) {
        g.strokeStyle = color; g.lineWidth = arr === tr.truth ? 1.0 : 1.6; g.beginPath();
        g.setLineDash(arr === tr.truth ? [4, 3] : []);
        let pen = false;
        for (let k = (count - 1) % step; k < count; k += step) {  // newest sample always drawn
          const s = (start + k) % TRACE_CAPACITY, t = tr.t[s];
          if (t < tEnd - span) continue;
          const val = arr[s * n + ch];
          if (Number.isNaN(val)) { pen = false; continue; }
          const x = x0 + colW * (1 - (tEnd - t) / span);
          const y = y0 + h - Math.min(1, Math.max(0, val / sc)) * h;
          if (pen) g.lineTo(x, y); else { g.moveTo(x, y); pen = true; }
        }
        g.stroke();
      }
      g.setLineDash([]);
      drawTraceQuality(g, x0, y0, ch);
    });
    g.fillStyle = COLORS.muted; g.font = "11px DejaVu Sans, Arial"; g.textAlign = "right";
    g.fillText(v.normalised ? fmt(scale, 2) : fmt(scale, 0) + " µV", W - 4, y0 + 7);
    g.textAlign = "left";
    g.font = "14px DejaVu Sans, Arial";
  });
}

// ---------------------------------------------------------------- heatmap on a face outline
const FACE = { x0: -0.85, x1: 0.85, y0: -0.95, y1: 0.85, gw: 51, gh: 54, sigma: 0.13 };

function buildHeatmap(positions) {
  const { gw, gh } = FACE, n = positions.length;
  const W = new Float32Array(gw * gh * n), inside = new Uint8Array(gw * gh);
  for (let j = 0; j < gh; j++) for (let i = 0; i < gw; i++) {
    const x = FACE.x0 + (i + 0.5) / gw * (FACE.x1 - FACE.x0);
    const y = FACE.y1 - (j + 0.5) / gh * (FACE.y1 - FACE.y0);
    const cell = j * gw + i;
    inside[cell] = faceInside(x, y) ? 1 : 0;
    let sum = 0.35;  // weight of "no electrode here": activity fades between distant sites
    for (let c = 0; c < n; c++) {
      const dx = x - positions[c][0], dy = y - positions[c][1];
      const w = Math.exp(-(dx * dx + dy * dy) / (2 * FACE.sigma * FACE.sigma));
      W[cell * n + c] = w; sum += w;
    }
    for (let c = 0; c < n; c++) W[cell * n + c] /= sum;
  }
  const img = document.createElement("canvas");
  img.width = gw; img.height = gh;
  return { W, inside, n, img };
}

function faceInside(x, y) {
  const cy = -0.05, rx = 0.8, ry = y > cy ? 0.88 : 0.92;
  return (x * x) / (rx * rx) + ((y - cy) * (y - cy)) / (ry * ry) <= 1;
}

const CMAP = [[16, 20, 26], [40, 30, 110], [150, 40, 120], [235, 100, 50], [252, 230, 120]];
function cmap(u) {
  u = Math.min(1, Math.max(0, u)) * (CMAP.length - 1);
  const i = Math.min(CMAP.length - 2, Math.floor(u)), f = u - i, a = CMAP[i], b = CMAP[i + 1];
  return [a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f];
}

function drawHeatmap() {
  const [g, W, H] = ctx2d("heatmap");
  const v = S.muscleView, heat = S.heat;
  if (!v || !heat) return;
  const order = channelOrder(S.latest.muscle.fields.channels);
  const gather = (arr) => arr ? order.map((j) => (j >= 0 && arr[j] != null ? arr[j] : 0)) : null;
  const meas = gather(v.meas), pred = gather(v.pred);
  const peak = Math.max(0, ...(meas || [0]), ...(v.predOwnScale ? [0] : pred || [0]));
  const scale = decayScale("heat", peak, v.normalised ? 1.0 : 5.0);
  const aspect = (FACE.y1 - FACE.y0) / (FACE.x1 - FACE.x0);
  const panelW = W / 2, size = Math.min(panelW - 10, (H - 24) / aspect);
  if (!(size > 1)) return;  // canvas not laid out yet (first frames on a busy machine)
  const panels = [["measured", meas, scale], ["from video", pred, v.predOwnScale ? 1.0 : scale]];
  panels.forEach(([title, values, sc], p) => {
    const ox = p * panelW + (panelW - size) / 2, oy = 22;
    g.fillStyle = COLORS.text; g.font = "15px DejaVu Sans, Arial"; g.textAlign = "center";
    g.textBaseline = "top"; g.fillText(title, p * panelW + panelW / 2, 2);
    g.textAlign = "left"; g.textBaseline = "alphabetic";
    if (!values) {
      g.fillStyle = COLORS.muted; g.fillText("not available", ox + size / 3, oy + size / 2);
      return;
    }
    renderHeat(heat, values, sc);
    g.save();
    g.beginPath();
    faceOutlinePath(g, ox, oy, size);
    g.clip();
    g.imageSmoothingEnabled = true;
    g.drawImage(heat.img, ox, oy, size, size * aspect);
    g.restore();
    drawFaceSketch(g, ox, oy, size);
    const pos = S.hello.positions;
    g.fillStyle = "#ffffff";
    for (let c = 0; c < pos.length; c++) {
      const [x, y] = toPx(pos[c][0], pos[c][1], ox, oy, size);
      g.beginPath(); g.arc(x, y, 2.5, 0, 2 * Math.PI); g.fill();
    }
  });
  g.fillStyle = COLORS.muted; g.font = "12px DejaVu Sans, Arial";
  g.fillText(v.normalised ? "scale 0–" + fmt(scale, 2) : "scale 0–" + fmt(scale, 0) + " µV", 4, H - 6);
}

function renderHeat(heat, values, sc) {
  const { gw, gh } = FACE, n = heat.n, W = heat.W;
  const g = heat.img.getContext("2d"), data = g.createImageData(gw, gh);
  for (let cell = 0; cell < gw * gh; cell++) {
    let acc = 0;
    for (let c = 0; c < n; c++) acc += W[cell * n + c] * values[c];
    const [r, gg, b] = cmap(acc / sc);
    data.data[cell * 4] = r; data.data[cell * 4 + 1] = gg; data.data[cell * 4 + 2] = b;
    data.data[cell * 4 + 3] = heat.inside[cell] ? 255 : 0;
  }
  g.putImageData(data, 0, 0);
}

function toPx(x, y, ox, oy, size) {
  const s = size / (FACE.x1 - FACE.x0);
  return [ox + (x - FACE.x0) * s, oy + (FACE.y1 - y) * s];
}

// The face sketch in the electrodes' face frame (configs/electrodes: x right in the camera view,
// y up): an outline ellipse and polylines for brows, eyes, nose and mouth. Shared by the activity
// map (Canvas) and the electrode quality map (SVG).
const FACE_OUTLINE = { cx: 0, cy: -0.05, rx: 0.8, ry: 0.9 };
const FACE_SKETCH = [
  ...[-1, 1].flatMap((sx) => [
    [[0.12 * sx, 0.42], [0.3 * sx, 0.47], [0.45 * sx, 0.42]],                                   // brow
    [[0.14 * sx, 0.3], [0.27 * sx, 0.34], [0.4 * sx, 0.3], [0.27 * sx, 0.26], [0.14 * sx, 0.3]], // eye
  ]),
  [[0, 0.28], [-0.06, -0.02], [0, -0.08], [0.06, -0.02]],                                       // nose
  [[-0.22, -0.38], [0, -0.33], [0.22, -0.38], [0, -0.45], [-0.22, -0.38]],                      // mouth
];

function faceOutlinePath(g, ox, oy, size) {
  const s = size / (FACE.x1 - FACE.x0), o = FACE_OUTLINE;
  const [cx, cy] = toPx(o.cx, o.cy, ox, oy, size);
  g.ellipse(cx, cy, o.rx * s, o.ry * s, 0, 0, 2 * Math.PI);
}

function drawFaceSketch(g, ox, oy, size) {
  g.strokeStyle = "rgba(232,237,242,0.55)"; g.lineWidth = 1.5;
  g.beginPath(); faceOutlinePath(g, ox, oy, size); g.stroke();
  for (const pts of FACE_SKETCH) {
    g.beginPath();
    pts.forEach(([x, y], k) => { const [px, py] = toPx(x, y, ox, oy, size); k ? g.lineTo(px, py) : g.moveTo(px, py); });
    g.stroke();
  }
}

// ---------------------------------------------------------------- electrode quality (topic "quality")
// The pipeline's per-channel verdicts (streaming/dsp/quality.py, about twice a second): a spot per
// electrode on the face, coloured AND shaped by state (circle good, triangle check, square with a
// cross bad, dashed ring no data) for colour-blind eyes, the reasons in words on hover or focus,
// a list of the electrodes to fix, and a marker per channel in the traces. Older than
// stale_after_s, the verdicts are greyed: "no quality data".
const Q_STATES = ["good", "check", "bad"];
const Q_COLORS = { good: COLORS.good, check: COLORS.warn, bad: COLORS.bad, none: COLORS.muted };
const Q_SPOT_R = 0.045;  // face units; the closest Fridlund sites are 0.12 apart
// reason code -> [what the experimenter reads, short form for the traces, the metric behind it]
const Q_REASONS = {
  nan: ["samples missing (dropouts)", "dropouts", (m) => `${pct(m.nan_fraction)} missing`],
  flat: ["flat line: no signal (broken lead or dead input)", "flat", (m) => `${fmt(m.rms_uv, 2)} µV RMS`],
  railed: ["at the amplifier's range (railed / clipping): contact lost", "railed", (m) => `${pct(m.railed_fraction)} at the range`],
  stuck: ["stuck values (samples repeat)", "stuck", (m) => `${pct(m.stuck_fraction)} repeated`],
  noise: ["electrode lifting / open input (broadband noise far above its neighbours)", "lifting / open input",
    (m) => `noise ${signed(m.noise_db)} dB over its neighbours`],
  mains: ["mains hum: poor or drying contact", "mains hum", (m, f) => `${f.mains_hz ? fmt(f.mains_hz, 0) + " Hz " : ""}${signed(m.mains_db)} dB over the EMG`],
  bridged: ["bridged by gel with %s (the two carry one signal)", "bridged %s", (m) => `correlation ${fmt(m.bridge_corr, 2)}`],
  motion: ["motion artefacts (cable or electrode moving)", "motion", (m) => `${pct(m.lf_fraction)} of power below 20 Hz`],
  baseline: ["noisy at rest (rest baseline above the limit)", "noisy at rest", (m) => `rest ${fmt(m.rest_rms_uv, 1)} µV RMS`],
  silent: ["silent in %s, which drives its muscle: check placement and contact", "silent",
    (m) => `${signed(m.activity_snr_db)} dB over rest`],
};

function pct(x) { return x == null ? "–" : (100 * x).toFixed(x < 0.1 ? 1 : 0) + " %"; }
function signed(x) { return x == null ? "–" : (x >= 0 ? "+" : "") + fmt(x, 0); }

function onQuality(msg) {
  const f = msg.fields, ch = f.channels;
  const n = Array.isArray(ch) ? ch.length : -1;
  if (n < 0 || !Array.isArray(f.states) || f.states.length !== n || !Array.isArray(f.reasons) ||
      f.reasons.length !== n) throw new Error("quality message without channels, states, reasons");
  const metrics = f.metrics && typeof f.metrics === "object" ? f.metrics : {};
  const byLabel = new Map();
  ch.forEach((label, i) => {
    const state = f.states[i], reasons = f.reasons[i];
    if (!Q_STATES.includes(state) || !Array.isArray(reasons)) throw new Error(`quality of ${label}`);
    const m = {};
    for (const [k, v] of Object.entries(metrics)) if (Array.isArray(v) && v.length === n) m[k] = v[i];
    const partner = Array.isArray(f.bridge_partner) ? f.bridge_partner[i] : "";
    byLabel.set(String(label), { state, reasons: reasons.map(String), metrics: m, partner });
  });
  S.quality = { byLabel, fields: f, receivedMs: performance.now() };
  S.dirty.add("quality"); S.dirty.add("traces");
}

function qualityLive() {
  return !!(S.quality && S.hello &&
    performance.now() - S.quality.receivedMs <= 1000 * (S.hello.stale_after_s || 2));
}

// The verdict shown for the channel ``label``: null when there is none (no data, or stale).
function qualityOf(label) {
  return qualityLive() ? S.quality.byLabel.get(label) || null : null;
}

function reasonWords(code, q, f, short) {
  const [name, arg] = code.split(":", 2);
  const known = Q_REASONS[name];
  if (!known) return code;  // a reason this page does not know yet: as sent
  const fill = name === "bridged" ? (arg || q.partner || "a neighbour") : (f.movement || "the movement");
  const words = known[short ? 1 : 0].replace("%s", fill);
  return short ? words : `${words} [${known[2](q.metrics, f)}]`;
}

// "F9 (levator labii superioris, right): bad: electrode lifting / open input [...]; mains hum [...]"
function electrodeText(i) {
  const h = S.hello, label = h.labels[i];
  const head = `${label} (${prettyMuscle(h.muscles[i])}, ${h.sides[i]})`;
  const q = S.quality ? S.quality.byLabel.get(label) : null;
  if (!q) return `${head}: no quality data${S.quality ? " (not in the pipeline's report)" : ""}`;
  const said = q.state + (q.reasons.length ? ": " + q.reasons.map((r) => reasonWords(r, q, S.quality.fields, false)).join("; ") : "");
  return qualityLive() ? `${head}: ${said}` : `${head}: no quality data (last: ${said})`;
}

// SVG path(s) of a spot at (x, y): [outline, cross] (the cross only for "bad").
function spotPaths(state, x, y, r) {
  if (state === "check") return [`M${x},${y - 1.2 * r}L${x + 1.1 * r},${y + 0.8 * r}L${x - 1.1 * r},${y + 0.8 * r}Z`, ""];
  if (state === "bad") {
    const c = 0.55 * r;
    return [`M${x - r},${y - r}h${2 * r}v${2 * r}h${-2 * r}Z`,
      `M${x - c},${y - c}L${x + c},${y + c}M${x + c},${y - c}L${x - c},${y + c}`];
  }
  return [`M${x - r},${y}a${r},${r} 0 1 0 ${2 * r},0a${r},${r} 0 1 0 ${-2 * r},0Z`, ""];
}

const SVG_NS = "http://www.w3.org/2000/svg";
function svgEl(tag, attrs, parent) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (parent) parent.appendChild(el);
  return el;
}

function stateIcon(state) {  // the legend's and the list's icon: the spot's own shape
  const svg = svgEl("svg", { viewBox: "-1.3 -1.3 2.6 2.6", class: `qi ${state}`, "aria-hidden": "true" });
  const [outline, cross] = spotPaths(state, 0, 0, 1);
  svgEl("path", { d: outline, class: "shape" }, svg);
  if (cross) svgEl("path", { d: cross, class: "cross" }, svg);
  return svg;
}

// The face and one spot per electrode: SVG units are face units x 100 (SVG y down = -face y);
// built once per hello.
function buildElectrodeMap(h) {
  const svg = $("electrodes"), k = 100;
  svg.textContent = "";
  svg.setAttribute("viewBox", `${-0.86 * k} ${-0.86 * k} ${1.72 * k} ${1.84 * k}`);
  const o = FACE_OUTLINE;
  svgEl("ellipse", { cx: o.cx * k, cy: -o.cy * k, rx: o.rx * k, ry: o.ry * k, class: "face" }, svg);
  for (const pts of FACE_SKETCH) {
    svgEl("polyline", { points: pts.map(([x, y]) => `${x * k},${-y * k}`).join(" "), class: "face" }, svg);
  }
  S.spots = h.labels.map((label, i) => {
    const x = h.positions[i][0] * k, y = -h.positions[i][1] * k;
    const g = svgEl("g", { class: "spot none", "data-label": label, "data-state": "none", tabindex: "0", role: "img" }, svg);
    const title = svgEl("title", {}, g);
    const shape = svgEl("path", { class: "shape" }, g);
    const cross = svgEl("path", { class: "cross" }, g);
    const text = svgEl("text", { x, y: y + (Q_SPOT_R + 0.065) * k, class: "label" }, g);
    text.textContent = label;
    return { i, label, x, y, r: Q_SPOT_R * k, g, title, shape, cross, state: null, text: "" };
  });
  S.dirty.add("quality");
}

function drawQuality() {
  const h = S.hello, st = window.eiferStats.quality;
  if (!h || !S.spots) return;
  const live = qualityLive(), counts = { good: 0, check: 0, bad: 0 }, fix = [];
  st.live = live; st.states = {}; st.texts = {};
  for (const spot of S.spots) {
    const q = live ? S.quality.byLabel.get(spot.label) : null;
    const state = q ? q.state : "none";
    if (spot.state !== state) {
      const [outline, cross] = spotPaths(state, spot.x, spot.y, spot.r);
      spot.shape.setAttribute("d", outline); spot.cross.setAttribute("d", cross);
      spot.g.setAttribute("class", "spot " + state); spot.g.dataset.state = state;
      spot.state = state;
    }
    const text = electrodeText(spot.i);
    if (spot.text !== text) { spot.title.textContent = text; spot.g.setAttribute("aria-label", text); spot.text = text; }
    st.states[spot.label] = state; st.texts[spot.label] = text;
    if (state in counts) counts[state] += 1;
    if (state === "bad" || state === "check") fix.push([state, spot]);
  }
  const summary = live ? Q_STATES.filter((s) => counts[s]).map((s) => `${counts[s]} ${s}`).join(" · ") : "no quality data";
  if ($("quality-summary").textContent !== summary) $("quality-summary").textContent = summary;
  const note = $("quality-note");
  note.classList.toggle("hidden", live);
  const why = S.quality ? `last report ${Math.round((performance.now() - S.quality.receivedMs) / 1000)} s ago`
    : "the pipeline publishes no quality topic";
  const noteText = `no quality data (${why})`;
  if (note.textContent !== noteText) note.textContent = noteText;
  const list = $("quality-list");
  list.textContent = "";
  fix.sort((a, b) => (a[0] === b[0] ? a[1].i - b[1].i : a[0] === "bad" ? -1 : 1));
  for (const [state, spot] of fix) {
    const li = document.createElement("li");
    li.className = state; li.dataset.label = spot.label;
    li.append(stateIcon(state), spot.text);
    list.appendChild(li);
  }
  if (live && !fix.length) {
    const li = document.createElement("li");
    li.className = "good"; li.append(stateIcon("good"), "every electrode good");
    list.appendChild(li);
  }
  showTip(S.tipLabel);
  st.drawn += 1;
}

// The hover (or keyboard focus) box: the electrode's words, beside its spot.
function showTip(label) {
  const tip = $("quality-tip"), spot = label && S.spots ? S.spots.find((s) => s.label === label) : null;
  S.tipLabel = spot ? label : null;
  window.eiferStats.quality.tip = spot ? spot.text : null;
  if (!spot) { tip.classList.add("hidden"); return; }
  const [head, ...rest] = spot.text.split(/: (.*)/s);
  tip.textContent = "";
  const b = document.createElement("b"); b.textContent = head;
  tip.append(b, document.createElement("br"), rest.join(""));
  tip.className = "tip " + spot.state;
  const panel = $("quality-panel").getBoundingClientRect(), r = spot.g.getBoundingClientRect();
  const left = Math.max(4, Math.min(r.left - panel.left - 20, panel.width - 264));
  tip.style.left = left + "px";
  tip.style.top = (r.bottom - panel.top + 6) + "px";
}

function setupQuality() {
  const legend = $("quality-legend");
  for (const [state, words] of [["good", "good"], ["check", "check"], ["bad", "bad"], ["none", "no data"]]) {
    const item = document.createElement("span");
    item.append(stateIcon(state), words);
    legend.appendChild(item);
  }
  const svg = $("electrodes");
  const spotOf = (ev) => { const g = ev.target.closest && ev.target.closest(".spot"); return g ? g.dataset.label : null; };
  svg.addEventListener("pointerover", (ev) => showTip(spotOf(ev)));
  svg.addEventListener("pointerleave", () => showTip(null));
  svg.addEventListener("focusin", (ev) => showTip(spotOf(ev)));
  svg.addEventListener("focusout", () => showTip(null));
}

// The traces' per-channel marker: the spot's shape and colour, the label, and what is wrong.
function drawTraceQuality(g, x0, y0, ch) {
  if (!S.quality || document.body.classList.contains("participant")) return;
  const label = S.hello.labels[ch], q = qualityOf(label);
  const state = q ? q.state : "none";
  const words = q && q.reasons.length ? `${state}: ` + q.reasons.map((r) => reasonWords(r, q, S.quality.fields, true)).join(", ")
    : q ? "" : "no quality data";
  const text = words ? `${label} ${words}` : label;
  g.font = "12px DejaVu Sans, Arial";
  const w = g.measureText(text).width + 26;
  g.fillStyle = "rgba(16,20,26,0.8)"; g.fillRect(x0 + 1, y0 + 1, w, 17);
  const cx = x0 + 10, cy = y0 + 10, r = 5;
  g.fillStyle = Q_COLORS[state]; g.strokeStyle = Q_COLORS[state]; g.lineWidth = 1.5;
  if (state === "none") { g.setLineDash([2, 2]); g.beginPath(); g.arc(cx, cy, r, 0, 2 * Math.PI); g.stroke(); g.setLineDash([]); }
  else {
    const [outline, cross] = spotPaths(state, cx, cy, r);
    g.fill(new Path2D(outline));
    if (cross) { g.strokeStyle = "#10141a"; g.lineWidth = 1.8; g.stroke(new Path2D(cross)); }
  }
  g.fillStyle = state === "good" ? COLORS.muted : Q_COLORS[state];
  g.fillText(text, x0 + 20, y0 + 10);
  window.eiferStats.quality.trace_marks[label] = text;
  g.font = "14px DejaVu Sans, Arial";
}

// ---------------------------------------------------------------- symmetry
function drawSymmetry() {
  const [g, W, H] = ctx2d("symmetry");
  const fb = S.latest.feedback, cfg = S.fbConfig;
  if (!fb || !cfg) return;
  const si = fb.fields.symmetry || [], names = cfg.pair_muscles || [];
  const labelW = 170, x0 = labelW, w = W - labelW - 10, rowH = Math.min(26, (H - 22) / Math.max(1, si.length));
  g.font = "13px DejaVu Sans, Arial"; g.textBaseline = "middle";
  g.fillStyle = COLORS.muted;
  g.fillText("right stronger", x0, 8);
  g.textAlign = "right"; g.fillText("left stronger", x0 + w, 8); g.textAlign = "left";
  const cx = x0 + w / 2;
  si.forEach((val, k) => {
    const y = 20 + k * rowH;
    g.fillStyle = COLORS.text; g.fillText(prettyMuscle(names[k]), 4, y + rowH / 2);
    g.fillStyle = "#202834"; g.fillRect(x0, y + 3, w, rowH - 6);
    if (val == null) { g.fillStyle = COLORS.muted; g.fillText("at rest", cx + 6, y + rowH / 2); return; }
    const a = Math.abs(val);
    g.fillStyle = a < 0.2 ? COLORS.good : a < 0.5 ? COLORS.warn : COLORS.bad;
    g.fillRect(Math.min(cx, cx + val * w / 2), y + 5, Math.abs(val * w / 2), rowH - 10);
  });
  g.strokeStyle = COLORS.muted; g.beginPath(); g.moveTo(cx, 16); g.lineTo(cx, H); g.stroke();
}

// ---------------------------------------------------------------- biofeedback score
function drawFeedback() {
  const fb = S.latest.feedback, cfg = S.fbConfig;
  const scoreEl = $("score"), bar = $("score-bar"), label = $("score-label");
  const score = fb ? fb.fields.score : null;
  const target = cfg ? cfg.target : "";
  const text = score == null ? "–" : Math.round(score).toString();
  if (scoreEl.textContent !== text) scoreEl.textContent = text;
  bar.style.transform = `scaleX(${score == null ? 0 : Math.max(0, Math.min(100, score)) / 100})`;
  bar.style.background = score == null ? COLORS.muted : score >= 75 ? COLORS.good : score >= 45 ? COLORS.warn : COLORS.bad;
  const labelText = target ? `target ${shortTarget(target)} · ${cfg.metric}` : "no target: choose one";
  if (label.textContent !== labelText) label.textContent = labelText;
}

// ---------------------------------------------------------------- expression bars
function drawPhi() {
  const [g, W, H] = ctx2d("phi");
  const e = S.latest.expression;
  if (!e) {
    g.fillStyle = COLORS.muted; g.font = "16px DejaVu Sans, Arial"; g.textAlign = "center";
    g.fillText("no expression data (the pipeline runs no models)", W / 2, H / 2);
    g.textAlign = "left";
    return;
  }
  const a = e.fields.phi_video || [], b = e.fields.phi_emg || [];
  const truth = Array.isArray(e.fields.phi_truth) ? e.fields.phi_truth : [];
  $("phi-truth-legend").classList.toggle("hidden", truth.length === 0);
  const n = Math.max(a.length, b.length);
  if (!n) return;
  let peak = 0;
  for (const v of a.concat(b, truth)) if (v != null) peak = Math.max(peak, Math.abs(v));
  const sc = decayScale("phi", peak, 0.5);
  const top = 8, bottom = H - 22, mid = (top + bottom) / 2, half = (bottom - top) / 2;
  const bw = W / n;
  g.strokeStyle = COLORS.grid; g.beginPath(); g.moveTo(0, mid); g.lineTo(W, mid); g.stroke();
  for (let k = 0; k < n; k++) {
    // colour = source, as in the muscle panel: orange from video, blue from EMG
    for (const [arr, color, off] of [[a, COLORS.pred, 0.1], [b, COLORS.meas, 0.5]]) {
      const v = arr[k];
      if (v == null) continue;
      const hgt = Math.max(-1, Math.min(1, v / sc)) * half;
      g.fillStyle = color;
      g.fillRect(k * bw + off * bw, Math.min(mid, mid - hgt), Math.max(1, bw * 0.4), Math.abs(hgt));
    }
    const t = truth[k];  // the true value: a white tick across the pair of bars
    if (t != null) {
      const y = mid - Math.max(-1, Math.min(1, t / sc)) * half;
      g.fillStyle = COLORS.truth; g.fillRect(k * bw, y - 1, Math.max(2, bw * 0.9), 2);
    }
  }
  g.fillStyle = COLORS.muted; g.font = "12px DejaVu Sans, Arial";
  g.fillText("expression 1–50", 4, H - 6);
  g.textAlign = "right"; g.fillText("eyelid 51–52 · jaw 53–55", W - 4, H - 6); g.textAlign = "left";
  g.fillText("±" + fmt(sc, 2), W - 44, 14);
  g.strokeStyle = COLORS.muted;
  for (const k of [50, 52]) { g.beginPath(); g.moveTo(k * bw, top); g.lineTo(k * bw, bottom); g.stroke(); }
}

// ---------------------------------------------------------------- head mesh (Canvas 2D, painter's algorithm)
function headNote(text) {
  $("head").classList.add("hidden");
  const note = $("head-note"); note.textContent = text; note.classList.remove("hidden");
}

async function loadHead(h) {
  const meta = h.head;
  if (S.head && meta && JSON.stringify(S.head.meta) === JSON.stringify(meta)) return;  // reconnect
  S.head = null;
  if (!meta) { headNote(h.head_note); return; }
  let buf;
  try {
    const response = await fetch("/head.bin");
    if (!response.ok) throw new Error("HTTP " + response.status);
    buf = await response.arrayBuffer();
  } catch (err) {
    headNote("could not load the head model: " + err.message);
    return;
  }
  if (buf.byteLength !== 4 * (meta.n_vertices * 3 * (1 + meta.n_components) + meta.n_triangles * 3)) {
    headNote("the head model download is incomplete; reload the page");
    return;
  }
  const V3 = meta.n_vertices * 3, K = meta.n_components;
  const template = new Float32Array(buf, 0, V3);
  const basis = new Float32Array(buf, V3 * 4, V3 * K);
  const tris = new Uint32Array(buf, V3 * 4 * (1 + K), meta.n_triangles * 3);
  S.head = { meta, template, basis, tris, verts: new Float32Array(V3),
    depth: new Float32Array(meta.n_triangles), shade: new Float32Array(meta.n_triangles),
    order: new Uint32Array(meta.n_triangles) };
  $("head").classList.remove("hidden"); $("head-note").classList.add("hidden");
  $("head-source").textContent = `${meta.n_vertices} vertices · driven by phi (video, else EMG) · pose not applied`;
  S.dirty.add("head");
}

const JAW_FIRST = 52, JAW_MAX_RAD = 0.4;

function drawHead() {
  const hd = S.head;
  if (!hd) return;
  const e = S.latest.expression;
  const phi = e ? (e.fields.phi_video || e.fields.phi_emg || []) : [];
  const V3 = hd.template.length, v = hd.verts;
  v.set(hd.template);
  for (let k = 0; k < Math.min(phi.length, hd.meta.n_components); k++) {
    // jaw (53-55) is a linearised rotation: keep it to the physiological range (~0.4 rad)
    const p = k >= JAW_FIRST ? Math.max(-JAW_MAX_RAD, Math.min(JAW_MAX_RAD, phi[k])) : phi[k];
    if (!p) continue;
    const off = k * V3;
    for (let i = 0; i < V3; i++) v[i] += p * hd.basis[off + i];
  }
  const [g, W, H] = ctx2d("head");
  const s = 0.46 * Math.min(W, H), cx = W / 2, cy = H / 2;
  const T = hd.meta.n_triangles, tris = hd.tris;
  let m = 0;
  for (let f = 0; f < T; f++) {
    const a = tris[3 * f] * 3, b = tris[3 * f + 1] * 3, c = tris[3 * f + 2] * 3;
    const ux = v[b] - v[a], uy = v[b + 1] - v[a + 1], uz = v[b + 2] - v[a + 2];
    const wx = v[c] - v[a], wy = v[c + 1] - v[a + 1], wz = v[c + 2] - v[a + 2];
    const nx = uy * wz - uz * wy, ny = uz * wx - ux * wz, nz = ux * wy - uy * wx;
    if (nz <= 0) continue;  // facing away
    const len = Math.hypot(nx, ny, nz) || 1;
    hd.shade[f] = Math.max(0, (0.3 * nx + 0.35 * ny + 0.88 * nz) / len);
    hd.depth[f] = v[a + 2] + v[b + 2] + v[c + 2];
    hd.order[m++] = f;
  }
  const order = hd.order.subarray(0, m).sort((p, q) => hd.depth[p] - hd.depth[q]);
  for (let k = 0; k < m; k++) {
    const f = order[k];
    const a = tris[3 * f] * 3, b = tris[3 * f + 1] * 3, c = tris[3 * f + 2] * 3;
    const l = Math.round(40 + 190 * hd.shade[f]);
    g.fillStyle = `rgb(${l},${Math.round(l * 0.93)},${Math.round(l * 0.88)})`;
    g.strokeStyle = g.fillStyle;
    g.beginPath();
    g.moveTo(cx + v[a] * s, cy - v[a + 1] * s);
    g.lineTo(cx + v[b] * s, cy - v[b + 1] * s);
    g.lineTo(cx + v[c] * s, cy - v[c + 1] * s);
    g.closePath(); g.fill(); g.stroke();
  }
}

// ---------------------------------------------------------------- instruction and status
function drawInstruction() {
  const m = S.latest.instruction;
  if (!m) return;
  const f = m.fields;
  const text = f.text || f.movement || "";
  if ($("instruction").textContent !== text) $("instruction").textContent = text;
  const left = f.remaining_s != null
    ? Math.max(0, f.remaining_s - (performance.now() - S.receivedAtMs.instruction) / 1000) : null;
  const parts = [];
  if (f.movement) parts.push(f.movement);
  if (f.repetition != null) parts.push("repetition " + f.repetition);
  if (f.phase) parts.push(f.phase);
  if (left != null) parts.push(fmt(left, 0) + " s left");
  if (f.index != null && f.total != null) parts.push(`step ${f.index + 1} of ${f.total}`);
  const meta = parts.join(" · ");
  if ($("instruction-meta").textContent !== meta) $("instruction-meta").textContent = meta;
}

function esc(s) { return String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c])); }

function drawStatus() {
  const st = S.latest.status ? S.latest.status.fields : null;
  const d = S.latest.display ? S.latest.display.fields : null;
  const rows = [];
  if (st) {
    rows.push("<tr><th>stream</th><th>state</th><th>rate Hz</th><th>samples</th><th>gaps</th><th>age s</th></tr>");
    for (const [name, s] of Object.entries(st.streams || {})) {
      rows.push(`<tr><td>${esc(name)}</td><td class="${s.connected ? "ok" : "bad"}">${s.connected ? "connected" : "lost"}</td>` +
        `<td>${fmt(s.rate_hz, 1)}</td><td>${s.samples ?? "–"}</td><td class="${s.gaps ? "warn" : ""}">${s.gaps ?? "–"}</td><td>${fmt(s.age_s, 2)}</td></tr>`);
    }
    rows.push("<tr><th>stage</th><th colspan=2>latency p50 ms</th><th colspan=3>p99 ms</th></tr>");
    for (const [stage, l] of Object.entries(st.latency_ms || {})) {
      rows.push(`<tr><td>${esc(stage)}</td><td colspan=2>${fmt(l.p50, 1)}</td><td colspan=3>${fmt(l.p99, 1)}</td></tr>`);
    }
    const fr = st.frames || {};
    rows.push(`<tr><th>frames</th><td colspan=5>published ${fr.published ?? "–"} · dropped <span class="${fr.dropped ? "warn" : ""}">${fr.dropped ?? "–"}</span>` +
      ` · duplicates ${fr.duplicates ?? "–"} · EMG missing ${fr.emg_missing ?? "–"}` +
      (fr.face_previews != null ? ` · face previews ${fr.face_previews}` : "") + "</td></tr>");
    const extra = (st.emg_group_delay_ms != null ? ` · EMG group delay ${fmt(st.emg_group_delay_ms, 1)} ms` : "") +
      (st.profile ? ` · profile ${esc(st.profile)}` : " · no profile");
    rows.push(`<tr><th>backend</th><td colspan=5>${esc(st.backend ?? "–")} · feature ${esc(st.feature ?? "–")}${extra}</td></tr>`);
    for (const e of (st.errors || []).slice(-3)) rows.push(`<tr><td colspan=6 class="bad">${esc(e)}</td></tr>`);
  } else {
    rows.push('<tr><td colspan=6 class="warn">no status from the pipeline yet</td></tr>');
  }
  if (d) {
    rows.push(`<tr><th>display</th><td colspan=5>bus ${esc(d.bus)} · ${d.clients} client(s) · last bus message ` +
      `${d.bus_age_s == null ? "never" : fmt(d.bus_age_s, 1) + " s ago"} · rejected ${d.rejected}` +
      (d.bus_thread && d.bus_thread.restarts ? ` · bus thread restarted ${d.bus_thread.restarts}×` : "") +
      "</td></tr>");
    if (d.bus_thread && !d.bus_thread.alive) rows.push('<tr><td colspan=6 class="bad">bus thread stopped: restarting</td></tr>');
    for (const e of (d.errors || []).slice(-2)) rows.push(`<tr><td colspan=6 class="bad">${esc(e)}</td></tr>`);
  }
  $("status").innerHTML = "<table>" + rows.join("") + "</table>";
  $("skipped").textContent = `skipped ${window.eiferStats.skipped || 0} updates`;
}

// ---------------------------------------------------------------- the one animation loop
const DRAW = { traces: drawTraces, heatmap: drawHeatmap, symmetry: drawSymmetry, phi: drawPhi,
  head: drawHead, feedback: drawFeedback, instruction: drawInstruction, status: drawStatus,
  face: drawFace, quality: drawQuality };
// Minimum ms between redraws of the slower panels: the traces (and the score) follow every
// animation frame; the pictures need not, and skipping them keeps a software-rendered page
// (no GPU) within its frame budget at 60-90 Hz.
const MIN_INTERVAL_MS = { head: 50, heatmap: 33, phi: 33, symmetry: 33, status: 250, face: 50, quality: 100 };
const lastDrawMs = {};
let lastSlowMs = 0;

function frame() {
  const now = performance.now();
  if (now - lastSlowMs > 250) {  // countdown and connection state, 4 Hz
    lastSlowMs = now; setBadge(); S.dirty.add("instruction");
    const live = qualityLive();  // verdicts going stale grey out; while stale, the age counts up
    if (live !== S.qualityWasLive || (!live && S.quality)) { S.dirty.add("quality"); S.dirty.add("traces"); }
    S.qualityWasLive = live;
  }
  const painted = S.dirty.size > 0;
  const todo = Array.from(S.dirty); S.dirty.clear();
  const cost = window.eiferStats.draw_ms;
  for (const k of todo) {
    if (now - (lastDrawMs[k] || -1e9) < (MIN_INTERVAL_MS[k] || 0)) { S.dirty.add(k); continue; }
    lastDrawMs[k] = now;
    const t0 = performance.now();
    try { DRAW[k](); } catch (err) { console.warn("draw " + k + " failed:", err); }
    const dt = performance.now() - t0;
    cost[k] = cost[k] == null ? dt : 0.9 * cost[k] + 0.1 * dt;  // moving average, ms
  }
  if (painted) {
    window.eiferStats.paints += 1;
    if (S.pendingSent.length) {
      // latency_ms: send -> end of the animation-frame callback that drew it, plus a message
      // posted from here, which runs once the browser has rendered that frame ("at paint").
      const drawn = S.pendingSent.splice(0), tDraw = Date.now();
      const st = window.eiferStats;
      for (const sent of drawn) st.draw_latency_ms.push(tDraw - sent * 1000);
      afterPaint(() => {
        const t = Date.now();
        for (const sent of drawn) st.latency_ms.push(t - sent * 1000);
        if (st.latency_ms.length > 20000) { st.latency_ms.splice(0, 10000); st.draw_latency_ms.splice(0, 10000); }
      });
    }
  }
  requestAnimationFrame(frame);
}

const paintChannel = new MessageChannel(), afterPaintQueue = [];
paintChannel.port1.onmessage = () => { const fn = afterPaintQueue.shift(); if (fn) fn(); };
function afterPaint(fn) { afterPaintQueue.push(fn); paintChannel.port2.postMessage(null); }

function setup() {
  const participant = new URLSearchParams(location.search).get("view") === "participant";
  document.body.classList.toggle("participant", participant);
  $("view-toggle").textContent = participant ? "full view" : "participant view";
  $("view-toggle").href = participant ? "?" : "?view=participant";
  $("target-select").addEventListener("change", (e) => send({ type: "target", name: e.target.value }));
  $("metric-select").addEventListener("change", (e) => send({ type: "metric", name: e.target.value }));
  $("capture").addEventListener("click", () => send({ type: "capture" }));
  window.addEventListener("resize", () => { for (const k of Object.keys(DRAW)) S.dirty.add(k); });
  S.dirty.add("face");  // "no camera image" until the first face message
  setupQuality();
  connect();
  requestAnimationFrame(frame);
}

setup();
