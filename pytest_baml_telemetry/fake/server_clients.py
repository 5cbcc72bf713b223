"""Pointing a real baml-py client at a :class:`~.server.FakeLLMServer`: its options and registry.

:func:`client_options` gives the options of a client of a provider (:data:`SUPPORTED_PROVIDERS`)
that talks to the server, :func:`client_registry` a ``baml_py.ClientRegistry`` entry with them.
With ``client=NAME`` the base URL carries a tag, ``/_c/NAME`` right after the host, that
the server strips and records (``RecordedRequest.client``), so scripts can target one client.
:data:`WIRE_FORMATS` says which wire format (``RecordedRequest.provider``) each provider
speaks; :func:`check_filters` checks the ``client=``/``provider=`` filters of a script.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .._validate import check_mapping, check_str, fail, short_repr

if TYPE_CHECKING:  # pragma: no cover
    import baml_py

    from .server import FakeLLMServer

__all__ = [
    "AZURE_API_VERSION",
    "CLIENT_TAG",
    "FAKE_AWS_ACCESS_KEY_ID",
    "FAKE_AWS_REGION",
    "FAKE_API_KEY",
    "SUPPORTED_PROVIDERS",
    "WIRE_FORMATS",
    "check_filters",
    "check_provider",
    "client_options",
    "client_registry",
    "tagged_url",
]

FAKE_API_KEY = "sk-fake"
"""The API key :meth:`FakeLLMServer.client_options` puts in client options (recorded masked)."""
SUPPORTED_PROVIDERS = (
    "openai", "openai-generic", "azure-openai", "ollama", "openai-responses", "anthropic", "google-ai", "aws-bedrock",
)
"""baml-py providers the server speaks (checked with baml-py 0.226.3): ``openai``/``openai-generic``
(``model``, ``api_key``, ``base_url``), ``openai-responses`` (the same options; it posts to
``{base_url}/responses``), ``azure-openai`` (``base_url`` of a deployment,
``api_version``, ``api_key`` sent as ``api-key``), ``ollama`` (``model``, ``base_url``, no key)
and ``anthropic`` (``model``, ``api_key`` sent as ``x-api-key``, ``base_url`` without ``/v1``:
it posts to ``{base_url}/v1/messages``), ``google-ai`` (``model``, ``api_key`` sent as
``x-goog-api-key``, ``base_url`` ending in ``/v1beta``: it posts to
``{base_url}/models/{model}:generateContent``) and ``aws-bedrock`` (``model``, ``region``,
static test credentials ``access_key_id``/``secret_access_key``, ``endpoint_url``: it posts to
``{endpoint_url}/model/{model}/converse``, signed, the ``authorization`` header recorded masked)."""
FAKE_AWS_ACCESS_KEY_ID = "AKIAFAKEFAKEFAKEFAKE"
"""The static ``access_key_id`` an ``aws-bedrock`` client gets (its secret is the ``api_key``)."""
FAKE_AWS_REGION = "us-east-1"
WIRE_FORMATS: dict[str, str] = {
    "openai": "openai",
    "openai-generic": "openai",
    "azure-openai": "openai",
    "ollama": "openai",
    "openai-responses": "openai-responses",
    "anthropic": "anthropic",
    "google-ai": "google-ai",
    "aws-bedrock": "aws-bedrock",
}
"""``provider -> wire format``: the ``provider`` a request is recorded with (and a script's
``provider=`` filter matches) is its wire format, ``"openai"`` for every chat-completions client."""
AZURE_API_VERSION = "2024-10-21"
"""The ``api_version`` :meth:`FakeLLMServer.client_options` gives an ``azure-openai`` client."""
CLIENT_TAG = "/_c/"
"""The path prefix (``/_c/{client}``) that tags a request with the client that sent it."""


def check_provider(provider: Any, where: str) -> str:
    """``provider`` when it is one of :data:`SUPPORTED_PROVIDERS`, else ``ValueError`` naming them."""
    if provider == "vertex-ai":
        raise ValueError(
            f"{where}: provider='vertex-ai' cannot be faked offline: baml-py's vertex-ai client exchanges its "
            "credentials with Google before it sends any request; point the app's client at 'google-ai' "
            f"in tests, or use one of {', '.join(SUPPORTED_PROVIDERS)}"
        )
    if provider not in SUPPORTED_PROVIDERS:
        raise ValueError(
            f"{where}: provider={short_repr(provider)} is not supported by the fake server: "
            f"use one of {', '.join(SUPPORTED_PROVIDERS)}"
        )
    return str(provider)


def _check_client(client: Any, where: str) -> str:
    check_str(client, f"{where}: client={short_repr(client)}", expected="a client name, a non-empty str, or None")
    if client.strip() != client or any(c in client for c in "/?#%"):
        raise ValueError(f"{where}: client={client!r} is not a client name (no '/', '?', '#', '%' or surrounding spaces)")
    return client


def check_filters(client: Any, provider: Any, where: str) -> dict[str, str]:
    """The filters of a script, ``{"client": ..., "provider": ...}`` (only those given).

    ``client`` is a client name (as given to ``client_options(client=...)``); ``provider``
    is a wire format (a value of :data:`WIRE_FORMATS`): a provider that speaks another
    provider's format is refused, naming the format to use.
    """
    filters: dict[str, str] = {}
    if client is not None:
        filters["client"] = _check_client(client, where)
    if provider is not None:
        formats = sorted(set(WIRE_FORMATS.values()))
        if provider not in formats:
            if provider in WIRE_FORMATS:
                raise ValueError(
                    f"{where}: provider={provider!r} speaks the {WIRE_FORMATS[provider]!r} wire format, and requests "
                    f"are recorded by their format: filter with provider={WIRE_FORMATS[provider]!r} "
                    "(or with client= for one client)"
                )
            fail(ValueError, f"{where}: provider={short_repr(provider)}", f"a wire format, one of {', '.join(formats)}, or None")
        filters["provider"] = provider
    return filters


def tagged_url(server: FakeLLMServer, client: str | None) -> str:
    """``server.url`` with the client tag (``/_c/{client}``) when ``client`` is given."""
    return server.url if client is None else f"{server.url}{CLIENT_TAG}{urllib.parse.quote(client, safe='')}"


def client_options(
    server: FakeLLMServer,
    *,
    model: str,
    api_key: str,
    options: Mapping[str, Any] | None,
    provider: str,
    client: str | None,
) -> dict[str, Any]:
    """See :meth:`FakeLLMServer.client_options`."""
    where = "FakeLLMServer.client_options"
    check_provider(provider, where)
    if not isinstance(model, str) or not model:
        fail(TypeError, f"{where}: model={short_repr(model)}", "a non-empty str")
    check_str(api_key, f"{where}: api_key={short_repr(api_key)}", empty=True)
    check_mapping(options, f"{where}: options={short_repr(options)}", optional=True)
    if client is not None:
        _check_client(client, where)
    url = tagged_url(server, client)
    result: dict[str, Any]
    if provider == "azure-openai":
        if any(c in model for c in "/?#") or model.strip() != model:
            raise ValueError(f"{where}: model={model!r} is not an Azure deployment name (no '/', '?', '#' or spaces)")
        result = {"base_url": f"{url}/openai/deployments/{model}", "api_version": AZURE_API_VERSION, "api_key": api_key}
    elif provider == "anthropic":
        result = {"model": model, "api_key": api_key, "base_url": url}
    elif provider == "google-ai":
        result = {"model": model, "api_key": api_key, "base_url": url + "/v1beta"}
    elif provider == "aws-bedrock":
        result = {
            "model": model, "region": FAKE_AWS_REGION, "access_key_id": FAKE_AWS_ACCESS_KEY_ID,
            "secret_access_key": api_key, "endpoint_url": url,
        }
    elif provider == "ollama":
        result = {"model": model, "base_url": url + "/v1"}
    else:
        result = {"model": model, "api_key": api_key, "base_url": url + "/v1"}
    result.update(options or {})
    return result


def client_registry(
    server: FakeLLMServer,
    client_name: str,
    *,
    model: str,
    provider: str,
    options: Mapping[str, Any] | None,
    retry_policy: str | None,
    registry: baml_py.ClientRegistry | None,
    primary: bool,
    tag: bool,
) -> baml_py.ClientRegistry:
    """See :meth:`FakeLLMServer.client_registry`."""
    where = "FakeLLMServer.client_registry"
    if not isinstance(client_name, str) or not client_name:
        fail(TypeError, f"{where}: client_name={short_repr(client_name)}", "a non-empty str")
    check_provider(provider, where)
    if retry_policy is not None and (not isinstance(retry_policy, str) or not retry_policy):
        fail(TypeError, f"{where}: retry_policy={short_repr(retry_policy)}", "the name of a retry_policy block")
    import baml_py

    if registry is None:
        registry = baml_py.ClientRegistry()
    elif not isinstance(registry, baml_py.ClientRegistry):
        fail(TypeError, f"{where}: registry={short_repr(registry)}", "a baml_py.ClientRegistry or None")
    opts = server.client_options(model=model, options=options, provider=provider, client=client_name if tag else None)
    registry.add_llm_client(client_name, provider, opts, retry_policy)
    if primary:
        registry.set_primary(client_name)
    return registry
