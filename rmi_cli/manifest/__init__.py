"""Experiment manifests: YAML -> validated, fully resolved runs and CRF steps."""

from rmi_cli.manifest.loader import (
    GROUP_LABELS,
    METHOD_LABELS,
    ExperimentPlan,
    Manifest,
    PlannedCRF,
    PlannedRun,
    load_manifest,
    manifest_from_text,
    override_layer,
)
from rmi_cli.manifest.schema import CRFStepSpec, ExperimentSpec, ManifestSpec, TableSpec

__all__ = [
    "GROUP_LABELS",
    "METHOD_LABELS",
    "CRFStepSpec",
    "ExperimentPlan",
    "ExperimentSpec",
    "Manifest",
    "ManifestSpec",
    "PlannedCRF",
    "PlannedRun",
    "TableSpec",
    "load_manifest",
    "manifest_from_text",
    "override_layer",
]
