"""Report: JSON round trip, HTML contents (table, SVG charts, images on disk), grid PNG geometry."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from drc.eval import plots
from drc.eval.report import Grid, GridRow, render_grid_png, write_report


def _img(seed: int, h: int = 16, w: int = 16) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _report() -> dict:
    return {
        "title": "test report",
        "dataset": "stickers",
        "probes": {"style_acc": 0.99, "semantic_acc": 0.97, "n_heldout": 260, "seconds": 61.0},
        "methods": {
            "drc": {
                "style_acc": 0.9,
                "semantic_acc": 0.8,
                "joint_acc": 0.7,
                "joint_acc_ci": [0.6, 0.8],
                "collapse_rate": 0.1,
                "fd": 3.5,
                "ref_sim": 0.4,
                "n": 36,
            },
            "entangled": {
                "style_acc": 0.5,
                "semantic_acc": 0.9,
                "joint_acc": 0.4,
                "joint_acc_ci": [0.3, 0.5],
                "collapse_rate": 0.45,
                "fd": 2.0,
                "ref_sim": 0.7,
                "n": 36,
            },
            "reference_only": {
                "style_acc": 0.1,
                "semantic_acc": 0.95,
                "joint_acc": 0.1,
                "collapse_rate": 0.8,
                "fd": float("nan"),
                "ref_sim": 0.9,
                "n": 36,
            },
        },
        "breakdowns": {
            "method": "drc",
            "history_length": {"1": 0.5, "2": 0.6, "3": 0.65, "5": 0.7},
            "style_theme": {
                "sky_cat": {"joint_acc": 0.9, "n": 3},
                "navy_dog": {"joint_acc": 0.2, "n": 3},
                "pink_frog": {"joint_acc": 0.8, "n": 3},
            },
        },
        "timings": {"tokenizer": 120.5, "generator": 300.0, "eval": 20.0},
        "environment": {"torch": "2.13.0", "device": "cpu", "threads": 2},
        "curves": {
            "tokenizer": [{"step": 50, "loss": 1.0}, {"step": 100, "loss": 0.05}],
            "stage2": [{"step": 5, "loss": 3.0, "sem_loss": 1.0}, {"step": 10, "loss": 2.5, "sem_loss": 0.8}],
        },
        "notes": ["probes trained on real items only"],
        "extra_field": {"kept": [1, 2, 3]},
    }


def _grids() -> list[Grid]:
    rows = [
        GridRow(
            "u1",
            [_img(1), _img(2), _img(3)],
            [0.2, 0.5, 0.3],
            _img(4),
            {"drc": _img(5), "entangled": _img(6)},
            _img(7),
            caption="love",
        ),
        GridRow("u2", [_img(8)], [1.0], _img(9), {"drc": _img(10), "entangled": _img(11)}, None),
    ]
    plain = GridRow("u3", [_img(12), _img(13)], None, _img(14), {"drc": _img(15)})
    return [Grid("test users", rows, "users.png"), Grid("plain", [plain], "plain")]


def test_write_report_json_and_html(tmp_path):
    report = _report()
    report["methods"]["drc"]["np_value"] = np.float32(0.25)  # numpy scalars are serialised
    json_path, html_path = write_report(tmp_path / "out", report, _grids())
    back = json.loads(json_path.read_text())
    assert set(back) == set(report)
    assert back["extra_field"] == {"kept": [1, 2, 3]}
    assert back["methods"]["drc"]["np_value"] == 0.25
    assert back["curves"] == report["curves"] and back["breakdowns"] == report["breakdowns"]
    html = html_path.read_text()
    for m in report["methods"]:
        assert f"<tr data-method='{m}'>" in html
    assert html.count("<svg") >= 1 + 2 + 2  # summary chart, 2 breakdown charts, 2 loss curves
    assert "joint accuracy and collapse rate" in html
    # probe accuracy is shown above the table
    assert html.index("Probe accuracy") < html.index("<table class='methods'>")
    srcs = re.findall(r"<img[^>]*src='([^']+)'", html)
    assert srcs == ["grids/users.png", "grids/plain.png"]
    for s in srcs:
        assert (html_path.parent / s).is_file()
        assert Image.open(html_path.parent / s).format == "PNG"
    assert "Worst style theme: <b>navy_dog</b>" in html
    assert "extra_field" in html  # unknown keys are shown, not dropped
    assert "total" in html and "440.5" in html  # timings total


def _row_html(html: str, method: str) -> str:
    return html.split(f"<tr data-method='{method}'>")[1].split("</tr>")[0]


def test_best_per_column_is_highlighted(tmp_path):
    _, html_path = write_report(tmp_path, _report(), [])
    html = html_path.read_text()
    cells = {m: re.findall(r"<td( class='best')?>([^<]*)", _row_html(html, m)) for m in _report()["methods"]}
    cols = re.findall(r"<th>([a-z_]+)", html.split("<table class='methods'>")[1].split("</tr>")[0])[1:]
    assert cols == ["style_acc", "semantic_acc", "joint_acc", "collapse_rate", "ref_sim", "fd", "n"]
    best = {c: [m for m in cells if cells[m][cols.index(c) + 1][0]] for c in cols}
    assert best["style_acc"] == ["drc"] and best["joint_acc"] == ["drc"]
    assert best["semantic_acc"] == ["reference_only"]
    assert best["collapse_rate"] == ["drc"]  # lower is better
    assert best["fd"] == ["entangled"]  # lower is better; NaN never wins
    assert best["ref_sim"] == [] and best["n"] == []  # no direction, no highlight
    assert "[0.600, 0.800]" in _row_html(html, "drc")  # the bootstrap interval is shown


def test_grid_png_geometry():
    grid = _grids()[0]
    assert plots.grid_columns(grid) == ["h1", "h2", "h3", "reference", "drc", "entangled", "target"]
    img = render_grid_png(grid, scale=2)
    cell = 16 * 2
    width = plots.LABEL_W + 7 * (cell + plots.PAD) + plots.PAD
    height = plots.TITLE_H + plots.HEADER_H + 2 * (cell + plots.WEIGHT_H + plots.PAD) + plots.PAD
    assert img.size == (width, height) == plots.grid_size(grid, 2)
    # the first history image is pasted unchanged (nearest-neighbour upscaling) in its cell
    y0 = plots.TITLE_H + plots.HEADER_H
    x0 = plots.LABEL_W + plots.PAD
    crop = np.asarray(img)[y0 : y0 + cell : 2, x0 : x0 + cell : 2]
    assert np.array_equal(crop, grid.rows[0].history[0])
    # a missing history slot (row 2 has one history image) is a blank grey cell
    y1 = y0 + cell + plots.WEIGHT_H + plots.PAD
    x2 = x0 + 2 * (cell + plots.PAD)
    assert (np.asarray(img)[y1 + 5, x2 + 5] == 235).all()
    # the weight bar under the highest weight (h2 = 0.5) is longer than under h1 (0.2)
    band = np.asarray(img)[y0 + cell + 11]

    def bar_len(col: int) -> int:
        xs = band[plots.LABEL_W + plots.PAD + col * (cell + plots.PAD) :][:cell]
        return int((xs.astype(int).sum(-1) < 700).sum())

    assert bar_len(1) > bar_len(0) > 0
    # no weights anywhere -> no weight band; (3, H, W) arrays are accepted too
    plain = _grids()[1]
    plain.rows[0].reference = plain.rows[0].reference.transpose(2, 0, 1)
    w, h = render_grid_png(plain, scale=1).size
    assert (w, h) == (
        plots.LABEL_W + 4 * (16 + plots.PAD) + plots.PAD,
        plots.TITLE_H + plots.HEADER_H + (16 + plots.PAD) + plots.PAD,
    )


def test_svg_charts_are_valid_xml():
    import xml.etree.ElementTree as ET

    series = {"joint": [0.5, float("nan")], "collapse": [0.1, 0.2]}
    bar = plots.bar_chart_svg(["a", "b<c"], series, "t&t", 1.0)
    root = ET.fromstring(bar)
    assert root.tag.endswith("svg")
    assert len([e for e in root.iter() if e.tag.endswith("rect")]) == 3 + 2  # 3 finite bars + 2 legend keys
    line = plots.line_chart_svg({"loss": [(0, 10.0), (1, 0.1)]}, "loss")
    assert "log y" in line and ET.fromstring(line) is not None
    assert "no data" in plots.line_chart_svg({}, "empty")


def test_unserialisable_values_are_refused(tmp_path):
    with pytest.raises(TypeError, match="object"):
        write_report(tmp_path, {"methods": {}, "bad": object()}, [])
    assert not (Path(tmp_path) / "report.json").exists()


def test_each_methods_validation_is_a_line_of_the_report(tmp_path: Path) -> None:
    from drc.demo import _validation

    failure = "validation draft accuracy 0.300 is not above copying the latest history image (0.320)"
    scores = {"cases": 92, "copy_reference_acc": 0.027, "copy_history_acc": 0.32, "acc": 0.3, "ce": 3.1}
    for m, status in (("drc", "ok"), ("entangled", "failed")):
        (tmp_path / "runs" / m).mkdir(parents=True)
        info = {"status": status, "failure": failure if status == "failed" else None}
        info["validation"] = {**scores, "best_step": 800, "evaluations": [{"step": 800}]}
        (tmp_path / "runs" / m / "run.json").write_text(json.dumps(info))
    rows = _validation(tmp_path, ["drc", "entangled", "absent"])
    assert set(rows) == {"drc", "entangled"} and "evaluations" not in rows["drc"]
    assert rows["drc"]["summary"].startswith("ok: accuracy 0.300 at step 800")
    assert rows["entangled"]["status"] == "failed" and rows["entangled"]["summary"].endswith(failure)
    _, html = write_report(tmp_path / "report", {"title": "t", "methods": {}, "validation": rows})
    text = html.read_text()
    assert "Validation: held-out pairs" in text and "copying the reference 0.027" in text
    assert "Other fields" not in text  # shown as its own section, not dumped as raw JSON


def test_quality_metrics_are_columns_and_their_sample_sizes_are_a_note(tmp_path: Path) -> None:
    report = _report()
    for m, (sr, v) in zip(report["methods"], [(0.8, 0.05), (0.5, 0.0), (0.9, 0.1)]):
        quality = dict(sharpness_ratio=sr, variety=v, real_variety=0.2, variety_n=4, variety_cases=16)
        report["methods"][m].update(quality)
    json_path, html_path = write_report(tmp_path, report, [])
    assert json.loads(json_path.read_text())["methods"]["drc"]["variety_cases"] == 16
    html = html_path.read_text()
    cols = re.findall(r"<th>([a-z_]+)", html.split("<table class='methods'>")[1].split("</tr>")[0])[1:]
    assert cols[-4:] == ["sharpness_ratio", "variety", "real_variety", "n"]
    assert "variety_n" not in cols and "variety_cases" not in cols
    assert "16 requests x 4 images" in html
    # a report without them has no note
    assert "real_variety" not in write_report(tmp_path / "plain", _report(), [])[1].read_text()
