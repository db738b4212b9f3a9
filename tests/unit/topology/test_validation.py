"""platform.yaml validation: every rule, with the exact message (file, line, node, field).

Covers: the default file loads; duplicate names; control-plane count; unknown role;
gpus on non-gpu nodes, negative, missing on gpu nodes; gpu node without a NoSchedule
taint; malformed taints and effects; label key/value syntax; unknown fields; YAML
syntax errors with line; missing files; the exit code is 2.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gpuplane.errors import ExitCode
from gpuplane.shared.durations import parse_duration
from gpuplane.topology import TopologyError, load_platform
from gpuplane.topology.syntax import (
    dns_label_problem,
    label_key_problem,
    label_value_problem,
    parse_taint,
)

REPO = Path(__file__).resolve().parents[3]

HEADER = """\
apiVersion: gpuplane.io/v1alpha1
kind: Platform
metadata: {name: gpuplane}
spec:
  nodes:
"""
SERVER = (
    "    - {name: server-0, role: control-plane,"
    ' taints: ["node-role.kubernetes.io/control-plane=true:NoSchedule"]}\n'
)
APP = "    - {name: agent-0, role: app}\n"
GPU = (
    "    - {name: agent-2, role: gpu, gpus: 1,"
    ' taints: ["node-role.kubernetes.io/gpu=true:NoSchedule"]}\n'
)


def problems(tmp_path: Path, text: str) -> list[str]:
    file = tmp_path / "platform.yaml"
    file.write_text(text)
    with pytest.raises(TopologyError) as caught:
        load_platform(file)
    assert caught.value.exit_code == ExitCode.BAD_INPUT
    prefix = f"{file}:"
    assert all(line.startswith(prefix) for line in caught.value.lines)
    return [line.removeprefix(prefix) for line in caught.value.lines]


def test_the_repository_default_platform_loads() -> None:
    platform = load_platform(REPO / "platform.yaml")
    assert [(n.name, n.role) for n in platform.spec.nodes] == [
        ("server-0", "control-plane"),
        ("agent-0", "app"),
        ("agent-1", "infra"),
        ("agent-2", "gpu"),
    ]
    assert platform.spec.nodes[3].gpu_count == 1
    assert platform.spec.backend == "local"


def test_a_minimal_valid_platform_loads(tmp_path: Path) -> None:
    file = tmp_path / "p.yaml"
    file.write_text(HEADER + SERVER + APP + GPU)
    assert load_platform(file).name == "gpuplane"


def test_duplicate_node_names(tmp_path: Path) -> None:
    assert problems(tmp_path, HEADER + SERVER + APP + APP + GPU) == [
        "8: node 'agent-0', field spec.nodes[2].name: duplicate node name 'agent-0' "
        "(already used by spec.nodes[1])"
    ]


def test_no_control_plane(tmp_path: Path) -> None:
    assert problems(tmp_path, HEADER + APP + GPU) == [
        "5: field spec.nodes: exactly one control-plane node is required, found 0 (none)"
    ]


def test_two_control_planes(tmp_path: Path) -> None:
    second = SERVER.replace("server-0", "server-1")
    assert problems(tmp_path, HEADER + SERVER + second + APP) == [
        "5: field spec.nodes: exactly one control-plane node is required, found 2 "
        "(server-0, server-1)"
    ]


def test_unknown_role(tmp_path: Path) -> None:
    assert problems(tmp_path, HEADER + SERVER + "    - {name: agent-0, role: wizard}\n") == [
        "7: node 'agent-0', field spec.nodes[1].role: unknown role 'wizard' "
        "(expected 'control-plane', 'app', 'infra' or 'gpu')"
    ]


def test_gpus_on_a_non_gpu_node(tmp_path: Path) -> None:
    assert problems(tmp_path, HEADER + SERVER + "    - {name: agent-0, role: app, gpus: 2}\n") == [
        "7: node 'agent-0', field spec.nodes[1].gpus: only gpu-role nodes may declare gpus "
        "(this node's role is app)"
    ]


def test_negative_gpus(tmp_path: Path) -> None:
    assert problems(tmp_path, HEADER + SERVER + GPU.replace("gpus: 1", "gpus: -1")) == [
        "7: node 'agent-2', field spec.nodes[1].gpus: must not be negative (got -1)"
    ]


def test_gpu_node_without_gpus(tmp_path: Path) -> None:
    assert problems(tmp_path, HEADER + SERVER + GPU.replace("gpus: 1, ", "")) == [
        "7: node 'agent-2', field spec.nodes[1].gpus: a gpu node must declare gpus >= 1"
    ]


def test_gpu_node_without_a_noschedule_taint(tmp_path: Path) -> None:
    gpu = GPU.replace("gpu=true:NoSchedule", "gpu=true:PreferNoSchedule")
    assert problems(tmp_path, HEADER + SERVER + gpu) == [
        "7: node 'agent-2', field spec.nodes[1].taints: a gpu node must carry a NoSchedule "
        "taint (such as node-role.kubernetes.io/gpu=true:NoSchedule) so only pods that "
        "tolerate it land there"
    ]


@pytest.mark.parametrize(
    ("taint", "message"),
    [
        ("gpu", "malformed taint 'gpu': expected key=value:Effect"),
        ("gpu=true", "malformed taint 'gpu=true': expected key=value:Effect"),
        (
            "gpu=true:Sometimes",
            "taint 'gpu=true:Sometimes': effect 'Sometimes' is not one of "
            "NoSchedule, PreferNoSchedule, NoExecute",
        ),
        (
            "-gpu=true:NoSchedule",
            "taint '-gpu=true:NoSchedule': label key '-gpu': name part must consist of "
            "alphanumerics, '-', '_' or '.', and start and end with an alphanumeric",
        ),
    ],
)
def test_malformed_taints(tmp_path: Path, taint: str, message: str) -> None:
    node = f'    - {{name: agent-0, role: app, taints: ["{taint}"]}}\n'
    assert problems(tmp_path, HEADER + SERVER + node) == [
        f"7: node 'agent-0', field spec.nodes[1].taints: {message}"
    ]


def test_key_only_taint_is_valid(tmp_path: Path) -> None:
    file = tmp_path / "p.yaml"
    file.write_text(
        HEADER + SERVER + '    - {name: agent-0, role: app, taints: ["dedicated:NoExecute"]}\n'
    )
    taint = load_platform(file).spec.nodes[1].parsed_taints[0]
    assert (taint.key, taint.value, taint.effect) == ("dedicated", "", "NoExecute")


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (
            '{"Example.com/x": "1"}',
            "label key 'Example.com/x': prefix 'Example.com' must be a DNS subdomain",
        ),
        ('{"/x": "1"}', "label key '/x' has an empty prefix before '/'"),
        ('{"a.io/": "1"}', "label key 'a.io/' has an empty name"),
        (
            '{"team": "a b"}',
            "label value 'a b' must consist of alphanumerics, '-', '_' or '.', "
            "and start and end with an alphanumeric",
        ),
        ('{"team": "' + "x" * 64 + '"}', f"label value '{'x' * 64}' is longer than 63 characters"),
    ],
)
def test_invalid_labels(tmp_path: Path, labels: str, message: str) -> None:
    node = f"    - {{name: agent-0, role: app, labels: {labels}}}\n"
    assert problems(tmp_path, HEADER + SERVER + node) == [
        f"7: node 'agent-0', field spec.nodes[1].labels: {message}"
    ]


def test_role_label_must_agree_with_role(tmp_path: Path) -> None:
    node = '    - {name: agent-0, role: app, labels: {"gpuplane.io/role": gpu}}\n'
    assert problems(tmp_path, HEADER + SERVER + node) == [
        "7: node 'agent-0', field spec.nodes[1].labels: label gpuplane.io/role=gpu "
        "contradicts role 'app' (gpuplane sets this label from the role)"
    ]


def test_unknown_fields_everywhere(tmp_path: Path) -> None:
    text = (
        HEADER.replace("kind: Platform\n", "kind: Platform\nextra: 1\n")
        + SERVER
        + ("    - {name: agent-0, role: app, colour: red}\n")
    )
    assert problems(tmp_path, text) == [
        "3: field extra: unknown field 'extra'",
        "8: node 'agent-0', field spec.nodes[1].colour: unknown field 'colour'",
    ]


def test_wrong_kind_and_bad_node_name(tmp_path: Path) -> None:
    text = (
        HEADER.replace("kind: Platform", "kind: Cluster")
        + SERVER
        + ("    - {name: Agent_0, role: app}\n")
    )
    assert problems(tmp_path, text) == [
        "2: field kind: unknown kind 'Cluster' (expected 'Platform')",
        "7: node 'Agent_0', field spec.nodes[1].name: 'Agent_0' must consist of lower case "
        "alphanumerics or '-', and start and end with an alphanumeric",
    ]


def test_missing_required_field(tmp_path: Path) -> None:
    assert problems(tmp_path, HEADER + SERVER + "    - {name: agent-0}\n") == [
        "7: node 'agent-0', field spec.nodes[1].role: required field 'role' is missing"
    ]


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    assert problems(tmp_path, HEADER + SERVER + "    - {name: agent-0, role: app\n") == [
        "8:1: YAML syntax error: expected ',' or '}', but got '<stream end>'"
    ]


def test_document_must_be_a_mapping(tmp_path: Path) -> None:
    assert problems(tmp_path, "- just\n- a list\n") == [
        "1: the document must be a mapping (a Platform)"
    ]


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(TopologyError) as caught:
        load_platform(missing)
    assert caught.value.lines == ["file not found (pass another with -f)"]
    assert str(caught.value).startswith(f"{missing} is invalid (1 problem); nothing was done")


def test_bad_kubernetes_version(tmp_path: Path) -> None:
    text = HEADER.replace("spec:\n", "spec:\n  kubernetesVersion: 1.34\n") + SERVER
    (line,) = problems(tmp_path, text)
    assert line == "5: field spec.kubernetesVersion: 1.34 is not a Kubernetes release like v1.34.2"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("spec: {nodes: " + "[" * 5000 + "]" * 5000 + "}\n", "nested deeper than 64 levels"),
        ("a: " + "x" * (2 * 1024 * 1024) + "\n", "the limit is 1048576"),
        (
            "a: &a [x, x, x, x, x, x, x, x, x]\n"
            + "".join(
                f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n"
                for p, c in zip("abcdefgh", "bcdefghi", strict=True)
            )
            + "spec: {nodes: [*i"
            + ", *i" * 120
            + "]}\n",
            "more than 100 aliases",
        ),
    ],
    ids=["5000-deep", "2-MiB", "alias-bomb"],
)
def test_hostile_documents_are_bad_input_with_a_short_message(
    tmp_path: Path, text: str, expected: str
) -> None:
    file = tmp_path / "platform.yaml"
    file.write_text(text)
    with pytest.raises(TopologyError) as error:
        load_platform(file)
    message = str(error.value)
    assert expected in message
    assert len(message) < 400
    assert error.value.exit_code == 2


def test_a_huge_label_value_is_quoted_short(tmp_path: Path) -> None:
    document = (
        (REPO / "platform.yaml")
        .read_text()
        .replace('{node-role.kubernetes.io/app: "true"}', '{team: "' + "v" * 100_000 + '"}')
    )
    file = tmp_path / "platform.yaml"
    file.write_text(document)
    with pytest.raises(TopologyError) as error:
        load_platform(file)
    assert "(100000 characters)" in str(error.value)
    assert len(str(error.value)) < 400


@pytest.mark.parametrize(
    "problem",
    [
        dns_label_problem("agent-0\n"),
        label_key_problem("gpuplane.io/role\n"),
        label_value_problem("true\n"),
    ],
)
def test_a_trailing_newline_is_no_name(problem: str | None) -> None:
    """`$` matches before a final newline: a name ending in one reached
    --hostname-override and paths before the checks became whole-string matches."""
    assert problem is not None


def test_a_taint_or_duration_with_a_trailing_newline_is_refused() -> None:
    with pytest.raises(ValueError, match="NoSchedule"):
        parse_taint("node-role.kubernetes.io/gpu=true:NoSchedule\n")
    with pytest.raises(ValueError, match="duration"):
        parse_duration("5m\n")
