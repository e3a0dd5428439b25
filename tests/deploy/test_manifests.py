"""Static checks of the deployment files: k8s manifests, compose file, Prometheus and Grafana config.

Fast and offline: Kubernetes manifests against the JSON schemas bundled with kubernetes-validate,
PromQL against the metric names and labels service/metrics.py declares, Prometheus files with
promtool when it is installed.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
COMPOSE = ROOT / "docker-compose.yml"
PROMETHEUS = DEPLOY / "prometheus" / "prometheus.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "model-serving.json"
# The oldest Kubernetes minor the manifests target (autoscaling/v2 and policy/v1 are GA there).
K8S_VERSION = "1.30"
APP_SERVICES = ("serving", "trainer", "evaluator", "smoke")
# Where the image, compose and Kubernetes put the token file, and each client's token beside it.
SECRETS_DIR = "/run/secrets/model-serving"
TOKENS_FILE = f"{SECRETS_DIR}/tokens.yaml"
# Labels every scraped series may carry besides its own.
SCRAPE_LABELS = {"instance", "job", "service", "namespace", "pod", "container", "endpoint"}


# ---- helpers -----------------------------------------------------------------------------------
def load_yaml_docs(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def k8s_docs() -> list[tuple[Path, dict[str, Any]]]:
    files = sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
    return [(path, doc) for path in files for doc in load_yaml_docs(path)]


def doc_id(item: tuple[Path, dict[str, Any]]) -> str:
    path, doc = item
    return f"{path.name}:{doc['kind']}/{doc['metadata']['name']}"


def find(kind: str) -> dict[str, Any]:
    (doc,) = [doc for _, doc in k8s_docs() if doc["kind"] == kind]
    return doc


def interpolate(value: str) -> str:
    """Compose's ${VAR:-default} / ${VAR-default} / ${VAR} with the defaults (no environment)."""
    return re.sub(r"\$\{\w+(?::?-([^}]*))?\}", lambda m: m.group(1) or "", value)


@dataclass(frozen=True)
class MetricDef:
    kind: str
    labels: frozenset[str]


def declared_metrics() -> dict[str, MetricDef]:
    """Counter/Gauge/Histogram/Summary objects in service/metrics.py, read without importing it."""
    tree = ast.parse((ROOT / "service" / "metrics.py").read_text())
    found: dict[str, MetricDef] = {}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
            continue
        if node.func.id not in ("Counter", "Gauge", "Histogram", "Summary") or not node.args:
            continue
        name = ast.literal_eval(node.args[0])
        labels_node = node.args[2] if len(node.args) > 2 else None
        keywords = {k.arg: k.value for k in node.keywords}
        labels_node = keywords.get("labelnames", labels_node)
        labels = set(ast.literal_eval(labels_node)) if labels_node is not None else set()
        mode = keywords.get("multiprocess_mode")
        if mode is not None and ast.literal_eval(mode) in ("all", "liveall"):
            labels.add("pid")  # per-process gauges: prometheus_client adds the worker's pid
        found[name] = MetricDef(node.func.id, frozenset(labels))
    return found


def exposed_series() -> dict[str, frozenset[str]]:
    """Series name -> label names, as prometheus_client exposes each declared metric."""
    series: dict[str, frozenset[str]] = {}
    for name, metric in declared_metrics().items():
        if metric.kind == "Counter":
            base = name.removesuffix("_total")
            series[f"{base}_total"] = series[f"{base}_created"] = metric.labels
        elif metric.kind in ("Histogram", "Summary"):
            for suffix in ("_sum", "_count", "_created"):
                series[name + suffix] = metric.labels
            if metric.kind == "Histogram":
                series[name + "_bucket"] = metric.labels | {"le"}
        else:
            series[name] = metric.labels
    return series


# A metric name not preceded by ':' or a word character, so recording-rule names are skipped.
_SELECTOR = re.compile(r"(?<![\w:])(serving_[a-zA-Z0-9_]+)\s*(\{[^}]*\})?")
_MATCHER = re.compile(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)")
_GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")


def promql_problems(expr: str, series: dict[str, frozenset[str]]) -> list[str]:
    """Unknown serving_* series, and label names no referenced series carries."""
    problems = []
    used_labels: set[str] = set()
    for name, braces in _SELECTOR.findall(expr):
        if name not in series:
            problems.append(f"unknown series {name}")
            continue
        for label in _MATCHER.findall(braces or ""):
            if label not in series[name] | SCRAPE_LABELS:
                problems.append(f"{name} has no label {label!r}")
        used_labels |= series[name]
    for group in _GROUPING.findall(expr):
        for label in filter(None, (part.strip() for part in group.split(","))):
            if used_labels and label not in used_labels | SCRAPE_LABELS:
                problems.append(f"grouping by {label!r}, which no referenced series has")
    return problems


def dashboard_targets() -> Iterator[tuple[str, dict[str, Any]]]:
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        for target in panel.get("targets", []):
            yield panel["title"], target


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool not installed (Debian: apt-get install prometheus)")
    return path


# ---- Kubernetes --------------------------------------------------------------------------------
@pytest.mark.parametrize("item", k8s_docs(), ids=doc_id)
def test_k8s_manifest_matches_schema(item: tuple[Path, dict[str, Any]]) -> None:
    kv = pytest.importorskip(
        "kubernetes_validate",
        reason="kubernetes-validate not installed (pip install 'kubernetes-validate>=1.30')",
    )
    _, doc = item
    try:
        kv.validate(doc, K8S_VERSION, strict=True)
    except kv.SchemaNotFoundError:
        # A CRD (ServiceMonitor): no bundled schema; test_service_monitor checks it by hand.
        assert "." in doc["apiVersion"].split("/")[0], f"no schema for core kind {doc['kind']}"
    except kv.ValidationError as exc:
        pytest.fail(f"{doc_id(item)}: {exc.message} at {'/'.join(map(str, exc.path))}", pytrace=False)


def test_validator_rejects_a_broken_manifest() -> None:
    kv = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate not installed")
    broken = json.loads(json.dumps(find("Deployment")))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["prot"] = 8501
    with pytest.raises(kv.ValidationError):
        kv.validate(broken, K8S_VERSION, strict=True)


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk


def test_selectors_ports_and_names_line_up() -> None:
    deployment, service = find("Deployment"), find("Service")
    pod = deployment["spec"]["template"]
    pod_labels = pod["metadata"]["labels"]
    container = pod["spec"]["containers"][0]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert find("PodDisruptionBudget")["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    port_names = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 8501, "targetPort": "http", "protocol": "TCP"},
        {"name": "grpc", "port": 8500, "targetPort": "grpc", "protocol": "TCP"},
    ]
    assert port_names == {"http": 8501, "grpc": 8500}
    configured = find("ConfigMap")["data"]
    assert (configured["PORT"], configured["GRPC_PORT"]) == ("8501", "8500")
    target = find("HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert container["envFrom"] == [{"configMapRef": {"name": find("ConfigMap")["metadata"]["name"]}}]
    claims = {
        v["persistentVolumeClaim"]["claimName"]
        for v in pod["spec"]["volumes"]
        if "persistentVolumeClaim" in v
    }
    assert claims == {find("PersistentVolumeClaim")["metadata"]["name"]}


def test_deployment_probes_and_replicas() -> None:
    deployment = find("Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert deployment["spec"]["replicas"] == 2
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120, "allow time to load models"
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > 30, "gunicorn's graceful_timeout is 30 s"


def test_pod_runs_non_root_on_a_read_only_root() -> None:
    pod = find("Deployment")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/models"]["readOnly"] is True
    config = find("ConfigMap")["data"]
    writable = [path for path, m in mounts.items() if not m.get("readOnly")]
    for needed in ("/tmp", config["DATA_DIR"], config["PROMETHEUS_MULTIPROC_DIR"]):
        assert any(needed.startswith(path) for path in writable), f"{needed} is not on a writable volume"
    # gunicorn's on_starting hook deletes and recreates the metrics folder: it cannot be a mount point.
    assert config["PROMETHEUS_MULTIPROC_DIR"] not in mounts


def test_memory_request_equals_limit() -> None:
    resources = find("Deployment")["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert resources["requests"]["memory"] == resources["limits"]["memory"]
    assert "cpu" in resources["requests"], "the HPA's CPU utilisation is relative to the request"


def test_configmap_holds_only_known_settings() -> None:
    from service.config import ENV

    # Read by keras, matplotlib, gunicorn (control socket) and service/http/server.py.
    extra = {"KERAS_HOME", "MPLCONFIGDIR", "ACCESS_LOG"}
    config = find("ConfigMap")["data"]
    assert set(config) <= set(ENV) | extra, set(config) - set(ENV) - extra
    assert config["MODEL_REPOSITORY"] == "/models"
    assert config["HOST"] == "0.0.0.0"
    assert all(isinstance(v, str) for v in config.values())


def test_service_monitor() -> None:
    monitor = find("ServiceMonitor")
    service = find("Service")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    # /metrics needs the metrics scope: the operator sends the token from a Secret key as a bearer.
    assert endpoint["authorization"] == {
        "type": "Bearer",
        "credentials": {"name": "model-serving-metrics-token", "key": "token"},
    }
    assert "bearerTokenFile" not in endpoint and "bearerTokenSecret" not in endpoint  # deprecated forms


def test_the_token_secret_is_mounted_where_the_settings_point() -> None:
    pod = find("Deployment")["spec"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if "secret" in v]
    secret = volume["secret"]
    assert secret["secretName"] == "model-serving-tokens"
    assert secret["items"] == [{"key": "tokens.yaml", "path": "tokens.yaml"}]
    assert secret.get("optional") is not True, "without its tokens the pod must not start open or closed"
    assert secret["defaultMode"] & 0o077 == 0o040, "readable by the pod's fsGroup only"
    (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == volume["name"]]
    # No subPath: the kubelet then updates the file when the Secret changes (revocation, no restart).
    assert mount["readOnly"] is True and "subPath" not in mount
    assert f"{mount['mountPath']}/tokens.yaml" == TOKENS_FILE == find("ConfigMap")["data"]["AUTH_TOKENS_FILE"]
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsGroup"]


def test_no_secret_is_committed() -> None:
    kinds = {doc["kind"] for _, doc in k8s_docs()}
    assert "Secret" not in kinds
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert "secretGenerator" not in kustomization
    for path in K8S.glob("*.yaml"):
        assert not re.search(r"\bms_[A-Za-z0-9_-]{20,}", path.read_text()), f"{path.name} holds a token"


def test_the_secret_commands_are_documented() -> None:
    """The README and the manifests name the same Secrets and keys as the Deployment and ServiceMonitor."""
    readme = (ROOT / "README.md").read_text()
    commands = (
        "kubectl -n model-serving create secret generic model-serving-tokens --from-file=tokens.yaml",
        "kubectl -n model-serving create secret generic model-serving-metrics-token"
        " --from-file=token=prometheus.token",
    )
    for command in commands:
        assert command in readme
        assert command in (K8S / "deployment.yaml").read_text()


# ---- docker-compose.yml ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_services_and_profiles(compose: dict[str, Any]) -> None:
    services = compose["services"]
    shards = {"shard0": ["shards"], "shard1": ["shards"], "merge": ["shards"]}  # test_evaluation_jobs.py
    assert set(services) == {"serving", "prometheus", "grafana", "trainer", "evaluator", "smoke", *shards}
    profiles = {name: service.get("profiles") for name, service in services.items()}
    assert profiles == {
        "serving": None,
        "prometheus": None,
        "grafana": None,
        "trainer": ["train"],
        "evaluator": ["evaluate"],
        "smoke": ["check"],
        **shards,
    }
    for name in APP_SERVICES:
        assert services[name]["build"]["dockerfile"] == "Dockerfile"
        assert services[name]["image"] == services["serving"]["image"]
        assert services[name]["init"] is True
    assert services["prometheus"]["image"].startswith("${PROMETHEUS_IMAGE:-prom/prometheus:")
    assert services["grafana"]["image"].startswith("${GRAFANA_IMAGE:-grafana/grafana:")


def test_compose_serving(compose: dict[str, Any]) -> None:
    serving = compose["services"]["serving"]
    assert [interpolate(p) for p in serving["ports"]] == ["127.0.0.1:8501:8501", "127.0.0.1:8500:8500"]
    assert "/v2/health/ready" in " ".join(serving["healthcheck"]["test"])
    assert serving["healthcheck"]["test"][0] == "CMD"
    assert serving["restart"] == "unless-stopped"
    env = serving["environment"]
    assert (env["HOST"], env["PORT"], env["MODEL_REPOSITORY"]) == ("0.0.0.0", "8501", "/models")
    assert env["GRPC_PORT"] == "8500"
    from service.config import ENV

    assert set(env) <= set(ENV)


def test_compose_model_volume_is_shared(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert "models" in compose["volumes"]
    assert "models:/models:ro" in services["serving"]["volumes"]
    assert "models:/models" in services["trainer"]["volumes"]


def test_compose_jobs(compose: dict[str, Any]) -> None:
    trainer, evaluator = compose["services"]["trainer"], compose["services"]["evaluator"]
    assert [interpolate(str(a)) for a in trainer["command"][:3]] == ["python", "-m", "training"]
    assert trainer["command"][-4:] == ["--output", "/models", "--data", "/data/mnist"]
    assert evaluator["command"][:3] == ["python", "-m", "service.evaluation.batch"]
    assert "http://serving:8501" in evaluator["command"]
    assert evaluator["depends_on"] == {"serving": {"condition": "service_healthy"}}
    for job in (trainer, evaluator):
        assert job["restart"] == "no"
        (data,) = [v for v in job["volumes"] if isinstance(v, dict) and v["target"] == "/data/mnist"]
        assert interpolate(data["source"]) == "../shared/data/mnist"
        assert data["read_only"] is True


def test_compose_bind_mount_sources_exist(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume["source"] if isinstance(volume, dict) else volume.split(":")[0]
            source = interpolate(source)
            if source.startswith("./secrets/"):
                continue  # generated, never committed: test_compose_secrets_are_generated_folders
            if source.startswith("."):
                if "shared/data" in source and not (ROOT / source).exists():
                    continue  # data beside the checkout: present on developers' machines and CI
                assert (ROOT / source).exists(), f"{name}: {source} does not exist"


def secret_mounts(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The service's bind mounts from ./secrets, by source."""
    return {
        v["source"]: v
        for v in service.get("volumes", [])
        if isinstance(v, dict) and v["source"].startswith("./secrets/")
    }


def compose_secrets_module() -> Any:
    spec = importlib.util.spec_from_file_location("compose_secrets", DEPLOY / "compose_secrets.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_compose_secrets_are_generated_folders(compose: dict[str, Any]) -> None:
    """Every ./secrets source is a folder `make compose-secrets` makes, mounted read-only, and must
    already exist (a forgotten `make compose-secrets` fails `up` instead of mounting an empty folder)."""
    made = {f"./secrets/{name}" for name in ("serving", *compose_secrets_module().CLIENTS)}
    mounted = {}
    for name, service in compose["services"].items():
        for source, volume in secret_mounts(service).items():
            assert source in made, f"{name}: {source} is not made by deploy/compose_secrets.py"
            assert (volume["type"], volume["target"], volume["read_only"]) == ("bind", SECRETS_DIR, True)
            assert volume["bind"]["create_host_path"] is False
            mounted[name] = source
    assert mounted == {
        "serving": "./secrets/serving",
        "prometheus": "./secrets/prometheus",
        "evaluator": "./secrets/evaluator",
        "shard0": "./secrets/evaluator",  # the sharded evaluation scores as the evaluator does
        "shard1": "./secrets/evaluator",
        "smoke": "./secrets/smoke",
    }
    assert "compose-secrets:" in (ROOT / "Makefile").read_text()


def test_compose_turns_auth_on_and_clients_send_their_tokens(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["serving"]["environment"]["AUTH_TOKENS_FILE"] == TOKENS_FILE
    for client in ("evaluator", "shard0", "shard1", "smoke"):
        command = services[client]["command"]
        assert command[command.index("--token-file") + 1] == f"{SECRETS_DIR}/token", client
    scopes = compose_secrets_module().CLIENTS
    assert scopes["prometheus"] == ("metrics",)  # the scraper can read metrics and nothing else
    assert "admin" not in scopes["smoke"] and "admin" not in scopes["evaluator"]


def test_smoke_check_script_is_valid_python() -> None:
    compile((DEPLOY / "smoke_check.py").read_text(), "smoke_check.py", "exec")


# ---- Dockerfile --------------------------------------------------------------------------------
def test_dockerfile_runtime_settings() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM \$\{PYTHON_IMAGE\} AS runtime$", text, re.M)
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in text
    user = re.findall(r"^USER (\S+)", text, re.M)[-1]
    assert user not in ("root", "0", "0:0")
    assert re.search(r"^EXPOSE 8501 8500$", text, re.M)
    healthcheck = re.search(r"^HEALTHCHECK .*(?:\n .*)*", text, re.M)
    assert healthcheck is not None and "/v2/health/ready" in healthcheck.group(0)
    assert 'CMD ["python", "-m", "service"]' in text
    for setting in (
        "MODEL_REPOSITORY=/models",
        "HOST=0.0.0.0",
        "PORT=8501",
        "GRPC_PORT=8500",
        f"AUTH_TOKENS_FILE={TOKENS_FILE}",
    ):
        assert setting in text


# ---- Prometheus --------------------------------------------------------------------------------
def test_prometheus_scrapes_serving() -> None:
    config = yaml.safe_load(PROMETHEUS.read_text())
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "serving"]
    targets = [t for static in job["static_configs"] for t in static["targets"]]
    assert targets == ["serving:8501"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    assert job["scrape_interval"] == "5s"
    # The token `make compose-secrets` writes, mounted by compose where this file expects it.
    assert job["authorization"] == {"type": "Bearer", "credentials_file": f"{SECRETS_DIR}/token"}
    for rule_file in config["rule_files"]:
        assert (PROMETHEUS.parent / rule_file).exists()


def test_rule_expressions_use_declared_metrics() -> None:
    series = exposed_series()
    config = yaml.safe_load(PROMETHEUS.read_text())
    problems = {}
    for rule_file in config["rule_files"]:
        for group in yaml.safe_load((PROMETHEUS.parent / rule_file).read_text())["groups"]:
            for rule in group["rules"]:
                name = rule.get("record") or rule.get("alert")
                problems[name] = promql_problems(rule["expr"], series)
    assert {name: found for name, found in problems.items() if found} == {}


def test_promtool_accepts_config_and_rules(tmp_path: Path) -> None:
    """The full check (rule files, and the token file existing) on a copy whose credentials_file
    points at a file here: the real path exists only inside the Prometheus container."""
    tool = promtool()
    shutil.copytree(PROMETHEUS.parent, tmp_path / "prometheus")
    config = yaml.safe_load(PROMETHEUS.read_text())
    (tmp_path / "token").write_text("ms_placeholder\n")
    for job in config["scrape_configs"]:
        if "authorization" in job:
            job["authorization"]["credentials_file"] = str(tmp_path / "token")
    copy = tmp_path / "prometheus" / "prometheus.yml"
    copy.write_text(yaml.safe_dump(config))
    result = subprocess.run([tool, "check", "config", str(copy)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_parses_dashboard_queries(tmp_path: Path) -> None:
    """Each panel query as a recording rule: promtool then parses it as real PromQL."""
    tool = promtool()
    rules = []
    for i, (_, target) in enumerate(dashboard_targets()):
        expr = target["expr"].replace("$__rate_interval", "1m").replace("$model", ".*")
        rules.append({"record": f"dashboard:query_{i}", "expr": expr})
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run([tool, "check", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# ---- Grafana -----------------------------------------------------------------------------------
def test_declared_metrics_are_found() -> None:
    metrics = declared_metrics()
    assert metrics["serving_request_duration_seconds"] == MetricDef(
        "Histogram", frozenset({"model", "protocol", "endpoint", "code"})
    )
    assert len(metrics) >= 10


def test_dashboard_queries_use_declared_metrics_and_labels() -> None:
    series = exposed_series()
    problems: dict[str, list[str]] = {}
    for title, target in dashboard_targets():
        found = promql_problems(target["expr"], series)
        legend_labels = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", target.get("legendFormat", "")))
        known = set().union(*(series.get(n, set()) for n, _ in _SELECTOR.findall(target["expr"])))
        found += [f"legend uses {label!r}" for label in legend_labels - known - SCRAPE_LABELS]
        if found:
            problems.setdefault(title, []).extend(found)
    assert problems == {}


def test_dashboard_has_the_required_panels() -> None:
    exprs = " ".join(t["expr"] for _, t in dashboard_targets())
    for needed in (
        "serving_requests_total",
        'code!~"2.."',
        "histogram_quantile(0.50, sum by (model, le) (rate(serving_request_duration_seconds_bucket",
        "histogram_quantile(0.99, sum by (model, le) (rate(serving_request_duration_seconds_bucket",
        "serving_batch_size",
        'serving_model_version_state{model=~"$model", state="AVAILABLE"}',
        'metric=~"accuracy|roc_auc|r2"',
    ):
        assert needed in exprs, needed
    for _, target in dashboard_targets():
        assert target["datasource"]["uid"] == "${datasource}"


def test_grafana_provisioning_points_at_prometheus() -> None:
    provisioning = DEPLOY / "grafana" / "provisioning"
    (source,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert (source["type"], source["url"]) == ("prometheus", "http://prometheus:9090")
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "model-serving.yml").read_text())["providers"]
    grafana = yaml.safe_load(COMPOSE.read_text())["services"]["grafana"]
    assert f"./deploy/grafana/dashboards:{provider['options']['path']}:ro" in grafana["volumes"]
