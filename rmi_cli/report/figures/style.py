"""What every figure shares: colour-blind-safe colours, and writing PNG + SVG atomically.

Figures use matplotlib's object API on an Agg canvas (`Figure`, never `pyplot`): no display, no
global state, safe in a worker thread.
"""

from __future__ import annotations

import io
from pathlib import Path

from matplotlib.figure import Figure

from rmi_cli.atomic import atomic_write_bytes

# Okabe & Ito (2008), "Color Universal Design": distinguishable with every common colour-vision
# deficiency; black is left out (it is the text colour).
OKABE_ITO = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#D55E00",  # vermillion
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#F0E442",  # yellow
)
FORMATS = ("png", "svg")
DPI = 120


def colour(index: int) -> str:
    return OKABE_ITO[index % len(OKABE_ITO)]


def save_figure(figure: Figure, path: str | Path) -> list[Path]:
    """Write `figure` as `<stem>.png` and `<stem>.svg` beside `path` (whatever its suffix),
    each atomically like every export (through symlinks, keeping a replaced file's mode);
    returns [png, svg]."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in FORMATS:
        final = target.with_suffix(f".{fmt}")
        buffer = io.BytesIO()
        # SVG text stays text (searchable, editable); the PNG is what the report shows
        figure.savefig(buffer, format=fmt, dpi=DPI, metadata=_metadata(fmt))
        atomic_write_bytes(final, buffer.getvalue())
        written.append(final)
    return written


def _metadata(fmt: str) -> dict[str, str | None]:
    # no creation date in the files: the same figure is the same bytes
    return {"Date": None} if fmt == "svg" else {"Software": "rmi (matplotlib)"}
