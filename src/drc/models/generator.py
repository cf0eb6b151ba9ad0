"""The built-in generator (the "LMM"): a small causal transformer that reads text and images and
emits VQ visual tokens.

nanoGPT-style: pre-norm blocks, SDPA attention, GELU MLP. One sequence per example:

    [text tokens (T)] [draft cells (N)] [null instruction (n_null)] [slot_0 ... slot_{N-1}]

The draft is the image condition (`LatentInstruction`): for every grid cell a distribution over the
codebook, embedded as `softmax(draft) @ draft_emb` plus the cell's row/column embedding. Pretraining
shows the generator corrupted drafts of the target (a random share of cells swapped for another
image's code at that cell or a random code), with or without the caption, and captions alone, so
that it learns to render a crisp image from a draft, from a caption, or from both. Every composer's
latent instruction lands in that space: a frozen generator then has a handle on everything visible
in an image (a user's style included), not only on what captions name.

Slot i predicts visual token v_i. Its input is <img> (a learned BOS vector) for i = 0 and the
embedding of v_{i-1} otherwise, plus the row/column embedding of the cell it predicts, so the model
always knows which cell of the grid (8x8 stickers, 12x8 posters) comes next, also at row breaks.

Conditioning never changes the sequence layout, only the key-padding mask: padded text tokens are
invisible to every other position (and their own positions are counted from the valid tokens,
cumsum of the mask). Dropping the condition (classifier-free guidance) hides the text and the draft
and shows the learned null instruction instead; a row without a draft (`instr=None`, or
`drop_draft`) shows the null instruction in the draft's stead.

Sampling (`generate`) fills a preallocated KV cache with the prefix and <img> in one pass, then
runs one slot per step; classifier-free guidance runs conditional and unconditional rows as one
batch. With `use_cache=False` it recomputes the whole sequence every step: the reference the
cache is tested against (same seed, same tokens) and the baseline of `drc bench`'s kv_speedup.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from drc.models.attention import Block, KVCache, attention_bias, compute_dtype, positions, trim_padding
from drc.models.generator_config import GeneratorConfig
from drc.models.instruction import LatentInstruction
from drc.models.token_model import StepFn, VisualTokenModel


def flops_per_token(cfg: GeneratorConfig, training: bool = True, context: int | None = None) -> float:
    """Model FLOPs per sequence position (nanoGPT / PaLM estimate), for MFU.

    Forward: 2 FLOPs per weight of the blocks and the head, plus 4 * d per attended key per layer
    (QK^T and AV). Training (forward + backward) is 3x that. `context` is the mean number of keys a
    position attends to; default: half of a full pretraining sequence (causal).
    """
    d, n_layer = cfg.d_model, cfg.n_layer
    block = n_layer * (4 * d * d + 2 * cfg.mlp_ratio * d * d)
    head = d * max(cfg.visual_vocab, 1)
    if context is None:
        context = (cfg.max_text_len + cfg.n_null + max(cfg.n_visual, 1)) // 2
    fwd = 2 * (block + head) + 4 * n_layer * d * context
    return float(3 * fwd if training else fwd)


class Generator(VisualTokenModel):
    """Causal transformer over [text][instruction][null][visual slots]; see the module docstring."""

    def __init__(self, cfg: GeneratorConfig) -> None:
        super().__init__()
        if cfg.visual_vocab <= 0 or cfg.n_visual <= 0 or cfg.grid_w <= 0:
            raise ValueError("GeneratorConfig needs visual_vocab, n_visual and grid_w: use with_visual(...)")
        if cfg.n_visual % cfg.grid_w:
            raise ValueError(f"n_visual {cfg.n_visual} is not a multiple of grid_w {cfg.grid_w}")
        if cfg.d_model % cfg.n_head:
            raise ValueError(f"d_model {cfg.d_model} is not a multiple of n_head {cfg.n_head}")
        self.config = cfg
        d = cfg.d_model
        self.grid_h = cfg.n_visual // cfg.grid_w
        self.text_emb = nn.Embedding(cfg.text_vocab, d)
        self.text_pos = nn.Embedding(cfg.max_text_len, d)
        self.draft_emb = nn.Embedding(cfg.visual_vocab, d)
        self.draft_type = nn.Parameter(torch.randn(d) * 0.02)
        self.null_instr = nn.Parameter(torch.randn(cfg.n_null, d) * 0.02)
        self.bos = nn.Parameter(torch.randn(d) * 0.02)
        self.vis_emb = nn.Embedding(cfg.visual_vocab, d)
        self.row_emb = nn.Embedding(self.grid_h, d)
        self.col_emb = nn.Embedding(cfg.grid_w, d)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(d, bias=cfg.bias)
        self.head = nn.Linear(d, cfg.visual_vocab, bias=False)
        self.apply(self._init)
        for name, p in self.named_parameters():  # GPT-2: scale residual projections by depth
            if name.endswith(("attn.proj.weight", "out.weight")):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * cfg.n_layer))
        # slot i carries the row/col of the cell it predicts: (N,) indices, not parameters
        cells = torch.arange(cfg.n_visual)
        self.register_buffer("rows", cells // cfg.grid_w, persistent=False)
        self.register_buffer("cols", cells % cfg.grid_w, persistent=False)


    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, 0.0, 0.02)

    # ------------------------------------------------------------------ sequence building
    def _prefix(
        self, text_ids: Tensor, text_mask: Tensor, instr: LatentInstruction | None, drop: Tensor | None,
        drop_draft: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:  # fmt: skip
        """Embeddings (B,P,d) and validity mask (B,P) of [text][draft][null instruction].

        drop (B,) bool hides text and draft (unconditional rows); drop_draft (B,) bool hides the
        draft only (caption-only rows). The null instruction is visible wherever no draft is.
        """
        b = text_ids.shape[0]
        cfg = self.config
        if text_ids.shape[1] > cfg.max_text_len:
            raise ValueError(f"text length {text_ids.shape[1]} > max_text_len {cfg.max_text_len}")
        text_mask = text_mask.bool()
        if drop is not None:
            text_mask = text_mask & ~drop[:, None]
        parts = [self.text_emb(text_ids) + self.text_pos(positions(text_mask))]
        masks = [text_mask]
        null_valid = torch.ones(b, dtype=torch.bool, device=text_ids.device)
        if instr is not None:
            instr.check_fits(cfg.n_visual, cfg.visual_vocab, "the generator")
            hidden = torch.zeros_like(null_valid)
            for d in (drop, drop_draft):
                if d is not None:
                    hidden = hidden | d
            parts.append(self.embed_draft(instr))
            masks.append((~hidden)[:, None].expand(-1, cfg.n_visual))
            null_valid = hidden
        if bool(null_valid.any()):  # all-hidden null tokens would change nothing: leave them out
            dtype = parts[-1].dtype
            parts.append(self.null_instr.to(dtype)[None].expand(b, -1, -1))
            masks.append(null_valid[:, None].expand(-1, cfg.n_null))
        x = torch.cat([p.to(parts[0].dtype) for p in parts], 1)
        return x, torch.cat(masks, 1)

    def embed_draft(self, instr: LatentInstruction) -> Tensor:
        """`(B, N, V)` draft -> `(B, N, d)`: expected code embedding of each cell, plus its row/column.

        The expectation under `softmax(draft)` (not the argmax) keeps the path differentiable, so
        a composer can also be trained through the frozen generator (`stage2.gen_weight`).
        """
        probs = instr.probs()
        x = probs.to(self.draft_emb.weight.dtype) @ self.draft_emb.weight
        return x + self.row_emb(self.rows) + self.col_emb(self.cols) + self.draft_type

    def _slots(self, prev_tokens: Tensor, start: int = 0) -> Tensor:
        """Slot inputs (B,n,d) for slots start..start+n-1, given visual tokens v_{start-1}..v_{start+n-2}.

        prev_tokens (B,n) long; for start = 0 its first column is ignored (that slot is <img>).
        """
        b, n = prev_tokens.shape
        x = self.vis_emb(prev_tokens)
        if start == 0:
            x = torch.cat([self.bos.to(x.dtype).expand(b, 1, -1), x[:, 1:]], 1)
        cells = slice(start, start + n)
        return x + self.row_emb(self.rows[cells]) + self.col_emb(self.cols[cells])

    def _run(self, x: Tensor, bias: Tensor, cache: KVCache | None = None) -> Tensor:
        """Run the blocks; bias (B,1,L,keys) is the additive attention mask shared by every layer."""
        x = self.drop(x)
        for i, block in enumerate(self.blocks):
            x = block(x, bias, cache, i)
        return x

    # ------------------------------------------------------------------ training
    def forward(
        self, text_ids: Tensor, text_mask: Tensor, instr: LatentInstruction | None, image_tokens: Tensor,
        drop_cond: Tensor | None = None, drop_draft: Tensor | None = None,
    ) -> Tensor:  # fmt: skip
        """Teacher-forced logits (B,N,V) for image_tokens (B,N) long.

        drop_cond (B,) bool: unconditional rows (for CFG); drop_draft (B,) bool: rows without the draft.
        """
        text_ids, text_mask = trim_padding(text_ids, text_mask)
        prefix, pmask = self._prefix(text_ids, text_mask, instr, drop_cond, drop_draft)
        inputs = image_tokens
        if self.training and self.config.token_noise > 0:
            noisy = torch.rand(inputs.shape, device=inputs.device) < self.config.token_noise
            inputs = torch.where(noisy, torch.randint_like(inputs, self.config.visual_vocab), inputs)
        slots = self._slots(torch.roll(inputs, 1, dims=1))
        x = torch.cat([prefix, slots.to(prefix.dtype)], 1)
        x = self._run(x, attention_bias(pmask, image_tokens.shape[1], compute_dtype(x)))
        return self.head(self.ln_f(x[:, prefix.shape[1] :]))

    # ------------------------------------------------------------------ sampling (VisualTokenModel.generate)
    def _decoder(
        self, text_ids: Tensor, text_mask: Tensor, instr: LatentInstruction | None, drop: Tensor | None,
        use_cache: bool,
    ) -> StepFn:  # fmt: skip
        """One visual slot per step: with the KV cache, the prefix and <img> in one pass, then one new
        slot attending to everything cached; without it, the whole sequence again (the reference)."""
        text_ids, text_mask = trim_padding(text_ids, text_mask)
        prefix, pmask = self._prefix(text_ids, text_mask, instr, drop)
        rows, p = prefix.shape[:2]
        n = self.config.n_visual
        dtype = compute_dtype(prefix)
        bias = attention_bias(pmask, n, dtype)  # (R,1,P+N,P+N), sliced at every step
        cache = None
        if use_cache:
            hd = self.config.d_model // self.config.n_head
            cache = KVCache(self.config.n_layer, rows, self.config.n_head, p + n, hd, prefix.device, dtype)
        tokens = torch.zeros(rows, n, dtype=torch.long, device=prefix.device)  # sampled so far
        i = 0

        def step(prev: Tensor | None) -> Tensor:
            nonlocal i
            if prev is not None:
                tokens[:, i - 1] = prev
            if cache is None:  # slot i reads v_0..v_{i-1}: roll puts the unsampled v_i at <img>'s place
                x = torch.cat([prefix, self._slots(torch.roll(tokens[:, : i + 1], 1, 1)).to(prefix.dtype)], 1)
                h = self._run(x, bias[:, :, : p + i + 1, : p + i + 1])[:, -1]
            elif i == 0:  # prefix and <img> in one pass, filling the cache
                x = torch.cat([prefix, self._slots(tokens[:, :1]).to(prefix.dtype)], 1)
                h = self._run(x, bias[:, :, : p + 1, : p + 1], cache)[:, -1]
                cache.pos = p + 1
            else:  # one new slot attends to everything cached
                x = self._slots(tokens[:, i - 1 : i], start=i)
                h = self._run(x, bias[:, :, p + i : p + i + 1, : p + i + 1], cache)[:, -1]
                cache.pos += 1
            i += 1
            return self.head(self.ln_f(h)).float()

        return step
