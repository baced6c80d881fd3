"""Offline checks of the Bicep templates, run with the interpreter of `.venv-infra`.

No Bicep compiler can be installed here, so the templates are read by two independent parsers:

* tree-sitter-bicep, a complete Bicep grammar that reports every syntax error with its position;
* pycep-parser, the parser checkov itself uses: if it cannot read a file, checkov silently scans
  nothing ("Parsing errors: 1" and exit code 0), so a file it rejects is an error here too.

Subcommands (each exits 1 on any problem, naming the file, line and column):

    syntax FILE...      both parsers over every file
    json FILE...        print {file: pycep's dict of the template} as JSON, for the tests
    yaml FILE           print a YAML file as JSON (azure.yaml, the skip list), for the tests
    checkov DIR SKIPS   run checkov over DIR; fail on a parsing error, on a finding that SKIPS does
                        not justify, on a skip without a reason, and on a skip that no longer fires

The third-party modules are imported by name at run time: the main `.venv`, where mypy and ruff
check this file, does not have them.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Problem:
    path: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: {self.message}"


def _tree_sitter_problems(path: str, source: bytes) -> list[Problem]:
    tree_sitter = importlib.import_module("tree_sitter")
    grammar = importlib.import_module("tree_sitter_bicep")
    parser = tree_sitter.Parser(tree_sitter.Language(grammar.language()))
    tree = parser.parse(source)
    problems: list[Problem] = []

    def walk(node: Any) -> Iterator[Any]:
        yield node
        for child in node.children:
            yield from walk(child)

    for node in walk(tree.root_node):
        if node.is_missing:
            message = f"syntax error: missing {node.type!r}"
        elif node.is_error:
            snippet = source[node.start_byte : node.end_byte].decode(errors="replace")
            first_line = snippet.strip().splitlines()[0] if snippet.strip() else ""
            message = f"syntax error near {first_line[:60]!r}"
        else:
            continue
        row, column = node.start_point
        problems.append(Problem(path, row + 1, column + 1, f"{message} (tree-sitter-bicep)"))
    return problems


def _pycep_parse(text: str) -> dict[str, Any]:
    pycep = importlib.import_module("pycep")
    parsed: dict[str, Any] = pycep.BicepParser().parse(text=text)
    return parsed


def _pycep_problem(path: str, text: str) -> Problem | None:
    try:
        _pycep_parse(text)
    except Exception as exc:
        line = getattr(exc, "line", 0) or 0
        column = getattr(exc, "column", 0) or 0
        summary = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return Problem(path, line, column, f"{summary} (pycep-parser, which checkov uses)")
    return None


def syntax(paths: list[str]) -> int:
    problems: list[Problem] = []
    for path in paths:
        source = Path(path).read_bytes()
        if not source.strip():
            problems.append(Problem(path, 1, 1, "empty template"))
            continue
        problems.extend(_tree_sitter_problems(path, source))
        pycep_problem = _pycep_problem(path, source.decode())
        if pycep_problem is not None:
            problems.append(pycep_problem)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 1
    print(f"bicep syntax: {len(paths)} file(s) parse cleanly")
    return 0


def dump_json(paths: list[str]) -> int:
    parsed = {path: _pycep_parse(Path(path).read_text()) for path in paths}
    json.dump(parsed, sys.stdout, default=str)
    return 0


def dump_yaml(path: str) -> int:
    yaml = importlib.import_module("yaml")
    json.dump(yaml.safe_load(Path(path).read_text()), sys.stdout, default=str)
    return 0


def _load_skips(path: str) -> tuple[dict[str, str], list[str]]:
    yaml = importlib.import_module("yaml")
    raw = yaml.safe_load(Path(path).read_text()) or {}
    errors: list[str] = []
    if not isinstance(raw, dict):
        return {}, [f"{path}: expected a mapping of check id to reason"]
    skips: dict[str, str] = {}
    for check_id, reason in raw.items():
        if not isinstance(reason, str) or len(reason.split()) < 5:
            errors.append(f"{path}: {check_id} needs a reason (a sentence, not a word)")
        else:
            skips[str(check_id)] = reason
    return skips, errors


def _checkov_reports(output: str) -> list[dict[str, Any]]:
    data = json.loads(output)
    reports = data if isinstance(data, list) else [data]
    return [report for report in reports if isinstance(report, dict)]


def run_checkov(directory: str, skips_path: str) -> int:
    skips, errors = _load_skips(skips_path)
    env = dict(os.environ, BC_SKIP_MAPPING="TRUE", CHECKOV_RUN_SCA_PACKAGE_SCAN_V2="false")
    checkov = Path(sys.executable).with_name("checkov")
    completed = subprocess.run(
        [
            str(checkov),
            "--directory",
            directory,
            "--framework",
            "bicep",
            "--output",
            "json",
            "--skip-download",  # offline: no Prisma Cloud guidelines or policies
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    try:
        reports = _checkov_reports(completed.stdout)
    except json.JSONDecodeError:
        print(completed.stdout[-2000:], completed.stderr[-2000:], sep="\n", file=sys.stderr)
        print("checkov: no JSON report", file=sys.stderr)
        return 1

    parsing_errors: list[str] = []
    failed: list[dict[str, Any]] = []
    passed: set[str] = set()
    for report in reports:
        results = report.get("results", {})
        parsing_errors.extend(results.get("parsing_errors", []))
        failed.extend(results.get("failed_checks", []))
        passed.update(check["check_id"] for check in results.get("passed_checks", []))
    if not passed and not failed:
        errors.append(f"checkov found nothing to check in {directory}")

    for path in parsing_errors:
        errors.append(f"checkov could not parse {path}: it would scan nothing in it")
    fired: set[str] = set()
    for finding in failed:
        check_id = finding["check_id"]
        fired.add(check_id)
        if check_id not in skips:
            start = finding.get("file_line_range", [0])[0]
            errors.append(
                f"{finding['file_path'].lstrip('/')}:{start}: {check_id} {finding['check_name']}"
                f" ({finding['resource']}) -- fix it, or justify it in {skips_path}"
            )
    for check_id in sorted(set(skips) - fired):
        errors.append(f"{skips_path}: {check_id} no longer fires; remove the skip")

    for error in errors:
        print(error, file=sys.stderr)
    if errors:
        return 1
    print(f"checkov passed: {' '.join(sorted(passed))}")
    print(f"checkov accepted (justified in {skips_path}): {' '.join(sorted(fired)) or 'none'}")
    print("checkov parsing errors: 0")
    return 0


def main(argv: list[str]) -> int:
    usage = "usage: bicep_check.py {syntax FILE...|json FILE...|yaml FILE|checkov DIR SKIPS}"
    if len(argv) < 2:
        print(usage, file=sys.stderr)
        return 2
    command, args = argv[0], argv[1:]
    if command == "syntax":
        return syntax(args)
    if command == "json":
        return dump_json(args)
    if command == "yaml" and len(args) == 1:
        return dump_yaml(args[0])
    if command == "checkov" and len(args) == 2:
        return run_checkov(args[0], args[1])
    print(usage, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
