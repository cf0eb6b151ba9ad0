"""Composers: every method's way of turning (history, reference) into a `LatentInstruction`.

All methods share one call, so all of them drive the same generator unchanged::

    composer(hist (B, k, N, code_dim), hist_mask (B, k) bool, ref (B, N, code_dim)) -> LatentInstruction

`hist` holds the visual-token embeddings `E(h_i)` of the history, oldest first; `hist_mask` is False
for missing images (cold-start users with fewer than k items); `ref` is `E(r)`. The instruction is a
draft of the target in the tokenizer's code space (`(B, N, V)` logits): every composer ends in the
same draft head (LayerNorm + Linear to the V codes) over one feature per grid cell.

- `DRCComposer` (drc and its ablations): StyleTower over the history, importance weights, SemTower
  over the reference, FusionNetwork (one query per cell) -> draft head.
- `EntangledComposer` (entangled, entangled_augment, reference_only, history_only; Pigeon-like):
  one query per cell reads the raw tokens of every input image, no towers and no weights -> the
  same draft head. Same width and as many blocks as DRC's towers + fusion.

`build_composer(method, ...)` is the factory (open_clip style: a registry, and an error that lists
the valid names).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from drc.errors import DrcError
from drc.methods import METHOD_ARCHITECTURE
from drc.models.composer_config import ComposerConfig
from drc.models.draft_head import make_draft_head
from drc.models.fusion import FusionBlock, FusionNetwork
from drc.models.instruction import LatentInstruction
from drc.models.towers import AttentionPool, SemTower, StyleTower, local_window_mask

if TYPE_CHECKING:
    from drc.backends.base import TokenGenerator, VisualTokenizer
    from drc.config import RunConfig


class Composer(nn.Module):
    """Base class: `forward(hist, hist_mask, ref) -> LatentInstruction` (see the module docstring).

    Every composer owns `mask_embed`, the learned `[MASK]` vector in `E`-space that replaces the
    masked positions of a masked-target reference (Pigeon-style training: `stage2.augment=False`).
    """

    uses_history = True
    uses_reference = True

    def __init__(
        self, code_dim: int, vocab: int, n_visual: int, history_len: int, d_model: int,
        draft_head: str = "linear", codebook: Tensor | None = None,
    ) -> None:  # fmt: skip
        super().__init__()
        self.code_dim, self.vocab, self.n_visual, self.history_len = code_dim, vocab, n_visual, history_len
        self.mask_embed = nn.Parameter(torch.randn(code_dim) * 0.02)
        self.head = make_draft_head(draft_head, d_model, vocab, codebook)

    def draft(self, cells: Tensor, weights: Tensor | None = None) -> LatentInstruction:
        """One feature per cell `(B, N, D)` -> the latent instruction (draft logits `(B, N, V)`)."""
        return LatentInstruction(self.head(cells).float(), weights)

    def mask_reference(self, ref: Tensor, masked: Tensor) -> Tensor:
        """`ref (B, N, code_dim)` with the positions where `masked (B, N)` is True set to `mask_embed`."""
        return torch.where(masked[..., None], self.mask_embed.to(ref.dtype), ref)

    def forward(self, hist: Tensor, hist_mask: Tensor, ref: Tensor) -> LatentInstruction:
        raise NotImplementedError


# --------------------------------------------------------------------------- DRC


def importance_weights(scores: Tensor, mask: Tensor) -> Tensor:
    """Softmax of `scores (B, k)` over the valid entries of `mask (B, k)`; invalid entries get 0.

    A large finite negative fill (not -inf) keeps an all-invalid row finite (it becomes all zeros),
    so neither the forward pass nor the gradient ever sees NaN.
    """
    w = torch.softmax(scores.float().masked_fill(~mask, -1e9), dim=-1)
    return w * mask


class DRCComposer(Composer):
    """StyleTower + importance weights over the history, SemTower over the reference, FusionNetwork.

    Style of H: each history image (query) attends, through the StyleTower, to the tokens of the
    *other* valid history images (itself and padding are masked out; an image with no valid partner,
    i.e. k=1 or a one-item cold-start history, attends to itself). Each per-image result is pooled
    (attention pooling) and scored by a small MLP; `w = softmax` over the valid history. The style
    features are the `w`-weighted sum of the per-image token features, `(B, N, D)`: the same shape
    Stage 1's single-partner `style_features` has, and averaging across images also washes out what
    one image shows (its subject), which is not style.

    Semantics of r (the documented decision): **r is its own partner**, `SemTower(q=E_r, kv=E_r)`, in
    Stage 2 training and at test alike. At test only r is known, so any other partner (the target,
    another item) would make training and test differ. Stage 1 teaches the tower what to keep with
    true partners (an item of the same semantics in another style); Stage 2's references differ in
    style from the target (augmentations / real items of other styles), so the fusion and the
    generator learn to take no style from r.
    """

    def __init__(
        self, cfg: ComposerConfig, code_dim: int, vocab: int, n_visual: int, history_len: int,
        grid: tuple[int, int] | None = None, codebook: Tensor | None = None,
    ) -> None:  # fmt: skip
        super().__init__(code_dim, vocab, n_visual, history_len, cfg.d_model, cfg.draft_head, codebook)
        D = cfg.d_model
        local = fusion_local = None
        if cfg.sem_window > 0:
            grid = grid or squarest_grid(n_visual)
            if grid[0] * grid[1] != n_visual:
                raise ValueError(f"composer.sem_window needs the grid of the {n_visual} cells, got {grid}")
            local = local_window_mask(grid, cfg.sem_window)
            fw = cfg.sem_window if cfg.fusion_window < 0 else cfg.fusion_window
            fusion_local = local_window_mask(grid, fw)
        # derived from the config, not learned: not part of the saved weights
        self.sem_local: Tensor | None
        self.fusion_local: Tensor | None
        self.register_buffer("sem_local", local, persistent=False)
        self.register_buffer("fusion_local", fusion_local, persistent=False)
        tower_args = (code_dim, n_visual, D, cfg.n_heads, cfg.tower_layers, cfg.ffn_mult, cfg.dropout)
        # runs of gcd(style_pool, N) cells: never straddling two images, whatever the token grid
        self.style_tower = StyleTower(*tower_args, mem_pool=math.gcd(cfg.style_pool, n_visual))
        self.sem_tower = SemTower(*tower_args)
        self.pool = AttentionPool(D, cfg.n_heads)
        self.scorer = nn.Sequential(nn.LayerNorm(D), nn.Linear(D, D), nn.GELU(), nn.Linear(D, 1))
        self.fusion = FusionNetwork(cfg, n_visual)

    # ---- the pieces Stage 1 composes crosswise
    def style_features(self, x_q: Tensor, x_kv: Tensor) -> Tensor:
        """StyleTower(q=x_q, kv=x_kv): `(B, N, code_dim) x2 -> (B, N, D)`."""
        return self.style_tower(x_q, x_kv)

    def semantic_features(self, x_q: Tensor, x_kv: Tensor) -> Tensor:
        """SemTower(q=x_q, kv=x_kv): `(B, N, code_dim) x2 -> (B, N, D)`."""
        local = None if self.sem_local is None else self.sem_local[None]
        return self.sem_tower(x_q, x_kv, local)

    def fuse(self, style: Tensor, sem: Tensor, weights: Tensor | None = None) -> LatentInstruction:
        """FusionNetwork over `(B, Ns, D)` style and `(B, Nm, D)` semantic features -> the draft."""
        return self.draft(self.fusion(style, sem, self.fusion_local), weights)

    # ---- the history
    def history_style(self, hist: Tensor, hist_mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """`hist (B, k, N, code_dim)`, `hist_mask (B, k)` ->
        (style (B, N, D), weights (B, k) float32, per-image features (B, k, N, D))."""
        B, k, N, _ = hist.shape
        tower = self.style_tower
        e = tower.embed(hist)  # (B, k, N, D)
        D = e.shape[-1]
        eye = torch.eye(k, dtype=torch.bool, device=hist.device)
        partners = hist_mask[:, None, :] & ~eye  # (B, k_query, k_partner)
        alone = ~partners.any(-1, keepdim=True)  # no valid partner: attend to itself
        partners = partners | (alone & eye)
        # all k images' tokens as one sequence, each query token masked to its image's partners:
        # the keys and values of every image are computed once, not once per query image
        x = e.reshape(B, k * N, D)
        mem = tower.pool_memory(x)  # (B, k*M, D), M = N / style_pool cells per partner image
        M = mem.shape[1] // k
        mem_mask = partners[:, :, None, :, None].expand(B, k, N, k, M).reshape(B, k * N, k * M)
        per_image = tower.attend(x, mem, mem_mask).view(B, k, N, D)
        pooled = self.pool(per_image.reshape(B * k, N, D)).view(B, k, D)
        w = importance_weights(self.scorer(pooled).squeeze(-1), hist_mask)
        style = (w.to(per_image.dtype)[..., None, None] * per_image).sum(1)
        return style, w, per_image

    def forward(self, hist: Tensor, hist_mask: Tensor, ref: Tensor) -> LatentInstruction:
        style, w, _ = self.history_style(hist, hist_mask)
        sem = self.semantic_features(ref, ref)  # r is its own partner (see the class docstring)
        return self.fuse(style, sem, w)


# --------------------------------------------------------------------------- baselines


class EntangledComposer(Composer):
    """Raw tokens of every input image read by one set of queries (Pigeon-like; also reference-only /
    history-only).

    Each image's `E`-tokens are projected `code_dim -> D` and given a position embedding (shared by
    all images, as the towers share theirs) and an image-index embedding (history 0..k-1,
    reference k); missing history images are masked out. N learned queries (one per draft cell)
    read all of them through `tower_layers + fusion_layers` blocks of the FusionNetwork's kind
    (self-attention among the queries, cross-attention to the tokens, FFN), and go to the draft
    head. It is DRC without what DRC adds: no towers that separate style from semantics, no
    importance weights, no Stage 1.

    A full transformer over all (k+1) N tokens and the queries (as Pigeon runs everything through
    its LMM) collapsed the same way on the sticker benchmark (bench/README.md) at several times the
    cost per step; this form keeps the baseline's budget comparable to DRC's.
    """

    def __init__(
        self,
        cfg: ComposerConfig,
        code_dim: int,
        vocab: int,
        n_visual: int,
        history_len: int,
        *,
        use_history: bool = True,
        use_reference: bool = True,
        codebook: Tensor | None = None,
    ) -> None:
        super().__init__(code_dim, vocab, n_visual, history_len, cfg.d_model, cfg.draft_head, codebook)
        if not (use_history or use_reference):
            raise ValueError("an entangled composer needs the history, the reference, or both")
        self.uses_history, self.uses_reference = use_history, use_reference
        D = cfg.d_model
        self.inp = nn.Linear(code_dim, D)
        self.pos = nn.Parameter(torch.randn(n_visual, D) * 0.02)
        self.image_embed = nn.Parameter(torch.randn(history_len + 1, D) * 0.02)
        self.queries = nn.Parameter(torch.randn(n_visual, D) * 0.02)
        n_blocks = cfg.tower_layers + cfg.fusion_layers
        self.blocks = nn.ModuleList(
            FusionBlock(D, cfg.n_heads, cfg.ffn_mult, cfg.dropout) for _ in range(n_blocks)
        )
        self.ln_out = nn.LayerNorm(D)

    def forward(self, hist: Tensor, hist_mask: Tensor, ref: Tensor) -> LatentInstruction:
        parts, masks = [], []
        B, N = ref.shape[0], self.n_visual
        if self.uses_history:
            k = hist.shape[1]
            t = self.inp(hist) + self.pos + self.image_embed[:k, None, :]  # (B, k, N, D)
            parts.append(t.flatten(1, 2))
            masks.append(hist_mask[:, :, None].expand(B, k, N).reshape(B, k * N))
        if self.uses_reference:
            parts.append(self.inp(ref) + self.pos + self.image_embed[self.history_len])
            masks.append(torch.ones(B, N, dtype=torch.bool, device=ref.device))
        mem, mem_mask = torch.cat(parts, 1), torch.cat(masks, 1)
        q = self.queries.unsqueeze(0).expand(B, -1, -1).to(mem.dtype)
        for blk in self.blocks:
            q = blk(q, mem, mem_mask)
        return self.draft(self.ln_out(q))


# --------------------------------------------------------------------------- factory

ComposerFactory = Callable[..., Composer]
_ARCHITECTURES: dict[str, ComposerFactory] = {}


def register_composer(name: str) -> Callable[[ComposerFactory], ComposerFactory]:
    def deco(fn: ComposerFactory) -> ComposerFactory:
        _ARCHITECTURES[name] = fn
        return fn

    return deco


# a factory takes (cfg, code_dim, vocab, n_visual, history_len)


@register_composer("drc")
def _drc(
    cfg: ComposerConfig, *dims: int, grid: tuple[int, int] | None = None, codebook: Tensor | None = None
) -> Composer:
    return DRCComposer(cfg, *dims, grid=grid, codebook=codebook)


def _entangled_factory(use_history: bool, use_reference: bool) -> ComposerFactory:
    def make(
        cfg: ComposerConfig, *dims: int, grid: tuple[int, int] | None = None, codebook: Tensor | None = None
    ) -> Composer:
        return EntangledComposer(
            cfg, *dims, use_history=use_history, use_reference=use_reference, codebook=codebook
        )

    return make


register_composer("entangled")(_entangled_factory(True, True))
register_composer("reference_only")(_entangled_factory(False, True))
register_composer("history_only")(_entangled_factory(True, False))


def architecture_of(method: str) -> str:
    if method not in METHOD_ARCHITECTURE:
        raise DrcError(f"unknown method {method!r}; valid methods: {', '.join(METHOD_ARCHITECTURE)}")
    return METHOD_ARCHITECTURE[method]


def build_composer(
    method: str, cfg: ComposerConfig, code_dim: int, vocab: int, n_visual: int, history_len: int,
    grid: tuple[int, int] | None = None, codebook: Tensor | None = None,
) -> Composer:  # fmt: skip
    """The composer of `method`, reading `code_dim`-wide token embeddings and drafting `n_visual`
    cells over `vocab` codes (the tokenizer's codebook); `grid` (h, w) is the token grid (h * w =
    n_visual), needed by `cfg.sem_window`; `codebook (vocab, code_dim)`, the code vectors, by
    `cfg.draft_head="codebook"`."""
    arch = architecture_of(method)
    return _ARCHITECTURES[arch](cfg, code_dim, vocab, n_visual, history_len, grid=grid, codebook=codebook)


def composer_for(cfg: RunConfig, tokenizer: VisualTokenizer, generator: TokenGenerator) -> Composer:
    """The composer of `cfg.method` (a RunConfig), sized for this tokenizer and generator (training
    and loading)."""
    codebook = codebook_of(tokenizer) if cfg.composer.draft_head == "codebook" else None
    return build_composer(
        cfg.method,
        cfg.composer,
        code_dim=tokenizer.config.code_dim,
        vocab=tokenizer.config.codebook_size,
        n_visual=generator.config.n_visual,
        history_len=cfg.data.history_len,
        grid=(generator.config.n_visual // generator.config.grid_w, generator.config.grid_w),
        codebook=codebook,
    )


@torch.no_grad()
def codebook_of(tokenizer: VisualTokenizer) -> Tensor:
    """The tokenizer's code vectors, float32 `(V, code_dim)` on the CPU (for `draft_head="codebook"`)."""
    V = tokenizer.config.codebook_size
    ref = next(iter(tokenizer.parameters()), None)  # type: ignore[attr-defined]
    idx = torch.arange(V, device=ref.device if ref is not None else "cpu")[None]
    return tokenizer.embed(idx)[0].float().cpu()


def squarest_grid(n: int) -> tuple[int, int]:
    """`(h, w)` with h * w = n, h >= w and w the largest divisor not above sqrt(n) (8x8, 12x8)."""
    w = max(d for d in range(1, math.isqrt(n) + 1) if n % d == 0)
    return n // w, w

