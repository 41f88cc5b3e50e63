"""Facts shared by every layer (no imports, so anything may depend on this module)."""

# The label value every dataset maps its "void" pixels to (CamVid's 11, VOC's 255). Losses,
# metrics and the CRF treat it, and any value >= the number of classes, as "no label".
IGNORE_INDEX = 255

# The name of a dataset's void label when it is scored as a class of its own (`data.void:
# class`; the released CamVid code's label 11). Tables find the void column by this name.
VOID_CLASS_NAME = "unlabelled"

# The inference-time protocol's minimum of untimed forward passes (the ">= 10"); fewer is
# allowed for quick runs (the demo uses 2), and every table that shows such a time says so.
MIN_WARMUP_IMAGES = 10

# Boundary IoU's band width d as a fraction of the image diagonal (Cheng et al., CVPR 2021, use
# 2% for their semantic-segmentation results), at least one pixel. Stored with every evaluation's
# counts, so changing it here never mixes two widths in one table.
BOUNDARY_FRACTION = 0.02
