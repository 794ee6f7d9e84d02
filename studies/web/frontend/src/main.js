// The participant page of `skelviz study serve`.
//
// It shows what the server says (GET /api/s/<token>/state) and reports what the participant did
// (POST /api/s/<token>/act). It holds no study state of its own: a reload asks the server again and continues at
// the first unanswered trial. Stimuli are drawn as 3D skeletons with three.js in the desktop participant view's
// look: same background, bone and joint colours, floor grid under the lowest point, camera framing and angle.
//
// Response times are measured here, from the first animation frame that showed the stimuli (the rAF after the
// one that drew frame 0, i.e. once that frame was handed to the compositor) to the key press or click, with
// performance.now(); the server stores them. An answer is sent until the server acknowledges it (the server
// ignores a repeat), and the next trial is shown only from the server's reply, after the row is on disk.

import {
  BufferAttribute,
  BufferGeometry,
  Color,
  GridHelper,
  PerspectiveCamera,
  Points,
  PointsMaterial,
  SRGBColorSpace,
  Scene,
  Vector3,
  WebGLRenderer,
} from "three";
import { LineMaterial } from "three/examples/jsm/lines/LineMaterial.js";
import { LineSegments2 } from "three/examples/jsm/lines/LineSegments2.js";
import { LineSegmentsGeometry } from "three/examples/jsm/lines/LineSegmentsGeometry.js";

// The desktop participant view (skelviz/participant/stimulus_view.py, skelviz/render/colors.py).
// the desktop's colours are sRGB values: say so, or three.js takes them as linear and shows them lighter
const srgb = (r, g, b) => new Color().setRGB(r, g, b, SRGBColorSpace);
const BACKGROUND = srgb(24 / 255, 26 / 255, 31 / 255);
const BONE_COLOUR = srgb(0.92, 0.92, 0.95);
const JOINT_COLOUR = srgb(0.92, 0.92, 0.92);
const GRID_OPACITY = 40 / 255;
const GRID_SPACING = 0.5; // metres
const BONE_WIDTH_PX = 4;
const JOINT_SIZE_PX = 6;
const HORIZONTAL_FOV_DEG = 60; // pyqtgraph's fov is horizontal
const ELEVATION_DEG = 12;
const DISTANCE_PER_EXTENT = 1.9;

const $ = (id) => document.getElementById(id);
const token = (location.pathname.match(/^\/s\/([A-Za-z0-9_-]+)$/) || [])[1] || null;
const api = (path) => `/api/s/${token}${path}`;

// ---------------------------------------------------------------------------------------------------------------
// the browser's fitness for the study

function webglProblem() {
  try {
    const canvas = document.createElement("canvas");
    const gl = canvas.getContext("webgl2") || canvas.getContext("webgl");
    if (!gl) return "this browser cannot draw 3D graphics (WebGL is off or unsupported)";
  } catch (err) {
    return `this browser cannot draw 3D graphics (WebGL: ${err})`;
  }
  return null;
}

let minSize = { width: 0, height: 0 };
const WEBGL_PROBLEM = webglProblem();

function environmentProblem() {
  if (WEBGL_PROBLEM) return `${WEBGL_PROBLEM}. Please open this page in a current Chrome, Firefox, Edge or Safari.`;
  const w = window.innerWidth;
  const h = window.innerHeight;
  if (w < minSize.width || h < minSize.height) {
    return `The window is too small for this study: it needs at least ${minSize.width} × ${minSize.height} ` +
      `pixels and is ${w} × ${h}. Please enlarge the window (or use a computer with a larger screen); ` +
      "the study starts as soon as it fits.";
  }
  return null;
}

// ---------------------------------------------------------------------------------------------------------------
// one 3D view

class SkeletonView {
  constructor(parent, caption) {
    this.root = document.createElement("div");
    this.root.className = "view";
    this.canvas = document.createElement("canvas");
    this.caption = document.createElement("div");
    this.caption.className = "caption";
    this.caption.textContent = caption;
    this.root.append(this.canvas, this.caption);
    parent.append(this.root);
    this.renderer = new WebGLRenderer({ canvas: this.canvas, antialias: true });
    this.renderer.setPixelRatio(window.devicePixelRatio || 1);
    this.scene = new Scene();
    this.scene.background = BACKGROUND;
    this.camera = new PerspectiveCamera(50, 1, 0.01, 1000);
    this.grid = null;
    this.bones = null;
    this.joints = null;
    this.motion = null;
  }

  setMotion(motion, skeleton) {
    this.clear();
    const { frames, positions } = motion;
    const V = skeleton.joints;
    const bones = skeleton.bones;
    // every frame's bone segments, laid out once: a frame change is one copy into the GPU buffer
    const seg = new Float32Array(frames * bones.length * 6);
    for (let t = 0; t < frames; t++) {
      for (let b = 0; b < bones.length; b++) {
        const [p, c] = bones[b];
        const o = (t * bones.length + b) * 6;
        for (let k = 0; k < 3; k++) {
          seg[o + k] = positions[(t * V + p) * 3 + k];
          seg[o + 3 + k] = positions[(t * V + c) * 3 + k];
        }
      }
    }
    this.motion = { frames, V, nb: bones.length, seg, positions };
    const geometry = new LineSegmentsGeometry();
    geometry.setPositions(seg.subarray(0, bones.length * 6));
    this.boneMaterial = new LineMaterial({ color: BONE_COLOUR, linewidth: BONE_WIDTH_PX, worldUnits: false });
    this.bones = new LineSegments2(geometry, this.boneMaterial);
    this.bones.frustumCulled = false;
    const jg = new BufferGeometry();
    jg.setAttribute("position", new BufferAttribute(positions.slice(0, V * 3), 3));
    this.joints = new Points(jg, new PointsMaterial({ color: JOINT_COLOUR, size: JOINT_SIZE_PX, sizeAttenuation: false }));
    this.joints.frustumCulled = false;
    this.scene.add(this.bones, this.joints);
    this.frame(positions, frames * V);
    this.resize();
    this.setFrame(0);
  }

  // the camera and floor of the desktop view: bounding box of the whole motion, floor under its lowest point
  frame(positions, n) {
    const lo = new Vector3(Infinity, Infinity, Infinity);
    const hi = new Vector3(-Infinity, -Infinity, -Infinity);
    const v = new Vector3();
    for (let i = 0; i < n; i++) {
      v.fromArray(positions, i * 3);
      lo.min(v);
      hi.max(v);
    }
    const centre = lo.clone().add(hi).multiplyScalar(0.5);
    const size = hi.clone().sub(lo);
    const extent = Math.max(size.x, size.y, size.z, 1.0);
    const gridSize = Math.ceil(Math.max(size.x, size.z) + 2.0);
    this.grid = new GridHelper(gridSize, Math.round(gridSize / GRID_SPACING), 0xffffff, 0xffffff);
    this.grid.material.transparent = true;
    this.grid.material.opacity = GRID_OPACITY;
    this.grid.position.set(centre.x, lo.y, centre.z);
    this.scene.add(this.grid);
    const d = DISTANCE_PER_EXTENT * extent;
    const el = (ELEVATION_DEG * Math.PI) / 180;
    this.camera.position.set(centre.x, centre.y + d * Math.sin(el), centre.z + d * Math.cos(el));
    this.camera.lookAt(centre);
    this.camera.near = d * 0.001;
    this.camera.far = d * 1000;
  }

  resize() {
    const w = Math.max(1, this.canvas.clientWidth);
    const h = Math.max(1, this.canvas.clientHeight);
    this.renderer.setSize(w, h, false);
    const halfH = Math.atan(Math.tan(((HORIZONTAL_FOV_DEG / 2) * Math.PI) / 180) * (h / w));
    this.camera.fov = (2 * halfH * 180) / Math.PI;
    this.camera.aspect = w / h;
    this.camera.updateProjectionMatrix();
    if (this.boneMaterial) this.boneMaterial.resolution.set(w, h);
  }

  setFrame(index) {
    const m = this.motion;
    if (!m) return;
    const t = Math.min(index, m.frames - 1);
    const buffer = this.bones.geometry.attributes.instanceStart.data;
    buffer.array.set(m.seg.subarray(t * m.nb * 6, (t + 1) * m.nb * 6));
    buffer.needsUpdate = true;
    const jp = this.joints.geometry.attributes.position;
    jp.array.set(m.positions.subarray(t * m.V * 3, (t + 1) * m.V * 3));
    jp.needsUpdate = true;
  }

  draw() {
    this.renderer.render(this.scene, this.camera);
  }

  clear() {
    for (const obj of [this.bones, this.joints, this.grid]) {
      if (obj) {
        this.scene.remove(obj);
        obj.geometry.dispose();
        obj.material.dispose();
      }
    }
    this.bones = this.joints = this.grid = this.motion = null;
    this.draw();
  }

  dispose() {
    this.clear();
    this.renderer.dispose();
    this.root.remove();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// playback of one trial: side by side (or a single motion), or one motion after the other

class Player {
  constructor(views, motions, skeleton, trial, fps, onOnset) {
    this.views = views;
    this.motions = motions;
    this.skeleton = skeleton;
    this.trial = trial;
    this.fps = fps;
    this.onOnset = onOnset;
    this.raf = 0;
    this.onsetStamped = false;
    this.sequential = trial.presentation === "sequential";
  }

  start() {
    cancelAnimationFrame(this.raf);
    this.t0 = null;
    this.drawnFirst = false;
    this.stage = -1;
    this.raf = requestAnimationFrame((ts) => this.tick(ts));
  }

  stop() {
    cancelAnimationFrame(this.raf);
  }

  // which motion is on (sequential) and its frame, from the time since the start
  position(elapsedMs) {
    const loops = this.trial.loops;
    if (!this.sequential) {
      const n = Math.max(...this.motions.map((m) => m.frames));
      const f = Math.floor((elapsedMs / 1000) * this.fps);
      return { stage: 0, frame: f >= loops * n ? n - 1 : f % n, done: f >= loops * n };
    }
    const [a, b] = this.motions;
    const aMs = (loops * a.frames * 1000) / this.fps;
    if (elapsedMs < aMs) return { stage: 0, frame: Math.floor((elapsedMs / 1000) * this.fps) % a.frames, done: false };
    if (elapsedMs < aMs + this.trial.gap_ms) return { stage: 1, frame: 0, done: false };
    const f = Math.floor(((elapsedMs - aMs - this.trial.gap_ms) / 1000) * this.fps);
    return { stage: 2, frame: f >= loops * b.frames ? b.frames - 1 : f % b.frames, done: f >= loops * b.frames };
  }

  tick(ts) {
    if (this.drawnFirst && !this.onsetStamped) {
      // the frame drawn in the previous callback has been handed to the compositor: that is the onset
      this.onsetStamped = true;
      this.onOnset(performance.now());
    }
    if (this.t0 === null) this.t0 = ts;
    const pos = this.position(ts - this.t0);
    if (pos.stage !== this.stage) {
      this.stage = pos.stage;
      if (this.sequential) {
        const view = this.views[0];
        if (pos.stage === 0) view.setMotion(this.motions[0], this.skeleton);
        else if (pos.stage === 1) view.clear();
        else view.setMotion(this.motions[1], this.skeleton);
        view.caption.textContent = pos.stage === 0 ? "First" : pos.stage === 2 ? "Second" : "";
      }
    }
    const showing = this.sequential ? (pos.stage === 1 ? [] : [this.views[0]]) : this.views;
    for (const v of showing) {
      v.setFrame(pos.frame);
      v.draw();
    }
    // the onset is the first drawn frame that completes the trial's display (the second motion when sequential)
    if (!this.drawnFirst && (!this.sequential || pos.stage === 2)) this.drawnFirst = true;
    if (!pos.done || !this.onsetStamped) this.raf = requestAnimationFrame((t) => this.tick(t));
  }
}

// ---------------------------------------------------------------------------------------------------------------
// talking to the server

async function request(method, url, body) {
  const init = { method, headers: { "Content-Type": "application/json" }, cache: "no-store" };
  if (body !== undefined) init.body = JSON.stringify(body);
  const res = await fetch(url, init);
  const data = await res.json().catch(() => ({}));
  if (!res.ok) {
    const err = new Error(data.error || `the server answered ${res.status}`);
    err.status = res.status;
    throw err;
  }
  return data;
}

// retried until the server answers: answers must reach the disk even over a flaky connection
async function persistently(fn) {
  let delay = 250;
  for (;;) {
    try {
      const result = await fn();
      setNotice("");
      return result;
    } catch (err) {
      if (err.status && err.status < 500) throw err; // the server understood and refused: do not repeat
      setNotice("Connection lost — retrying… Your answers so far are saved.");
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(3000, delay * 2);
    }
  }
}

const act = (action, extra = {}) => persistently(() => request("POST", api("/act"), { action, ...extra }));

// ---------------------------------------------------------------------------------------------------------------
// pages

let current = null; // the last state from the server
let trialRun = null; // { index, views, player, onsetPerf, accepting, responded }
let busy = false;
let refusedReported = false;

function setNotice(text) {
  let el = $("notice");
  if (!el) {
    el = document.createElement("div");
    el.id = "notice";
    el.style.cssText = "position:fixed;bottom:8px;left:0;right:0;text-align:center;color:#ffb070;font-size:16px";
    document.body.append(el);
  }
  el.textContent = text;
}

function setStatus(state, extra = {}) {
  document.body.dataset.state = state;
  document.body.dataset.trial = extra.trial ?? "";
  document.body.dataset.ready = extra.ready ? "1" : "0";
}

function endTrial() {
  if (trialRun) {
    trialRun.player?.stop();
    clearTimeout(trialRun.timer);
    for (const v of trialRun.views) v.dispose();
    trialRun = null;
  }
}

function showText(title, body, buttons) {
  endTrial();
  $("trial-page").hidden = true;
  $("text-page").hidden = false;
  $("text-title").textContent = title;
  $("text-body").textContent = body;
  $("completion").hidden = true;
  const box = $("text-buttons");
  box.replaceChildren();
  for (const b of buttons) {
    const el = document.createElement("button");
    el.textContent = b.key ? `${b.label}  [${b.key}]` : b.label;
    el.dataset.action = b.action;
    el.addEventListener("click", () => b.run());
    box.append(el);
  }
}

function refuse(problem) {
  showText("This study cannot start here", problem, []);
  setStatus("refused");
  if (token && !refusedReported) {
    refusedReported = true;
    request("POST", api("/act"), { action: "refused", reason: problem }).catch(() => {});
  }
}

async function send(action, extra) {
  if (busy) return;
  busy = true;
  try {
    const reply = await act(action, extra);
    render(reply.state);
  } catch (err) {
    showError(err);
  } finally {
    busy = false;
  }
}

function showError(err) {
  if (err.status === 409) {
    refresh(); // another tab moved on: show what the server has now
    return;
  }
  showText("Something went wrong", `${err.message}\n\nReload the page to continue; your answers so far are saved.`, []);
  setStatus("error");
}

function render(state) {
  current = state;
  minSize = { width: state.min_width, height: state.min_height };
  const problem = environmentProblem();
  if (problem) {
    refuse(problem);
    return;
  }
  if (state.state === "trial") {
    showTrial(state);
    return;
  }
  const page = state.page;
  const buttons = page.buttons.map((b) => ({ ...b, run: () => send(b.action) }));
  showText(page.title, page.body, buttons);
  if (state.state === "end") {
    const code = state.completion_code;
    const url = state.redirect_url;
    $("completion").hidden = !code && !url;
    $("completion-code").parentElement.hidden = !code;
    $("completion-code").textContent = code || "";
    const link = $("completion-link");
    link.hidden = !url;
    if (url) link.href = url;
  }
  setStatus(state.state);
}

function keyName(response) {
  return response.key;
}

function showTrial(state) {
  const trial = state.trial;
  if (trialRun && trialRun.index === trial.index) {
    updateButtons(); // the same trial (a replay count changed)
    return;
  }
  endTrial();
  $("text-page").hidden = true;
  $("trial-page").hidden = false;
  const { done, total } = state.progress;
  $("progress-label").textContent =
    trial.phase === "practice"
      ? `Practice ${trial.practice_number} of ${trial.practice_total} (not scored)`
      : `Trial ${done + 1} of ${total}`;
  $("progress-bar").style.width = `${(100 * done) / Math.max(1, total)}%`;
  $("question").textContent = trial.question;
  $("label").textContent = trial.label ? `“${trial.label}”` : "";
  const viewsBox = $("views");
  viewsBox.replaceChildren();
  const sequential = trial.presentation === "sequential";
  const captions = trial.views === 2 && !sequential ? ["Left", "Right"] : [""];
  const views = captions.map((c) => new SkeletonView(viewsBox, c));
  const run = { index: trial.index, trial, views, player: null, onsetPerf: null, accepting: false, timer: 0 };
  trialRun = run;
  buildTrialButtons(trial, sequential);
  setStatus("trial", { trial: trial.index });
  // the inter-trial interval runs while the motions load; both must be over before the first frame
  const wait = new Promise((r) => (run.timer = setTimeout(r, trial.inter_trial_ms)));
  const load = persistently(() => request("GET", api(`/motion/${trial.index}`)));
  Promise.all([load, wait])
    .then(([motion]) => {
      if (trialRun !== run) return;
      const motions = motion.motions.map((m) => ({ frames: m.frames, positions: decode(m.data) }));
      if (!sequential) views.forEach((v, i) => v.setMotion(motions[i], motion.skeleton));
      run.player = new Player(views, motions, motion.skeleton, trial, motion.fps, (t) => onset(run, t));
      run.player.start();
    })
    .catch((err) => {
      if (trialRun === run) showError(err);
    });
}

function decode(b64) {
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new Float32Array(bytes.buffer); // float32 little-endian, as every current browser platform
}

function onset(run, t) {
  if (trialRun !== run || run.onsetPerf !== null) return;
  run.onsetPerf = t;
  run.accepting = true;
  updateButtons();
  setStatus("trial", { trial: run.index, ready: true });
  act("onset", { trial_index: run.index }).catch(() => {}); // the answer carries the onset too if this is lost
}

function buildTrialButtons(trial, sequential) {
  const box = $("trial-buttons");
  box.replaceChildren();
  const seqLabel = { left: "First", right: "Second" };
  for (const r of trial.responses) {
    const el = document.createElement("button");
    const label = sequential ? seqLabel[r.value] || r.label : r.label;
    el.textContent = `${label}  [${keyName(r)}]`;
    el.dataset.response = r.value;
    el.addEventListener("click", () => respond(r.value));
    box.append(el);
  }
  if (trial.replays > 0) {
    const el = document.createElement("button");
    el.className = "replay";
    el.dataset.action = "replay";
    el.addEventListener("click", replay);
    box.append(el);
  }
  updateButtons();
}

function updateButtons() {
  const run = trialRun;
  if (!run) return;
  const trial = current.trial;
  for (const el of $("trial-buttons").querySelectorAll("button[data-response]")) el.disabled = !run.accepting;
  const rb = $("trial-buttons").querySelector("button.replay");
  if (rb) {
    rb.textContent = `Replay  [${trial.replay_key}]  (${trial.replays_left} left)`;
    rb.disabled = !run.accepting || trial.replays_left < 1;
  }
}

async function respond(value) {
  const run = trialRun;
  if (!run || !run.accepting || busy) return;
  const rt = (performance.now() - run.onsetPerf) / 1000;
  run.accepting = false;
  run.player?.stop();
  updateButtons();
  setStatus("trial", { trial: run.index });
  await send("respond", { trial_index: run.index, response: value, rt_s: rt });
}

async function replay() {
  const run = trialRun;
  if (!run || !run.accepting || busy) return;
  busy = true;
  try {
    const reply = await act("replay", { trial_index: run.index });
    current = reply.state;
    if (reply.accepted && trialRun === run) run.player.start();
    updateButtons();
  } catch (err) {
    showError(err);
  } finally {
    busy = false;
  }
}

function keyMatches(name, ev) {
  if (!name) return false;
  if (name.length === 1) return ev.key.toUpperCase() === name.toUpperCase();
  if (name === "Space") return ev.code === "Space" || ev.key === " ";
  if (name === "Return" || name === "Enter") return ev.key === "Enter";
  if (["Left", "Right", "Up", "Down"].includes(name)) return ev.key === `Arrow${name}`;
  return ev.key === name;
}

document.addEventListener("keydown", (ev) => {
  if (ev.repeat || !current) return;
  if (current.state === "trial" && trialRun) {
    const t = current.trial;
    const r = t.responses.find((x) => keyMatches(x.key, ev));
    if (r) {
      ev.preventDefault();
      respond(r.value);
    } else if (keyMatches(t.replay_key, ev)) {
      ev.preventDefault();
      replay();
    }
    return;
  }
  if (ev.key === "Enter" && current.page) {
    const b = current.page.buttons.find((x) => x.key === "Enter");
    if (b) {
      ev.preventDefault();
      send(b.action);
    }
  }
});

// attention: leaving the tab or the window during a trial is counted (and logged at any time)
let focused = document.hasFocus();
function focusChanged(now) {
  if (!token || now === focused || !current || ["end", "aborted"].includes(current.state)) return;
  focused = now;
  request("POST", api("/act"), { action: "focus", lost: !now }).catch(() => {});
}
window.addEventListener("blur", () => focusChanged(false));
window.addEventListener("focus", () => focusChanged(true));
document.addEventListener("visibilitychange", () => focusChanged(document.visibilityState === "visible"));

window.addEventListener("resize", () => {
  if (!current) return;
  const problem = environmentProblem();
  if (problem) {
    if (document.body.dataset.state !== "refused") refuse(problem);
  } else if (document.body.dataset.state === "refused") {
    render(current);
  } else if (trialRun) {
    for (const v of trialRun.views) v.resize();
  }
});

async function refresh() {
  try {
    render(await persistently(() => request("GET", api("/state"))));
  } catch (err) {
    showError(err);
  }
}

async function startPage() {
  const study = await persistently(() => request("GET", "/api/study"));
  current = {
    state: "start",
    min_width: study.min_width,
    min_height: study.min_height,
    page: {
      title: study.title,
      body: "Welcome. This study shows short motions of stick figures and asks you about them.\n\n" +
        "Press Begin to start. Please keep this window open until the end.",
      buttons: [],
    },
  };
  minSize = { width: study.min_width, height: study.min_height };
  const problem = environmentProblem();
  if (problem) {
    refuse(problem);
    return;
  }
  showText(study.title, current.page.body, [{ label: "Begin", action: "begin", run: begin }]);
  setStatus("start");
}

async function begin() {
  if (busy) return;
  busy = true;
  try {
    const created = await request("POST", "/api/sessions");
    location.replace(created.url); // the link in the address bar is the participant's way back
  } catch (err) {
    busy = false;
    showError(err);
  }
}

if (token) refresh();
else startPage();
