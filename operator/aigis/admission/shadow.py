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

AI applications are recognised too, not only model servers: a model reference in the environment
or the arguments (`meta-llama/Llama-3.1-8B-Instruct`, `MODEL_ID=gpt-4o`), settings of AI
frameworks (`LLM_*`, `VLLM_*`, `HF_HOME`), an OpenAI-compatible URL pointing at an in-cluster model
service (`http://vllm.llm.svc:8000/v1`), a model-server or training launcher as the command
(`vllm serve`, `torchrun`), and the kind of the object holding the template (a KServe
InferenceService serves a model by definition; a RayCluster only often does). The corpus under
`tests/data/shadow/` measures recall on AI manifests and false alarms on ordinary ones.

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
AI_KIND: Final = "ai-kind"
AI_COMPUTE_KIND: Final = "ai-compute-kind"
MODEL_REFERENCE: Final = "model-reference"
MODEL_SERVER_COMMAND: Final = "model-server-command"
MODEL_ENDPOINT: Final = "model-endpoint"
AI_SETTING: Final = "ai-setting"
MODEL_SETTING: Final = "model-setting"
WEIGHTS: Final[Mapping[str, int]] = MappingProxyType(
    {
        MODEL_SERVER_IMAGE: 3,
        PROVIDER_KEY: 3,
        AI_LABEL: 3,
        AI_KIND: 3,
        MODEL_REFERENCE: 3,
        MODEL_SERVER_COMMAND: 3,
        MODEL_ENDPOINT: 2,
        AI_SETTING: 2,
        AI_COMPUTE_KIND: 1,
        MODEL_SETTING: 1,
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

# Kinds of object (`aigis.admission.templates.TEMPLATE_KINDS`) that say AI on their own -> what
# they are; the rest of that table runs AI often but not always (weak evidence below).
AI_KINDS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "InferenceService": "a KServe InferenceService, which serves a model",
        "ServingRuntime": "a KServe ServingRuntime, a model server",
        "LLMInferenceService": "a KServe LLMInferenceService, which serves an LLM",
        "PyTorchJob": "a Kubeflow PyTorchJob, which trains a model",
        "TFJob": "a Kubeflow TFJob, which trains a model",
        "XGBoostJob": "a Kubeflow XGBoostJob, which trains a model",
        "PaddleJob": "a Kubeflow PaddleJob, which trains a model",
        "JAXJob": "a Kubeflow JAXJob, which trains a model",
    }
)
AI_COMPUTE_KINDS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "LeaderWorkerSet": "a LeaderWorkerSet, built for multi-host inference",
        "JobSet": "a JobSet, built for distributed training",
        "RayCluster": "a RayCluster, often used to serve or train models",
        "RayService": "a RayService (Ray Serve), often used to serve models",
        "RayJob": "a RayJob, often used to train models",
        "MPIJob": "a Kubeflow MPIJob, often used to train models",
        "Notebook": "a Kubeflow Notebook, often used to develop models",
    }
)

# Organisations publishing models on Hugging Face (lower case): `<org>/<model>` in an environment
# value or argument is a model reference.
MODEL_ORGANISATIONS: Final = frozenset(
    {
        "meta-llama",
        "mistralai",
        "qwen",
        "deepseek-ai",
        "tiiuae",
        "tinyllama",
        "eleutherai",
        "bigscience",
        "huggingfaceh4",
        "huggingfacetb",
        "ibm-granite",
        "sentence-transformers",
        "baai",
        "intfloat",
        "openai-community",
        "stabilityai",
        "allenai",
        "nousresearch",
        "01-ai",
        "databricks",
        "lmsys",
        "thudm",
        "nomic-ai",
        "bigcode",
        "codellama",
        "teknium",
        "cohereforai",
        "microsoft/phi",
        "google/gemma",
        "google/flan",
        "google-bert",
        "facebook/opt",
        "openai/gpt-oss",
        "openai/whisper",
        "nvidia/llama",
        "nvidia/nemotron",
    }
)
# Model names without an organisation (`gpt-4o`, `claude-sonnet-4-5`, `llama3.1:8b` for Ollama):
# read only in variables and flags that name a model, where they cannot be anything else.
_MODEL_FAMILY = re.compile(
    r"(?i)^(?:[\w.-]+/)?(?:gpt-(?:3\.5|4|5|oss)|o[134](?:-mini|-preview)?$|chatgpt|claude|gemini|"
    r"llama|codellama|mistral|mixtral|ministral|qwen|phi-?\d|gemma|deepseek|falcon|granite|"
    r"command-r|text-embedding|all-minilm|bge-|e5-|nomic-embed|tinyllama|smollm|starcoder|"
    r"whisper|stable-diffusion)"
)
_HF_REFERENCE = re.compile(r"(?:hf://|huggingface\.co/)?([A-Za-z0-9][\w.-]*)/([\w.-]+)")
# Variables naming a model: MODEL, MODEL_ID, LLM_MODEL, EMBEDDING_MODEL_NAME, ...
_MODEL_VARIABLE = re.compile(r"(?:^|_)MODELS?(?:_(?:ID|NAME|PATH|REPO|URI))?$|^MODEL_")
# Words in a variable name that belong to AI frameworks: LLM_API_BASE, VLLM_PORT, HF_HOME, ...
AI_SETTING_WORDS: Final = frozenset(
    {
        "LLM",
        "LLMS",
        "GENAI",
        "VLLM",
        "OLLAMA",
        "TGI",
        "HF",
        "HUGGINGFACE",
        "TRANSFORMERS",
        "LANGCHAIN",
        "LANGSMITH",
        "LITELLM",
        "LLAMA",
        "EMBEDDING",
        "EMBEDDINGS",
        "OPENAI",
        "ANTHROPIC",
    }
)
# Command-line flags of model servers and training scripts that name a model.
MODEL_FLAGS: Final = frozenset(
    {
        "--model",
        "--model-id",
        "--model-name",
        "--model_id",
        "--model_name",
        "--model_name_or_path",
        "--model-name-or-path",
        "--served-model-name",
        "--model-path",
        "--model_path",
        "--tokenizer",
        "--hf-model",
    }
)
# Executables (and `python -m` modules) that serve or train models -> what they are.
MODEL_SERVER_COMMANDS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "vllm": "vLLM",
        "vllm.entrypoints.openai.api_server": "vLLM",
        "text-generation-launcher": "Hugging Face TGI",
        "text-embeddings-router": "Hugging Face TEI",
        "llama-server": "llama.cpp",
        "llama_cpp.server": "llama.cpp",
        "ollama": "Ollama",
        "tritonserver": "NVIDIA Triton",
        "torchserve": "TorchServe",
        "mlserver": "Seldon MLServer",
        "lmdeploy": "LMDeploy",
        "sglang.launch_server": "SGLang",
        "litellm": "LiteLLM",
        "torchrun": "PyTorch distributed training",
        "torch.distributed.run": "PyTorch distributed training",
        "deepspeed": "DeepSpeed training",
        "accelerate": "Hugging Face Accelerate",
    }
)
# Paths of model APIs (OpenAI-compatible, Ollama, TGI) at the end of a URL.
_MODEL_API_PATH = re.compile(
    r"/(?:v1/(?:chat/completions|completions|embeddings|models)|api/(?:generate|chat|embeddings?)"
    r"|generate_stream|generate)/?$"
)
_BASE_PATHS: Final = frozenset({"/v1", "/v1/", "/openai/v1", "/openai/v1/"})
_URL = re.compile(r"^https?://([A-Za-z0-9.-]+)(?::\d+)?(/[^\s?#]*)?$")
_CLUSTER_SUFFIXES: Final = (".svc", ".svc.cluster.local", ".cluster.local")
# Words in an in-cluster host or a variable name that make a base URL a model endpoint.
MODEL_SERVICE_WORDS: Final = frozenset(
    {
        "vllm",
        "ollama",
        "tgi",
        "llm",
        "llama",
        "triton",
        "predictor",
        "inference",
        "model",
        "models",
        "litellm",
        "mistral",
        "qwen",
        "embeddings",
        "embedding",
        "openai",
        "chat",
        "completions",
        "ai",
        "genai",
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
    found.extend(_kind_evidence(template))
    found.extend(_label_evidence(template))
    spec = template.spec
    for key in _CONTAINER_LISTS:
        containers = spec.get(key)
        if not isinstance(containers, list):
            continue
        for index, container in enumerate(containers):
            if isinstance(container, Mapping):
                found.extend(_container_evidence(container, f"{template.spec_path}.{key}[{index}]"))
    for where, container in template.inline_containers:
        found.extend(_container_evidence(container, where))
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


def model_reference(value: str, *, named_model: bool) -> str | None:
    """The model `value` names (`meta-llama/Llama-3.1-8B`), or None. Bare family names
    (`gpt-4o`) count only where the value is known to name a model (`named_model`)."""
    text = value.strip()
    if not text or len(text) > 256 or any(c.isspace() for c in text):
        return None
    match = _HF_REFERENCE.fullmatch(text.removeprefix("hf://").removeprefix("https://"))
    if match is not None:
        org, name = match.group(1).lower(), match.group(2).lower()
        if org in MODEL_ORGANISATIONS or any(
            f"{org}/{name}".startswith(prefix) for prefix in MODEL_ORGANISATIONS if "/" in prefix
        ):
            return text
    if named_model and _MODEL_FAMILY.match(text):
        return text
    return None


def model_endpoint(name: str, value: str) -> str | None:
    """Why the URL in `value` (of variable `name`) is an in-cluster model service, or None."""
    match = _URL.fullmatch(value.strip())
    if match is None:
        return None
    host, path = match.group(1).lower(), match.group(2) or ""
    if not ("." not in host or host.endswith(_CLUSTER_SUFFIXES)):
        return None
    if _MODEL_API_PATH.search(path):
        return f"calls a model API in the cluster ({value.strip()})"
    host_words = set(re.split(r"[.-]", host.split(".")[0]))
    name_words = {w.lower() for w in name.split("_")}
    if path in _BASE_PATHS and (host_words | name_words) & MODEL_SERVICE_WORDS:
        return f"points an OpenAI-compatible client at a service in the cluster ({value.strip()})"
    if host_words & (MODEL_SERVICE_WORDS - {"ai", "chat", "model", "models"}):
        return f"points at an in-cluster model service ({value.strip()})"
    return None


def _kind_evidence(template: PodTemplate) -> Iterator[Evidence]:
    what = AI_KINDS.get(template.kind)
    if what is not None:
        yield Evidence(AI_KIND, "kind", f"the object is {what}")
        return
    what = AI_COMPUTE_KINDS.get(template.kind)
    if what is not None:
        yield Evidence(AI_COMPUTE_KIND, "kind", f"the object is {what}")


def _command_evidence(container: Mapping[str, Any], path: str) -> Iterator[Evidence]:
    words: list[tuple[str, str]] = []
    for key in ("command", "args"):
        items = container.get(key)
        if isinstance(items, list):
            for index, item in enumerate(items):
                if isinstance(item, str):
                    # `sh -c "vllm serve ..."` holds the command line in one string.
                    words.extend((f"{path}.{key}[{index}]", w) for w in item.split())
    server_found = flag_found = model_found = False
    for index, (where, word) in enumerate(words):
        executable = word.rpartition("/")[2]
        previous = words[index - 1][1] if index else ""
        server = MODEL_SERVER_COMMANDS.get(executable) if previous != "-m" else None
        if previous == "-m":
            server = MODEL_SERVER_COMMANDS.get(word)
        if server is not None and not server_found:
            server_found = True
            yield Evidence(MODEL_SERVER_COMMAND, where, f"runs {quote(word)}, {server}")
        flag, equals, inline = word.partition("=")
        value = inline if equals else (words[index + 1][1] if index + 1 < len(words) else "")
        if flag in MODEL_FLAGS and not flag_found:
            flag_found = True
            yield Evidence(AI_SETTING, where, f"passes {flag}, which names a model")
        named = flag in MODEL_FLAGS
        reference = model_reference(value if named else word, named_model=named)
        if reference is not None and not model_found:
            model_found = True
            yield Evidence(MODEL_REFERENCE, where, f"names the model {quote(reference)}")


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
    yield from _command_evidence(container, path)
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
        yield from _setting_evidence(name, entry.get("value"), path)
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


def _setting_evidence(name: str, value: object, path: str) -> Iterator[Evidence]:
    """What an ordinary variable says: a model it names, a model endpoint, an AI setting."""
    text = value if isinstance(value, str) else ""
    names_model = bool(_MODEL_VARIABLE.search(name.upper()))
    reference = model_reference(text, named_model=names_model) if text else None
    if reference is not None:
        yield Evidence(MODEL_REFERENCE, f"{path}.value", f"${name} names the model {quote(text)}")
    elif names_model:
        yield Evidence(MODEL_SETTING, f"{path}.name", f"${name} looks like a model setting")
    endpoint = model_endpoint(name, text) if text else None
    if endpoint is not None:
        yield Evidence(MODEL_ENDPOINT, f"{path}.value", f"${name} {endpoint}")
    if set(name.upper().split("_")) & AI_SETTING_WORDS:
        yield Evidence(AI_SETTING, f"{path}.name", f"${name} configures an AI framework")


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
