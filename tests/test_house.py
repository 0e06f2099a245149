"""The house rules: packages depend one way, no import cycle, short functions and modules, each
side stream's writer beside its reader."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "eegcodec"
MAX_FUNCTION_LINES = 60
#: a module stays short enough to read at once
MAX_MODULE_LINES = 500
#: modules still longer, each with its reason (the test fails when one gets short: drop it here)
LONG_MODULES: dict[str, str] = {}
#: the format's modules where each writer lies beside its reader
PAIRED_MODULES = ("format/side.py", "format/meta.py")
REGISTRY = "eegcodec.backends.registry"


def _modules() -> dict[str, Path]:
    out = {}
    for f in PACKAGE.rglob("*.py"):
        parts = list(f.relative_to(PACKAGE.parent).with_suffix("").parts)
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return out


def _imports(mods: dict[str, Path]) -> dict[str, set[str]]:
    """module -> eegcodec modules it imports anywhere (module level or inside functions)."""
    edges: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        package = mod.split(".") if path.name == "__init__.py" else mod.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = package[: len(package) - node.level + 1] if node.level else []
                name = ".".join(base + (node.module.split(".") if node.module else []))
                targets = [f"{name}.{a.name}" if f"{name}.{a.name}" in mods else name for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            edges[mod] |= {t for t in targets if t in mods and t != mod}
    return edges


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in edges:
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle():
    assert _cycles(_imports(_modules())) == []


def test_cycle_finder_can_fail():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]


def test_packages_depend_one_way():
    edges = _imports(_modules())
    for mod, targets in edges.items():
        if mod.startswith("eegcodec.train"):
            assert not any(t.startswith("eegcodec.align") for t in targets), (mod, targets)
            # training finds a backend's trainable through the registry only
            assert not {t for t in targets if t.startswith("eegcodec.backends")} - {REGISTRY}, (mod, targets)
        if mod.startswith("eegcodec.backends.") and mod != REGISTRY:  # backends never know the registry
            assert REGISTRY not in targets, mod
        if mod.startswith(("eegcodec.backends", "eegcodec.models")):  # codecs never touch files or the CLI
            assert not targets & {
                "eegcodec.pipeline",
                "eegcodec.format.container",
                "eegcodec.api",
            }, mod
            assert not any(t.startswith("eegcodec.cli") for t in targets), mod
        if not mod.startswith("eegcodec.bench"):  # only the CLI's bench verb runs benchmarks
            assert not any(t.startswith("eegcodec.bench") for t in targets if mod != "eegcodec.cli.bench"), (
                mod,
                targets,
            )


def test_file_code_never_touches_gradients():
    """The format's modules (``eegcodec/format/``): no torch; no MNE but in ``meta.py``, whose
    measurement info is MNE's own FIF."""
    for path in sorted((PACKAGE / "format").glob("*.py")):
        tree = ast.parse(path.read_text())
        imported = {
            a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
        }
        imported |= {
            n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module
        }
        banned = {"torch"} if path.name == "meta.py" else {"torch", "mne"}
        assert not imported & banned, (path.name, imported)


def test_format_loads_neither_torch_nor_mne():
    """Importing the format's modules (all but ``meta``) pulls in neither torch nor MNE, however
    indirectly: the zarr codec and ``eegcodec info`` stay light."""
    import subprocess
    import sys

    names = sorted(f.stem for f in (PACKAGE / "format").glob("*.py") if f.stem not in ("__init__", "meta"))
    code = (
        f"import sys, importlib; [importlib.import_module('eegcodec.format.' + n) for n in {names!r}]; "
        "print(sorted(m for m in ('torch', 'mne') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_functions_are_short():
    long = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name} ({lines} lines)")
    assert long == []


def test_modules_are_short():
    long = {
        str(f.relative_to(PACKAGE)): n
        for f in PACKAGE.rglob("*.py")
        if (n := len(f.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert set(long) == set(LONG_MODULES), long


def _unpaired(source: str) -> list[str]:
    """Public functions of ``source`` that are not one of a writer/reader pair: ``X_to_Y`` with
    ``X_from_Y``, ``write_X`` with ``read_X`` (either one missing its partner, or neither form)."""
    names = {
        n.name
        for n in ast.parse(source).body
        if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")
    }
    partner = {}
    for name in names:
        if m := re.fullmatch(r"(\w+?)_(to|from)_(\w+)", name):
            partner[name] = f"{m[1]}_{'from' if m[2] == 'to' else 'to'}_{m[3]}"
        elif m := re.fullmatch(r"(write|read)_(\w+)", name):
            partner[name] = f"{'read' if m[1] == 'write' else 'write'}_{m[2]}"
    return sorted(n for n in names if partner.get(n) not in names)


def test_each_writer_lies_beside_its_reader():
    for name in PAIRED_MODULES:
        source = (PACKAGE / name).read_text()
        assert _unpaired(source) == [], name
        assert re.search(r"^def \w+_to_\w+\(", source, re.M), name  # not vacuous


def test_pairing_check_can_fail():
    source = (
        "def a_to_json(): ...\ndef a_from_json(): ...\ndef b_to_fif(): ...\ndef read_c(): ...\ndef d(): ...\n"
    )
    assert _unpaired(source) == ["b_to_fif", "d", "read_c"]


def test_help_and_info_import_no_torch():
    """Start-up: the CLI, the package and the model-free reader import neither torch nor scipy.signal."""
    import subprocess
    import sys

    code = (
        "import sys, eegcodec, eegcodec.cli, eegcodec.reader; eegcodec.cli.build_parser(); "
        "print(sorted(m for m in ('torch', 'scipy.signal', 'dac') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_files_without_tokens_never_import_torch(tmp_path):
    """Lossless and --prd files compress and decompress without torch (start-up under a second)."""
    import subprocess
    import sys

    import mne
    from conftest import synthetic_raw

    src = tmp_path / "rec.fif"
    synthetic_raw(n_ch=4, seconds=8).save(src, verbose="error")
    runs = [
        ["compress", str(src), "-o", str(tmp_path / "p.eegc"), "--prd", "10", "-q"],
        ["compress", str(src), "-o", str(tmp_path / "l.eegc"), "--lossless", "-q"],
        ["decompress", str(tmp_path / "p.eegc"), "-o", str(tmp_path / "p.fif"), "-q"],
        ["decompress", str(tmp_path / "l.eegc"), "-o", str(tmp_path / "l.fif"), "-q"],
    ]
    code = (
        f"import sys; from eegcodec.cli import main; assert all(main(a) == 0 for a in {runs!r}); "
        "print(sorted(m for m in ('torch', 'dac') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"
    assert mne.io.read_raw(tmp_path / "l.fif", verbose="error").n_times == 8 * 160


def test_developer_tools_run_from_the_checkout_and_stay_out_of_the_wheel(tmp_path):
    """``python tools/NAME.py`` imports this checkout's eegcodec from any folder; the wheel's
    packages (``eegcodec*``) hold no tool."""
    import os
    import subprocess
    import sys

    from setuptools import find_packages

    root = PACKAGE.parent
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    for tool in ("fuzz", "sprint", "segment_cost"):
        done = subprocess.run(
            [sys.executable, str(root / "tools" / f"{tool}.py"), "--help"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=env,
        )
        assert done.returncode == 0 and f"python tools/{tool}.py" in done.stdout, done.stderr
    packages = find_packages(str(root), include=["eegcodec*"])
    assert "eegcodec.cli" in packages and not any(p.startswith("tools") for p in packages)
    assert not (PACKAGE / "fuzz.py").exists() and not (PACKAGE / "train" / "sprint.py").exists()
