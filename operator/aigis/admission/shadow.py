"""Shadow-AI detection: does a pod template look like an AI workload, and on what evidence?

A pod no AIWorkload covers is "shadow AI" when what it runs says AI: a model-server image, a
provider API key or SDK endpoint in its environment, an accelerator request, or a label that AI
platforms put on their serving pods. The signals live in the plain tables below so they can be
read, reviewed and extended without touching the logic.

Scoring is by kind of evidence, never by guessing from names: each kind has a weight, a template
scores the sum of the heaviest signal of each kind, and it looks like AI at `AI_THRESHOLD`. Strong
signals (a vLLM image, `OPENAI_API_KEY`, `nvidia.com/gpu`) suffice on their own; weak ones (a
`GOOGLE_API_KEY`, which Maps and YouTube clients use too; a general-purpose Ray image; a Secret
whose name mentions a provider) need a second kind of evidence. Image rules match the repository
name only (any registry, so mirrors count too) and only names that exist to serve models, so an
nginx, postgres or redis pod never scores.

Pure: no I/O. Must not import the webhook server, the operator or the gateway.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

from aigis.admission.images import ImageRef, parse_image
from aigis.admission.reading import quote
from aigis.admission.templates import PodTemplate

AI_THRESHOLD: Final = 2
"""Score at which a template looks like AI."""

# Kinds of evidence and their weights.
MODEL_SERVER_IMAGE: Final = "model-server-image"
PROVIDER_KEY: Final = "provider-key"
PROVIDER_ENDPOINT: Final = "provider-endpoint"
ACCELERATOR: Final = "accelerator"
AI_LABEL: Final = "ai-label"
GENERAL_COMPUTE_IMAGE: Final = "general-compute-image"
AMBIGUOUS_KEY: Final = "ambiguous-key"
PROVIDER_SECRET_NAME: Final = "provider-secret-name"  # noqa: S105 - an evidence kind
WEIGHTS: Final[Mapping[str, int]] = MappingProxyType(
    {
        MODEL_SERVER_IMAGE: 3,
        PROVIDER_KEY: 3,
        AI_LABEL: 3,
        ACCELERATOR: 2,
        PROVIDER_ENDPOINT: 2,
        GENERAL_COMPUTE_IMAGE: 1,
        AMBIGUOUS_KEY: 1,
        PROVIDER_SECRET_NAME: 1,
    }
)

# Last segment of an image repository -> the model server it is. Mirrors keep the last segment,
# so `registry.corp/mirror/vllm-openai` is found as well as `vllm/vllm-openai`.
MODEL_SERVER_REPOSITORIES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "text-generation-inference": "Hugging Face TGI",
        "text-embeddings-inference": "Hugging Face TEI",
        "ollama": "Ollama",
        "tritonserver": "NVIDIA Triton",
        "tensorrt-llm": "TensorRT-LLM",
        "llama.cpp": "llama.cpp",
        "llama-cpp": "llama.cpp",
        "llamacpp": "llama.cpp",
        "llama-cpp-python": "llama.cpp",
        "local-ai": "LocalAI",
        "localai": "LocalAI",
        "sglang": "SGLang",
        "lmdeploy": "LMDeploy",
        "xinference": "Xinference",
        "lorax": "LoRAX",
        "aphrodite-openai": "Aphrodite",
        "aphrodite-engine": "Aphrodite",
        "torchserve": "TorchServe",
        "mlserver": "Seldon MLServer",
        "djl-serving": "DJL Serving",
        "huggingfaceserver": "KServe",
        "sklearnserver": "KServe",
        "xgbserver": "KServe",
        "lgbserver": "KServe",
        "pmmlserver": "KServe",
        "paddleserver": "KServe",
        "litellm": "LiteLLM",
        "litellm-database": "LiteLLM",
        "litellm-non_root": "LiteLLM",
        "open-webui": "Open WebUI",
    }
)
# vLLM publishes one repository per target: vllm-openai, vllm-cpu, vllm-tpu, ...
_VLLM_REPOSITORY = re.compile(r"vllm(?:-[a-z0-9]+)*")
# Repositories whose last segment alone is too generic (`serving`, `ray`): owner/name -> server.
MODEL_SERVER_OWNED_REPOSITORIES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "tensorflow/serving": "TensorFlow Serving",
        "openvino/model_server": "OpenVINO Model Server",
        "michaelf34/infinity": "Infinity",
        "rayproject/ray-ml": "Ray (ML image)",
        "kserve/storage-initializer": "KServe",
        "kserve/kserve-container": "KServe",
    }
)
# General-purpose images that often serve models but run other work too: weak evidence.
GENERAL_COMPUTE_REPOSITORIES: Final[Mapping[str, str]] = MappingProxyType(
    {"rayproject/ray": "Ray", "pytorch/pytorch": "PyTorch", "tensorflow/tensorflow": "TensorFlow"}
)
# Registry and repository prefix of NVIDIA NIM microservices (every NIM is a model server).
_NIM_REGISTRY: Final = "nvcr.io"
_NIM_PREFIX: Final = "nim/"

# Environment variables (and Secret keys) that hold a provider API key -> provider.
PROVIDER_KEY_VARIABLES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "OPENAI_API_KEY": "OpenAI",
        "ANTHROPIC_API_KEY": "Anthropic",
        "CLAUDE_API_KEY": "Anthropic",
        "AZURE_OPENAI_API_KEY": "Azure OpenAI",
        "AZURE_OPENAI_KEY": "Azure OpenAI",
        "AZURE_AI_API_KEY": "Azure AI",
        "GEMINI_API_KEY": "Google Gemini",
        "COHERE_API_KEY": "Cohere",
        "CO_API_KEY": "Cohere",
        "MISTRAL_API_KEY": "Mistral",
        "HF_TOKEN": "Hugging Face",
        "HUGGING_FACE_HUB_TOKEN": "Hugging Face",
        "HUGGINGFACEHUB_API_TOKEN": "Hugging Face",
        "HF_API_TOKEN": "Hugging Face",
        "AWS_BEARER_TOKEN_BEDROCK": "Amazon Bedrock",
        "GROQ_API_KEY": "Groq",
        "TOGETHER_API_KEY": "Together AI",
        "REPLICATE_API_TOKEN": "Replicate",
        "DEEPSEEK_API_KEY": "DeepSeek",
        "XAI_API_KEY": "xAI",
        "PERPLEXITY_API_KEY": "Perplexity",
        "PPLX_API_KEY": "Perplexity",
        "FIREWORKS_API_KEY": "Fireworks AI",
        "OPENROUTER_API_KEY": "OpenRouter",
        "VOYAGE_API_KEY": "Voyage AI",
        "LANGSMITH_API_KEY": "LangSmith",
        "LANGCHAIN_API_KEY": "LangSmith",
    }
)
# Keys whose name is shared with non-AI APIs: weak evidence (Google Maps clients use this one).
AMBIGUOUS_KEY_VARIABLES: Final[Mapping[str, str]] = MappingProxyType(
    {"GOOGLE_API_KEY": "Google (Gemini, or another Google API)"}
)
# Environment variables that point an AI SDK at an endpoint -> provider.
PROVIDER_ENDPOINT_VARIABLES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "OPENAI_BASE_URL": "OpenAI",
        "OPENAI_API_BASE": "OpenAI",
        "ANTHROPIC_BASE_URL": "Anthropic",
        "AZURE_OPENAI_ENDPOINT": "Azure OpenAI",
        "OLLAMA_HOST": "Ollama",
        "OLLAMA_BASE_URL": "Ollama",
    }
)
# Any other AZURE_OPENAI_* variable configures the Azure OpenAI SDK.
_AZURE_OPENAI_PREFIX: Final = "AZURE_OPENAI_"
# Words in a Secret's name that suggest a provider credential: weak evidence.
PROVIDER_SECRET_WORDS: Final = (
    "openai",
    "anthropic",
    "claude",
    "huggingface",
    "hf-token",
    "cohere",
    "mistral",
    "gemini",
    "bedrock",
)

# Extended resources that are accelerators -> what they are. MIG slices are `nvidia.com/mig-*`.
ACCELERATOR_RESOURCES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "nvidia.com/gpu": "NVIDIA GPU",
        "amd.com/gpu": "AMD GPU",
        "gpu.intel.com/i915": "Intel GPU",
        "gpu.intel.com/xe": "Intel GPU",
        "habana.ai/gaudi": "Intel Gaudi",
        "aws.amazon.com/neuron": "AWS Neuron",
        "aws.amazon.com/neuroncore": "AWS Neuron",
        "aws.amazon.com/neurondevice": "AWS Neuron",
        "google.com/tpu": "Google TPU",
    }
)
_MIG_PREFIX: Final = "nvidia.com/mig-"
# Node labels a pod selects to land on an accelerator node.
ACCELERATOR_NODE_LABELS: Final = frozenset(
    {
        "cloud.google.com/gke-accelerator",
        "cloud.google.com/gke-tpu-accelerator",
        "nvidia.com/gpu.present",
        "nvidia.com/gpu.product",
        "k8s.amazonaws.com/accelerator",
    }
)
ACCELERATOR_RUNTIME_CLASSES: Final = frozenset({"nvidia", "nvidia-cdi"})

# Labels AI platforms put on their serving pods: key -> value (None: any value).
AI_LABELS: Final[Mapping[str, frozenset[str] | None]] = MappingProxyType(
    {
        "app.kubernetes.io/component": frozenset(
            {"model-server", "model-serving", "inference-server", "inference", "llm"}
        ),
        "serving.kserve.io/inferenceservice": None,
        "seldon-deployment-id": None,
    }
)

_CONTAINER_LISTS: Final = ("initContainers", "containers", "ephemeralContainers")


@dataclass(frozen=True, slots=True)
class Evidence:
    """One sign that a pod template runs AI, and where it is in the admitted object."""

    kind: str
    path: str
    detail: str
    """What was found, for people: `image "vllm/vllm-openai:v0.6.3" is vLLM, a model server`."""

    @property
    def weight(self) -> int:
        return WEIGHTS[self.kind]


def ai_evidence(template: PodTemplate) -> list[Evidence]:
    """Every sign that `template` runs AI, in the order they appear in the object."""
    found: list[Evidence] = []
    found.extend(_label_evidence(template))
    spec = template.spec
    for key in _CONTAINER_LISTS:
        containers = spec.get(key)
        if not isinstance(containers, list):
            continue
        for index, container in enumerate(containers):
            if isinstance(container, Mapping):
                found.extend(_container_evidence(container, f"{template.spec_path}.{key}[{index}]"))
    found.extend(_resource_evidence(spec.get("resources"), f"{template.spec_path}.resources"))
    found.extend(_node_evidence(spec, template.spec_path))
    return found


def ai_score(evidence: Sequence[Evidence]) -> int:
    """The sum, over kinds of evidence, of the heaviest signal of each kind."""
    best: dict[str, int] = {}
    for item in evidence:
        best[item.kind] = max(best.get(item.kind, 0), item.weight)
    return sum(best.values())


def looks_like_ai(evidence: Sequence[Evidence]) -> bool:
    """Whether the evidence adds up to an AI workload."""
    return ai_score(evidence) >= AI_THRESHOLD


def model_server(image: ImageRef) -> tuple[str, bool] | None:
    """The model server `image` is and whether that is strong evidence, or None."""
    repository = image.repository
    if image.registry == _NIM_REGISTRY and repository.startswith(_NIM_PREFIX):
        return "NVIDIA NIM", True
    owner, _, last = repository.rpartition("/")
    owned = f"{owner.rpartition('/')[2]}/{last}" if owner else last
    server = MODEL_SERVER_REPOSITORIES.get(last) or MODEL_SERVER_OWNED_REPOSITORIES.get(owned)
    if server is not None:
        return server, True
    if _VLLM_REPOSITORY.fullmatch(last):
        return "vLLM", True
    general = GENERAL_COMPUTE_REPOSITORIES.get(owned)
    if general is not None:
        return general, False
    return None


def provider_of_variable(name: str) -> tuple[str, str] | None:
    """(evidence kind, provider) for an environment variable or Secret key name, or None."""
    provider = PROVIDER_KEY_VARIABLES.get(name)
    if provider is not None:
        return PROVIDER_KEY, provider
    provider = PROVIDER_ENDPOINT_VARIABLES.get(name)
    if provider is not None:
        return PROVIDER_ENDPOINT, provider
    if name.startswith(_AZURE_OPENAI_PREFIX):
        return PROVIDER_ENDPOINT, "Azure OpenAI"
    provider = AMBIGUOUS_KEY_VARIABLES.get(name)
    if provider is not None:
        return AMBIGUOUS_KEY, provider
    return None


def _label_evidence(template: PodTemplate) -> Iterator[Evidence]:
    labels = template.labels
    for key, values in AI_LABELS.items():
        value = labels.get(key)
        if value is not None and (values is None or value in values):
            yield Evidence(
                AI_LABEL,
                f"{template.metadata_path}.labels[{quote(key)}]",
                f"label {key}={quote(value)}",
            )


def _container_evidence(container: Mapping[str, Any], path: str) -> Iterator[Evidence]:
    image = container.get("image")
    if isinstance(image, str):
        parsed = parse_image(image)
        if isinstance(parsed, ImageRef):
            server = model_server(parsed)
            if server is not None:
                name, strong = server
                yield Evidence(
                    MODEL_SERVER_IMAGE if strong else GENERAL_COMPUTE_IMAGE,
                    f"{path}.image",
                    f"image {quote(image)} is {name}"
                    + (", a model server" if strong else ", often used to serve models"),
                )
    env = container.get("env")
    if isinstance(env, list):
        for index, entry in enumerate(env):
            if isinstance(entry, Mapping):
                yield from _env_evidence(entry, f"{path}.env[{index}]")
    env_from = container.get("envFrom")
    if isinstance(env_from, list):
        for index, entry in enumerate(env_from):
            if not isinstance(entry, Mapping):
                continue
            secret = entry.get("secretRef")
            secret_name = secret.get("name") if isinstance(secret, Mapping) else None
            if isinstance(secret_name, str) and any(
                word in secret_name.lower() for word in PROVIDER_SECRET_WORDS
            ):
                yield Evidence(
                    PROVIDER_SECRET_NAME,
                    f"{path}.envFrom[{index}].secretRef.name",
                    f"environment from Secret {quote(secret_name)}, named like a provider "
                    "credential",
                )
    yield from _resource_evidence(container.get("resources"), f"{path}.resources")


def _env_evidence(entry: Mapping[str, Any], path: str) -> Iterator[Evidence]:
    name = entry.get("name")
    if isinstance(name, str):
        found = provider_of_variable(name)
        if found is not None:
            kind, provider = found
            what = "API key" if kind != PROVIDER_ENDPOINT else "SDK endpoint"
            yield Evidence(kind, f"{path}.name", f"{provider} {what} in ${name}")
            return
    value_from = entry.get("valueFrom")
    ref = value_from.get("secretKeyRef") if isinstance(value_from, Mapping) else None
    key = ref.get("key") if isinstance(ref, Mapping) else None
    if isinstance(key, str):
        found = provider_of_variable(key)
        if found is not None:
            kind, provider = found
            yield Evidence(
                kind,
                f"{path}.valueFrom.secretKeyRef.key",
                f"{provider} credential from Secret key {quote(key)}",
            )


def _resource_evidence(resources: object, path: str) -> Iterator[Evidence]:
    if not isinstance(resources, Mapping):
        return
    for section in ("limits", "requests"):
        amounts = resources.get(section)
        if not isinstance(amounts, Mapping):
            continue
        for name, amount in amounts.items():
            if not isinstance(name, str) or _is_zero(amount):
                continue
            device = ACCELERATOR_RESOURCES.get(name)
            if device is None and name.startswith(_MIG_PREFIX):
                device = "NVIDIA GPU (MIG slice)"
            if device is not None:
                yield Evidence(
                    ACCELERATOR,
                    f"{path}.{section}[{quote(name)}]",
                    f"requests {name}, an accelerator ({device})",
                )
                return  # one accelerator per resources block is evidence enough


def _node_evidence(spec: Mapping[str, Any], path: str) -> Iterator[Evidence]:
    selector = spec.get("nodeSelector")
    if isinstance(selector, Mapping):
        for key in selector:
            if key in ACCELERATOR_NODE_LABELS:
                yield Evidence(
                    ACCELERATOR,
                    f"{path}.nodeSelector[{quote(str(key))}]",
                    f"selects accelerator nodes ({key})",
                )
    runtime_class = spec.get("runtimeClassName")
    if isinstance(runtime_class, str) and runtime_class in ACCELERATOR_RUNTIME_CLASSES:
        yield Evidence(
            ACCELERATOR,
            f"{path}.runtimeClassName",
            f"runs with the {quote(runtime_class)} GPU runtime class",
        )


def _is_zero(amount: object) -> bool:
    if isinstance(amount, bool):
        return False
    if isinstance(amount, int | float):
        return amount == 0
    if isinstance(amount, str):
        try:
            return float(amount) == 0
        except ValueError:
            return False
    return False
