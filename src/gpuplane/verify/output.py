"""The report as JSON (stable schema, docs/verify.md) and as JUnit XML (pure)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from gpuplane.verify.model import SCHEMA_VERSION, Report, Status


def report_json(report: Report) -> dict[str, Any]:
    return {
        "schemaVersion": SCHEMA_VERSION,
        "platform": report.platform,
        "kubeconfig": report.kubeconfig,
        "simulated": report.simulated,
        "durationSeconds": report.duration_seconds,
        "probeNamespace": report.probe_namespace,
        "summary": {
            "passed": report.count(Status.PASSED),
            "failed": report.count(Status.FAILED),
            "skipped": report.count(Status.SKIPPED),
            "simulated": report.count(Status.SIMULATED),
            "ok": report.ok,
        },
        "checks": [
            {
                "id": check.id,
                "description": check.description,
                "status": check.status.value,
                "reason": check.reason,
                "evidence": list(check.evidence),
                "durationSeconds": check.duration_seconds,
            }
            for check in report.checks
        ],
        "notes": list(report.notes),
    }


def report_junit(report: Report) -> str:
    suites = ET.Element("testsuites", name="gpuplane verify")
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=f"gpuplane-verify.{report.platform}",
        tests=str(len(report.checks)),
        failures=str(report.count(Status.FAILED)),
        errors="0",
        # A simulated check is reported as skipped: a JUnit consumer must not count it as
        # a real pass.
        skipped=str(report.count(Status.SKIPPED) + report.count(Status.SIMULATED)),
        time=f"{report.duration_seconds:.2f}",
    )
    for check in report.checks:
        group = check.id.split(".", 1)[0]
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"gpuplane.verify.{group}",
            name=check.id,
            time=f"{check.duration_seconds:.2f}",
        )
        if check.status is Status.FAILED:
            failure = ET.SubElement(case, "failure", message=check.description)
            failure.text = "\n".join(check.evidence)
        elif check.status is Status.SKIPPED:
            ET.SubElement(case, "skipped", message=check.reason)
        elif check.status is Status.SIMULATED:
            skipped = ET.SubElement(case, "skipped", type="simulated", message=check.reason)
            skipped.text = "\n".join(check.evidence)
        elif check.evidence:
            ET.SubElement(case, "system-out").text = "\n".join(check.evidence)
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"
