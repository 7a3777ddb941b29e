"""Each agent group scales with KEDA's Apache Pulsar scaler on the subscription its agents consume.

KEDA's CRD schema is not available offline, so the fields are checked against what KEDA documents
(keda.sh/docs/2.16/concepts/scaling-deployments and keda.sh/docs/2.16/scalers/pulsar, the same
since 2.12): an unknown field here would be dropped or refused by a real cluster.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest

from tts_contracts import AGENT_SUBSCRIPTION, FIFO_QUEUE, LENGTH_CLASSES, Topics, parse_dedicated_voices

from .manifests import command_option, container_env, named, of_kind, workloads

# ScaledObject spec fields (KEDA "Scaling Deployments": ScaledObject specification).
SPEC_FIELDS = {
    "scaleTargetRef",
    "pollingInterval",
    "cooldownPeriod",
    "initialCooldownPeriod",
    "idleReplicaCount",
    "minReplicaCount",
    "maxReplicaCount",
    "fallback",
    "advanced",
    "triggers",
}
SCALE_TARGET_FIELDS = {"apiVersion", "kind", "name", "envSourceContainerName"}
ADVANCED_FIELDS = {"restoreToOriginalReplicaCount", "horizontalPodAutoscalerConfig", "scalingModifiers"}
TRIGGER_FIELDS = {"type", "name", "metadata", "authenticationRef", "metricType", "useCachedMetrics"}
# The `pulsar` trigger's metadata (KEDA docs, scalers/pulsar: trigger specification, parameter
# list and TLS). Authentication secrets go through a TriggerAuthentication, never here.
PULSAR_METADATA = {
    "adminURL",
    "topic",
    "isPartitionedTopic",
    "subscription",
    "msgBacklogThreshold",
    "activationMsgBacklogThreshold",
    "authModes",
    "oauthTokenURI",
    "scope",
    "clientID",
    "endpointParams",
    "tls",
}
PULSAR_REQUIRED = {"adminURL", "topic", "subscription"}
TOPIC_FORMAT = re.compile(r"^persistent://[^/]+/[^/]+/[^/]+$")
# The SIGTERM path checks the grace period between sentences: one more sentence and closing the
# client come on top (docs/SCALING.md).
DRAIN_MARGIN_S = 10


def scaled_objects(objects: tuple[dict, ...]) -> list[dict[str, Any]]:
    return of_kind(objects, "ScaledObject")


def agent_deployments(objects: tuple[dict, ...]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [
        (obj, container)
        for obj, container in workloads(objects)
        if obj["kind"] == "Deployment" and obj["metadata"]["labels"].get("app.kubernetes.io/component") == "agent"
    ]


def scaled_object_for(objects: tuple[dict, ...], deployment: str) -> dict[str, Any]:
    matches = [so for so in scaled_objects(objects) if so["spec"]["scaleTargetRef"]["name"] == deployment]
    assert len(matches) == 1, f"{deployment}: {len(matches)} ScaledObjects target it, want exactly one"
    return matches[0]


def test_scaled_objects_use_only_documented_fields(objects: tuple[dict, ...]) -> None:
    assert scaled_objects(objects), "no ScaledObject rendered"
    for so in scaled_objects(objects):
        name = so["metadata"]["name"]
        assert so["apiVersion"] == "keda.sh/v1alpha1", name
        spec = so["spec"]
        assert set(spec) <= SPEC_FIELDS, f"{name}: unknown spec fields {set(spec) - SPEC_FIELDS}"
        assert set(spec["scaleTargetRef"]) <= SCALE_TARGET_FIELDS, name
        assert set(spec.get("advanced", {})) <= ADVANCED_FIELDS, name
        for key in ("pollingInterval", "cooldownPeriod", "minReplicaCount", "maxReplicaCount"):
            assert isinstance(spec[key], int) and spec[key] >= 0, f"{name}: {key}"
        assert spec["maxReplicaCount"] >= 1 and spec["minReplicaCount"] <= spec["maxReplicaCount"], name
        named(objects, "Deployment", spec["scaleTargetRef"]["name"])  # the target exists
        assert spec["triggers"], f"{name}: no trigger"
        for trigger in spec["triggers"]:
            assert set(trigger) <= TRIGGER_FIELDS, f"{name}: unknown trigger fields {set(trigger) - TRIGGER_FIELDS}"
            assert trigger["type"] == "pulsar", name
            metadata = trigger["metadata"]
            unknown = set(metadata) - PULSAR_METADATA
            assert not unknown, f"{name}: fields the pulsar scaler does not document: {unknown}"
            assert set(metadata) >= PULSAR_REQUIRED, f"{name}: missing {PULSAR_REQUIRED - set(metadata)}"
            # Trigger metadata is a map of strings in KEDA's CRD: a YAML number is refused.
            assert all(isinstance(value, str) for value in metadata.values()), f"{name}: non-string metadata"
            assert int(metadata["msgBacklogThreshold"]) >= 1, name
            assert int(metadata.get("activationMsgBacklogThreshold", "0")) >= 0, name
            assert metadata.get("isPartitionedTopic", "false") in ("true", "false"), name
            assert TOPIC_FORMAT.match(metadata["topic"]), f"{name}: topic {metadata['topic']!r}"
            assert urlsplit(metadata["adminURL"]).scheme in ("http", "https"), name


def agent_voice(container: dict[str, Any]) -> str | None:
    """The voice pool's `--voice` (or TTS_AGENT_VOICE in its env entries); None for a shared agent."""
    try:
        return command_option(container, "--voice")
    except LookupError:
        values = [entry.get("value") for entry in container.get("env", []) if entry["name"] == "TTS_AGENT_VOICE"]
        return values[0] if values and values[0] else None


def test_every_agent_group_scales_on_the_topics_and_subscription_its_agents_consume(objects: tuple[dict, ...]) -> None:
    """The topics are computed as the agent computes them (`Topics.job_topic(queue, voice)`) from
    the rendered ConfigMap and the command: shared groups and voice pools alike."""
    served: dict[str | None, set[str]] = {}
    dedicated: set[frozenset[str]] = set()
    for deployment, container in agent_deployments(objects):
        env = container_env(objects, container)
        topics = Topics(tenant=env["PULSAR_TENANT"], namespace=env["PULSAR_NAMESPACE"], prefix=env["TTS_TOPIC_PREFIX"])
        dedicated.add(parse_dedicated_voices(env.get("TTS_DEDICATED_VOICES") or ""))
        classes = command_option(container, "--classes").split(",")
        voice = agent_voice(container)
        served.setdefault(voice, set()).update(classes)
        queues = [FIFO_QUEUE] if env["TTS_SCHEDULING"] == "fifo" else classes
        so = scaled_object_for(objects, deployment["metadata"]["name"])
        triggers = so["spec"]["triggers"]
        assert {t["metadata"]["topic"] for t in triggers} == {topics.job_topic(q, voice) for q in queues}
        assert {t["metadata"]["subscription"] for t in triggers} == {AGENT_SUBSCRIPTION}
        # KEDA asks the same Pulsar the agents connect to.
        broker_host = urlsplit(env["PULSAR_URL"]).hostname
        assert {urlsplit(t["metadata"]["adminURL"]).hostname for t in triggers} == {broker_host}
    assert len(dedicated) == 1, "agents disagree on TTS_DEDICATED_VOICES"
    voices = next(iter(dedicated))
    # Every class of the shared topics and of every dedicated voice's topics has agents, and no
    # pool waits on topics the gateway never publishes to.
    assert set(served) == {None, *voices}, f"voices with a pool {set(served) - {None}}, dedicated {set(voices)}"
    for voice, classes in served.items():
        missing = set(LENGTH_CLASSES) - classes
        assert not missing, f"voice {voice or '(shared topics)'}: no agent for {missing}"


def test_the_gateway_and_the_agents_share_one_voice_routing(objects: tuple[dict, ...]) -> None:
    """The gateway publishes with the TTS_DEDICATED_VOICES the agents consume by: one value everywhere."""
    values = set()
    for obj, container in workloads(objects):
        if obj["metadata"]["labels"].get("app.kubernetes.io/component") in ("gateway", "consumer", "agent"):
            values.add(container_env(objects, container).get("TTS_DEDICATED_VOICES"))
    assert len(values) == 1 and None not in values, values


def test_voice_pool_object_names_are_dns_labels(objects: tuple[dict, ...]) -> None:
    for deployment, container in agent_deployments(objects):
        if agent_voice(container) is not None:
            name = deployment["metadata"]["name"]
            assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name) and len(name) <= 63, name


def test_the_short_group_never_scales_to_zero(objects: tuple[dict, ...]) -> None:
    # Voice pools may: a rarely used voice waits for a cold start (issue 10); shared short work never.
    for deployment, container in agent_deployments(objects):
        if "short" in command_option(container, "--classes").split(",") and agent_voice(container) is None:
            assert scaled_object_for(objects, deployment["metadata"]["name"])["spec"]["minReplicaCount"] >= 1


def test_the_autoscalers_own_the_replica_counts(objects: tuple[dict, ...]) -> None:
    scaled = {so["spec"]["scaleTargetRef"]["name"] for so in scaled_objects(objects)}
    scaled |= {hpa["spec"]["scaleTargetRef"]["name"] for hpa in of_kind(objects, "HorizontalPodAutoscaler")}
    assert {deployment["metadata"]["name"] for deployment, _ in agent_deployments(objects)} <= scaled
    for name in scaled:
        deployment = named(objects, "Deployment", name)
        assert "replicas" not in deployment["spec"], f"{name}: an applied replica count would fight the autoscaler"


def test_agents_drain_within_their_termination_grace_period(objects: tuple[dict, ...]) -> None:
    for deployment, container in agent_deployments(objects):
        grace = float(container_env(objects, container)["TTS_SHUTDOWN_GRACE_S"] or 0)
        assert grace > 0
        period = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        assert period >= grace + DRAIN_MARGIN_S, f"{deployment['metadata']['name']}: {period} s < {grace} + margin"


def cpu_cores(quantity: str | int) -> float:
    text = str(quantity)
    return int(text[:-1]) / 1000 if text.endswith("m") else float(text)


@pytest.mark.parametrize("field", ["requests", "limits"])
def test_agent_cpu_matches_its_torch_threads(objects: tuple[dict, ...], field: str) -> None:
    for _deployment, container in agent_deployments(objects):
        threads = int(container_env(objects, container)["TTS_AGENT_THREADS"] or 0)
        cpu = cpu_cores(container["resources"][field]["cpu"])
        if field == "requests":
            assert cpu == threads, f"{container['name']}: requests {cpu} CPU for {threads} threads"
        else:
            assert threads <= cpu <= threads + 1, f"{container['name']}: limit {cpu} CPU for {threads} threads"
