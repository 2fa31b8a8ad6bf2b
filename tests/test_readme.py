"""Every Python block of README.md runs, and shows what it prints.

README.md is parsed at test time; each ```python fence is one test, named by
its index, its line in README.md and its first line. Conventions (also stated
in README's "Examples" section):

- An expression statement whose last line ends in a comment starting with
  ``# ->`` is evaluated, and the ``repr`` of its value must match the text
  after the arrow.
- A ```text fence right after a ```python fence (blank lines only between)
  is what the block prints: its whole standard output must match it.
- Both comparisons are doctest's, with ``ELLIPSIS`` (``...`` matches
  anything) and ``NORMALIZE_WHITESPACE``.
- An HTML comment on the line before the fence sets flags: ``<!-- slow -->``
  marks a block that takes more than about 20 s (run with ``pytest -m
  slow``); ``<!-- continues -->`` runs the block in the namespace left by the
  block before it. Every other block starts from an empty namespace.
- Every block checks at least one output. A ``ConvergenceWarning`` raised in
  a block fails its test, and so does printing without a ```text block.
  ```bash fences are not run. A remark may follow the value after two spaces
  and a second ``#``: ``x  # -> 3  # the count``.

Each block runs in a temporary working directory, inside
``sklearn.config_context()`` (so ``set_config`` does not leak), with one torch
thread (README's advice for small networks on a busy machine; the shown
outputs were checked with two threads too), and torch's thread count is
restored after it.
"""

import ast
import contextlib
import doctest
import io
import re
import tokenize
import warnings
from pathlib import Path

import pytest
import sklearn
import torch
from sklearn.exceptions import ConvergenceWarning

README = Path(__file__).resolve().parents[1] / "README.md"
FLAGS = {"slow", "continues"}
ARROW = "# ->"
CHECKER = doctest.OutputChecker()
OPTIONS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def parse_readme(text):
    """Return README's Python blocks in order, as dicts.

    Each has ``index``, ``line`` (README line of its first code line),
    ``source``, ``flags`` (a set) and ``output`` (the ```text block after it,
    or None).
    """
    lines = text.splitlines()
    fences = []  # (language, first code line index, code lines)
    i = 0
    while i < len(lines):
        match = re.match(r"^```(\w*)\s*$", lines[i])
        if not match:
            i += 1
            continue
        start = i + 1
        end = start
        while end < len(lines) and lines[end].rstrip() != "```":
            end += 1
        if end == len(lines):
            raise ValueError(f"README.md line {i + 1}: fence never closed")
        fences.append((match.group(1), start, lines[start:end]))
        i = end + 1

    blocks = []
    for k, (language, start, code) in enumerate(fences):
        if language != "python":
            continue
        before = start - 2
        while before >= 0 and not lines[before].strip():
            before -= 1
        flags = set()
        comment = re.fullmatch(r"<!--(.*)-->", lines[before].strip()) if before >= 0 else None
        if comment:
            flags = set(re.split(r"[\s,]+", comment.group(1).strip())) - {""}
            unknown = flags - FLAGS
            if unknown:
                raise ValueError(
                    f"README.md line {before + 1}: unknown block flag(s) {sorted(unknown)}; "
                    f"expected some of {sorted(FLAGS)}"
                )
        output = None
        if k + 1 < len(fences) and fences[k + 1][0] == "text":
            gap = lines[start + len(code) + 1 : fences[k + 1][1] - 1]
            if all(not line.strip() for line in gap):
                output = "\n".join(fences[k + 1][2])
        blocks.append(
            {"index": len(blocks), "line": start + 1, "source": "\n".join(code) + "\n",
             "flags": flags, "output": output}
        )
    return blocks


BLOCKS = parse_readme(README.read_text(encoding="utf-8"))


def arrow_comments(source):
    """Map line number -> expected repr for each ``# ->`` comment."""
    found = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT and token.string.startswith(ARROW):
            # A remark may follow the value after two spaces and a second "#".
            found[token.start[0]] = token.string[len(ARROW):].split("  #")[0].strip()
    return found


def matches(want, got):
    return CHECKER.check_output(want.strip() + "\n", got.strip() + "\n", OPTIONS)


def run_block(block, namespace):
    """Execute a block statement by statement; return (stdout, n_checks, failures)."""
    name = f"README.md:{block['line']}"
    tree = ast.parse(block["source"], filename=name)
    expected = arrow_comments(block["source"])
    statement_ends = {stmt.end_lineno: stmt for stmt in tree.body}
    for line in expected:
        stmt = statement_ends.get(line)
        if not isinstance(stmt, ast.Expr):
            pytest.fail(
                f"{name}: the `{ARROW}` comment on block line {line} must end an "
                "expression statement"
            )
    failures = []
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        for stmt in tree.body:
            if stmt.end_lineno in expected:
                code = compile(ast.Expression(stmt.value), name, "eval")
                got = repr(eval(code, namespace))
                want = expected[stmt.end_lineno]
                if not matches(want, got):
                    failures.append(
                        f"block line {stmt.end_lineno}: README shows {want!r}, got {got!r}"
                    )
            else:
                # Running README's own code is the point of this test.
                exec(compile(ast.Module([stmt], []), name, "exec"), namespace)  # noqa: S102
    return stdout.getvalue(), len(expected), failures


_namespaces = {}


def namespace_for(block):
    if "continues" not in block["flags"]:
        return {"__name__": "__readme__"}
    previous = BLOCKS[block["index"] - 1]
    if previous["index"] not in _namespaces:
        run_isolated(previous)
    return dict(_namespaces[previous["index"]])


def run_isolated(block):
    """Run one block as the test does; return (stdout, checks, failures, warnings)."""
    namespace = namespace_for(block)
    threads = torch.get_num_threads()
    with sklearn.config_context(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.set_num_threads(1)
        try:
            result = run_block(block, namespace)
        finally:
            torch.set_num_threads(threads)
    _namespaces[block["index"]] = namespace
    return (*result, caught)


def block_id(block):
    first = block["source"].splitlines()[0].strip()
    return f"{block['index']:02d}-L{block['line']}-{first[:40]}"


def test_readme_has_python_blocks_and_valid_flags():
    assert len(BLOCKS) >= 5
    for block in BLOCKS:
        if "continues" in block["flags"]:
            assert block["index"] > 0, f"block at line {block['line']} continues nothing"
            if "slow" in BLOCKS[block["index"] - 1]["flags"]:
                assert "slow" in block["flags"], (
                    f"block at line {block['line']} continues a slow block: mark it slow"
                )


def test_parser_reads_flags_outputs_and_arrows():
    text = (
        "intro\n\n<!-- slow -->\n```python\nprint(1 + 1)\n```\n\n```text\n2\n```\n"
        "```bash\nls\n```\n<!-- continues -->\n```python\nx = [1]\nx  # -> [1]\n```\n"
    )
    first, second = parse_readme(text)
    assert first["flags"] == {"slow"} and first["output"] == "2" and first["line"] == 5
    assert second["flags"] == {"continues"} and second["output"] is None
    assert arrow_comments(second["source"]) == {2: "[1]"}
    assert arrow_comments("y  # -> (1, 2)  # a remark\n") == {1: "(1, 2)"}
    assert matches("array([1, ...])", "array([1, 2,\n       3])")
    assert not matches("[2]", "[1]")
    with pytest.raises(ValueError, match="unknown block flag"):
        parse_readme("<!-- fast -->\n```python\n1\n```\n")


def test_harness_reports_wrong_values_prints_and_convergence_warnings():
    source = (
        "import warnings\n"
        "from sklearn.exceptions import ConvergenceWarning\n"
        "print('hi')\n"
        "1 + 1  # -> 3\n"
        "[1, 2]  # -> [1, ...]  # a remark\n"
        "warnings.warn('not converged', ConvergenceWarning)\n"
    )
    block = {"index": -1, "line": 0, "source": source, "flags": set(), "output": None}
    stdout, n_checks, failures, caught = run_isolated(block)
    assert stdout == "hi\n" and n_checks == 2
    assert failures == ["block line 4: README shows '3', got '2'"]
    assert [w.category for w in caught] == [ConvergenceWarning]
    with pytest.raises(pytest.fail.Exception, match="must end an expression"):
        run_block({**block, "source": "x = 1  # -> 1\n"}, {})


@pytest.mark.parametrize(
    "block",
    [
        pytest.param(b, id=block_id(b), marks=[pytest.mark.slow] if "slow" in b["flags"] else [])
        for b in BLOCKS
    ],
)
def test_readme_block(block, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # blocks that save files write here
    stdout, n_checks, failures, caught = run_isolated(block)
    convergence = [w for w in caught if issubclass(w.category, ConvergenceWarning)]
    for w in caught:
        if w not in convergence:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    assert not convergence, (
        f"README.md:{block['line']} raised ConvergenceWarning: {convergence[0].message}"
    )
    assert not failures, f"README.md:{block['line']}:\n" + "\n".join(failures)
    assert block["output"] is not None or not stdout, (
        f"README.md:{block['line']} prints:\n{stdout}\nbut README shows no ```text block after it"
    )
    if block["output"] is not None:
        assert matches(block["output"], stdout), (
            f"README.md:{block['line']} prints:\n{stdout}\nbut README shows:\n{block['output']}"
        )
    assert n_checks or block["output"] is not None, (
        f"README.md:{block['line']}: the block checks no output; add a `{ARROW}` "
        "comment or a ```text block of what it prints"
    )
