// Shared by the studio and the report page: the API key and fetch helpers that send it. The key is
// kept in this tab's sessionStorage: it goes when the tab closes, where localStorage would keep it on
// disk for any later script of the origin to read. Images are fetched with the key too and shown
// through object URLs, since an <img src> cannot carry an Authorization header.
"use strict";

const drc = {
  key() { return sessionStorage.getItem("drc-api-key") || ""; },
  setKey(k) { sessionStorage.setItem("drc-api-key", k); },

  async api(path, opts = {}) {
    const headers = Object.assign({ Authorization: "Bearer " + drc.key() }, opts.headers || {});
    let body = opts.body;
    if (opts.json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(opts.json);
    }
    const r = await fetch(path, { method: opts.method || "GET", headers, body });
    if (!r.ok) {
      let msg = r.status + " " + r.statusText;
      try { msg = (await r.json()).detail || msg; } catch (_) { /* not JSON */ }
      const err = new Error(msg);
      err.status = r.status;
      throw err;
    }
    if (r.status === 204) return null;
    const type = r.headers.get("content-type") || "";
    return type.includes("json") ? r.json() : r.blob();
  },

  _urls: new Map(),
  async imageURL(url) {
    if (!drc._urls.has(url)) {
      drc._urls.set(url, drc.api(url).then((blob) => URL.createObjectURL(blob)));
    }
    return drc._urls.get(url);
  },

  async img(url, alt) {
    const el = document.createElement("img");
    el.alt = alt || "";
    el.src = await drc.imageURL(url);
    return el;
  },

  showError(e) {
    const el = document.getElementById("error");
    if (el) el.textContent = e ? String(e.message || e) : "";
  },
};
