"""Per-image counts (`records.ImageCounts`) to and from the `image_counts` table's blob.

The blob is `zlib.compress` of the counts as little-endian int64 in C order, shape (N, 4, C)
(`records.COUNT_ROWS` along the middle axis), so any language can read it back:
`np.frombuffer(zlib.decompress(blob), "<i8").reshape(N, 4, C)`. Counts are mostly zeros (an image
holds a few of the classes), which zlib shrinks about tenfold. NumPy is imported on first use,
keeping `rmi --help` light.
"""

from __future__ import annotations

import zlib
from typing import Any

from rmi_cli.db.schema import ImageEvidence
from rmi_cli.errors import DatabaseError
from rmi_cli.records import COUNT_ROWS, ImageCounts

ENCODING = "zlib/int64-le/N,4,C"


def evidence_values(counts: ImageCounts) -> dict[str, Any]:
    """The `image_counts` columns of one evaluation's counts (all but its id)."""
    import numpy as np

    array = np.ascontiguousarray(counts.counts, dtype="<i8")
    return {
        "num_images": int(array.shape[0]),
        "num_classes": int(array.shape[2]),
        "names_json": list(counts.names),
        "encoding": ENCODING,
        "counts": zlib.compress(array.tobytes(), 6),
        "boundary_fraction": float(counts.boundary_fraction),
    }


def read_evidence(row: ImageEvidence, where: str) -> ImageCounts:
    """The stored counts; an unknown encoding or a damaged blob is a `DatabaseError` naming
    `where` (the database and evaluation)."""
    import numpy as np

    shape = (row.num_images, len(COUNT_ROWS), row.num_classes)
    if row.encoding != ENCODING:
        raise DatabaseError(
            f"{where}: per-image counts are stored as {row.encoding!r}, which this rmi cannot "
            f"read (it reads {ENCODING!r}): upgrade rmi"
        )
    try:
        array = np.frombuffer(zlib.decompress(row.counts), dtype="<i8").reshape(shape)
    except (zlib.error, ValueError) as error:
        raise DatabaseError(
            f"{where}: the per-image counts are damaged ({error}); expected {shape} int64 "
            f"values: run `rmi eval` (or `rmi crf`) on this run again to store them anew"
        ) from None
    names = tuple(str(name) for name in row.names_json)
    return ImageCounts(names, array.astype(np.int64), float(row.boundary_fraction))


def check_blob(blob: bytes, encoding: str, images: int, classes: int) -> None:
    """A `ValueError` unless `blob` holds (images, 4, classes) counts in `ENCODING`."""
    if encoding != ENCODING:
        raise ValueError(f"counts encoded as {encoding!r}; this rmi reads {ENCODING!r}")
    try:
        size = len(zlib.decompress(blob))
    except zlib.error as exc:
        raise ValueError(f"counts are not zlib data ({exc})") from None
    expected = images * len(COUNT_ROWS) * classes * 8
    if size != expected:
        raise ValueError(
            f"counts hold {size} bytes; {images} images x {classes} classes need {expected}"
        )
