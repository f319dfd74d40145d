"""The image pool of Shrivastava et al. used by CycleGAN: discriminators see a
history of generated images, not only the latest ones."""

from __future__ import annotations

import numpy as np
import torch


class ImagePool:
    """A buffer of up to ``size`` generated images (reference default 50).

    Each query image is stored while the pool fills; afterwards, with
    probability 1/2 it replaces a random stored image which is returned in its
    place, else it is returned as is. ``size == 0`` disables the pool.

    Parameters
    ----------
    size : int
    rng : np.random.Generator
        Source of every random choice (determinism for a seed).
    """

    def __init__(self, size: int, rng: np.random.Generator) -> None:
        if not isinstance(size, int) or size < 0:
            raise ValueError(f"pool size must be a non-negative int, got {size!r}")
        self.size, self.rng = size, rng
        self.images: list[torch.Tensor] = []

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """Return a batch ``"b c ..."`` of the same shape, mixing in stored images."""
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif self.rng.random() < 0.5:
                i = int(self.rng.integers(len(self.images)))
                out.append(self.images[i].clone())
                self.images[i] = image.clone()
            else:
                out.append(image)
        return torch.cat(out, 0)

    def state_dict(self) -> dict:
        """Stored images, for checkpoints."""
        return {"images": list(self.images)}

    def load_state_dict(self, state: dict) -> None:
        self.images = list(state["images"])[: self.size]
