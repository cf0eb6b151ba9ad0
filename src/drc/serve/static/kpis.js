// The proof-of-concept KPIs in the studio: keep / discard buttons under each output, and the KPI
// table (GET /v1/kpis) that is read again after every verdict. Needs common.js (drc.api).
"use strict";

const kpis = {
  columns: [
    ["run", "run"],
    ["jobs", "jobs"],
    ["outputs", "outputs"],
    ["kept", "kept"],
    ["discarded", "discarded"],
    ["kept_share_of_judged", "kept / judged"],
    ["kept_share_of_outputs", "kept / outputs"],
    ["median_s_to_first_keep", "median s to 1st keep"],
    ["outputs_per_kept", "outputs per kept"],
  ],

  cell(key, value) {
    if (value === null || value === undefined) return "—";
    if (key.startsWith("kept_share")) return (100 * value).toFixed(1) + " %";
    if (typeof value === "number" && !Number.isInteger(value)) return value.toFixed(2);
    return String(value);
  },

  async refresh() {
    const rows = await drc.api("/v1/kpis");
    const head = document.createElement("tr");
    for (const [, label] of kpis.columns) {
      const th = document.createElement("th");
      th.textContent = label;
      head.append(th);
    }
    const body = rows.map((r) => {
      const tr = document.createElement("tr");
      tr.dataset.run = r.run;
      for (const [key] of kpis.columns) {
        const td = document.createElement("td");
        td.dataset.key = key;
        td.textContent = kpis.cell(key, r[key]);
        tr.append(td);
      }
      return tr;
    });
    document.getElementById("kpi-table").replaceChildren(head, ...body);
    document.getElementById("kpi-state").textContent = rows.length ? "" : "no jobs yet";
  },

  async downloadCsv() {
    const blob = await drc.api("/v1/kpis.csv");
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = "kpis.csv";
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  },

  // an output image with its keep / discard buttons; a click records the verdict (the last one wins)
  async output(job, im, index, onError) {
    const fig = document.createElement("figure");
    fig.className = "output";
    fig.append(await drc.img(im.url, `output ${index + 1}`));
    const buttons = document.createElement("div");
    buttons.className = "verdict";
    const show = (verdict) => {
      for (const b of buttons.children) b.setAttribute("aria-pressed", String(b.dataset.verdict === verdict));
    };
    for (const [verdict, label] of [["keep", "Keep"], ["discard", "Discard"]]) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = verdict;
      b.dataset.verdict = verdict;
      b.textContent = label;
      b.addEventListener("click", async () => {
        try {
          const fb = await drc.api(`/v1/jobs/${job.id}/feedback`, { method: "POST", json: { image: index, verdict } });
          show(fb.verdict);
          await kpis.refresh();
        } catch (e) { onError(e); }
      });
      buttons.append(b);
    }
    show(im.verdict);
    fig.append(buttons);
    return fig;
  },
};

document.getElementById("kpi-refresh").addEventListener("click", () => kpis.refresh().catch(drc.showError));
document.getElementById("kpi-csv").addEventListener("click", () => kpis.downloadCsv().catch(drc.showError));
