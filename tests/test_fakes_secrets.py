"""``FakeLLMServer.requests`` never holds a credential: masked by the name's meaning, not a list.

Every header whose name contains ``auth``, ``key``, ``token``, ``secret``, ``password``
or ``cookie`` (any case) is recorded as ``***``, and so is every such query parameter
in the recorded path; other headers and parameters are kept as sent.
"""

from __future__ import annotations

import httpx
import pytest

from pytest_baml_telemetry.fake._server_child import is_secret, mask_path

SECRET_HEADERS = {
    "Authorization": "Bearer sk-a1",
    "Proxy-Authorization": "Basic sk-a2",
    "X-Api-Key": "sk-a3",
    "X-Goog-Api-Key": "sk-a4",
    "X-Custom-Auth": "sk-a5",
    "X-Access-Token": "sk-a6",
    "X-Client-Secret": "sk-a7",
    "X-DB-PASSWORD": "sk-a8",
    "Cookie": "session=sk-a9",
    "X-Refresh-TOKEN": "sk-b1",
    "Anthropic-Api-KEY": "sk-b2",
}
PLAIN_HEADERS = {"X-Trace": "t1", "Anthropic-Version": "2023-06-01", "Accept": "application/json"}


def test_every_header_whose_name_means_a_credential_is_masked(server) -> None:
    server.respond("hi")
    resp = httpx.post(
        server.url + "/v1/chat/completions",
        json={"model": "m", "messages": []},
        headers={**SECRET_HEADERS, **PLAIN_HEADERS},
        timeout=10,
    )
    assert resp.status_code == 200
    (req,) = server.requests
    for name in SECRET_HEADERS:
        assert req.headers[name.lower()] == "***", name
    for name, value in PLAIN_HEADERS.items():
        assert req.headers[name.lower()] == value
    text = repr(server.requests)
    assert not [v for v in SECRET_HEADERS.values() if v.split()[-1].split("=")[-1] in text]


def test_secret_query_parameters_are_masked_in_the_recorded_path(server) -> None:
    server.respond("hi")
    query = "api-key=sk-q1&key=sk-q2&Token=sk-q3&access_token=sk-q4&client_secret=sk-q5&model=m1&sig=sk-q6&api%2Dkey=sk-q7"
    resp = httpx.post(server.url + "/v1/chat/completions?" + query, json={"model": "m", "messages": []}, timeout=10)
    assert resp.status_code == 200
    (req,) = server.requests
    assert req.path == (
        "/v1/chat/completions?api-key=***&key=***&Token=***&access_token=***&client_secret=***&model=m1&sig=***"
        "&api%2Dkey=***"
    )
    assert "sk-q" not in repr(server.requests)


def test_an_unserved_path_answers_without_echoing_the_secret(server) -> None:
    resp = httpx.get(server.url + "/v1/models?key=sk-leak", timeout=10)
    assert resp.status_code == 404
    assert "sk-leak" not in resp.text and "key=***" in resp.text
    assert [r.path for r in server.requests] == ["/v1/models?key=***"]


@pytest.mark.parametrize(
    "name", ["authorization", "X-API-KEY", "x-auth-token", "client_secret", "Password", "set-cookie", "apikey", "sig"]
)
def test_is_secret(name: str) -> None:
    assert is_secret(name)


@pytest.mark.parametrize("name", ["x-trace", "content-type", "model", "accept", "user-agent", "signal"])
def test_is_not_secret(name: str) -> None:
    assert not is_secret(name)


def test_mask_path_keeps_everything_else() -> None:
    assert mask_path("/v1/chat") == "/v1/chat"
    assert mask_path("/v1/chat?") == "/v1/chat?"
    assert mask_path("/v1/chat?a=1&key&token=") == "/v1/chat?a=1&key&token=***"
    assert mask_path("/x?model=m&api+key=s#frag") == "/x?model=m&api+key=***#frag"
