"""Provider specs as data, model-string resolution, presets and plugins.

A spec row says everything llmgate needs before importing a provider: its module, the
extra that installs its SDK, the environment variables holding its key, its default base
URL, the bare-name prefixes it claims and what it can do. OpenAI-compatible vendors are
rows pointing at the OpenAI provider with another base URL and key variable.
"""

from __future__ import annotations

import fnmatch
import importlib
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

from .exceptions import ConfigError, MissingDependencyError, ModelNotFoundError

if TYPE_CHECKING:
    from .providers.base import Provider

ENTRY_POINT_GROUP = "llmgate.providers"


@dataclass(frozen=True)
class Capabilities:
    """What a provider (or one of its models) can do. Read by docs, fallback and checks."""

    streaming: bool = True
    tools: bool = True
    tool_choice_required: bool = True
    parallel_tools: bool = True
    vision: bool = True
    image_urls: bool = True
    structured_output: bool = True
    embeddings: bool = False
    prefill: bool = False
    reasoning: bool = False
    system_prompt: bool = True

    def with_overrides(self, overrides: Mapping[str, bool]) -> Capabilities:
        return replace(self, **dict(overrides))

    def as_dict(self) -> dict[str, bool]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class ProviderSpec:
    """One provider, as data."""

    name: str
    module: str  # "package.module:ClassName"
    extra: str | None = None  # the pip extra that installs its SDK
    sdk_package: str | None = None  # the importable SDK (for the missing-extra error)
    env_keys: tuple[str, ...] = ()
    key_required: bool = True
    base_url_env: tuple[str, ...] = ()
    default_base_url: str | None = None
    prefixes: tuple[str, ...] = ()
    capabilities: Capabilities = field(default_factory=Capabilities)
    model_capabilities: tuple[tuple[str, Mapping[str, bool]], ...] = ()
    openai_compatible: bool = False
    description: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)

    def capabilities_for(self, model: str) -> Capabilities:
        caps = self.capabilities
        for pattern, overrides in self.model_capabilities:
            if fnmatch.fnmatchcase(model, pattern):
                caps = caps.with_overrides(overrides)
        return caps

    def env_api_key(self) -> str | None:
        for name in self.env_keys:
            value = os.environ.get(name)
            if value:
                return value
        return None

    def env_base_url(self) -> str | None:
        for name in self.base_url_env:
            value = os.environ.get(name)
            if value:
                return value
        return None

    def load_class(self) -> type[Provider]:
        """Import the provider module; a missing SDK names the extra to install."""
        module_name, _, class_name = self.module.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            missing = (exc.name or "").split(".")[0]
            sdk_root = (self.sdk_package or "").split(".")[0]
            if self.extra and sdk_root and missing in (sdk_root, ""):
                raise MissingDependencyError(
                    self.name, self.extra, self.sdk_package or sdk_root
                ) from exc
            raise
        cls: type[Provider] = getattr(module, class_name)
        return cls


_OPENAI_CAPS = Capabilities(embeddings=True, reasoning=True)
_LOCAL_OPENAI_CAPS = Capabilities(embeddings=True, reasoning=True, prefill=False)
_CHAT_ONLY_CAPS = Capabilities(embeddings=False, reasoning=True)  # no /embeddings endpoint


def _preset(
    name: str,
    base_url: str,
    env_key: str,
    *,
    key_required: bool = True,
    caps: Capabilities = _OPENAI_CAPS,
    description: str = "",
    options: Mapping[str, Any] | None = None,
) -> ProviderSpec:
    return ProviderSpec(
        name=name,
        module="llmgate.providers.openai:OpenAIProvider",
        extra="openai",
        sdk_package="openai",
        env_keys=(env_key,),
        key_required=key_required,
        base_url_env=(f"{name.upper()}_BASE_URL",),
        default_base_url=base_url,
        capabilities=caps,
        openai_compatible=True,
        description=description or f"{name} (OpenAI-compatible endpoint)",
        options=dict(options or {}),
    )


BUILTIN_SPECS: tuple[ProviderSpec, ...] = (
    ProviderSpec(
        name="openai",
        module="llmgate.providers.openai:OpenAIProvider",
        extra="openai",
        sdk_package="openai",
        env_keys=("OPENAI_API_KEY",),
        base_url_env=("OPENAI_BASE_URL",),
        prefixes=("gpt-", "o1", "o3", "o4", "chatgpt-", "text-embedding-"),
        capabilities=_OPENAI_CAPS,
        model_capabilities=(
            ("o1*", {"parallel_tools": False}),
            ("gpt-3.5*", {"vision": False, "structured_output": False}),
        ),
        description="OpenAI Chat Completions",
    ),
    ProviderSpec(
        name="azure",
        module="llmgate.providers.azure:AzureProvider",
        extra="azure",
        sdk_package="openai",
        env_keys=("AZURE_OPENAI_API_KEY",),
        base_url_env=("AZURE_OPENAI_ENDPOINT",),
        capabilities=_OPENAI_CAPS,
        description="Azure OpenAI (model = deployment name)",
        options={"api_version": "2025-04-01-preview"},
    ),
    ProviderSpec(
        name="anthropic",
        module="llmgate.providers.anthropic:AnthropicProvider",
        extra="anthropic",
        sdk_package="anthropic",
        env_keys=("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"),
        base_url_env=("ANTHROPIC_BASE_URL",),
        prefixes=("claude-",),
        capabilities=Capabilities(prefill=True, reasoning=True),
        # Opus 4.6 answers a trailing assistant turn with 400 "prefill not supported".
        model_capabilities=(("claude-opus-4-6*", {"prefill": False}),),
        description="Anthropic Messages",
    ),
    ProviderSpec(
        name="gemini",
        module="llmgate.providers.gemini:GeminiProvider",
        extra="gemini",
        sdk_package="google.genai",
        env_keys=("GOOGLE_API_KEY", "GEMINI_API_KEY"),
        base_url_env=("GOOGLE_GEMINI_BASE_URL",),
        prefixes=("gemini-", "gemma-"),
        capabilities=Capabilities(embeddings=True, reasoning=True, image_urls=False),
        model_capabilities=(
            # Gemma 3 on the Gemini API refuses system instructions, function calling and JSON
            # mode; the provider folds system messages into the first user turn.
            (
                "gemma-3*",
                {
                    "system_prompt": False,
                    "tools": False,
                    "tool_choice_required": False,
                    "parallel_tools": False,
                    "structured_output": False,
                    "reasoning": False,
                },
            ),
        ),
        description="Google Gemini API (google-genai)",
    ),
    ProviderSpec(
        name="mistral",
        module="llmgate.providers.mistral:MistralProvider",
        extra="mistral",
        sdk_package="mistralai",
        env_keys=("MISTRAL_API_KEY",),
        base_url_env=("MISTRAL_BASE_URL",),
        default_base_url="https://api.mistral.ai",
        prefixes=(
            "mistral-",
            "codestral-",
            "devstral-",
            "pixtral-",
            "magistral-",
            "ministral-",
            "voxtral-",
            "open-mistral",
            "open-mixtral",
        ),
        capabilities=Capabilities(embeddings=True, prefill=True, reasoning=True),
        model_capabilities=(
            ("codestral-*", {"vision": False}),
            ("open-mistral-*", {"vision": False}),
            ("open-mixtral-*", {"vision": False}),
        ),
        description="Mistral La Plateforme",
    ),
    ProviderSpec(
        name="cohere",
        module="llmgate.providers.cohere:CohereProvider",
        extra="cohere",
        sdk_package="cohere",
        env_keys=("CO_API_KEY", "COHERE_API_KEY"),
        base_url_env=("CO_API_URL",),
        prefixes=("command-", "embed-english", "embed-multilingual", "embed-v"),
        capabilities=Capabilities(embeddings=True, reasoning=True),
        description="Cohere v2",
    ),
    ProviderSpec(
        name="bedrock",
        module="llmgate.providers.bedrock:BedrockProvider",
        extra="bedrock",
        sdk_package="boto3",
        env_keys=("AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_BEARER_TOKEN_BEDROCK"),
        key_required=False,
        base_url_env=("AWS_ENDPOINT_URL_BEDROCK_RUNTIME",),
        capabilities=Capabilities(embeddings=True, prefill=True, reasoning=True, image_urls=False),
        description="Amazon Bedrock Converse (boto3)",
    ),
    ProviderSpec(
        name="ollama",
        module="llmgate.providers.ollama:OllamaProvider",
        extra="ollama",
        sdk_package="ollama",
        env_keys=("OLLAMA_API_KEY",),
        key_required=False,
        base_url_env=("OLLAMA_HOST",),
        default_base_url="http://127.0.0.1:11434",
        capabilities=Capabilities(
            embeddings=True, reasoning=True, image_urls=False, tool_choice_required=False
        ),
        description="Ollama (local models)",
    ),
    ProviderSpec(
        name="mock",
        module="llmgate.testing:MockProvider",
        key_required=False,
        capabilities=Capabilities(embeddings=True, prefill=True, reasoning=True),
        description="Offline scripted provider for demos and tests",
    ),
    _preset("groq", "https://api.groq.com/openai/v1", "GROQ_API_KEY", caps=_CHAT_ONLY_CAPS),
    _preset(
        "deepseek",
        "https://api.deepseek.com/v1",
        "DEEPSEEK_API_KEY",
        caps=_CHAT_ONLY_CAPS,
        options={"structured_output": "json_object"},  # DeepSeek has JSON mode, no json_schema
    ),
    _preset("together", "https://api.together.xyz/v1", "TOGETHER_API_KEY"),
    _preset("openrouter", "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY"),
    _preset("fireworks", "https://api.fireworks.ai/inference/v1", "FIREWORKS_API_KEY"),
    _preset("xai", "https://api.x.ai/v1", "XAI_API_KEY"),
    _preset("perplexity", "https://api.perplexity.ai", "PERPLEXITY_API_KEY", caps=_CHAT_ONLY_CAPS),
    _preset("cerebras", "https://api.cerebras.ai/v1", "CEREBRAS_API_KEY", caps=_CHAT_ONLY_CAPS),
    _preset("vllm", "http://localhost:8000/v1", "VLLM_API_KEY", key_required=False),
    _preset("lmstudio", "http://localhost:1234/v1", "LMSTUDIO_API_KEY", key_required=False),
    _preset("llamacpp", "http://localhost:8080/v1", "LLAMACPP_API_KEY", key_required=False),
)


class Registry:
    """The known providers: built-ins, entry-point plugins and run-time registrations."""

    def __init__(self, specs: Iterable[ProviderSpec] = BUILTIN_SPECS) -> None:
        self._specs: dict[str, ProviderSpec] = {spec.name: spec for spec in specs}
        self._classes: dict[str, type[Provider]] = {}
        self._lock = threading.Lock()
        self._entry_points_loaded = False

    # registration ---------------------------------------------------------------
    def register(self, spec: ProviderSpec, cls: type[Provider] | None = None) -> None:
        with self._lock:
            self._specs[spec.name] = spec
            if cls is not None:
                self._classes[spec.name] = cls
            else:
                self._classes.pop(spec.name, None)

    def unregister(self, name: str) -> None:
        with self._lock:
            self._specs.pop(name, None)
            self._classes.pop(name, None)

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        from importlib.metadata import entry_points

        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in self._specs:
                continue
            target = ep.load()
            spec = getattr(target, "spec", None)
            if isinstance(target, ProviderSpec):
                self.register(target)
            elif isinstance(spec, ProviderSpec):
                self.register(spec, target)
            else:
                self.register(
                    ProviderSpec(
                        name=ep.name,
                        module=ep.value,
                        key_required=False,
                        capabilities=getattr(target, "capabilities", Capabilities()),
                    ),
                    target,
                )

    # lookup ---------------------------------------------------------------------
    def names(self) -> list[str]:
        self._load_entry_points()
        return sorted(self._specs)

    def specs(self) -> list[ProviderSpec]:
        self._load_entry_points()
        return [self._specs[name] for name in sorted(self._specs)]

    def get(self, name: str) -> ProviderSpec:
        spec = self._specs.get(name)
        if spec is None:
            self._load_entry_points()
            spec = self._specs.get(name)
        if spec is None:
            raise ModelNotFoundError(
                f"unknown provider {name!r}{self._suggest(name)}",
                model=name,
                suggestions=self._close(name),
            )
        return spec

    def provider_class(self, spec: ProviderSpec) -> type[Provider]:
        cls = self._classes.get(spec.name)
        if cls is None:
            cls = spec.load_class()
            with self._lock:
                self._classes[spec.name] = cls
        return cls

    def resolve(self, model: str, provider: str | None = None) -> tuple[ProviderSpec, str]:
        """``(spec, vendor model id)`` for a model string; ``provider=`` wins over both forms."""
        if not isinstance(model, str) or not model.strip():
            raise ModelNotFoundError("no model given: pass model='provider/model-name'")
        if provider:
            spec = self.get(provider)
            prefix, sep, rest = model.partition("/")
            return spec, rest if sep and prefix == provider else model
        prefix, sep, rest = model.partition("/")
        if sep:
            if prefix not in self._specs:
                self._load_entry_points()
            if prefix in self._specs:
                if not rest:
                    raise ModelNotFoundError(
                        f"{model!r} names provider {prefix!r} but no model: use '{prefix}/<model>'",
                        model=model,
                    )
                return self._specs[prefix], rest
            tried = f"no provider is called {prefix!r}"
        else:
            self._load_entry_points()
            for spec in self._specs.values():
                if any(model.startswith(p) for p in spec.prefixes):
                    return spec, model
            tried = "it has no 'provider/' prefix and matches no well-known model family"
        suggestions = self._close(prefix) if sep else []
        hint = (
            f" (did you mean {' or '.join(repr(s + '/') for s in suggestions)}?)"
            if suggestions
            else ""
        )
        raise ModelNotFoundError(
            f"cannot find a provider for model {model!r}: {tried}{hint}. "
            f"Write it as 'provider/model' (known providers: {', '.join(self.names())})",
            model=model,
            suggestions=suggestions,
        )

    def _close(self, name: str) -> list[str]:
        import difflib  # only on the error path

        candidates = list(self._specs)
        close = difflib.get_close_matches(name.lower(), candidates, n=3, cutoff=0.5)
        if not close:
            close = [c for c in candidates if c.startswith(name.lower()[:3])][:3]
        return close

    def _suggest(self, name: str) -> str:
        close = self._close(name)
        return f"; did you mean {', '.join(map(repr, close))}?" if close else ""


default_registry = Registry()


def register_provider(
    name: str | ProviderSpec,
    provider_class: type[Provider] | None = None,
    *,
    env_keys: Iterable[str] = (),
    prefixes: Iterable[str] = (),
    capabilities: Capabilities | None = None,
    default_base_url: str | None = None,
    key_required: bool = False,
) -> ProviderSpec:
    """Add a provider at run time (the same door third-party plugins use)."""
    if isinstance(name, ProviderSpec):
        spec = name
    else:
        if provider_class is None:
            raise ConfigError("register_provider(name, ProviderClass): the class is required")
        spec = ProviderSpec(
            name=name,
            module=f"{provider_class.__module__}:{provider_class.__qualname__}",
            env_keys=tuple(env_keys),
            prefixes=tuple(prefixes),
            capabilities=capabilities or provider_class.capabilities,
            default_base_url=default_base_url,
            key_required=key_required,
        )
    default_registry.register(spec, provider_class)
    return spec
