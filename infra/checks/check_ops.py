#!/usr/bin/env python3
"""Static checks that the operations files agree with the platform and with the runbook.

1. Every `CAMPUS_*` environment variable named in terraform/, infra/ and the Dockerfile is
   a setting of `campus` (a field of `Config` in services/api/src/config.rs) or one of the
   helper variables the tools read.
2. The Prometheus rule files (infra/prometheus/*.yml) parse, every alert has a `runbook`
   annotation, and every metric the rules and the Grafana dashboards use is one the
   platform registers (a `"campus_…"` name in services/, histograms with their
   `_bucket`/`_sum`/`_count` series).
3. Every `RUNBOOK.md#anchor` link (alarm descriptions, rule annotations, the runbook's own
   links) names a heading of infra/RUNBOOK.md.

Needs PyYAML (run with the checkov virtual environment's Python, which has it).
Exit status 0 when everything passes, 1 with one line per problem otherwise.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
# `CAMPUS_*` variables that are not settings (Config::unknown_env_vars keeps the same list).
HELPERS = {"CONFIG", "TEST_DATABASE_URL", "TEST_PGDATA", "PG_BINDIR", "PGBOUNCER", "SCREENSHOTS"}
ENV_NAME = re.compile(r"\bCAMPUS_([A-Z][A-Z0-9_]*[A-Z0-9])\b")
METRIC = re.compile(r"\bcampus_[a-z0-9_]+\b")
ANCHOR_LINK = re.compile(r"RUNBOOK\.md#([A-Za-z0-9_-]+)")


def settings(problems: list[str]) -> set[str]:
    """Field names of `pub struct Config`."""
    path = ROOT / "services/api/src/config.rs"
    text = path.read_text(encoding="utf-8")
    m = re.search(r"pub struct Config \{(.*?)\n\}", text, re.S)
    if not m:
        problems.append(f"{path.relative_to(ROOT)}: `pub struct Config` not found")
        return set()
    return set(re.findall(r"^\s*pub ([a-z][a-z0-9_]*):", m.group(1), re.M))


def ops_files() -> list[Path]:
    files = [ROOT / "Dockerfile"]
    for top in ("terraform", "infra"):
        for p in sorted((ROOT / top).rglob("*")):
            if p.is_file() and ".terraform" not in p.parts and p.suffix != ".pyc":
                files.append(p)
    return files


def ops_lines():
    """(file, line number, line) of every text file of ops_files() but this checker."""
    for path in ops_files():
        if path.name == "check_ops.py":
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for n, line in enumerate(text.splitlines(), 1):
            yield path, n, line


def check_env_names(problems: list[str]) -> int:
    known = settings(problems)
    if not known:
        return 0
    seen = 0
    for path, n, line in ops_lines():
        for name in ENV_NAME.findall(line):
            seen += 1
            if name not in HELPERS and name.lower() not in known:
                problems.append(
                    f"{path.relative_to(ROOT)}:{n}: CAMPUS_{name} is not a setting of campus "
                    "(services/api/src/config.rs); campus would ignore it"
                )
    return seen


def exported_metrics() -> set[str]:
    names: set[str] = set()
    for rs in (ROOT / "services").rglob("*.rs"):
        if "target" in rs.parts:
            continue
        for name in re.findall(r'"(campus_[a-z0-9_]+)"', rs.read_text(encoding="utf-8")):
            names.add(name)
            # Histograms also expose these series.
            names.update({f"{name}_bucket", f"{name}_sum", f"{name}_count"})
    return names


def runbook_anchors() -> set[str]:
    """GitHub's anchors of every heading of infra/RUNBOOK.md."""
    anchors: set[str] = set()
    counts: dict[str, int] = {}
    text = (ROOT / "infra/RUNBOOK.md").read_text(encoding="utf-8")
    in_code = False
    for line in text.splitlines():
        if line.startswith("```"):
            in_code = not in_code
            continue
        m = None if in_code else re.match(r"^#{1,6} (.*)$", line)
        if not m:
            continue
        slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
        n = counts.get(slug, 0)
        counts[slug] = n + 1
        anchors.add(slug if n == 0 else f"{slug}-{n}")
    return anchors


def check_rules(problems: list[str], metrics: set[str], anchors: set[str]) -> int:
    alerts = 0
    for path in sorted((ROOT / "infra/prometheus").glob("*.y*ml")):
        rel = path.relative_to(ROOT)
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as e:
            problems.append(f"{rel}: does not parse: {str(e).splitlines()[0]}")
            continue
        for group in (doc or {}).get("groups", []):
            for rule in group.get("rules", []):
                name = rule.get("alert") or rule.get("record") or "?"
                alerts += 1 if "alert" in rule else 0
                for metric in METRIC.findall(str(rule.get("expr", ""))):
                    if metric not in metrics:
                        problems.append(f"{rel}: {name}: metric {metric} is not exported by the platform")
                if "alert" in rule:
                    runbook = (rule.get("annotations") or {}).get("runbook", "")
                    m = ANCHOR_LINK.search(runbook)
                    if not m:
                        problems.append(f"{rel}: {name}: no `runbook: infra/RUNBOOK.md#…` annotation")
                    elif m.group(1) not in anchors:
                        problems.append(f"{rel}: {name}: infra/RUNBOOK.md has no section #{m.group(1)}")
    return alerts


def check_dashboards(problems: list[str], metrics: set[str]) -> None:
    for path in sorted((ROOT / "infra/grafana").glob("*.json")):
        rel = path.relative_to(ROOT)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            problems.append(f"{rel}: does not parse: {e}")
            continue
        for metric in sorted(set(METRIC.findall(json.dumps(doc)))):
            if metric not in metrics:
                problems.append(f"{rel}: metric {metric} is not exported by the platform")


def check_links(problems: list[str], anchors: set[str]) -> None:
    for path, n, line in ops_lines():
        for anchor in ANCHOR_LINK.findall(line):
            if anchor not in anchors:
                problems.append(f"{path.relative_to(ROOT)}:{n}: infra/RUNBOOK.md has no section #{anchor}")
    runbook = (ROOT / "infra/RUNBOOK.md").read_text(encoding="utf-8")
    for n, line in enumerate(runbook.splitlines(), 1):
        for anchor in re.findall(r"\]\(#([^)]+)\)", line):
            if anchor not in anchors:
                problems.append(f"infra/RUNBOOK.md:{n}: link to #{anchor}, which is no heading")


def main() -> int:
    problems: list[str] = []
    names = check_env_names(problems)
    metrics = exported_metrics()
    anchors = runbook_anchors()
    alerts = check_rules(problems, metrics, anchors)
    check_dashboards(problems, metrics)
    check_links(problems, anchors)
    for p in problems:
        print(f"  {p}")
    print(
        f"ops: {names} CAMPUS_* references, {alerts} alerts, {len(anchors)} runbook sections checked; "
        f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
