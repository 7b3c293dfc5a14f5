"""A ring of encoded training samples: each step replaces the `refresh` oldest with fresh ones from the stream.

Encoding a sample (two VAE passes) costs about as much as a transformer step on a CPU, so each encoded sample is
reused: with buffer B, refresh r and batch b it stays B/r steps and is drawn about b/r times. Its content at step k is
a function of k alone (stream indices), so a resumed run holds what the uninterrupted one held.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class LatentBuffer:
    targets: "torch.Tensor"  # (buffer, z_dim, latent_frames, h, w)
    conditions: "torch.Tensor"  # (buffer, 4 + z_dim, latent_frames, h, w)
    next_index: int  # stream index of the next sample to encode
    cursor: int  # ring slot the next fresh sample replaces

    def state_dict(self) -> dict:
        return {"targets": self.targets, "conditions": self.conditions, "next_index": self.next_index,
                "cursor": self.cursor}

    @classmethod
    def from_state(cls, state: dict, device) -> "LatentBuffer":
        return cls(state["targets"].to(device), state["conditions"].to(device), int(state["next_index"]),
                   int(state["cursor"]))


def _encode(pipe, data, seed, indices, device):
    from cos_ray.training.data import draw_samples
    from cos_ray.training.encode import encode_conditions, encode_targets

    samples = draw_samples(data, seed, indices)
    return encode_targets(pipe, samples, device), encode_conditions(pipe, samples, device)


def fill_buffer(pipe, data, seed: int, size: int, device, chunk: int = 32) -> LatentBuffer:
    import torch

    targets, conditions = [], []
    for start in range(0, size, chunk):
        t, c = _encode(pipe, data, seed, range(start, min(size, start + chunk)), device)
        targets.append(t)
        conditions.append(c)
    return LatentBuffer(torch.cat(targets), torch.cat(conditions), next_index=size, cursor=0)


def refresh(buffer: LatentBuffer, pipe, data, seed: int, count: int, device) -> None:
    """Replace `count` ring slots with the stream's next samples."""
    if count == 0:
        return
    t, c = _encode(pipe, data, seed, range(buffer.next_index, buffer.next_index + count), device)
    size = buffer.targets.shape[0]
    for k in range(count):
        slot = (buffer.cursor + k) % size
        buffer.targets[slot] = t[k]
        buffer.conditions[slot] = c[k]
    buffer.cursor = (buffer.cursor + count) % size
    buffer.next_index += count
