"""Task runner: ``nox -s tests lint typecheck docs bench``.

Every session installs the project with the extras it needs into its own virtualenv; nothing in
the tree is rewritten. The test session needs root (network namespaces, BPF) and a Docker daemon
for the real-backend tests; ``scripts/test`` installs and starts both before calling nox.
"""

from __future__ import annotations

import nox

#: The test, lint and docs tools: the PEP 735 ``dev`` group of pyproject.toml.
DEV = nox.project.dependency_groups(nox.project.load_toml("pyproject.toml"), "dev")

nox.options.sessions = ["tests", "lint", "typecheck", "docs"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True


@nox.session
def tests(session: nox.Session) -> None:
    """The whole suite. Root-only and Docker tests skip, saying why, when those are missing."""
    session.install("-e", ".[all]", *DEV)
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and format check, the layers of docs/architecture.md (import-linter
    contracts in pyproject.toml: layers, no cycles, one home per backend SDK), and the remote
    kernel reader's Python 3.8 compatibility (vermin)."""
    session.install("ruff>=0.5", "import-linter>=2.1", "vermin>=1.6")
    session.run("ruff", "check", "wpprotect", "tests", "benchmarks", "noxfile.py", "docs")
    session.run("ruff", "format", "--check", "wpprotect", "tests", "benchmarks", "noxfile.py")
    session.run("lint-imports")
    # The kernel reader runs on the agent image's embedded Python: 3.8 on the oldest agent.
    session.run(
        "vermin", "--target=3.8-", "--no-tips", "--violations", "wpprotect/tc/_remote_reader.py"
    )


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the library (configuration in pyproject.toml)."""
    session.install("-e", ".[all]", *DEV)
    session.run("mypy")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the Sphinx site with warnings as errors, then run the examples in it."""
    session.install("-e", ".[all]", *DEV)
    session.run("sphinx-build", "-W", "--keep-going", "-b", "html", "docs", "docs/_build/html")
    session.run(
        "sphinx-build", "-W", "--keep-going", "-b", "doctest", "docs", "docs/_build/doctest"
    )


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks; each prints its figures as ratios against a baseline measured in the same run."""
    # A regular install, as users get: an editable one adds a finder that every interpreter start
    # imports (pathlib, importlib.util, fnmatch: ~13 ms), which whole-process timings would count.
    session.install(".[all]", *DEV)
    session.run("python", "-m", "benchmarks", *session.posargs)
