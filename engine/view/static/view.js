// ivuscal live view: draws the engine's state updates on two canvases (docs/streaming.md, "Live view").
// Angles: degrees clockwise as displayed from 3 o'clock (docs/conventions.md), which is also the
// canvas arc() convention (x right, y down), so arcs are drawn with their own angles.
"use strict";

const COLOURS = {
  provisional: "rgb(255, 176, 0)", final: "rgb(230, 40, 40)", spread: "rgb(190, 60, 255)", track: "rgb(44, 48, 56)",
  calcium: "rgb(255, 120, 0)", head: "rgb(255, 214, 140)", empty: "rgb(28, 31, 37)", lesion: "rgb(0, 190, 255)",
};
const SPREAD_HIGH = 51; // 0.2 * 255: ensemble members disagree (standard deviation of their probabilities)
// The rings stay clear of the angle labels in the corners of the edges (the tests sample along them).
const XSEC = { size: 480, image: 352, rSpread: 181, rProvisional: 192, rFinal: 207, wSpread: 5, wProvisional: 10, wFinal: 12 };
const MAP = { left: 44, top: 26, height: 180, laneHeight: 14 };

const view = (window.__ivuscalView = {
  stats: { updates: 0, received: 0, drawn: 0, skipped: 0, bridgeSkipped: 0, previews: 0, previewsDrawn: 0, mapColumns: 0, connects: 0, fps: 0 },
  status: "connecting", live: false, stream: null, lastDrawn: null, onDrawn: null,
  geometry: { cx: XSEC.size / 2, cy: XSEC.size / 2, rProvisional: XSEC.rProvisional, rFinal: XSEC.rFinal, rSpread: XSEC.rSpread },
  sampleCrossSection: (x, y) => Array.from(xsec.getImageData(x, y, 1, 1).data),
  sampleMap: (frame, angleDeg) => Array.from(mapData.getImageData(frame, Math.floor(angleDeg), 1, 1).data),
});

const xsec = document.getElementById("xsec").getContext("2d");
const lmapCanvas = document.getElementById("lmap");
const lmap = lmapCanvas.getContext("2d");
const mapCanvas = document.createElement("canvas"); // one column per frame, one row per degree
const mapData = mapCanvas.getContext("2d", { willReadFrequently: true });
const streamSelect = document.getElementById("stream");

let socket = null;
let pullback = null;
let pending = null; // newest result not drawn yet
let current = null; // result on screen
let image = null; // newest decoded preview
let imageHeader = null;
let lesions = [];
let finals = 0;
let engine = {};
let drawTimes = [];
let frameRequested = false;

function resetMap(nFrames) {
  mapCanvas.width = Math.max(nFrames || 0, 64);
  mapCanvas.height = 360;
  mapData.fillStyle = COLOURS.empty;
  mapData.fillRect(0, 0, mapCanvas.width, 360);
  finals = 0;
  view.stats.mapColumns = 0;
}

function growMap(columns) {
  if (columns <= mapCanvas.width) return;
  const old = document.createElement("canvas");
  old.width = mapCanvas.width; old.height = 360;
  old.getContext("2d").drawImage(mapCanvas, 0, 0);
  mapCanvas.width = Math.max(columns, 2 * old.width);
  mapData.fillStyle = COLOURS.empty;
  mapData.fillRect(0, 0, mapCanvas.width, 360);
  mapData.drawImage(old, 0, 0);
}

function paintColumn(ctx, frame, arcs, colour) {
  for (const [start, , extent] of arcs) {
    const end = start + extent; // may pass 360: wrap onto the top rows
    ctx.fillStyle = colour;
    ctx.fillRect(frame, start, 1, Math.min(end, 360) - start);
    if (end > 360) ctx.fillRect(frame, 0, 1, end - 360);
  }
}

function addFinals(rows, from) {
  growMap(from + rows.length);
  rows.forEach((arcs, i) => {
    const frame = from + i;
    mapData.fillStyle = COLOURS.empty;
    mapData.fillRect(frame, 0, 1, 360);
    if (arcs) paintColumn(mapData, frame, arcs, COLOURS.calcium); // null: this frame's result never reached the view
  });
  finals = from + rows.length;
  view.stats.mapColumns = finals;
}

function ring(radius, width, colour, start, end) {
  xsec.beginPath();
  xsec.arc(view.geometry.cx, view.geometry.cy, radius, (start * Math.PI) / 180, (end * Math.PI) / 180);
  xsec.strokeStyle = colour;
  xsec.lineWidth = width;
  xsec.stroke();
}

function drawCrossSection() {
  const { cx, cy } = view.geometry;
  xsec.fillStyle = "#111418";
  xsec.fillRect(0, 0, XSEC.size, XSEC.size);
  xsec.save();
  xsec.beginPath();
  xsec.arc(cx, cy, XSEC.image / 2, 0, 2 * Math.PI);
  xsec.clip();
  xsec.fillStyle = "#000";
  xsec.fill();
  if (image && imageHeader && (!pullback || imageHeader.pullback === pullback.pullback)) {
    const scale = XSEC.image / Math.max(imageHeader.width, imageHeader.height);
    const [px, py] = imageHeader.center_xy; // catheter centre in preview pixels goes to the canvas centre
    xsec.drawImage(image, cx - (px + 0.5) * scale, cy - (py + 0.5) * scale, imageHeader.width * scale, imageHeader.height * scale);
    view.stats.previewsDrawn += 1;
  }
  xsec.restore();
  ring(XSEC.rSpread, XSEC.wSpread, COLOURS.track, 0, 360);
  ring(XSEC.rProvisional, XSEC.wProvisional, COLOURS.track, 0, 360);
  ring(XSEC.rFinal, XSEC.wFinal, COLOURS.track, 0, 360);
  if (current) {
    if (current.spread_u8) {
      const spread = Uint8Array.from(atob(current.spread_u8), (c) => c.charCodeAt(0));
      const step = 360 / spread.length;
      spread.forEach((v, k) => v >= SPREAD_HIGH && ring(XSEC.rSpread, XSEC.wSpread, COLOURS.spread, k * step, (k + 1) * step));
    }
    for (const [start, , extent] of current.provisional) ring(XSEC.rProvisional, XSEC.wProvisional, COLOURS.provisional, start, start + extent);
    for (const [start, , extent] of (current.final || { arcs: [] }).arcs) ring(XSEC.rFinal, XSEC.wFinal, COLOURS.final, start, start + extent);
  }
  xsec.fillStyle = "#8a929c";
  xsec.font = "11px system-ui, sans-serif";
  xsec.textBaseline = "middle";
  const edge = XSEC.size - 2;
  for (const [deg, x, y, align] of [[0, edge, cy, "right"], [90, cx, edge - 6, "center"], [180, 2, cy, "left"], [270, cx, 8, "center"]]) {
    xsec.textAlign = align;
    xsec.fillText(`${deg}°`, x, y);
  }
  xsec.textAlign = "left";
  xsec.font = "14px system-ui, sans-serif";
  xsec.fillStyle = "#e6e8eb";
  if (current) {
    xsec.fillText(`frame ${current.frame}  ${current.position_mm.toFixed(2)} mm`, 8, 20);
    xsec.fillText(current.final ? `final: frame ${current.final.frame}` : "final: -", 8, XSEC.size - 12);
    if (current.flagged) { // the reliability flag: these images are unlike the training data
      xsec.textAlign = "right";
      xsec.fillStyle = COLOURS.spread;
      xsec.fillText("low confidence", XSEC.size - 8, 20);
      xsec.textAlign = "left";
    }
  }
  if (!view.live) {
    xsec.textAlign = "center";
    xsec.font = "600 22px system-ui, sans-serif";
    xsec.fillStyle = "rgba(17, 20, 24, 0.75)";
    xsec.fillRect(cx - 170, cy - 24, 340, 48);
    xsec.fillStyle = "#e6e8eb";
    xsec.fillText(statusText(), cx, cy);
  }
}

function drawMap() {
  const width = lmapCanvas.width - MAP.left - 8;
  const nFrames = Math.max((pullback && pullback.n_frames) || 0, finals, current ? current.frame + 1 : 0, 1);
  const scale = width / nFrames;
  lmap.fillStyle = "#111418";
  lmap.fillRect(0, 0, lmapCanvas.width, lmapCanvas.height);
  lmap.imageSmoothingEnabled = false;
  lmap.fillStyle = COLOURS.empty;
  lmap.fillRect(MAP.left, MAP.top, width, MAP.height);
  lmap.drawImage(mapCanvas, 0, 0, finals, 360, MAP.left, MAP.top, finals * scale, MAP.height);
  if (current && current.frame >= finals) { // frames not final yet: the newest provisional arcs, lighter
    const head = document.createElement("canvas");
    head.width = 1; head.height = 360;
    paintColumn(head.getContext("2d"), 0, current.provisional, COLOURS.head);
    lmap.drawImage(head, 0, 0, 1, 360, MAP.left + finals * scale, MAP.top, (current.frame + 1 - finals) * scale, MAP.height);
  }
  lesions.forEach(([first, last, maxArc], i) => {
    const x = MAP.left + first * scale;
    const w = Math.max((last + 1 - first) * scale, 2);
    lmap.fillStyle = COLOURS.lesion;
    lmap.fillRect(x, MAP.top - MAP.laneHeight, w, MAP.laneHeight - 3);
    lmap.fillStyle = "#111418";
    lmap.font = "11px system-ui, sans-serif";
    lmap.textAlign = "left";
    lmap.fillText(`L${i + 1} ${Math.round(maxArc)}°`, x + 2, MAP.top - 5);
  });
  if (current) {
    const x = MAP.left + (current.frame + 0.5) * scale;
    lmap.fillStyle = "#ffffff";
    lmap.fillRect(x - 1, MAP.top - 2, 2, MAP.height + 4);
  }
  lmap.fillStyle = "#8a929c";
  lmap.font = "11px system-ui, sans-serif";
  lmap.textAlign = "right";
  for (const deg of [0, 90, 180, 270, 360]) lmap.fillText(`${deg}°`, MAP.left - 4, MAP.top + (deg / 360) * MAP.height + 4);
  const spacing = (pullback && pullback.frame_spacing_mm) || 0;
  for (let i = 0; i <= 5; i += 1) {
    const frame = Math.round((i / 5) * nFrames);
    lmap.textAlign = i === 0 ? "left" : i === 5 ? "right" : "center";
    lmap.fillText(spacing ? `${(frame * spacing).toFixed(1)} mm` : `${frame}`, MAP.left + frame * scale, MAP.top + MAP.height + 16);
  }
}

function draw(now) {
  frameRequested = false;
  if (pending) {
    current = pending;
    pending = null;
    view.stats.drawn += 1;
    drawTimes.push(now);
    while (drawTimes.length && now - drawTimes[0] > 2000) drawTimes.shift();
    view.stats.fps = drawTimes.length > 1 ? ((drawTimes.length - 1) * 1000) / (now - drawTimes[0]) : 0;
  }
  drawCrossSection();
  drawMap();
  text("n-frame", current ? `${current.frame} (${current.position_mm.toFixed(1)} mm)` : "-");
  text("n-fps", `${view.stats.fps.toFixed(1)} frames/s`);
  if (current) {
    view.lastDrawn = { frame: current.frame, provisional: current.provisional, final: current.final, stream: view.stream };
    if (view.onDrawn) view.onDrawn(view.lastDrawn);
  }
}

function requestDraw() {
  if (!frameRequested) {
    frameRequested = true;
    requestAnimationFrame(draw);
  }
}

function statusText() {
  if (view.status === "disconnected") return "View disconnected: reconnecting";
  if (engine.reachable === false) return "Engine unreachable";
  return view.live ? "Live" : "No pullback running";
}

function showStatus() {
  const pill = document.getElementById("status");
  pill.textContent = statusText();
  pill.className = `status ${view.live ? "live" : view.status === "disconnected" || engine.reachable === false ? "down" : "idle"}`;
  document.getElementById("engine").textContent = engine.backend ? `${engine.backend} · ${engine.model} · queue ${engine.queue_depth}` : "";
}

function showStreams(streams, running, selected) {
  const options = ["", ...streams];
  const labels = Array.from(streamSelect.options).map((o) => o.value);
  if (labels.join("|") !== options.join("|")) {
    streamSelect.replaceChildren(...options.map((s) => new Option(s ? `${s}${running.includes(s) ? " (live)" : ""}` : "follow the live stream", s)));
    streamSelect.value = selected;
  }
}

function text(id, value) {
  document.getElementById(id).textContent = value;
}

function showNumbers(update) {
  const n = update.numbers;
  if (!n) return;
  text("n-maxarc", `${n.max_arc_deg.toFixed(0)}°`);
  text("n-length", `${n.calcified_length_mm.toFixed(1)} mm (${n.calcified_frames} frames)`);
  text("n-lesions", `${n.lesions} closed${current && current.in_calcium ? ", one open" : ""}`);
  const score = n.score;
  text("n-score", score ? `${score.total_assessed} point${score.total_assessed === 1 ? "" : "s"}${n.score_final ? "" : " so far (closed lesions)"}` : "0 points so far (closed lesions)");
  const missing = score ? ["calcified_nodule", "vessel_diameter_small"].filter((k) => score[k] === "not assessed") : ["calcified_nodule", "vessel_diameter_small"];
  text("n-notassessed", missing.map((k) => (k === "calcified_nodule" ? "calcified nodule" : "vessel diameter < 3.5 mm")).join(", ") || "none");
  text("n-dropped", `${n.dropped} / ${n.filled}`);
  text("n-flagged", n.results ? `${n.flagged} of ${n.results} (ensemble disagrees)` : "-");
  text("n-latency", n.latency_ms_last === null ? "-" : `${n.latency_ms_last.toFixed(1)} ms (p50 ${n.latency_ms_p50.toFixed(1)})`);
  const s = update.summary;
  text("summary", s ? `Pullback ${pullback ? pullback.pullback : ""} ended: ${s.n_frames} frames, max arc ${Math.round(s.max_arc_deg)}°, calcium length ${s.calcium_length_mm} mm.` : "");
}

function onState(update) {
  view.stats.updates += 1;
  engine = update.engine || {};
  if (update.reset) {
    pullback = update.pullback;
    current = pending = null;
    image = imageHeader = null;
    resetMap(pullback && pullback.n_frames);
  }
  pullback = update.pullback || pullback;
  view.stream = update.stream;
  view.live = Boolean(update.live);
  lesions = update.lesions || lesions;
  if (update.finals && update.finals.rows.length) addFinals(update.finals.rows, update.finals.from);
  if (update.result) {
    view.stats.received += 1;
    if (pending) view.stats.skipped += 1; // superseded before the screen refreshed
    pending = update.result;
  }
  view.stats.bridgeSkipped = update.bridge_skipped || 0;
  showStreams(update.streams || [], update.running || [], streamSelect.value);
  showStatus();
  showNumbers(update);
  const s = view.stats;
  document.getElementById("counters").textContent =
    `results received ${s.received}, drawn ${s.drawn}, skipped ${s.skipped} here and ${s.bridgeSkipped} at the server; previews ${s.previews}; map ${s.mapColumns} frames`;
  requestDraw();
}

async function onPreview(buffer) {
  const length = new DataView(buffer).getUint32(0);
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 4, length)));
  const bitmap = await createImageBitmap(new Blob([new Uint8Array(buffer, 4 + length)], { type: "image/jpeg" }));
  view.stats.previews += 1;
  if (imageHeader && header.pullback === imageHeader.pullback && header.frame < imageHeader.frame) return; // decoded late
  image = bitmap;
  imageHeader = header;
  requestDraw();
}

function connect() {
  socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);
  socket.binaryType = "arraybuffer";
  socket.onopen = () => {
    view.status = "connected";
    view.stats.connects += 1;
    if (streamSelect.value) socket.send(JSON.stringify({ select: streamSelect.value }));
  };
  socket.onmessage = (message) => (typeof message.data === "string" ? onState(JSON.parse(message.data)) : onPreview(message.data));
  socket.onclose = () => {
    view.status = "disconnected";
    view.live = false;
    showStatus();
    requestDraw();
    setTimeout(connect, 1000);
  };
}

streamSelect.addEventListener("change", () => {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ select: streamSelect.value || null }));
});
resetMap(0);
requestDraw();
connect();
