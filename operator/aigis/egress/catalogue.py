"""The catalogue of AI provider endpoints and the data region each one sends a request to.

aigis enforces data residency on egress: a host the workload may reach is allowed only when its
data region is one of the workload's `dataRegions`. This module answers "where does a request to
this host go?" for the hosts of well-known AI providers, and says why, so a refusal can name its
evidence. Where it knows the answer, the answer wins over a `region:` written on the egress entry
(`effective_region`): a declaration cannot move `api.openai.com` into the EU.

It is also the one table of how the gateway speaks to each provider: the API path under each
host (`Endpoint.api_path`), and the wire format and key header of each provider
(`PROVIDER_APIS`). The gateway builds an upstream's base URL from a declared host and these.

What "region" means here: the jurisdiction in which the provider commits to *process* a request
sent to that host, because that is where the prompt goes. Where to look when adding a provider:
- A host whose provider documents in-region processing gets that jurisdiction.
- A host the provider documents as routed anywhere (a "global" endpoint, a router to third
  parties, storage-only residency) gets `global`: the answer is known, and it is "anywhere".
- A host whose region depends on something the hostname does not show (an Azure resource's
  region, a provider with no published processing location) gets None: unknown, and the cluster
  policy decides whether unknown is allowed. Never guess a region for such a host.

Hostnames are matched as written, case-insensitively and without a trailing dot. Nothing here
resolves a name: where an address happens to be is no evidence of where a provider processes data.

Everything is in three tables, `ENDPOINTS` (one row per host or hostname shape), `LOCATIONS`
(each cloud's location codes and the jurisdiction each lies in) and `PROVIDER_APIS`; adding a
provider is adding rows.

Pure: plain data and fixed, trusted patterns; no I/O. Must not import the operator, the webhook
or the gateway, which all import this.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal

from aigis.egress.hosts import host_matches, normalise_host

Cloud = Literal["aws", "gcp", "azure", "ibm", "alibaba"]
"""A cloud whose location codes appear in hostnames; each has its own table in `LOCATIONS`."""
WireFormat = Literal["openai", "anthropic"]
"""The request/response formats the gateway speaks: OpenAI-compatible or Anthropic Messages."""
KeyHeader = Literal["authorization", "x-api-key", "api-key"]
"""Where a provider expects its API key: `Authorization: Bearer`, `x-api-key` or `api-key`."""


@dataclass(frozen=True, slots=True)
class ProviderApi:
    """How the gateway speaks to one provider, whichever of its hosts it calls."""

    wire_format: WireFormat | None
    """The format spoken; None when the gateway cannot speak to it (signed requests)."""
    key_header: KeyHeader
    """Where the provider expects its API key."""


PROVIDER_APIS: Final[Mapping[str, ProviderApi]] = MappingProxyType(
    {
        "openai": ProviderApi("openai", "authorization"),
        "azure-openai": ProviderApi("openai", "api-key"),
        "anthropic": ProviderApi("anthropic", "x-api-key"),
        "mistral": ProviderApi("openai", "authorization"),
        "gemini": ProviderApi("openai", "authorization"),
        "cohere": ProviderApi("openai", "authorization"),
        # In-cluster model servers (vLLM, TGI, Ollama ...) speak the OpenAI format; no hosts here.
        "self-hosted": ProviderApi("openai", "authorization"),
        # Signed requests (SigV4, Google OAuth), not API keys: not spoken by the gateway.
        "bedrock": ProviderApi(None, "authorization"),
        "vertex": ProviderApi(None, "authorization"),
    }
)
"""Provider -> wire format and key header, for every provider an AIWorkload's models may name."""


@dataclass(frozen=True, slots=True)
class EndpointRegion:
    """Where a request to one host goes, as far as aigis can tell without asking the network."""

    host: str
    """The host asked about, lowercased and without a trailing dot."""
    provider: str | None
    """The AI provider serving the host (`openai`, `bedrock`, ...), or None when not a known one."""
    region: str | None
    """The jurisdiction (a `DATA_REGIONS` name) requests are processed in; None when unknown."""
    location: str | None
    """The provider's own location code when the hostname carries one, e.g. `eu-west-1`."""
    basis: str
    """Why: `catalogue: ...`, `pattern: ...` or `unknown: ...`; short enough for a status."""
    api_path: str | None = None
    """The provider API's path prefix on this host (`/v1`), when the gateway can call it."""


@dataclass(frozen=True, slots=True)
class Place:
    """Where one cloud location is: the place, ending with its country, and its jurisdiction."""

    where: str
    region: str | None
    """None when no data region aigis knows covers the country (see `DATA_REGIONS`)."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One row of the catalogue: a host, or a hostname shape with `<placeholders>`.

    Placeholders: `<location>` is a location code of `cloud` and decides the region unless
    `region` is set; `<resource>`, `<endpoint>` and `<workspace>` are one DNS label the customer
    chose; `<project>` is a numeric project id. A row without placeholders is an exact host.
    """

    shape: str
    provider: str
    why: str
    """Completes the sentence "<shape> ..." in the basis; say what decides where data goes."""
    region: str | None = None
    """The jurisdiction for the whole row; for a `<location>` row, set it only to override."""
    cloud: Cloud | None = None
    """Whose location codes `<location>` holds."""
    location: str | None = None
    """For an exact host that names a location, the provider's code for it."""
    default: bool = False
    """The provider's default API host, the one the gateway uses when none is declared."""
    api_path: str | None = None
    """The API's path prefix including its version (`/v1`, `/openai/v1`), for hosts the gateway
    forwards to: an upstream's base URL is `https://<host><api_path>`. None for hosts it does not
    call (signed APIs, providers no AIWorkload model can name)."""


def _places(rows: Mapping[str, tuple[str, str | None]]) -> Mapping[str, Place]:
    return MappingProxyType({code: Place(where, region) for code, (where, region) in rows.items()})


AWS_REGIONS: Final = _places(
    {
        "us-east-1": ("N. Virginia, United States", "us"),
        "us-east-2": ("Ohio, United States", "us"),
        "us-west-1": ("N. California, United States", "us"),
        "us-west-2": ("Oregon, United States", "us"),
        "us-gov-east-1": ("GovCloud US-East, United States", "us"),
        "us-gov-west-1": ("GovCloud US-West, United States", "us"),
        "ca-central-1": ("Montreal, Canada", "ca"),
        "ca-west-1": ("Calgary, Canada", "ca"),
        "mx-central-1": ("Queretaro, Mexico", None),
        "sa-east-1": ("Sao Paulo, Brazil", "br"),
        "eu-west-1": ("Ireland", "eu"),
        "eu-west-2": ("London, United Kingdom", "uk"),
        "eu-west-3": ("Paris, France", "eu"),
        "eu-central-1": ("Frankfurt, Germany", "eu"),
        "eu-central-2": ("Zurich, Switzerland", "ch"),
        "eu-south-1": ("Milan, Italy", "eu"),
        "eu-south-2": ("Aragon, Spain", "eu"),
        "eu-north-1": ("Stockholm, Sweden", "eu"),
        "eusc-de-east-1": ("Brandenburg, Germany (European Sovereign Cloud)", "eu"),
        "il-central-1": ("Tel Aviv, Israel", None),
        "me-south-1": ("Bahrain", None),
        "me-central-1": ("United Arab Emirates", "ae"),
        "af-south-1": ("Cape Town, South Africa", "za"),
        "ap-east-1": ("Hong Kong", None),
        "ap-east-2": ("Taipei, Taiwan", None),
        "ap-south-1": ("Mumbai, India", "in"),
        "ap-south-2": ("Hyderabad, India", "in"),
        "ap-northeast-1": ("Tokyo, Japan", "jp"),
        "ap-northeast-2": ("Seoul, South Korea", "kr"),
        "ap-northeast-3": ("Osaka, Japan", "jp"),
        "ap-southeast-1": ("Singapore", "sg"),
        "ap-southeast-2": ("Sydney, Australia", "au"),
        "ap-southeast-3": ("Jakarta, Indonesia", None),
        "ap-southeast-4": ("Melbourne, Australia", "au"),
        "ap-southeast-5": ("Malaysia", None),
        "ap-southeast-6": ("Auckland, New Zealand", None),
        "ap-southeast-7": ("Thailand", None),
        "cn-north-1": ("Beijing, China", "cn"),
        "cn-northwest-1": ("Ningxia, China", "cn"),
    }
)

GCP_LOCATIONS: Final = _places(
    {
        "us-central1": ("Iowa, United States", "us"),
        "us-east1": ("South Carolina, United States", "us"),
        "us-east4": ("N. Virginia, United States", "us"),
        "us-east5": ("Columbus, United States", "us"),
        "us-south1": ("Dallas, United States", "us"),
        "us-west1": ("Oregon, United States", "us"),
        "us-west2": ("Los Angeles, United States", "us"),
        "us-west3": ("Salt Lake City, United States", "us"),
        "us-west4": ("Las Vegas, United States", "us"),
        "northamerica-northeast1": ("Montreal, Canada", "ca"),
        "northamerica-northeast2": ("Toronto, Canada", "ca"),
        "northamerica-south1": ("Queretaro, Mexico", None),
        "southamerica-east1": ("Sao Paulo, Brazil", "br"),
        "southamerica-west1": ("Santiago, Chile", None),
        "europe-west1": ("Belgium", "eu"),
        "europe-west2": ("London, United Kingdom", "uk"),
        "europe-west3": ("Frankfurt, Germany", "eu"),
        "europe-west4": ("the Netherlands", "eu"),
        "europe-west6": ("Zurich, Switzerland", "ch"),
        "europe-west8": ("Milan, Italy", "eu"),
        "europe-west9": ("Paris, France", "eu"),
        "europe-west10": ("Berlin, Germany", "eu"),
        "europe-west12": ("Turin, Italy", "eu"),
        "europe-north1": ("Finland", "eu"),
        "europe-north2": ("Stockholm, Sweden", "eu"),
        "europe-central2": ("Warsaw, Poland", "eu"),
        "europe-southwest1": ("Madrid, Spain", "eu"),
        "asia-east1": ("Changhua County, Taiwan", None),
        "asia-east2": ("Hong Kong", None),
        "asia-northeast1": ("Tokyo, Japan", "jp"),
        "asia-northeast2": ("Osaka, Japan", "jp"),
        "asia-northeast3": ("Seoul, South Korea", "kr"),
        "asia-south1": ("Mumbai, India", "in"),
        "asia-south2": ("Delhi, India", "in"),
        "asia-southeast1": ("Singapore", "sg"),
        "asia-southeast2": ("Jakarta, Indonesia", None),
        "australia-southeast1": ("Sydney, Australia", "au"),
        "australia-southeast2": ("Melbourne, Australia", "au"),
        "me-central1": ("Doha, Qatar", None),
        "me-central2": ("Dammam, Saudi Arabia", "sa"),
        "me-west1": ("Tel Aviv, Israel", None),
        "africa-south1": ("Johannesburg, South Africa", "za"),
        "us": ("the US multi-region, United States", "us"),
        "eu": ("the EU multi-region, European Union", "eu"),
        "global": ("any Google Cloud location worldwide", "global"),
    }
)

AZURE_REGIONS: Final = _places(
    {
        "eastus": ("Virginia, United States", "us"),
        "eastus2": ("Virginia, United States", "us"),
        "centralus": ("Iowa, United States", "us"),
        "northcentralus": ("Illinois, United States", "us"),
        "southcentralus": ("Texas, United States", "us"),
        "westcentralus": ("Wyoming, United States", "us"),
        "westus": ("California, United States", "us"),
        "westus2": ("Washington, United States", "us"),
        "westus3": ("Arizona, United States", "us"),
        "usgovvirginia": ("Virginia, United States (Azure Government)", "us"),
        "usgovarizona": ("Arizona, United States (Azure Government)", "us"),
        "usgovtexas": ("Texas, United States (Azure Government)", "us"),
        "canadacentral": ("Toronto, Canada", "ca"),
        "canadaeast": ("Quebec City, Canada", "ca"),
        "brazilsouth": ("Sao Paulo, Brazil", "br"),
        "brazilsoutheast": ("Rio de Janeiro, Brazil", "br"),
        "mexicocentral": ("Queretaro, Mexico", None),
        "chilecentral": ("Santiago, Chile", None),
        "northeurope": ("Ireland", "eu"),
        "westeurope": ("the Netherlands", "eu"),
        "francecentral": ("Paris, France", "eu"),
        "francesouth": ("Marseille, France", "eu"),
        "germanywestcentral": ("Frankfurt, Germany", "eu"),
        "germanynorth": ("Berlin, Germany", "eu"),
        "swedencentral": ("Gavle, Sweden", "eu"),
        "swedensouth": ("Malmo, Sweden", "eu"),
        "italynorth": ("Milan, Italy", "eu"),
        "polandcentral": ("Warsaw, Poland", "eu"),
        "spaincentral": ("Madrid, Spain", "eu"),
        "austriaeast": ("Vienna, Austria", "eu"),
        "belgiumcentral": ("Brussels, Belgium", "eu"),
        "norwayeast": ("Oslo, Norway (EEA)", "eu"),
        "norwaywest": ("Stavanger, Norway (EEA)", "eu"),
        "switzerlandnorth": ("Zurich, Switzerland", "ch"),
        "switzerlandwest": ("Geneva, Switzerland", "ch"),
        "uksouth": ("London, United Kingdom", "uk"),
        "ukwest": ("Cardiff, United Kingdom", "uk"),
        "japaneast": ("Tokyo, Japan", "jp"),
        "japanwest": ("Osaka, Japan", "jp"),
        "koreacentral": ("Seoul, South Korea", "kr"),
        "koreasouth": ("Busan, South Korea", "kr"),
        "centralindia": ("Pune, India", "in"),
        "southindia": ("Chennai, India", "in"),
        "westindia": ("Mumbai, India", "in"),
        "jioindiawest": ("Jamnagar, India", "in"),
        "jioindiacentral": ("Nagpur, India", "in"),
        "southeastasia": ("Singapore", "sg"),
        "eastasia": ("Hong Kong", None),
        "australiaeast": ("New South Wales, Australia", "au"),
        "australiasoutheast": ("Victoria, Australia", "au"),
        "australiacentral": ("Canberra, Australia", "au"),
        "australiacentral2": ("Canberra, Australia", "au"),
        "uaenorth": ("Dubai, United Arab Emirates", "ae"),
        "uaecentral": ("Abu Dhabi, United Arab Emirates", "ae"),
        "qatarcentral": ("Doha, Qatar", None),
        "israelcentral": ("Israel", None),
        "southafricanorth": ("Johannesburg, South Africa", "za"),
        "southafricawest": ("Cape Town, South Africa", "za"),
        "indonesiacentral": ("Jakarta, Indonesia", None),
        "malaysiawest": ("Kuala Lumpur, Malaysia", None),
        "newzealandnorth": ("Auckland, New Zealand", None),
        "chinaeast": ("Shanghai, China", "cn"),
        "chinaeast2": ("Shanghai, China", "cn"),
        "chinaeast3": ("Shanghai, China", "cn"),
        "chinanorth": ("Beijing, China", "cn"),
        "chinanorth2": ("Beijing, China", "cn"),
        "chinanorth3": ("Hebei, China", "cn"),
    }
)

IBM_REGIONS: Final = _places(
    {
        "us-south": ("Dallas, United States", "us"),
        "us-east": ("Washington DC, United States", "us"),
        "ca-tor": ("Toronto, Canada", "ca"),
        "br-sao": ("Sao Paulo, Brazil", "br"),
        "eu-de": ("Frankfurt, Germany", "eu"),
        "eu-es": ("Madrid, Spain", "eu"),
        "eu-gb": ("London, United Kingdom", "uk"),
        "jp-tok": ("Tokyo, Japan", "jp"),
        "jp-osa": ("Osaka, Japan", "jp"),
        "au-syd": ("Sydney, Australia", "au"),
        "in-che": ("Chennai, India", "in"),
    }
)

# Alibaba Cloud reuses some of AWS's codes for other cities (its eu-west-1 is London), so its
# codes are read with this table only where the hostname is Alibaba's.
ALIBABA_REGIONS: Final = _places(
    {
        "cn-beijing": ("Beijing, China", "cn"),
        "cn-hangzhou": ("Hangzhou, China", "cn"),
        "cn-shanghai": ("Shanghai, China", "cn"),
        "cn-shenzhen": ("Shenzhen, China", "cn"),
        "cn-hongkong": ("Hong Kong", None),
        "ap-southeast-1": ("Singapore", "sg"),
        "ap-southeast-3": ("Kuala Lumpur, Malaysia", None),
        "ap-southeast-5": ("Jakarta, Indonesia", None),
        "ap-northeast-1": ("Tokyo, Japan", "jp"),
        "ap-northeast-2": ("Seoul, South Korea", "kr"),
        "us-east-1": ("Virginia, United States", "us"),
        "us-west-1": ("Silicon Valley, United States", "us"),
        "eu-central-1": ("Frankfurt, Germany", "eu"),
        "eu-west-1": ("London, United Kingdom", "uk"),
        "me-east-1": ("Dubai, United Arab Emirates", "ae"),
        "me-central-1": ("Riyadh, Saudi Arabia", "sa"),
    }
)

LOCATIONS: Final[Mapping[Cloud, Mapping[str, Place]]] = MappingProxyType(
    {
        "aws": AWS_REGIONS,
        "gcp": GCP_LOCATIONS,
        "azure": AZURE_REGIONS,
        "ibm": IBM_REGIONS,
        "alibaba": ALIBABA_REGIONS,
    }
)
"""Each cloud's location codes; `jurisdiction_of_location` reads them in this order."""

CLOUD_NAMES: Final[Mapping[Cloud, str]] = MappingProxyType(
    {
        "aws": "AWS",
        "gcp": "Google Cloud",
        "azure": "Azure",
        "ibm": "IBM Cloud",
        "alibaba": "Alibaba Cloud",
    }
)

# What a location code of each cloud looks like in a hostname. A code of the right shape that
# the table does not know (a region opened since) still identifies the provider, with region None.
_LOCATION_SHAPES: Final[Mapping[Cloud, str]] = MappingProxyType(
    {
        "aws": r"[a-z]{2,4}(?:-[a-z]+)+-[0-9]{1,2}",
        "gcp": r"[a-z]+-[a-z]+[0-9]{1,2}",
        "azure": r"[a-z]+[0-9]?",
        "ibm": r"[a-z]{2}-[a-z]{2,5}",
        "alibaba": r"[a-z]{2}-[a-z]+(?:-[0-9]{1,2})?",
    }
)
_LABEL: Final = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_PLACEHOLDERS: Final[Mapping[str, str]] = MappingProxyType(
    {"resource": _LABEL, "endpoint": _LABEL, "workspace": _LABEL, "project": r"[0-9]{1,20}"}
)


def _bedrock_rows() -> tuple[Endpoint, ...]:
    """Bedrock's control, runtime, agent and data-automation hosts, plain and FIPS."""
    services = (
        "bedrock",
        "bedrock-runtime",
        "bedrock-agent",
        "bedrock-agent-runtime",
        "bedrock-agentcore",
        "bedrock-agentcore-control",
        "bedrock-data-automation",
        "bedrock-data-automation-runtime",
    )
    why = (
        "is Amazon Bedrock in that Region; model ids prefixed us., eu., apac. ... may run "
        "elsewhere in that geography, global. ones anywhere"
    )
    return tuple(
        Endpoint(f"{service}{fips}.<location>.{domain}", "bedrock", why, cloud="aws")
        for service in services
        for fips in ("", "-fips")
        # amazonaws.eu is the AWS European Sovereign Cloud's own domain.
        for domain in ("amazonaws.com", "amazonaws.eu")
    )


def _openai_storage_only_rows() -> tuple[Endpoint, ...]:
    """OpenAI residency regions that store data in-country but do not process it there."""
    countries = {
        "au": "Australia",
        "ca": "Canada",
        "jp": "Japan",
        "in": "India",
        "sg": "Singapore",
        "kr": "South Korea",
        "gb": "the United Kingdom",
        "ae": "the United Arab Emirates",
    }
    return tuple(
        Endpoint(
            f"{prefix}.api.openai.com",
            "openai",
            f"stores data at rest in {country}, but OpenAI does not commit to processing there, "
            "so inference may run in any of its regions",
            region="global",
            api_path="/v1",
        )
        for prefix, country in countries.items()
    )


_AZURE_RESOURCE = (
    "is an Azure resource: its region is set at creation, not in the hostname, and Global or "
    "Data Zone deployments process elsewhere; declare region on the entry"
)
_NOT_PUBLISHED = "publishes no processing location the catalogue can rely on; declare region"

ENDPOINTS: Final[tuple[Endpoint, ...]] = (
    # OpenAI
    Endpoint(
        "api.openai.com",
        "openai",
        "is OpenAI's global endpoint: any of its regions may process the request "
        "(us.api.openai.com and eu.api.openai.com pin processing)",
        region="global",
        default=True,
        api_path="/v1",
    ),
    Endpoint(
        "us.api.openai.com",
        "openai",
        "is OpenAI's US data residency endpoint: stored and processed in the United States",
        region="us",
        api_path="/v1",
    ),
    Endpoint(
        "eu.api.openai.com",
        "openai",
        "is OpenAI's Europe data residency endpoint: stored and processed in the EEA, "
        "which for OpenAI includes Switzerland",
        region="eu",
        api_path="/v1",
    ),
    *_openai_storage_only_rows(),
    # Azure OpenAI and Azure AI Foundry
    # Azure's v1 API (`/openai/v1/chat/completions`, key in `api-key`) needs no api-version.
    Endpoint("<resource>.openai.azure.com", "azure-openai", _AZURE_RESOURCE, api_path="/openai/v1"),
    Endpoint(
        "<resource>.services.ai.azure.com", "azure-openai", _AZURE_RESOURCE, api_path="/openai/v1"
    ),
    Endpoint(
        "<resource>.cognitiveservices.azure.com",
        "azure-openai",
        _AZURE_RESOURCE,
        api_path="/openai/v1",
    ),
    Endpoint(
        "<resource>.openai.azure.us",
        "azure-openai",
        "is in Azure Government, which runs only in the United States",
        region="us",
        api_path="/openai/v1",
    ),
    Endpoint(
        "<resource>.cognitiveservices.azure.us",
        "azure-openai",
        "is in Azure Government, which runs only in the United States",
        region="us",
        api_path="/openai/v1",
    ),
    Endpoint(
        "<resource>.openai.azure.cn",
        "azure-openai",
        "is in Azure operated by 21Vianet, which runs only in China",
        region="cn",
        api_path="/openai/v1",
    ),
    Endpoint(
        "<resource>.cognitiveservices.azure.cn",
        "azure-openai",
        "is in Azure operated by 21Vianet, which runs only in China",
        region="cn",
        api_path="/openai/v1",
    ),
    Endpoint(
        "<endpoint>.<location>.models.ai.azure.com",
        "azure-ml",
        "is an Azure AI serverless model endpoint deployed in that region",
        cloud="azure",
    ),
    Endpoint(
        "<endpoint>.<location>.inference.ml.azure.com",
        "azure-ml",
        "is an Azure Machine Learning online endpoint deployed in that region",
        cloud="azure",
    ),
    # Anthropic
    Endpoint(
        "api.anthropic.com",
        "anthropic",
        "is Anthropic's API: inference may run in any geography unless the request or the "
        'workspace sets inference_geo to "us"',
        region="global",
        default=True,
        api_path="/v1",
    ),
    Endpoint(
        "aws-external-anthropic.<location>.api.aws",
        "anthropic",
        "is Claude Platform on AWS: inference may run in any geography unless the request sets "
        'inference_geo to "us"',
        region="global",
        cloud="aws",
    ),
    # AWS
    *_bedrock_rows(),
    Endpoint(
        "bedrock-mantle.<location>.api.aws",
        "bedrock",
        "is Amazon Bedrock's OpenAI-compatible endpoint in that Region; model ids prefixed "
        "us., eu., apac. ... may run elsewhere in that geography, global. ones anywhere",
        cloud="aws",
    ),
    Endpoint(
        "runtime.sagemaker.<location>.amazonaws.com",
        "sagemaker",
        "is a SageMaker AI inference endpoint in that Region",
        cloud="aws",
    ),
    # Google
    Endpoint(
        "aiplatform.googleapis.com",
        "vertex",
        "is Vertex AI's global endpoint: Google may process the request in any location",
        region="global",
        location="global",
        default=True,
    ),
    Endpoint(
        "aiplatform.eu.rep.googleapis.com",
        "vertex",
        "is Vertex AI's EU multi-region endpoint: ML processing stays in the EU",
        region="eu",
        location="eu",
    ),
    Endpoint(
        "aiplatform.us.rep.googleapis.com",
        "vertex",
        "is Vertex AI's US multi-region endpoint: ML processing stays in the United States",
        region="us",
        location="us",
    ),
    Endpoint(
        "<location>-aiplatform.googleapis.com",
        "vertex",
        "is Vertex AI in that region (in-region ML processing holds for the models Google "
        "lists for it)",
        cloud="gcp",
    ),
    Endpoint(
        "<endpoint>.<location>-<project>.prediction.vertexai.goog",
        "vertex",
        "is a Vertex AI dedicated endpoint in that region",
        cloud="gcp",
    ),
    Endpoint(
        "generativelanguage.googleapis.com",
        "gemini",
        "is the Gemini Developer API, which Google may process in any country it operates in; "
        "Vertex AI regional endpoints pin a region",
        region="global",
        default=True,
        api_path="/v1beta/openai",
    ),
    # Mistral
    Endpoint(
        "api.mistral.ai",
        "mistral",
        "is Mistral's global endpoint (api.eu.mistral.ai and api.us.mistral.ai pin inference "
        "to a region)",
        region="global",
        default=True,
        api_path="/v1",
    ),
    Endpoint(
        "api.eu.mistral.ai",
        "mistral",
        "is Mistral's EU regional inference endpoint (data centres in EU and EFTA countries)",
        region="eu",
        api_path="/v1",
    ),
    Endpoint(
        "api.us.mistral.ai",
        "mistral",
        "is Mistral's US regional inference endpoint",
        region="us",
        api_path="/v1",
    ),
    # Cohere
    Endpoint(
        "api.cohere.com",
        "cohere",
        "is Cohere's hosted platform, served from the United States",
        region="us",
        default=True,
        api_path="/compatibility/v1",
    ),
    Endpoint(
        "api.cohere.ai",
        "cohere",
        "is Cohere's hosted platform (older name), served from the United States",
        region="us",
        api_path="/compatibility/v1",
    ),
    # xAI
    Endpoint(
        "api.x.ai",
        "xai",
        "is xAI's global endpoint: requests may be routed to any of its regions",
        region="global",
        default=True,
    ),
    Endpoint(
        "us.api.x.ai",
        "xai",
        "is xAI's US regional endpoint: handled and processed in the United States",
        region="us",
        location="us",
    ),
    Endpoint(
        "us-east-1.api.x.ai",
        "xai",
        "is xAI's us-east-1 regional endpoint: requests fail rather than leave the region",
        region="us",
        location="us-east-1",
    ),
    Endpoint(
        "eu-west-1.api.x.ai",
        "xai",
        "is xAI's eu-west-1 regional endpoint: requests fail rather than leave the region",
        region="eu",
        location="eu-west-1",
    ),
    # Routers and hosts of open models
    Endpoint(
        "openrouter.ai",
        "openrouter",
        "routes each request to one of many upstream providers, anywhere",
        region="global",
        default=True,
    ),
    Endpoint(
        "eu.openrouter.ai",
        "openrouter",
        "is OpenRouter's EU in-region routing endpoint",
        region="eu",
    ),
    Endpoint(
        "us.openrouter.ai",
        "openrouter",
        "is OpenRouter's US in-region routing endpoint",
        region="us",
    ),
    Endpoint(
        "router.huggingface.co",
        "huggingface",
        "is Hugging Face's Inference Providers router: it forwards requests to third-party "
        "providers anywhere",
        region="global",
        default=True,
    ),
    Endpoint(
        "api-inference.huggingface.co",
        "huggingface",
        f"is Hugging Face's older serverless Inference API, which {_NOT_PUBLISHED}",
    ),
    Endpoint(
        "<endpoint>.<location>.aws.endpoints.huggingface.cloud",
        "huggingface",
        "is a Hugging Face dedicated Inference Endpoint on AWS in that Region",
        cloud="aws",
    ),
    Endpoint(
        "<endpoint>.<location>.gcp.endpoints.huggingface.cloud",
        "huggingface",
        "is a Hugging Face dedicated Inference Endpoint on Google Cloud in that region",
        cloud="gcp",
    ),
    Endpoint(
        "<endpoint>.<location>.azure.endpoints.huggingface.cloud",
        "huggingface",
        "is a Hugging Face dedicated Inference Endpoint on Azure in that region",
        cloud="azure",
    ),
    Endpoint("api.groq.com", "groq", f"is Groq's API; Groq {_NOT_PUBLISHED}", default=True),
    Endpoint(
        "api.together.xyz",
        "together",
        f"is Together AI's API; Together {_NOT_PUBLISHED}",
        default=True,
    ),
    Endpoint("api.together.ai", "together", f"is Together AI's API; Together {_NOT_PUBLISHED}"),
    Endpoint(
        "api.fireworks.ai",
        "fireworks",
        f"is Fireworks AI's API; Fireworks {_NOT_PUBLISHED}",
        default=True,
    ),
    Endpoint(
        "api.perplexity.ai",
        "perplexity",
        f"is Perplexity's API; Perplexity {_NOT_PUBLISHED}",
        default=True,
    ),
    Endpoint(
        "api.cerebras.ai",
        "cerebras",
        f"is Cerebras's API; Cerebras {_NOT_PUBLISHED}",
        default=True,
    ),
    # European providers
    Endpoint(
        "api.aleph-alpha.com",
        "aleph-alpha",
        "is Aleph Alpha's API, hosted in Germany",
        region="eu",
        default=True,
    ),
    # IBM
    Endpoint(
        "<location>.ml.cloud.ibm.com",
        "watsonx",
        "is IBM watsonx.ai in that IBM Cloud region",
        cloud="ibm",
    ),
    Endpoint(
        "<location>.aws.wxai.ibm.com",
        "watsonx",
        "is IBM watsonx.ai on AWS in that Region",
        cloud="aws",
    ),
    # Providers in China, and Alibaba Cloud's international regions
    Endpoint(
        "api.deepseek.com",
        "deepseek",
        "is DeepSeek's API; DeepSeek processes and stores data in the People's Republic of China",
        region="cn",
        default=True,
    ),
    Endpoint(
        "dashscope.aliyuncs.com",
        "dashscope",
        "is Alibaba Cloud Model Studio in Beijing, China",
        region="cn",
        location="cn-beijing",
        default=True,
    ),
    Endpoint(
        "dashscope-intl.aliyuncs.com",
        "dashscope",
        "is Alibaba Cloud Model Studio in Singapore",
        region="sg",
        location="ap-southeast-1",
    ),
    Endpoint(
        "dashscope-us.aliyuncs.com",
        "dashscope",
        "is Alibaba Cloud Model Studio in Virginia, United States",
        region="us",
        location="us-east-1",
    ),
    Endpoint(
        "cn-hongkong.dashscope.aliyuncs.com",
        "dashscope",
        "is Alibaba Cloud Model Studio in Hong Kong, which no data region aigis knows covers",
        location="cn-hongkong",
    ),
    Endpoint(
        "<workspace>.<location>.maas.aliyuncs.com",
        "dashscope",
        "is an Alibaba Cloud Model Studio workspace in that region",
        cloud="alibaba",
    ),
    Endpoint(
        "qianfan.baidubce.com",
        "baidu",
        "is Baidu AI Cloud Qianfan, served from China",
        region="cn",
        default=True,
    ),
    Endpoint(
        "aip.baidubce.com",
        "baidu",
        "is Baidu AI Cloud's API, served from China",
        region="cn",
    ),
    Endpoint(
        "api.moonshot.cn",
        "moonshot",
        "is Moonshot AI's mainland China API",
        region="cn",
        default=True,
    ),
    Endpoint(
        "open.bigmodel.cn",
        "zhipu",
        "is Zhipu AI's mainland China API",
        region="cn",
        default=True,
    ),
)
"""Every host and hostname shape aigis knows, one row each: the one place to add a provider."""


def _compile(endpoint: Endpoint) -> re.Pattern[str]:
    """The row's shape as a regular expression."""
    return _compile_shape(endpoint.shape, endpoint.cloud)


def _compile_shape(shape: str, cloud: Cloud | None) -> re.Pattern[str]:
    """A shape as a regular expression; fixed text is escaped, never interpreted."""
    parts: list[str] = []
    position = 0
    for placeholder in re.finditer(r"<([a-z]+)>", shape):
        parts.append(re.escape(shape[position : placeholder.start()]))
        name = placeholder.group(1)
        if name == "location":
            if cloud is None:
                raise ValueError(f"catalogue row {shape}: <location> needs a cloud")
            parts.append(f"(?P<location>{_LOCATION_SHAPES[cloud]})")
        elif name in _PLACEHOLDERS:
            parts.append(_PLACEHOLDERS[name])
        else:
            raise ValueError(f"catalogue row {shape}: unknown placeholder <{name}>")
        position = placeholder.end()
    parts.append(re.escape(shape[position:]))
    return re.compile("".join(parts), re.ASCII)


_EXACT: Final[Mapping[str, Endpoint]] = MappingProxyType(
    {row.shape: row for row in ENDPOINTS if "<" not in row.shape}
)
_SHAPES: Final[tuple[tuple[re.Pattern[str], Endpoint], ...]] = tuple(
    (_compile(row), row) for row in ENDPOINTS if "<" in row.shape
)
_HOSTNAME: Final = re.compile(rf"(?:{_LABEL}\.)*{_LABEL}", re.ASCII)
_MAX_HOSTNAME = 253


def lookup_endpoint(host: str) -> EndpointRegion:
    """Where a request to `host` goes: provider, jurisdiction, location code and why.

    A host this catalogue does not know is not an error: it comes back with provider and region
    None, because whether an unknown region is allowed is the cluster policy's decision.
    """
    name = normalise_host(host)
    # Checked on the input, not the lowercased name: "\u212a" (Kelvin sign) lowercases to "k".
    if not host.isascii():
        return EndpointRegion(
            name, None, None, None, "unknown: not an ASCII hostname; write names in punycode"
        )
    if name.startswith("*."):
        return EndpointRegion(
            name,
            None,
            None,
            None,
            "unknown: a wildcard covers hosts in different places; declare region on the entry",
        )
    if len(name) > _MAX_HOSTNAME or not _HOSTNAME.fullmatch(name):
        return EndpointRegion(
            name,
            None,
            None,
            None,
            "unknown: not a hostname (letters, digits, hyphens and dots; no scheme, port or path)",
        )
    row = _EXACT.get(name)
    if row is not None:
        return EndpointRegion(
            name,
            row.provider,
            row.region,
            row.location,
            f"catalogue: {name} {row.why}",
            row.api_path,
        )
    for pattern, row in _SHAPES:
        match = pattern.fullmatch(name)
        if match is not None:
            return _from_shape(name, row, match.groupdict().get("location"))
    return EndpointRegion(name, None, None, None, "unknown: not a known AI provider endpoint")


def _from_shape(name: str, row: Endpoint, location: str | None) -> EndpointRegion:
    """The answer for a host matching a shape: the row's own region, else its location's."""
    if location is None or row.cloud is None:
        return EndpointRegion(
            name, row.provider, row.region, None, f"pattern: {row.shape} {row.why}", row.api_path
        )
    cloud = CLOUD_NAMES[row.cloud]
    place = LOCATIONS[row.cloud].get(location)
    if place is None:
        where = f"{location} is not among the {cloud} locations this catalogue knows"
        region = row.region
    elif place.region is None:
        where = f"{location} is {cloud} in {place.where}, which no data region aigis knows covers"
        region = row.region
    else:
        where = f"{location} is {cloud} in {place.where}"
        region = row.region if row.region is not None else place.region
    return EndpointRegion(
        name,
        row.provider,
        region,
        location,
        f"pattern: {row.shape} {row.why}; {where}",
        row.api_path,
    )


def jurisdiction_of_location(location: str) -> str | None:
    """The jurisdiction a cloud location code lies in, e.g. `europe-west4` -> `eu`.

    None when no cloud in `LOCATIONS` knows the code, or when it lies in a country no data
    region covers (`ap-east-1`, Hong Kong). A code two clouds use for different cities is read
    as the first cloud in `LOCATIONS` has it: AWS's `eu-west-1` is Ireland, not Alibaba's London.
    """
    code = location.strip().lower()
    for places in LOCATIONS.values():
        place = places.get(code)
        if place is not None:
            return place.region
    return None


_DEFAULTS: Final[Mapping[str, str]] = MappingProxyType(
    {row.provider: row.shape for row in ENDPOINTS if row.default}
)


def default_upstream(provider: str) -> str | None:
    """The provider's default API host, for a gateway given no base URL.

    None for providers without one host for everyone (Azure resources, Bedrock and other
    per-region services, self-hosted models): those need an endpoint configured.
    """
    return _DEFAULTS.get(provider)


def default_base_url(provider: str) -> str | None:
    """The base URL of the provider's default API host, e.g. `https://api.openai.com/v1`.

    None when the provider has no default host, or the gateway does not call it.
    """
    host = _DEFAULTS.get(provider)
    if host is None:
        return None
    path = _EXACT[host].api_path
    return None if path is None else f"https://{host}{path}"


@dataclass(frozen=True, slots=True)
class DestinationRegion:
    """The data region aigis acts on for one destination, and why."""

    region: str | None
    """A `DATA_REGIONS` name, or None when unknown."""
    basis: str
    """Why: the catalogue's evidence, or that the region was declared (and trusted or not)."""


def effective_region(
    host: str | None, declared: str | None, *, trust_declared: bool = True
) -> DestinationRegion:
    """The region of a destination: the catalogue's where it knows one, else the declared one.

    The one rule compliance, the network policies and the gateway all apply. `host` is None for
    a cidr or service entry, and may be a `*.` wildcard, which the catalogue cannot place (the
    gateway asks again with the host actually requested). `declared` is the `region:` written on
    the egress entry; it counts only where the catalogue has no answer, and only when
    `trust_declared` (an AIClusterPolicy with `trustDeclaredRegions: false` turns it off: the
    destination is then of unknown region). A declared region that contradicts the catalogue is
    ignored here and reported by `region_conflicts`.
    """
    found = lookup_endpoint(host) if host is not None else None
    if found is not None and found.region is not None:
        return DestinationRegion(found.region, found.basis)
    evidence = f"; {found.basis}" if found is not None else ""
    if declared is None:
        return DestinationRegion(None, found.basis if found is not None else "no region declared")
    if trust_declared:
        return DestinationRegion(declared, "declared on the entry")
    return DestinationRegion(
        None,
        f'region "{declared}" is declared on the entry, but declared regions are not trusted '
        f"here (trustDeclaredRegions: false){evidence}",
    )


def region_conflicts(host: str, declared: str) -> tuple[EndpointRegion, ...]:
    """The hosts the catalogue places outside `declared` that an entry for `host` covers.

    For an exact host, the host itself when the catalogue's region differs. For a `*.` wildcard,
    every catalogue host one label below it whose region differs (a wildcard matches hosts the
    catalogue places, and for those the catalogue wins, so the declared region would be wrong).
    Hosts the catalogue cannot place are no conflict: for them the declared region counts.
    """
    name = normalise_host(host)
    covered = _covered_hosts(name) if name.startswith("*.") else (lookup_endpoint(name),)
    return tuple(
        found for found in covered if found.region is not None and found.region != declared
    )


def _covered_hosts(pattern: str) -> tuple[EndpointRegion, ...]:
    """The catalogue's hosts (one sample per row and location) that `pattern` matches."""
    suffix = pattern[2:]
    hosts: dict[str, None] = {}
    for row in ENDPOINTS:
        if "<" not in row.shape:
            if host_matches(pattern, row.shape):
                hosts[row.shape] = None
            continue
        first, _, rest = row.shape.partition(".")
        if not _compile_shape(rest, row.cloud).fullmatch(suffix):
            continue
        if "<location>" in first and row.cloud is not None:
            labels = [first.replace("<location>", code) for code in LOCATIONS[row.cloud]]
        else:
            labels = [first]
        for label in labels:
            sample = re.sub(r"<(?:resource|endpoint|workspace)>", "a", label)
            hosts[f"{sample.replace('<project>', '1')}.{suffix}"] = None
    return tuple(lookup_endpoint(host) for host in hosts)


@dataclass(frozen=True, slots=True)
class BaseUrlChoice:
    """The base URL the gateway uses for one provider, and the declared hosts it chose among."""

    url: str | None
    """None when nothing gives one, or when several declared hosts compete (see `hosts`)."""
    hosts: tuple[str, ...]
    """The declared exact hosts the catalogue knows as API hosts of the provider."""
    explicit: bool = False
    """Whether the URL was given in the spec (spec.gateway.upstreams) rather than derived."""


def provider_base_url(
    provider: str, declared_hosts: Sequence[str], explicit: str | None = None
) -> BaseUrlChoice:
    """The upstream base URL for `provider`, so that it agrees with the declared egress.

    In order: the `explicit` URL from the spec; else the one declared host the catalogue knows
    as an API host of the provider, with the provider's path (`eu.api.openai.com` gives
    `https://eu.api.openai.com/v1`); else, when no such host is declared, the provider's default
    host. Several such hosts give no URL: which one to call is the workload's choice to state.
    """
    hosts: dict[str, None] = {}
    paths: dict[str, str] = {}
    for host in declared_hosts:
        found = lookup_endpoint(host)
        if found.provider == provider and found.api_path is not None:
            hosts[found.host] = None
            paths[found.host] = found.api_path
    known = tuple(hosts)
    if explicit is not None:
        return BaseUrlChoice(explicit.rstrip("/"), known, explicit=True)
    if len(known) == 1:
        return BaseUrlChoice(f"https://{known[0]}{paths[known[0]]}", known)
    if not known:
        return BaseUrlChoice(default_base_url(provider), known)
    return BaseUrlChoice(None, known)
