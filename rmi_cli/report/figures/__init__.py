"""Figures of stored results (matplotlib, PNG and SVG): the ablation grid, training curves and
the qualitative comparison (the paper's Figure 2). Pure report layer: tables, records and NumPy
arrays in, files out; no torch, no SQL."""

from rmi_cli.report.figures.ablation import ablation_figure
from rmi_cli.report.figures.style import OKABE_ITO, save_figure

__all__ = ["OKABE_ITO", "ablation_figure", "save_figure"]
