// The studio: pick or create an end user, drop history images, pick a reference, generate, and see
// the outputs beside the history with each history image's weight (and leave-one-out influence);
// keep or discard each output and watch the KPI panel (kpis.js).
"use strict";

const $ = (id) => document.getElementById(id);
const state = { runs: [], limits: {}, user: null, reference: null };

function status(msg) { $("status").textContent = msg; }

async function connect() {
  drc.showError("");
  try {
    const info = await drc.api("/v1/runs");
    state.runs = info.runs;
    state.limits = info.limits;
    $("run-select").replaceChildren(...info.runs.map((r) => new Option(r.name, r.name)));
    if (info.runs.length) $("history-len").textContent = info.runs[0].history_len;
    $("n").max = info.limits.max_n;
    $("prompt").maxLength = info.limits.max_prompt_chars;
    if (info.runs.length && info.runs[0].prompt) $("prompt").placeholder = info.runs[0].prompt;
    $("key-state").textContent = "connected";
    $("studio").classList.remove("hidden");
    await Promise.all([loadUsers(), kpis.refresh()]);
  } catch (e) {
    $("key-state").textContent = e.status === 401 ? "key refused" : "";
    $("studio").classList.add("hidden");
    drc.showError(e);
  }
}

async function loadUsers(select) {
  const users = await drc.api("/v1/users");
  const sel = $("user-select");
  sel.replaceChildren(new Option(users.length ? "— choose an end user —" : "— no end users yet —", ""),
    ...users.map((u) => new Option(`${u.name} (${u.history_count} images)`, u.id)));
  const keep = select || (state.user && users.some((u) => u.id === state.user) ? state.user : "");
  sel.value = keep;
  await selectUser(keep || null);
}

async function selectUser(id) {
  state.user = id;
  await loadHistory();
}

async function loadHistory() {
  const list = $("history-list");
  if (!state.user) { list.replaceChildren(); return; }
  const items = await drc.api(`/v1/users/${state.user}/history`);
  const nodes = await Promise.all(items.map(async (it, i) => {
    const fig = document.createElement("figure");
    fig.className = "thumb";
    fig.append(await drc.img(it.url, `history ${i + 1}`));
    const del = document.createElement("button");
    del.type = "button";
    del.className = "remove";
    del.title = "remove from the history";
    del.textContent = "×";
    del.onclick = () => run(async () => {
      await drc.api(`/v1/users/${state.user}/history/${it.id}`, { method: "DELETE" });
      await loadUsers(state.user);
    });
    const cap = document.createElement("figcaption");
    cap.textContent = String(i + 1);
    fig.append(del, cap);
    return fig;
  }));
  list.replaceChildren(...nodes);
}

async function uploadHistory(files) {
  if (!state.user) throw new Error("choose or create an end user first");
  const form = new FormData();
  for (const f of files) form.append("files", f, f.name);
  status(`uploading ${files.length} history image(s)…`);
  await drc.api(`/v1/users/${state.user}/history`, { method: "POST", body: form });
  status(`added ${files.length} history image(s)`);
  await loadUsers(state.user);
}

async function uploadReference(file) {
  const form = new FormData();
  form.append("file", file, file.name);
  if (state.user) form.append("user_id", state.user);
  const im = await drc.api("/v1/images", { method: "POST", body: form });
  state.reference = im.id;
  $("reference-preview").replaceChildren(await drc.img(im.url, "reference"));
  status("reference ready");
}

function bar(value, max, cls, label) {
  const wrap = document.createElement("div");
  wrap.className = "bar " + cls;
  const fill = document.createElement("div");
  fill.className = "fill";
  fill.style.width = (max > 0 ? Math.max(2, (100 * value) / max) : 0) + "%";
  const text = document.createElement("span");
  text.textContent = label;
  wrap.append(fill, text);
  return wrap;
}

async function showJob(job) {
  const weights = job.history.map((h) => h.weight || 0);
  const wmax = Math.max(...weights, 1e-9);
  const infl = job.history.map((h) => (h.influence ? h.influence.pixel : null));
  const imax = Math.max(...infl.filter((v) => v !== null), 1e-9);
  const rows = await Promise.all(job.history.map(async (h, i) => {
    const row = document.createElement("div");
    row.className = "weight-row";
    const bars = document.createElement("div");
    bars.className = "bars";
    bars.append(bar(weights[i], wmax, "weight-bar", `weight ${weights[i].toFixed(3)}`));
    if (infl[i] !== null) {
      bars.append(bar(infl[i], imax, "influence-bar",
        `influence ${infl[i].toFixed(2)} px · draft ${h.influence.draft.toFixed(3)}`));
    } else if (job.explain) {
      bars.append(bar(0, 1, "influence-bar", "influence n/a (one image)"));
    }
    row.append(await drc.img(h.url, `history ${i + 1}`), bars);
    return row;
  }));
  $("result-history").replaceChildren(...rows);
  $("result-reference").replaceChildren(await drc.img(job.reference.url, "reference"));
  const outs = await Promise.all(job.images.map((im, i) => kpis.output(job, im, i, drc.showError)));
  $("outputs").replaceChildren(...outs);
}

async function generate() {
  if (!state.user) throw new Error("choose or create an end user first");
  if (!state.reference) throw new Error("upload a reference image first");
  const body = {
    run: $("run-select").value,
    user_id: state.user,
    reference: state.reference,
    prompt: $("prompt").value.trim() || null,
    n: parseInt($("n").value, 10),
    seed: parseInt($("seed").value, 10),
    explain: $("explain").checked,
  };
  $("generate").disabled = true;
  try {
    let job = await drc.api("/v1/generate", { method: "POST", json: body });
    status(`job ${job.id}: ${job.status}…`);
    while (job.status === "queued" || job.status === "running") {
      job = await drc.api(`/v1/jobs/${job.id}?wait=20`);
      status(`job ${job.id}: ${job.status}…`);
    }
    if (job.status === "failed") throw new Error(`job failed: ${job.error}`);
    await showJob(job);
    await kpis.refresh();
    status(`done: ${job.images.length} image(s); sampled with ${job.batch_images} row(s) in ${Math.round(job.sample_ms)} ms`);
  } finally {
    $("generate").disabled = false;
  }
}

// run an action, showing its error instead of losing it
async function run(fn) {
  drc.showError("");
  try { await fn(); } catch (e) { drc.showError(e); status(""); }
}

function dropZone(zone, input, onFiles) {
  zone.addEventListener("click", () => input.click());
  zone.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") input.click(); });
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    const files = [...e.dataTransfer.files];
    if (files.length) run(() => onFiles(files));
  });
  input.addEventListener("change", () => {
    const files = [...input.files];
    input.value = "";
    if (files.length) run(() => onFiles(files));
  });
}

$("key-form").addEventListener("submit", (e) => {
  e.preventDefault();
  drc.setKey($("api-key").value.trim());
  connect();
});
$("user-select").addEventListener("change", (e) => run(() => selectUser(e.target.value || null)));
$("user-form").addEventListener("submit", (e) => {
  e.preventDefault();
  run(async () => {
    const name = $("new-user-name").value.trim();
    if (!name) throw new Error("type a name for the new end user");
    const u = await drc.api("/v1/users", { method: "POST", json: { name } });
    $("new-user-name").value = "";
    await loadUsers(u.id);
  });
});
$("delete-user").addEventListener("click", () => run(async () => {
  if (!state.user) return;
  if (!confirm("Delete this end user with their history and generated images?")) return;
  await drc.api(`/v1/users/${state.user}`, { method: "DELETE" });
  state.user = null;
  await loadUsers();
}));
$("generate-form").addEventListener("submit", (e) => { e.preventDefault(); run(generate); });
dropZone($("history-drop"), $("history-input"), uploadHistory);
dropZone($("reference-drop"), $("reference-input"), (files) => uploadReference(files[0]));

if (drc.key()) {
  $("api-key").value = drc.key();
  connect();
}
