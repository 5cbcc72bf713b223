"""AWS Signature Version 4 for the recording proxy: a forwarded Bedrock request signed anew.

baml-py's AWS SDK signs a Bedrock request for the host it sends it to, the FakeLLMServer;
the real endpoint rejects that signature. While a cassette records, the proxy
(:func:`~._server_proxy.forward`) re-signs the request for its upstream with the client's
own credentials (:func:`sign`), as AWS documents SigV4 and botocore's ``SigV4Auth`` does it:

* canonical URI: the path as sent (``/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse``),
  dot segments and empty segments removed, then percent-encoded once more (``%3A`` becomes
  ``%253A``: every service but S3 double-encodes);
* canonical query: each name and value decoded and re-encoded (unreserved characters kept),
  sorted by name, then value;
* signed headers: every header sent but :data:`UNSIGNED_HEADERS` (``user-agent``, ...), plus
  ``host`` (without a default port) and ``x-amz-date``, and ``x-amz-security-token`` with a
  session token; values trimmed, inner whitespace collapsed;
* payload: the SHA-256 of the body.

Standard library only (``hmac``, ``hashlib``, ``urllib.parse``): the server's child imports it
with :mod:`._server_proxy`. Credentials and signatures live only in the request sent upstream:
nothing here writes or logs them.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import urllib.parse
from collections.abc import Mapping

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "bedrock"
"""The signing name of ``bedrock-runtime`` (Converse, ConverseStream)."""
UNSIGNED_HEADERS = frozenset({
    "baggage", "connection", "expect", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
    "traceparent", "tracestate", "trailer", "transfer-encoding", "upgrade", "user-agent", "x-amzn-trace-id",
    "content-length",
})
"""Headers sent but not signed (botocore's list, and ``content-length``, which ``http.client`` sets)."""
REPLACED_HEADERS = frozenset({"authorization", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256", "date", "host"})
"""The old signature's headers: dropped before signing anew."""
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def _remove_dot_segments(path: str) -> str:
    """``path`` without ``.``/``..`` and empty segments (AWS's normalisation, as botocore's)."""
    kept: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if kept:
                kept.pop()
        elif segment and segment != ".":
            kept.append(segment)
    lead = "/" if path.startswith("/") else ""
    tail = "/" if path.endswith("/") and kept else ""
    return lead + "/".join(kept) + tail


def canonical_uri(path: str) -> str:
    """The canonical URI of a request to ``path`` (as sent, percent-encoded): encoded once more."""
    return urllib.parse.quote(_remove_dot_segments(path) or "/", safe="/~")


def canonical_query(query: str) -> str:
    """The canonical query string of ``query`` (as sent): names and values re-encoded, sorted."""
    if not query:
        return ""
    pairs = []
    for item in query.split("&"):
        if not item:
            continue
        name, _, value = item.partition("=")
        pairs.append((
            urllib.parse.quote(urllib.parse.unquote(name), safe="-_.~"),
            urllib.parse.quote(urllib.parse.unquote(value), safe="-_.~"),
        ))
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))


def host_header(url: str) -> str:
    """The ``Host`` a request to ``url`` carries: lower case, no user info, no default port."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None and parts.port != _DEFAULT_PORTS.get(parts.scheme):
        host = f"{host}:{parts.port}"
    return host


def amz_date(now: float | None = None) -> str:
    """``now`` (a ``time.time()``; default: the current time) as SigV4 writes it: ``20240101T120000Z``."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))


def sign(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    access_key_id: str,
    secret_access_key: str,
    region: str,
    session_token: str | None = None,
    service: str = SERVICE,
    now: float | None = None,
) -> dict[str, str]:
    """The headers to send ``method url`` with ``body``, signed with SigV4 for ``url``'s host:
    ``headers`` without the old signature (:data:`REPLACED_HEADERS`), plus ``Host``,
    ``X-Amz-Date``, ``X-Amz-Security-Token`` (given ``session_token``) and ``Authorization``."""
    out = {k: v for k, v in headers.items() if k.lower() not in REPLACED_HEADERS}
    stamp = amz_date(now)
    out["Host"] = host_header(url)
    out["X-Amz-Date"] = stamp
    if session_token:
        out["X-Amz-Security-Token"] = session_token
    signed: dict[str, list[str]] = {}
    for name, value in out.items():
        if name.lower() not in UNSIGNED_HEADERS:
            signed.setdefault(name.lower(), []).append(" ".join(str(value).split()))
    names = sorted(signed)
    parts = urllib.parse.urlsplit(url)
    canonical = "\n".join([
        method.upper(),
        canonical_uri(parts.path),
        canonical_query(parts.query),
        "".join(f"{name}:{','.join(signed[name])}\n" for name in names),
        ";".join(names),
        hashlib.sha256(body or b"").hexdigest(),
    ])
    scope = f"{stamp[:8]}/{region}/{service}/aws4_request"
    to_sign = "\n".join([ALGORITHM, stamp, scope, hashlib.sha256(canonical.encode("utf-8")).hexdigest()])
    key = _hmac(f"AWS4{secret_access_key}".encode(), stamp[:8])
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    out["Authorization"] = f"{ALGORITHM} Credential={access_key_id}/{scope}, SignedHeaders={';'.join(names)}, Signature={signature}"
    return out
