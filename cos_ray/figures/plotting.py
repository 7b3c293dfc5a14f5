"""matplotlib for figures: the Agg backend (no display), and a figure saved as PNG (and SVG beside it, for papers)."""

from __future__ import annotations

from pathlib import Path

from cos_ray.errors import UsageError


def pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError("figures need matplotlib: pip install 'cos-ray[dev]' (or 'cos-ray[train]')") from None
    return plt


def save(fig, out: Path, dpi: int = 90, svg: bool = False) -> Path:
    """Write `fig` to `out` (PNG), and to `out` with `.svg` when `svg`; close it."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=dpi)
    if svg:
        fig.savefig(out.with_suffix(".svg"))
    pyplot().close(fig)
    return out
