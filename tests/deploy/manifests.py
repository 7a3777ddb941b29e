"""The rendered Kubernetes manifests and the environment variables the code reads, for the tests here."""

from __future__ import annotations

import ast
import functools
import importlib.util
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY = REPO_ROOT / "deploy" / "kubernetes"

# What each kind of process runs: the packages whose environment reads it must be given.
GATEWAY_SOURCES = ("tts_project", "gateway", "vits", "tts_contracts", "tts_runtime", "manage.py")
AGENT_SOURCES = ("synthesis_agent", "vits", "tts_contracts", "tts_runtime")
# Settings for the test suite only; never deployed.
NOT_DEPLOYED = ("tts_project/settings/test.py",)

_ENV_NAME = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$")
# os.environ methods that read (setdefault keeps an operator's value); pop only removes.
_ENVIRON_READS = {"get", "setdefault", "__getitem__"}


def load_check() -> ModuleType:
    """deploy/kubernetes/check.py, which is a script, not a package module."""
    spec = importlib.util.spec_from_file_location("k8s_check", DEPLOY / "check.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.cache
def rendered(overlay: str) -> tuple[dict[str, Any], ...]:
    """The objects of one overlay, rendered once per test session."""
    check = load_check()
    return tuple(check.render(DEPLOY / "overlays" / overlay))


def overlay_names() -> list[str]:
    return sorted(path.name for path in (DEPLOY / "overlays").iterdir() if (path / "kustomization.yaml").is_file())


def of_kind(objects: Iterable[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [obj for obj in objects if obj.get("kind") == kind]


def named(objects: Iterable[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    for obj in of_kind(objects, kind):
        if obj["metadata"]["name"] == name:
            return obj
    raise LookupError(f"no {kind}/{name} in the rendered manifests")


def workloads(objects: Iterable[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(Deployment or Job, its main container) for every workload."""
    for obj in objects:
        if obj.get("kind") in ("Deployment", "Job"):
            for container in obj["spec"]["template"]["spec"]["containers"]:
                yield obj, container


def container_env(objects: Iterable[dict[str, Any]], container: dict[str, Any]) -> dict[str, str | None]:
    """Every variable the container gets: ConfigMap/Secret keys through envFrom, then env entries.

    A value is None where it comes from a Secret or a field reference (not known until run time).
    """
    objects = list(objects)
    env: dict[str, str | None] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(named(objects, "ConfigMap", source["configMapRef"]["name"])["data"])
        elif "secretRef" in source:
            secret = named(objects, "Secret", source["secretRef"]["name"])
            env.update(dict.fromkeys({**secret.get("data", {}), **secret.get("stringData", {})}))
    for entry in container.get("env", []):
        env[entry["name"]] = entry.get("value") if "valueFrom" not in entry else None
    return env


def command_option(container: dict[str, Any], option: str) -> str:
    """The value after `option` in the container's command and args."""
    argv = [*container.get("command", []), *container.get("args", [])]
    for index, arg in enumerate(argv):
        if arg == option and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith(option + "="):
            return arg.split("=", 1)[1]
    raise LookupError(f"{option} not in the command of container {container['name']}")


# --- Environment variables the code reads ---------------------------------------------------


def _python_files(sources: Iterable[str]) -> Iterator[Path]:
    for source in sources:
        path = REPO_ROOT / source
        files = [path] if path.is_file() else sorted(path.rglob("*.py"))
        for file in files:
            if str(file.relative_to(REPO_ROOT)) not in NOT_DEPLOYED:
                yield file


def _module_constants(tree: ast.Module) -> dict[str, str]:
    """`NAME = "TEXT"` at module level: environment names are often kept in constants."""
    constants: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    constants[target.id] = node.value.value
    return constants


def _is_os_environ(node: ast.expr) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "environ" and isinstance(node.value, ast.Name)


def _name_arguments(call: ast.Call, constants: dict[str, str]) -> Iterator[str]:
    for arg in call.args:
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            value = arg.value
        elif isinstance(arg, ast.Name) and arg.id in constants:
            value = constants[arg.id]
        else:
            continue
        if _ENV_NAME.match(value):
            yield value


def env_reads_in(tree: ast.Module) -> set[str]:
    """Names read through django-environ's `env`, an `env` mapping, `os.environ` or `os.getenv`."""
    constants = _module_constants(tree)
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and _is_os_environ(node.value):
            names.update(_name_arguments(ast.Call(func=node.value, args=[node.slice], keywords=[]), constants))
        if not isinstance(node, ast.Call):
            continue
        # Helpers that take the mapping, `_int(env, "TTS_MAX_ATTEMPTS", 3)`, read through it too.
        takes_env = any(isinstance(arg, ast.Name) and arg.id == "env" for arg in node.args)
        if takes_env or _reads_environment(node.func):
            names.update(_name_arguments(node, constants))
    return names


def _reads_environment(func: ast.expr) -> bool:
    """`env.<anything>(...)` (django-environ or a mapping), `os.environ.get(...)`, `os.getenv(...)`."""
    if not isinstance(func, ast.Attribute):
        return False
    receiver = func.value
    if isinstance(receiver, ast.Name):
        return receiver.id == "env" or (receiver.id == "os" and func.attr == "getenv")
    return _is_os_environ(receiver) and func.attr in _ENVIRON_READS


@functools.cache
def env_read_by(sources: tuple[str, ...]) -> frozenset[str]:
    names: set[str] = set()
    for file in _python_files(sources):
        names |= env_reads_in(ast.parse(file.read_text(), filename=str(file)))
    return frozenset(names)


def contracts_settings() -> set[str]:
    """The variable names in the Environment table of docs/CONTRACTS.md."""
    text = (REPO_ROOT / "docs" / "CONTRACTS.md").read_text()
    section = text.split("## Environment", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            first_cell = line.split("|")[1]
            names.update(re.findall(r"`([A-Z][A-Z0-9_]+)`", first_cell))
    return names
