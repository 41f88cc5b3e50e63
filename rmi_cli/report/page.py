"""Parts of the HTML report page: its stylesheet, and the sections that say where every number
comes from (each evaluation's protocol, each environment that measured one)."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from typing import Any

from rmi_cli.report.notes import protocol_text
from rmi_cli.stored import EvaluationRecord

PAGE_CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1b1b;
 background:#fff;margin:0}
header,main{max-width:1800px;margin:0 auto;padding:0 24px}
header{border-bottom:1px solid #ddd;padding-bottom:8px}
h1{font-size:26px;margin:20px 0 4px}h2{font-size:20px;margin:28px 0 10px;
 border-bottom:2px solid #0072B2;padding-bottom:2px}
.lead{margin:4px 0}.meta{color:#666;font-size:13px;margin:4px 0}
nav a{color:#0072B2;text-decoration:none}
table.rmi{border-collapse:collapse;margin:8px 0 2px;font-variant-numeric:tabular-nums;
 font-size:14px}
table.rmi caption{text-align:left;font-weight:600;padding:4px 0}
table.rmi th{border-bottom:2px solid #333;padding:4px 10px;white-space:nowrap}
table.rmi td{padding:3px 10px;border-bottom:1px solid #eee;white-space:nowrap}
table.rmi .num{text-align:right}table.rmi .label{text-align:left}
table.rmi tr.section td{border-top:2px solid #999}
table.rmi tr.paper td{color:#666;font-style:italic}
ul.notes{color:#555;font-size:12.5px;margin:4px 0 4px;padding-left:18px;max-width:1100px}
.table{margin-bottom:22px;overflow-x:auto}
.cmd code,figcaption code{background:#f3f3f3;padding:1px 5px;border-radius:3px;font-size:12.5px}
figure{margin:12px 0 24px}figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:13px;color:#444}
.missing{color:#8a4b00;font-size:13px}
details{margin:2px 0}summary{cursor:pointer}
pre{background:#f6f6f6;padding:10px;overflow-x:auto;font-size:12.5px}
"""

ENVIRONMENT_FIELDS = (
    "hostname", "device", "cpu", "num_threads", "platform", "python", "torch", "torchvision",
    "cuda", "driver", "cudnn", "git_commit", "rmi_version",
)  # fmt: skip


def environment_ids(records: Sequence[EvaluationRecord]) -> dict[str, str]:
    """A short name ("E1", "E2", ...) for each distinct environment, keyed by its JSON."""
    ids: dict[str, str] = {}
    for row in records:
        key = _environment_key(row)
        if key and key not in ids:
            ids[key] = f"E{len(ids) + 1}"
    return ids


def _environment_key(row: EvaluationRecord) -> str:
    environment = row.environment
    return json.dumps(dict(environment), sort_keys=True, default=str) if environment else ""


def evaluations_section(records: Sequence[EvaluationRecord]) -> str:
    """Every stored evaluation behind the tables: what it scored and how it was measured."""
    ids = environment_ids(records)
    head = ("Run", "Split", "Post-processing", "Images", "mIoU (%)", "Boundary mIoU (%)",
            "Per-image counts", "Env.", "Evaluated (UTC)", "Inference-time protocol")  # fmt: skip
    rows = []
    for row in records:
        if row.miou is None:
            continue
        how = protocol_text(dict(row.protocol)) if row.protocol else "not timed"
        if row.crf_params:
            how += "; CRF " + ", ".join(f"{k}={v}" for k, v in sorted(row.crf_params.items()))
        cells = (
            row.run, row.split, row.postprocess, row.num_images,
            _percent(row.miou), _percent(row.boundary_miou),
            "yes" if row.image_counts is not None else "no (re-run rmi eval)",
            ids.get(_environment_key(row), "?"), _when(row.evaluated_at), how,
        )  # fmt: skip
        rows.append(cells)
    return _section(
        "protocol",
        "Protocol and environment of every number",
        "Each evaluation the tables summarise; the environments it ran in are listed below.",
        head,
        rows,
    )


def environment_section(records: Sequence[EvaluationRecord]) -> str:
    ids = environment_ids(records)
    environments = {}
    for row in records:
        key = _environment_key(row)
        if key and row.environment:
            environments[ids[key]] = row.environment
    rows = [(name, *(env.get(k) for k in ENVIRONMENT_FIELDS)) for name, env in environments.items()]
    return _section("environments", "Environments", "", ("Env.", *ENVIRONMENT_FIELDS), rows)


def _section(
    anchor: str, title: str, lead: str, head: Sequence[str], rows: Sequence[Sequence[Any]]
) -> str:
    header = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "\n".join(
        "<tr>" + "".join(f"<td>{html.escape(_text(v))}</td>" for v in row) + "</tr>" for row in rows
    )
    lead_html = f"<p>{html.escape(lead)}</p>" if lead else ""
    return (
        f'<section id="{anchor}"><h2>{html.escape(title)}</h2>{lead_html}'
        f'<div class="table"><table class="rmi"><thead><tr>{header}</tr></thead>'
        f"<tbody>\n{body}\n</tbody></table></div></section>"
    )


def _percent(value: Any) -> str:
    return "n/a: re-run rmi eval" if value is None else f"{100 * float(value):.2f}"


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if hasattr(value, "strftime") else _text(value)


def _text(value: Any) -> str:
    return "—" if value is None else str(value)
