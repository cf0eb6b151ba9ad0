"""The Janus backend's modules: its VQ as drc's visual tokenizer, and the LLM as drc's generator
(the draft framed as an image in the prompt; see `drc.backends.janus` for the whole design)."""

from __future__ import annotations

import inspect
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from drc.backends.janus_config import ADAPTER_KEY, CHUNK, JanusTokenizerConfig
from drc.models.attention import positions
from drc.models.generator_config import GeneratorConfig
from drc.models.instruction import LatentInstruction
from drc.models.text import ByteTokenizer
from drc.models.token_model import StepFn, VisualTokenModel

# --------------------------------------------------------------------------- the visual tokenizer


def nearest_code(z: Tensor, codebook: Tensor) -> Tensor:
    """Janus's VQ rule: `(B, C, h, w)` latents, `(V, C)` codebook -> `(B, h, w)` long codes.

    DeepSeek's `janus/models/vq_model.py` (codebook_l2_norm=True) L2-normalises both the latent
    vectors and the codebook rows before taking the nearest code, i.e. the largest cosine
    similarity. transformers' `JanusVQVAEVectorQuantizer` takes the nearest code on the raw vectors
    (Chameleon's rule), which picks other codes wherever the codebook rows' norms differ.
    """
    zn = F.normalize(z.float().permute(0, 2, 3, 1), dim=-1)  # (B, h, w, C)
    en = F.normalize(codebook.float(), dim=-1)  # (V, C)
    return (zn @ en.T).argmax(-1)


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
        self.config = JanusTokenizerConfig(
            code_dim=int(vcfg.embed_dim),
            codebook_size=int(vcfg.num_embeddings),
            image_size=grid * 2 ** (len(vcfg.channel_multiplier) - 1),
            grid=grid,
        )
        self.out_size = out_size


    def grid(self, height: int, width: int) -> tuple[int, int]:
        """The token grid: always the VQ's own (images of any size are resized to its size)."""
        return self.config.grid, self.config.grid

    def _resize(self, x: Tensor, size: tuple[int, int]) -> Tensor:
        if tuple(x.shape[-2:]) == tuple(size):
            return x
        return F.interpolate(x.float(), size=size, mode="bilinear", align_corners=False, antialias=True)

    @torch.no_grad()
    def encode(self, images: Tensor) -> Tensor:
        """`(B, 3, H, W)` float in [-1, 1] -> `(B, g, g)` long codes (Janus's rule: `nearest_code`)."""
        s, g = self.config.image_size, self.config.grid
        dtype = self.vq.quant_conv.weight.dtype
        out = []
        with torch.autocast(images.device.type, enabled=False):  # the code choice needs the VQ's fp32
            for chunk in images.split(CHUNK):
                x = self._resize(chunk, (s, s)).to(dtype)
                # the encoder and quant_conv by hand (the same in every transformers version,
                # whatever `JanusVQVAE.encode` returns there), then Janus's own rule
                z = self.vq.quant_conv(self.vq.encoder(x))
                out.append(nearest_code(z, self.vq.quantize.embedding.weight).view(-1, g, g))
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


class JanusGenerator(VisualTokenModel):
    """Janus's LLM as a drc generator (`drc.backends.base.TokenGenerator`); see the module docstring.

    `state_dict()` / `load_state_dict()` cover the adapter weights only (none without LoRA): the
    frozen base model comes from `generator.model_dir` every time.
    """

    def __init__(
        self, janus: nn.Module, text_tokenizer: Any, ids: SpecialIds, cfg: GeneratorConfig, prompt: str
    ) -> None:
        super().__init__()
        self.janus = janus
        self.config = cfg
        self.ids = ids
        self.prompt = prompt
        self._text_tokenizer = text_tokenizer
        self._prompts: dict[str, list[int]] = {}
        params = inspect.signature(self.lm.forward).parameters
        # transformers 5 calls the KV cache `cache`, 4.x `past_key_values`
        self._cache_kw = "cache" if "cache" in params else "past_key_values"


    @property
    def text_tokenizer(self) -> Any:
        """Janus's own text tokenizer (transformers'), which the prompts go through."""
        return self._text_tokenizer

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
        cfg = self.config
        instr.check_fits(cfg.n_visual, cfg.visual_vocab, "Janus")
        m = self.janus.model
        table = m.generation_embeddings.weight
        expected = instr.probs().to(table.device, table.dtype) @ table
        return m.generation_aligner(expected)

    def _prefix(
        self, text_ids: Tensor, text_mask: Tensor, instr: LatentInstruction | None, drop: Tensor | None,
        drop_draft: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:  # fmt: skip
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

    # ------------------------------------------------------------------ sampling (VisualTokenModel.generate)
    def _new_cache(self) -> Any:
        from transformers import DynamicCache

        try:
            return DynamicCache(config=self.lm.config)
        except TypeError:  # transformers 4.x: no config argument
            return DynamicCache()

    def _decoder(
        self, text_ids: Tensor, text_mask: Tensor, instr: LatentInstruction | None, drop: Tensor | None,
        use_cache: bool,
    ) -> StepFn:  # fmt: skip
        """The prefix in one pass, then one generated code per step through transformers' KV cache
        (always: `use_cache` is ignored, transformers' cached and uncached paths are its own to match)."""
        prefix, mask = self._prefix(text_ids, text_mask, instr, drop)
        dev = prefix.device
        last = positions(mask)[:, -1:]
        cache = self._new_cache()
        head = self.janus.model.generation_head

        def step(prev: Tensor | None) -> Tensor:
            nonlocal mask, last
            if prev is None:
                h = self._run(prefix, mask, positions(mask), cache)[:, -1]
            else:
                mask = torch.cat([mask, torch.ones(mask.shape[0], 1, dtype=torch.bool, device=dev)], 1)
                last = last + 1
                h = self._run(self.image_embeds(prev[:, None]).to(self.dtype), mask, last, cache)[:, -1]
            return head(h).float()

        return step
