"""DeepSeek's original Janus / Janus-Pro folders (`model_type: multi_modality`, as `deepseek-ai/Janus-Pro-1B`
and `-7B` ship them), loaded into transformers' `JanusForConditionalGeneration` in process.

The original checkpoint (DeepSeek's `janus/models/modeling_vlm.py` + `vq_model.py`) names its modules
`language_model`, `gen_vision_model` (the VQ), `gen_aligner`, `gen_head`, `gen_embed`, plus the
understanding path (`vision_model`, `aligner`) that generation never uses. `hf_key` renames each key
to transformers' layout (or drops it); the VQ's shapes are read off its weights (`vq_config`), since
the original config names the VQ by class ("VQ-16") rather than by its sizes. The weights are read
from safetensors or from `pytorch_model*.bin` with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from drc.backends.janus_config import weight_files
from drc.errors import DrcError

ORIGINAL_TYPE = "multi_modality"
CONVERT_HINT = (
    "convert it with transformers' models/janus/convert_janus_weights_to_hf.py, or use the converted "
    "deepseek-community/Janus-Pro-1B or -7B folders"
)
# original VQ module names -> transformers' (the rest of the VQ's names are the same in both)
_MID = {"0": "block_1", "1": "attn_1", "2": "block_2"}
_HEAD = {"output_mlp_projector": "proj_out", "vision_head": "vision_head"}


def is_original(folder: Path) -> bool:
    try:
        return json.loads((folder / "config.json").read_text()).get("model_type") == ORIGINAL_TYPE
    except (OSError, ValueError):
        return False


def _vq_key(rest: str) -> str | None:
    """A key under `gen_vision_model.` -> its name under transformers' `model.vqmodel.`."""
    if rest == "quantize.codebook_used":  # a usage counter kept for training
        return None
    parts, out, i = rest.split("."), [], 0
    while i < len(parts):
        p = parts[i]
        if p == "conv_blocks":
            out.append("down" if parts[0] == "encoder" else "up")
        elif p == "res":
            out.append("block")
        elif p == "mid" and i + 1 < len(parts) and parts[i + 1] in _MID:
            out += ["mid", _MID[parts[i + 1]]]
            i += 1
        else:
            out.append(p)
        i += 1
    return "model.vqmodel." + ".".join(out)


def hf_key(key: str) -> str | None:
    """An original Janus key -> transformers' name, None for a key generation never reads.

    Raises KeyError on a key of no known module (not an original Janus checkpoint).
    """
    head, _, rest = key.partition(".")
    if head in ("vision_model", "aligner"):  # the understanding path (SigLIP and its aligner)
        return None
    if head == "language_model" and rest.startswith("model."):
        return "model.language_model." + rest[len("model.") :]
    if head == "language_model" and rest.startswith("lm_head."):
        return rest
    if head == "gen_embed":
        return "model.generation_embeddings." + rest
    if head == "gen_vision_model":
        return _vq_key(rest)
    if head == "gen_head" and rest.partition(".")[0] in _HEAD:
        sub, _, tail = rest.partition(".")
        return f"model.generation_head.{_HEAD[sub]}.{tail}"
    m = re.fullmatch(r"layers\.(\d+)\.(weight|bias)", rest)
    if head == "gen_aligner" and m:
        # MlpProjector("mlp_gelu"): Linear, then (GELU, Linear) per extra layer: layers.0, .2, .4 ...
        i = int(m.group(1))
        name = "fc1" if i == 0 else f"hidden_layers.{i // 2 - 1}"
        return f"model.generation_aligner.{name}.{m.group(2)}"
    raise KeyError(key)


def read_weights(folder: Path) -> dict[str, Tensor]:
    """Every tensor of the folder's weight files (single or sharded; safetensors or .bin)."""
    state: dict[str, Tensor] = {}
    for name in weight_files(folder)[0]:
        path = folder / name
        if name.endswith(".safetensors"):
            from safetensors.torch import load_file

            state.update(load_file(str(path)))
        elif name.endswith(".bin"):
            try:
                state.update(torch.load(path, map_location="cpu", weights_only=True, mmap=True))
            except (RuntimeError, pickle.UnpicklingError) as e:
                first = (str(e).strip().splitlines() or [type(e).__name__])[0]
                raise DrcError(f"{path}: cannot read it as plain tensors ({first}); {CONVERT_HINT}") from None
    return state


def _count(state: dict[str, Tensor], pattern: str) -> int:
    return len({m.group(1) for k in state if (m := re.match(pattern, k))})


def vq_config(state: dict[str, Tensor], width: int) -> Any:
    """transformers' `JanusVQVAEConfig` of the VQ / aligner / head whose (original) weights are `state`."""
    from transformers.models.janus.configuration_janus import JanusVQVAEConfig

    enc = "gen_vision_model.encoder."
    base = state[enc + "conv_in.weight"].shape[0]
    levels = _count(state, re.escape(enc) + r"conv_blocks\.(\d+)\.")
    mult = [state[f"{enc}conv_blocks.{i}.res.0.conv1.weight"].shape[0] // base for i in range(levels)]
    head = state["gen_head.output_mlp_projector.weight"]  # (image_token_embed, n_embed)
    aligner = state["gen_aligner.layers.0.weight"]  # (n_embed, code_dim)
    if head.shape[0] != aligner.shape[0] or head.shape[1] != width:
        raise ValueError(f"gen_head {tuple(head.shape)} and gen_aligner {tuple(aligner.shape)} widths differ")
    return JanusVQVAEConfig(
        embed_dim=state["gen_vision_model.quant_conv.weight"].shape[0],
        num_embeddings=state["gen_vision_model.quantize.embedding.weight"].shape[0],
        latent_channels=state[enc + "conv_out.weight"].shape[0],
        base_channels=base,
        channel_multiplier=mult,
        num_res_blocks=_count(state, re.escape(enc) + r"conv_blocks\.0\.res\.(\d+)\."),
        projection_dim=aligner.shape[0],
        num_hidden_layers=_count(state, r"gen_aligner\.layers\.(\d+)\.weight"),
        image_token_embed_dim=width,
    )


def _janus_config(folder: Path, state: dict[str, Tensor], text_tok: Any) -> Any:
    from transformers import JanusConfig, LlamaConfig
    from transformers.models.janus.configuration_janus import JanusVisionConfig

    raw = json.loads((folder / "config.json").read_text())
    lang = {k: v for k, v in raw.get("language_config", {}).items() if k not in ("torch_dtype", "dtype")}
    ids = {"pad_token_id": text_tok.pad_token_id, "bos_token_id": text_tok.bos_token_id,
           "eos_token_id": text_tok.eos_token_id}  # fmt: skip
    text = LlamaConfig(**{**lang, **ids, "tie_word_embeddings": False})
    image_size = int(raw.get("vision_config", {}).get("params", {}).get("image_size", 384))
    vq = vq_config(state, text.hidden_size)
    # transformers derives the VQ's grid from the understanding tower's patching: make it the VQ's
    vision = JanusVisionConfig(image_size=image_size, patch_size=2 ** (len(vq.channel_multiplier) - 1))
    cfg = JanusConfig(text_config=text, vision_config=vision, vq_config=vq, tie_word_embeddings=False)
    cfg.image_token_id = text_tok.convert_tokens_to_ids("<image_placeholder>")
    return cfg


def _empty(cfg: Any) -> nn.Module:
    """The model with its parameters on the meta device where accelerate is there (no 7B random init)."""
    from transformers import JanusForConditionalGeneration

    try:
        from accelerate import init_empty_weights
    except ImportError:
        return JanusForConditionalGeneration(cfg)
    with init_empty_weights(include_buffers=False):  # buffers (rotary frequencies) stay real
        return JanusForConditionalGeneration(cfg)


def load_original(folder: Path, dtype: torch.dtype, text_tok: Any) -> nn.Module:
    """`JanusForConditionalGeneration` from an original Janus folder, in `dtype` (the VQ in fp32),
    without its understanding path (`vision_model` and `aligner` are None)."""
    raw = read_weights(folder)
    try:
        state: dict[str, Tensor] = {}
        for k, v in raw.items():
            new = hf_key(k)
            if new is not None:
                state[new] = v.float() if new.startswith("model.vqmodel.") else v.to(dtype)
        model = _empty(_janus_config(folder, raw, text_tok))
    except (KeyError, ValueError, TypeError) as e:
        why = f"{type(e).__name__}: {e}"
        raise DrcError(f"{folder}: not a Janus checkpoint drc can map ({why}); {CONVERT_HINT}") from None
    model.model.vision_model = None
    model.model.aligner = None
    try:
        missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
    except RuntimeError as e:  # a tensor of another shape than the config read off the weights
        first = (str(e).strip().splitlines() or ["size mismatch"])[-1].strip()
        raise DrcError(f"{folder}: the original Janus weights do not fit ({first}); {CONVERT_HINT}") from None
    if missing or unexpected:
        what = f"missing {', '.join(missing[:3])}" if missing else f"unexpected {', '.join(unexpected[:3])}"
        raise DrcError(f"{folder}: the original Janus weights do not fit ({what}); {CONVERT_HINT}")
    return model
