"""Every overlay renders with `kubectl kustomize` and every object is valid for Kubernetes (offline)."""

from __future__ import annotations

import copy

from .manifests import load_check, named, of_kind

check = load_check()

EXPECTED = {
    ("Deployment", "tts-gateway"),
    ("Service", "tts-gateway"),
    ("HorizontalPodAutoscaler", "tts-gateway"),
    ("PodDisruptionBudget", "tts-gateway"),
    ("Deployment", "tts-consumer"),
    ("Deployment", "tts-agent-short"),
    ("Deployment", "tts-agent-medium-long"),
    ("ScaledObject", "tts-agent-short"),
    ("ScaledObject", "tts-agent-medium-long"),
    ("Job", "tts-migrate"),
    ("Job", "tts-pulsar-subscriptions"),
    ("PersistentVolumeClaim", "tts-media"),
}


def test_every_object_is_valid_for_the_oldest_and_newest_kubernetes(objects: tuple[dict, ...]) -> None:
    assert check.validation_errors(objects) == []


def test_every_part_of_the_service_is_there(objects: tuple[dict, ...]) -> None:
    present = {(obj["kind"], obj["metadata"]["name"]) for obj in objects}
    assert present >= EXPECTED
    assert of_kind(objects, "ConfigMap"), "the settings ConfigMap is missing"


def test_the_validator_rejects_unknown_fields_and_wrong_types(objects: tuple[dict, ...]) -> None:
    # Control: the check must be able to fail, or a green run means nothing.
    deployment = copy.deepcopy(named(objects, "Deployment", "tts-gateway"))
    deployment["spec"]["template"]["spec"]["containers"][0]["resourcez"] = {}
    job = copy.deepcopy(named(objects, "Job", "tts-migrate"))
    job["spec"]["backoffLimit"] = "four"
    errors = check.validation_errors([deployment, job])
    assert any("resourcez" in line for line in errors)
    assert any("Job/tts-migrate" in line and "four" in line for line in errors)


def test_the_raw_base_files_are_valid_too() -> None:
    # What check.py falls back to on a machine without kubectl.
    objects = check.raw_base_objects()
    assert len(objects) >= 10
    assert check.validation_errors(objects) == []
