"""Task generators written in this project: each is seeded, parametrised, and emits first frame, ground-truth
frames, foreground mask and the geometry its scorer needs. Knows nothing of models or Ray."""
