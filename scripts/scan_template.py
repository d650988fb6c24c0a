#!/usr/bin/env python3
"""Run the template scanners, checkov and cfn-lint's serverless rules, against the answers.

Usage (make lint-template runs it, stage `scanners`, with the scanners' own venv):

    .venv-scan/bin/python scripts/scan_template.py [--template template.yaml] [--guide docs/deploying.md]

The answers are the table under "### The answers" in the deploying guide's "## Security review"
section: a row whose first cell is one check id in backticks (`CKV_AWS_117`, `WS1000`) answers
that check for every resource it fires on. checkov ids (`CKV_…`, `CKV2_…`) go to checkov, every
other id to cfn-lint. Both scanners run once over the whole template, with nothing skipped, and:

- a finding whose check has no row fails (fix the template, or answer the check in the guide);
- a row whose check no longer fires fails too (remove the row), so the table stays exactly what
  the scanners report.

checkov and cfn-lint are the ones beside this interpreter (the venv's bin/). checkov runs
offline: nothing is downloaded from its vendor (--skip-download, BC_SKIP_MAPPING). One summary
line per scanner is printed; the exit status is 1 if anything is unanswered or stale.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SECTION = "## Security review"
ANSWERS = "### The answers"
ROW = re.compile(r"^\|\s*`([A-Z][A-Z0-9_]+)`\s*\|")
CHECKOV_ID = re.compile(r"^CKV2?_")


def answered(guide: Path) -> dict[str, set[str]]:
    """The check ids the guide answers, by scanner ("checkov", "cfn-lint")."""
    text = guide.read_text(encoding="utf-8")
    start = text.find("\n" + SECTION + "\n")
    if start < 0:
        sys.exit(f"scan: {guide.relative_to(ROOT)} has no '{SECTION}' section")
    end = text.find("\n## ", start + 1)
    section = text[start : end if end >= 0 else len(text)]
    table = section.find("\n" + ANSWERS + "\n")
    if table < 0:
        sys.exit(f"scan: '{SECTION}' has no '{ANSWERS}' table")
    ids: dict[str, set[str]] = {"checkov": set(), "cfn-lint": set()}
    for line in section[table:].splitlines():
        match = ROW.match(line)
        if match:
            check = match.group(1)
            scanner = "checkov" if CHECKOV_ID.match(check) else "cfn-lint"
            if check in ids[scanner]:
                sys.exit(f"scan: {check} is answered twice")
            ids[scanner].add(check)
    return ids


def run(command: list[str], env: dict[str, str] | None = None) -> str:
    """A scanner's standard output (its exit status says only whether it found anything)."""
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env)
    if not done.stdout.strip():
        sys.stderr.write(done.stderr)
        sys.exit(f"scan: {' '.join(command)} printed nothing (exit {done.returncode})")
    return done.stdout


def checkov(template: str) -> list[tuple[str, str, str]]:
    """checkov's failed checks: (id, resource, where)."""
    env = dict(os.environ, BC_SKIP_MAPPING="TRUE", LOG_LEVEL="ERROR")
    out = run(
        [str(BIN / "checkov"), "-f", template, "--framework", "cloudformation", "--skip-download", "--quiet",
         "--output", "json"],
        env,
    )
    report = json.loads(out)
    reports = report if isinstance(report, list) else [report]
    if not reports or any("results" not in r for r in reports):
        sys.exit(f"scan: checkov scanned nothing: {out[:200]}")
    if any(r.get("summary", {}).get("parsing_errors", 0) for r in reports):
        sys.exit("scan: checkov could not parse the template")
    return [
        (f["check_id"], f["resource"], f"{template}:{f['file_line_range'][0]}")
        for r in reports
        for f in r["results"]["failed_checks"]
    ]


def cfn_lint(template: str) -> list[tuple[str, str, str]]:
    """cfn-lint's findings with the serverless rules added: (id, message, where)."""
    out = run([str(BIN / "cfn-lint"), "--format", "json", template, "--append-rules", "cfn_lint_serverless.rules"])
    return [
        (m["Rule"]["Id"], m["Message"], f"{template}:{m['Location']['Start']['LineNumber']}")
        for m in json.loads(out)
    ]


def judge(name: str, findings: list[tuple[str, str, str]], answers: set[str], guide: str) -> bool:
    """Print the scanner's verdict; True when every finding is answered and every answer fires."""
    fired = {check for check, _, _ in findings}
    unanswered = [f for f in findings if f[0] not in answers]
    stale = sorted(answers - fired)
    for check, what, where in unanswered:
        print(f"scan: {name}: {check} {what} ({where}) is not answered: fix it, or answer it in {guide}")
    for check in stale:
        print(f"scan: {name}: {check} is answered in {guide} but no longer fires: remove its row")
    ok = not unanswered and not stale
    print(f"scan: {name}: {len(findings)} findings of {len(fired)} checks"
          + (", every one answered" if ok else f", {len(unanswered)} unanswered, {len(stale)} answers stale"))
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--template", default="template.yaml")
    parser.add_argument("--guide", default="docs/deploying.md")
    args = parser.parse_args()
    answers = answered(ROOT / args.guide)
    guide = f"{args.guide} ({SECTION[3:]})"
    ok = judge("checkov", checkov(args.template), answers["checkov"], guide)
    ok = judge("cfn-lint-serverless", cfn_lint(args.template), answers["cfn-lint"], guide) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
