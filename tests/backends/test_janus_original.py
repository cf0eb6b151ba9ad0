"""DeepSeek's original Janus layout (`model_type: multi_modality`) loads as the same model.

The tiny random Janus is written here in the original key layout (module names of DeepSeek's
`janus/models/modeling_vlm.py` and `vq_model.py`), as `pytorch_model.bin` or `model.safetensors`,
and must load to a backend that encodes, decodes and samples exactly like the transformers-format
folder it came from.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import torch

transformers = pytest.importorskip("transformers")
if not hasattr(transformers, "JanusForConditionalGeneration"):
    pytest.skip("this transformers has no Janus (needs >= 4.51)", allow_module_level=True)

from drc.backends import check_config, load_backend  # noqa: E402
from drc.config import build_config  # noqa: E402
from drc.errors import DrcError  # noqa: E402
from drc.models.instruction import LatentInstruction  # noqa: E402
from drc.models.text import ByteTokenizer  # noqa: E402
from drc.weights import read_tensors  # noqa: E402

CPU = torch.device("cpu")
SIDE, GRID, V = 32, 8, 64


def janus_cfg(model_dir: Path):
    return build_config(preset="tiny", overrides={
        "generator.backend": "janus", "generator.model_dir": str(model_dir), "data.image_height": SIDE,
        "data.image_width": SIDE, "precision": "fp32"})  # fmt: skip


def original_name(key: str) -> str:
    """transformers' key -> DeepSeek's (the inverse of the loader's renaming, written out here)."""
    m = re.match(r"model\.generation_aligner\.hidden_layers\.(\d+)\.(.*)", key)
    if m:  # MlpProjector's Sequential: Linear (0), GELU (1), Linear (2), ...
        return f"gen_aligner.layers.{2 * int(m[1]) + 2}.{m[2]}"
    for pat, rep in [
        (r"^model\.language_model\.", "language_model.model."),
        (r"^lm_head\.", "language_model.lm_head."),
        (r"^model\.generation_embeddings\.", "gen_embed."),
        (r"^model\.generation_head\.proj_out\.", "gen_head.output_mlp_projector."),
        (r"^model\.generation_head\.vision_head\.", "gen_head.vision_head."),
        (r"^model\.generation_aligner\.fc1\.", "gen_aligner.layers.0."),
        (r"^model\.vision_model\.", "vision_model.vision_tower."),
        (r"^model\.aligner\.", "aligner.layers."),
        (r"^model\.vqmodel\.", "gen_vision_model."),
    ]:
        key = re.sub(pat, rep, key)
    if key.startswith("gen_vision_model."):
        key = re.sub(r"\.(encoder)\.down\.|\.(decoder)\.up\.", lambda m: f".{m[1] or m[2]}.conv_blocks.", key)
        key = re.sub(r"\.conv_blocks\.(\d+)\.block\.", r".conv_blocks.\1.res.", key)
        for hf, orig in (("block_1", "0"), ("attn_1", "1"), ("block_2", "2")):
            key = key.replace(f".mid.{hf}.", f".mid.{orig}.")
    return key


def write_original(src: Path, dst: Path, fmt: str) -> Path:
    """The tiny transformers-format Janus `src` rewritten in DeepSeek's layout to `dst`."""
    dst.mkdir(parents=True)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(src / f, dst / f)
    hf = json.loads((src / "config.json").read_text())
    text = hf["text_config"]
    keys = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
            "num_key_value_heads", "max_position_embeddings", "vocab_size")  # fmt: skip
    width = text["hidden_size"]
    config = {
        "model_type": "multi_modality",
        "language_config": {"model_type": "llama", "torch_dtype": "bfloat16", **{k: text[k] for k in keys}},
        "vision_config": {"cls": "CLIPVisionTower", "params": {"image_size": SIDE}},
        "aligner_config": {"cls": "MlpProjector", "params": {"depth": 2, "n_embed": width}},
        "gen_vision_config": {"cls": "VQ-16", "params": {"image_token_size": V, "n_embed": 8}},
        "gen_aligner_config": {"cls": "MlpProjector",
                               "params": {"depth": 2, "input_dim": 8, "n_embed": width}},
        "gen_head_config": {"cls": "vision_head",
                            "params": {"image_token_embed": width, "image_token_size": V, "n_embed": width}},
    }  # fmt: skip
    (dst / "config.json").write_text(json.dumps(config))
    state = {original_name(k): v for k, v in read_tensors(src / "model.safetensors").items()}
    state["language_model.lm_head.weight"] = state["language_model.model.embed_tokens.weight"].clone()
    state["gen_vision_model.quantize.codebook_used"] = torch.zeros(65536)  # the original's usage counter
    for name in ("gen_vision_model.encoder.conv_blocks.0.res.0.conv1.weight",  # vq_model.py's names
                 "gen_vision_model.encoder.conv_blocks.0.downsample.conv.weight",
                 "gen_vision_model.decoder.conv_blocks.0.upsample.conv.weight",
                 "gen_vision_model.decoder.mid.1.q.weight", "gen_vision_model.quantize.embedding.weight",
                 "gen_head.output_mlp_projector.weight", "gen_aligner.layers.2.weight", "gen_embed.weight",
                 "language_model.model.layers.0.self_attn.q_proj.weight"):  # fmt: skip
        assert name in state, name
    assert not any(k.startswith("model.") for k in state)
    if fmt == "bin":
        torch.save(state, dst / "pytorch_model.bin")
    else:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, str(dst / "model.safetensors"))
    return dst


@pytest.fixture(scope="module")
def converted(tiny_janus):
    torch.manual_seed(0)
    return load_backend(janus_cfg(tiny_janus), CPU)


@pytest.mark.parametrize("fmt", ["bin", "safetensors"])
def test_an_original_janus_folder_loads_as_the_same_model(tiny_janus, converted, tmp_path, fmt):
    folder = write_original(tiny_janus, tmp_path / "orig", fmt)
    check_config(janus_cfg(folder))
    torch.manual_seed(0)
    b = load_backend(janus_cfg(folder), CPU)
    assert b.generator.janus.model.vision_model is None  # the understanding path is never loaded
    x = torch.rand(3, 3, SIDE, SIDE, generator=torch.Generator().manual_seed(1)) * 2 - 1
    codes = b.tokenizer.encode(x)
    assert torch.equal(codes, converted.tokenizer.encode(x))
    assert torch.equal(b.tokenizer.decode_code(codes), converted.tokenizer.decode_code(codes))
    ids, mask = ByteTokenizer().encode(["a sticker", "a cat with a hat"], 256)
    instr = LatentInstruction(torch.randn(2, GRID * GRID, V, generator=torch.Generator().manual_seed(2)))
    ours = b.generator.generate(ids, mask, instr, temperature=0.0, cfg_scale=5.0)
    assert torch.equal(ours, converted.generator.generate(ids, mask, instr, temperature=0.0, cfg_scale=5.0))
    assert len(ours.unique()) > 4
    loss = b.generator.loss(ids, mask, instr, ours)
    assert torch.allclose(loss, converted.generator.loss(ids, mask, instr, ours), atol=1e-5)


def test_an_original_folder_drc_cannot_map_names_the_converter(tiny_janus, tmp_path):
    folder = write_original(tiny_janus, tmp_path / "orig", "bin")
    state = torch.load(folder / "pytorch_model.bin", weights_only=True)
    state["gen_mystery.weight"] = torch.zeros(1)
    torch.save(state, folder / "pytorch_model.bin")
    with pytest.raises(DrcError) as e:
        load_backend(janus_cfg(folder), CPU)
    msg = str(e.value)
    assert "\n" not in msg and "gen_mystery.weight" in msg
    assert "convert_janus_weights_to_hf.py" in msg and "deepseek-community/Janus-Pro-1B" in msg
    # a pickle that is more than tensors is refused (weights_only), not executed
    torch.save({"gen_embed.weight": torch.zeros(1), "extra": object()}, folder / "pytorch_model.bin")
    with pytest.raises(DrcError, match="cannot read it as plain tensors"):
        load_backend(janus_cfg(folder), CPU)
