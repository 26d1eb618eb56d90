"""The package as users get it: ``python -m build`` makes an sdist and a wheel (the wheel
from the sdist, so the sdist is complete enough to build), ``twine check`` passes, and
the wheel, installed into a fresh virtualenv, runs the ``sessionware`` command.

The wheel is installed with ``--no-index``: only the wheel just built can be picked,
never a release from an index. Its dependencies are fetched first into a local wheel
directory, at the versions this environment runs.
"""

from __future__ import annotations

import email
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest
from trove_classifiers import classifiers as known_classifiers

import sessionware

ROOT = Path(__file__).resolve().parent.parent
# What ``sessionware[sql]`` pulls in, pinned to this environment's versions when present.
DEPENDENCIES = (
    "anyio",
    "itsdangerous",
    "tqdm",
    "sqlalchemy",
    "greenlet",
    "typing-extensions",
    "idna",
)


def run(*command: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@dataclass
class Built:
    log: str
    sdist: Path
    wheel: Path


@dataclass
class Installed:
    venv: Path
    work: Path

    def sessionware(self, *arguments: str) -> subprocess.CompletedProcess[str]:
        return run(self.venv / "bin" / "sessionware", *arguments, cwd=self.work)

    def python(self, code: str) -> subprocess.CompletedProcess[str]:
        return run(self.venv / "bin" / "python", "-c", code, cwd=self.work)


# Left out of the copy that is built: what a work tree holds beside the sources.
_NOT_SOURCES = shutil.ignore_patterns(
    ".git",
    ".venv",
    ".hypothesis",
    "*.egg-info",
    "build",
    "dist",
    "site",
    "__pycache__",
    "*_cache",
    "raw",
)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    # Built from a copy: setuptools writes its egg-info and sdist staging directory into
    # the tree it builds, so two test workers building ROOT at once break each other.
    source = tmp_path_factory.mktemp("source") / "sessionware"
    shutil.copytree(ROOT, source, ignore=_NOT_SOURCES)
    out = tmp_path_factory.mktemp("dist")
    result = run(sys.executable, "-m", "build", "--outdir", out, source)
    assert result.returncode == 0, result.stdout + result.stderr
    (sdist,) = out.glob("sessionware-*.tar.gz")
    (wheel,) = out.glob("sessionware-*.whl")
    return Built(result.stdout + result.stderr, sdist, wheel)


@pytest.fixture(scope="module")
def installed(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    base = tmp_path_factory.mktemp("fresh")
    venv, wheels, work = base / "venv", base / "wheels", base / "work"
    work.mkdir()
    created = run(sys.executable, "-m", "venv", venv)
    assert created.returncode == 0, created.stderr
    pins = [_pinned(name) for name in DEPENDENCIES]
    fetched = run(
        venv / "bin" / "python",
        "-m",
        "pip",
        "download",
        "--quiet",
        "--dest",
        wheels,
        *[pin for pin in pins if pin],
    )
    assert fetched.returncode == 0, fetched.stderr
    install = run(
        venv / "bin" / "python",
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-index",
        "--find-links",
        wheels,
        f"sessionware[sql] @ {built.wheel.as_uri()}",
    )
    assert install.returncode == 0, install.stderr
    return Installed(venv, work)


def _pinned(name: str) -> str | None:
    try:
        return f"{name}=={metadata.version(name)}"
    except metadata.PackageNotFoundError:
        return None


def test_build_is_clean_and_twine_accepts_it(built: Built) -> None:
    # Deprecations and MANIFEST.in patterns matching nothing; notes about the environment
    # (byte-compiling switched off, pip's extra indexes) are not about the package.
    complaints = [
        line
        for line in built.log.splitlines()
        if "deprecat" in line.lower()
        or "SetuptoolsWarning" in line
        or (line.startswith("warning:") and "matching" in line)
    ]
    assert not complaints, "\n".join(complaints)
    checked = run(sys.executable, "-m", "twine", "check", "--strict", built.sdist, built.wheel)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.count("PASSED") == 2


def test_sdist_holds_what_its_tests_need_and_nothing_local(built: Built) -> None:
    with tarfile.open(built.sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    for needed in (
        "LICENSE",
        "README.md",
        "CHANGELOG.md",
        "SECURITY.md",
        "mkdocs.yml",
        "pyproject.toml",
        "sessionware/py.typed",
        "tests/__init__.py",
        "tests/conftest.py",
        "tests/counting.py",
        "tests/servers.py",
        "tests/stores/factories.py",
        "tests/browser/conftest.py",
        "tests/test_docs.py",
        "examples/__init__.py",
        "examples/shelf_store.py",
        "docs/index.md",
        "docs/hooks.py",
        "docs/screenshots/docs-home.png",
    ):
        assert needed in names, needed
    for name in names:
        assert not name.startswith(("bench/", ".ci/", "site/")), name
        assert not name.endswith((".pyc", ".db", ".db-wal")), name


def test_wheel_metadata(built: Built) -> None:
    with zipfile.ZipFile(built.wheel) as archive:
        files = archive.namelist()
        info = next(name for name in files if name.endswith(".dist-info/METADATA"))
        meta = email.message_from_bytes(archive.read(info))
    assert meta["Version"] == sessionware.__version__
    assert meta["License-Expression"] == "MIT"
    assert meta["License-File"] == "LICENSE"
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in files)
    assert meta["Author"] == "The sessionware developers"
    assert meta["Requires-Python"] == ">=3.11"
    classifiers = meta.get_all("Classifier") or []
    assert "Programming Language :: Python :: 3.11" in classifiers
    assert not [c for c in classifiers if c not in known_classifiers]
    assert not [c for c in classifiers if c.startswith("License ::")]  # the SPDX field says it
    urls = meta.get_all("Project-URL") or []
    assert any(url.startswith("Documentation, ") for url in urls)
    assert not [name for name in files if name.startswith(("tests/", "examples/", "docs/"))]


def test_installed_command_help_and_version(installed: Installed) -> None:
    helped = installed.sessionware("--help")
    assert helped.returncode == 0, helped.stderr
    for command in ("demo", "clear-expired", "check", "sessions", "revoke"):
        assert command in helped.stdout
    version = installed.sessionware("--version")
    assert version.stdout.strip() == f"sessionware {sessionware.__version__}"
    where = installed.python("import sessionware; print(sessionware.__file__)")
    assert Path(where.stdout.strip()).is_relative_to(installed.venv)


def _add_sessions(installed: Installed, url: str, live: int, expired: int) -> None:
    code = f"""
import secrets, time
from sessionware.stores import SQLStore
from sessionware.stores.base import Record
store = SQLStore({url!r})
now = time.time()
for ends in [now + 3600] * {live} + [now - 60] * {expired}:
    key = secrets.token_urlsafe(32)  # the shape of a session key
    assert store.insert(key, Record({{"a": b'{{"a":1}}'}}, now - 120, ends))
store.close()
"""
    added = installed.python(code)
    assert added.returncode == 0, added.stderr


def test_installed_command_clears_expired_sessions(installed: Installed) -> None:
    url = f"sqlite:///{installed.work / 'purge.db'}"
    _add_sessions(installed, url, live=1, expired=2)
    cleared = installed.sessionware("clear-expired", "--store", url)
    assert cleared.returncode == 0, cleared.stderr
    assert "2" in cleared.stdout.split()
    again = installed.sessionware("clear-expired", "--store", url)
    assert "0" in again.stdout.split()


def test_installed_command_checks_a_store(installed: Installed) -> None:
    url = f"sqlite:///{installed.work / f'check-{time.monotonic_ns()}.db'}"
    _add_sessions(installed, url, live=3, expired=0)
    checked = installed.sessionware("check", "--store", url)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "3 live" in checked.stdout
