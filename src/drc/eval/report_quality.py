"""The output-quality columns of the report's methods table (`drc.eval.evaluate.quality_metrics`):
which keys are sample sizes rather than columns, and the note that says what the columns mean."""

from __future__ import annotations

from html import escape
from typing import Any

# the sample sizes behind `variety`: in report.json and in the note under the table, not as columns
QUALITY_COUNTS = ("variety_n", "variety_cases")


def quality_note(methods: dict[str, dict[str, Any]]) -> str:
    """What sharpness_ratio / variety / real_variety mean, with the sample size behind variety;
    empty when no method has them."""
    if not any("sharpness_ratio" in m or "variety" in m for m in methods.values()):
        return ""
    sizes = {(m.get("variety_cases"), m.get("variety_n")) for m in methods.values() if "variety_n" in m}
    size = ", ".join(f"{c} requests x {n} images" for c, n in sorted(sizes, key=str) if c and n)
    return (
        "<p class='note'><i>sharpness_ratio</i>: Laplacian variance of the outputs / of their real "
        "targets (1 = as sharp; below 1 = blurrier). <i>variety</i>: mean pairwise cosine distance, in "
        f"the probes' feature space, between the images of one request ({escape(size) or 'none'}); "
        "<i>real_variety</i>: the same among real items of one (style, semantics) pair, the reference "
        "point (0 = n copies of one image); <i>_pixels</i>: the same as a mean absolute pixel "
        "difference (0..255), which also sees shifts and redrawn detail that the probes ignore.</p>"
    )
