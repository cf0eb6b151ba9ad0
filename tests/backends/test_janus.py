"""The Janus backend on a tiny random Janus built here (nothing is downloaded).

What must hold for a real Janus-Pro too: the folder checks, the interface, sampling that agrees
with the training-time forward pass (KV cache, guidance, masked draft), composer training through
the frozen LLM (and its LoRA adapters), the command line end to end, strict weight loading.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

transformers = pytest.importorskip("transformers")
if not hasattr(transformers, "JanusForConditionalGeneration"):
    pytest.skip("this transformers has no Janus (needs >= 4.51)", allow_module_level=True)

from drc.backends import Backend, TokenGenerator, VisualTokenizer, check_config, load_backend  # noqa: E402
from drc.config import build_config  # noqa: E402
from drc.errors import CheckpointError, DrcError  # noqa: E402
from drc.models.composer_config import ComposerConfig  # noqa: E402
from drc.models.composers import build_composer, codebook_of  # noqa: E402
from drc.models.instruction import LatentInstruction  # noqa: E402
from drc.models.text import ByteTokenizer  # noqa: E402
from drc.train.batches import encode_text, trainable_scope  # noqa: E402
from drc.train.losses import composer_loss  # noqa: E402
from drc.train.stage1 import crossed_instruction, stage1_losses  # noqa: E402
from drc.weights import atomic_save_tensors, read_tensors, save_module  # noqa: E402

CPU = torch.device("cpu")
SIDE, GRID, V, CODE = 32, 8, 64, 8  # the tiny Janus: 32 px, 8x8 codes of 64, 8-dim code vectors


def janus_cfg(model_dir: Path | str, **overrides):
    base = {
        "generator.backend": "janus",
        "generator.model_dir": str(model_dir),
        "data.image_height": SIDE,
        "data.image_width": SIDE,
        "precision": "fp32",
    }
    return build_config(preset="tiny", overrides={**base, **overrides})


@pytest.fixture(scope="module")
def backend(tiny_janus: Path) -> Backend:
    torch.manual_seed(0)
    return load_backend(janus_cfg(tiny_janus), CPU)


def images(n: int, seed: int = 0, side: int = SIDE) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, side, side, generator=g) * 2 - 1


def texts(*t: str, max_len: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    return ByteTokenizer().encode(list(t), max_len)


# --------------------------------------------------------------------------- the model folder


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


@pytest.mark.parametrize(
    "remove, named",
    [
        ("config.json", "config.json"),
        ("model.safetensors", "model.safetensors"),
        ("tokenizer.json", "tokenizer.json"),
    ],
)
def test_an_incomplete_folder_is_a_one_line_error_naming_what_is_missing(tiny_janus, tmp_path, remove, named):
    folder = _copy(tiny_janus, tmp_path / "m")
    (folder / remove).unlink()
    with pytest.raises(DrcError) as e:
        check_config(janus_cfg(folder))
    msg = str(e.value)
    assert named in msg and str(folder) in msg and "\n" not in msg
    # loading (what train and generate do) fails the same way, before touching transformers
    with pytest.raises(DrcError, match=named):
        load_backend(janus_cfg(folder), CPU)


def test_sharded_weights_name_the_missing_shard_and_other_folder_errors(tiny_janus, tmp_path):
    folder = _copy(tiny_janus, tmp_path / "m")
    (folder / "model.safetensors").unlink()
    index = {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    (folder / "model-00001-of-00002.safetensors").write_bytes(b"")
    with pytest.raises(DrcError, match=r"missing model-00002-of-00002\.safetensors"):
        check_config(janus_cfg(folder))
    with pytest.raises(DrcError, match="folder not found"):
        check_config(janus_cfg(tmp_path / "nowhere"))
    with pytest.raises(DrcError, match="needs generator.model_dir"):
        check_config(janus_cfg(""))
    with pytest.raises(DrcError, match="unknown generator.backend 'jnus'; valid: builtin, janus"):
        check_config(build_config(overrides={"generator.backend": "jnus"}))
    # the LLM trains only through adapters: asking for it without any is refused up front
    with pytest.raises(DrcError, match="janus.lora_rank"):
        check_config(janus_cfg(tiny_janus, **{"stage2.trainable": "composer+generator"}))


# --------------------------------------------------------------------------- the interface


def test_both_backends_implement_the_interface(backend):
    from drc.models.generator import Generator
    from drc.models.generator_config import GeneratorConfig
    from drc.models.tokenizer import VQTokenizer
    from drc.models.tokenizer_config import TokenizerConfig

    builtin_tok = VQTokenizer(TokenizerConfig(channels=8, codebook_size=16, code_dim=4))
    builtin_gen = Generator(GeneratorConfig(n_layer=1, n_head=2, d_model=16).with_visual(16, 8, 8))
    for tok, gen in ((builtin_tok, builtin_gen), (backend.tokenizer, backend.generator)):
        assert isinstance(tok, VisualTokenizer) and isinstance(gen, TokenGenerator)
        assert gen.config.n_visual == tok.grid(64, 64)[0] * tok.grid(64, 64)[1]
        # one config class for every generator: Janus's is the run's generator section, its shapes filled
        assert isinstance(gen.config, GeneratorConfig)
    assert backend.generator.config.backend == "janus"
    assert backend.generator.config.visual_vocab == backend.tokenizer.config.codebook_size
    assert backend.generator.config.max_text_len == janus_cfg(".").janus.max_text_len


def test_the_tokenizer_encodes_embeds_and_decodes_at_the_run_size(backend, tiny_janus):
    tok = backend.tokenizer
    assert (tok.config.code_dim, tok.config.codebook_size, tok.grid(SIDE, SIDE)) == (CODE, V, (GRID, GRID))
    x = images(3)
    idx = tok.encode(x)
    assert idx.shape == (3, GRID, GRID) and idx.dtype == torch.long
    assert int(idx.min()) >= 0 and int(idx.max()) < V
    e = tok.embed(idx)
    assert e.shape == (3, GRID * GRID, CODE)
    assert torch.allclose(e.norm(dim=-1), torch.ones(3, GRID * GRID), atol=1e-5)
    out = tok.decode_code(idx)
    assert out.shape == (3, 3, SIDE, SIDE) and float(out.abs().max()) <= 1.0
    # a run at 64x64 px: images are resized to the VQ's 32 px and decoded back at 64 px
    big = load_backend(janus_cfg(tiny_janus, **{"data.image_height": 64, "data.image_width": 64}), CPU)
    up = torch.nn.functional.interpolate(x, size=(64, 64), mode="nearest")
    assert big.tokenizer.encode(up).shape == (3, GRID, GRID)
    assert big.tokenizer.decode_code(idx).shape == (3, 3, 64, 64)


def test_sampling_agrees_with_the_training_forward_pass(backend):
    """Greedy samples (KV cache, one code per step) are the argmax of the teacher-forced logits of
    the same codes, with and without guidance: the cache, the positions and the unconditional rows
    of sampling are those of training."""
    gen = backend.generator
    ids, mask = texts("a sticker", "a cat with a hat, smiling")  # two prompt lengths in one batch
    torch.manual_seed(1)
    instr = LatentInstruction(torch.randn(2, GRID * GRID, V) * 3)
    for scale in (1.0, 3.0):
        tokens = gen.generate(ids, mask, instr, temperature=0.0, cfg_scale=scale)
        assert tokens.shape == (2, GRID * GRID)
        assert len(tokens.unique()) > 4  # not a degenerate constant output
        logits = gen(ids, mask, instr, tokens)
        if scale != 1.0:
            uncond = gen(ids, mask, instr, tokens, drop_cond=torch.ones(2, dtype=torch.bool))
            logits = uncond + scale * (logits - uncond)
        assert torch.equal(logits.argmax(-1), tokens)
    # the draft is read: another draft, other logits
    other = LatentInstruction(torch.randn(2, GRID * GRID, V) * 3)
    assert not torch.allclose(gen(ids, mask, instr, tokens), gen(ids, mask, other, tokens), atol=1e-4)
    # seeded sampling is reproducible; the image has the configured size
    g = torch.Generator().manual_seed(5)
    a = gen.generate(ids, mask, instr, temperature=1.0, top_k=16, cfg_scale=2.0, generator=g)
    b = gen.generate(ids, mask, instr, temperature=1.0, top_k=16, cfg_scale=2.0, generator=g.manual_seed(5))
    assert torch.equal(a, b)
    assert backend.tokenizer.decode_code(a.view(2, GRID, GRID)).shape == (2, 3, SIDE, SIDE)


def test_a_hidden_draft_leaves_exactly_janus_own_prompt(backend):
    """Caption-only rows (`drop_draft`) see what a prompt without any draft shows: the draft is
    masked out and the positions after it close up, so the LLM reads its own text-to-image input."""
    gen = backend.generator
    ids, mask = texts("a sticker", "a dog")
    instr = LatentInstruction(torch.randn(2, GRID * GRID, V))
    target = backend.tokenizer.encode(images(2)).flatten(1)
    hidden = gen.loss(ids, mask, instr, target, drop_draft=torch.ones(2, dtype=torch.bool))
    assert torch.allclose(hidden, gen.loss(ids, mask, None, target), atol=1e-5)
    # and per-row results do not depend on what else is in the batch (padding of shorter prompts)
    alone = gen.loss(ids[:1], mask[:1], LatentInstruction(instr.draft[:1]), target[:1])
    assert torch.allclose(alone, gen.loss(ids, mask, instr, target)[:1], atol=1e-5)


# --------------------------------------------------------------------------- training


def _fit(params, loss_fn, steps: int = 15, lr: float = 3e-3) -> list[float]:
    opt = torch.optim.AdamW(params, lr=lr)
    losses = []
    for _ in range(steps):
        loss = loss_fn()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


@pytest.mark.parametrize("lora", [0, 4])
def test_stage1_and_stage2_losses_fall_through_the_frozen_llm(tiny_janus, lora):
    """A few Stage 1 and Stage 2 steps on a fixed batch, with the generator's token loss on
    (gen_weight 1): the loss falls, the LLM's base weights do not move, its adapters (LoRA) do."""
    if lora:
        pytest.importorskip("peft")
    over = {"janus.lora_rank": lora, "stage1.trainable": "composer+generator"} if lora else {}
    torch.manual_seed(0)
    b = load_backend(janus_cfg(tiny_janus, **over), CPU)
    tok, gen = b.tokenizer, b.generator
    torch.manual_seed(0)
    # no dropout: 20 steps on one batch show that the loss falls, not how a noisy composer generalises
    cfg = ComposerConfig(d_model=32, n_heads=2, dropout=0.0)
    composer = build_composer("drc", cfg, CODE, V, GRID * GRID, 3, codebook=codebook_of(tok))
    B = 2
    a, s, m = (tok.encode(images(B, seed)).flatten(1) for seed in (1, 2, 3))
    base = {k: v.clone() for k, v in gen.janus.named_parameters() if "lora_" not in k}
    ids, mask = encode_text("a sticker", 4 * B, gen.config.max_text_len, CPU)

    hist = tok.embed(torch.cat([a, s, m])).view(3, B, GRID * GRID, CODE).transpose(0, 1)
    hist_mask = torch.ones(B, 3, dtype=torch.bool)
    ref = tok.embed(m)

    def gen_terms() -> tuple[float, float]:
        """The generator's token loss alone, given Stage 1's and Stage 2's drafts."""
        with torch.no_grad():
            e = [tok.embed(t) for t in (a, s, m)]
            g1 = gen.loss(ids, mask, crossed_instruction(composer, *e), a.repeat(4, 1)).mean()
            g2 = gen.loss(ids[:B], mask[:B], composer(hist, hist_mask, ref), a).mean()
        return float(g1), float(g2)

    def stage2() -> torch.Tensor:
        instr = composer(hist, hist_mask, ref)
        return composer_loss(instr, a, gen, ids[:B], mask[:B], 1.0).mean()

    before = gen_terms()
    mode = "composer+generator" if lora else "composer"
    with trainable_scope(composer, gen, mode) as params:
        adapters = [p for p in gen.parameters() if p.requires_grad]
        assert (len(adapters) > 0) == bool(lora)
        s1 = _fit(params, lambda: stage1_losses(composer, gen, tok, a, s, m, ids, mask, 1.0).mean())
        s2 = _fit(params, stage2, steps=20)
    after = gen_terms()
    # draft cross-entropy + the generator's token loss (both start near ln 64 + ~6 on random codes).
    # Janus's VQ rule spreads these random images over ~45 of the 64 codes (the raw nearest code
    # used 3), which the frozen random LLM reads slowly: seen here, -10% / -6% without LoRA
    assert s1[-1] < 0.95 * s1[0], s1
    assert s2[-1] < 0.97 * s2[0], s2
    assert after[0] < before[0] and after[1] < before[1], (before, after)  # the LLM path learned too
    for k, v in gen.janus.named_parameters():
        if "lora_" not in k:
            assert torch.equal(v, base[k]), k
    if lora:
        lora_b = [v for k, v in gen.state_dict().items() if "lora_B" in k]
        assert lora_b and any(float(v.abs().max()) > 0 for v in lora_b)  # B starts at 0: it trained


def test_the_generator_term_sends_gradient_to_the_draft(backend):
    gen = backend.generator
    ids, mask = texts("a sticker", "a sticker")
    draft = torch.zeros(2, GRID * GRID, V, requires_grad=True)
    target = backend.tokenizer.encode(images(2)).flatten(1)
    gen.loss(ids, mask, LatentInstruction(draft), target).sum().backward()
    assert draft.grad is not None and float(draft.grad.abs().sum()) > 0


def test_bf16_weights_as_on_a_gpu_keep_the_vq_in_fp32(tiny_janus):
    """What a GPU run loads (bf16, low_memory), on the CPU: the LLM path in bf16, the VQ in fp32
    (its argmin over squared distances), an fp32 draft in and fp32 logits out."""
    b = load_backend(janus_cfg(tiny_janus, **{"janus.dtype": "bf16", "janus.low_memory": True}), CPU)
    tok, gen = b.tokenizer, b.generator
    assert gen.dtype == torch.bfloat16 and tok.vq.quant_conv.weight.dtype == torch.float32
    x = images(2)
    fp32 = load_backend(janus_cfg(tiny_janus), CPU).tokenizer
    assert torch.equal(tok.encode(x), fp32.encode(x))  # the same codes as the all-fp32 model
    ids, mask = texts("a sticker", "a sticker")
    draft = torch.zeros(2, GRID * GRID, V, requires_grad=True)
    loss = gen.loss(ids, mask, LatentInstruction(draft), tok.encode(x).flatten(1))
    assert loss.dtype == torch.float32 and torch.isfinite(loss).all()
    loss.sum().backward()
    assert draft.grad is not None and draft.grad.dtype == torch.float32
    tokens = gen.generate(ids, mask, LatentInstruction(draft.detach()), temperature=1.0, cfg_scale=2.0)
    assert tokens.shape == (2, GRID * GRID) and int(tokens.max()) < V


# --------------------------------------------------------------------------- weights


def test_adapter_weights_round_trip_strictly(tiny_janus, tmp_path):
    pytest.importorskip("peft")
    cfg = janus_cfg(tiny_janus, **{"janus.lora_rank": 4})
    torch.manual_seed(0)
    gen = load_backend(cfg, CPU).generator
    state = gen.state_dict()
    assert state and all("lora_" in k for k in state)
    with torch.no_grad():
        for v in state.values():
            v.normal_()
    run = tmp_path / "run"
    save_module(gen, run / "generator", gen.config)
    again = load_backend(cfg, CPU, run=run).generator
    for k, v in again.state_dict().items():
        assert torch.equal(v, state[k]), k
    # another rank does not load silently
    with pytest.raises(CheckpointError, match="mis-shaped keys"):
        load_backend(janus_cfg(tiny_janus, **{"janus.lora_rank": 2}), CPU, run=run)
    with pytest.raises(DrcError, match="run is not finished"):
        load_backend(cfg, CPU, run=tmp_path / "empty")


def test_command_line_train_generate_and_strict_composer_loading(tiny_janus, tiny_stickers, tmp_path, capsys):
    """`drc train generator` skips pretraining with a message; `drc train` then trains Stage 1 and
    Stage 2 on top of the tiny Janus, `drc generate` writes images of the configured size, and the
    composer's weights load strictly."""
    from drc.api import DrcModel
    from drc.cli import main

    run = tmp_path / "run"
    opts = [
        "--data", str(tiny_stickers), "--out", str(run), "--preset", "tiny", "--quiet",
        "generator.backend=janus", f"generator.model_dir={tiny_janus}",
        "stage2.n_augment=2", "stage1.train.steps=4", "stage2.train.steps=4",
    ]  # fmt: skip
    assert main(["train", "generator", *opts]) == 0
    assert "skipped tokenizer training and generator pretraining" in capsys.readouterr().out
    assert not (run / "pretrain").exists() and not (run / "tokenizer").exists()
    assert (run / "tokens.pt").is_file()
    assert main(["train", *opts]) == 0
    for f in ("composer/model.safetensors", "generator/model.safetensors", "stages/stage2/history.jsonl"):
        assert (run / f).is_file(), f
    assert read_tensors(run / "generator" / "model.safetensors") == {}  # the frozen LLM is not copied

    user = json.loads((tiny_stickers / "users.jsonl").read_text().splitlines()[0])["id"]
    ref = tiny_stickers / json.loads((tiny_stickers / "items.jsonl").read_text().splitlines()[-1])["image"]
    out = tmp_path / "gen"
    cmd = ["generate", "--run", str(run), "--user", user, "--data", str(tiny_stickers), "--quiet"]
    assert main([*cmd, "--reference", str(ref), "--n", "2", "--out", str(out)]) == 0
    from PIL import Image

    pngs = sorted(out.glob("*.png"))
    assert len(pngs) == 2 and Image.open(pngs[0]).size == (64, 64)  # the run's data size

    model = DrcModel.load(run)
    assert model.generator.config.n_visual == GRID * GRID
    composer = run / "composer" / "model.safetensors"
    state = read_tensors(composer)
    atomic_save_tensors({**state, "stray.weight": torch.zeros(1)}, composer)
    with pytest.raises(CheckpointError, match="unexpected keys: stray.weight"):
        DrcModel.load(run)
    state.pop(sorted(state)[0])
    atomic_save_tensors(state, composer)
    with pytest.raises(CheckpointError, match="missing keys"):
        DrcModel.load(run)


def test_a_missing_model_folder_fails_before_anything_is_written(tiny_stickers, tmp_path, capsys):
    from drc.cli import main

    run = tmp_path / "run"
    rc = main(["train", "--data", str(tiny_stickers), "--out", str(run), "--quiet",
               "generator.backend=janus", f"generator.model_dir={tmp_path / 'nowhere'}"])  # fmt: skip
    assert rc == 2 and not run.exists()
    assert "Janus model folder not found" in capsys.readouterr().err
