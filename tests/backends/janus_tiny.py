"""A tiny random Janus checkpoint in transformers format, built offline (tests, bench/janus_gpu_check.py).

    python tests/backends/janus_tiny.py DIR [--image-size 32] [--codebook 64] [--seed 0]

writes what a real Janus-Pro folder holds (config.json, model.safetensors, generation_config.json,
tokenizer.json, tokenizer_config.json) with the same special tokens, at a size that runs anywhere:
a 2-layer, 32-wide Llama, a VQ with `codebook` codes at 4x downsampling (32 px -> 8x8 = 64 codes),
a one-layer SigLIP. Its weights are random: it checks the plumbing, not image quality.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# Janus-Pro's own special tokens (its tokenizer's), so the tiny folder exercises the same lookups
BOS, EOS, PAD = "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜▁pad▁｜>"
IMAGE_TOKENS = ("<begin_of_image>", "<end_of_image>", "<image_placeholder>")


def tiny_text_tokenizer():
    """A byte-level tokenizer (one token per UTF-8 byte, no merges) with Janus's special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = [PAD, BOS, EOS, *IMAGE_TOKENS]
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {t: i for i, t in enumerate(specials + alphabet)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(specials)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        additional_special_tokens=list(IMAGE_TOKENS),
    )


def make_tiny_janus(
    out: str | Path, image_size: int = 32, codebook: int = 64, seed: int = 0, init_std: float = 0.3
) -> Path:
    """Write a tiny random Janus folder to `out` (created) and return it.

    image_size: the VQ's square side in pixels, a multiple of 4 (4x downsampling: N = (size/4)^2).
    """
    import torch
    from transformers import JanusConfig, JanusForConditionalGeneration, LlamaConfig
    from transformers.models.janus.configuration_janus import JanusVisionConfig, JanusVQVAEConfig

    if image_size % 4:
        raise ValueError(f"image_size must be a multiple of 4, got {image_size}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tok = tiny_text_tokenizer()
    width = 32
    text = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=width,
        intermediate_size=2 * width,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    # the VQ's grid (num_patches) is taken from the vision config: image_size / patch_size
    vision = JanusVisionConfig(
        hidden_size=width,
        num_hidden_layers=1,
        num_attention_heads=2,
        image_size=image_size,
        patch_size=4,
        projection_dim=width,
        num_image_tokens=(image_size // 4) ** 2,
        mlp_ratio=2,
    )
    vq = JanusVQVAEConfig(
        embed_dim=8,
        num_embeddings=codebook,
        latent_channels=32,
        base_channels=32,  # GroupNorm(32 groups) needs multiples of 32
        channel_multiplier=[1, 1, 1],  # three levels: 4x downsampling
        num_res_blocks=1,
        projection_dim=width,
        image_token_embed_dim=width,
        num_hidden_layers=2,  # the generation aligner's depth (Janus-Pro's: Linear, GELU, Linear)
    )
    cfg = JanusConfig(
        text_config=text,
        vision_config=vision,
        vq_config=vq,
        image_token_id=tok.convert_tokens_to_ids("<image_placeholder>"),
    )
    torch.manual_seed(seed)
    model = JanusForConditionalGeneration(cfg)
    # Janus's own initialisation (std 0.02) makes a random LLM this small emit one or two codes
    # everywhere (greedy decoding falls into a 2-cycle at once); wider weights make its outputs vary
    # from cell to cell and with the draft, which is what tests of the plumbing need to see
    with torch.no_grad():
        for name, module in model.named_modules():
            if "vqmodel" not in name and isinstance(module, (torch.nn.Linear, torch.nn.Embedding)):
                module.weight.normal_(0.0, init_std)
        # codebook rows of unequal norms (a trained VQ's are): Janus picks codes on normalised
        # vectors, the raw nearest code differs, and a test can tell the two rules apart
        book = model.model.vqmodel.quantize.embedding.weight
        book.mul_(torch.empty(book.shape[0], 1).uniform_(0.2, 3.0) / book.norm(dim=-1, keepdim=True))
    model.save_pretrained(str(out))
    tok.save_pretrained(str(out))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python tests/backends/janus_tiny.py", description=__doc__.splitlines()[0]
    )
    p.add_argument("out", help="folder to write")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--codebook", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    print(make_tiny_janus(args.out, args.image_size, args.codebook, args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
