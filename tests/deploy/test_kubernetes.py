"""deploy/k8s/: every core object validates against the Kubernetes OpenAPI schemas that the
kubernetes-validate wheel ships (strict: unknown fields fail), and the properties that make
replicas safe and interchangeable hold."""

from __future__ import annotations

import copy
import ipaddress
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import parse_qs, urlsplit

import kubernetes_validate  # type: ignore[import-untyped]  # ships no type information
import pytest

from server.settings import load_settings
from tests.deploy.conftest import K8S, load_all_yaml

KUBERNETES_VERSION = "1.37.0"
# CloudNativePG's CRD schema is not in kubernetes-validate; the Cluster is checked by hand below.
CRD_KINDS = {("postgresql.cnpg.io/v1", "Cluster")}
MANIFESTS = sorted(K8S.glob("*.yaml"))


def documents() -> list[tuple[Path, dict[str, Any]]]:
    return [(path, doc) for path in MANIFESTS for doc in load_all_yaml(path)]


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in documents() if doc["kind"] == kind]


def one(kind: str, name: str) -> dict[str, Any]:
    [found] = [doc for doc in of_kind(kind) if doc["metadata"]["name"] == name]
    return found


def pod_templates() -> list[tuple[str, dict[str, Any]]]:
    return [(d["metadata"]["name"], d["spec"]["template"]) for d in of_kind("Deployment")] + [
        (j["metadata"]["name"], j["spec"]["template"]) for j in of_kind("Job")
    ]


@pytest.mark.parametrize(
    ("path", "document"),
    [(p, d) for p, d in documents() if (d["apiVersion"], d["kind"]) not in CRD_KINDS],
    ids=lambda value: value.name if isinstance(value, Path) else value["kind"],
)
def test_core_objects_match_the_kubernetes_schema(path: Path, document: dict[str, Any]) -> None:
    kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_the_schema_check_rejects_a_broken_deployment() -> None:
    broken = copy.deepcopy(one("Deployment", "tipline"))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["pathh"] = "/"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)
    broken = copy.deepcopy(one("Deployment", "tipline"))
    broken["spec"]["replicas"] = "three"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_every_manifest_is_in_the_tipline_namespace() -> None:
    for path, doc in documents():
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "tipline", path.name


def test_several_replicas_with_probes_on_readyz_and_healthz() -> None:
    deployment = one("Deployment", "tipline")
    assert deployment["spec"]["replicas"] >= 2
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["serve"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_pods_run_unprivileged_on_a_read_only_root() -> None:
    for name, template in pod_templates():
        spec = template["spec"]
        assert spec["automountServiceAccountToken"] is False, name
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, name
        assert pod["runAsUser"] != 0, name
        assert pod["seccompProfile"]["type"] == "RuntimeDefault", name
        for container in spec["containers"] + spec.get("initContainers", []):
            context = container["securityContext"]
            label = f"{name}/{container['name']}"
            assert context["readOnlyRootFilesystem"] is True, label
            assert context["allowPrivilegeEscalation"] is False, label
            assert context["capabilities"]["drop"] == ["ALL"], label
            assert "add" not in context["capabilities"], label
            assert not context.get("privileged", False), label
            assert "resources" in container, label


def test_the_namespace_enforces_the_restricted_pod_security_standard() -> None:
    labels = one("Namespace", "tipline")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def test_the_disruption_budget_and_service_select_the_deployment() -> None:
    deployment = one("Deployment", "tipline")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    budget = one("PodDisruptionBudget", "tipline")
    assert budget["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert 1 <= budget["spec"]["minAvailable"] < deployment["spec"]["replicas"]
    service = one("Service", "tipline")
    assert service["spec"]["selector"].items() <= pod_labels.items()


def test_traffic_is_denied_by_default() -> None:
    deny = one("NetworkPolicy", "default-deny")
    assert deny["spec"]["podSelector"] == {}
    assert set(deny["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny["spec"]
    assert "egress" not in deny["spec"]
    app = one("NetworkPolicy", "tipline-app")
    ports = {p["port"] for rule in app["spec"]["ingress"] for p in rule["ports"]}
    assert ports == {8000}


def test_secrets_come_from_the_platform_by_reference_only() -> None:
    assert of_kind("Secret") == [], "a Secret object would put its value in the repository"
    for name, template in pod_templates():
        spec = template["spec"]
        for container in spec["containers"] + spec.get("initContainers", []):
            for variable in container.get("env", []):
                if "value" in variable:
                    value = str(variable["value"])
                    assert "://" not in value or "@" not in value.split("://")[1].split("@")[0], (
                        f"{name}: {variable['name']}"
                    )
                    assert ":" not in value.split("://")[-1].split("@")[0], variable["name"]
                    assert not variable["name"].endswith(("PASSWORD", "SECRET", "TOKEN"))
        for volume in spec.get("volumes", []):
            if "secret" in volume:
                assert set(volume["secret"]) <= {"secretName", "defaultMode", "items"}
    config = one("ConfigMap", "tipline-config")["data"]
    assert not [k for k in config if any(w in k for w in ("PASSWORD", "SECRET", "TOKEN"))]


def test_postgres_runs_with_a_synchronous_standby_through_cloudnativepg() -> None:
    [cluster] = of_kind("Cluster")
    assert cluster["apiVersion"] == "postgresql.cnpg.io/v1"
    spec = cluster["spec"]
    assert spec["instances"] >= 3
    synchronous = spec["postgresql"]["synchronous"]
    assert synchronous["number"] >= 1
    assert synchronous["method"] in {"any", "first"}
    assert synchronous["dataDurability"] == "required"
    assert spec["enableSuperuserAccess"] is False
    assert spec["bootstrap"]["initdb"]["secret"] == {"name": "tipline-db-migrator"}
    [app_role] = spec["managed"]["roles"]
    assert app_role["name"] == "tipline_app"
    assert app_role["passwordSecret"] == {"name": "tipline-db-app"}
    assert app_role["superuser"] is False
    assert app_role["bypassrls"] is False
    assert spec["affinity"]["enablePodAntiAffinity"] is True


def test_the_app_reaches_the_cluster_s_read_write_service() -> None:
    deployment = one("Deployment", "tipline")
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    env = {v["name"]: v.get("value") for v in container["env"]}
    [cluster] = of_kind("Cluster")
    # CloudNativePG names the primary's Service `<cluster>-rw`.
    assert f"@{cluster['metadata']['name']}-rw:5432/" in env["DATABASE_URL"]
    assert env["PGPASSFILE"].startswith("/run/tipline/")


def ingress_reaches(rule_paths: list[dict[str, Any]], path: str) -> bool:
    """Whether any Ingress path sends a request for `path` to a backend. Prefix matches whole
    segments (Kubernetes API semantics); an implementation-specific path could match anything."""
    for rule in rule_paths:
        kind, declared = rule["pathType"], rule["path"]
        if kind == "Exact" and path == declared:
            return True
        if kind == "Prefix":
            base = declared.rstrip("/")
            if path == base or path.startswith(base + "/") or not base:
                return True
        if kind == "ImplementationSpecific":
            return True
    return False


INGRESS_CLOSED = ["/metrics", "/metrics/", "/metrics/x", "/schema", "/schema/openapi.json"]
INGRESS_CLOSED += ["/readyz", "/", "/v1metrics", "/v10/x"]


def ingress_paths() -> list[dict[str, Any]]:
    return [
        path
        for ingress in of_kind("Ingress")
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    ]


def test_the_ingress_routes_nothing_that_reaches_metrics() -> None:
    paths = ingress_paths()
    assert [p for p in INGRESS_CLOSED if ingress_reaches(paths, p)] == []
    for needed in ("/v1", "/v1/sessions", "/v1/uploads/abc", "/healthz"):
        assert ingress_reaches(paths, needed), needed
    # The check itself: a catch-all or implementation-specific path would be caught.
    assert ingress_reaches([{"path": "/", "pathType": "Prefix"}], "/metrics")
    assert ingress_reaches([{"path": "/v1", "pathType": "ImplementationSpecific"}], "/metrics")
    assert not ingress_reaches([{"path": "/v1", "pathType": "Prefix"}], "/v1metrics")


def test_the_ingress_needs_no_snippet_and_never_redirects_plain_http() -> None:
    [ingress] = of_kind("Ingress")
    annotations = ingress["metadata"]["annotations"]
    # ingress-nginx >= 1.9 refuses snippet annotations by default (allow-snippet-annotations).
    assert [k for k in annotations if "snippet" in k] == []
    prefix = "nginx.ingress.kubernetes.io/"
    # ASVS 4.1.2 / SEC-API-07: no transparent redirect to HTTPS.
    assert annotations[prefix + "ssl-redirect"] == "false"
    assert annotations[prefix + "force-ssl-redirect"] == "false"
    assert not [k for k in annotations if "redirect" in k and annotations[k] != "false"]
    # Uploads stream, so a chunk cut by a dropped connection still reaches the app.
    assert annotations[prefix + "proxy-request-buffering"] == "off"
    assert annotations[prefix + "proxy-buffering"] == "off"


def database_urls() -> list[tuple[str, dict[str, Any], dict[str, Any], str]]:
    """(pod, pod spec, container, URL) for every database URL a container is given."""
    found = []
    for name, template in pod_templates():
        spec = template["spec"]
        for container in spec["containers"]:
            for variable in container.get("env", []):
                if variable["name"] in {"DATABASE_URL", "TIPLINE_MIGRATION_DATABASE_URL"}:
                    found.append((name, spec, container, variable["value"]))
    return found


def test_every_database_connection_verifies_the_server_against_the_cluster_ca() -> None:
    [cluster] = of_kind("Cluster")
    ca_secret = f"{cluster['metadata']['name']}-ca"
    urls = database_urls()
    assert len(urls) == 3  # the app's, and the migration job's two
    for pod, spec, container, url in urls:
        parts = urlsplit(url)
        query = {key: values[0] for key, values in parse_qs(parts.query).items()}
        assert query.get("sslmode") == "verify-full", pod
        root = PurePosixPath(query["sslrootcert"])
        [mount] = [m for m in container["volumeMounts"] if root.is_relative_to(m["mountPath"])]
        assert mount["readOnly"] is True, pod
        [volume] = [v for v in spec["volumes"] if v["name"] == mount["name"]]
        assert volume["secret"]["secretName"] == ca_secret, pod
        # The operator's CA Secret also holds ca.key; only the certificate may be mounted.
        assert volume["secret"]["items"] == [{"key": "ca.crt", "path": root.name}], pod
        assert root.parent == PurePosixPath(mount["mountPath"]), pod
        # verify-full checks the name the client dials against the server certificate.
        assert parts.hostname == f"{cluster['metadata']['name']}-rw", pod


def test_postgres_refuses_connections_without_tls() -> None:
    [cluster] = of_kind("Cluster")
    assert "hostnossl all all all reject" in cluster["spec"]["postgresql"]["pg_hba"]


def open_rules(policy: dict[str, Any]) -> list[str]:
    """Rules that name ports but no peers (any host), or an ipBlock that is the whole internet."""
    problems = []
    name = policy["metadata"]["name"]
    for direction, peers in (("egress", "to"), ("ingress", "from")):
        for rule in policy["spec"].get(direction, []):
            if not rule.get(peers):
                problems.append(f"{name}: an {direction} rule without `{peers}`")
            for peer in rule.get(peers) or []:
                block = peer.get("ipBlock")
                if block and ipaddress.ip_network(block["cidr"]).prefixlen < 8:
                    problems.append(f"{name}: {block['cidr']} is too broad")
    return problems


def test_every_network_policy_rule_names_its_peers() -> None:
    assert [p for policy in of_kind("NetworkPolicy") for p in open_rules(policy)] == []
    # The API-server rule of the database pods is one address per control-plane endpoint.
    db_egress = one("NetworkPolicy", "tipline-db-egress")["spec"]["egress"]
    [api] = [r for r in db_egress if {p["port"] for p in r["ports"]} == {443, 6443}]
    for peer in api["to"]:
        network = ipaddress.ip_network(peer["ipBlock"]["cidr"])
        assert network.prefixlen == network.max_prefixlen


def test_the_open_rule_check_catches_an_egress_to_anywhere() -> None:
    policy = {
        "metadata": {"name": "p"},
        "spec": {
            "egress": [{"ports": [{"port": 443}]}, {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]
        },
    }
    assert len(open_rules(policy)) == 2


def test_the_trusted_proxies_are_a_private_network_only_the_ingress_can_use() -> None:
    value = one("ConfigMap", "tipline-config")["data"]["TIPLINE_TRUSTED_PROXIES"]
    networks = load_settings({"TIPLINE_TRUSTED_PROXIES": value}).trusted_proxy_networks
    assert networks
    assert all(network.is_private for network in networks)
    # Trusting the whole pod network is safe only while nothing else can reach the app's port.
    app = one("NetworkPolicy", "tipline-app")
    peers = [peer for rule in app["spec"]["ingress"] for peer in rule["from"]]
    assert {
        p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for p in peers
    } == {
        "ingress-nginx",
        "monitoring",
    }
    assert all(set(p) == {"namespaceSelector"} for p in peers)
