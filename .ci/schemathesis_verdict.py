"""The verdict of .ci/schemathesis: compares what Schemathesis found with the
expected-failures list.

    python3 schemathesis_verdict.py EXPECTED_FILE BACKEND=RUN_DIR [BACKEND=RUN_DIR ...]

Each RUN_DIR holds the reports of one run: report.json (did the run finish,
without errors), report.ndjson (every check of every case, with its name and
operation) and junit.xml (the curl command reproducing each failing case).

A failure is a (check, operation) pair with at least one failing case. It is
expected when a line of EXPECTED_FILE names that check and matches that
operation; anything else fails the verdict, and so does a run that did not
finish or had errors. An expected line that matched nothing on any backend is
reported as stale, so it can be removed (not fatal: a bounded run may simply
not have hit it). `not_a_server_error` can never be expected.

Exit status: 0 when every failure is expected, 1 otherwise, 2 when the
expected list or the reports cannot be read.
"""

from __future__ import annotations

import fnmatch
import json
import re
import sys
import xml.etree.ElementTree as ElementTree
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

NEVER_EXPECTED = {"not_a_server_error"}
METHODS = {"GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE", "*"}


@dataclass
class Expected:
    line: int
    check: str
    method: str
    path: str
    reason: str
    matched: dict[str, int] = field(default_factory=dict)

    def matches(self, check: str, operation: str) -> bool:
        method, _, path = operation.partition(" ")
        return (
            check == self.check
            and (self.method == "*" or self.method == method)
            and fnmatch.fnmatchcase(path, self.path)
        )

    def __str__(self) -> str:
        return f"{self.check} {self.method} {self.path}"


@dataclass
class Finding:
    cases: int = 0
    example_id: str | None = None
    status: int | None = None
    message: str = ""


def fail_usage(message: str) -> None:
    print(f"schemathesis verdict: {message}", file=sys.stderr)
    sys.exit(2)


def read_expected(path: Path) -> list[Expected]:
    entries = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 3)
        if len(parts) < 4:
            fail_usage(f"{path}:{number}: want `check METHOD /path reason`, got {raw!r}")
        check, method, op_path, reason = parts
        if check in NEVER_EXPECTED:
            fail_usage(f"{path}:{number}: {check} can never be an expected failure: a 500 always fails the run")
        if method not in METHODS or not op_path.startswith("/"):
            fail_usage(f"{path}:{number}: {method} {op_path} is not `METHOD /path` (`*` and globs allowed)")
        if not re.search(r"\bissue \d+", reason):
            fail_usage(f"{path}:{number}: the reason must name the issue that fixes it (`issue N: ...`)")
        entries.append(Expected(number, check, method, op_path, reason))
    return entries


def curl_commands(junit: Path) -> dict[str, str]:
    """Test case id -> the curl command Schemathesis printed for it."""
    commands: dict[str, str] = {}
    if not junit.exists():
        return commands
    for failure in ElementTree.parse(junit).iter("failure"):
        text = failure.text or ""
        for block in re.split(r"\n(?=\d+\. Test Case ID: )", "\n" + text):
            found = re.match(r"\d+\. Test Case ID: (\S+)", block)
            # A stateful case lists every request of its sequence, the failing one last.
            curl = re.search(r"Reproduce with:\s*\n\s*\n((?:[ \t]*curl .*\n?)+)", block)
            if found and curl:
                lines = [line.strip() for line in curl.group(1).splitlines() if line.strip()]
                commands.setdefault(found.group(1), "\n        ".join(lines))
    return commands


def read_run(run_dir: Path) -> tuple[dict, dict[tuple[str, str], Finding], int, set[str]]:
    """The run's summary, its failures by (check, operation), its number of cases, the operations tested."""
    try:
        summary = json.loads((run_dir / "report.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        fail_usage(f"{run_dir}/report.json: {error}")
    findings: dict[tuple[str, str], Finding] = defaultdict(Finding)
    cases = 0
    operations: set[str] = set()
    try:
        ndjson = (run_dir / "report.ndjson").open(encoding="utf-8")
    except OSError as error:
        fail_usage(f"{run_dir}/report.ndjson: {error}")
    with ndjson:
        for line in ndjson:
            event = json.loads(line).get("ScenarioFinished")
            if not event:
                continue
            recorder = event["recorder"]
            cases += len(recorder.get("cases", {}))
            if event.get("phase") != "stateful" and " /" in recorder.get("label", ""):
                operations.add(recorder["label"])
            for case_id, checks in recorder.get("checks", {}).items():
                case = recorder["cases"].get(case_id, {}).get("value", {})
                for check in checks:
                    if check.get("status") != "failure":
                        continue
                    failure = (check.get("failure_info") or {}).get("failure") or {}
                    operation = failure.get("operation") or f"{case.get('method')} {case.get('path')}"
                    finding = findings[(check["name"], operation)]
                    finding.cases += 1
                    if finding.example_id is None:
                        response = (recorder.get("interactions", {}).get(case_id) or {}).get("response") or {}
                        finding.example_id = case.get("id")
                        finding.status = response.get("status_code")
                        title = failure.get("title", "")
                        detail = failure.get("message", "").strip().splitlines()
                        finding.message = title + (f": {detail[0]}" if detail else "")
    return summary, findings, cases, operations


def main(argv: list[str]) -> int:
    if len(argv) < 2 or any("=" not in arg for arg in argv[1:]):
        fail_usage("usage: schemathesis_verdict.py EXPECTED_FILE BACKEND=RUN_DIR ...")
    expected_path = Path(argv[0])
    expected = read_expected(expected_path)
    bad = False
    passed = failed = 0
    for arg in argv[1:]:
        backend, _, directory = arg.partition("=")
        run_dir = Path(directory)
        summary, findings, cases, operations = read_run(run_dir)
        failing: set[str] = set()
        curls = curl_commands(run_dir / "junit.xml")
        print(f"\n=== schemathesis on {backend}: {cases} cases, {summary.get('running_time', 0):.0f} s")
        if not summary.get("complete") or summary.get("stop_reason") != "completed":
            print(f"FAIL  the run did not finish (stop reason: {summary.get('stop_reason')})")
            bad = True
        for error in summary.get("errors") or []:
            print(f"FAIL  error: {error.get('title')} (x{error.get('count')})")
            bad = True
        if not findings:
            print("ok    no check failed")
        for (check, operation), finding in sorted(findings.items(), key=lambda item: (item[0][0] not in NEVER_EXPECTED, item[0])):
            entry = next((entry for entry in expected if entry.matches(check, operation)), None)
            head = f"{check}  {operation}  ({finding.cases} case{'s' if finding.cases != 1 else ''}; first: [{finding.status}] {finding.message})"
            if entry is not None:
                entry.matched[backend] = entry.matched.get(backend, 0) + finding.cases
                print(f"xfail {head}\n        expected ({expected_path.name}:{entry.line}): {entry.reason}")
            else:
                bad = True
                failing.add(operation)
                print(f"FAIL  {head}")
            curl = curls.get(finding.example_id or "")
            if curl and entry is None:
                print(f"        {curl}")
        operations |= {operation for _, operation in findings}
        if not summary.get("complete") or summary.get("errors"):
            failing = operations
        passed += len(operations - failing)
        failed += len(operations & failing)
    stale = [entry for entry in expected if not entry.matched]
    if stale:
        print(f"\n=== expected failures that did not fail on any backend (remove them from {expected_path.name} once fixed):")
        for entry in stale:
            print(f"stale {expected_path.name}:{entry.line}: {entry}  ({entry.reason})")
    print("\n" + ("unexpected failures, see FAIL above" if bad else "every failure is expected"))
    # The plain closing line CI reads: operations (per backend) without an unexpected failure.
    print(f"schemathesis: {passed} passed, {failed} failed")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
