"""The platform values agree with the names the service's manifests use to reach it."""

from __future__ import annotations

import base64
from urllib.parse import urlsplit

import pytest
import yaml

from .manifests import DEPLOY, container_env, named, of_kind, workloads

PLATFORM = DEPLOY / "platform"


def load(name: str) -> dict:
    return yaml.safe_load((PLATFORM / name).read_text())


def test_every_platform_file_is_yaml_with_content() -> None:
    files = sorted(PLATFORM.glob("*.yaml"))
    assert len(files) >= 5
    for path in files:
        assert isinstance(yaml.safe_load(path.read_text()), dict), path.name


def test_database_url_comes_from_the_cloudnativepg_cluster_secret(objects: tuple[dict, ...]) -> None:
    cluster = load("postgres-cluster.yaml")
    assert cluster["kind"] == "Cluster" and cluster["apiVersion"] == "postgresql.cnpg.io/v1"
    # CloudNativePG names the application secret `<cluster>-app`; its key `uri` is a full URL.
    expected = {"name": f"{cluster['metadata']['name']}-app", "key": "uri"}
    refs = [
        entry["valueFrom"]["secretKeyRef"]
        for _obj, container in workloads(objects)
        for entry in container.get("env", [])
        if entry["name"] == "DATABASE_URL"
    ]
    assert refs and all(ref == expected for ref in refs)


def test_the_service_reaches_pulsar_through_the_charts_proxy(objects: tuple[dict, ...]) -> None:
    values = load("pulsar-values.yaml")
    assert values["components"]["proxy"] is True
    release = "pulsar"  # the release name of the documented `helm upgrade --install pulsar ...`
    proxy_host = f"{release}-proxy.{values['namespace']}.svc.cluster.local"
    config = of_kind(objects, "ConfigMap")[0]["data"]
    assert urlsplit(config["PULSAR_URL"]).hostname == proxy_host
    for so in of_kind(objects, "ScaledObject"):
        for trigger in so["spec"]["triggers"]:
            assert urlsplit(trigger["metadata"]["adminURL"]).hostname == proxy_host
    # Unpartitioned topics, as the triggers' isPartitionedTopic says; never deleted while idle.
    broker = values["broker"]["configData"]
    assert broker["allowAutoTopicCreationType"] == "non-partitioned"
    assert broker["brokerDeleteInactiveTopicsEnabled"] == "false"


def test_dev_redis_url_names_the_charts_service(objects: tuple[dict, ...]) -> None:
    secrets = of_kind(objects, "Secret")
    if not secrets:
        pytest.skip("this overlay generates no secret: tts-secrets comes from the operator's secret store")
    gateway = named(objects, "Deployment", "tts-gateway")["spec"]["template"]["spec"]["containers"][0]
    assert "REDIS_URL" in container_env(objects, gateway)
    url = base64.b64decode(secrets[0]["data"]["REDIS_URL"]).decode()
    # The Bitnami chart's release `tts-redis` (documented command) serves at `<release>-master`.
    assert urlsplit(url).hostname.startswith("tts-redis-master.")
    assert load("redis-values-dev.yaml")["auth"]["enabled"] is False and urlsplit(url).password is None
