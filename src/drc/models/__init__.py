"""Pure `nn.Module`s: the visual tokenizer, the generator (the LMM), the towers and the fusion."""
