"""The Janus backend does what Janus itself does, on the tiny random Janus (nothing downloaded).

Checked against DeepSeek's reference code (`deepseek-ai/Janus`): the VQ rule of
`janus/models/vq_model.py`, the sampling loop and settings of `generation_inference.py`
(`drc.backends.janus_reference` restates both); and: LoRA adapters that train in fp32 over a bf16
model, a text tokenizer that must give back the prompt it encoded.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

transformers = pytest.importorskip("transformers")
if not hasattr(transformers, "JanusForConditionalGeneration"):
    pytest.skip("this transformers has no Janus (needs >= 4.51)", allow_module_level=True)

from drc.backend_options import DEFAULT_PROMPT  # noqa: E402
from drc.backends import load_backend  # noqa: E402
from drc.backends.janus_reference import raw_codes, reference_codes, reference_generate  # noqa: E402
from drc.cli import main  # noqa: E402
from drc.config import build_config  # noqa: E402
from drc.errors import DrcError  # noqa: E402
from drc.models.instruction import LatentInstruction  # noqa: E402
from drc.models.text import ByteTokenizer  # noqa: E402

CPU = torch.device("cpu")
SIDE, GRID, V = 32, 8, 64


def janus_cfg(model_dir: Path | str, **overrides):
    base = {"generator.backend": "janus", "generator.model_dir": str(model_dir), "data.image_height": SIDE,
            "data.image_width": SIDE, "precision": "fp32"}  # fmt: skip
    return build_config(preset="tiny", overrides={**base, **overrides})


@pytest.fixture(scope="module")
def backend(tiny_janus):
    return load_backend(janus_cfg(tiny_janus), CPU)


def images(n: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, SIDE, SIDE, generator=torch.Generator().manual_seed(seed)) * 2 - 1


# --------------------------------------------------------------------------- 1. the VQ rule


def test_encoding_follows_janus_normalised_rule_not_the_raw_nearest_code(backend):
    tok = backend.tokenizer
    vq = tok.vq
    book = vq.quantize.embedding.weight
    norms = book.norm(dim=-1)
    assert float(norms.max() / norms.min()) > 2  # the tiny codebook's rows are far from unit norm
    x = images(4, seed=3)
    codes = tok.encode(x)
    # by hand: cosine similarity of the latent with each codebook row, the largest wins
    z = vq.quant_conv(vq.encoder(x)).permute(0, 2, 3, 1)
    sim = F.normalize(z, dim=-1) @ F.normalize(book, dim=-1).T
    assert torch.equal(codes, sim.argmax(-1))
    assert torch.equal(codes, reference_codes(vq, x))  # vq_model.py's argmin form, as the GPU check uses
    raw = raw_codes(vq, x)  # transformers' quantizer: nearest raw vector
    assert int((raw != codes).sum()) >= 1


# --------------------------------------------------------------------------- 2. sampling defaults


def test_sampling_defaults_are_the_backend_s_and_explicit_settings_win(tiny_janus, capsys, tmp_path):
    builtin = build_config(preset="tiny").sample
    assert (builtin.cfg_scale, builtin.temperature, builtin.top_k) == (3.0, 0.7, 32)
    # the draft guide is on by default, off in the tiny preset (its composer is certain of every cell)
    assert build_config().sample.draft_guide == 1.0 and builtin.draft_guide == 0.0
    janus = janus_cfg(tiny_janus).sample
    assert (janus.cfg_scale, janus.temperature, janus.top_k, janus.draft_guide) == (5.0, 1.0, 0, 0.0)
    set_ = janus_cfg(tiny_janus, **{"sample.cfg_scale": 2.0}).sample
    assert (set_.cfg_scale, set_.temperature, set_.top_k) == (2.0, 1.0, 0)
    # drc config shows them, and a saved config (a file setting every key) keeps its own values
    assert main(["config", "generator.backend=janus", f"generator.model_dir={tiny_janus}"]) == 0
    out = capsys.readouterr().out
    sample = out[out.index("\nsample:") :]
    assert "cfg_scale: 5.0" in sample and "temperature: 1.0" in sample and "top_k: 0" in sample
    path = tmp_path / "c.yaml"
    path.write_text(out.replace("cfg_scale: 5.0", "cfg_scale: 3.0"))
    assert build_config(config_file=path).sample.cfg_scale == 3.0
    # a builtin config file switched to janus on the command line takes Janus's defaults
    assert main(["config"]) == 0
    path.write_text(capsys.readouterr().out)
    over = {"generator.backend": "janus", "generator.model_dir": str(tiny_janus)}
    assert build_config(config_file=path, overrides=over).sample.cfg_scale == 3.0  # the file set it


# --------------------------------------------------------------------------- 3. LoRA in fp32


def test_lora_adapters_and_their_optimiser_state_are_fp32_over_a_bf16_model(tiny_janus):
    pytest.importorskip("peft")
    cfg = janus_cfg(tiny_janus, **{"janus.dtype": "bf16", "janus.lora_rank": 4})
    torch.manual_seed(0)
    gen = load_backend(cfg, CPU).generator
    assert gen.dtype == torch.bfloat16
    adapters = {k: p for k, p in gen.named_parameters() if p.requires_grad}
    assert adapters and all("lora_" in k and p.dtype == torch.float32 for k, p in adapters.items())
    base = [p for k, p in gen.named_parameters() if "lora_" not in k and "vqmodel" not in k]
    assert base and all(p.dtype == torch.bfloat16 for p in base)
    with torch.no_grad():  # B starts at 0, which would leave A without gradient on the first step
        for k, p in adapters.items():
            if "lora_B" in k:
                p.normal_(0, 0.5)
    a_name = next(k for k in adapters if "lora_A" in k)
    a = adapters[a_name]
    before = a.detach().clone()
    lr = 1e-5
    # the same step on a bf16 copy of A rounds away nearly everywhere: what fp32 adapters avoid
    lost = (before.bfloat16() - lr) == before.bfloat16()
    assert float(lost.float().mean()) > 0.9
    opt = torch.optim.AdamW(list(adapters.values()), lr=lr, weight_decay=0.0)
    ids, mask = ByteTokenizer().encode(["a sticker", "a dog"], 256)
    target = torch.randint(0, V, (2, GRID * GRID), generator=torch.Generator().manual_seed(0))
    loss = gen.loss(ids, mask, LatentInstruction(torch.randn(2, GRID * GRID, V)), target).mean()
    assert loss.dtype == torch.float32
    loss.backward()
    assert a.grad is not None and float(a.grad.abs().sum()) > 0
    opt.step()
    assert all(s["exp_avg"].dtype == torch.float32 for s in opt.state.values())
    moved = (a.detach() - before).abs()
    assert float((moved > 0.5 * lr).float().mean()) > 0.9  # Adam's first step moves each weight by ~lr
    assert float(moved.max()) < 2 * lr


# --------------------------------------------------------------------------- 4. the text tokenizer


def test_a_text_tokenizer_that_drops_spaces_is_refused_at_load(tiny_janus, tmp_path):
    folder = tmp_path / "spaceless"
    shutil.copytree(tiny_janus, folder)
    spec = json.loads((folder / "tokenizer.json").read_text())
    # split on whitespace first and drop it: what the reported pre-tokenizer change does to Janus's
    spec["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "WhitespaceSplit"}, spec["pre_tokenizer"]]}  # fmt: skip
    (folder / "tokenizer.json").write_text(json.dumps(spec))
    with pytest.raises(DrcError) as e:
        load_backend(janus_cfg(folder), CPU)
    msg = str(e.value)
    assert "\n" not in msg and str(folder) in msg and "round-trip" in msg
    assert "a red sticker of a cat, smiling" in msg and "aredstickerofacat" in msg
    assert transformers.__version__ in msg


# --------------------------------------------------------------------------- 6. the reference loop


@pytest.mark.parametrize("cfg_weight", [1.0, 5.0])
def test_greedy_tokens_without_a_draft_are_the_reference_loops(backend, cfg_weight):
    """DeepSeek's generation_inference.py loop and the backend pick the same codes, greedy, for
    two prompts of different lengths (each as the reference runs it: one prompt per batch)."""
    gen = backend.generator
    for text in ("a sticker", "a cat with a hat, smiling"):
        ids, mask = ByteTokenizer().encode([text], 256)
        ours = gen.generate(ids, mask, None, temperature=0.0, cfg_scale=cfg_weight)
        ref = reference_generate(gen.janus, gen.text_tokenizer, DEFAULT_PROMPT.replace("{text}", text),
                                 GRID * GRID, cfg_weight)  # fmt: skip
        assert ref.shape == ours.shape == (1, GRID * GRID)
        assert len(ref.unique()) > 4  # not a degenerate constant output
        assert torch.equal(ours, ref)
