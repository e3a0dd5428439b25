"""The batch evaluation as Kubernetes Jobs (deploy/k8s/evaluation/) and as a compose profile.

Manifests are validated against Kubernetes' schemas like the rest of deploy/k8s; the Jobs' shell
commands are run with a stand-in ``evaluate-model`` that prints its arguments, so what each pod
would run is checked, not just the YAML around it.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.test_manifests import COMPOSE, K8S, K8S_VERSION, interpolate, load_yaml_docs

EVALUATION = K8S / "evaluation"


def docs() -> list[tuple[Path, dict[str, Any]]]:
    files = sorted(p for p in EVALUATION.glob("*.yaml") if p.name != "kustomization.yaml")
    return [(path, doc) for path in files for doc in load_yaml_docs(path)]


def job(name: str) -> dict[str, Any]:
    (found,) = [doc for _, doc in docs() if doc["kind"] == "Job" and doc["metadata"]["name"] == name]
    return found


def container(doc: dict[str, Any]) -> dict[str, Any]:
    (only,) = doc["spec"]["template"]["spec"]["containers"]
    return only


def env(doc: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container(doc)["env"] if "value" in e}


def run_command(doc: dict[str, Any], tmp_path: Path, **extra: str) -> list[str]:
    """The container's command run by sh, with an ``evaluate-model`` that prints its arguments."""
    stand_in = tmp_path / "evaluate-model"
    stand_in.write_text('#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done\n')
    stand_in.chmod(0o755)
    variables = {**env(doc), **extra, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    result = subprocess.run(
        container(doc)["command"], env=variables, capture_output=True, text=True, check=True
    )
    return result.stdout.splitlines()


@pytest.mark.parametrize("item", docs(), ids=lambda item: f"{item[0].name}:{item[1]['kind']}")
def test_manifests_match_the_schemas(item: tuple[Path, dict[str, Any]]) -> None:
    kv = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate not installed")
    try:
        kv.validate(item[1], K8S_VERSION, strict=True)
    except kv.ValidationError as exc:
        pytest.fail(f"{item[0].name}: {exc.message} at {'/'.join(map(str, exc.path))}", pytrace=False)


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((EVALUATION / "kustomization.yaml").read_text())
    assert set(kustomization["resources"]) == {p.name for p in EVALUATION.glob("*.yaml")} - {
        "kustomization.yaml"
    }
    parent = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert kustomization["namespace"] == parent["namespace"]
    assert "evaluation" not in parent["resources"]  # applying the server must not start an evaluation


def test_shards_are_an_indexed_job_of_shards_of_n(tmp_path: Path) -> None:
    shards = job("evaluate-shards")
    spec = shards["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == int(env(shards)["SHARDS"]) >= spec["parallelism"] >= 1
    assert spec["template"]["spec"]["restartPolicy"] == "OnFailure"  # a retried pod resumes its checkpoint
    args = run_command(shards, tmp_path, JOB_COMPLETION_INDEX="2", EVAL_ARGS="--version 3")
    expected = "--model mnist --data s3://evaluation-data/mnist/ --server http://model-serving:8501"
    expected += " --shard 2/4 --output /reports/mnist-1/s2 --token-file /run/secrets/model-serving/token"
    expected += " --quiet --version 3"
    assert args == shlex.split(expected)
    mounts = spec["template"]["spec"]["containers"][0]["volumeMounts"]
    token = next(m for m in mounts if m["mountPath"] == "/run/secrets/model-serving")
    volume = next(v for v in spec["template"]["spec"]["volumes"] if v["name"] == token["name"])
    assert token["readOnly"] and volume["secret"]["secretName"] == "model-serving-evaluator-token"


def test_merge_waits_for_every_shard_of_the_same_run(tmp_path: Path) -> None:
    shards, merge = job("evaluate-shards"), job("evaluate-merge")
    assert env(merge)["SHARDS"] == env(shards)["SHARDS"] and env(merge)["EVAL_RUN"] == env(shards)["EVAL_RUN"]
    args = run_command(merge, tmp_path, EVAL_GATES="--min-accuracy 0.95")
    folders = [f"/reports/mnist-1/s{i}" for i in range(4)]
    assert args == [
        "merge",
        *folders,
        "--output",
        "/reports/mnist-1/all",
        "--wait",
        "21600",
        "--min-accuracy",
        "0.95",
    ]
    assert merge["spec"]["activeDeadlineSeconds"] > 21600


def test_jobs_share_the_reports_volume_and_run_locked_down() -> None:
    (claim,) = [doc for _, doc in docs() if doc["kind"] == "PersistentVolumeClaim"]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    for name in ("evaluate-shards", "evaluate-merge"):
        pod = job(name)["spec"]["template"]["spec"]
        claims = {
            v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v
        }
        assert claims == {claim["metadata"]["name"]}
        mounts = {m["mountPath"] for m in container(job(name))["volumeMounts"]}
        assert {"/reports", "/tmp"} <= mounts and env(job(name))["MPLCONFIGDIR"].startswith("/tmp/")
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert container(job(name))["securityContext"]["readOnlyRootFilesystem"] is True
        resources = container(job(name))["resources"]
        assert resources["requests"]["memory"] == resources["limits"]["memory"]


def test_compose_shards_profile_runs_two_shards_then_the_merge() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    shards = [services["shard0"], services["shard1"]]
    merge = services["merge"]
    for i, shard in enumerate(shards):
        assert shard["profiles"] == ["shards"] and shard["restart"] == "no"
        command = [interpolate(str(a)) for a in shard["command"]]
        assert command[0] == "evaluate-model" and command[command.index("--shard") + 1] == f"{i}/2"
        assert command[command.index("--output") + 1] == f"/reports/shards/s{i}"
        assert shard["depends_on"] == {"serving": {"condition": "service_healthy"}}
    assert merge["profiles"] == ["shards"]
    assert merge["command"][:4] == ["evaluate-model", "merge", "/reports/shards/s0", "/reports/shards/s1"]
    assert merge["depends_on"] == {
        f"shard{i}": {"condition": "service_completed_successfully"} for i in (0, 1)
    }
    assert all("reports:/reports" in s["volumes"] for s in (*shards, merge))
