#!/usr/bin/env python3
"""Static checks of the Terraform tree that need no Terraform binary and no cloud account.

1. Every `.tf` file parses (python-hcl2).
2. Every `variable` and `output` has a non-empty `description`.
3. Every folder with variables or outputs (modules and environments) has a README.md whose
   generated "Inputs" and "Outputs" tables are current: run with `--write-docs` to
   regenerate them after changing variables or outputs.
4. Every `checkov:skip` comment names a check and gives a reason.

Exit status 0 when everything passes, 1 with one line per problem otherwise.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import hcl2

BEGIN = "<!-- BEGIN GENERATED: inputs and outputs (infra/checks/check_terraform.py --write-docs) -->"
END = "<!-- END GENERATED -->"
SKIP = re.compile(r"checkov:skip=([^\s:]*)(?::(.*))?")
CHECK_ID = re.compile(r"^CKV2?_[A-Z0-9]+_\d+$")
MIN_REASON = 10


@dataclass
class Item:
    """One `variable` or `output` block as the docs table shows it."""

    name: str
    description: str
    type: str = ""
    default: str = ""
    required: bool = False
    sensitive: bool = False


@dataclass
class Folder:
    """A Terraform folder: its variables and outputs, in file order."""

    path: Path
    variables: list[Item] = field(default_factory=list)
    outputs: list[Item] = field(default_factory=list)


def unquote(value: object) -> str:
    """python-hcl2 keeps string literals quoted and wraps expressions in `${…}`."""
    text = str(value)
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        return text[1:-1].replace('\\"', '"')
    if text.startswith("${") and text.endswith("}"):
        return text[2:-1]
    return text


def render(value: object) -> str:
    """A default value as HCL-ish text for the table."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, dict):
        inner = ", ".join(
            f"{unquote(k)} = {render(v)}" for k, v in value.items() if not str(k).startswith("__")
        )
        return "{" + inner + "}"
    if isinstance(value, list):
        return "[" + ", ".join(render(v) for v in value) + "]"
    text = str(value)
    if text.startswith("${") and text.endswith("}"):
        return text[2:-1]
    return text


def blocks(doc: dict, kind: str):
    """(name, body) of every `kind "name" { … }` block in a parsed file."""
    for entry in doc.get(kind, []):
        for raw_name, body in entry.items():
            yield unquote(raw_name), body


def load(root: Path, problems: list[str]) -> dict[Path, Folder]:
    folders: dict[Path, Folder] = {}
    for tf in sorted(root.rglob("*.tf")):
        if ".terraform" in tf.parts:
            continue
        rel = tf.relative_to(root.parent)
        try:
            with tf.open(encoding="utf-8") as f:
                doc = hcl2.load(f)
        except Exception as e:  # the parser raises several unrelated types
            problems.append(f"{rel}: does not parse: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
            continue
        folder = folders.setdefault(tf.parent, Folder(tf.parent))
        for name, body in blocks(doc, "variable"):
            description = unquote(body.get("description", "")).strip()
            if not description:
                problems.append(f"{rel}: variable \"{name}\" has no description")
            folder.variables.append(
                Item(
                    name=name,
                    description=description,
                    type=render(body["type"]) if "type" in body else "any",
                    default=render(body["default"]) if "default" in body else "",
                    required="default" not in body,
                    sensitive=body.get("sensitive") in (True, "true"),
                )
            )
        for name, body in blocks(doc, "output"):
            description = unquote(body.get("description", "")).strip()
            if not description:
                problems.append(f"{rel}: output \"{name}\" has no description")
            folder.outputs.append(
                Item(name=name, description=description, sensitive=body.get("sensitive") in (True, "true"))
            )
    return folders


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def docs_section(folder: Folder) -> str:
    lines = [BEGIN, ""]
    if folder.variables:
        lines += ["### Inputs", "", "| name | description | type | default |", "|---|---|---|---|"]
        for v in folder.variables:
            default = "required" if v.required else f"`{cell(v.default)}`"
            name = f"`{v.name}`" + (" (sensitive)" if v.sensitive else "")
            lines.append(f"| {name} | {cell(v.description)} | `{cell(v.type)}` | {default} |")
        lines.append("")
    if folder.outputs:
        lines += ["### Outputs", "", "| name | description |", "|---|---|"]
        for o in folder.outputs:
            name = f"`{o.name}`" + (" (sensitive)" if o.sensitive else "")
            lines.append(f"| {name} | {cell(o.description)} |")
        lines.append("")
    lines.append(END)
    return "\n".join(lines)


def check_docs(root: Path, folders: dict[Path, Folder], write: bool, problems: list[str]) -> None:
    for path, folder in sorted(folders.items()):
        if not folder.variables and not folder.outputs:
            continue
        readme = path / "README.md"
        rel = readme.relative_to(root.parent)
        wanted = docs_section(folder)
        text = readme.read_text(encoding="utf-8") if readme.exists() else ""
        if BEGIN in text and END in text:
            start = text.index(BEGIN)
            end = text.index(END) + len(END)
            current = text[start:end]
            updated = text[:start] + wanted + text[end:]
        else:
            current = None
            updated = (text.rstrip() + "\n\n" if text else f"# {path.name}\n\n") + wanted + "\n"
        if current == wanted:
            continue
        if write:
            readme.write_text(updated, encoding="utf-8")
            print(f"wrote {rel}")
            continue
        if not readme.exists():
            problems.append(f"{rel}: missing (run infra/checks/check_terraform.py --write-docs)")
        elif current is None:
            problems.append(f"{rel}: has no generated inputs/outputs table (run --write-docs)")
        else:
            names = {i.name for i in folder.variables + folder.outputs}
            missing = sorted(n for n in names if f"`{n}`" not in current)
            detail = f"; not documented: {', '.join(missing)}" if missing else ""
            problems.append(f"{rel}: inputs/outputs table is out of date{detail} (run --write-docs)")


def check_skips(root: Path, problems: list[str]) -> None:
    """Each skip must be `#checkov:skip=CKV_…:reason` with a reason a reviewer can judge."""
    files = [p for p in root.rglob("*.tf") if ".terraform" not in p.parts]
    dockerfile = root.parent / "Dockerfile"
    if dockerfile.exists():
        files.append(dockerfile)
    for path in sorted(files):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            m = SKIP.search(line)
            if not m:
                continue
            rel = path.relative_to(root.parent)
            check, reason = m.group(1), (m.group(2) or "").strip()
            if not CHECK_ID.match(check):
                problems.append(f"{rel}:{n}: checkov:skip names no check id (CKV_… or CKV2_…): {line.strip()}")
            elif len(reason) < MIN_REASON:
                problems.append(f"{rel}:{n}: checkov:skip={check} needs a reason after a colon")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", default="terraform", type=Path, help="Terraform tree (default: terraform)")
    parser.add_argument("--write-docs", action="store_true", help="regenerate the README tables instead of checking them")
    args = parser.parse_args()
    root: Path = args.root.resolve()
    if not root.is_dir():
        print(f"{args.root} is not a folder", file=sys.stderr)
        return 2
    problems: list[str] = []
    folders = load(root, problems)
    check_docs(root, folders, args.write_docs, problems)
    check_skips(root, problems)
    files = sum(1 for p in root.rglob("*.tf") if ".terraform" not in p.parts)
    variables = sum(len(f.variables) for f in folders.values())
    outputs = sum(len(f.outputs) for f in folders.values())
    for p in problems:
        print(f"  {p}")
    print(
        f"terraform: {files} files, {variables} variables, {outputs} outputs checked; "
        f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
