"""The authors' exec scoping inside the sandbox: exec(code, globals-with-their-imports, separate locals)."""

from __future__ import annotations

import pytest

from matbench.tools.sandbox import Sandbox

SEEDS = [
    ["re", "re", None],
    ["np", "numpy", None],
    ["Image", "PIL", "Image"],
    ["nothere", "no_such_mod", None],
]
SNIPPET = """
x = 3
def f():
    return x
for name, call in (("function", f), ("comprehension", lambda: [x for _ in range(1)][0])):
    try:
        print(name, call())
    except NameError:
        print(name, "NameError")
print("imports", np.zeros(2).tolist(), Image.__name__, re.sub("a", "b", "a"))
"""


@pytest.fixture(scope="module")
def sb():
    with Sandbox(timeout=20, workers=1) as sandbox:
        yield sandbox


def test_authors_scope_sees_their_imports_and_splits_locals(sb):
    res = sb.run(SNIPPET, None, scope={"globals": SEEDS})
    assert (
        res.ok is False or res.error
    )  # no image written: the run itself is fine, only the output is missing
    assert res.exception is None, res.traceback
    assert res.stdout.splitlines() == [
        "function NameError",
        "comprehension NameError",
        "imports [0.0, 0.0] PIL.Image b",
    ]
    missing = sb.run("nothere.anything", None, scope={"globals": SEEDS})
    assert (
        missing.exception and "no_such_mod" in missing.exception
    )  # a seed that is not installed fails on use


def test_fresh_scope_is_one_namespace_without_imports(sb):
    res = sb.run(SNIPPET, None)
    assert res.stdout.splitlines()[:2] == ["function 3", "comprehension 3"]
    assert res.exception is not None and "'np' is not defined" in res.exception
