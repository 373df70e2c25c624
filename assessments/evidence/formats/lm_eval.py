"""EleutherAI lm-evaluation-harness ``results_<timestamp>.json`` (``--output_path``).

v0.4 files carry ``results``, ``versions``, ``n-samples``, ``config``, ``task_hashes``,
``date`` and more; the old format (≤ v0.3, still used as test data upstream) has only
``results`` and ``versions``. There are no pass/fail counts: a harness run reports metric
values per task, so the facts are ``score:<task>/<metric,filter>`` and ``total`` (samples
evaluated, from ``n-samples``, v0.4 only). Standard errors go to details, not metrics.
"""

from __future__ import annotations

from typing import Any

from assessments.evidence.connectors.base import Facts
from assessments.evidence.formats._common import FormatError, as_int, canonical, fingerprint, iso_time, number, obj

NAME = "lm_eval"
LABEL = "lm-evaluation-harness results"
HINTS = ('"n-samples"', '"higher_is_better"', '"group_subtasks"', '"task_hashes"')


def sniff(doc: Any) -> bool:
    if (
        not isinstance(doc, dict)
        or not isinstance(doc.get("results"), dict)
        or not isinstance(doc.get("versions"), dict)
    ):
        return False
    return all(isinstance(task, dict) for task in doc["results"].values())


def parse(doc: dict[str, Any]) -> Facts:
    metrics: dict[str, float] = {}
    stderr: dict[str, float] = {}
    for task, values in doc["results"].items():
        for key, value in values.items():
            score = number(value)
            if key == "alias" or score is None:
                continue
            target = stderr if "_stderr" in key.split(",")[0] else metrics
            target[f"score:{task}/{key}"] = score
    if not metrics:
        raise FormatError("This looks like lm-evaluation-harness results but no task reports a numeric metric.")
    samples = obj(doc.get("n-samples"))
    effective = [
        count
        for count in (as_int(obj(counts).get("effective", obj(counts).get("original"))) for counts in samples.values())
        if count is not None
    ]
    if effective:
        metrics["total"] = float(sum(effective))
    config = obj(doc.get("config"))
    tasks = sorted(doc["results"])
    hashes = obj(doc.get("task_hashes"))
    identity = (
        [f"{task}:{digest}" for task, digest in hashes.items()]
        if hashes
        else [f"{task}:{canonical(doc['versions'].get(task))}:{canonical(samples.get(task))}" for task in tasks]
    )
    version = doc.get("lm_eval_version")
    details: dict[str, Any] = {
        "format": NAME,
        "format_label": LABEL if "config" in doc else f"{LABEL} (old minimal format)",
        "model": doc.get("model_name") or (config.get("model_args") if isinstance(config, dict) else None),
        "model_backend": config.get("model") if isinstance(config, dict) else None,
        "git_hash": doc.get("git_hash"),
        "task_versions": doc["versions"],
        "stderr": stderr,
        "dataset": {
            "name": ", ".join(tasks),
            "tasks": tasks,
            "samples": {task: counts.get("effective") for task, counts in samples.items() if isinstance(counts, dict)},
            "fingerprint": fingerprint(identity),
            "fingerprint_from": "task_hashes" if hashes else "task names, versions and sample counts",
        },
    }
    if version:
        details["tool_version"] = version
    run_at = iso_time(doc.get("date"))
    if run_at:
        details["run_at"] = run_at
    first_key = next(iter(metrics))
    head = f"{first_key.removeprefix('score:')} = {metrics[first_key]:.3f}"
    more = len([k for k in metrics if k.startswith("score:")]) - 1
    summary = head + (f" and {more} more metrics" if more > 0 else "")
    if "total" in metrics:
        summary += f" over {int(metrics['total'])} samples"
    tool = "lm-evaluation-harness" + (
        f" {version}" if version else (f" (git {doc['git_hash']})" if doc.get("git_hash") else "")
    )
    return Facts(metrics=metrics, details=details, summary=f"{summary} — {tool}")
