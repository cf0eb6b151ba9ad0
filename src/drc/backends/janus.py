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
(`save_pretrained` of the model and of its processor or tokenizer), and is read with
`local_files_only=True`. Text reaches the backend as drc's byte ids (`drc.backends.base`); they are
decoded to the string and tokenized with Janus's own tokenizer (cached per distinct string).
"""

from __future__ import annotations

import inspect
import json
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from drc.backends.base import Backend
from drc.errors import DrcError
from drc.models.attention import positions
from drc.models.conditioning import LatentInstruction
from drc.models.sampling import sample_from_logits
from drc.models.text import ByteTokenizer

if TYPE_CHECKING:
    from drc.config import RunConfig

ADAPTER_KEY = "lora_"  # substring of every adapter parameter name (peft's lora_A / lora_B)
BOI, EOI = "<begin_of_image>", "<end_of_image>"
DEFAULT_PROMPT = "<|User|>: {text}\n\n<|Assistant|>:"  # Janus-Pro's chat format (its processor's)
CHUNK = 16  # images per VQ pass: a 384 px VQ activation is ~75 MB per image per layer in fp32


@dataclass
class JanusOptions:
    """The Janus backend's settings (`janus.*` keys; read only with `generator.backend=janus`)."""

    # the prompt around the instruction text ({text}); Janus-Pro's format. <bos> goes before it,
    # the framed draft and <begin_of_image> after it
    prompt: str = DEFAULT_PROMPT
    # weights' dtype: auto = bf16 on CUDA (what Janus ships and runs in), fp32 elsewhere
    dtype: str = "auto"
    # load the weights straight onto the device, shard by shard (transformers' device_map), instead
    # of materialising the whole model in CPU memory first: the 7B model needs ~15 GB, not ~30 GB
    low_memory: bool = False
    # LoRA adapters on the LLM's attention projections (0 = none); they train where
    # stage1/stage2.trainable=composer+generator. Needs peft (pip install 'drc[janus]')
    lora_rank: int = 0
    lora_alpha: float = 16.0
    lora_targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    # bytes of instruction text handed to the tokenizer (the built-in generator reads 24)
    max_text_len: int = 256


@dataclass
class JanusTokenizerConfig:
    """What the Janus VQ is, as the stages see it (`code_dim`, `codebook_size`)."""

    code_dim: int = 8
    codebook_size: int = 16384
    image_size: int = 384  # the VQ's native square side in pixels
    grid: int = 24  # cells per side: N = grid * grid


@dataclass
class JanusGeneratorConfig:
    """What a Janus generator is; saved as `generator/model.yaml` beside its adapter weights."""

    backend: str = "janus"
    model_dir: str = ""
    n_visual: int = 576
    visual_vocab: int = 16384
    grid_w: int = 24
    max_text_len: int = 256
    lora_rank: int = 0


# --------------------------------------------------------------------------- the model folder


def weight_files(folder: Path) -> tuple[list[str], list[str]]:
    """(weight files present, what is missing) of a transformers model folder.

    A single `model.safetensors` / `pytorch_model.bin`, or a sharded one: the index and every shard
    it names.
    """
    for single in ("model.safetensors", "pytorch_model.bin"):
        if (folder / single).is_file():
            return [single], []
    for index in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        if (folder / index).is_file():
            try:
                shards = sorted(set(json.loads((folder / index).read_text())["weight_map"].values()))
            except (ValueError, KeyError, TypeError):
                return [], [f"a readable {index}"]
            missing = [s for s in shards if not (folder / s).is_file()]
            return ([index, *shards] if not missing else []), missing
    return [], ["model.safetensors (or model.safetensors.index.json and its shards)"]


def check_model_dir(model_dir: str | Path) -> Path:
    """The Janus folder, or a one-line DrcError naming what is missing from it."""
    if not str(model_dir):
        raise DrcError(
            "generator.backend=janus needs generator.model_dir=DIR: a local Janus / Janus-Pro folder "
            "in transformers format (nothing is downloaded)"
        )
    folder = Path(model_dir).expanduser()
    if not folder.is_dir():
        raise DrcError(f"{folder}: Janus model folder not found (generator.model_dir)")
    missing = [] if (folder / "config.json").is_file() else ["config.json"]
    missing += weight_files(folder)[1]
    if not any((folder / f).is_file() for f in ("tokenizer.json", "tokenizer.model")):
        missing.append("tokenizer.json (the text tokenizer)")
    if missing:
        raise DrcError(
            f"{folder}: not a complete Janus model folder; missing {', '.join(missing)} (write one with "
            "JanusForConditionalGeneration.save_pretrained and the processor's save_pretrained)"
        )
    try:
        model_type = json.loads((folder / "config.json").read_text()).get("model_type")
    except ValueError as e:
        raise DrcError(f"{folder / 'config.json'}: not valid JSON ({e})") from None
    if model_type != "janus":
        raise DrcError(f"{folder / 'config.json'}: model_type is {model_type!r}, not 'janus'")
    return folder


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    table = {"bf16": torch.bfloat16, "fp32": torch.float32}
    if name not in table:
        raise DrcError(f"unknown janus.dtype {name!r}; valid: auto, bf16, fp32")
    return table[name]


# --------------------------------------------------------------------------- the visual tokenizer


class JanusVisualTokenizer(nn.Module):
    """Janus's VQ as a drc visual tokenizer (`drc.backends.base.VisualTokenizer`).

    The VQ works at one square size (384 px for Janus-Pro). Images of another size (the run's
    `data.image_height x image_width`) are resized to it before encoding, and decoded images are
    resized back to the run's size, so that every other part of drc keeps its image size.
    """

    def __init__(self, vq: nn.Module, out_size: tuple[int, int]) -> None:
        super().__init__()
        self.vq = vq
        vcfg = vq.config
        grid = int(vq.quantize.quant_state_dims[0])
        self.cfg = JanusTokenizerConfig(
            code_dim=int(vcfg.embed_dim),
            codebook_size=int(vcfg.num_embeddings),
            image_size=grid * 2 ** (len(vcfg.channel_multiplier) - 1),
            grid=grid,
        )
        self.out_size = out_size

    @property
    def config(self) -> JanusTokenizerConfig:
        return self.cfg

    @property
    def vocab_size(self) -> int:
        return self.cfg.codebook_size

    def grid(self, height: int, width: int) -> tuple[int, int]:
        """The token grid: always the VQ's own (images of any size are resized to its size)."""
        return self.cfg.grid, self.cfg.grid

    def _resize(self, x: Tensor, size: tuple[int, int]) -> Tensor:
        if tuple(x.shape[-2:]) == tuple(size):
            return x
        return F.interpolate(x.float(), size=size, mode="bilinear", align_corners=False, antialias=True)

    @torch.no_grad()
    def encode(self, images: Tensor) -> Tensor:
        """`(B, 3, H, W)` float in [-1, 1] -> `(B, g, g)` long codes (nearest codebook vectors)."""
        s, g = self.cfg.image_size, self.cfg.grid
        dtype = self.vq.quant_conv.weight.dtype
        out = []
        with torch.autocast(images.device.type, enabled=False):  # the argmin needs the VQ's fp32
            for chunk in images.split(CHUNK):
                x = self._resize(chunk, (s, s)).to(dtype)
                # the encoder, quant_conv and quantizer by hand: the same in every transformers
                # version, whatever `JanusVQVAE.encode` returns there
                _, _, idx = self.vq.quantize(self.vq.quant_conv(self.vq.encoder(x)))
                out.append(idx.view(-1, g, g))
        return torch.cat(out).long()

    @torch.no_grad()
    def decode_code(self, idx: Tensor) -> Tensor:
        """`(B, g, g)` long -> `(B, 3, H, W)` float in [-1, 1], at the run's image size."""
        out = []
        with torch.autocast(idx.device.type, enabled=False):
            for chunk in idx.reshape(idx.shape[0], -1).split(CHUNK):
                out.append(self._resize(self.vq.decode(chunk).float(), self.out_size).clamp(-1, 1))
        return torch.cat(out)

    def embed(self, idx: Tensor) -> Tensor:
        """`(B, N)` or `(B, g, g)` long -> `(B, N, code_dim)` float: L2-normalised code vectors."""
        codebook = F.normalize(self.vq.quantize.embedding.weight.float(), dim=-1)
        return codebook[idx.reshape(idx.shape[0], -1)]


# --------------------------------------------------------------------------- the generator


@dataclass
class SpecialIds:
    bos: int
    pad: int
    boi: int
    eoi: int


class JanusGenerator(nn.Module):
    """Janus's LLM as a drc generator (`drc.backends.base.TokenGenerator`); see the module docstring.

    `state_dict()` / `load_state_dict()` cover the adapter weights only (none without LoRA): the
    frozen base model comes from `generator.model_dir` every time.
    """

    def __init__(
        self, janus: nn.Module, text_tokenizer: Any, ids: SpecialIds, cfg: JanusGeneratorConfig, prompt: str
    ) -> None:
        super().__init__()
        self.janus = janus
        self.cfg = cfg
        self.ids = ids
        self.prompt = prompt
        self._text_tokenizer = text_tokenizer
        self._prompts: dict[str, list[int]] = {}
        params = inspect.signature(self.lm.forward).parameters
        # transformers 5 calls the KV cache `cache`, 4.x `past_key_values`
        self._cache_kw = "cache" if "cache" in params else "past_key_values"

    @property
    def config(self) -> JanusGeneratorConfig:
        return self.cfg

    @property
    def lm(self) -> nn.Module:
        """The Llama decoder (no LM head): hidden states of every position."""
        return self.janus.model.language_model

    @property
    def dtype(self) -> torch.dtype:
        return self.janus.model.generation_embeddings.weight.dtype

    # ------------------------------------------------------------------ weights the run owns
    def state_dict(self, *args: Any, destination: Any = None, prefix: str = "", keep_vars: bool = False):
        full = super().state_dict(prefix=prefix, keep_vars=keep_vars)
        out = OrderedDict() if destination is None else destination
        for k, v in full.items():
            if ADAPTER_KEY in k:
                out[k] = v
        return out

    def load_state_dict(self, state_dict: Any, strict: bool = True, assign: bool = False):
        own = set(self.state_dict())
        unexpected = sorted(set(state_dict) - own)
        missing = sorted(own - set(state_dict))
        if strict and (unexpected or missing):
            raise RuntimeError(f"adapter weights do not match: missing {missing}, unexpected {unexpected}")
        result = super().load_state_dict(state_dict, strict=False, assign=assign)
        return type(result)(missing, unexpected)

    # ------------------------------------------------------------------ inputs
    def _prompt_ids(self, text: str) -> list[int]:
        ids = self._prompts.get(text)
        if ids is None:
            prompt = self.prompt.replace("{text}", text)
            body = self._text_tokenizer(prompt, add_special_tokens=False)["input_ids"]
            ids = [self.ids.bos, *body]
            if len(self._prompts) < 4096:  # a handful of instructions in practice; bounded anyway
                self._prompts[text] = ids
        return ids

    def _text(self, text_ids: Tensor, text_mask: Tensor, drop: Tensor | None) -> tuple[Tensor, Tensor]:
        """drc byte ids -> Janus prompt ids `(B, T)` long and mask `(B, T)` bool (right-padded).

        Unconditional rows (`drop`) keep their length with every token but <bos> set to <pad>
        (attended), as Janus's own classifier-free guidance does.
        """
        rows = [self._prompt_ids(t) for t in ByteTokenizer().decode(text_ids.cpu(), text_mask.cpu())]
        T = max(len(r) for r in rows)
        ids = torch.full((len(rows), T), self.ids.pad, dtype=torch.long)
        mask = torch.zeros(len(rows), T, dtype=torch.bool)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r)
            mask[i, : len(r)] = True
        if drop is not None:
            hide = drop.cpu()[:, None] & mask
            hide[:, 0] = False
            ids = torch.where(hide, self.ids.pad, ids)
        dev = self.janus.model.generation_embeddings.weight.device
        return ids.to(dev), mask.to(dev)

    def _token_embeds(self, ids: Tensor) -> Tensor:
        return self.lm.embed_tokens(ids)

    def image_embeds(self, tokens: Tensor) -> Tensor:
        """`(B, n)` long visual codes -> `(B, n, d)`: Janus's input embedding of generated codes."""
        m = self.janus.model
        return m.generation_aligner(m.generation_embeddings(tokens))

    def embed_draft(self, instr: LatentInstruction) -> Tensor:
        """`(B, N, V)` draft -> `(B, N, d)`: `aligner(softmax(draft) @ generation_embeddings)`.

        The expectation (not the argmax) keeps the path differentiable for `stageN.gen_weight`; a
        one-hot draft gives exactly `image_embeds` of its codes.
        """
        cfg = self.cfg
        if instr.length != cfg.n_visual or instr.vocab != cfg.visual_vocab:
            raise ValueError(
                f"draft of {instr.length} cells x {instr.vocab} codes; Janus reads {cfg.n_visual} x "
                f"{cfg.visual_vocab}"
            )
        m = self.janus.model
        table = m.generation_embeddings.weight
        expected = instr.probs().to(table.device, table.dtype) @ table
        return m.generation_aligner(expected)

    def _prefix(
        self,
        text_ids: Tensor,
        text_mask: Tensor,
        instr: LatentInstruction | None,
        drop: Tensor | None,
        drop_draft: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Embeddings `(B, P, d)` and mask `(B, P)` bool of [<bos> prompt][<boi> draft <eoi>][<boi>]."""
        ids, mask = self._text(text_ids, text_mask, drop)
        B, dev = ids.shape[0], ids.device
        parts, masks = [self._token_embeds(ids)], [mask]
        if instr is not None:
            hidden = torch.zeros(B, dtype=torch.bool, device=dev)
            for d in (drop, drop_draft):
                if d is not None:
                    hidden = hidden | d.to(dev)
            frame = self._token_embeds(torch.tensor([self.ids.boi, self.ids.eoi], device=dev))
            draft = self.embed_draft(instr).to(parts[0].dtype)
            parts.append(torch.cat([frame[:1].expand(B, 1, -1), draft, frame[1:].expand(B, 1, -1)], 1))
            masks.append((~hidden)[:, None].expand(B, draft.shape[1] + 2))
        parts.append(self._token_embeds(torch.full((B, 1), self.ids.boi, device=dev)))
        masks.append(torch.ones(B, 1, dtype=torch.bool, device=dev))
        return torch.cat([p.to(self.dtype) for p in parts], 1), torch.cat(masks, 1)

    def _run(self, x: Tensor, mask: Tensor, positions: Tensor, cache: Any = None) -> Tensor:
        kw = {self._cache_kw: cache, "use_cache": True} if cache is not None else {"use_cache": False}
        out = self.lm(inputs_embeds=x, attention_mask=mask.long(), position_ids=positions, **kw)
        return out.last_hidden_state

    # ------------------------------------------------------------------ training
    def forward(
        self, text_ids: Tensor, text_mask: Tensor, instr: LatentInstruction | None, image_tokens: Tensor,
        drop_cond: Tensor | None = None, drop_draft: Tensor | None = None,
    ) -> Tensor:  # fmt: skip
        """Teacher-forced logits `(B, N, V)` float for `image_tokens (B, N)` long."""
        prefix, pmask = self._prefix(text_ids, text_mask, instr, drop_cond, drop_draft)
        image_tokens = image_tokens.to(prefix.device)
        B, N = image_tokens.shape
        slots = self.image_embeds(image_tokens[:, :-1]).to(prefix.dtype)
        mask = torch.cat([pmask, torch.ones(B, N - 1, dtype=torch.bool, device=pmask.device)], 1)
        h = self._run(torch.cat([prefix, slots], 1), mask, positions(mask))
        # the output at <begin_of_image> predicts v_0, the one at v_{i-1} predicts v_i
        return self.janus.model.generation_head(h[:, prefix.shape[1] - 1 :]).float()

    def loss(
        self, text_ids: Tensor, text_mask: Tensor, instr: LatentInstruction | None, image_tokens: Tensor,
        drop_cond: Tensor | None = None, drop_draft: Tensor | None = None,
    ) -> Tensor:  # fmt: skip
        """`(B,)` per-example mean cross-entropy over the visual tokens."""
        logits = self(text_ids, text_mask, instr, image_tokens, drop_cond, drop_draft)
        ce = F.cross_entropy(logits.transpose(1, 2), image_tokens.to(logits.device), reduction="none")
        return ce.mean(1)

    # ------------------------------------------------------------------ sampling
    def _new_cache(self) -> Any:
        from transformers import DynamicCache

        try:
            return DynamicCache(config=self.lm.config)
        except TypeError:  # transformers 4.x: no config argument
            return DynamicCache()

    @torch.no_grad()
    def generate(
        self,
        text_ids: Tensor,
        text_mask: Tensor,
        instr: LatentInstruction | None,
        *,
        temperature: float = 1.0,
        top_k: int = 0,
        cfg_scale: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Sample `(B, N)` long codes with a KV cache; the same sampler as the built-in generator.

        cfg_scale != 1 runs the conditional and the unconditional rows (Janus's convention, see the
        module docstring) as one batch of 2B and samples from uncond + cfg_scale * (cond - uncond).
        """
        b, n = text_ids.shape[0], self.cfg.n_visual
        guided = cfg_scale != 1.0
        drop = None
        if guided:
            text_ids, text_mask = text_ids.repeat(2, 1), text_mask.repeat(2, 1)
            if instr is not None:
                instr = LatentInstruction(instr.draft.repeat(2, 1, 1))
            drop = torch.arange(2 * b) >= b
        prefix, mask = self._prefix(text_ids, text_mask, instr, drop)
        dev = prefix.device
        pos = positions(mask)
        last = pos[:, -1:]
        cache = self._new_cache()
        h = self._run(prefix, mask, pos, cache)[:, -1]
        tokens = torch.zeros(b, n, dtype=torch.long, device=dev)
        head = self.janus.model.generation_head
        for i in range(n):
            logits = head(h).float()
            if guided:
                cond, uncond = logits[:b], logits[b:]
                logits = uncond + cfg_scale * (cond - uncond)
            nxt = sample_from_logits(logits, temperature, top_k, generator)
            tokens[:, i] = nxt
            if i == n - 1:
                break
            step = nxt.repeat(2) if guided else nxt
            mask = torch.cat([mask, torch.ones(mask.shape[0], 1, dtype=torch.bool, device=dev)], 1)
            last = last + 1
            h = self._run(self.image_embeds(step[:, None]).to(self.dtype), mask, last, cache)[:, -1]
        return tokens


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
            "generator.backend=janus needs transformers with Janus (>= 4.51): pip install 'drc[janus]'"
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
    try:
        model = JanusForConditionalGeneration.from_pretrained(str(folder), **kwargs)
        text_tok = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError, RuntimeError, KeyError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DrcError(f"{folder}: cannot load the Janus model ({first})") from None
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    ids = _special_ids(text_tok, folder)
    # the understanding path (SigLIP tower + its aligner, ~0.3B parameters) is never used for
    # generation: drop it rather than keep it on the device
    model.model.vision_model = None
    model.model.aligner = None
    model.requires_grad_(False)
    if opts.lora_rank > 0:
        _add_lora(model, opts)
    _vq_in_fp32(model.model.vqmodel, folder, dtype)
    if not opts.low_memory:  # a device_map load put every weight on the device already
        model.to(device)
    model.eval()
    vq = model.model.vqmodel
    tokenizer = JanusVisualTokenizer(vq, (cfg.data.image_height, cfg.data.image_width)).eval()
    tcfg = tokenizer.config
    gcfg = JanusGeneratorConfig(
        model_dir=str(cfg.generator.model_dir),
        n_visual=tcfg.grid * tcfg.grid,
        visual_vocab=tcfg.codebook_size,
        grid_w=tcfg.grid,
        max_text_len=opts.max_text_len,
        lora_rank=opts.lora_rank,
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

    Encoding is an argmin over 16,384 squared distances |z|^2 + |e|^2 - 2 z.e, which bf16's 8-bit
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
