"""The run config's settings of the pretrained backends: `JanusOptions` (the `janus.*` keys) and the
sampling defaults each such backend brings (`BACKEND_SAMPLE`).

Plain dataclasses with no model code, so that `drc.config` composes them without loading a backend;
`drc.backends.janus` reads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from drc.config_io import ChoiceChecked
from drc.precision import Precision

DEFAULT_PROMPT = "<|User|>: {text}\n\n<|Assistant|>:"  # Janus-Pro's chat format (its processor's)

# Janus's own sampling settings (DeepSeek's generation_inference.py: cfg_weight 5, temperature 1,
# every code allowed): what `drc config` / `drc train` resolve `sample.*` to with this backend
# unless a config file or an override sets them (the built-in generator's are SampleConfig's).
# No draft guide: its weight was chosen for the built-in generator and never measured on Janus.
JANUS_SAMPLE: dict[str, float | int] = {"cfg_scale": 5.0, "temperature": 1.0, "top_k": 0, "draft_guide": 0.0}


@dataclass
class JanusOptions(ChoiceChecked):
    """The Janus backend's settings (`janus.*` keys; read only with `generator.backend=janus`)."""

    # the prompt around the instruction text ({text}); Janus-Pro's format. <bos> goes before it,
    # the framed draft and <begin_of_image> after it
    prompt: str = DEFAULT_PROMPT
    # weights' dtype: auto = bf16 on CUDA (what Janus ships and runs in), fp32 elsewhere
    dtype: Precision = "auto"
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


# Sampling defaults of the backends whose generator was trained with other settings than drc's own
# (`sample.*` keys); `drc.config.build_config` puts them under the config file and the overrides.
BACKEND_SAMPLE: dict[str, dict[str, Any]] = {"janus": {f"sample.{k}": v for k, v in JANUS_SAMPLE.items()}}
