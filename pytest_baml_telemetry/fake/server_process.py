"""The FakeLLMServer child process from the parent's side: starting it, its JSON-line RPC, stopping it.

:class:`Child` starts ``_server_child.py`` as ``python -I -S -u`` (standard library only,
isolated), reads its stdout (one JSON object a line: the ``ready`` event, then one
answer per command) and its stderr (kept as a tail for error messages), and sends
commands over its stdin. :func:`reap` stops a child for sure (stdin EOF, then
terminate, then kill). :class:`~.server.FakeLLMServer` owns one ``Child`` while running.
"""

from __future__ import annotations

import collections
import json
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

__all__ = ["Child", "reap", "CHILD_SCRIPT"]

CHILD_SCRIPT = Path(__file__).with_name("_server_child.py")
_EOF = object()


class Child:
    """The child process and the line-oriented JSON RPC over its stdin/stdout."""

    def __init__(self, host: str, port: int) -> None:
        cmd = [
            sys.executable,
            "-I",  # isolated: no PYTHON* env, no user site, script dir not on sys.path
            "-S",  # no site import: standard library only, fast start
            "-u",
            str(CHILD_SCRIPT),
            "--host",
            host,
            "--port",
            str(port),
            "--parent-pid",
            str(os.getpid()),
        ]
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            bufsize=1,
            close_fds=True,
        )
        self.lines: queue.Queue[Any] = queue.Queue()
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=100)
        self.lock = threading.Lock()
        self.next_id = 0
        self.threads = [
            threading.Thread(target=self._read_stdout, name="fake-llm-stdout", daemon=True),
            threading.Thread(target=self._read_stderr, name="fake-llm-stderr", daemon=True),
        ]
        for t in self.threads:
            t.start()

    def _read_stdout(self) -> None:
        stream = self.proc.stdout
        assert stream is not None
        try:
            for line in stream:
                line = line.strip()
                if not line:
                    continue
                try:
                    self.lines.put(json.loads(line))
                except ValueError:
                    self.stderr_tail.append(f"(stdout) {line}")
        except (OSError, ValueError):
            pass
        self.lines.put(_EOF)

    def _read_stderr(self) -> None:
        stream = self.proc.stderr
        assert stream is not None
        try:
            for line in stream:
                self.stderr_tail.append(line.rstrip("\n"))
        except (OSError, ValueError):
            pass

    def describe_death(self) -> str:
        code = self.proc.poll()
        state = "is not answering" if code is None else f"exited with status {code}"
        tail = "\n".join(self.stderr_tail)
        return f"the FakeLLMServer child process (pid {self.proc.pid}) {state}" + (f"; its stderr:\n{tail}" if tail else "")

    def _next_line(self, timeout: float, late: str) -> Any:
        """The next message from the child; ``RuntimeError(late; why)`` when none comes in time."""
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            raise RuntimeError(f"{late}; {self.describe_death()}") from None

    def wait_ready(self, timeout: float) -> dict[str, Any]:
        msg = self._next_line(timeout, f"FakeLLMServer did not start within startup_timeout={timeout}s")
        if msg is _EOF:
            raise RuntimeError(f"FakeLLMServer failed to start: {self.describe_death()}")
        if msg.get("event") != "ready":
            raise RuntimeError(f"FakeLLMServer failed to start: {msg.get('error', msg)}")
        return msg

    def call(self, cmd: str, timeout: float, **payload: Any) -> Any:
        with self.lock:
            self.next_id += 1
            ident = self.next_id
            line = json.dumps({"id": ident, "cmd": cmd, **payload}) + "\n"
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write(line)
                self.proc.stdin.flush()
            except (OSError, ValueError):
                raise RuntimeError(f"FakeLLMServer command {cmd!r} failed: {self.describe_death()}") from None
            while True:
                msg = self._next_line(timeout, f"FakeLLMServer command {cmd!r} got no answer within {timeout}s")
                if msg is _EOF:
                    self.lines.put(_EOF)
                    raise RuntimeError(f"FakeLLMServer command {cmd!r} failed: {self.describe_death()}")
                if msg.get("id") == ident:
                    break
        if not msg.get("ok"):
            raise RuntimeError(f"FakeLLMServer command {cmd!r} failed in the child: {msg.get('error')}")
        return msg.get("result")


def reap(proc: subprocess.Popen[str], grace: float = 2.0) -> None:
    """Stop a child process for sure: close its stdin, then terminate, then kill."""
    if proc.poll() is None:
        try:
            if proc.stdin is not None:
                proc.stdin.close()
        except OSError:
            pass
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        try:
            if stream is not None:
                stream.close()
        except OSError:
            pass
