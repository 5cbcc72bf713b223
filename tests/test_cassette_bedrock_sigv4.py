"""SigV4 of the recording proxy (``fake/_sigv4.py``, issue 15) against botocore's reference signer.

Every case signs one request with ``_sigv4.sign`` and with ``botocore.auth.SigV4Auth`` (service
``bedrock``) at the same time, with the same body and headers, and compares the
``Authorization`` header: the model id's ``:`` (sent as ``%3A``, double-encoded in the
canonical URI), query strings, session tokens, ports, whitespace in header values.
"""

from __future__ import annotations

import calendar
import datetime
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_baml_telemetry.fake import _sigv4

botocore_auth = pytest.importorskip("botocore.auth")
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402

AKID, SECRET, TOKEN = "AKIDEXAMPLE0123456789", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "FQoGZXIvYXdzEXAMPLE//token+=="
WHEN = datetime.datetime(2026, 12, 1, 13, 52, 57)
NOW = float(calendar.timegm(WHEN.timetuple()))
HOST = "https://bedrock-runtime.us-east-1.amazonaws.com"
MODEL_PATH = "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"
SDK_HEADERS = {
    "content-type": "application/json",
    "user-agent": "aws-sdk-rust/1.3.8 os/linux lang/rust/1.98.0",
    "x-amz-user-agent": "aws-sdk-rust/1.3.8 ua/2.1 api/bedrockruntime/1.106.0 os/linux lang/rust/1.98.0 m/E",
    "amz-sdk-request": "attempt=1; max=3",
    "amz-sdk-invocation-id": "be3d38f4-be18-4cfb-8ff8-6d83fb795a49",
    "accept": "*/*",
    "Accept-Encoding": "identity",
}
BODY = b'{"messages":[{"role":"user","content":[{"text":"Answer: hi"}]}],"inferenceConfig":{"maxTokens":64}}'


def botocore_authorization(method, url, headers, body, region="us-east-1", token=None) -> str:
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
    with mock.patch.object(botocore_auth, "get_current_datetime", return_value=WHEN):
        botocore_auth.SigV4Auth(Credentials(AKID, SECRET, token), "bedrock", region).add_auth(request)
    return request.headers["Authorization"]


def ours(method, url, headers, body, region="us-east-1", token=None) -> dict[str, str]:
    return _sigv4.sign(method, url, headers, body, access_key_id=AKID, secret_access_key=SECRET,
                       region=region, session_token=token, now=NOW)


@pytest.mark.parametrize("url", [
    HOST + MODEL_PATH,
    HOST + "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse-stream",
    HOST + "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-v2/converse",
    HOST + MODEL_PATH + "?b=2&a=x%3Ay&a=1&empty=",
    HOST + ":443" + MODEL_PATH,
    "http://127.0.0.1:40123" + MODEL_PATH,
    "http://localhost:80/model/m/converse",
    HOST + "/model/./a/../m//converse",
])
@pytest.mark.parametrize("token", [None, TOKEN])
def test_the_authorization_equals_botocores(url: str, token: str | None) -> None:
    signed = ours("POST", url, SDK_HEADERS, BODY, token=token)
    assert signed["Authorization"] == botocore_authorization("POST", url, SDK_HEADERS, BODY, token=token)
    assert signed["X-Amz-Date"] == "20261201T135257Z"
    assert signed["Host"] == botocore_auth._host_from_url(url)
    assert ("X-Amz-Security-Token" in signed) == (token is not None)
    assert signed.get("X-Amz-Security-Token") == token


def test_the_model_ids_colon_is_double_encoded_in_the_canonical_uri() -> None:
    assert _sigv4.canonical_uri(MODEL_PATH) == "/model/anthropic.claude-3-haiku-20240307-v1%253A0/converse"
    signer = botocore_auth.SigV4Auth(Credentials(AKID, SECRET), "bedrock", "us-east-1")
    assert _sigv4.canonical_uri(MODEL_PATH) == signer._normalize_url_path(MODEL_PATH)


def test_the_old_signature_is_replaced_and_the_region_and_secret_matter() -> None:
    stale = {**SDK_HEADERS, "Authorization": "AWS4-HMAC-SHA256 Credential=FAKE/...", "x-amz-date": "20000101T000000Z",
             "X-Amz-Security-Token": "old", "x-amz-content-sha256": "abc", "host": "127.0.0.1:9"}
    signed = ours("POST", HOST + MODEL_PATH, stale, BODY)
    assert signed["Authorization"] == botocore_authorization("POST", HOST + MODEL_PATH, SDK_HEADERS, BODY)
    assert {k.lower() for k in signed} == {k.lower() for k in SDK_HEADERS} | {"host", "x-amz-date", "authorization"}
    assert "Credential=AKIDEXAMPLE0123456789/20261201/us-east-1/bedrock/aws4_request" in signed["Authorization"]
    assert "SignedHeaders=accept;accept-encoding;amz-sdk-invocation-id;amz-sdk-request;content-type;host;x-amz-date;x-amz-user-agent," in signed["Authorization"]
    assert ours("POST", HOST + MODEL_PATH, stale, BODY, region="eu-west-1")["Authorization"] != signed["Authorization"]
    assert ours("POST", HOST + MODEL_PATH, stale, BODY + b" ")["Authorization"] != signed["Authorization"]
    other = _sigv4.sign("POST", HOST + MODEL_PATH, stale, BODY, access_key_id=AKID, secret_access_key=SECRET + "x",
                        region="us-east-1", now=NOW)
    assert other["Authorization"] != signed["Authorization"]


header_value = st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=30).filter(str.strip)
query_part = st.text(st.sampled_from("abcXYZ019-_.~") , min_size=1, max_size=6)


@settings(max_examples=60, deadline=None)
@given(
    body=st.binary(max_size=200),
    values=st.dictionaries(st.sampled_from(["x-amz-user-agent", "content-type", "accept", "x-custom"]), header_value),
    query=st.lists(st.tuples(query_part, query_part), max_size=4),
    region=st.sampled_from(["us-east-1", "eu-west-3", "ap-southeast-2"]),
    token=st.none() | st.just(TOKEN),
)
def test_any_body_headers_query_and_region_sign_as_botocore(body, values, query, region, token) -> None:
    url = HOST.replace("us-east-1", region) + MODEL_PATH + ("?" + "&".join(f"{k}={v}" for k, v in query) if query else "")
    signed = ours("POST", url, values, body, region=region, token=token)
    assert signed["Authorization"] == botocore_authorization("POST", url, values, body, region=region, token=token)
