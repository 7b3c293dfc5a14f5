"""Wan2.2 models: every checkpoint layout users download, the loader real checkpoints and presets share, presets.

Nothing here knows of Ray. Pure Python (no torch): `checkpoint` (layout detection and inspection), `shapes`
(safetensors headers, configs from shapes), `source`, `identity`, `memory` (per-worker GPU memory). With torch,
imported lazily: `loader`, `wan_original` (the original Wan layout), `comfy` (single-file experts),
`lora_conventions` (LoRA in every common key convention, counted), `convert`, `sharding`, `tiny`.
"""
