"""Sensitivity as linear CKA dissimilarity between a perturbed run's states and the clean run's (Fig. 3c).

Linear CKA (Kornblith et al., 2019) compares two representations of the same tokens: with centred X, Y
`# (tokens, features)`, CKA = ||YᵀX||²_F / (||XᵀX||_F · ||YᵀY||_F). Dissimilarity = 1 − CKA: 0 for identical states.
"""

from __future__ import annotations


def linear_cka(x, y) -> float:
    """x, y: `# (tokens, features)` with the same number of tokens (features may differ)."""
    import torch

    if x.shape[0] != y.shape[0]:
        raise ValueError(f"CKA needs the same tokens on both sides: {x.shape[0]} vs {y.shape[0]}")
    if torch.equal(x, y):
        return 1.0  # exactly, not up to rounding: a run compared with itself has dissimilarity 0
    x = x.double() - x.double().mean(dim=0, keepdim=True)
    y = y.double() - y.double().mean(dim=0, keepdim=True)
    cross = torch.linalg.matrix_norm(y.T @ x) ** 2
    norms = torch.linalg.matrix_norm(x.T @ x) * torch.linalg.matrix_norm(y.T @ y)
    if norms == 0:
        return 1.0 if torch.equal(x, y) else 0.0
    return float((cross / norms).clamp(0.0, 1.0))


def sensitivity(clean: dict, perturbed: dict) -> list[dict]:
    """Per step present in both captures: {'step', 'cka', 'cka_dissimilarity'}."""
    rows = []
    for step in sorted(set(clean) & set(perturbed)):
        value = linear_cka(clean[step], perturbed[step])
        rows.append({"step": step, "cka": value, "cka_dissimilarity": 1.0 - value})
    return rows
