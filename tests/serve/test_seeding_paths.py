"""One seeding rule (`drc.seeding`): the same inputs and seed give the same image through
`drc.api` generate, the service's generate route, the service's Python path (`RunBatcher.run`) and
evaluation's per-case sampling (`drc.eval.evaluate.sample_cases`).

Every path samples here with batch size 1 (n=1, one job, one case), so no comparison crosses batch
sizes, which oneDNN does not promise to compute alike. What does differ: the service tokenizes the
history and the reference in one batch, the other paths in two; so the test asserts that all four
paths hand the sampler the same per-image random stream (the rule itself), and equal images only
between paths that run the same batches: api against evaluation, and the route against the Python
path (the route's worker runs `RunBatcher.run` too)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from serve_helpers import files, serve, wait_job

from drc.data.prepare import prepare
from drc.eval.evaluate import _cases, sample_cases
from drc.serve.batcher import RunBatcher, SampleRequest
from drc.serve.storage import BlobStore

SEED = 7


def _png(image: torch.Tensor) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image.permute(1, 2, 0).numpy()).save(buf, format="PNG")
    return buf.getvalue()


def test_generate_the_service_and_evaluation_draw_the_same_image(
    tiny_model, tiny_stickers: Path, tmp_path: Path, monkeypatch  # noqa: ANN001
) -> None:
    model = tiny_model
    assert model.config.sample.renderer == "generator"  # the draft renderer draws nothing at random
    streams: list[list[int]] = []
    sample = model.sample

    def recording(instr, texts, seed=0, generators=None):  # noqa: ANN001, ANN202
        streams.append([g.initial_seed() for g in generators])
        return sample(instr, texts, seed=seed, generators=generators)

    monkeypatch.setattr(model, "sample", recording)
    k = model.config.data.history_len
    prep = prepare(tiny_stickers, model.config)
    case = _cases(prep, "test", [k], 0, 1)[0]
    hist = prep.bank.get(list(case.sample.history)[-k:])  # uint8 (k, 3, H, W)
    ref = case.ref_image  # uint8 (3, H, W)

    # 1. drc.api, as `drc generate` calls it (arrays in)
    arrays = [h.permute(1, 2, 0).numpy() for h in hist]
    by_api = model.generate(arrays, ref.permute(1, 2, 0).numpy(), n=1, seed=SEED, batch_size=1).images[0]
    # 2. evaluation's per-case sampling
    by_eval = sample_cases(model, prep, [case], SEED)[0][0].permute(1, 2, 0).numpy()
    # 3. the service's route: upload, generate, download
    with serve(tmp_path / "data", model) as sv:
        h = sv.tenant()
        ids = []
        for im in [*hist, ref]:
            r = sv.client.post("/v1/images", files=files(_png(im), field_name="file"), headers=h)
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
        body = {"history": ids[:-1], "reference": ids[-1], "n": 1, "seed": SEED}
        r = sv.client.post("/v1/generate", json=body, params={"wait": 30}, headers=h)
        job = wait_job(sv.client, h, r.json()["id"])
        assert job["status"] == "done", job
        png = sv.client.get(f"/v1/images/{job['images'][0]['id']}", headers=h).content
        by_route = np.array(Image.open(io.BytesIO(png)).convert("RGB"))
        blobs = sv.config.blob_dir
    # 4. the service's Python path, on the files the route stored
    store = BlobStore(blobs)
    shas = [store.put(_png(im)) for im in [*hist, ref]]
    item = SampleRequest(history=shas[:-1], reference=shas[-1], prompt=model.prompt, n=1, seed=SEED)
    (by_batcher,) = RunBatcher(model, store.read).run([item])

    assert len(streams) == 4 and all(len(s) == 1 for s in streams), streams
    assert streams[0] == streams[1] == streams[2] == streams[3]
    assert np.array_equal(by_api, by_eval)
    assert np.array_equal(by_route, by_batcher.images[0])
    # and the seed reaches the sampler: another seed, another image
    other = model.generate(arrays, ref.permute(1, 2, 0).numpy(), n=1, seed=SEED + 1, batch_size=1).images[0]
    assert not np.array_equal(other, by_api)
