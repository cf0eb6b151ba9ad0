"""The main job: build a benchmark, train every method on one shared base, evaluate, report.

    OUT/data/            the benchmark (rebuilt only if absent)
    OUT/base/            tokenizer + pretrained generator (copied from the shipped weights when
                         they match, else trained here; `--retrain` always trains)
    OUT/runs/<method>/   one run per method, on top of OUT/base
    OUT/probes/          the style / semantics probes (real items only)
    OUT/eval/<method>.pt cached evaluation of each method (re-running reuses it)
    OUT/report.json, OUT/report.html, OUT/grids/*.png

Re-running with the same OUT reuses every finished stage; an interrupted one resumes.
"""

from __future__ import annotations

import dataclasses
import json
import math
import platform
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from drc.config import METHODS, PROBE_PRESETS, build_config, to_dict
from drc.errors import DrcError

if TYPE_CHECKING:
    from drc.config import RunConfig

SCENARIOS = {
    # scenario: (benchmark module, image (H, W), benchmark users per preset)
    "stickers": ("drc.data.benchmarks.stickers", (64, 64), {"tiny": 24, "default": None}),
    "posters": ("drc.data.benchmarks.posters", (96, 64), {"tiny": 24, "default": None}),
}
# The composer budget of the default preset, cut for every method alike where the scenario's demo
# would not fit 20 minutes on 2 CPU cores: a poster composer step costs 1.5x a sticker one (96
# cells, not 64). Measured (2-core AMX machine, all eight methods, README "Results"): the poster
# demo took 22 min 20 s at 150 + 800 steps (DRC joint 0.833) and 16 min 52 s at 100 + 500 (0.750),
# with the same ranking against every baseline.
SCENARIO_BUDGET: dict[str, dict[str, Any]] = {
    "posters": {"stage1.train.steps": 100, "stage2.train.steps": 500},
}
PRETRAINED_DIR = Path(__file__).parent / "pretrained"


def _environment(cfg: Any = None) -> dict[str, Any]:
    """Where the demo ran, including the precision `cfg.precision` resolved to here, and why."""
    from drc.precision import cpu_capabilities, precision_record, resolve_device
    from drc.threads import choose_threads

    env: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "cpu_threads": torch.get_num_threads(),
        "threads_reason": choose_threads()[1],
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_features": dataclasses.asdict(cpu_capabilities()),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    if cfg is not None:
        env["precision"] = precision_record(cfg.precision, resolve_device(cfg.device))
    return env


def build_benchmark(scenario: str, out: Path, preset: str, seed: int = 0) -> Path:
    import importlib

    module, _, users = SCENARIOS[scenario]
    data = out / "data"
    if (data / "items.jsonl").is_file() and (data / "users.jsonl").is_file():
        return data
    mod = importlib.import_module(module)
    kwargs: dict[str, Any] = {"seed": seed}
    if users[preset] is not None:
        kwargs["users"] = users[preset]
    mod.build(data, **kwargs)
    return data


def shipped_base(scenario: str, cfg: RunConfig) -> Path | None:
    """The shipped pretrained tokenizer + generator for `scenario`, if they fit `cfg`."""
    d = PRETRAINED_DIR / scenario
    meta = d / "meta.json"
    if not meta.is_file():
        return None
    from drc.pretrained import base_hashes

    info = json.loads(meta.read_text())
    return d if info.get("config_hashes") == base_hashes(cfg) else None


def demo_overrides(scenario: str, preset: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The config overrides of every run of the demo: the scenario's image size, its budget (default
    preset only), then the caller's."""
    h, w = SCENARIOS[scenario][1]
    budget = SCENARIO_BUDGET.get(scenario, {}) if preset == "default" else {}
    return {"data.image_height": h, "data.image_width": w, **budget, **(overrides or {})}


def run_demo(
    out: str | Path = "demo_out",
    preset: str = "default",
    scenario: str = "stickers",
    retrain: bool = False,
    methods: tuple[str, ...] = METHODS,
    overrides: dict[str, Any] | None = None,
    progress: bool = True,
    jobs: int | None = None,
) -> dict[str, Any]:
    """Build the benchmark, the base and the probes, train and evaluate `methods`, write the report.

    jobs: methods trained at once (None: one per CPU thread, each process on one thread; one on a
    GPU). Every method gets the same training either way (`drc.demo_methods`).
    """
    from drc.data.prepare import prepare
    from drc.eval.evaluate import probes_for
    from drc.eval.probes import ProbeConfig
    from drc.pipeline import train_run
    from drc.precision import precision_record, resolve_device
    from drc.threads import configure_threads

    if scenario not in SCENARIOS:
        raise DrcError(f"unknown scenario {scenario!r}; valid: {', '.join(SCENARIOS)}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DrcError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / "demo.json").is_file():
        raise DrcError(f"{out}: folder is not empty and holds no drc demo; refusing to write into it")
    out.mkdir(parents=True, exist_ok=True)
    base_over = demo_overrides(scenario, preset, overrides)
    state = {"preset": preset, "scenario": scenario, "retrain": retrain, "overrides": base_over}
    marker = out / "demo.json"
    if marker.is_file():
        old = json.loads(marker.read_text())
        if {k: old.get(k) for k in state} != state:
            raise DrcError(f"{out}: holds a demo with other settings ({old}); use another --out")
    marker.write_text(json.dumps(state, indent=1))
    timings: dict[str, float] = {}

    t_start = t0 = time.perf_counter()
    data = build_benchmark(scenario, out, preset)
    timings["benchmark"] = round(time.perf_counter() - t0, 2)

    cfg0 = build_config("drc", preset, overrides=base_over)
    device = resolve_device(cfg0.device)
    precision_record(cfg0.precision, device)  # an unknown precision fails here, before any training
    configure_threads()
    prep = prepare(data, cfg0, cache=out / "images.pt")

    # the shared base: tokenizer + text-to-image pretrained generator
    t0 = time.perf_counter()
    shipped = None if retrain else shipped_base(scenario, cfg0)
    train_run(
        data,
        out / "base",
        method="drc",
        preset=preset,
        overrides=base_over,
        base=shipped,
        stages=("tokenizer", "pretrain"),
        progress=progress,
    )
    timings["base" + (" (shipped)" if shipped else "")] = round(time.perf_counter() - t0, 2)

    base_info = json.loads((out / "base" / "run.json").read_text())
    for k, v in base_info.get("timings_s", {}).items():
        timings[f"base/{k}"] = v

    # probes: real items only, trained once
    t0 = time.perf_counter()
    from drc.models.loading import load_tokenizer

    tok = load_tokenizer(out / "base" / "tokenizer").to(device).eval()
    probe_cfg = ProbeConfig(**PROBE_PRESETS[preset])
    probes = probes_for(prep, probe_cfg, device, out / "probes", tok, seed=cfg0.seed, progress=progress)
    timings["probes"] = round(time.perf_counter() - t0, 2)

    # the methods: each trains on the base and is evaluated; several at once on a multi-core CPU
    from drc.demo_methods import MethodJob, jobs_for, run_methods

    parallel = jobs_for(jobs, len(methods), device, torch.get_num_threads())
    per_job = max(1, torch.get_num_threads() // parallel) if parallel > 1 else None
    todo = [
        MethodJob(m, str(data), str(out), preset, base_over, cfg0.seed, str(device.type), per_job)
        for m in methods
    ]
    t0 = time.perf_counter()
    method_timings = run_methods(todo, parallel, prep, probes, progress)
    timings[f"methods ({parallel} at a time)"] = round(time.perf_counter() - t0, 2)
    timings.update(method_timings)
    results = {m: torch.load(out / "eval" / f"{m}.pt", weights_only=False) for m in methods}
    curves = _curves(out / "runs" / "drc") if "drc" in methods else {}
    timings["total"] = round(time.perf_counter() - t_start, 2)

    report = _assemble(out, preset, scenario, data, prep, probes, results, curves, timings, cfg0)
    return report


def _influence_grid(prep: Any, drc_res: dict[str, Any], results: dict[str, Any]) -> list[Any]:
    """Noisy test users (up to 6): DRC's weight (w) and leave-one-out style influence (i) of each
    history image, intruders framed in red; the reference, DRC's output and the target."""
    from drc.eval.report import Grid, GridRow

    examples = (drc_res.get("explanations") or {}).get("loo_examples") or []
    if not examples:
        return []
    k = len(examples[0]["history"])
    where = {c.sample.user: i for i, c in enumerate(drc_res["cases"]) if c.k == k}
    rows = []
    for e in examples[:6]:
        i = where[e["user"]]
        c = drc_res["cases"][i]
        rows.append(
            GridRow(
                user=e["user"],
                history=[x.permute(1, 2, 0).numpy() for x in prep.bank.get(e["history"])],
                history_weights=e["weights"],
                history_influence=e["influence"],
                history_marked=e["intruder"],
                reference=c.ref_image.permute(1, 2, 0).numpy(),
                outputs={"drc": results["drc"]["outputs"][i].permute(1, 2, 0).numpy()},
                target=prep.bank.get([c.sample.target])[0].permute(1, 2, 0).numpy(),
                caption=f"main theme {e['user_style']}; drew {e['pred_style']}",
            )
        )
    title = "Noisy users: weight w and leave-one-out influence i per history image (red frame: intruder)"
    return [Grid(title=title, rows=rows, filename="influence_grid.png")]


def _validation_summary(v: dict[str, Any]) -> str:
    """One method's validation in a sentence: status, kept accuracy against the copying drafts."""

    def f(key: str) -> str:
        x = v.get(key)
        return f"{x:.3f}" if isinstance(x, float | int) and math.isfinite(x) else "n/a"

    line = f"{v.get('status', 'ok')}: accuracy {f('acc')} at step {v.get('best_step')} (copying the "
    line += f"reference {f('copy_reference_acc')}, the latest history image {f('copy_history_acc')}), "
    line += f"cross-entropy {f('ce')}, {v.get('cases')} cases"
    return line + (f"; {v['failure']}" if v.get("failure") else "")


def _validation(out: Path, methods: Any) -> dict[str, dict[str, Any]]:
    """Each method's Stage 2 validation (run.json): its status and kept scores, without the curve."""
    rows = {}
    for m in methods:
        f = out / "runs" / m / "run.json"
        info = json.loads(f.read_text()) if f.is_file() else {}
        if info.get("validation"):
            v = {k: x for k, x in info["validation"].items() if k != "evaluations"}
            rows[m] = {"status": info.get("status", "ok"), "failure": info.get("failure"), **v}
            rows[m]["summary"] = _validation_summary(rows[m])
    return rows


def _curves(run: Path) -> dict[str, list[dict[str, float]]]:
    curves = {}
    for stage in ("stage1", "stage2"):
        f = run / "stages" / stage / "history.jsonl"
        if f.is_file():
            curves[stage] = [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
    return curves


def _assemble(out, preset, scenario, data, prep, probes, results, curves, timings, cfg) -> dict[str, Any]:
    from drc.eval.report import Grid, GridRow, write_report

    drc_res = results.get("drc")
    report: dict[str, Any] = {
        "preset": preset,
        "scenario": scenario,
        "dataset": {
            "path": str(data),
            "items": len(prep.ds.items),
            "users": len(prep.ds.users),
            "test_samples": len(prep.split("test")),
            "prompt": prep.prompt,
        },
        "environment": _environment(cfg),
        "probes": dict(probes.accuracy) if probes is not None else None,
        "methods": {m: dict(r["metrics"]) for m, r in results.items()},
        "timings_s": timings,
        # wall time from start to the report (methods run side by side: their times overlap)
        "total_s": timings["total"],
        "config": to_dict(cfg),
        "curves": curves,
        "validation": _validation(Path(out), results),
    }
    if drc_res is not None:
        report["breakdowns"] = {
            "method": "drc",
            "history_length": drc_res["by_history_len"],
            "style_theme": drc_res["by_theme"],
            "worst_theme": drc_res["worst_theme"],
        }
        ex = drc_res.get("explanations") or {}
        if ex.get("by_intent"):
            report["breakdowns"]["target_semantics"] = ex["by_intent"]
        if ex:
            report["explanations"] = {
                "method": "drc",
                "theme_gap": ex["theme_gap"],
                "intent_gap": ex["intent_gap"],
                "loo_examples": ex["loo_examples"],
            }
        sampler = out / "runs" / "drc" / "stages" / "stage1" / "sampler.json"
        if sampler.is_file():
            report["importance_sampling"] = json.loads(sampler.read_text())
    # a fixed set of test users: the first sample of each of the first 6 test users (sorted ids)
    grids = []
    if drc_res is not None:
        k_full = cfg.data.history_len
        picked: list[int] = []
        seen: set[str] = set()
        for i, c in enumerate(drc_res["cases"]):
            if c.k == k_full and c.sample.user not in seen:
                seen.add(c.sample.user)
                picked.append(i)
            if len(picked) == 6:
                break
        rows = []
        for i in picked:
            c = drc_res["cases"][i]
            hist = prep.bank.get(list(c.sample.history)[-k_full:])
            rows.append(
                GridRow(
                    user=c.sample.user,
                    history=[x.permute(1, 2, 0).numpy() for x in hist],
                    history_weights=drc_res["weights"][i] or None,
                    reference=c.ref_image.permute(1, 2, 0).numpy(),
                    outputs={m: r["outputs"][i].permute(1, 2, 0).numpy() for m, r in results.items()},
                    target=prep.bank.get([c.sample.target])[0].permute(1, 2, 0).numpy(),
                    caption=f"target {prep.ds.items[c.sample.target].semantics} in "
                    f"{prep.ds.items[c.sample.target].style}",
                )
            )
        grids.append(
            Grid(
                title="History | reference | each method's output | target",
                rows=rows,
                filename="main_grid.png",
            )
        )
        grids += _influence_grid(prep, drc_res, results)
    write_report(out, report, grids)
    return report
