"""Each distribution of the workspace installs and imports alone: in a clean virtualenv holding only that
distribution, wallbounce-api and the closure of their *declared* dependencies, every module of its packages
imports and its console scripts answer ``--help``; the operator's environment cannot import an LLM client,
Redis or rich.

How the environment is made, offline and in seconds rather than minutes of resolving against an index: the
two distributions are built into wheels and installed by pip (``--no-deps --no-index``); their declared
dependencies, followed through each dependency's own requirements (extras and environment markers
evaluated), are the very files this development environment has installed, linked into the clean one file by
file from each distribution's RECORD. Nothing else is there: a dependency a distribution uses but does not
declare fails the import.
"""

from __future__ import annotations

import importlib.metadata as md
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
WORKSPACE = {"wallbounce-api": "api", "wallbounce-operator": "operator", "kubectl-wallbounce": "kubectl-plugin",
             "wallbounce-service": "service",
             "wallbounce-devstack": "e2e"}
#: distribution → (its packages, its console scripts, modules it must NOT be able to import)
PRODUCTS = {
    "wallbounce-api": (["wallbounce_api"], [], []),
    "wallbounce-operator": (["wallbounce_operator"], ["wallbounce-operator"],
                            ["openai", "anthropic", "google.genai", "redis", "rich", "wallbounce_service",
                             "wallbounce_local"]),
    "kubectl-wallbounce": (["wallbounce_kubectl"], ["kubectl-wallbounce"],
                           ["kubernetes", "kopf", "yaml", "openai", "anthropic", "google.genai", "wallbounce_operator",
                            "wallbounce_service", "wallbounce_local"]),
    "wallbounce-service": (["wallbounce_service"], ["wallbounce-service"],
                           ["kopf", "wallbounce_operator", "wallbounce_local", "rich"]),
    # the local stack runs the service and its simulators play the service's evaluation set: it needs the service
    "wallbounce-devstack": (["wallbounce_local", "wallbounce_sim"], ["wallbounce-local"],
                            ["kopf", "wallbounce_operator", "wallbounce_kubectl"]),
}


def declared(distribution: str) -> list[Requirement]:
    import tomllib

    project = tomllib.loads((ROOT / WORKSPACE[distribution] / "pyproject.toml").read_text())["project"]
    return [Requirement(r) for r in project.get("dependencies", [])]


def wanted(requirement: Requirement, extra: str) -> bool:
    """Whether a distribution asked for with ``extra`` ("" for none) needs ``requirement`` here."""
    if requirement.marker is None:
        return extra == ""
    return bool(requirement.marker.evaluate({"extra": extra}))


def closure(requirements: list[Requirement]) -> dict[str, md.Distribution]:
    """The installed distributions the requirements need, through every requirement of theirs (with the
    extras asked for; markers evaluated here), leaving out the workspace's own."""
    found: dict[str, md.Distribution] = {}
    extras_done: dict[str, set[str]] = {}
    queue = list(requirements)
    while queue:
        req = queue.pop()
        name = canonicalize_name(req.name)
        if name in WORKSPACE:
            continue
        new = {"", *req.extras} - extras_done.setdefault(name, set())
        if not new:
            continue
        extras_done[name] |= new
        dist = found.setdefault(name, md.distribution(name))
        for text in dist.requires or []:
            sub = Requirement(text)
            if any(wanted(sub, extra) for extra in new):
                queue.append(sub)
    return found


def link(dist: md.Distribution, site: Path) -> None:
    """Every file of ``dist`` in site-packages (its RECORD), linked into ``site``; scripts and .pth files left out."""
    for file in dist.files or []:
        if file.parts[0] == ".." or str(file).endswith(".pth"):
            continue
        source = Path(str(dist.locate_file(file)))
        if not source.is_file():
            continue
        target = site / file
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            target.symlink_to(source)


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each workspace distribution as a wheel, built as pip builds it."""
    out, sources = tmp_path_factory.mktemp("wheels"), tmp_path_factory.mktemp("sources")
    for folder in WORKSPACE.values():  # a copy: setuptools leaves build/ behind in the folder it builds
        shutil.copytree(ROOT / folder, sources / folder,
                        ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", "tests", "kind"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(out),
                    *(str(sources / folder) for folder in WORKSPACE.values())], check=True, timeout=600)
    built = {canonicalize_name(p.name.split("-")[0]): p for p in out.glob("*.whl")}
    assert set(built) == set(WORKSPACE), built
    return built


def workspace_closure(distribution: str) -> list[str]:
    """``distribution``, wallbounce-api and the workspace distributions they declare, through their declarations."""
    found, queue = [], [distribution, "wallbounce-api"]
    while queue:
        name = queue.pop()
        if name not in found:
            found.append(name)
            queue += [canonicalize_name(r.name) for r in declared(name) if canonicalize_name(r.name) in WORKSPACE]
    return found


def clean_venv(path: Path, distribution: str, wheels: dict[str, Path]) -> Path:
    """A virtualenv with ``distribution``, wallbounce-api, the workspace distributions they declare and the declared
    dependencies of all of them only; its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True, timeout=120)
    python = path / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    assert site != Path(sysconfig.get_paths()["purelib"])
    own = workspace_closure(distribution)
    for dist in closure([r for name in own for r in declared(name)]).values():
        link(dist, site)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
                    "--no-index", *(str(wheels[name]) for name in own)], check=True, timeout=300)
    return python


IMPORT_ALL = """
import importlib, importlib.util, pkgutil, sys
packages, forbidden = sys.argv[1].split(","), [m for m in sys.argv[2].split(",") if m]
for name in packages:
    package = importlib.import_module(name)
    for info in pkgutil.walk_packages(package.__path__, name + "."):
        importlib.import_module(info.name)
def importable(module):
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False
present = [m for m in forbidden if importable(m)]
assert not present, f"importable, and must not be: {present}"
print("imported", len(sys.modules), "modules")
"""


@pytest.mark.timeout(900)
@pytest.mark.parametrize("distribution", sorted(PRODUCTS))
def test_a_distribution_installs_and_imports_alone(distribution: str, wheels: dict[str, Path],
                                                   tmp_path: Path) -> None:
    packages, scripts, forbidden = PRODUCTS[distribution]
    python = clean_venv(tmp_path / "venv", distribution, wheels)
    result = subprocess.run([str(python), "-c", IMPORT_ALL, ",".join(packages), ",".join(forbidden)],
                            capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "imported" in result.stdout
    for script in scripts:
        ran = subprocess.run([str(python.parent / script), "--help"], capture_output=True, text=True, timeout=120,
                             cwd=tmp_path)
        assert ran.returncode == 0 and "usage" in ran.stdout.lower(), (script, ran.stderr[-2000:])


def test_the_operator_closure_holds_no_llm_client_redis_or_rich() -> None:
    """The same promise read from the metadata: nothing the operator declares pulls them in."""
    names = set(closure(declared("wallbounce-operator") + declared("wallbounce-api")))
    assert not names & {"openai", "anthropic", "google-genai", "redis", "rich", "cryptography", "trustme"}, names
