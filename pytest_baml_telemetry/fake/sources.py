"""The .baml sources a generated client carries, and the blocks read from them.

A generated ``baml_client`` carries its .baml sources (``inlinedbaml.get_baml_files()``);
baml-py's runtime validates them but exposes neither its clients nor which client a function
declares. :func:`baml_files` finds the sources of a client (or its class or module);
:func:`strip` drops comments and empties ``#"..."#`` prompts, and :func:`block_body`,
:func:`top_level`, :func:`field` and :func:`nested` read blocks out of the stripped text.
:func:`declared_clients` reads the ``client<llm> Name { provider ... options { model ... } }``
and ``function F(...) -> T { client Name ... }`` blocks: a ``fallback`` or ``round-robin``
client stands for the first client of its ``strategy`` (the one that answers when nothing
fails); a shorthand ``client "openai/gpt-4o"`` is its own provider and model; a model that is
not a literal (``env.MODEL``) is unknown. :func:`client_blocks` reads every ``client<llm>`` block
whole (provider, ``retry_policy``, options as values, ``strategy`` list) and
:func:`retry_policies` the names of the ``retry_policy`` blocks: routing a whole app needs them.
"""

from __future__ import annotations

import importlib
import re
import types
from collections.abc import Mapping
from typing import Any, NamedTuple

__all__ = [
    "CLIENT_BLOCK", "FUNCTION_BLOCK", "VALUE", "ClientBlock", "DeclaredClient", "EnvRef", "baml_files", "block_body",
    "client_blocks", "declared_clients", "field", "nested", "parse_options", "retry_policies", "strip", "top_level",
]


class DeclaredClient(NamedTuple):
    """A ``client<llm>`` block of the spec's .baml sources: its name, provider and model
    (``None`` when not a literal, e.g. ``model env.MODEL``)."""

    name: str
    provider: str | None
    model: str | None


def baml_files(spec: Any) -> Mapping[str, str] | None:
    """The .baml sources a generated client carries (``None``: not a generated client)."""
    if isinstance(spec, types.ModuleType):
        module = spec.__name__
    else:
        module = (spec if isinstance(spec, type) else type(spec)).__module__
    parts = module.split(".")
    for end in range(len(parts), 0, -1):  # the package holding inlinedbaml: baml_client, not baml_client.sync_client
        try:
            inlined = importlib.import_module(".".join(parts[:end]) + ".inlinedbaml")
        except Exception:  # noqa: BLE001 - not a generated package (or a broken one): no defaults
            continue
        files = getattr(inlined, "_file_map", None)
        get = getattr(inlined, "getbaml_files", None)
        if files is None and callable(get):
            files = get()
        return files if isinstance(files, Mapping) else None
    return None


_SKIPPED = re.compile(
    r'(?P<raw>(#+)"(?:.|\n)*?"\2)'  # a raw string #"..."# (prompts), any number of #
    r'|(?P<block>\{//.*?//\})'  # a block comment {// ... //}
    r'|(?P<line>//[^\n]*)'  # a line comment (// and ///)
    r'|(?P<quoted>"(?:[^"\\\n]|\\.)*")',  # a quoted string, kept
    re.DOTALL,
)
CLIENT_BLOCK = re.compile(r"\bclient\s*<\s*llm\s*>\s*(\w+)\s*\{")
FUNCTION_BLOCK = re.compile(r"\bfunction\s+(\w+)\s*\(")
VALUE = r'(?:"((?:[^"\\]|\\.)*)"|([\w./:-]+))'


def strip(source: str) -> str:
    """``source`` without comments, its raw strings emptied (their braces are prompt text)."""

    def keep(match: re.Match[str]) -> str:
        if match.group("quoted"):
            return match.group("quoted")
        return '""' if match.group("raw") else " "

    return _SKIPPED.sub(keep, source)


def block_body(text: str, open_at: int) -> str:
    """The text between the brace at ``open_at`` and its matching closing brace."""
    depth = 0
    for i in range(open_at, len(text)):
        c = text[i]
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return text[open_at + 1 : i]
    return text[open_at + 1 :]


def top_level(body: str) -> str:
    """``body`` without its nested ``{...}`` blocks (their keys are not the block's own)."""
    out: list[str] = []
    depth = 0
    for c in body:
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        elif depth == 0:
            out.append(c)
    return "".join(out)


def field(body: str, key: str) -> str | None:
    """The literal value of ``key`` at the top level of a block (``None``: absent or not a literal)."""
    match = re.search(rf"(?:^|\s){key}\s+{VALUE}", top_level(body))
    if match is None:
        return None
    value = match.group(1) if match.group(1) is not None else match.group(2)
    return None if value.startswith("env.") else value


def nested(body: str, key: str) -> str | None:
    """The body of the nested block ``key { ... }`` of a block."""
    depth = 0
    for match in re.finditer(rf"\b{key}\s*\{{|[{{}}]", body):
        token = match.group(0)
        if token == "{":
            depth += 1
        elif token == "}":
            depth -= 1
        elif depth == 0:
            return block_body(body, match.end() - 1)
        else:
            depth += 1
    return None


def declared_clients(files: Mapping[str, str]) -> tuple[dict[str, DeclaredClient], dict[str, str]]:
    """The ``client<llm>`` blocks of ``files`` (name to :class:`DeclaredClient`, fallbacks
    resolved to their first client) and each function's declared client name."""
    raw: dict[str, tuple[str | None, str | None, list[str]]] = {}
    functions: dict[str, str] = {}
    for source in files.values():
        if not isinstance(source, str):
            continue
        text = strip(source)
        for match in CLIENT_BLOCK.finditer(text):
            body = block_body(text, match.end() - 1)
            options = nested(body, "options") or ""
            strategy = re.search(r"\bstrategy\s*\[([^\]]*)\]", top_level(options))
            names = re.findall(VALUE, strategy.group(1)) if strategy else []
            raw[match.group(1)] = (field(body, "provider"), field(options, "model"), [q or w for q, w in names])
        for match in FUNCTION_BLOCK.finditer(text):
            brace = text.find("{", match.end())
            if brace < 0:
                continue
            client = field(block_body(text, brace), "client")
            if client is not None:
                functions[match.group(1)] = client

    def resolve(name: str, seen: frozenset[str]) -> DeclaredClient | None:
        if name in raw:
            provider, model, strategy = raw[name]
            if provider in ("fallback", "round-robin") and strategy and strategy[0] not in seen:
                return resolve(strategy[0], seen | {name})
            return DeclaredClient(name, provider, model)
        if "/" in name:  # shorthand: client "openai/gpt-4o"
            provider, _, model = name.partition("/")
            return DeclaredClient(name, provider, model)
        return None

    clients = {}
    for name in {*raw, *functions.values()}:
        found = resolve(name, frozenset())
        if found is not None:
            clients[name] = found
    return clients, functions


class EnvRef(NamedTuple):
    """An option whose value is ``env.NAME`` in the .baml source (read from the environment at call time)."""

    name: str


class ClientBlock(NamedTuple):
    """A ``client<llm>`` block read whole: ``options`` maps each option to its value (a str, int,
    float, bool, :class:`EnvRef`, list or nested dict); ``strategy`` lists the members of a
    ``fallback``/``round-robin`` client, in order (empty for a leaf client)."""

    name: str
    provider: str | None
    retry_policy: str | None
    options: dict[str, Any]
    strategy: tuple[str, ...]


_TOKEN = re.compile(
    r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*")|(?P<open>[{\[])|(?P<close>[}\]])|(?P<comma>,)'
    r"|(?P<word>[^\s{}\[\],\"]+))"
)


def _tokens(text: str) -> list[tuple[str, str]]:
    out = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            break
        pos = match.end()
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
    return out


def _scalar(kind: str, token: str) -> Any:
    if kind == "str":
        return re.sub(r"\\(.)", r"\1", token[1:-1])
    if token in ("true", "false"):
        return token == "true"
    if token.startswith("env."):
        return EnvRef(token[4:])
    for convert in (int, float):
        try:
            return convert(token)
        except ValueError:
            pass
    return token


def _value(tokens: list[tuple[str, str]], i: int) -> tuple[Any, int]:
    kind, token = tokens[i]
    if kind == "open" and token == "{":
        return _mapping(tokens, i + 1)
    if kind == "open":
        items: list[Any] = []
        i += 1
        while i < len(tokens) and tokens[i][0] != "close":
            if tokens[i][0] == "comma":
                i += 1
                continue
            item, i = _value(tokens, i)
            items.append(item)
        return items, i + 1
    return _scalar(kind, token), i + 1


def _mapping(tokens: list[tuple[str, str]], i: int) -> tuple[dict[str, Any], int]:
    out: dict[str, Any] = {}
    while i < len(tokens) and tokens[i][0] != "close":
        kind, token = tokens[i]
        if kind == "comma":
            i += 1
            continue
        key = _scalar(kind, token) if kind == "str" else token
        if i + 1 >= len(tokens) or tokens[i + 1][0] in ("close", "comma"):
            out[str(key)] = True
            i += 1
            continue
        out[str(key)], i = _value(tokens, i + 1)
    return out, i + 1


def parse_options(body: str) -> dict[str, Any]:
    """The ``key value`` pairs of a (stripped) options block, nested blocks and lists included."""
    return _mapping(_tokens(body), 0)[0]


def client_blocks(files: Mapping[str, str]) -> dict[str, ClientBlock]:
    """Every ``client<llm>`` block of ``files``, by name, read whole (see :class:`ClientBlock`)."""
    out: dict[str, ClientBlock] = {}
    for source in files.values():
        if not isinstance(source, str):
            continue
        text = strip(source)
        for match in CLIENT_BLOCK.finditer(text):
            body = block_body(text, match.end() - 1)
            options = parse_options(nested(body, "options") or "")
            strategy = options.pop("strategy", None) if field(body, "provider") in ("fallback", "round-robin") else None
            members = tuple(str(m) for m in strategy) if isinstance(strategy, list) else ()
            out[match.group(1)] = ClientBlock(
                match.group(1), field(body, "provider"), field(body, "retry_policy"), options, members
            )
    return out


RETRY_BLOCK = re.compile(r"\bretry_policy\s+(\w+)\s*\{")


def retry_policies(files: Mapping[str, str]) -> list[str]:
    """The names of the ``retry_policy`` blocks of ``files``."""
    return [m.group(1) for source in files.values() if isinstance(source, str) for m in RETRY_BLOCK.finditer(strip(source))]
