"""Dense-CRF post-processing (the paper's "CE & CRF-1/5/10" rows; recipe section 2).

`dense_crf` / `crf_steps` run pydensecrf on one image; `run_crf` runs it over a split's saved
probabilities in a process pool and scores the result. pydensecrf is imported only when a CRF
runs, and a missing install raises `DependencyMissing` with the command that fixes it.
"""

from rmi_cli.crf.cache import CRFCache, ImageResult
from rmi_cli.crf.inference import (
    INSTALL_HINT,
    PAPER_SETTINGS,
    CRFLabels,
    crf_steps,
    dense_crf,
    iteration_counts,
    load_pydensecrf,
    probabilities_from_labels,
)
from rmi_cli.crf.run import run_crf

__all__ = [
    "INSTALL_HINT",
    "PAPER_SETTINGS",
    "CRFCache",
    "CRFLabels",
    "ImageResult",
    "crf_steps",
    "dense_crf",
    "iteration_counts",
    "load_pydensecrf",
    "probabilities_from_labels",
    "run_crf",
]
