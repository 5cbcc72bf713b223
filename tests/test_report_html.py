"""The HTML report as a person sees it: a real pytest session with the fake client writes
``--baml-report-html``, headless Chromium renders it, and the tests read the rendered DOM
(the figures, the verdicts, the histograms and their markers), the console (no script
error, no blocked load) and a screenshot. Chromium missing is a failure, never a skip."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import textwrap
import zlib
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from helpers import no_crash

# ----------------------------------------------------------------------------- Chromium


def chromium_binary() -> str:
    """Debian's ``chromium`` (``chromium-browser`` elsewhere); a clear failure when absent."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(
        "headless Chromium is needed to render the HTML report and is not installed: "
        "install it with `apt-get update && apt-get install -y chromium` (.ci/run does)",
        pytrace=False,
    )


def chromium(path: Path, *args: str) -> tuple[str, str]:
    """Run headless Chromium on the file ``path``: ``(stdout, console lines)``."""
    profile = path.parent / f".chromium-{path.stem}"
    cmd = [
        chromium_binary(), "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run",
        "--disable-dev-shm-usage", "--disable-extensions", f"--user-data-dir={profile}",
        "--enable-logging=stderr", "--v=0", *args, path.resolve().as_uri(),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]
    return done.stdout, "\n".join(console)


def render(path: Path) -> Node:
    """The DOM Chromium rendered from ``path``; fails on any console message (a script error,
    a load the page's Content-Security-Policy blocked)."""
    dom, console = chromium(path, "--dump-dom")
    assert "Uncaught" not in console and console == "", console
    return parse(dom)


# ----------------------------------------------------------------------------- the DOM

_VOID = {"meta", "br", "img", "input", "link", "hr", "col", "area", "base", "source", "wbr"}


class Node:
    def __init__(self, tag: str, attrs: dict[str, str], parent: Node | None) -> None:
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Any] = []  # Node or str

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def words(self) -> str:
        return " ".join(self.text().split())

    def all(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> list[Node]:
        out = []
        for c in self.children:
            if isinstance(c, Node):
                if (tag is None or c.tag == tag) and (cls is None or cls in c.attrs.get("class", "").split()) and all(
                    c.attrs.get(k.replace("_", "-")) == v for k, v in attrs.items()
                ):
                    out.append(c)
                out.extend(c.all(tag, cls, **attrs))
        return out

    def one(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> Node:
        found = self.all(tag, cls, **attrs)
        assert len(found) == 1, (tag, cls, attrs, len(found))
        return found[0]

    def child(self, tag: str) -> Node:
        """The first direct child element named ``tag``."""
        return next(c for c in self.children if isinstance(c, Node) and c.tag == tag)

    def rows(self) -> list[list[str]]:
        return [[" ".join(td.text().split()) for td in tr.children if isinstance(td, Node)] for tr in self.all("tr")]


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = self.node = Node("#document", {}, None)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs}, self.node)
        self.node.children.append(node)
        if tag not in _VOID:
            self.node = node

    def handle_endtag(self, tag: str) -> None:
        n: Node | None = self.node
        while n is not None and n.tag != tag:
            n = n.parent
        if n is not None and n.parent is not None:
            self.node = n.parent

    def handle_data(self, data: str) -> None:
        self.node.children.append(data)


def parse(html: str) -> Node:
    p = _Parser()
    p.feed(html)
    p.close()
    return p.root


_LOADING_TAGS = {"script", "link", "iframe", "frame", "img", "object", "embed", "use", "image", "video", "audio",
                 "source", "base", "form", "a"}
_LOADING_CSS = re.compile(r"url\(|@import|expression\(", re.I)


def external_references(html: str) -> list[str]:
    """Anything in the file that could load or run something: a URL anywhere (``scheme://``),
    elements that load (script, link, img, ...), ``src``/``href``/``on*`` attributes, CSS
    ``url()``/``@import``. Escaped user text is text: it never counts."""
    found = re.findall(r"[a-z][a-z0-9+.-]*://", html, re.I)
    stack = [parse(html)]
    while stack:
        node = stack.pop()
        for c in node.children:
            if isinstance(c, Node):
                stack.append(c)
                if c.tag in _LOADING_TAGS:
                    found.append(f"<{c.tag}>")
                found.extend(f"{c.tag} {k}=" for k in c.attrs if k in ("src", "href", "xlink:href", "srcset", "action")
                             or k.startswith("on"))
                found.extend(f"{c.tag} style: {m}" for m in _LOADING_CSS.findall(c.attrs.get("style", "")))
                if c.tag == "style":
                    found.extend(f"<style>: {m}" for m in _LOADING_CSS.findall(c.text()))
    return found


# ----------------------------------------------------------------------------- a real session

NAME = "<script>alert('pwned')</script>"
MODEL = "<b>mystery</b>"

TESTS = f'''
import pytest
from baml_py.errors import BamlClientHttpError
from pytest_baml_telemetry import Emitter, faults
from pytest_baml_telemetry.clock import VirtualClock

NAME = {NAME!r}

def odd_call():
    clock = VirtualClock()
    with Emitter(clock=clock).call(NAME) as c:
        clock.advance("10ms")
        c.set_model({MODEL!r})
        c.set_usage(5, 5)

def test_summaries(baml_fake):
    for ms in range(50, 1001, 50):  # 20 answers: 50 ms ... 1000 ms
        baml_fake.respond("Summarize", "ok", model="gpt-4o", latency=f"{{ms}}ms", usage=(1000, 200))
    baml_fake.fail("Summarize", faults.http_error(500), model="gpt-4o", latency="2s")
    for _ in range(20):
        baml_fake.Summarize(text="Ada")
    with pytest.raises(BamlClientHttpError):
        baml_fake.Summarize(text="Ada")

@pytest.mark.baml_budget(max_calls=5)
@pytest.mark.parametrize("n", [1], ids=["<b>bold</b>"])
def test_odd_name(n):
    odd_call()

@pytest.mark.xfail(reason="known to be chatty")
@pytest.mark.baml_budget(max_calls=0)
def test_known_broken():
    odd_call()
'''

BUDGETS = """
[[budget]]
name = "fast summaries"
function = "Summarize"
p95 = "1500ms"

[[budget]]
name = "few calls"
max_calls = 10
"""

PRICES = '[models."gpt-4o"]\ninput_per_mtok = 2.5\noutput_per_mtok = 10.0\n'


@pytest.fixture(autouse=True)
def _ini(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")


@pytest.fixture
def session_report(pytester: pytest.Pytester) -> tuple[pytest.RunResult, Path]:
    chromium_binary()  # fail first, and clearly, without Chromium
    pytester.makepyfile(test_app=TESTS)
    pytester.makefile(".toml", budgets=BUDGETS, prices=PRICES)
    result = pytester.runpytest_subprocess(
        "-p", "no:randomly", "--baml-budgets=budgets.toml", "--baml-prices=prices.toml",
        "--baml-report-html=report.html",
    )
    no_crash(result)
    result.assert_outcomes(passed=2, xfailed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # the session budget 'few calls' is broken
    return result, pytester.path / "report.html"


def test_the_report_shows_the_figures_verdicts_and_histograms(session_report: tuple[pytest.RunResult, Path]) -> None:
    _, path = session_report
    html = path.read_text(encoding="utf-8")
    assert external_references(html) == []  # self-contained: nothing to load, no script
    assert NAME not in html and MODEL not in html  # escaped, never markup
    page = render(path)

    assert page.one("head").one("title").text() == "BAML telemetry report"
    assert page.one(id="summary").words() == "FAILED: 23 BAML calls, 4 budgets, 1 failed"
    header, *rows = page.one("table", id="calls").rows()
    assert header == ["function", "model", "calls", "errors", "p50 ms", "p95 ms", "p99 ms", "max ms",
                      "in tokens", "out tokens", "cost"]
    # nearest-rank over 50, 100, ..., 1000 ms and the failed 2 s call; the failure (a 500) is not billed
    assert rows == [
        [NAME, MODEL, "2", "0", "10.0", "10.0", "10.0", "10.0", "10", "10", "unpriced"],
        ["Summarize", "gpt-4o", "21", "1", "550.0", "1,000.0", "2,000.0", "2,000.0", "20,000", "4,000", "$0.09"],
        ["TOTAL", "", "23", "1", "500.0", "1,000.0", "2,000.0", "2,000.0", "20,010", "4,010", "$0.09 + unpriced"],
    ]
    from importlib.metadata import version

    from pytest_baml_telemetry import __version__

    run = page.one(id="run").words()
    assert run.startswith("started 20") and ", finished 20" in run
    assert f"baml-py {version('baml-py')}" in run and f"pytest-baml-telemetry {__version__}" in run
    assert page.one(id="args").words().endswith(
        " -p no:randomly --baml-budgets=budgets.toml --baml-prices=prices.toml --baml-report-html=report.html"
    )
    assert page.one("details", id="tests").one("summary").words() == "Per test (3 tests with BAML calls)"
    assert page.one("table", id="tests-table").rows() == [
        ["test", "calls", "errors", "in tokens", "out tokens", "cost"],
        ["test_app.py::test_known_broken", "1", "0", "5", "5", "unpriced"],
        ["test_app.py::test_odd_name[<b>bold</b>]", "1", "0", "5", "5", "unpriced"],
        ["test_app.py::test_summaries", "21", "1", "20,000", "4,000", "$0.09"],
    ]
    notes = " ".join(p.words() for p in page.all("p", cls="note"))
    assert f"unpriced models in prices.toml: {MODEL} (cost unknown, not $0)" in notes

    # one histogram per function and model, each with its three percentile markers
    figures = page.all("figure", cls="latency")
    assert [f.one("figcaption").words() for f in figures] == [f"{NAME} [{MODEL}]", "Summarize [gpt-4o]"]
    summarize = figures[1].one("svg", cls="histogram")
    assert summarize.child("title").text() == "latency of Summarize [gpt-4o]: 21 calls"
    markers = {g.attrs["data-percentile"]: g.words() for g in summarize.all("g", cls="marker-group")}
    assert markers == {"p50": "p50 550.0 ms", "p95": "p95 1,000.0 ms", "p99": "p99 2,000.0 ms"}
    assert all(len(g.all("line", cls="marker")) == 1 for g in summarize.all("g", cls="marker-group"))
    bars = summarize.all("rect", cls="bar")
    assert 1 < len(bars) <= 24
    assert sum(int(b.one("title").text().rsplit(": ", 1)[1].split()[0]) for b in bars) == 21
    assert [float(g.one("line").attrs["x1"]) for g in summarize.all("g", cls="marker-group")] == sorted(
        float(g.one("line").attrs["x1"]) for g in summarize.all("g", cls="marker-group")
    )

    # the verdicts: session PASS and FAIL, a per-test PASS under an escaped test id, an XFAIL
    assert page.one(id="budget-summary").words() == "4 checked, 1 failed, 1 xfailed"
    budgets = {b.one("div", cls="budget-label").words(): b for b in page.all("div", cls="budget")}
    labels = list(budgets)
    assert labels[0].startswith("session: budget 'fast summaries'") and labels[1].startswith("session: budget 'few calls'")
    assert labels[2].startswith("test_app.py::test_known_broken: budget")
    assert labels[3].startswith("test_app.py::test_odd_name[<b>bold</b>]: budget")

    def verdicts(label: str) -> list[list[str]]:
        return budgets[label].one("table", cls="verdicts").rows()

    assert verdicts(labels[0]) == [["PASS", "p95", "p95 = 1s <= 1.5s over 21 calls"]]
    (few,) = verdicts(labels[1])
    assert few[:2] == ["FAIL", "max_calls"] and few[2].startswith("max_calls: 23 calls exceeds the limit 10 calls")
    ((mark, key, text),) = verdicts(labels[2])
    assert (mark, key) == ("XFAIL (expected)", "max_calls") and text.startswith("max_calls: 1 call exceeds the limit 0 calls")
    assert f"10ms {NAME} [{MODEL}] ok in=5 out=5 test_app.py::test_known_broken" in text  # the worst call, escaped
    assert verdicts(labels[3]) == [["PASS", "max_calls", "max_calls: 1 call <= 5 calls"]]
    assert [b.attrs["class"] for b in page.all("span", cls="badge")] == [
        "badge pass", "badge fail", "badge expected", "badge pass"
    ]
    assert page.all(id="compare") == []  # no baseline given: no comparison section
    assert not page.all("script")


def decode_png(data: bytes) -> tuple[int, int, Counter[bytes]]:
    """Width, height and how many pixels have each RGB colour of an 8-bit RGB/RGBA PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", data[:8]
    pos, idat = 8, b""
    width = height = bpp = 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            width, height, depth, ctype = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and ctype in (2, 6), (depth, ctype)
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += body
    raw, stride = zlib.decompress(idat), width * bpp
    prev, i, colours = bytearray(stride), 0, Counter[bytes]()
    for _ in range(height):
        f, line = raw[i], bytearray(raw[i + 1 : i + 1 + stride])
        i += 1 + stride
        for x in range(stride) if f else ():
            a = line[x - bpp] if x >= bpp else 0
            b, c = prev[x], (prev[x - bpp] if x >= bpp else 0)
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            else:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        colours.update(bytes(line[x : x + 3]) for x in range(0, stride, bpp))
        prev = line
    return width, height, colours


def test_the_report_is_drawn_on_screen(session_report: tuple[pytest.RunResult, Path]) -> None:
    _, path = session_report
    shot = path.parent / "report.png"
    _, console = chromium(path, f"--screenshot={shot}", "--window-size=1280,1400", "--hide-scrollbars")
    assert console == ""
    width, height, colours = decode_png(shot.read_bytes())
    assert (width, height) == (1280, 1400)

    def seen(rgb: str) -> int:
        return colours[bytes.fromhex(rgb)]

    assert seen("ffffff") < width * height * 0.95  # not a blank page
    assert seen("6b8fd6") > 2_000  # the histogram bars are drawn
    assert seen("fbe0e0") > 1_000  # red: the FAILED summary and the FAIL badge
    assert seen("dff3e3") > 100 and seen("e6e9f5") > 100  # the PASS and XFAIL badges
    assert all(seen(rgb) > 10 for rgb in ("2a7a3b", "c06000", "b01818"))  # the p50, p95, p99 markers


# ----------------------------------------------------------------------------- wiring


def test_ini_key_and_a_missing_directory_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_app="from pytest_baml_telemetry import Emitter\n\ndef test_a():\n"
                                 "    with Emitter().call('F') as c:\n        c.set_usage(1, 1)\n")
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\nbaml_report_html = out/r.html\n")
    result = pytester.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--baml-report-html (ini baml_report_html): the directory 'out' does not exist*"])
    pytester.mkdir("out")
    result = pytester.runpytest_subprocess()
    no_crash(result)
    assert result.ret == pytest.ExitCode.OK
    html = (pytester.path / "out" / "r.html").read_text(encoding="utf-8")
    assert "PASSED: 1 BAML call" in html and "<svg" in html


def test_the_html_path_may_not_be_the_json_report_or_an_input(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_app="def test_a():\n    pass\n")
    pytester.makefile(".toml", budgets=BUDGETS)
    result = pytester.runpytest_subprocess("--baml-report-json=r.json", "--baml-report-html=./r.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--baml-report-html*r.json*"])
    result = pytester.runpytest_subprocess("--baml-budgets=budgets.toml", "--baml-report-html=budgets.toml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--baml-report-html*budgets.toml*would overwrite it*"])


def test_a_failed_write_is_an_error_after_the_summary_and_keeps_the_old_file(pytester: pytest.Pytester) -> None:
    (pytester.path / "r.html").write_text("previous")
    pytester.makeconftest(
        """
        import errno, os

        def _full(fd):
            raise OSError(errno.ENOSPC, "No space left on device")

        os.fsync = _full  # the disk is full when the report is written
        """
    )
    pytester.makepyfile(test_app="from pytest_baml_telemetry import Emitter\n\ndef test_a():\n"
                                 "    with Emitter().call('F') as c:\n        c.set_usage(1, 1)\n")
    result = pytester.runpytest_subprocess("--baml-report-html=r.html")
    no_crash(result)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*1 passed*", "ERROR: --baml-report-html: could not write*No space left on device*"])
    assert (pytester.path / "r.html").read_text() == "previous"
    assert [p.name for p in pytester.path.iterdir() if p.name.startswith(".r.html")] == []


def test_under_xdist_the_controller_writes_the_whole_report(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_app=textwrap.dedent(
            """
            import pytest
            from pytest_baml_telemetry import Emitter

            @pytest.mark.parametrize("i", range(6))
            def test_a(i):
                with Emitter().call("F") as c:
                    c.set_usage(1, 1)
            """
        )
    )
    result = pytester.runpytest_subprocess("-p", "xdist", "-n", "2", "--baml-report-html=r.html")
    no_crash(result)
    assert result.ret == pytest.ExitCode.OK
    page = parse((pytester.path / "r.html").read_text(encoding="utf-8"))
    assert page.one("table", id="calls").rows()[1][:3] == ["F", "no model", "6"]


COMPARED = '''
def test_summaries(baml_fake):
    baml_fake.respond("Summarize", "ok", model="gpt-4o", latency="{ms}ms", usage=(100, 10), reusable=True)
    for _ in range(5):
        baml_fake.Summarize(text="Ada")
'''


def test_with_a_baseline_the_page_shows_the_deltas_and_regressions(pytester: pytest.Pytester) -> None:
    chromium_binary()
    pytester.makepyfile(test_app=COMPARED.format(ms=100))
    result = pytester.runpytest_subprocess("-p", "no:randomly", "--baml-report-json=base.json")
    no_crash(result)
    assert result.ret == pytest.ExitCode.OK
    pytester.makepyfile(test_app=COMPARED.format(ms=200))  # twice as slow
    result = pytester.runpytest_subprocess(
        "-p", "no:randomly", "--baml-compare=base.json", "--baml-compare-fail=p95:10%", "--baml-report-html=r.html"
    )
    no_crash(result)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    page = render(pytester.path / "r.html")
    assert page.one(id="summary").words() == "FAILED: 5 BAML calls, 0 budgets, 0 failed, 1 regression"
    baseline = page.one(id="baseline").words()
    assert re.fullmatch(rf"baseline: {re.escape(str(pytester.path / 'base.json'))} \(run of 20\S+\)", baseline), baseline
    header, row = page.one("table", id="compare-rows").rows()
    assert header[:3] == ["function", "model", "p50 Δ"] and "p95 Δ" in header
    assert row[:2] == ["Summarize", "gpt-4o"]
    assert row[header.index("p95 Δ")] == "100.0 ms → 200.0 ms (+100.0%)"
    assert row[header.index("tokens Δ")] == "550 → 550 (+0.0%)"
    ((mark, message),) = page.one("table", id="regressions").rows()
    assert (mark, message) == ("FAIL", "Summarize / gpt-4o: p95 100.0ms -> 200.0ms (+100.0%), tolerance 10%")
