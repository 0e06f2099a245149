"""The README stays a short product page whose figures are those of the committed reports.

Figure markers: a figure in README.md (or docs/*.md) followed at once by an HTML comment
``<!--SOURCE: EXPR-->`` is checked against a report. SOURCE is a report folder under
``benchmarks/`` (its ``results.json``) or a ``.json`` file's path under ``benchmarks/``. EXPR
is arithmetic (``+ - * /``, parentheses, numbers, ``mean``/``min``/``max``/``sum``) over paths
into that JSON: keys joined by dots (a key with spaces or dots in double quotes), ``[i]`` or
``[a:b]`` into a list, and ``[key=value,...]`` to pick the list items with those values (one item
is that item; several are a list for ``mean`` and the like). The figure must equal the value
rounded to the decimals it shows, e.g. ``0.66<!--rd_unseen: summary.eegbci_S001.bps_for_prd.10-->``.
A figure may be followed by ``x`` or `` %`` before the comment. Subtraction needs spaces around
``-`` (keys may hold dashes: ``mc-small``).
"""

from __future__ import annotations

import json
import math
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MAX_README_LINES = 300

MARKER = re.compile(
    r"(?P<num>-?\d[\d,]*(?:\.\d+)?)(?P<unit>x| ?%)?<!--\s*(?P<src>[\w./-]+):\s*(?P<expr>.*?)\s*-->"
)
PATH = re.compile(r'(?:[A-Za-z_][\w-]*|"[^"]*")(?:\.(?:[\w-]+|"[^"]*")|\[[^\]]*\])*')
STEP = re.compile(r'\.?(?:"(?P<q>[^"]*)"|(?P<k>[\w-]+))|\[(?P<b>[^\]]*)\]')


def _many(fn):
    return lambda v: fn(v if isinstance(v, list) else [v])


FUNCS = {"mean": _many(lambda v: sum(v) / len(v)), "min": _many(min), "max": _many(max), "sum": _many(sum)}

#: phrases about how the project is developed, which no page of the product may hold (written as
#: word pairs, so that this file does not hold them either)
NARRATION = [
    " ".join(words)
    for words in (
        ("lent", "gpu"),
        ("lent a", "gpu"),
        ("device", "tool"),
        ("this", "session"),
        ("previous", "session"),
        ("earlier", "sessions"),
        ("borrowed", "machine"),
        ("gpu", "sprint"),
        ("this", "task had"),
    )
]


def _same(a, b) -> bool:
    try:
        return math.isclose(float(a), float(b), rel_tol=0, abs_tol=1e-9)
    except (TypeError, ValueError):
        return str(a) == str(b)


def _step(node, key: str | None, bracket: str | None):
    """One path step: a dict key, a list index or slice, or a ``[key=value,...]`` pick."""
    if bracket is None:
        if isinstance(node, list):
            return [_step(n, key, None) for n in node]
        return node[key]
    if "=" in bracket:
        want = dict(part.split("=", 1) for part in bracket.split(","))
        return [n for n in node if all(k in n and _same(n[k], v) for k, v in want.items())]
    if ":" in bracket:
        a, b = (int(x) if x else None for x in bracket.split(":"))
        return node[a:b]
    return node[int(bracket)]


def resolve(data, path: str):
    """The value at ``path`` in ``data`` (grammar in the module docstring)."""
    node, picked, pos = data, False, 0
    for m in STEP.finditer(path):
        if m.start() != pos:
            raise ValueError(f"cannot parse path {path!r} at {path[pos:]!r}")
        pos = m.end()
        bracket = m.group("b")
        node = _step(node, m.group("q") if m.group("q") is not None else m.group("k"), bracket)
        picked = picked or (bracket is not None and "=" in bracket)
    if pos != len(path):
        raise ValueError(f"cannot parse path {path!r}")
    if picked and isinstance(node, list) and len(node) == 1:
        return node[0]
    if picked and isinstance(node, list) and not node:
        raise KeyError(f"{path!r} picks nothing")
    return node


def evaluate(data, expr: str) -> float:
    """``expr`` over ``data``: each path becomes its value, then the arithmetic is done."""
    values: list = []

    def sub(m: re.Match) -> str:
        text = m.group(0)
        if text in FUNCS and expr[m.end() : m.end() + 1] == "(":
            return text
        values.append(resolve(data, text))
        return f"_v[{len(values) - 1}]"

    code = PATH.sub(sub, expr)
    if re.search(r"[^\w\s.+\-*/()\[\],]", code):
        raise ValueError(f"unexpected characters in {expr!r}")
    return float(eval(code, {"__builtins__": {}, "_v": values, **FUNCS}))  # noqa: S307 - our own README


def source_path(src: str) -> Path:
    """The JSON a marker names: a report folder under ``benchmarks/`` or a ``.json`` file there."""
    return ROOT / "benchmarks" / src if src.endswith(".json") else ROOT / "benchmarks" / src / "results.json"


def markers(text: str) -> list[re.Match]:
    return list(MARKER.finditer(text))


def check_markers(text: str, name: str) -> list[str]:
    """One line per figure of ``text`` that does not match its report."""
    problems, cache = [], {}
    for m in markers(text):
        path = source_path(m.group("src"))
        if not path.is_file():
            problems.append(f"{name}: {m.group(0)!r}: no report {path.relative_to(ROOT)}")
            continue
        data = cache.setdefault(path, json.loads(path.read_text()))
        shown = m.group("num").replace(",", "")
        decimals = len(shown.split(".")[1]) if "." in shown else 0
        try:
            value = evaluate(data, m.group("expr"))
        except (KeyError, IndexError, ValueError, TypeError, ZeroDivisionError, SyntaxError) as e:
            problems.append(f"{name}: {m.group(0)!r}: {type(e).__name__}: {e}")
            continue
        if not math.isfinite(value) or abs(round(value, decimals) - float(shown)) > 10 ** -(decimals + 3):
            problems.append(f"{name}: shows {shown} where {m.group('expr')!r} is {value:.{decimals + 3}f}")
    return problems


def test_readme_is_short():
    n = len(README.read_text().splitlines())
    assert n <= MAX_README_LINES, (
        f"README.md has {n} lines (at most {MAX_README_LINES}): move detail to docs/"
    )


def test_readme_figures_match_their_reports():
    text = README.read_text()
    assert len(markers(text)) >= 20, "the README's results tables carry figure markers (module docstring)"
    problems = check_markers(text, "README.md")
    for page in sorted((ROOT / "docs").glob("*.md")):
        problems += check_markers(page.read_text(), f"docs/{page.name}")
    assert not problems, "\n".join(problems)


def test_marked_table_rows_mark_every_figure():
    """A README table row with one marked figure marks all its decimal figures (none left unchecked)."""
    bad = []
    for line in README.read_text().splitlines():
        if line.startswith("|") and "<!--" in line:
            bare = MARKER.sub("", line)
            bare = re.sub(r"<!--.*?-->", "", bare)
            loose = re.findall(r"(?<![\w.])\d+\.\d+(?![\w.])", bare)
            if loose:
                bad.append(f"{loose}: {line[:80]}")
    assert not bad, "unmarked figures in marked rows:\n" + "\n".join(bad)


def test_marker_check_fails_on_a_changed_figure():
    """The check is not vacuous: a figure one step off its report fails."""
    m = markers(README.read_text())[0]
    shown = m.group("num")
    decimals = len(shown.split(".")[1]) if "." in shown else 0
    off = f"{float(shown.replace(',', '')) + 10**-decimals:.{decimals}f}"
    assert check_markers(m.group(0).replace(shown, off, 1), "probe")


def test_marker_grammar():
    data = {"a": {"b-c": [{"k": 1, "v": 2.0}, {"k": 2, "v": 4.0}], "x y": [1, 2, 3]}}
    assert evaluate(data, "a.b-c[k=2].v") == 4.0
    assert evaluate(data, 'mean(a."x y"[0:2])') == 1.5
    assert evaluate(data, "100 * (a.b-c[0].v / a.b-c[1].v - 1)") == -50.0
    assert evaluate(data, "mean(a.b-c[k=1].v)") == 2.0
    with pytest.raises(KeyError):
        evaluate(data, "a.nothing")


def _tracked_text_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    keep = {".md", ".py", ".sh", ".yaml", ".yml", ".toml", ".txt", ".cfg"}
    return [ROOT / p for p in out.splitlines() if Path(p).suffix in keep and Path(p).name != "test_readme.py"]


def test_no_page_narrates_its_development():
    hits = []
    for path in _tracked_text_files():
        if not path.is_file():
            continue
        for i, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            low = line.lower()
            hits += [f"{path.relative_to(ROOT)}:{i}: {p!r}" for p in NARRATION if p in low]
    assert not hits, "\n".join(hits)


LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors of a Markdown page."""
    out = set()
    for line in page.read_text().splitlines():
        if line.startswith("#") and not line.startswith("#!"):
            title = line.lstrip("#").strip().lower()
            out.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return out


def test_relative_links_resolve():
    bad = []
    pages = [README, *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "benchmarks").glob("**/*.md"))]
    for page in pages:
        text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
        for target in LINK.findall(text):
            if re.match(r"[a-z]+:", target):
                continue
            file, _, anchor = target.partition("#")
            dest = (page.parent / file).resolve() if file else page
            if not dest.exists():
                bad.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
                bad.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert not bad, "\n".join(bad)
