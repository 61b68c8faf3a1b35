// stylegan explorer: the page's whole state is one "view"; every render, download and command is of it.
// Renders are newest-only: at most one request in flight, and slider positions that arrive meanwhile
// replace each other, so a drag never queues stale images. window.explorer exposes the state and
// per-image timings for scripts and tests.
"use strict";

const $ = (sel) => document.querySelector(sel);
const state = {
  session: null, networks: [], network: null, view: "generate",
  seed: 0, psi: 0.7, noise_mode: "const", class_idx: null, translate: [0, 0], rotate: 0,
  edits: [],              // {direction, label, component, rows, strength, space}
  mix: { rows: [1, 2, 3], cols: [4, 5, 6], styles: [0, 1, 2, 3] },
  paste_back: false, photo: null, face: 0, projected: null,
};
const timings = [];       // {t0, shown, server_ms, key}: input event -> image on screen
window.explorer = { state, timings, rendered: 0, requestRender: () => requestRender() };

// ---- requests -------------------------------------------------------------------------------------
async function api(path, { method = "GET", json, body, headers = {} } = {}) {
  const h = { "X-Session": state.session || "", ...headers };
  if (json !== undefined) { h["Content-Type"] = "application/json"; body = JSON.stringify(json); }
  const r = await fetch(path, { method, headers: h, body });
  if (!r.ok) {
    let text = `${r.status} ${r.statusText}`;
    try { text = (await r.json()).error || text; } catch (e) { /* not JSON */ }
    const err = new Error(text); err.status = r.status; throw err;
  }
  return r;
}

function viewBody() {
  const v = {
    network: state.network.name, view: state.view, seed: state.seed, psi: state.psi,
    noise_mode: state.noise_mode, class_idx: state.class_idx,
  };
  if (state.view === "generate" && state.network.stylegan3) { v.translate = state.translate; v.rotate = state.rotate; }
  if (state.view === "mix") v.mix = state.mix;
  if (state.view !== "mix") {
    v.edits = state.edits.map((e) => ({ direction: e.direction, component: e.component, rows: e.rows, strength: e.strength }));
  }
  if (state.view === "photo") v.paste_back = state.paste_back;
  return v;
}

function showMessage(text) {
  const m = $("#message");
  m.textContent = text || "";
  m.hidden = !text;
}

function setStatus(text) { $("#status").textContent = text; }

// ---- the render loop: one request in flight, newest position wins --------------------------------
let inFlight = false, pending = null, commandTimer = null;

function requestRender() {
  if (!state.network) return;
  if (state.view === "photo" && !state.projected) { showMessage(""); return; }
  pending = { body: viewBody(), t0: performance.now() };
  if (!inFlight) pump();
}

async function pump() {
  inFlight = true;
  while (pending) {
    const job = pending; pending = null;
    const key = JSON.stringify(job.body);
    try {
      const r = await api("/api/render", { method: "POST", json: job.body });
      if (r.status === 204) continue;            // superseded on the server by a newer position
      const serverMs = parseFloat(r.headers.get("X-Render-Ms") || "0");
      const blob = await r.blob();
      await show(blob, job, key, serverMs);
      showMessage("");
    } catch (e) {
      showMessage(e.message);
      $("#image").dataset.error = e.message;
    }
  }
  inFlight = false;
  clearTimeout(commandTimer);
  commandTimer = setTimeout(updateCommand, 150);
}

async function show(blob, job, key, serverMs) {
  const img = $("#image");
  const url = URL.createObjectURL(blob);
  const next = new Image();
  next.src = url;
  await next.decode();
  const old = img.src;
  img.src = url;
  img.classList.toggle("small", next.naturalWidth < 256);
  await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
  if (old && old.startsWith("blob:")) URL.revokeObjectURL(old);
  const b = job.body;
  Object.assign(img.dataset, {
    key, view: b.view, network: b.network, seed: String(b.seed), psi: String(b.psi),
    edits: JSON.stringify(b.edits || []), width: String(next.naturalWidth),
  });
  delete img.dataset.error;
  window.explorer.rendered += 1;
  timings.push({ t0: job.t0, shown: performance.now(), server_ms: serverMs, key });
  if (timings.length > 2000) timings.shift();
  setStatus(`${next.naturalWidth}×${next.naturalHeight} · ${Math.round(performance.now() - job.t0)} ms`);
}

async function updateCommand() {
  if (!state.network || (state.view === "photo" && !state.projected)) { $("#command").textContent = ""; return; }
  try {
    const r = await api("/api/command", { method: "POST", json: viewBody() });
    $("#command").textContent = (await r.json()).command;
  } catch (e) { $("#command").textContent = ""; }
}

// ---- networks -----------------------------------------------------------------------------------
function selectNetwork(name) {
  const net = state.networks.find((n) => n.name === name);
  const changed = state.network && state.network.name !== name;
  state.network = net;
  $("#network").value = name;
  $("#network-info").textContent = `${net.resolution} px · ${net.stylegan3 ? "StyleGAN3" : "StyleGAN2"} · ${net.num_ws} ws rows`;
  $("#class-row").hidden = !net.c_dim;
  const cls = $("#class");
  cls.innerHTML = "";
  for (let i = 0; i < net.c_dim; i++) cls.add(new Option(String(i), String(i)));
  state.class_idx = net.c_dim ? Math.min(state.class_idx ?? 0, net.c_dim - 1) : null;
  if (net.c_dim) cls.value = String(state.class_idx);
  $("#pose-row").hidden = !net.stylegan3;
  if (changed && state.edits.length) {   // directions belong to one network; the seed carries over
    state.edits = []; renderEditList(); setStatus("edits cleared: their directions belonged to the other network");
  }
  applyMixPreset();
  loadDirections();
  requestRender();
}

// ---- generate -----------------------------------------------------------------------------------
function setSeed(seed, from) {
  seed = Math.max(0, Math.min(4294967295, Math.floor(Number(seed) || 0)));
  state.seed = seed;
  if (from !== "#seed") $("#seed").value = String(seed);     // not while someone types in it
  if (from !== "#seed-slider" && seed <= 9999) $("#seed-slider").value = String(seed);
  requestRender();
}

function bindRange(id, apply, digits = 2) {
  const el = $(id), out = $(`${id}-value`);
  el.addEventListener("input", () => {
    const v = Number(Number(el.value).toFixed(digits));
    if (out) out.textContent = String(v);
    apply(v);
    requestRender();
  });
}

// ---- style mixing -------------------------------------------------------------------------------
function parseList(text, max) {
  const out = [];
  for (const part of text.split(",").map((s) => s.trim()).filter(Boolean)) {
    const m = part.match(/^(\d+)(?:\s*-\s*(\d+))?$/);
    if (!m) throw new Error(`bad list ${JSON.stringify(text)}: expected e.g. 1,2,5-7`);
    const lo = Number(m[1]), hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo || hi - lo > 64) throw new Error(`bad range ${part}`);
    for (let v = lo; v <= hi; v++) if (!out.includes(v)) out.push(v);
  }
  if (!out.length) throw new Error("an empty list");
  if (max !== undefined && out.length > max) throw new Error(`at most ${max} seeds per side`);
  return out;
}

function formatList(values) {
  const parts = []; let run = [];
  const flush = () => { if (run.length) parts.push(run.length > 1 ? `${run[0]}-${run[run.length - 1]}` : String(run[0])); };
  for (const v of values) { if (run.length && v === run[run.length - 1] + 1) run.push(v); else { flush(); run = [v]; } }
  flush();
  return parts.join(",");
}

function readMix() {
  try {
    state.mix = { rows: parseList($("#mix-rows").value, 6), cols: parseList($("#mix-cols").value, 6),
                  styles: parseList($("#mix-styles").value) };
    requestRender();
  } catch (e) { showMessage(e.message); }
}

function applyMixPreset() {
  const preset = $("#mix-preset").value;
  const net = state.network;
  $("#mix-styles").disabled = preset !== "custom";
  if (preset !== "custom" && net) {
    const rows = net.bands[preset];
    if (!rows) { showMessage(`${net.name} has no ${preset} rows`); return; }
    $("#mix-styles").value = formatList(rows);
  }
  if (state.view === "mix") readMix();
  else { try { state.mix.styles = parseList($("#mix-styles").value); } catch (e) { /* shown when used */ } }
}

// ---- edits --------------------------------------------------------------------------------------
let directions = [];

async function loadDirections() {
  if (!state.network) return;
  const r = await api(`/api/directions?network=${encodeURIComponent(state.network.name)}`);
  directions = await r.json();
  const sel = $("#direction-source"), keep = sel.value;
  sel.innerHTML = "";
  for (const d of directions) {
    const note = d.ready ? "" : d.id === "ganspace" ? " (compute)" : d.error ? " (unreadable)" : " (download)";
    sel.add(new Option(`${d.label}${d.space === "s" ? " [S]" : ""}${note}`, d.id));
  }
  if (directions.some((d) => d.id === keep)) sel.value = keep;
}

function rowsFor(choice) {
  if (!choice) return null;
  if (choice === "custom") return parseList($("#direction-rows-custom").value).filter((r) => r < state.network.num_ws);
  const rows = state.network.bands[choice];
  if (!rows) throw new Error(`${state.network.name} has no ${choice} rows`);
  return rows;
}

async function addEdit() {
  const id = $("#direction-source").value;
  const d = directions.find((x) => x.id === id);
  if (!d) return;
  try {
    const component = Math.max(0, Math.floor(Number($("#direction-component").value) || 0));
    if (d.components && component >= d.components) throw new Error(`${d.label} has components 0..${d.components - 1}`);
    const rows = d.space === "s" ? null : rowsFor($("#direction-rows").value);
    if (!d.ready) {
      if (d.error) throw new Error(d.error);
      setStatus(`${d.id === "ganspace" ? "computing GANSpace" : "downloading " + d.label}…`);
      await api("/api/directions", { method: "POST", json: { network: state.network.name, direction: d.id } });
      const final = await followJob();
      if (final.state !== "done") throw new Error(final.message || final.state);
      await loadDirections();
    }
    state.edits.push({ direction: d.id, label: d.label, component, rows, strength: 0, space: d.space });
    renderEditList();
    showMessage("");
  } catch (e) { showMessage(e.message); }
}

async function uploadDirection(file) {
  try {
    const r = await api(`/api/directions/upload?network=${encodeURIComponent(state.network.name)}`,
      { method: "POST", body: file, headers: { "X-Filename": encodeURIComponent(file.name), "Content-Type": "application/octet-stream" } });
    const d = await r.json();
    await loadDirections();
    $("#direction-source").value = d.id;
    state.edits.push({ direction: d.id, label: d.label, component: 0, rows: d.rows, strength: 0, space: d.space });
    renderEditList();
    showMessage("");
  } catch (e) { showMessage(e.message); }
  $("#direction-file").value = "";
}

function renderEditList() {
  const list = $("#edit-list");
  list.innerHTML = "";
  state.edits.forEach((e, i) => {
    const div = document.createElement("div");
    div.className = "edit";
    const moved = e.space === "s" ? "S: every layer's styles" : e.rows ? `w+ rows ${formatList(e.rows)}` : "w: every row";
    div.innerHTML = `<div class="title"><span title="${moved}">${escapeHtml(e.label)} #${e.component} · ${moved}</span>
      <output id="edit-${i}-value">${e.strength}</output><button id="edit-${i}-remove" title="Remove">×</button></div>
      <input id="edit-${i}-strength" type="range" min="-10" max="10" step="0.1" value="${e.strength}" aria-label="strength">
      <div class="rows" id="edit-${i}-rows"></div>`;
    const rowsDiv = div.querySelector(".rows");
    for (let r = 0; r < state.network.num_ws; r++) {
      const chip = document.createElement("span");
      chip.textContent = String(r);
      chip.title = state.network.rows[r].layers.join(", ");
      if (e.space === "s" || !e.rows || e.rows.includes(r)) chip.className = "on";
      rowsDiv.appendChild(chip);
    }
    div.querySelector("input").addEventListener("input", (ev) => {
      e.strength = Number(Number(ev.target.value).toFixed(2));
      div.querySelector("output").textContent = String(e.strength);
      requestRender();
    });
    div.querySelector("button").addEventListener("click", () => { state.edits.splice(i, 1); renderEditList(); requestRender(); });
    list.appendChild(div);
  });
}

function escapeHtml(s) { return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`); }

// ---- jobs: server-sent events until the job ends --------------------------------------------------
function followJob() {
  return new Promise((resolve) => {
    const box = $("#job");
    const src = new EventSource(`/api/job/events?session=${encodeURIComponent(state.session)}`);
    $("#job-cancel").disabled = false;
    src.onmessage = (msg) => {
      const j = JSON.parse(msg.data);
      if (j.kind === "project") {
        box.hidden = false;
        $("#job-progress").max = j.total || 1;
        $("#job-progress").value = j.done || 0;
        const stats = Object.entries(j.stats || {}).map(([k, v]) => `${k} ${v.toPrecision(4)}`).join(" · ");
        $("#job-status").textContent = j.state === "running" ? `${j.stage} ${j.done}/${j.total ?? "?"} ${stats}` : j.state + (j.message && j.state !== "cancelled" ? `: ${j.message}` : "");
        if (j.preview) $("#job-preview").src = j.preview;
      } else if (j.state === "running") setStatus(`${j.stage || j.kind}…`);
      if (j.state !== "running") { src.close(); $("#job-cancel").disabled = true; resolve(j); }
    };
    src.onerror = () => { src.close(); $("#job-cancel").disabled = true; resolve({ state: "failed", message: "lost the connection to the server" }); };
  });
}

// ---- your photo ---------------------------------------------------------------------------------
async function uploadPhoto(file) {
  const faces = $("#faces");
  faces.innerHTML = "";
  state.photo = null; state.projected = null;
  $("#project-start").disabled = true;
  setStatus("finding faces…");
  try {
    const r = await api("/api/photo", { method: "POST", body: file,
      headers: { "X-Filename": encodeURIComponent(file.name), "Content-Type": "application/octet-stream" } });
    state.photo = await r.json();
    state.face = 0;
    state.photo.faces.forEach((f) => {
      const b = document.createElement("button");
      b.className = "face"; b.dataset.index = String(f.index); b.setAttribute("aria-pressed", String(f.index === 0));
      b.innerHTML = `<img alt="face ${f.index + 1}" src="${f.thumbnail}">`;
      b.addEventListener("click", () => {
        state.face = f.index;
        faces.querySelectorAll(".face").forEach((x) => x.setAttribute("aria-pressed", String(x === b)));
      });
      faces.appendChild(b);
    });
    $("#project-start").disabled = false;
    setStatus(`${state.photo.faces.length} face(s) in ${state.photo.name}`);
    showMessage("");
  } catch (e) { showMessage(e.message); setStatus(""); }
}

async function projectPhoto() {
  $("#project-start").disabled = true;
  try {
    const pti = $("#pti").checked ? Math.max(1, Number($("#pti-steps").value) || 350) : 0;
    await api("/api/photo/project", { method: "POST", json: {
      network: state.network.name, face: state.face, space: $("#project-space").value,
      steps: Math.max(1, Number($("#project-steps").value) || 500), pti_steps: pti } });
    const final = await followJob();
    if (final.state === "done") { state.projected = state.network.name; state.view = "photo"; requestRender(); }
    else if (final.state === "failed") showMessage(final.message);
  } catch (e) { showMessage(e.message); }
  $("#project-start").disabled = !state.photo;
}

// ---- downloads ----------------------------------------------------------------------------------
async function download(kind) {
  try {
    const r = await api(`/api/download/${kind}`, { method: "POST", json: viewBody() });
    const name = (r.headers.get("Content-Disposition") || "").match(/filename="([^"]+)"/);
    const a = document.createElement("a");
    a.href = URL.createObjectURL(await r.blob());
    a.download = name ? name[1] : kind === "image" ? "stylegan.png" : "stylegan.w.safetensors";
    document.body.appendChild(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  } catch (e) { showMessage(e.message); }
}

async function copyCommand() {
  const text = $("#command").textContent;
  try { await navigator.clipboard.writeText(text); setStatus("command copied"); }
  catch (e) {   // no clipboard outside secure contexts: select it for Ctrl-C
    const range = document.createRange(); range.selectNodeContents($("#command"));
    const sel = getSelection(); sel.removeAllRanges(); sel.addRange(range);
  }
}

// ---- tabs ---------------------------------------------------------------------------------------
function selectView(view) {
  for (const tab of document.querySelectorAll("[role=tab]")) tab.setAttribute("aria-selected", String(tab.dataset.view === view));
  $("#panel-generate").hidden = view !== "generate";
  $("#panel-mix").hidden = view !== "mix";
  $("#panel-photo").hidden = view !== "photo";
  $("#edits-panel").hidden = view === "mix";
  $("#download-latent").disabled = view === "mix";     // a grid has no one latent
  state.view = view;
  if (view === "mix") readMix(); else requestRender();
  if (view === "photo" && !state.projected) { $("#command").textContent = ""; }
}

// ---- start --------------------------------------------------------------------------------------
function bind() {
  $("#network").addEventListener("change", (e) => selectNetwork(e.target.value));
  for (const tab of document.querySelectorAll("[role=tab]")) tab.addEventListener("click", () => selectView(tab.dataset.view));
  $("#seed").addEventListener("input", (e) => { if (e.target.value !== "") setSeed(e.target.value, "#seed"); });
  $("#seed-slider").addEventListener("input", (e) => setSeed(e.target.value, "#seed-slider"));
  $("#seed-random").addEventListener("click", () => setSeed(Math.floor(Math.random() * 100000)));
  bindRange("#psi", (v) => { state.psi = v; });
  $("#noise-mode").addEventListener("change", (e) => { state.noise_mode = e.target.value; requestRender(); });
  $("#class").addEventListener("change", (e) => { state.class_idx = Number(e.target.value); requestRender(); });
  bindRange("#translate-x", (v) => { state.translate = [v, state.translate[1]]; });
  bindRange("#translate-y", (v) => { state.translate = [state.translate[0], v]; });
  bindRange("#rotate", (v) => { state.rotate = v; }, 0);
  $("#pose-reset").addEventListener("click", () => {
    state.translate = [0, 0]; state.rotate = 0;
    for (const id of ["#translate-x", "#translate-y", "#rotate"]) { $(id).value = "0"; $(`${id}-value`).textContent = "0"; }
    requestRender();
  });
  for (const id of ["#mix-rows", "#mix-cols", "#mix-styles"]) $(id).addEventListener("change", readMix);
  $("#mix-preset").addEventListener("change", applyMixPreset);
  $("#direction-rows").addEventListener("change", (e) => { $("#direction-rows-custom").hidden = e.target.value !== "custom"; });
  $("#direction-add").addEventListener("click", addEdit);
  $("#direction-file").addEventListener("change", (e) => { if (e.target.files[0]) uploadDirection(e.target.files[0]); });
  $("#photo-file").addEventListener("change", (e) => { if (e.target.files[0]) uploadPhoto(e.target.files[0]); });
  $("#project-start").addEventListener("click", projectPhoto);
  $("#job-cancel").addEventListener("click", () => api("/api/job/cancel", { method: "POST" }).catch((e) => showMessage(e.message)));
  $("#paste-back").addEventListener("change", (e) => { state.paste_back = e.target.checked; requestRender(); });
  $("#download-png").addEventListener("click", () => download("image"));
  $("#download-latent").addEventListener("click", () => download("latent"));
  $("#copy-command").addEventListener("click", copyCommand);
}

async function start() {
  bind();
  try {
    const r = await fetch("/api/session", { method: "POST", headers: { "X-Session": "new" } });
    if (!r.ok) throw new Error(`the server refused a session (${r.status})`);
    const s = await r.json();
    state.session = s.session;
    state.networks = s.networks;
    const sel = $("#network");
    for (const net of s.networks) sel.add(new Option(net.name, net.name));
    state.psi = Number($("#psi").value);
    selectNetwork(s.networks[0].name);
    document.body.dataset.ready = "true";
  } catch (e) { showMessage(e.message); }
}

start();
