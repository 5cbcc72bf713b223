"""Routing a whole generated client at the fake server: ``FakeLLMServer.route(b)``.

:func:`client_registry_for` reads every ``client<llm>`` block of the generated client's .baml
sources (:func:`~.sources.client_blocks`) and adds one ``ClientRegistry`` entry per *leaf*
client, under its own name: its provider, its options (``model``, ``temperature``, ``http``
timeouts, headers, ...) without ``base_url``/``api_key`` (and Azure's ``resource_name``/
``deployment_id``/``api_version``), which become the server's (:meth:`FakeLLMServer.client_options`,
tagged with the client's name, so ``respond(..., client="Primary")`` targets it), and its
``retry_policy``. An option given as ``env.NAME`` takes the variable's value now, or is left
out when it is unset (the server's default ``model`` then).

``fallback`` and ``round-robin`` clients are left as declared (measured with baml-py 0.226.3):
a declared strategy client resolves its members through the registry, so its order, its
rotation and its own ``retry_policy`` stay as written, while a round-robin client put into a
``ClientRegistry`` picks a member at random on each call. Shorthand members and function
clients (``client "openai/gpt-4o"``) are added under that name too (untagged: a tag is a plain name).

``vertex-ai`` authenticates against Google before any request and cannot be faked offline: its
clients are pointed at the network guard's refusal endpoint (:meth:`~..guard.NetworkGuard.refusal_url`),
so a call fails at once saying so (and the guard reports it at teardown). A provider the
server does not speak raises ``ValueError`` naming the client and the provider.

:func:`route` returns ``b.with_options(client_registry=...)``, for a sync or async ``b`` and
for ``instrument(b)`` (whose ``with_options`` stays instrumented); while a test runs under the
plugin it also engages the network guard for that test (unless it is marked
``baml_allow_network``). The registry replaces any ``client_registry`` ``b`` already had.

For cassettes (:meth:`FakeLLMServer.use_cassette`), :func:`upstream_for` says where each leaf
client really connects (its ``base_url``/``endpoint_url``, Azure's resource and deployment,
else the provider's default host) and :func:`client_registry_for` tells the server
(``set_upstreams``); while the cassette records, a client keeps its own ``api_key`` (and AWS
keys), resolved from ``env.NAME``, so the upstream accepts the forwarded request, and a Bedrock
client's entry also carries its AWS credentials (:func:`aws_credentials`: its options, else the
standard ``AWS_*`` variables), with which the server re-signs each request for the real host.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .._validate import fail, short_repr
from .sources import ClientBlock, EnvRef, baml_files, client_blocks, declared_clients

if TYPE_CHECKING:
    import baml_py

    from .server import FakeLLMServer

__all__ = [
    "OFFLINE_IMPOSSIBLE", "STRATEGY_PROVIDERS", "aws_credentials", "aws_region", "client_registry_for", "route",
    "routed_options", "upstream_for",
]

STRATEGY_PROVIDERS = ("fallback", "round-robin")
"""Providers whose clients are left as declared (their members are routed)."""
OFFLINE_IMPOSSIBLE = ("vertex-ai",)
"""Providers that authenticate against their cloud before any request: pointed at the guard's refusal."""
_SERVER_OWNED = {
    "base_url", "api_key", "resource_name", "deployment_id", "api_version", "project_id", "location",
    "credentials", "region", "access_key_id", "secret_access_key", "session_token", "profile", "endpoint_url",
}
"""Options that say where and as whom a client connects: the server's options replace them."""


def _generated(client: Any, where: str) -> tuple[Any, Mapping[str, str]]:
    """``client`` unwrapped from ``instrument`` and the .baml sources its generated package carries."""
    target = getattr(client, "__wrapped__", client)  # instrument(b): the original b
    files = baml_files(target) if callable(getattr(target, "with_options", None)) else None
    if files is None:
        fail(
            TypeError,
            f"{where}: client={short_repr(client)}",
            "a generated baml client: baml_client.b (sync), baml_client.async_client.b (async), "
            "instrument(b) or a with_options(...) derivative",
        )
    return target, files


def _resolve(value: Any) -> Any:
    """``value`` with ``env.NAME`` read from the environment (``None``: unset)."""
    if isinstance(value, EnvRef):
        return os.environ.get(value.name)
    if isinstance(value, dict):
        return {k: v for k, v in ((k, _resolve(v)) for k, v in value.items()) if v is not None}
    if isinstance(value, list):
        return [v for v in (_resolve(v) for v in value) if v is not None]
    return value


_CREDENTIALS = ("api_key", "access_key_id", "secret_access_key", "session_token")
"""Options a recording server keeps as declared: the upstream needs the client's own key."""
_DEFAULT_UPSTREAMS = {
    "openai": "https://api.openai.com/v1", "openai-responses": "https://api.openai.com/v1",
    "ollama": "http://localhost:11434/v1", "anthropic": "https://api.anthropic.com",
    "google-ai": "https://generativelanguage.googleapis.com/v1beta",
}
"""Each provider's own endpoint when a client gives no ``base_url`` (baml-py's defaults)."""
_FAKE_PREFIXES = {"openai": "/v1", "openai-generic": "/v1", "openai-responses": "/v1", "ollama": "/v1", "google-ai": "/v1beta"}
"""What the server's own base URL for a provider adds after the client tag (``client_options``)."""


_AWS_ENV = {
    "access_key_id": "AWS_ACCESS_KEY_ID", "secret_access_key": "AWS_SECRET_ACCESS_KEY", "session_token": "AWS_SESSION_TOKEN",
}
"""Each AWS credential option and the standard variable the AWS SDK reads when it is not given."""


def aws_region(options: Mapping[str, Any]) -> str:
    """A Bedrock client's region: its ``region`` option, else ``AWS_REGION``, ``AWS_DEFAULT_REGION``, ``us-east-1``."""
    region = options.get("region")
    if isinstance(region, str) and region:
        return region
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def aws_credentials(block: ClientBlock) -> dict[str, str | None]:
    """The AWS credentials and region a Bedrock client ``block`` signs with: each of its options
    ``access_key_id``, ``secret_access_key``, ``session_token`` (``env.NAME`` resolved), else the
    standard variable (``AWS_ACCESS_KEY_ID``, ...); the region as :func:`aws_region`."""
    options = {k: v for k, v in ((k, _resolve(v)) for k, v in block.options.items()) if v is not None}
    found: dict[str, str | None] = {}
    for key, variable in _AWS_ENV.items():
        value = options.get(key)
        found[key] = value if isinstance(value, str) and value else os.environ.get(variable) or None
    found["region"] = aws_region(options)
    return found


def upstream_for(block: ClientBlock) -> dict[str, Any] | None:
    """Where the leaf client ``block`` really connects, for recording: ``{"base", "prefix", "query"}``
    (see :func:`~._server_proxy.upstream_url`); ``None`` when it is not known (an
    ``openai-generic`` client without ``base_url``)."""
    options = {k: v for k, v in ((k, _resolve(v)) for k, v in block.options.items()) if v is not None}
    provider = str(block.provider)
    base = options.get("endpoint_url" if provider == "aws-bedrock" else "base_url")
    query: dict[str, str] = {}
    prefix = _FAKE_PREFIXES.get(provider, "")
    if provider == "azure-openai":
        deployment = options.get("deployment_id")
        prefix = f"/openai/deployments/{deployment or options.get('model') or 'gpt-4o-mini'}"
        if base is None and options.get("resource_name") and deployment:
            base = f"https://{options['resource_name']}.openai.azure.com/openai/deployments/{deployment}"
        if options.get("api_version"):
            query["api-version"] = str(options["api_version"])
    elif provider == "aws-bedrock" and base is None:
        base = f"https://bedrock-runtime.{aws_region(options)}.amazonaws.com"
    if base is None:
        base = _DEFAULT_UPSTREAMS.get(provider)
    if not isinstance(base, str) or not base:
        return None
    return {"base": base, "prefix": prefix, "query": query}


def routed_options(server: FakeLLMServer, block: ClientBlock) -> dict[str, Any]:
    """The options of the registry entry that replaces the leaf client ``block`` (its provider
    must be one the server speaks)."""
    declared = {k: v for k, v in ((k, _resolve(v)) for k, v in block.options.items()) if v is not None}
    provider = str(block.provider)
    named = declared.pop({"azure-openai": "deployment_id", "aws-bedrock": "model_id"}.get(provider, "model"), None)
    model = declared.pop("model", None)
    model = named if named is not None else model  # Azure's deployment, Bedrock's model_id, else model
    rest = {k: v for k, v in declared.items() if k not in _SERVER_OWNED}
    kwargs: dict[str, Any] = {"provider": provider, "client": block.name, "options": rest}
    if isinstance(model, str) and model:
        kwargs["model"] = model
    routed = server.client_options(**kwargs)
    if getattr(server, "cassette_records", False):  # recording: the upstream needs the client's own key
        if provider == "aws-bedrock" and isinstance(declared.get("api_key"), str):
            declared.setdefault("secret_access_key", declared["api_key"])
        for key in _CREDENTIALS:
            if isinstance(declared.get(key), str) and (key in routed or provider == "aws-bedrock"):
                routed[key] = declared[key]
    return routed


def _shorthands(files: Mapping[str, str], blocks: Mapping[str, ClientBlock]) -> dict[str, list[str]]:
    """``client "provider/model"`` clients named by functions or strategies: who names each."""
    _, functions = declared_clients(files)
    users: dict[str, list[str]] = {}
    for function, name in functions.items():
        if name not in blocks and "/" in name:
            users.setdefault(name, []).append(f"function {function}")
    for block in blocks.values():
        for name in block.strategy:
            if name not in blocks and "/" in name:
                users.setdefault(name, []).append(f"client {block.name}")
    return users


def client_registry_for(server: FakeLLMServer, client: Any) -> baml_py.ClientRegistry:
    """A ``ClientRegistry`` pointing every client declared in ``client``'s .baml sources at ``server``."""
    where = "FakeLLMServer.client_registry_for"
    _, files = _generated(client, where)
    import baml_py

    from ..guard import get_guard
    from .server_clients import SUPPORTED_PROVIDERS

    blocks = client_blocks(files)
    shorthands = _shorthands(files, blocks)
    if shorthands:
        named = "; ".join(f"{name!r} (used by {', '.join(users)})" for name, users in sorted(shorthands.items()))
        raise ValueError(
            f"{where}: shorthand client(s) {named} cannot be routed: baml-py 0.226 does not let a "
            "ClientRegistry entry replace a shorthand client. Declare it as a client<llm> block "
            "(client<llm> Name { provider ... options { model ... } }) and name that block instead"
        )
    registry = baml_py.ClientRegistry()
    upstreams: dict[str, Any] = {}
    for block in blocks.values():
        provider = block.provider
        if provider in STRATEGY_PROVIDERS:
            continue
        if provider in OFFLINE_IMPOSSIBLE:
            model = _resolve(block.options.get("model"))
            options = {"base_url": get_guard().refusal_url(block.name, provider), "api_key": "unused",
                       "model": model if isinstance(model, str) and model else "offline"}
            registry.add_llm_client(block.name, "openai-generic", options, None)
            continue
        if provider not in SUPPORTED_PROVIDERS:
            raise ValueError(
                f"{where}: client {block.name!r} has provider {short_repr(provider)}, which the fake server "
                f"does not speak: it speaks {', '.join(SUPPORTED_PROVIDERS)} (and vertex-ai clients are refused "
                "offline); override that client yourself, e.g. baml_llm_server.client_registry("
                f"{block.name!r}, provider='openai', registry=...)"
            )
        registry.add_llm_client(block.name, str(provider), routed_options(server, block), block.retry_policy)
        upstream = upstream_for(block)
        if upstream is not None:
            if provider == "aws-bedrock" and getattr(server, "cassette_records", False):
                upstream["aws"] = aws_credentials(block)  # the server re-signs for the real host
            upstreams[block.name] = upstream
    set_upstreams = getattr(server, "set_upstreams", None)
    if upstreams and callable(set_upstreams):
        set_upstreams(upstreams)
    return registry


def route(server: FakeLLMServer, client: Any) -> Any:
    """``client`` (sync, async or instrumented) with every declared client pointed at ``server``."""
    registry = client_registry_for(server, client)
    from ..guard import engage_for_test

    engage_for_test()
    return client.with_options(client_registry=registry)
