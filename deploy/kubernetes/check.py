"""Render every kustomize overlay and validate each object against the Kubernetes schemas, offline.

    .venv/bin/python deploy/kubernetes/check.py        # what `make k8s-check` and `make test` run

`kubectl kustomize` renders (kubectl is preinstalled on these machines; Debian's
`kubernetes-client` package is 1.20, whose kustomize cannot read these files, so it is no
fallback). Without kubectl the raw base files are validated instead and the script says so.
`kubernetes-validate` bundles the schemas. It knows no custom resources: KEDA's ScaledObjects
are checked against the fields KEDA documents by tests/deploy/test_keda_scaledobjects.py.
Exit status 0 when every object is valid, 1 otherwise.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml

HERE = Path(__file__).resolve().parent
BASE = HERE / "base"
OVERLAYS = HERE / "overlays"
# The oldest Kubernetes the manifests target (KEDA 2.16 supports 1.29 and later) and the newest
# schema bundled with kubernetes-validate.
KUBERNETES_VERSIONS = ("1.29.0", kubernetes_validate.latest_version())
# API groups of custom resources: no schema in kubernetes-validate; a project test checks them.
CUSTOM_RESOURCE_GROUPS = ("keda.sh",)


class RenderError(RuntimeError):
    """`kubectl kustomize` failed or is missing."""


def overlay_dirs() -> list[Path]:
    return sorted(path for path in OVERLAYS.iterdir() if (path / "kustomization.yaml").is_file())


def kubectl() -> str | None:
    return shutil.which("kubectl")


def render(directory: Path) -> list[dict[str, Any]]:
    """The objects `kubectl kustomize directory` produces."""
    binary = kubectl()
    if binary is None:
        raise RenderError("kubectl is not installed: cannot render kustomize overlays")
    result = subprocess.run(
        [binary, "kustomize", str(directory)], capture_output=True, text=True, timeout=120, check=False
    )
    if result.returncode != 0:
        raise RenderError(f"kubectl kustomize {directory} failed: {result.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def raw_base_objects() -> list[dict[str, Any]]:
    """The base's resource files as written (no generators, no patches): the fallback without kubectl."""
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    objects: list[dict[str, Any]] = []
    for name in kustomization["resources"]:
        objects.extend(doc for doc in yaml.safe_load_all((BASE / name).read_text()) if doc)
    return objects


def is_custom_resource(obj: dict[str, Any]) -> bool:
    return str(obj.get("apiVersion", "")).split("/")[0] in CUSTOM_RESOURCE_GROUPS


def describe(obj: dict[str, Any]) -> str:
    return f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"


def validation_errors(objects: Iterable[dict[str, Any]], versions: Iterable[str] = KUBERNETES_VERSIONS) -> list[str]:
    """One line per object that fails strict validation (unknown fields rejected) for a version."""
    errors: list[str] = []
    for obj in objects:
        if is_custom_resource(obj):
            continue
        for version in versions:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                path = "/".join(str(part) for part in error.path)
                errors.append(f"{describe(obj)} (Kubernetes {version}): {error.message} at {path or '/'}")
            except kubernetes_validate.SchemaNotFoundError as error:
                errors.append(f"{describe(obj)} (Kubernetes {version}): no schema: {error}")
    return errors


def main() -> int:
    failures = 0
    if kubectl() is None:
        print(
            "k8s-check: kubectl not found, overlays NOT rendered; validating the raw base files only. "
            "Install kubectl (kustomize 5) to check the overlays."
        )
        sources = {"base (raw files)": raw_base_objects()}
    else:
        sources = {}
        for directory in overlay_dirs():
            try:
                sources[f"overlays/{directory.name}"] = render(directory)
            except RenderError as error:
                print(f"k8s-check: {error}")
                failures += 1
    versions = " and ".join(KUBERNETES_VERSIONS)
    for name, objects in sources.items():
        errors = validation_errors(objects)
        custom = sum(1 for obj in objects if is_custom_resource(obj))
        if errors:
            failures += len(errors)
            print(f"k8s-check: {name}: {len(errors)} invalid:")
            for line in errors:
                print(f"  {line}")
        else:
            print(
                f"k8s-check: {name}: {len(objects) - custom} objects valid for Kubernetes {versions}; "
                f"{custom} KEDA objects checked by tests/deploy"
            )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
