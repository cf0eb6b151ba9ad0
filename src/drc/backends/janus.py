"""The Janus / Janus-Pro backend: DRC's composer on a pretrained open LMM, loaded from a local folder.

Janus (DeepSeek; `JanusForConditionalGeneration` in transformers) is an autoregressive LLM that
emits the codes of a VQ image tokenizer (16x downsampling, 16,384 codes; 384x384 px = 24x24 = 576
codes for Janus-Pro), in 1B and 7B sizes: the closest open analogue of the paper's LaVIT. Here:

- the visual tokenizer is Janus's VQ (`JanusVisualTokenizer`): the towers read its code vectors
  (`code_dim` = the VQ's `embed_dim`, 8; L2-normalised, as its decoder reads them);
- the draft `(B, N, V)` is read by the LLM as the expected generation embedding of each cell,
  `aligner(softmax(draft) @ generation_embeddings)` (a one-hot draft gives exactly the input
  embedding Janus gives a generated code), framed as an image, in the prompt between the text and
  the image-generation start, where Pigeon places its adapter token (`JanusGenerator`):

      <bos> <|User|>: {text}\\n\\n<|Assistant|>: <begin_of_image> [draft: N cells] <end_of_image>
      <begin_of_image> [image: v_0 ... v_{N-2}]      (the outputs at <begin_of_image>, v_0, ...
                                                     predict v_0 ... v_{N-1} through Janus's head)

- classifier-free guidance follows Janus's own convention: an unconditional row keeps the layout,
  with every text token but <bos> replaced by the pad token; the draft is hidden there (and on
  caption-only rows) by the attention mask, so such rows are exactly Janus's own text-to-image
  inputs;
- the LLM, its heads and the VQ stay frozen (`requires_grad` False): drc never pretrains them (the
  built-in generator's draft pretraining does not apply), so Janus reads drafts zero-shot, through
  what the composer learns (its dense draft loss, and `stageN.gen_weight` to learn what the frozen
  LLM reads best), and optionally through LoRA adapters on the LLM's attention projections
  (`janus.lora_rank`, needs `peft`; trained with `stageN.trainable=composer+generator`);
- `state_dict()` holds only the adapters: a run stores what it trained, never the base weights,
  which stay in `generator.model_dir` (a run's checkpoints are kilobytes, not 14 GB).

Nothing is ever downloaded: the folder must hold config.json, the weights and the text tokenizer
(`save_pretrained` of the model and of its processor or tokenizer, or DeepSeek's original
`deepseek-ai/Janus-Pro-*` snapshot, renamed in process by `drc.backends.janus_original`), and is
read with `local_files_only=True`. Text reaches the backend as drc's byte ids (`drc.backends.base`);
they are decoded to the string and tokenized with Janus's own tokenizer (cached per distinct
string), which must give back a sample prompt exactly (`check_round_trip`).

Sampling follows Janus's own settings unless the run sets others (`sample.*` defaults cfg 5,
temperature 1, no top-k: `drc.backend_options.JANUS_SAMPLE`); codes are chosen with Janus's VQ rule
(`janus_modules.nearest_code`); LoRA adapters are kept in fp32 over a bf16 base.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from drc.backend_options import JanusOptions
from drc.backends.base import Backend
from drc.errors import DrcError

if TYPE_CHECKING:
    from drc.config import RunConfig

from drc.backends.janus_config import (
    ADAPTER_KEY,
    BOI,
    EOI,
    SAMPLE_TEXT,
    TRANSFORMERS_CHECKED,
    check_model_dir,
    resolve_dtype,
    weight_files,
)
from drc.backends.janus_modules import JanusGenerator, JanusVisualTokenizer, SpecialIds
from drc.backends.janus_original import is_original, load_original

# --------------------------------------------------------------------------- loading


def _special_ids(tok: Any, folder: Path) -> SpecialIds:
    def one(token: str) -> int | None:
        i = tok.convert_tokens_to_ids(token)
        return None if i is None or (tok.unk_token_id is not None and i == tok.unk_token_id) else int(i)

    found = {"bos": tok.bos_token_id, "pad": tok.pad_token_id, "boi": one(BOI), "eoi": one(EOI)}
    names = {"bos": "a bos token", "pad": "a pad token", "boi": BOI, "eoi": EOI}
    missing = [names[k] for k, v in found.items() if v is None]
    if missing:
        what = ", no ".join(missing)
        raise DrcError(f"{folder}: the text tokenizer has no {what} (not a Janus tokenizer?)")
    return SpecialIds(**{k: int(v) for k, v in found.items()})


def _check_training(cfg: RunConfig) -> None:
    """The LLM trains only through adapters: say so before a stage silently trains nothing."""
    stages = [("stage1", cfg.stage1.trainable)] if cfg.stage1.enabled else []
    stages.append(("stage2", cfg.stage2.trainable))
    for name, mode in stages:
        if mode != "composer" and cfg.janus.lora_rank <= 0:
            raise DrcError(
                f"{name}.trainable={mode} with generator.backend=janus trains LoRA adapters, and "
                "janus.lora_rank is 0: set janus.lora_rank (e.g. 8), or keep the LLM frozen"
            )


def check_options(cfg: RunConfig) -> Path:
    """The model folder, after checking it and every `janus.*` setting (one-line DrcErrors)."""
    folder = check_model_dir(cfg.generator.model_dir)
    if cfg.janus.lora_rank < 0:
        raise DrcError(f"janus.lora_rank must be >= 0, got {cfg.janus.lora_rank}")
    resolve_dtype(cfg.janus.dtype, torch.device("cpu"))
    _check_training(cfg)
    return folder


def load_janus(cfg: RunConfig, device: torch.device, progress: bool = False) -> Backend:
    """Load `generator.model_dir` as a drc backend (frozen, on `device`, adapters if configured)."""
    opts = cfg.janus
    folder = check_options(cfg)
    try:
        import transformers
        from transformers import AutoTokenizer, JanusForConditionalGeneration
    except ImportError:
        raise DrcError(
            f"generator.backend=janus needs transformers with Janus ({TRANSFORMERS_CHECKED}): "
            "pip install 'drc[janus]'"
        ) from None
    dtype = resolve_dtype(opts.dtype, device)
    major = int(transformers.__version__.split(".")[0])
    kwargs: dict[str, Any] = {"local_files_only": True, ("dtype" if major >= 5 else "torch_dtype"): dtype}
    if opts.low_memory:
        kwargs.update(device_map={"": str(device)}, low_cpu_mem_usage=True)
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    if not progress:
        hf_logging.disable_progress_bar()
    original = is_original(folder)
    try:
        text_tok = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        if original:  # DeepSeek's own layout, renamed to transformers' in process
            model = load_original(folder, dtype, text_tok)
        else:
            model = JanusForConditionalGeneration.from_pretrained(str(folder), **kwargs)
    except (OSError, ValueError, RuntimeError, KeyError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DrcError(f"{folder}: cannot load the Janus model ({first})") from None
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    ids = _special_ids(text_tok, folder)
    check_round_trip(text_tok, opts.prompt, folder)
    # the understanding path (SigLIP tower + its aligner, ~0.3B parameters) is never used for
    # generation: drop it rather than keep it on the device
    model.model.vision_model = None
    model.model.aligner = None
    model.requires_grad_(False)
    if opts.lora_rank > 0:
        _add_lora(model, opts)
    if not original:  # load_original kept the VQ's weights in fp32 as read
        _vq_in_fp32(model.model.vqmodel, folder, dtype)
    if original or not opts.low_memory:  # a device_map load put every weight on the device already
        model.to(device)
    model.eval()
    vq = model.model.vqmodel
    tokenizer = JanusVisualTokenizer(vq, (cfg.data.image_height, cfg.data.image_width)).eval()
    tcfg = tokenizer.config
    # the run's generator section with the shape fields the Janus VQ fixes (the builtin-only sizes
    # in it do not apply; the adapters' settings are the run config's janus.*)
    gcfg = dataclasses.replace(
        cfg.generator,
        n_visual=tcfg.grid * tcfg.grid,
        visual_vocab=tcfg.codebook_size,
        grid_w=tcfg.grid,
        max_text_len=opts.max_text_len,
    )
    generator = JanusGenerator(model, text_tok, ids, gcfg, opts.prompt).eval()
    if progress:
        import sys

        size = f"{tcfg.image_size}x{tcfg.image_size}"
        note = ""
        if (cfg.data.image_height, cfg.data.image_width) != (tcfg.image_size, tcfg.image_size):
            run_size = f"{cfg.data.image_height}x{cfg.data.image_width}"
            note = f"; images are resized {run_size} <-> {size} for its VQ"
        print(
            f"drc: generator.backend=janus: tokenizer and generator are the pretrained Janus in {folder} "
            f"({size} px, {gcfg.n_visual} codes of {tcfg.codebook_size}, {dtype}); no tokenizer training "
            f"and no generator pretraining{note}",
            file=sys.stderr,
        )
    return Backend("janus", tokenizer, generator, pretrained=True)


def _vq_in_fp32(vq: nn.Module, folder: Path, loaded_as: torch.dtype) -> None:
    """Keep the VQ in fp32 whatever the LLM's dtype, with its weights as stored.

    Encoding is an argmax over 16,384 cosine similarities of 8-dim vectors, which bf16's 8-bit
    mantissa scrambles; the VQ is ~0.07B parameters (0.3 GB in fp32). Casting the loaded bf16
    weights back would keep their rounding, so they are re-read from the safetensors files (where
    the checkpoint has them; else the cast weights stay).
    """
    vq.float()
    if loaded_as == torch.float32:
        return
    from safetensors import safe_open

    prefix = "model.vqmodel."
    state: dict[str, Tensor] = {}
    for name in weight_files(folder)[0]:
        if name.endswith(".safetensors"):
            with safe_open(str(folder / name), framework="pt") as f:
                for key in f.keys():  # noqa: SIM118 - safe_open handles are not iterable
                    if key.startswith(prefix):
                        state[key[len(prefix) :]] = f.get_tensor(key).float()
    if set(state) == set(vq.state_dict()):
        vq.load_state_dict(state)


def _add_lora(model: nn.Module, opts: JanusOptions) -> None:
    try:
        from peft import LoraConfig, inject_adapter_in_model
    except ImportError:
        raise DrcError("janus.lora_rank needs peft: pip install 'drc[janus]'") from None
    lcfg = LoraConfig(
        r=opts.lora_rank,
        lora_alpha=opts.lora_alpha,
        target_modules=list(opts.lora_targets),
        lora_dropout=0.0,
        bias="none",
    )
    lm = model.model.language_model
    try:
        inject_adapter_in_model(lcfg, lm)
    except ValueError as e:  # no module matched the targets
        raise DrcError(f"janus.lora_targets {list(opts.lora_targets)}: {str(e).splitlines()[0]}") from None
    for name, p in lm.named_parameters():
        p.requires_grad_(ADAPTER_KEY in name)
        if ADAPTER_KEY in name:
            # fp32 adapters (and so fp32 AdamW state) over a bf16 base: in bf16, an update below
            # 1/256 of a weight rounds away; peft casts the layer's input to the adapter's dtype
            # and its output back to the base layer's
            p.data = p.data.float()


def check_round_trip(text_tok: Any, prompt: str, folder: Path) -> None:
    """Refuse a text tokenizer that does not give back the text it encoded (one-line DrcError).

    Some transformers releases rebuild the pre-tokenizer of a byte-level tokenizer from the class
    its config names and drop the spaces: every prompt would reach Janus silently garbled.
    """
    import transformers

    sample = prompt.replace("{text}", SAMPLE_TEXT)
    back = text_tok.decode(
        text_tok(sample, add_special_tokens=False)["input_ids"], clean_up_tokenization_spaces=False
    )
    if back != sample:
        raise DrcError(
            f"{folder}: its text tokenizer does not round-trip text under transformers "
            f"{transformers.__version__} ({sample!r} comes back as {back!r}); install the "
            f"transformers that pip install 'drc[janus]' pins ({TRANSFORMERS_CHECKED})"
        )
