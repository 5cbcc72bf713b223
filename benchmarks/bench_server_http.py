"""An httpx POST to ``FakeLLMServer`` against one to a plain stdlib server, in the same process.

Run:  python benchmarks/bench_server_http.py [--quick]

Both servers answer a chat completion at once on 127.0.0.1; the baseline is a
``http.server`` child answering the same bytes with one write per response, so the ratio
shows what the fake server adds (scripting, recording, the wire format). Target (issue 17):
the fake server's median at most 2 ms. Before ``TCP_NODELAY`` its headers and body went out
in two writes and Nagle's algorithm with the client's delayed ACK held each answer ~40 ms.
The last line is ``RESULT {json}`` for ``run_all.py``.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from pytest_baml_telemetry.fake.server import FakeLLMServer  # noqa: E402

BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}

PLAIN = textwrap.dedent(
    """
    import json, sys
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    ANSWER = json.dumps({"id": "x", "object": "chat.completion", "choices": [{"index": 0,
        "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}]}).encode()
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        def log_message(self, *a): pass
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            head = (f"HTTP/1.1 200 OK\\r\\nContent-Type: application/json\\r\\n"
                    f"Content-Length: {len(ANSWER)}\\r\\n\\r\\n").encode()
            self.wfile.write(head + ANSWER)
    s = ThreadingHTTPServer(("127.0.0.1", 0), H)
    print(s.server_address[1], flush=True)
    s.serve_forever()
    """
)


def _median_ms(client: httpx.Client, url: str, n: int, before=None) -> float:
    times = []
    for _ in range(n):
        if before is not None:
            before()
        t = time.perf_counter()
        response = client.post(url, json=BODY)
        times.append(time.perf_counter() - t)
        assert response.status_code == 200, response.text
    return statistics.median(times) * 1000


def main(argv: list[str] | None = None) -> int:
    quick = "--quick" in (argv if argv is not None else sys.argv[1:])
    n = 50 if quick else 300
    plain = subprocess.Popen([sys.executable, "-c", PLAIN], stdout=subprocess.PIPE, text=True)
    try:
        assert plain.stdout is not None
        port = int(plain.stdout.readline())
        with FakeLLMServer() as server, httpx.Client() as client:
            url = server.base_url + "/chat/completions"
            _median_ms(client, url, 10, lambda: server.respond("hi"))  # warm up
            fake = _median_ms(client, url, n, lambda: server.respond("hi"))
            base = _median_ms(client, f"http://127.0.0.1:{port}/v1/chat/completions", n)
    finally:
        plain.kill()
        plain.wait()
    ok = fake <= 2.0
    print(f"{'httpx POST to FakeLLMServer (median)':<52} {fake:>8.2f} ms {base:>8.2f} ms (plain server) "
          f"{fake / base:>6.2f}x  {'PASS' if ok else 'FAIL'} (target <= 2 ms)")
    rows = [{
        "benchmark": "httpx POST to FakeLLMServer, median (respond scripted per request)",
        "measured": f"{fake:.2f} ms",
        "baseline": f"{base:.2f} ms (plain http.server, one write)",
        "ratio": f"{fake / base:.2f}x",
        "target": "<= 2 ms",
        "status": "PASS" if ok else "FAIL",
    }]
    print("RESULT " + json.dumps({"rows": rows}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
