// The run-report page: the served run's report.html figures, fetched through the API.
"use strict";

const $ = (id) => document.getElementById(id);

async function loadRuns() {
  const info = await drc.api("/v1/runs");
  const sel = $("run-select");
  const current = sel.value;
  sel.replaceChildren(...info.runs.map((r) => new Option(r.name + (r.has_report ? "" : " (no report)"), r.name)));
  if (current) sel.value = current;
}

async function showReport() {
  drc.showError("");
  $("figures").replaceChildren();
  $("grids").replaceChildren();
  $("methods-table").replaceChildren();
  $("report-title").textContent = "";
  try {
    await loadRuns();
    const run = $("run-select").value;
    if (!run) { $("report-state").textContent = "this service serves no run"; return; }
    const rep = await drc.api(`/v1/runs/${encodeURIComponent(run)}/report`);
    $("report-state").textContent = "";
    $("report-title").textContent = `${rep.title} · run ${rep.run}`;
    // the charts and the table are drc's own SVG/HTML from the run's report.html on the server
    if (rep.table) $("methods-table").innerHTML = rep.table;
    let section = null;
    let box = null;
    for (const f of rep.figures) {
      if (f.section !== section) {
        section = f.section;
        const h = document.createElement("h3");
        h.textContent = section;
        box = document.createElement("div");
        box.className = "figures";
        $("figures").append(h, box);
      }
      const div = document.createElement("div");
      div.className = "figure";
      div.innerHTML = f.svg;
      box.append(div);
    }
    for (const g of rep.grids) {
      const h = document.createElement("h3");
      h.textContent = g.title;
      const im = await drc.img(g.url, g.title);
      im.className = "grid";
      $("grids").append(h, im);
    }
  } catch (e) {
    $("report-state").textContent = e.status === 404 ? e.message : "";
    if (e.status !== 404) drc.showError(e);
  }
}

$("key-form").addEventListener("submit", (e) => {
  e.preventDefault();
  drc.setKey($("api-key").value.trim());
  showReport();
});
$("run-select").addEventListener("change", showReport);
if (drc.key()) {
  $("api-key").value = drc.key();
  showReport();
}
