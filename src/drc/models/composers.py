"""Composers: every method's way of turning (history, reference) into a `LatentInstruction`.

All methods share one call, so all of them drive the same generator unchanged::

    composer(hist (B, k, N, code_dim), hist_mask (B, k) bool, ref (B, N, code_dim)) -> LatentInstruction

`hist` holds the visual-token embeddings `E(h_i)` of the history, oldest first; `hist_mask` is False
for missing images (cold-start users with fewer than k items); `ref` is `E(r)`.

- `DRCComposer` (drc and its ablations): StyleTower over the history, importance weights, SemTower
  over the reference, FusionNetwork -> `n_queries` tokens.
- `EntangledComposer` (entangled, entangled_augment, reference_only, history_only): the raw tokens
  themselves, projected to `d_lmm` with image-index and position embeddings, average-pooled over the
  token grid only as much as needed to fit the generator's `max_instruction` prefix budget.

`build_composer(method, ...)` is the factory (open_clip style: a registry, and an error that lists
the valid names).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from drc.errors import DrcError
from drc.models.conditioning import LatentInstruction
from drc.models.fusion import ComposerConfig, FusionNetwork
from drc.models.towers import AttentionPool, SemTower, StyleTower


class Composer(nn.Module):
    """Base class: `forward(hist, hist_mask, ref) -> LatentInstruction` (see the module docstring).

    Every composer owns `mask_embed`, the learned `[MASK]` vector in `E`-space that replaces the
    masked positions of a masked-target reference (Pigeon-style training: `stage2.augment=False`).
    """

    uses_history = True
    uses_reference = True

    def __init__(self, code_dim: int, d_lmm: int, n_visual: int, history_len: int) -> None:
        super().__init__()
        self.code_dim, self.d_lmm, self.n_visual, self.history_len = code_dim, d_lmm, n_visual, history_len
        self.mask_embed = nn.Parameter(torch.randn(code_dim) * 0.02)

    @property
    def max_length(self) -> int:
        """Upper bound on the instruction length M this composer produces."""
        raise NotImplementedError

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
        self, cfg: ComposerConfig, code_dim: int, d_lmm: int, n_visual: int, history_len: int
    ) -> None:
        super().__init__(code_dim, d_lmm, n_visual, history_len)
        D = cfg.d_model
        tower_args = (code_dim, n_visual, D, cfg.n_heads, cfg.tower_layers, cfg.ffn_mult, cfg.dropout)
        self.style_tower = StyleTower(*tower_args)
        self.sem_tower = SemTower(*tower_args)
        self.pool = AttentionPool(D, cfg.n_heads)
        self.scorer = nn.Sequential(nn.LayerNorm(D), nn.Linear(D, D), nn.GELU(), nn.Linear(D, 1))
        self.fusion = FusionNetwork(cfg, d_lmm)

    @property
    def max_length(self) -> int:
        return self.fusion.n_queries

    # ---- the pieces Stage 1 composes crosswise
    def style_features(self, x_q: Tensor, x_kv: Tensor) -> Tensor:
        """StyleTower(q=x_q, kv=x_kv): `(B, N, code_dim) x2 -> (B, N, D)`."""
        return self.style_tower(x_q, x_kv)

    def semantic_features(self, x_q: Tensor, x_kv: Tensor) -> Tensor:
        """SemTower(q=x_q, kv=x_kv): `(B, N, code_dim) x2 -> (B, N, D)`."""
        return self.sem_tower(x_q, x_kv)

    def fuse(self, style: Tensor, sem: Tensor, weights: Tensor | None = None) -> LatentInstruction:
        """FusionNetwork over `(B, Ns, D)` style and `(B, Nm, D)` semantic features -> M tokens."""
        return LatentInstruction.full(self.fusion(style, sem), weights)

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
        q = e.reshape(B * k, N, D)
        mem = e[:, None].expand(B, k, k, N, D).reshape(B * k, k * N, D)
        mem_mask = partners[..., None].expand(B, k, k, N).reshape(B * k, k * N)
        per_image = tower.attend(q, mem, mem_mask).view(B, k, N, D)
        pooled = self.pool(per_image.reshape(B * k, N, D)).view(B, k, D)
        w = importance_weights(self.scorer(pooled).squeeze(-1), hist_mask)
        style = (w.to(per_image.dtype)[..., None, None] * per_image).sum(1)
        return style, w, per_image

    def forward(self, hist: Tensor, hist_mask: Tensor, ref: Tensor) -> LatentInstruction:
        style, w, _ = self.history_style(hist, hist_mask)
        sem = self.semantic_features(ref, ref)  # r is its own partner (see the class docstring)
        return self.fuse(style, sem, w)


# --------------------------------------------------------------------------- baselines


def token_grid(n_visual: int, grid: tuple[int, int] | None) -> tuple[int, int]:
    """The (h, w) token grid: `grid` if given, else square when N is a square, else one row."""
    if grid is not None:
        if grid[0] * grid[1] != n_visual:
            raise DrcError(f"token grid {grid} does not hold {n_visual} visual tokens")
        return (int(grid[0]), int(grid[1]))
    r = math.isqrt(n_visual)
    return (r, r) if r * r == n_visual else (1, n_visual)


def pool_factor(grid: tuple[int, int], n_images: int, budget: int) -> int:
    """Smallest s such that n_images grids pooled s x s (ceil) fit in `budget` tokens."""
    h, w = grid
    for s in range(1, max(h, w) + 1):
        if n_images * math.ceil(h / s) * math.ceil(w / s) <= budget:
            return s
    raise DrcError(f"{n_images} images do not fit an instruction of {budget} tokens, even pooled to 1 each")


class EntangledComposer(Composer):
    """Raw tokens straight into the generator (Pigeon-like; also reference-only / history-only).

    Each image's `E`-tokens are average-pooled s x s over the token grid (s the smallest factor
    that fits all images into `max_instruction`; s = 1, no pooling, when they fit already), projected
    `code_dim -> d_lmm`, given an image-index embedding (history 0..k-1, reference k) and a position
    embedding, and concatenated (history first, then the reference). Missing history images have
    mask False. No towers, no weights.
    """

    def __init__(
        self,
        cfg: ComposerConfig,
        code_dim: int,
        d_lmm: int,
        n_visual: int,
        history_len: int,
        *,
        use_history: bool = True,
        use_reference: bool = True,
        grid: tuple[int, int] | None = None,
        max_instruction: int = 128,
    ) -> None:
        super().__init__(code_dim, d_lmm, n_visual, history_len)
        if not (use_history or use_reference):
            raise ValueError("an entangled composer needs the history, the reference, or both")
        self.uses_history, self.uses_reference = use_history, use_reference
        self.grid = token_grid(n_visual, grid)
        n_images = history_len * use_history + use_reference
        self.pool_s = pool_factor(self.grid, n_images, max_instruction)
        h, w = self.grid
        self.pooled_grid = (math.ceil(h / self.pool_s), math.ceil(w / self.pool_s))
        self.per_image = self.pooled_grid[0] * self.pooled_grid[1]
        self._n_images = n_images
        self.proj = nn.Linear(code_dim, d_lmm)
        self.image_embed = nn.Parameter(torch.randn(history_len + 1, d_lmm) * 0.02)
        self.pos = nn.Parameter(torch.randn(self.per_image, d_lmm) * 0.02)
        self.ln = nn.LayerNorm(d_lmm)

    @property
    def max_length(self) -> int:
        return self._n_images * self.per_image

    def _tokens(self, x: Tensor) -> Tensor:
        """`(B, I, N, code_dim) -> (B, I, P, d_lmm)`: pool, project, add positions."""
        B, I, N, C = x.shape
        if self.pool_s > 1:
            h, w = self.grid
            g = x.reshape(B * I, h, w, C).permute(0, 3, 1, 2)
            g = F.adaptive_avg_pool2d(g, self.pooled_grid)
            x = g.permute(0, 2, 3, 1).reshape(B, I, self.per_image, C)
        return self.proj(x) + self.pos

    def forward(self, hist: Tensor, hist_mask: Tensor, ref: Tensor) -> LatentInstruction:
        parts, masks = [], []
        if self.uses_history:
            B, k = hist.shape[:2]
            t = self._tokens(hist) + self.image_embed[:k, None, :]
            parts.append(t.flatten(1, 2))
            masks.append(hist_mask[:, :, None].expand(B, k, self.per_image).reshape(B, k * self.per_image))
        if self.uses_reference:
            t = self._tokens(ref[:, None]) + self.image_embed[self.history_len]
            parts.append(t.flatten(1, 2))
            masks.append(torch.ones(t.shape[0], self.per_image, dtype=torch.bool, device=ref.device))
        return LatentInstruction(self.ln(torch.cat(parts, 1)), torch.cat(masks, 1))


# --------------------------------------------------------------------------- factory

ComposerFactory = Callable[..., Composer]
_ARCHITECTURES: dict[str, ComposerFactory] = {}

# method -> architecture; the ablations and entangled_augment differ from their parent only in
# training settings (config.method_overrides), not in the model
METHOD_ARCHITECTURE = {
    "drc": "drc",
    "drc_no_stage1": "drc",
    "drc_uniform_sampling": "drc",
    "drc_no_augment": "drc",
    "entangled": "entangled",
    "entangled_augment": "entangled",
    "reference_only": "reference_only",
    "history_only": "history_only",
}


def register_composer(name: str) -> Callable[[ComposerFactory], ComposerFactory]:
    def deco(fn: ComposerFactory) -> ComposerFactory:
        _ARCHITECTURES[name] = fn
        return fn

    return deco


# a factory takes (cfg, code_dim, d_lmm, n_visual, history_len, *, grid, max_instruction)


@register_composer("drc")
def _drc(cfg: ComposerConfig, *dims: int, **_: Any) -> Composer:
    return DRCComposer(cfg, *dims)


def _entangled_factory(use_history: bool, use_reference: bool) -> ComposerFactory:
    def make(cfg: ComposerConfig, *dims: int, **kw: Any) -> Composer:
        return EntangledComposer(cfg, *dims, use_history=use_history, use_reference=use_reference, **kw)

    return make


register_composer("entangled")(_entangled_factory(True, True))
register_composer("reference_only")(_entangled_factory(False, True))
register_composer("history_only")(_entangled_factory(True, False))


def architecture_of(method: str) -> str:
    if method not in METHOD_ARCHITECTURE:
        raise DrcError(f"unknown method {method!r}; valid methods: {', '.join(METHOD_ARCHITECTURE)}")
    return METHOD_ARCHITECTURE[method]


def build_composer(
    method: str,
    cfg: ComposerConfig,
    code_dim: int,
    d_lmm: int,
    n_visual: int,
    history_len: int,
    *,
    grid: tuple[int, int] | None = None,
    max_instruction: int = 128,
) -> Composer:
    """The composer of `method`.

    grid: the tokenizer's (h, w) token grid (h * w = n_visual), used by the entangled baselines to
        pool 2-D neighbourhoods; None guesses square, else one row.
    max_instruction: the generator's instruction budget; baselines pool until they fit it.
    """
    arch = architecture_of(method)
    composer = _ARCHITECTURES[arch](
        cfg, code_dim, d_lmm, n_visual, history_len, grid=grid, max_instruction=max_instruction
    )
    if composer.max_length > max_instruction:
        raise DrcError(
            f"method {method!r} makes {composer.max_length} instruction tokens but the generator takes at "
            f"most {max_instruction}; lower composer.n_queries or raise generator.max_instruction"
        )
    return composer
