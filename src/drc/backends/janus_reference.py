"""DeepSeek's own Janus procedures, restated apart from the backend, to check the backend against
(the tests, on the tiny model; `bench/janus_gpu_check.py`, on a real checkpoint).

- `reference_generate`: the text-to-image loop of DeepSeek's `generation_inference.py`: the prompt
  tokens with <bos> first and <begin_of_image> last, each conditional row followed by its
  unconditional twin (every token between the first and the last set to <pad>), logits
  `u + w (c - u)` from `gen_head` on the last hidden state, and the chosen code fed back as
  `gen_aligner(gen_embed(code))` through the KV cache.
- `reference_codes`: the VQ rule of `janus/models/vq_model.py` (`codebook_l2_norm=True`): the
  smallest squared distance between the L2-normalised latent and the L2-normalised codebook rows.

Both read a transformers `JanusForConditionalGeneration` (`model.language_model`,
`generation_head`, `generation_aligner`, `generation_embeddings`, `vqmodel`).
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@torch.no_grad()
def reference_generate(
    janus: nn.Module, text_tok: Any, prompt: str, n_codes: int, cfg_weight: float, temperature: float = 0.0,
    parallel: int = 1, generator: torch.Generator | None = None,
) -> Tensor:  # fmt: skip
    """`(parallel, n_codes)` long codes for the formatted `prompt` (its text, without <bos> and
    <begin_of_image>, which are added here). temperature 0 takes the argmax (greedy)."""
    from transformers import DynamicCache

    m = janus.model
    lm = m.language_model
    dev = m.generation_embeddings.weight.device
    body = text_tok(prompt, add_special_tokens=False)["input_ids"]
    boi = text_tok.convert_tokens_to_ids("<begin_of_image>")
    ids = torch.tensor([text_tok.bos_token_id, *body, boi], device=dev)
    rows = ids.repeat(2 * parallel, 1)
    rows[1::2, 1:-1] = text_tok.pad_token_id  # the unconditional twin of each row
    x = lm.get_input_embeddings()(rows)
    kw = "cache" if "cache" in inspect.signature(lm.forward).parameters else "past_key_values"
    try:
        cache = DynamicCache(config=lm.config)
    except TypeError:  # transformers 4.x
        cache = DynamicCache()
    out = []
    for _ in range(n_codes):
        h = lm(inputs_embeds=x, use_cache=True, **{kw: cache}).last_hidden_state
        logits = m.generation_head(h[:, -1])
        cond, uncond = logits[0::2], logits[1::2]
        logits = uncond + cfg_weight * (cond - uncond)
        if temperature <= 0:
            nxt = logits.argmax(-1)
        else:
            probs = torch.softmax(logits.float() / temperature, dim=-1)
            nxt = torch.multinomial(probs, 1, generator=generator)[:, 0]
        out.append(nxt)
        x = m.generation_aligner(m.generation_embeddings(nxt.repeat_interleave(2)))[:, None]
    return torch.stack(out, 1)


@torch.no_grad()
def reference_codes(vq: nn.Module, images: Tensor) -> Tensor:
    """`(B, 3, S, S)` float in [-1, 1] at the VQ's size -> `(B, h, w)` long codes by Janus's rule."""
    z = vq.quant_conv(vq.encoder(images.to(vq.quant_conv.weight.dtype))).float()
    b, c, h, w = z.shape
    zf = F.normalize(z.permute(0, 2, 3, 1).reshape(-1, c), dim=-1)
    e = F.normalize(vq.quantize.embedding.weight.float(), dim=-1)
    d = zf.pow(2).sum(1, keepdim=True) + e.pow(2).sum(1) - 2 * zf @ e.T
    return d.argmin(1).view(b, h, w)


@torch.no_grad()
def raw_codes(vq: nn.Module, images: Tensor) -> Tensor:
    """The same latents quantized by transformers' `JanusVQVAEVectorQuantizer` (nearest raw code)."""
    z = vq.quant_conv(vq.encoder(images.to(vq.quant_conv.weight.dtype)))
    return vq.quantize(z)[2].view(z.shape[0], z.shape[2], z.shape[3])
