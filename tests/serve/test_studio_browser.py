"""The studio in a real browser: `drc serve` on a loopback port, headless Chromium driven by Playwright.

A person's path: enter the API key, create an end user, drop five history images on the drop zone,
choose a reference, ask for the leave-one-out influence, generate, and see the outputs beside the
history with a weight bar (and an influence bar) per history image; keep one output, discard another,
and see the KPI panel count them. The screenshot goes to the test's temp folder, or to
DRC_STUDIO_SCREENSHOT where set; docs/studio.png was made with the shipped sticker run and its example
history and reference:

    DRC_SERVE_TEST_RUN=src/drc/pretrained/stickers DRC_STUDIO_SCREENSHOT=docs/studio.png \
        pytest tests/serve/test_studio_browser.py

Chromium is Debian's `chromium` package (`make test` installs it where it can); no browser is
downloaded. Skips, saying why, only where no Chromium binary or no Playwright is found.
"""

from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path

import pytest
from serve_helpers import ServerProcess, create_tenant_cli, png

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def _chromium() -> str | None:
    env = os.environ.get("DRC_CHROMIUM")
    if env:
        return env
    return next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)


@pytest.fixture(scope="module")
def browser():  # noqa: ANN201
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')"
    )
    exe = _chromium()
    if exe is None:
        pytest.skip("no Chromium binary found (apt-get install chromium, or set DRC_CHROMIUM)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, headless=True, args=["--no-sandbox", "--disable-gpu"])
        try:
            yield b
        finally:
            b.close()


def _history_images(run: Path, count: int) -> list[tuple[str, bytes]]:
    """`count` history images and a reference: the run's own examples (a shipped run has them), or a
    user's history from the run's dataset where it is still there (a test user's, and another style's
    item as the reference), else drawn discs."""
    import json

    examples = sorted((run / "examples").glob("history_*.png"))
    if len(examples) >= count and (run / "examples" / "reference.png").is_file():
        return [(p.name, p.read_bytes()) for p in [*examples[-count:], run / "examples" / "reference.png"]]

    info = json.loads((run / "run.json").read_text()) if (run / "run.json").is_file() else {}
    data = Path(info.get("data") or "/nonexistent")
    if (data / "users.jsonl").is_file() and (data / "items.jsonl").is_file():
        users = [json.loads(line) for line in (data / "users.jsonl").read_text().splitlines() if line.strip()]
        items = {it["id"]: it for it in map(json.loads, (data / "items.jsonl").read_text().splitlines())}
        users = [u for u in users if len(u["history"]) >= count] or users
        user = next((u for u in users if u.get("split") == "test"), users[0])
        hist = [items[i] for i in user["history"][-count:]]
        styles = {it.get("style") for it in hist}
        ref = next((it for it in items.values() if it.get("style") not in styles), None)
        if len(hist) == count and ref is not None:
            return [(Path(it["image"]).name, (data / it["image"]).read_bytes()) for it in [*hist, ref]]
    return [(f"img{i}.png", png(i, size=(96, 96))) for i in range(count + 1)]


def test_studio_generates_and_shows_weight_bars(browser, tmp_path: Path, served_run: Path) -> None:  # noqa: ANN001
    data = tmp_path / "data"
    key = create_tenant_cli(data, "studio")
    server = ServerProcess(served_run, data, name=served_run.name)  # "stickers" for the shipped run
    shot = Path(os.environ.get("DRC_STUDIO_SCREENSHOT") or tmp_path / "studio.png")
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        # the pages run under the service's Content-Security-Policy: anything it blocks is an error
        # (waits below are functions, not strings: a string would need eval, which the policy forbids)
        page.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)
        page.goto(server.url + "/")
        assert page.title() == "drc studio"
        page.fill("#api-key", key)
        page.click("#connect")
        page.wait_for_selector("#studio:not(.hidden)")
        assert page.inner_text("#key-state") == "connected"
        # the key lives in this tab's sessionStorage, never in localStorage (which outlives the tab)
        assert page.evaluate("() => sessionStorage.getItem('drc-api-key')") == key
        assert page.evaluate("() => localStorage.length") == 0

        page.fill("#new-user-name", "Mia")
        page.click("#create-user")
        page.wait_for_function("() => document.querySelector('#user-select').value.startsWith('usr_')")

        imgs = _history_images(served_run, 5)
        history, (ref_name, ref_bytes) = imgs[:5], imgs[5]
        # drag and drop: a DataTransfer holding the five files, dropped on the history zone
        payload = [{"name": n, "b64": base64.b64encode(b).decode()} for n, b in history]
        dt = page.evaluate_handle(
            """(files) => {
                const dt = new DataTransfer();
                for (const f of files) {
                    const bytes = Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0));
                    dt.items.add(new File([bytes], f.name, { type: "image/png" }));
                }
                return dt;
            }""",
            payload,
        )
        page.dispatch_event("#history-drop", "drop", {"dataTransfer": dt})
        page.wait_for_function("() => document.querySelectorAll('#history-list img').length === 5")
        page.set_input_files(
            "#reference-input", files=[{"name": ref_name, "mimeType": "image/png", "buffer": ref_bytes}]
        )
        page.wait_for_selector("#reference-preview img")

        page.fill("#n", "4")
        page.fill("#seed", "3")
        page.check("#explain")
        page.click("#generate")
        page.wait_for_function("() => document.querySelectorAll('#outputs img').length === 4", timeout=60_000)
        page.wait_for_function(
            "() => [...document.querySelectorAll('#outputs img, #result-history img')]"
            ".every(i => i.complete && i.naturalWidth > 0)"
        )
        assert page.inner_text("#error") == ""
        bars = page.query_selector_all(".weight-bar")
        assert len(bars) == 5
        labels = [b.inner_text() for b in bars]
        weights = [float(t.split()[-1]) for t in labels]
        assert abs(sum(weights) - 1) < 0.02 and all(w > 0 for w in weights)
        widths = [b.eval_on_selector(".fill", "e => e.getBoundingClientRect().width") for b in bars]
        assert all(w > 0 for w in widths) and max(widths) > 100  # the largest weight fills its bar
        assert len(page.query_selector_all(".influence-bar")) == 5
        assert "done: 4 image(s)" in page.inner_text("#status")
        assert page.eval_on_selector("#outputs img", "i => i.naturalWidth") == 64

        # the KPI panel: this job's four outputs, none judged yet; then keep one, discard another
        row = f"#kpi-table tr[data-run='{served_run.name}']"

        def kpi(key: str) -> str:
            return page.inner_text(f"{row} td[data-key='{key}']")

        is_one = "([sel]) => document.querySelector(sel).textContent === '1'"
        page.wait_for_selector(row)
        assert (kpi("outputs"), kpi("kept"), kpi("kept_share_of_judged")) == ("4", "0", "—")
        outputs = page.query_selector_all("#outputs figure.output")
        assert len(outputs) == 4 and all(len(f.query_selector_all(".verdict button")) == 2 for f in outputs)
        outputs[0].query_selector("button.keep").click()
        page.wait_for_function(is_one, arg=[f"{row} td[data-key='kept']"])
        assert outputs[0].query_selector("button.keep").get_attribute("aria-pressed") == "true"
        outputs[2].query_selector("button.discard").click()
        page.wait_for_function(is_one, arg=[f"{row} td[data-key='discarded']"])
        assert (kpi("kept"), kpi("kept_share_of_judged"), kpi("kept_share_of_outputs")) == (
            "1",
            "50.0 %",
            "25.0 %",
        )
        assert kpi("outputs_per_kept") == "4" and kpi("median_s_to_first_keep") != "—"
        assert outputs[2].query_selector("button.discard").get_attribute("aria-pressed") == "true"
        with page.expect_download() as dl:
            page.click("#kpi-csv")
        csv_lines = Path(dl.value.path()).read_text().splitlines()
        assert csv_lines[0].startswith("tenant_id,tenant,run,") and len(csv_lines) == 2
        shot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000

        # the report page: the run's report.html figures, or (the tiny run has none) a line saying so
        page.goto(server.url + "/report")
        page.wait_for_function(
            "() => document.querySelector('#figures svg') || "
            "document.querySelector('#report-state').textContent.includes('no report.html')"
        )
        if page.query_selector("#figures svg"):
            assert "joint accuracy" in page.inner_text("#figures")
            page.wait_for_function(
                "() => [...document.querySelectorAll('#grids img')].every(i => i.naturalWidth > 0)"
            )
            page.screenshot(path=str(shot.with_name("report.png")), full_page=True)
        # the API docs render from local files (no CDN on this machine)
        page.goto(server.url + "/docs")
        page.wait_for_selector(".swagger-ui .info .title", timeout=20_000)
        assert "drc serve" in page.inner_text(".swagger-ui .info .title")
        assert page.query_selector_all(".opblock-summary-path")  # the routes are listed
        assert errors == []
        page.close()
    finally:
        server.stop()
