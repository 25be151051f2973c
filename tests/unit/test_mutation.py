"""render_pod_patch: the gateway injection, checked by applying the patch to sample pods.

Every row applies the returned JSON Patch with `jsonpatch` (as the API server would) and asserts
on the pod that results, so a patch that is well-formed but wrong, or that does not apply, fails.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import jsonpatch
import pytest

from aigis.admission.mutation import (
    CONFIG_HASH_ANNOTATION,
    FORENSICS_FINALIZER,
    GATEWAY_CONTAINER,
    INJECTED_ANNOTATION,
    KEY_PLACEHOLDER,
    OPT_OUT_ANNOTATION,
    WORKLOAD_LABEL,
    InjectionSettings,
    gateway_differences,
    render_gateway,
    render_pod_patch,
)
from aigis.admission.podsecurity import check_pod_security
from aigis.api.aiworkload import AIWorkload
from aigis.gateway.config import DEFAULT_KEY_DIR, gateway_config_map_name
from aigis.gateway.identity import (
    AUDIT_KEY_DIR,
    AUDIT_KEY_FILE,
    AUDIT_KEY_FLAG,
    AUDIT_KEY_SECRET_KEY,
    AUDIT_STATE_DIR,
    AUDIT_STATE_FLAG,
    POD_NAME_ENV,
    POD_NAMESPACE_ENV,
    POD_UID_ENV,
    audit_key_secret_name,
)

SETTINGS = InjectionSettings(gateway_image="ghcr.io/aigis/aigis:1.0.0")
GATEWAY_URL = "http://127.0.0.1:15080"
HASH = "sha256:0123abcd"
INJECTED_VOLUMES = (
    "aigis-gateway-config",
    "aigis-provider-keys",
    "aigis-audit-key",
    "aigis-audit-state",
)
DEFAULT_NO_PROXY = "localhost,127.0.0.1,::1,.svc,.cluster.local,$(KUBERNETES_SERVICE_HOST)"


def workload(
    name: str = "support-bot", gateway: dict[str, Any] | None = None, **spec: Any
) -> AIWorkload:
    """An AIWorkload holding an OpenAI and an Anthropic key from the Secret `llm-keys`."""
    return AIWorkload.model_validate(
        {
            "metadata": {"name": name, "namespace": "shop"},
            "spec": {
                "selector": {"matchLabels": {"app": "bot"}},
                "owner": "team-bot",
                "purpose": "answers customer questions",
                "models": [
                    {"provider": "openai", "name": "gpt-4o"},
                    {"provider": "anthropic", "name": "claude-sonnet-4-5"},
                ],
                "gateway": gateway
                if gateway is not None
                else {
                    "providerKeys": [
                        {"provider": "openai", "secretRef": {"name": "llm-keys", "key": "openai"}},
                        {
                            "provider": "anthropic",
                            "secretRef": {"name": "llm-keys", "key": "anthropic"},
                        },
                    ]
                },
                **spec,
            },
        }
    )


WORKLOAD = workload()


def app_container(**fields: Any) -> dict[str, Any]:
    """A container that meets the restricted Pod Security level on its own."""
    return {
        "name": "app",
        "image": "registry.example.com/bot@sha256:" + "a" * 64,
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
        **fields,
    }


def pod(*, spec: dict[str, Any] | None = None, **metadata: Any) -> dict[str, Any]:
    """A restricted-compliant pod of the workload; `spec`/`metadata` fields replace the defaults."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": "support-bot-",
            "namespace": "shop",
            "labels": {"app": "bot"},
            **metadata,
        },
        "spec": {
            "securityContext": {
                "runAsNonRoot": True,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [app_container()],
            **(spec or {}),
        },
    }


def inject(
    original: dict[str, Any],
    target: AIWorkload = WORKLOAD,
    *,
    settings: InjectionSettings = SETTINGS,
    opt_out_allowed: bool = False,
) -> dict[str, Any]:
    """Render the patch for `original` and apply it; the original must come out untouched."""
    before = copy.deepcopy(original)
    ops = render_pod_patch(
        original,
        target,
        settings=settings,
        config_hash=HASH,
        opt_out_allowed=opt_out_allowed,
    )
    assert original == before, "render_pod_patch must not modify its input"
    assert ops, "expected an injection"
    result: dict[str, Any] = jsonpatch.apply_patch(original, ops)
    return result


def gateway_of(patched: dict[str, Any]) -> dict[str, Any]:
    first: dict[str, Any] = patched["spec"]["initContainers"][0]
    assert first["name"] == GATEWAY_CONTAINER
    return first


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    """Name -> value (or valueFrom) as the kubelet resolves duplicates: the last one wins."""
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def others(patched: dict[str, Any]) -> list[dict[str, Any]]:
    """Every container of the patched pod except the gateway."""
    spec = patched["spec"]
    everyone = [*spec["containers"], *spec.get("initContainers", [])]
    return [c for c in everyone if c["name"] != GATEWAY_CONTAINER]


# --- the sidecar --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("init_containers", "expected_after"),
    [
        pytest.param(None, [], id="no-init-containers-field-creates-the-list"),
        pytest.param([], [], id="empty-init-containers-gets-the-gateway"),
        pytest.param(
            [{"name": "migrate", "image": "migrate:1"}, {"name": "warm", "image": "warm:1"}],
            ["migrate", "warm"],
            id="gateway-goes-before-existing-init-containers",
        ),
        pytest.param(
            [{"name": "mesh", "image": "mesh:1", "restartPolicy": "Always"}],
            ["mesh"],
            id="gateway-goes-before-other-native-sidecars",
        ),
    ],
)
def test_gateway_is_the_first_init_container_and_a_native_sidecar(
    init_containers: list[dict[str, Any]] | None, expected_after: list[str]
) -> None:
    original = pod(spec={} if init_containers is None else {"initContainers": init_containers})
    patched = inject(original)
    names = [c["name"] for c in patched["spec"]["initContainers"]]
    assert names == [GATEWAY_CONTAINER, *expected_after]
    assert gateway_of(patched)["restartPolicy"] == "Always"
    assert [c["name"] for c in patched["spec"]["containers"]] == ["app"]


def test_gateway_runs_the_gateway_command_on_the_configured_ports() -> None:
    settings = InjectionSettings(
        gateway_image="img:2", gateway_port=18080, metrics_port=19090, image_pull_policy="Always"
    )
    gateway = gateway_of(inject(pod(), settings=settings))
    assert gateway["image"] == "img:2"
    assert gateway["imagePullPolicy"] == "Always"
    assert gateway["command"] == [
        "aigis",
        "gateway",
        "--config",
        "/etc/aigis/gateway/config.json",
        "--listen",
        "127.0.0.1:18080",
        "--metrics-listen",
        "0.0.0.0:19090",
        "--audit-key-file",
        "/var/run/aigis/audit-key/hmac-key",
        "--audit-state-dir",
        "/var/run/aigis/audit-state",
    ]
    # Probes go to the metrics listener: the app port is on loopback, out of the kubelet's reach.
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert gateway[probe]["httpGet"]["port"] == 19090, probe
    assert gateway["startupProbe"]["httpGet"]["path"] == "/readyz"
    assert gateway["ports"] == [
        {"name": "aigis-metrics", "containerPort": 19090, "protocol": "TCP"}
    ]


def test_gateway_security_context_is_restricted() -> None:
    security = gateway_of(inject(pod()))["securityContext"]
    assert security == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": 65532,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


@pytest.mark.parametrize(
    ("gateway_spec", "expected"),
    [
        pytest.param(
            {},
            {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
            id="no-resources-get-the-defaults",
        ),
        pytest.param(
            {"resources": {"limits": {"memory": "32Mi"}}},
            {"limits": {"memory": "32Mi"}},
            id="declared-resources-are-used-as-written-never-mixed-with-defaults",
        ),
        pytest.param(
            {"resources": {"requests": {"cpu": 1}, "limits": {"cpu": "2", "memory": "1Gi"}}},
            {"requests": {"cpu": 1}, "limits": {"cpu": "2", "memory": "1Gi"}},
            id="declared-requests-and-limits-both-kept",
        ),
    ],
)
def test_gateway_resources(gateway_spec: dict[str, Any], expected: dict[str, Any]) -> None:
    gateway = gateway_of(inject(pod(), workload(gateway=gateway_spec)))
    assert gateway["resources"] == expected


def test_metrics_port_name_is_dropped_when_the_pod_already_uses_it() -> None:
    app = app_container(ports=[{"name": "aigis-metrics", "containerPort": 9000}])
    gateway = gateway_of(inject(pod(spec={"containers": [app]})))
    assert gateway["ports"] == [{"containerPort": 15091, "protocol": "TCP"}]


# --- volumes ------------------------------------------------------------------------------


def volume(patched: dict[str, Any], name: str) -> dict[str, Any]:
    matches = [v for v in patched["spec"]["volumes"] if v["name"] == name]
    assert len(matches) == 1, name
    return matches[0]


def test_config_and_key_volumes_are_mounted_only_in_the_gateway() -> None:
    patched = inject(pod())
    assert volume(patched, "aigis-gateway-config")["configMap"] == {
        "name": gateway_config_map_name("support-bot")
    }
    assert volume(patched, "aigis-provider-keys")["projected"]["sources"] == [
        {"secret": {"name": "llm-keys", "items": [{"key": "openai", "path": "openai"}]}},
        {"secret": {"name": "llm-keys", "items": [{"key": "anthropic", "path": "anthropic"}]}},
    ]
    assert gateway_of(patched)["volumeMounts"] == [
        {"name": "aigis-gateway-config", "mountPath": "/etc/aigis/gateway", "readOnly": True},
        {"name": "aigis-provider-keys", "mountPath": DEFAULT_KEY_DIR, "readOnly": True},
        {"name": "aigis-audit-key", "mountPath": AUDIT_KEY_DIR, "readOnly": True},
        {"name": "aigis-audit-state", "mountPath": AUDIT_STATE_DIR},
    ]
    assert all("volumeMounts" not in c for c in others(patched))


@pytest.mark.parametrize(
    ("existing", "expected_names"),
    [
        pytest.param(None, [*INJECTED_VOLUMES], id="no-volumes-field"),
        pytest.param(
            [{"name": "data", "emptyDir": {}}],
            ["data", *INJECTED_VOLUMES],
            id="existing-volumes-are-kept-first",
        ),
        pytest.param(
            [
                {"name": "aigis-gateway-config", "emptyDir": {}},
                {"name": "aigis-provider-keys", "emptyDir": {}},
                {"name": "aigis-provider-keys-2", "emptyDir": {}},
            ],
            [
                "aigis-gateway-config",
                "aigis-provider-keys",
                "aigis-provider-keys-2",
                "aigis-gateway-config-2",
                "aigis-provider-keys-3",
                "aigis-audit-key",
                "aigis-audit-state",
            ],
            id="clashing-volume-names-get-a-free-suffix",
        ),
    ],
)
def test_volume_names_never_clash(
    existing: list[dict[str, Any]] | None, expected_names: list[str]
) -> None:
    patched = inject(pod(spec={} if existing is None else {"volumes": existing}))
    names = [v["name"] for v in patched["spec"]["volumes"]]
    assert names == expected_names
    mounted = {m["name"] for m in gateway_of(patched)["volumeMounts"]}
    assert mounted == set(expected_names[-4:])


def test_no_key_volume_without_provider_keys() -> None:
    patched = inject(pod(), workload(gateway={}))
    names = [v["name"] for v in patched["spec"]["volumes"]]
    assert names == ["aigis-gateway-config", "aigis-audit-key", "aigis-audit-state"]
    assert DEFAULT_KEY_DIR not in {m["mountPath"] for m in gateway_of(patched)["volumeMounts"]}


def test_second_key_for_one_provider_is_not_mounted_over_the_first() -> None:
    target = workload(
        gateway={
            "providerKeys": [
                {"provider": "openai", "secretRef": {"name": "a", "key": "k1"}},
                {"provider": "openai", "secretRef": {"name": "b", "key": "k2"}},
            ]
        }
    )
    sources = volume(inject(pod(), target), "aigis-provider-keys")["projected"]["sources"]
    assert sources == [{"secret": {"name": "a", "items": [{"key": "k1", "path": "openai"}]}}]


# --- app environment ----------------------------------------------------------------------

ROUTING = {
    "OPENAI_BASE_URL": f"{GATEWAY_URL}/v1",
    "OPENAI_API_BASE": f"{GATEWAY_URL}/v1",
    "ANTHROPIC_BASE_URL": GATEWAY_URL,
    "HTTP_PROXY": GATEWAY_URL,
    "HTTPS_PROXY": GATEWAY_URL,
    "http_proxy": GATEWAY_URL,
    "https_proxy": GATEWAY_URL,
}


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        pytest.param(
            None,
            {
                **ROUTING,
                "NO_PROXY": DEFAULT_NO_PROXY,
                "no_proxy": DEFAULT_NO_PROXY,
                "OPENAI_API_KEY": KEY_PLACEHOLDER,
                "ANTHROPIC_API_KEY": KEY_PLACEHOLDER,
            },
            id="no-env-field-gets-routing-and-sdk-key-placeholders",
        ),
        pytest.param(
            [{"name": "LOG_LEVEL", "value": "debug"}],
            {
                "LOG_LEVEL": "debug",
                **ROUTING,
                "NO_PROXY": DEFAULT_NO_PROXY,
                "no_proxy": DEFAULT_NO_PROXY,
                "OPENAI_API_KEY": KEY_PLACEHOLDER,
                "ANTHROPIC_API_KEY": KEY_PLACEHOLDER,
            },
            id="user-variables-are-kept",
        ),
        pytest.param(
            [
                {"name": "OPENAI_BASE_URL", "value": "https://api.openai.com/v1"},
                {"name": "HTTPS_PROXY", "value": "http://corp-proxy:3128"},
            ],
            {
                **ROUTING,
                "NO_PROXY": DEFAULT_NO_PROXY,
                "no_proxy": DEFAULT_NO_PROXY,
                "OPENAI_API_KEY": KEY_PLACEHOLDER,
                "ANTHROPIC_API_KEY": KEY_PLACEHOLDER,
            },
            id="aigis-wins-over-user-base-urls-and-proxies",
        ),
        pytest.param(
            [{"name": "NO_PROXY", "value": "internal.example.com, 127.0.0.1,.corp"}],
            {
                **ROUTING,
                "NO_PROXY": DEFAULT_NO_PROXY + ",internal.example.com,.corp",
                "no_proxy": DEFAULT_NO_PROXY + ",internal.example.com,.corp",
                "OPENAI_API_KEY": KEY_PLACEHOLDER,
                "ANTHROPIC_API_KEY": KEY_PLACEHOLDER,
            },
            id="user-no-proxy-is-merged-without-duplicates",
        ),
        pytest.param(
            [
                {"name": "no_proxy", "value": "old.example.com"},
                {"name": "no_proxy", "value": "lower.example.com"},
                {"name": "NO_PROXY", "value": "upper.example.com"},
            ],
            {
                **ROUTING,
                "NO_PROXY": DEFAULT_NO_PROXY + ",upper.example.com,lower.example.com",
                "no_proxy": DEFAULT_NO_PROXY + ",upper.example.com,lower.example.com",
                "OPENAI_API_KEY": KEY_PLACEHOLDER,
                "ANTHROPIC_API_KEY": KEY_PLACEHOLDER,
            },
            id="both-spellings-merged-and-only-the-effective-duplicate-counts",
        ),
        pytest.param(
            [{"name": "NO_PROXY", "valueFrom": {"configMapKeyRef": {"name": "p", "key": "np"}}}],
            {
                "AIGIS_ORIGINAL_NO_PROXY": {"configMapKeyRef": {"name": "p", "key": "np"}},
                **ROUTING,
                "NO_PROXY": DEFAULT_NO_PROXY + ",$(AIGIS_ORIGINAL_NO_PROXY)",
                "no_proxy": DEFAULT_NO_PROXY + ",$(AIGIS_ORIGINAL_NO_PROXY)",
                "OPENAI_API_KEY": KEY_PLACEHOLDER,
                "ANTHROPIC_API_KEY": KEY_PLACEHOLDER,
            },
            id="no-proxy-from-a-configmap-is-kept-and-referenced",
        ),
        pytest.param(
            [{"name": "OPENAI_API_KEY", "value": "sk-user-literal"}],
            {
                "OPENAI_API_KEY": "sk-user-literal",
                **ROUTING,
                "NO_PROXY": DEFAULT_NO_PROXY,
                "no_proxy": DEFAULT_NO_PROXY,
                "ANTHROPIC_API_KEY": KEY_PLACEHOLDER,
            },
            id="a-key-variable-the-user-set-is-not-replaced-by-a-placeholder",
        ),
    ],
)
def test_app_env_routes_sdks_through_the_gateway(
    env: list[dict[str, Any]] | None, expected: dict[str, Any]
) -> None:
    fields = {} if env is None else {"env": env}
    app = inject(pod(spec={"containers": [app_container(**fields)]}))["spec"]["containers"][0]
    assert env_of(app) == expected
    names = [e["name"] for e in app["env"]]
    assert len(names) == len(set(names)), "no duplicate variables"
    # The merged NO_PROXY comes after the variable it references, as the kubelet requires.
    if "AIGIS_ORIGINAL_NO_PROXY" in names:
        assert names.index("AIGIS_ORIGINAL_NO_PROXY") < names.index("NO_PROXY")


def test_overwritten_variables_keep_their_position() -> None:
    env = [
        {"name": "OPENAI_BASE_URL", "value": "https://api.openai.com/v1"},
        {"name": "CHAT_URL", "value": "$(OPENAI_BASE_URL)/chat/completions"},
    ]
    app = inject(pod(spec={"containers": [app_container(env=env)]}))["spec"]["containers"][0]
    assert app["env"][:2] == [
        {"name": "OPENAI_BASE_URL", "value": f"{GATEWAY_URL}/v1"},
        {"name": "CHAT_URL", "value": "$(OPENAI_BASE_URL)/chat/completions"},
    ]


def test_no_proxy_lists_declared_in_cluster_services() -> None:
    target = workload(
        egress=[
            {"service": {"name": "vector-db"}},
            {"service": {"namespace": "search", "name": "opensearch"}},
            {"host": "api.example.com"},
        ]
    )
    settings = InjectionSettings(
        gateway_image="img:1", cluster_domain="corp.local", extra_no_proxy=("10.96.0.0/12",)
    )
    app = inject(pod(), target, settings=settings)["spec"]["containers"][0]
    assert env_of(app)["NO_PROXY"].split(",") == [
        "localhost",
        "127.0.0.1",
        "::1",
        ".svc",
        ".corp.local",
        "$(KUBERNETES_SERVICE_HOST)",
        "vector-db",
        "vector-db.shop",
        "opensearch.search",
        "10.96.0.0/12",
    ]


@pytest.mark.parametrize(
    ("models", "keys", "expected"),
    [
        pytest.param(
            [{"provider": "anthropic", "name": "claude"}],
            [],
            {"ANTHROPIC_API_KEY"},
            id="anthropic-only-gets-only-the-anthropic-placeholder",
        ),
        pytest.param(
            [{"provider": "mistral", "name": "mistral-large"}],
            [],
            {"OPENAI_API_KEY"},
            id="openai-compatible-provider-is-reached-through-the-openai-sdk",
        ),
        pytest.param(
            [],
            [{"provider": "anthropic", "secretRef": {"name": "s", "key": "k"}}],
            {"ANTHROPIC_API_KEY"},
            id="a-held-key-needs-a-placeholder-even-without-models",
        ),
        pytest.param([], [], set(), id="no-providers-no-placeholders"),
    ],
)
def test_sdk_key_placeholders_follow_the_providers(
    models: list[dict[str, Any]], keys: list[dict[str, Any]], expected: set[str]
) -> None:
    target = workload(models=models, gateway={"providerKeys": keys})
    app = inject(pod(), target)["spec"]["containers"][0]
    placeholders = {e["name"] for e in app["env"] if e.get("value") == KEY_PLACEHOLDER}
    assert placeholders == expected


def test_ordinary_init_containers_are_routed_and_other_sidecars_are_not() -> None:
    key_env = {
        "name": "OPENAI_API_KEY",
        "valueFrom": {"secretKeyRef": {"name": "llm-keys", "key": "openai"}},
    }
    init = [
        {"name": "download", "image": "dl:1", "env": [key_env]},
        {"name": "mesh", "image": "mesh:1", "restartPolicy": "Always", "env": [key_env]},
    ]
    patched = inject(pod(spec={"initContainers": init}))
    download, mesh = patched["spec"]["initContainers"][1:]
    assert env_of(download)["HTTPS_PROXY"] == GATEWAY_URL
    assert env_of(download)["OPENAI_API_KEY"] == KEY_PLACEHOLDER
    assert env_of(mesh) == {"OPENAI_API_KEY": KEY_PLACEHOLDER}


def test_gateway_container_itself_gets_no_proxy_settings() -> None:
    names = {e["name"] for e in gateway_of(inject(pod()))["env"]}
    assert names == {POD_NAME_ENV, POD_NAMESPACE_ENV, POD_UID_ENV}


# --- provider keys ------------------------------------------------------------------------


def secret_refs(container: dict[str, Any]) -> set[tuple[str, str]]:
    refs = set()
    for entry in container.get("env", []):
        ref = entry.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            refs.add((ref["name"], ref["key"]))
    for source in container.get("envFrom", []):
        if "secretRef" in source:
            refs.add((source["secretRef"]["name"], "*"))
    return refs


@pytest.mark.parametrize(
    ("container", "expected_env", "expected_env_from", "expected_refs"),
    [
        pytest.param(
            app_container(
                env=[
                    {"name": "A", "value": "1"},
                    {
                        "name": "OPENAI_API_KEY",
                        "valueFrom": {"secretKeyRef": {"name": "llm-keys", "key": "openai"}},
                    },
                    {"name": "AUTH", "value": "Bearer $(OPENAI_API_KEY)"},
                    {
                        "name": "MY_CLAUDE",
                        "valueFrom": {"secretKeyRef": {"name": "llm-keys", "key": "anthropic"}},
                    },
                ]
            ),
            {
                "A": "1",
                "OPENAI_API_KEY": KEY_PLACEHOLDER,
                "AUTH": "Bearer $(OPENAI_API_KEY)",
                "MY_CLAUDE": KEY_PLACEHOLDER,
                "ANTHROPIC_API_KEY": KEY_PLACEHOLDER,
            },
            None,
            set(),
            id="env-key-refs-become-placeholders-in-place",
        ),
        pytest.param(
            app_container(
                env=[
                    {
                        "name": "DB_PASSWORD",
                        "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}},
                    },
                    {
                        "name": "OTHER_KEY",
                        "valueFrom": {"secretKeyRef": {"name": "llm-keys", "key": "unrelated"}},
                    },
                ]
            ),
            {
                "DB_PASSWORD": {"secretKeyRef": {"name": "db", "key": "password"}},
                "OTHER_KEY": {"secretKeyRef": {"name": "llm-keys", "key": "unrelated"}},
                "OPENAI_API_KEY": KEY_PLACEHOLDER,
                "ANTHROPIC_API_KEY": KEY_PLACEHOLDER,
            },
            None,
            {("db", "password"), ("llm-keys", "unrelated")},
            id="undeclared-secret-keys-are-left-alone",
        ),
        pytest.param(
            app_container(
                envFrom=[
                    {"secretRef": {"name": "llm-keys"}},
                    {"configMapRef": {"name": "settings"}},
                    {"secretRef": {"name": "db"}},
                    {"secretRef": {"name": "llm-keys"}, "prefix": "X_"},
                ]
            ),
            {
                "openai": KEY_PLACEHOLDER,
                "anthropic": KEY_PLACEHOLDER,
                "X_openai": KEY_PLACEHOLDER,
                "X_anthropic": KEY_PLACEHOLDER,
                "OPENAI_API_KEY": KEY_PLACEHOLDER,
                "ANTHROPIC_API_KEY": KEY_PLACEHOLDER,
            },
            [{"configMapRef": {"name": "settings"}}, {"secretRef": {"name": "db"}}],
            {("db", "*")},
            id="env-from-a-key-secret-is-removed-by-index-highest-first",
        ),
    ],
)
def test_provider_keys_leave_the_app(
    container: dict[str, Any],
    expected_env: dict[str, Any],
    expected_env_from: list[dict[str, Any]] | None,
    expected_refs: set[tuple[str, str]],
) -> None:
    patched = inject(pod(spec={"containers": [container]}))
    app = patched["spec"]["containers"][0]
    routing = set(ROUTING) | {"NO_PROXY", "no_proxy"}
    assert {k: v for k, v in env_of(app).items() if k not in routing} == expected_env
    assert app.get("envFrom") == expected_env_from
    assert secret_refs(app) == expected_refs
    # The key is present only as a file in the gateway.
    sources = volume(patched, "aigis-provider-keys")["projected"]["sources"]
    assert {(s["secret"]["name"], s["secret"]["items"][0]["key"]) for s in sources} == {
        ("llm-keys", "openai"),
        ("llm-keys", "anthropic"),
    }


def test_env_from_placeholders_only_for_valid_variable_names() -> None:
    target = workload(
        gateway={
            "providerKeys": [
                {"provider": "openai", "secretRef": {"name": "keys", "key": "1st-openai"}},
                {"provider": "anthropic", "secretRef": {"name": "keys", "key": "claude.key"}},
            ]
        }
    )
    app = app_container(envFrom=[{"secretRef": {"name": "keys"}}])
    patched = inject(pod(spec={"containers": [app]}), target)["spec"]["containers"][0]
    assert patched["envFrom"] == []
    env = env_of(patched)
    assert env["claude.key"] == KEY_PLACEHOLDER
    assert "1st-openai" not in env


def test_key_refs_are_removed_from_every_container() -> None:
    key_env = {
        "name": "OPENAI_API_KEY",
        "valueFrom": {"secretKeyRef": {"name": "llm-keys", "key": "openai"}},
    }
    spec = {
        "containers": [app_container(env=[key_env]), app_container(name="worker", env=[key_env])],
        "initContainers": [
            {"name": "prep", "image": "p:1", "envFrom": [{"secretRef": {"name": "llm-keys"}}]}
        ],
    }
    patched = inject(pod(spec=spec))
    for container in others(patched):
        assert not any(ref[0] == "llm-keys" for ref in secret_refs(container)), container["name"]


# --- metadata -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metadata", "expected_labels", "expected_annotations"),
    [
        pytest.param(
            None,
            {WORKLOAD_LABEL: "support-bot"},
            {INJECTED_ANNOTATION: "true", CONFIG_HASH_ANNOTATION: HASH},
            id="no-metadata-at-all",
        ),
        pytest.param(
            {"generateName": "bot-"},
            {WORKLOAD_LABEL: "support-bot"},
            {INJECTED_ANNOTATION: "true", CONFIG_HASH_ANNOTATION: HASH},
            id="no-labels-or-annotations-fields",
        ),
        pytest.param(
            {
                "labels": {"app": "bot", WORKLOAD_LABEL: "someone-else"},
                "annotations": {"team.example.com/owner": "a~b", CONFIG_HASH_ANNOTATION: "old"},
            },
            {"app": "bot", WORKLOAD_LABEL: "support-bot"},
            {
                "team.example.com/owner": "a~b",
                INJECTED_ANNOTATION: "true",
                CONFIG_HASH_ANNOTATION: HASH,
            },
            id="existing-keys-with-slashes-kept-and-aigis-keys-overwritten",
        ),
    ],
)
def test_labels_and_annotations(
    metadata: dict[str, Any] | None,
    expected_labels: dict[str, str],
    expected_annotations: dict[str, str],
) -> None:
    original = pod()
    if metadata is None:
        del original["metadata"]
    else:
        original["metadata"] = metadata
    patched = inject(original)
    assert patched["metadata"]["labels"] == expected_labels
    assert patched["metadata"]["annotations"] == expected_annotations


def test_annotation_paths_escape_slashes() -> None:
    ops = render_pod_patch(
        pod(annotations={"x": "y"}),
        WORKLOAD,
        settings=SETTINGS,
        config_hash=HASH,
        opt_out_allowed=False,
    )
    paths = {op["path"] for op in ops if op["path"].startswith("/metadata/annotations/")}
    assert paths == {
        "/metadata/annotations/aigis.dev~1injected",
        "/metadata/annotations/aigis.dev~1gateway-config-hash",
    }


def test_long_workload_names_fit_a_label_value() -> None:
    name = "a" + "-b" * 100
    label = inject(pod(), workload(name=name))["metadata"]["labels"][WORKLOAD_LABEL]
    assert len(label) <= 63
    assert re.fullmatch(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?", label)
    other = inject(pod(), workload(name=name + "c"))["metadata"]["labels"][WORKLOAD_LABEL]
    assert label != other


@pytest.mark.parametrize(
    ("capture", "finalizers", "expected"),
    [
        pytest.param(True, None, [FORENSICS_FINALIZER], id="forensics-on-adds-the-finalizer"),
        pytest.param(
            True,
            ["example.com/keep"],
            ["example.com/keep", FORENSICS_FINALIZER],
            id="existing-finalizers-kept",
        ),
        pytest.param(
            True, [FORENSICS_FINALIZER], [FORENSICS_FINALIZER], id="finalizer-never-duplicated"
        ),
        pytest.param(False, None, None, id="forensics-off-adds-no-finalizer"),
    ],
)
def test_forensics_finalizer(
    capture: bool, finalizers: list[str] | None, expected: list[str] | None
) -> None:
    original = pod() if finalizers is None else pod(finalizers=finalizers)
    target = workload(forensics={"captureOnTermination": capture})
    assert inject(original, target)["metadata"].get("finalizers") == expected


# --- when nothing is injected -------------------------------------------------------------


def with_gateway() -> dict[str, Any]:
    return inject(pod())


@pytest.mark.parametrize(
    ("original", "target", "opt_out_allowed"),
    [
        pytest.param(pod(), workload(gateway={"inject": False}), False, id="gateway-off"),
        pytest.param(
            pod(annotations={OPT_OUT_ANNOTATION: "false"}),
            WORKLOAD,
            True,
            id="opt-out-where-allowed",
        ),
        pytest.param(
            pod(annotations={OPT_OUT_ANNOTATION: " False "}),
            WORKLOAD,
            True,
            id="opt-out-value-is-case-insensitive",
        ),
        pytest.param(with_gateway(), WORKLOAD, False, id="already-injected-pod"),
        pytest.param(
            pod(spec={"containers": [app_container(name=GATEWAY_CONTAINER)]}),
            WORKLOAD,
            False,
            id="an-app-container-named-like-the-gateway-would-clash",
        ),
        pytest.param(pod(spec={"os": {"name": "windows"}}), WORKLOAD, False, id="windows-pod"),
        pytest.param(pod(spec={"containers": []}), WORKLOAD, False, id="no-containers"),
        pytest.param(
            {"metadata": {}, "spec": {"volumes": []}}, WORKLOAD, False, id="no-containers-field"
        ),
        pytest.param(pod(), workload(name=""), False, id="workload-without-a-name"),
    ],
)
def test_nothing_to_do(original: Any, target: AIWorkload, opt_out_allowed: bool) -> None:
    ops = render_pod_patch(
        original, target, settings=SETTINGS, config_hash=HASH, opt_out_allowed=opt_out_allowed
    )
    assert ops == []


@pytest.mark.parametrize(
    "annotations",
    [
        pytest.param({OPT_OUT_ANNOTATION: "false"}, id="opt-out-ignored-where-not-allowed"),
        pytest.param({OPT_OUT_ANNOTATION: "true"}, id="inject-true-is-not-an-opt-out"),
        pytest.param(
            {INJECTED_ANNOTATION: "true"}, id="a-copied-injected-annotation-does-not-skip"
        ),
    ],
)
def test_still_injected(annotations: dict[str, str]) -> None:
    patched = inject(pod(annotations=annotations), opt_out_allowed=False)
    assert gateway_of(patched)["restartPolicy"] == "Always"


# --- idempotency --------------------------------------------------------------------------

SAMPLES = [
    pytest.param(pod(), id="plain-pod"),
    pytest.param(
        {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a", "image": "a"}]}},
        id="minimal-pod-every-list-absent",
    ),
    pytest.param(
        pod(
            finalizers=["x/y"],
            annotations={"a/b": "c"},
            spec={
                "containers": [
                    app_container(
                        env=[
                            {"name": "NO_PROXY", "value": "a.example"},
                            {
                                "name": "K",
                                "valueFrom": {
                                    "secretKeyRef": {"name": "llm-keys", "key": "openai"}
                                },
                            },
                        ],
                        envFrom=[{"secretRef": {"name": "llm-keys"}}],
                    )
                ],
                "initContainers": [{"name": "i", "image": "i", "env": []}],
                "volumes": [{"name": "v", "emptyDir": {}}],
            },
        ),
        id="pod-with-every-list-present",
    ),
    pytest.param(
        pod(
            spec={
                "containers": [app_container(env=[{"name": "OPENAI_BASE_URL", "value": "x"}])],
                "initContainers": [],
                "volumes": [],
            }
        ),
        id="pod-with-empty-lists",
    ),
    pytest.param(
        pod(spec={"containers": [app_container(env=[{"name": "A", "value": "1"}])]}),
        id="only-an-env-list-to-append-to",
    ),
    pytest.param(
        pod(
            spec={
                "containers": [
                    app_container(
                        envFrom=[
                            {"secretRef": {"name": "llm-keys"}},
                            {"configMapRef": {"name": "settings"}},
                        ]
                    )
                ]
            }
        ),
        id="only-an-env-from-removal",
    ),
    pytest.param(
        pod(spec={"initContainers": [{"name": "mesh", "image": "m", "restartPolicy": "Always"}]}),
        id="only-an-init-container-insert",
    ),
    pytest.param(pod(spec={"initContainers": []}), id="only-an-insert-into-an-empty-list"),
]


@pytest.mark.parametrize("original", SAMPLES)
def test_reinvocation_on_the_patched_pod_changes_nothing(original: dict[str, Any]) -> None:
    patched = inject(original)
    again = render_pod_patch(
        patched, WORKLOAD, settings=SETTINGS, config_hash=HASH, opt_out_allowed=False
    )
    assert again == []


@pytest.mark.parametrize("original", SAMPLES)
def test_applying_the_patch_twice_fails_as_a_whole(original: dict[str, Any]) -> None:
    ops = render_pod_patch(
        original, WORKLOAD, settings=SETTINGS, config_hash=HASH, opt_out_allowed=False
    )
    once = jsonpatch.apply_patch(original, ops)
    try:
        twice = jsonpatch.apply_patch(once, ops)
    except (jsonpatch.JsonPatchTestFailed, jsonpatch.JsonPatchConflict):
        return
    # Where every operation is idempotent, a second application must change nothing.
    assert twice == once


def test_pins_come_before_every_change() -> None:
    ops = render_pod_patch(
        SAMPLES[2].values[0], WORKLOAD, settings=SETTINGS, config_hash=HASH, opt_out_allowed=False
    )
    kinds = [op["op"] for op in ops]
    assert "test" in kinds
    first_change = next(i for i, kind in enumerate(kinds) if kind != "test")
    assert "test" not in kinds[first_change:]


def test_removals_run_from_the_highest_index_down() -> None:
    env_from = [{"secretRef": {"name": "llm-keys"}}] * 3
    ops = render_pod_patch(
        pod(spec={"containers": [app_container(envFrom=env_from)]}),
        WORKLOAD,
        settings=SETTINGS,
        config_hash=HASH,
        opt_out_allowed=False,
    )
    removed = [op["path"] for op in ops if op["op"] == "remove"]
    assert removed == [f"/spec/containers/0/envFrom/{i}" for i in (2, 1, 0)]


# --- Pod Security -------------------------------------------------------------------------


@pytest.mark.parametrize("level", ["baseline", "restricted"])
@pytest.mark.parametrize(
    "settings",
    [
        pytest.param(SETTINGS, id="default-settings"),
        pytest.param(
            InjectionSettings(gateway_image="img:1", run_as_user=None), id="image-chosen-user"
        ),
    ],
)
def test_injected_pod_keeps_its_pod_security_level(level: Any, settings: InjectionSettings) -> None:
    original = pod()
    assert check_pod_security(original["spec"], original["metadata"], level) == []
    patched = inject(original, settings=settings)
    assert check_pod_security(patched["spec"], patched["metadata"], level) == []


def test_gateway_alone_passes_restricted_in_a_pod_that_sets_nothing() -> None:
    # The sidecar's own settings suffice: the only reasons left are the app's.
    bare = {"spec": {"containers": [{"name": "app", "image": "a"}]}}
    patched = inject(bare)
    reasons = check_pod_security(patched["spec"], patched.get("metadata"), "restricted")
    assert reasons
    assert all(".initContainers[0]" not in reason.path for reason in reasons)


# --- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "original",
    [
        pytest.param(None, id="not-a-mapping"),
        pytest.param([], id="a-list"),
        pytest.param({}, id="empty-object"),
        pytest.param({"spec": []}, id="spec-is-a-list"),
        pytest.param({"spec": {"containers": "app"}}, id="containers-is-a-string"),
        pytest.param({"spec": {"containers": ["app"]}}, id="container-is-a-string"),
        pytest.param(pod(spec={"initContainers": {"a": 1}}), id="init-containers-is-a-map"),
        pytest.param(pod(spec={"containers": [app_container(env={"A": "1"})]}), id="env-is-a-map"),
        pytest.param(pod(spec={"containers": [app_container(env=["A=1"])]}), id="env-entry-text"),
        pytest.param(
            pod(spec={"containers": [app_container(envFrom="llm-keys")]}), id="env-from-text"
        ),
        pytest.param(
            pod(spec={"containers": [app_container(envFrom=[{"secretRef": "llm-keys"}])]}),
            id="secret-ref-is-text",
        ),
        pytest.param(pod(spec={"volumes": "data"}), id="volumes-is-a-string"),
        pytest.param(pod(spec={"os": "linux"}), id="os-is-a-string"),
        pytest.param({"metadata": [], "spec": pod()["spec"]}, id="metadata-is-a-list"),
        pytest.param(pod(annotations=["a"]), id="annotations-is-a-list"),
        pytest.param(pod(labels="app=bot"), id="labels-is-a-string"),
        pytest.param(pod(finalizers="x"), id="finalizers-is-a-string"),
    ],
)
def test_malformed_pods_get_no_patch_and_no_exception(original: Any) -> None:
    ops = render_pod_patch(
        original, WORKLOAD, settings=SETTINGS, config_hash=HASH, opt_out_allowed=True
    )
    assert ops == []


@pytest.mark.parametrize(
    "original",
    [
        pytest.param(
            pod(spec={"containers": [app_container(env=[{"value": "no name"}])]}),
            id="env-entry-without-a-name",
        ),
        pytest.param(
            pod(spec={"containers": [app_container(env=[{"name": "X", "valueFrom": "s"}])]}),
            id="value-from-is-text",
        ),
        pytest.param(pod(annotations={OPT_OUT_ANNOTATION: False}), id="opt-out-not-a-string"),
    ],
)
def test_odd_but_patchable_values_still_get_a_patch_that_applies(original: Any) -> None:
    patched = inject(original, opt_out_allowed=True)
    assert gateway_of(patched)["name"] == GATEWAY_CONTAINER


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"gateway_port": 0}, id="port-zero"),
        pytest.param({"metrics_port": 70000}, id="port-too-large"),
        pytest.param({"gateway_port": 9000, "metrics_port": 9000}, id="same-port-twice"),
        pytest.param({"gateway_image": ""}, id="no-image"),
    ],
)
def test_settings_refuse_impossible_values(fields: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"port|image"):
        InjectionSettings(**{"gateway_image": "img:1", **fields})


# --- the audit key and the pod's identity (issue 13 item 5) ---------------------------------


def test_audit_key_and_state_are_mounted_in_the_gateway_only() -> None:
    patched = inject(pod())
    gateway = gateway_of(patched)
    mounts = {m["mountPath"]: m for m in gateway["volumeMounts"]}
    key_mount, state_mount = mounts[AUDIT_KEY_DIR], mounts[AUDIT_STATE_DIR]
    assert key_mount["readOnly"] is True
    assert not state_mount.get("readOnly")
    assert volume(patched, key_mount["name"]) == {
        "name": key_mount["name"],
        "secret": {
            "secretName": audit_key_secret_name("support-bot"),
            "items": [{"key": AUDIT_KEY_SECRET_KEY, "path": AUDIT_KEY_SECRET_KEY}],
            "defaultMode": 0o444,
        },
    }
    assert volume(patched, state_mount["name"]) == {
        "name": state_mount["name"],
        "emptyDir": {"sizeLimit": "1Mi"},
    }
    gateway_volumes = {key_mount["name"], state_mount["name"]}
    assert all(
        m["name"] not in gateway_volumes for c in others(patched) for m in c.get("volumeMounts", [])
    )


def test_gateway_gets_the_audit_flags_and_the_pod_identity() -> None:
    gateway = gateway_of(inject(pod()))
    command = gateway["command"]
    assert command[command.index(AUDIT_KEY_FLAG) + 1] == AUDIT_KEY_FILE
    assert command[command.index(AUDIT_STATE_FLAG) + 1] == AUDIT_STATE_DIR
    assert gateway["env"] == [
        {
            "name": name,
            "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": field_path}},
        }
        for name, field_path in (
            (POD_NAME_ENV, "metadata.name"),
            (POD_NAMESPACE_ENV, "metadata.namespace"),
            (POD_UID_ENV, "metadata.uid"),
        )
    ]


# --- volume names no other container mounts (issue 13 item 4) -------------------------------


@pytest.mark.parametrize(
    "taken", ["aigis-gateway-config", "aigis-provider-keys", "aigis-audit-key", "aigis-audit-state"]
)
@pytest.mark.parametrize("where", ["containers", "initContainers", "ephemeralContainers"])
def test_injected_volume_names_are_mounted_by_no_other_container(taken: str, where: str) -> None:
    """A container that already mounts a name the injection would create (with no such volume
    yet) would receive the gateway's keys: the injection must pick another name."""
    mount = {"name": taken, "mountPath": "/mnt/x"}
    if where == "containers":
        spec: dict[str, Any] = {"containers": [app_container(volumeMounts=[mount])]}
    else:
        spec = {where: [{"name": "other", "image": "busybox", "volumeMounts": [mount]}]}
    patched = inject(pod(spec=spec))
    gateway_volumes = {m["name"] for m in gateway_of(patched)["volumeMounts"]}
    assert len(gateway_volumes) == 4
    assert taken not in gateway_volumes
    assert gateway_volumes <= {v["name"] for v in patched["spec"]["volumes"]}


def test_the_gateway_as_the_api_server_stores_it_still_equals_the_rendered_one() -> None:
    """The validating side compares the stored pod with `render_gateway`: the values the API
    server fills in, and the suffixed volume names the injection picked, must not count."""
    taken = [{"name": "aigis-provider-keys", "emptyDir": {}}]
    patched = inject(pod(spec={"volumes": taken}))
    gateway = copy.deepcopy(gateway_of(patched))
    gateway["terminationMessagePath"] = "/dev/termination-log"
    gateway["imagePullPolicy"] = "Always"
    gateway["ports"] = [{"containerPort": p["containerPort"]} for p in gateway["ports"]]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        gateway[probe]["httpGet"]["scheme"] = "HTTP"
        gateway[probe]["successThreshold"] = 1
    del gateway["env"][0]["valueFrom"]["fieldRef"]["apiVersion"]
    volumes = [
        {**v, "configMap": {**v["configMap"], "defaultMode": 0o644}} if "configMap" in v else v
        for v in patched["spec"]["volumes"]
    ]
    assert "aigis-provider-keys-2" in {m["name"] for m in gateway["volumeMounts"]}
    expected = render_gateway("support-bot", WORKLOAD.spec, SETTINGS)
    assert gateway_differences(gateway, volumes, expected) == []
    # ...while a mount of the same path from another volume is a difference.
    swapped = copy.deepcopy(gateway)
    swapped["volumeMounts"][1]["name"] = "aigis-provider-keys"
    assert gateway_differences(swapped, volumes, expected) == ["volumeMounts"]
