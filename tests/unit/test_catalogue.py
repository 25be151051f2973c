"""The endpoint catalogue: which provider a host belongs to and where requests to it go."""

from __future__ import annotations

import re
from collections import Counter
from typing import get_args

import pytest

from aigis.api.aiworkload import Provider
from aigis.api.regions import DATA_REGIONS
from aigis.egress.catalogue import (
    ENDPOINTS,
    LOCATIONS,
    PROVIDER_APIS,
    Cloud,
    Endpoint,
    default_base_url,
    default_upstream,
    effective_region,
    jurisdiction_of_location,
    lookup_endpoint,
    provider_base_url,
    region_conflicts,
)
from aigis.gateway.config import PROVIDER_ENDPOINTS

# One location per cloud, in the EU, to turn a hostname shape into a host that must match it.
SAMPLE_LOCATION: dict[Cloud, str] = {
    "aws": "eu-west-1",
    "gcp": "europe-west4",
    "azure": "westeurope",
    "ibm": "eu-de",
    "alibaba": "eu-central-1",
}
SAMPLE_VALUE = {"resource": "acme-prod", "endpoint": "ep1", "workspace": "ws1", "project": "1234"}


def sample_host(row: Endpoint) -> str:
    def fill(placeholder: re.Match[str]) -> str:
        name = placeholder.group(1)
        if name == "location":
            assert row.cloud is not None
            return SAMPLE_LOCATION[row.cloud]
        return SAMPLE_VALUE[name]

    return re.sub(r"<([a-z]+)>", fill, row.shape)


def row_id(row: Endpoint) -> str:
    return row.shape


@pytest.mark.parametrize(
    ("host", "provider", "region", "location", "basis"),
    [
        # OpenAI: the default host is global; only the us and eu prefixes pin processing.
        pytest.param(
            "api.openai.com", "openai", "global", None, "catalogue:", id="openai-default-is-global"
        ),
        pytest.param(
            "us.api.openai.com", "openai", "us", None, "catalogue:", id="openai-us-residency"
        ),
        pytest.param(
            "eu.api.openai.com", "openai", "eu", None, "catalogue:", id="openai-eu-residency"
        ),
        pytest.param(
            "jp.api.openai.com",
            "openai",
            "global",
            None,
            "catalogue:",
            id="openai-storage-only-residency-is-global",
        ),
        pytest.param(
            "gb.api.openai.com",
            "openai",
            "global",
            None,
            "catalogue:",
            id="openai-uk-storage-only-is-global",
        ),
        # Anthropic
        pytest.param(
            "api.anthropic.com",
            "anthropic",
            "global",
            None,
            "catalogue:",
            id="anthropic-default-is-global",
        ),
        pytest.param(
            "aws-external-anthropic.eu-central-1.api.aws",
            "anthropic",
            "global",
            "eu-central-1",
            "pattern:",
            id="claude-on-aws-row-region-beats-location",
        ),
        # AWS Bedrock and SageMaker: the Region in the hostname decides.
        pytest.param(
            "bedrock-runtime.eu-west-1.amazonaws.com",
            "bedrock",
            "eu",
            "eu-west-1",
            "pattern:",
            id="bedrock-runtime-ireland-is-eu",
        ),
        pytest.param(
            "bedrock.us-west-2.amazonaws.com",
            "bedrock",
            "us",
            "us-west-2",
            "pattern:",
            id="bedrock-control-plane",
        ),
        pytest.param(
            "bedrock-agent-runtime.ap-northeast-1.amazonaws.com",
            "bedrock",
            "jp",
            "ap-northeast-1",
            "pattern:",
            id="bedrock-agent-runtime-tokyo-is-jp",
        ),
        pytest.param(
            "bedrock-agentcore.ap-southeast-2.amazonaws.com",
            "bedrock",
            "au",
            "ap-southeast-2",
            "pattern:",
            id="bedrock-agentcore-sydney-is-au",
        ),
        pytest.param(
            "bedrock-runtime-fips.us-gov-west-1.amazonaws.com",
            "bedrock",
            "us",
            "us-gov-west-1",
            "pattern:",
            id="bedrock-fips-govcloud-is-us",
        ),
        pytest.param(
            "bedrock-runtime.eu-west-2.amazonaws.com",
            "bedrock",
            "uk",
            "eu-west-2",
            "pattern:",
            id="bedrock-london-is-uk-not-eu",
        ),
        pytest.param(
            "bedrock-runtime.eu-central-2.amazonaws.com",
            "bedrock",
            "ch",
            "eu-central-2",
            "pattern:",
            id="bedrock-zurich-is-ch-not-eu",
        ),
        pytest.param(
            "bedrock-runtime.eusc-de-east-1.amazonaws.eu",
            "bedrock",
            "eu",
            "eusc-de-east-1",
            "pattern:",
            id="bedrock-european-sovereign-cloud",
        ),
        pytest.param(
            "bedrock-mantle.us-east-1.api.aws",
            "bedrock",
            "us",
            "us-east-1",
            "pattern:",
            id="bedrock-mantle",
        ),
        pytest.param(
            "bedrock-runtime.ap-east-1.amazonaws.com",
            "bedrock",
            None,
            "ap-east-1",
            "pattern:",
            id="bedrock-hong-kong-has-no-data-region",
        ),
        pytest.param(
            "bedrock-runtime.eu-west-9.amazonaws.com",
            "bedrock",
            None,
            "eu-west-9",
            "pattern:",
            id="bedrock-unknown-region-keeps-provider",
        ),
        pytest.param(
            "runtime.sagemaker.ca-central-1.amazonaws.com",
            "sagemaker",
            "ca",
            "ca-central-1",
            "pattern:",
            id="sagemaker-runtime-canada",
        ),
        # Azure: a resource's hostname hides its region; sovereign clouds and ML endpoints show it.
        pytest.param(
            "support-eu.openai.azure.com",
            "azure-openai",
            None,
            None,
            "pattern:",
            id="azure-openai-resource-is-unknown",
        ),
        pytest.param(
            "acme.services.ai.azure.com",
            "azure-openai",
            None,
            None,
            "pattern:",
            id="azure-foundry-resource-is-unknown",
        ),
        pytest.param(
            "acme.cognitiveservices.azure.com",
            "azure-openai",
            None,
            None,
            "pattern:",
            id="azure-cognitive-resource-is-unknown",
        ),
        pytest.param(
            "acme.openai.azure.us",
            "azure-openai",
            "us",
            None,
            "pattern:",
            id="azure-government-is-us",
        ),
        pytest.param(
            "acme.openai.azure.cn", "azure-openai", "cn", None, "pattern:", id="azure-china-is-cn"
        ),
        pytest.param(
            "mistral-large-x1.swedencentral.models.ai.azure.com",
            "azure-ml",
            "eu",
            "swedencentral",
            "pattern:",
            id="azure-serverless-sweden-is-eu",
        ),
        pytest.param(
            "scorer.uksouth.inference.ml.azure.com",
            "azure-ml",
            "uk",
            "uksouth",
            "pattern:",
            id="azure-ml-online-uk-south-is-uk",
        ),
        # Google
        pytest.param(
            "europe-west4-aiplatform.googleapis.com",
            "vertex",
            "eu",
            "europe-west4",
            "pattern:",
            id="vertex-netherlands-is-eu",
        ),
        pytest.param(
            "us-central1-aiplatform.googleapis.com",
            "vertex",
            "us",
            "us-central1",
            "pattern:",
            id="vertex-iowa-is-us",
        ),
        pytest.param(
            "europe-west6-aiplatform.googleapis.com",
            "vertex",
            "ch",
            "europe-west6",
            "pattern:",
            id="vertex-zurich-is-ch",
        ),
        pytest.param(
            "europe-west2-aiplatform.googleapis.com",
            "vertex",
            "uk",
            "europe-west2",
            "pattern:",
            id="vertex-london-is-uk",
        ),
        pytest.param(
            "me-central2-aiplatform.googleapis.com",
            "vertex",
            "sa",
            "me-central2",
            "pattern:",
            id="vertex-dammam-is-sa",
        ),
        pytest.param(
            "europe-west99-aiplatform.googleapis.com",
            "vertex",
            None,
            "europe-west99",
            "pattern:",
            id="vertex-unknown-location-keeps-provider",
        ),
        pytest.param(
            "aiplatform.googleapis.com",
            "vertex",
            "global",
            "global",
            "catalogue:",
            id="vertex-global-endpoint",
        ),
        pytest.param(
            "aiplatform.eu.rep.googleapis.com",
            "vertex",
            "eu",
            "eu",
            "catalogue:",
            id="vertex-eu-multi-region",
        ),
        pytest.param(
            "aiplatform.us.rep.googleapis.com",
            "vertex",
            "us",
            "us",
            "catalogue:",
            id="vertex-us-multi-region",
        ),
        pytest.param(
            "4242.europe-west3-123456.prediction.vertexai.goog",
            "vertex",
            "eu",
            "europe-west3",
            "pattern:",
            id="vertex-dedicated-endpoint",
        ),
        pytest.param(
            "generativelanguage.googleapis.com",
            "gemini",
            "global",
            None,
            "catalogue:",
            id="gemini-api-is-global",
        ),
        # Mistral, Cohere, xAI
        pytest.param(
            "api.mistral.ai",
            "mistral",
            "global",
            None,
            "catalogue:",
            id="mistral-default-is-global",
        ),
        pytest.param(
            "api.eu.mistral.ai", "mistral", "eu", None, "catalogue:", id="mistral-eu-regional"
        ),
        pytest.param("api.cohere.com", "cohere", "us", None, "catalogue:", id="cohere-com"),
        pytest.param("api.cohere.ai", "cohere", "us", None, "catalogue:", id="cohere-ai"),
        pytest.param("api.x.ai", "xai", "global", None, "catalogue:", id="xai-default-is-global"),
        pytest.param("us.api.x.ai", "xai", "us", "us", "catalogue:", id="xai-us"),
        pytest.param(
            "eu-west-1.api.x.ai", "xai", "eu", "eu-west-1", "catalogue:", id="xai-eu-west-1"
        ),
        # Routers and hosts of open models
        pytest.param(
            "openrouter.ai",
            "openrouter",
            "global",
            None,
            "catalogue:",
            id="openrouter-routes-anywhere",
        ),
        pytest.param(
            "eu.openrouter.ai", "openrouter", "eu", None, "catalogue:", id="openrouter-eu"
        ),
        pytest.param(
            "router.huggingface.co",
            "huggingface",
            "global",
            None,
            "catalogue:",
            id="huggingface-router-routes-anywhere",
        ),
        pytest.param(
            "abc123.us-east-1.aws.endpoints.huggingface.cloud",
            "huggingface",
            "us",
            "us-east-1",
            "pattern:",
            id="huggingface-endpoint-aws",
        ),
        pytest.param(
            "abc123.eu-west-1.aws.endpoints.huggingface.cloud",
            "huggingface",
            "eu",
            "eu-west-1",
            "pattern:",
            id="huggingface-endpoint-aws-ireland",
        ),
        pytest.param(
            "abc123.us-east4.gcp.endpoints.huggingface.cloud",
            "huggingface",
            "us",
            "us-east4",
            "pattern:",
            id="huggingface-endpoint-gcp",
        ),
        pytest.param(
            "abc123.eastus.azure.endpoints.huggingface.cloud",
            "huggingface",
            "us",
            "eastus",
            "pattern:",
            id="huggingface-endpoint-azure",
        ),
        pytest.param(
            "api.groq.com",
            "groq",
            None,
            None,
            "catalogue:",
            id="groq-known-provider-unknown-region",
        ),
        pytest.param("api.together.xyz", "together", None, None, "catalogue:", id="together"),
        pytest.param("api.fireworks.ai", "fireworks", None, None, "catalogue:", id="fireworks"),
        pytest.param("api.perplexity.ai", "perplexity", None, None, "catalogue:", id="perplexity"),
        pytest.param("api.deepseek.com", "deepseek", "cn", None, "catalogue:", id="deepseek-is-cn"),
        pytest.param(
            "api.aleph-alpha.com",
            "aleph-alpha",
            "eu",
            None,
            "catalogue:",
            id="aleph-alpha-germany-is-eu",
        ),
        # IBM watsonx
        pytest.param(
            "us-south.ml.cloud.ibm.com",
            "watsonx",
            "us",
            "us-south",
            "pattern:",
            id="watsonx-dallas-is-us",
        ),
        pytest.param(
            "eu-de.ml.cloud.ibm.com",
            "watsonx",
            "eu",
            "eu-de",
            "pattern:",
            id="watsonx-frankfurt-is-eu",
        ),
        pytest.param(
            "eu-gb.ml.cloud.ibm.com",
            "watsonx",
            "uk",
            "eu-gb",
            "pattern:",
            id="watsonx-london-is-uk",
        ),
        pytest.param(
            "jp-tok.ml.cloud.ibm.com",
            "watsonx",
            "jp",
            "jp-tok",
            "pattern:",
            id="watsonx-tokyo-is-jp",
        ),
        pytest.param(
            "ap-south-1.aws.wxai.ibm.com",
            "watsonx",
            "in",
            "ap-south-1",
            "pattern:",
            id="watsonx-on-aws-mumbai-is-in",
        ),
        # Alibaba and other providers in China
        pytest.param(
            "dashscope.aliyuncs.com",
            "dashscope",
            "cn",
            "cn-beijing",
            "catalogue:",
            id="dashscope-beijing-is-cn",
        ),
        pytest.param(
            "dashscope-intl.aliyuncs.com",
            "dashscope",
            "sg",
            "ap-southeast-1",
            "catalogue:",
            id="dashscope-intl-is-sg",
        ),
        pytest.param(
            "dashscope-us.aliyuncs.com",
            "dashscope",
            "us",
            "us-east-1",
            "catalogue:",
            id="dashscope-us-is-us",
        ),
        pytest.param(
            "cn-hongkong.dashscope.aliyuncs.com",
            "dashscope",
            None,
            "cn-hongkong",
            "catalogue:",
            id="dashscope-hong-kong-has-no-data-region",
        ),
        pytest.param(
            "ws1.eu-west-1.maas.aliyuncs.com",
            "dashscope",
            "uk",
            "eu-west-1",
            "pattern:",
            id="alibaba-eu-west-1-is-london-not-ireland",
        ),
        pytest.param(
            "ws1.cn-beijing.maas.aliyuncs.com",
            "dashscope",
            "cn",
            "cn-beijing",
            "pattern:",
            id="alibaba-workspace-beijing",
        ),
        pytest.param(
            "qianfan.baidubce.com", "baidu", "cn", None, "catalogue:", id="baidu-qianfan-is-cn"
        ),
        pytest.param("api.moonshot.cn", "moonshot", "cn", None, "catalogue:", id="moonshot-is-cn"),
    ],
)
def test_lookup_known_endpoints(
    host: str, provider: str, region: str | None, location: str | None, basis: str
) -> None:
    found = lookup_endpoint(host)
    assert (found.host, found.provider, found.region, found.location) == (
        host,
        provider,
        region,
        location,
    )
    assert found.basis.startswith(basis)


@pytest.mark.parametrize(
    ("host", "expected_host", "provider", "region"),
    [
        pytest.param("API.OPENAI.COM", "api.openai.com", "openai", "global", id="upper-case"),
        pytest.param("api.openai.com.", "api.openai.com", "openai", "global", id="trailing-dot"),
        pytest.param(
            "Bedrock-Runtime.EU-West-1.AmazonAWS.com.",
            "bedrock-runtime.eu-west-1.amazonaws.com",
            "bedrock",
            "eu",
            id="pattern-mixed-case-and-trailing-dot",
        ),
        pytest.param(
            "Europe-West4-AIPlatform.googleapis.com",
            "europe-west4-aiplatform.googleapis.com",
            "vertex",
            "eu",
            id="location-code-upper-case",
        ),
    ],
)
def test_lookup_ignores_case_and_trailing_dot(
    host: str, expected_host: str, provider: str, region: str
) -> None:
    found = lookup_endpoint(host)
    assert (found.host, found.provider, found.region) == (expected_host, provider, region)


@pytest.mark.parametrize(
    ("host", "basis"),
    [
        pytest.param(
            "api.openai.com.evil.example",
            "unknown: not a known",
            id="catalogue-host-as-prefix-of-other-domain",
        ),
        pytest.param(
            "evil-api.openai.com",
            "unknown: not a known",
            id="uncatalogued-sibling-of-catalogue-host",
        ),
        pytest.param("openai.com", "unknown: not a known", id="parent-domain-of-catalogue-host"),
        pytest.param("api-openai.com", "unknown: not a known", id="dot-replaced-by-hyphen"),
        pytest.param(
            "bedrock-runtime.eu-west-1.amazonaws.com.attacker.net",
            "unknown: not a known",
            id="pattern-host-as-prefix-of-other-domain",
        ),
        pytest.param(
            "bedrock-runtimes.eu-west-1.amazonaws.com",
            "unknown: not a known",
            id="bedrock-look-alike-service",
        ),
        pytest.param(
            "eu-west-1.amazonaws.com", "unknown: not a known", id="aws-region-without-service"
        ),
        pytest.param(
            "bedrock-runtime.eu_west_1.amazonaws.com",
            "unknown: not a hostname",
            id="location-with-underscores",
        ),
        pytest.param(
            "xeu-west-1-aiplatform.googleapis.com",
            "unknown: not a known",
            id="vertex-prefix-with-aws-shaped-location",
        ),
        pytest.param(
            "aiplatform.googleapis.com.evil.example",
            "unknown: not a known",
            id="vertex-global-as-prefix",
        ),
        pytest.param(
            "a.b.openai.azure.com", "unknown: not a known", id="azure-resource-is-one-label"
        ),
        pytest.param(
            "openai.azure.com", "unknown: not a known", id="azure-suffix-without-resource"
        ),
        pytest.param(
            "acme.openai.azure.com.evil.example", "unknown: not a known", id="azure-host-as-prefix"
        ),
        pytest.param(
            "x.us-east-1.aws.endpoints.huggingface.cloud.evil.example",
            "unknown: not a known",
            id="huggingface-host-as-prefix",
        ),
        pytest.param("api.open\u0430i.com", "unknown: not an ASCII", id="cyrillic-look-alike"),
        pytest.param(
            "api.deepsee\u212a.com", "unknown: not an ASCII", id="kelvin-sign-lowercases-to-k"
        ),
        pytest.param("*.openai.azure.com", "unknown: a wildcard", id="wildcard"),
        pytest.param("https://api.openai.com/v1", "unknown: not a hostname", id="url"),
        pytest.param("api.openai.com:443", "unknown: not a hostname", id="host-with-port"),
        pytest.param("api..openai.com", "unknown: not a hostname", id="empty-label"),
        pytest.param("", "unknown: not a hostname", id="empty"),
        pytest.param("a" * 64 + ".example.com", "unknown: not a hostname", id="label-too-long"),
        pytest.param("192.0.2.10", "unknown: not a known", id="ip-address"),
        pytest.param("llm.internal.example.com", "unknown: not a known", id="unrelated-host"),
    ],
)
def test_lookup_unknown_and_look_alike_hosts(host: str, basis: str) -> None:
    found = lookup_endpoint(host)
    assert (found.provider, found.region, found.location) == (None, None, None)
    assert found.basis.startswith(basis)


@pytest.mark.parametrize(
    ("host", "words"),
    [
        pytest.param(
            "bedrock-runtime.ap-east-1.amazonaws.com",
            ("ap-east-1", "Hong Kong", "no data region"),
            id="no-data-region-names-the-place",
        ),
        pytest.param(
            "bedrock-runtime.il-central-1.amazonaws.com",
            ("Israel", "no data region"),
            id="no-data-region-names-the-country",
        ),
        pytest.param(
            "bedrock-runtime.eu-west-9.amazonaws.com",
            ("eu-west-9", "not among the AWS locations"),
            id="unknown-location-is-named",
        ),
        pytest.param(
            "bedrock-runtime.eu-west-1.amazonaws.com",
            ("Ireland", "global."),
            id="bedrock-warns-of-cross-region-inference",
        ),
        pytest.param(
            "acme.openai.azure.com",
            ("not in the hostname", "declare region"),
            id="azure-says-what-to-do",
        ),
        pytest.param(
            "api.openai.com",
            ("us.api.openai.com", "eu.api.openai.com"),
            id="openai-names-the-pinned-endpoints",
        ),
        pytest.param("api.anthropic.com", ("inference_geo",), id="anthropic-names-the-setting"),
    ],
)
def test_basis_explains_the_answer(host: str, words: tuple[str, ...]) -> None:
    basis = lookup_endpoint(host).basis
    for word in words:
        assert word in basis


@pytest.mark.parametrize(
    ("location", "region"),
    [
        pytest.param("eu-west-1", "eu", id="aws-ireland"),
        pytest.param("eu-west-2", "uk", id="aws-london"),
        pytest.param("eu-central-2", "ch", id="aws-zurich"),
        pytest.param("us-east-1", "us", id="aws-virginia"),
        pytest.param("us-gov-west-1", "us", id="aws-govcloud"),
        pytest.param("ap-northeast-1", "jp", id="aws-tokyo"),
        pytest.param("ap-northeast-2", "kr", id="aws-seoul"),
        pytest.param("me-central-1", "ae", id="aws-uae"),
        pytest.param("af-south-1", "za", id="aws-cape-town"),
        pytest.param("cn-north-1", "cn", id="aws-beijing"),
        pytest.param("ap-east-1", None, id="aws-hong-kong-has-no-data-region"),
        pytest.param("europe-west4", "eu", id="gcp-netherlands"),
        pytest.param("europe-west2", "uk", id="gcp-london"),
        pytest.param("europe-west6", "ch", id="gcp-zurich"),
        pytest.param("northamerica-northeast1", "ca", id="gcp-montreal"),
        pytest.param("southamerica-east1", "br", id="gcp-sao-paulo"),
        pytest.param("asia-south1", "in", id="gcp-mumbai"),
        pytest.param("asia-southeast1", "sg", id="gcp-singapore"),
        pytest.param("australia-southeast1", "au", id="gcp-sydney"),
        pytest.param("me-central2", "sa", id="gcp-dammam"),
        pytest.param("me-west1", None, id="gcp-tel-aviv-has-no-data-region"),
        pytest.param("global", "global", id="gcp-global"),
        pytest.param("westeurope", "eu", id="azure-netherlands"),
        pytest.param("uksouth", "uk", id="azure-uk-south"),
        pytest.param("switzerlandnorth", "ch", id="azure-zurich"),
        pytest.param("norwayeast", "eu", id="azure-norway-is-eea"),
        pytest.param("uaenorth", "ae", id="azure-dubai"),
        pytest.param("southafricanorth", "za", id="azure-johannesburg"),
        pytest.param("eastasia", None, id="azure-hong-kong-has-no-data-region"),
        pytest.param("eu-gb", "uk", id="ibm-london"),
        pytest.param("jp-tok", "jp", id="ibm-tokyo"),
        pytest.param("cn-beijing", "cn", id="alibaba-beijing"),
        pytest.param("EU-West-1", "eu", id="case-insensitive"),
        pytest.param("mars-north-1", None, id="unknown-code"),
        pytest.param("", None, id="empty"),
    ],
)
def test_jurisdiction_of_location(location: str, region: str | None) -> None:
    assert jurisdiction_of_location(location) == region


@pytest.mark.parametrize(
    ("provider", "host"),
    [
        pytest.param("openai", "api.openai.com", id="openai"),
        pytest.param("anthropic", "api.anthropic.com", id="anthropic"),
        pytest.param("gemini", "generativelanguage.googleapis.com", id="gemini"),
        pytest.param("vertex", "aiplatform.googleapis.com", id="vertex-global"),
        pytest.param("mistral", "api.mistral.ai", id="mistral"),
        pytest.param("cohere", "api.cohere.com", id="cohere"),
        pytest.param("deepseek", "api.deepseek.com", id="deepseek"),
        pytest.param("azure-openai", None, id="azure-has-one-host-per-resource"),
        pytest.param("bedrock", None, id="bedrock-needs-a-region"),
        pytest.param("watsonx", None, id="watsonx-needs-a-region"),
        pytest.param("self-hosted", None, id="self-hosted"),
        pytest.param("no-such-provider", None, id="unknown-provider"),
    ],
)
def test_default_upstream(provider: str, host: str | None) -> None:
    assert default_upstream(provider) == host


@pytest.mark.parametrize("row", ENDPOINTS, ids=row_id)
def test_every_row_region_is_a_data_region(row: Endpoint) -> None:
    assert row.region is None or row.region in DATA_REGIONS


@pytest.mark.parametrize("cloud", list(LOCATIONS))
def test_every_location_region_is_a_data_region(cloud: Cloud) -> None:
    unknown = {
        code: place.region
        for code, place in LOCATIONS[cloud].items()
        if place.region is not None and place.region not in DATA_REGIONS
    }
    assert unknown == {}


@pytest.mark.parametrize("row", ENDPOINTS, ids=row_id)
def test_every_row_is_reachable_by_its_own_hosts(row: Endpoint) -> None:
    """No row is shadowed by an earlier one, and every shape compiles to what it says."""
    host = sample_host(row)
    found = lookup_endpoint(host)
    assert found.provider == row.provider
    assert row.shape in found.basis
    if row.region is not None:
        assert found.region == row.region
    elif row.cloud is not None:
        assert found.region == "eu"  # every sample location is in the EU


def test_exact_hosts_appear_once() -> None:
    exact = Counter(row.shape for row in ENDPOINTS if "<" not in row.shape)
    assert [host for host, count in exact.items() if count > 1] == []


def test_each_provider_has_at_most_one_default_host() -> None:
    defaults = Counter(row.provider for row in ENDPOINTS if row.default)
    assert [provider for provider, count in defaults.items() if count > 1] == []


def test_default_hosts_are_exact_hosts() -> None:
    assert [row.shape for row in ENDPOINTS if row.default and "<" in row.shape] == []


def test_basis_stays_short_enough_for_a_status_message() -> None:
    longest = max((lookup_endpoint(sample_host(row)).basis for row in ENDPOINTS), key=len)
    assert len(longest) <= 300, longest


@pytest.mark.parametrize(
    ("host", "declared", "trust", "region"),
    [
        pytest.param("api.openai.com", "eu", True, "global", id="catalogue-wins-over-declared"),
        pytest.param("eu.api.openai.com", None, True, "eu", id="catalogue-alone"),
        pytest.param("eu.api.openai.com", "us", False, "eu", id="catalogue-needs-no-trust"),
        pytest.param("llm.corp.example", "eu", True, "eu", id="declared-for-unknown-host"),
        pytest.param("llm.corp.example", "eu", False, None, id="declared-not-trusted"),
        pytest.param("acme.openai.azure.com", "eu", True, "eu", id="declared-for-azure-resource"),
        pytest.param("*.api.openai.com", "eu", True, "eu", id="wildcard-cannot-be-placed"),
        pytest.param(None, "eu", True, "eu", id="cidr-or-service-declared"),
        pytest.param(None, "eu", False, None, id="cidr-or-service-not-trusted"),
        pytest.param(None, None, True, None, id="nothing-declared"),
    ],
)
def test_effective_region(
    host: str | None, declared: str | None, trust: bool, region: str | None
) -> None:
    assert effective_region(host, declared, trust_declared=trust).region == region


@pytest.mark.parametrize(
    ("host", "declared", "conflicting"),
    [
        pytest.param("api.openai.com", "eu", ["api.openai.com"], id="exact-contradiction"),
        pytest.param("eu.api.openai.com", "eu", [], id="exact-agreement"),
        pytest.param("llm.corp.example", "eu", [], id="unknown-host"),
        pytest.param("*.openai.com", "eu", ["api.openai.com"], id="wildcard-covers-global-host"),
        pytest.param("*.corp.example", "eu", [], id="wildcard-over-unknown-hosts"),
        pytest.param(
            "*.us-east-1.api.aws",
            "us",
            ["aws-external-anthropic.us-east-1.api.aws"],
            id="wildcard-covers-a-location-shape",
        ),
    ],
)
def test_region_conflicts(host: str, declared: str, conflicting: list[str]) -> None:
    assert [found.host for found in region_conflicts(host, declared)] == conflicting


def test_a_wildcard_over_residency_hosts_conflicts_with_each_other_region() -> None:
    conflicts = {found.host: found.region for found in region_conflicts("*.api.openai.com", "eu")}
    assert conflicts["us.api.openai.com"] == "us"
    assert conflicts["au.api.openai.com"] == "global"
    assert "eu.api.openai.com" not in conflicts


@pytest.mark.parametrize(
    ("provider", "hosts", "explicit", "url", "candidates"),
    [
        pytest.param("openai", ["eu.api.openai.com"], None, "https://eu.api.openai.com/v1",
                     ["eu.api.openai.com"], id="readme-example"),
        pytest.param("openai", ["EU.api.openai.com."], None, "https://eu.api.openai.com/v1",
                     ["eu.api.openai.com"], id="host-normalised"),
        pytest.param("azure-openai", ["acme.openai.azure.com"], None,
                     "https://acme.openai.azure.com/openai/v1", ["acme.openai.azure.com"],
                     id="azure-resource"),
        pytest.param("gemini", [], None,
                     "https://generativelanguage.googleapis.com/v1beta/openai", [],
                     id="default-host-with-path"),
        pytest.param("openai", ["eu.api.openai.com", "us.api.openai.com"], None, None,
                     ["eu.api.openai.com", "us.api.openai.com"], id="ambiguous"),
        pytest.param("openai", ["*.api.openai.com"], None, "https://api.openai.com/v1", [],
                     id="wildcard-is-not-a-host-to-call"),
        pytest.param("azure-openai", [], None, None, [], id="azure-missing"),
        pytest.param("self-hosted", [], None, None, [], id="self-hosted-missing"),
        pytest.param("self-hosted", [], "http://vllm.ml.svc:8000/v1/",
                     "http://vllm.ml.svc:8000/v1", [], id="self-hosted-service"),
        pytest.param("anthropic", ["api.openai.com"], None, "https://api.anthropic.com/v1", [],
                     id="other-providers-hosts-ignored"),
    ],
)  # fmt: skip
def test_provider_base_url(
    provider: str, hosts: list[str], explicit: str | None, url: str | None, candidates: list[str]
) -> None:
    choice = provider_base_url(provider, hosts, explicit)
    assert (choice.url, list(choice.hosts)) == (url, candidates)


@pytest.mark.parametrize("provider", get_args(Provider))
def test_every_provider_a_model_can_name_has_one_api_row(provider: str) -> None:
    api = PROVIDER_APIS[provider]
    endpoint = PROVIDER_ENDPOINTS[provider]  # type: ignore[index]
    assert (endpoint.wire_format, endpoint.key_header) == (api.wire_format, api.key_header)
    assert endpoint.base_url == default_base_url(provider)
    if api.wire_format is not None and provider != "self-hosted":
        # A provider the gateway speaks has hosts in the catalogue that say their API path.
        assert any(row.provider == provider and row.api_path for row in ENDPOINTS)


def test_api_paths_only_on_providers_the_gateway_speaks() -> None:
    spoken = {p for p, api in PROVIDER_APIS.items() if api.wire_format is not None}
    assert {row.provider for row in ENDPOINTS if row.api_path is not None} <= spoken
