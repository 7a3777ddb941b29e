from __future__ import annotations

from pathlib import Path

import pytest

from synthesis_agent.config import AgentConfig, ConfigError, parse_classes
from tts_contracts import defaults


def test_classes_are_served_in_priority_order() -> None:
    assert parse_classes("long, short") == ("short", "long")
    with pytest.raises(ConfigError):
        parse_classes("short,huge")
    with pytest.raises(ConfigError):
        parse_classes("")


def test_topics_and_defaults_from_environment() -> None:
    config = AgentConfig.from_env(
        {"TTS_TOPIC_PREFIX": "x", "PULSAR_TENANT": "t", "PULSAR_NAMESPACE": "n", "TTS_CACHE_ENABLED": "0"},
        classes="medium,short",
        agent_id="a1",
    )
    assert config.queues == ("short", "medium")
    assert config.topics.job_topic("short") == "persistent://t/n/x-jobs-short"
    assert config.topics.dead_letter_topic("medium") == "persistent://t/n/x-jobs-medium-dlq"
    assert config.topics.events_topic == "persistent://t/n/x-events"
    assert config.cache_enabled is False
    assert config.cache_dir == Path("var/agent-cache")
    assert config.max_attempts == 3 and config.job_time_limit_s == 900 and config.metrics_port == 9200
    assert config.default_voice == defaults.DEFAULT_VOICE and config.pulsar_url == defaults.PULSAR_URL
    assert config.heartbeat_interval_s == 10 and config.claim_ttl_s == 30
    assert config.voices_dir is None and config.vits_compile is False


def test_voice_settings_come_from_the_environment() -> None:
    """vits reads no environment: the agent's configuration carries what its loader passes on."""
    config = AgentConfig.from_env({"TTS_VOICES_DIR": "/voices", "TTS_VITS_COMPILE": "1"}, agent_id="a")
    assert config.voices_dir == Path("/voices") and config.vits_compile is True
    assert config.vits_row_engine == "auto"
    assert AgentConfig.from_env({"TTS_VITS_ROW_ENGINE": "oneDNN"}, agent_id="a").vits_row_engine == "onednn"
    with pytest.raises(ConfigError, match="TTS_VITS_ROW_ENGINE must be one of auto, mkl, onednn, got 'blas'"):
        AgentConfig.from_env({"TTS_VITS_ROW_ENGINE": "blas"}, agent_id="a")
    assert config.vits_conv_engine == "auto"
    assert AgentConfig.from_env({"TTS_VITS_CONV_ENGINE": "Winograd"}, agent_id="a").vits_conv_engine == "winograd"
    with pytest.raises(ConfigError, match="TTS_VITS_CONV_ENGINE must be one of auto, onednn, winograd, got 'fft'"):
        AgentConfig.from_env({"TTS_VITS_CONV_ENGINE": "fft"}, agent_id="a")


def test_the_row_engine_names_match_vits() -> None:
    from synthesis_agent.config import ROW_ENGINE_CHOICES
    from vits.model.engine import ROW_ENGINES

    assert ("auto", *ROW_ENGINES) == ROW_ENGINE_CHOICES


def test_the_conv_engine_names_match_vits() -> None:
    from synthesis_agent.config import CONV_ENGINE_CHOICES
    from vits.model.winograd import CONV_ENGINES

    assert ("auto", *CONV_ENGINES) == CONV_ENGINE_CHOICES


def test_heartbeat_interval_from_environment() -> None:
    config = AgentConfig.from_env({"TTS_HEARTBEAT_INTERVAL_S": "2.5"}, agent_id="a")
    assert config.heartbeat_interval_s == 2.5 and config.claim_ttl_s == 7.5
    with pytest.raises(ConfigError, match="TTS_HEARTBEAT_INTERVAL_S"):
        AgentConfig.from_env({"TTS_HEARTBEAT_INTERVAL_S": "0"}, agent_id="a")


def test_fifo_mode_consumes_one_queue() -> None:
    config = AgentConfig.from_env({"TTS_SCHEDULING": "fifo"}, classes="short,long", agent_id="a")
    assert config.queues == ("fifo",)
    assert config.topics.job_topic("fifo").endswith("/tts-jobs-fifo")


def test_bad_values_are_reported() -> None:
    with pytest.raises(ConfigError, match="TTS_MAX_ATTEMPTS"):
        AgentConfig.from_env({"TTS_MAX_ATTEMPTS": "many"})
    with pytest.raises(ConfigError, match="TTS_SCHEDULING"):
        AgentConfig.from_env({"TTS_SCHEDULING": "random"})


def test_pulsar_auth_token_comes_from_the_environment() -> None:
    assert AgentConfig.from_env({}, agent_id="a").pulsar_auth_token is None
    config = AgentConfig.from_env({"PULSAR_AUTH_TOKEN": " eyJ.x.y \n"}, agent_id="a")
    assert config.pulsar_auth_token == "eyJ.x.y"


def test_consumer_id_spread_is_off_unless_the_embedded_broker_asks_for_it() -> None:
    assert AgentConfig.from_env({}, agent_id="a").consumer_id_spread == 0
    assert AgentConfig.from_env({"TTS_PULSAR_CONSUMER_ID_SPREAD": "64"}, agent_id="a").consumer_id_spread == 64
    assert AgentConfig.from_env({"TTS_PULSAR_CONSUMER_ID_SPREAD": "-3"}, agent_id="a").consumer_id_spread == 0


def test_a_voice_pool_agent_consumes_its_voice_topics_and_preloads_the_voice() -> None:
    env = {"TTS_DEDICATED_VOICES": "en_GB-extra-medium,other", "TTS_TOPIC_PREFIX": "x"}
    config = AgentConfig.from_env(env, classes="short,long", agent_id="a", voice="en_GB-extra-medium")
    assert config.voice == "en_GB-extra-medium" and config.preload_voice == "en_GB-extra-medium"
    assert [config.job_topic(q) for q in config.queues] == [
        "persistent://public/default/x-jobs-short-en_GB-extra-medium",
        "persistent://public/default/x-jobs-long-en_GB-extra-medium",
    ]
    # TTS_AGENT_VOICE is the environment's way to say the same; --voice wins.
    assert AgentConfig.from_env({**env, "TTS_AGENT_VOICE": "other"}, agent_id="a").voice == "other"
    assert AgentConfig.from_env(
        {**env, "TTS_AGENT_VOICE": "other"}, agent_id="a", voice="en_GB-extra-medium"
    ).voice == ("en_GB-extra-medium")


def test_a_shared_agent_consumes_the_shared_topics() -> None:
    config = AgentConfig.from_env({"TTS_DEDICATED_VOICES": "en_GB-extra-medium"}, classes="short", agent_id="a")
    assert config.voice is None and config.preload_voice == defaults.DEFAULT_VOICE
    assert config.job_topic("short") == "persistent://public/default/tts-jobs-short"


def test_an_agent_for_a_voice_without_a_pool_refuses_to_start() -> None:
    with pytest.raises(ConfigError, match=r"'en_GB-extra-medium', which is not in TTS_DEDICATED_VOICES \(empty\)"):
        AgentConfig.from_env({}, agent_id="a", voice="en_GB-extra-medium")
    with pytest.raises(ConfigError, match="not in TTS_DEDICATED_VOICES"):
        AgentConfig.from_env({"TTS_DEDICATED_VOICES": "other", "TTS_AGENT_VOICE": "typo"}, agent_id="a")
    with pytest.raises(ConfigError, match="TTS_DEDICATED_VOICES: voice id 'a b'"):
        AgentConfig.from_env({"TTS_DEDICATED_VOICES": "a b"}, agent_id="a")


def test_the_agent_command_exits_2_for_a_voice_without_a_pool(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import synthesis_agent.__main__ as entry

    # configure_logging would replace the root handlers of the whole test process.
    monkeypatch.setattr(entry, "configure_logging", lambda level: None)
    monkeypatch.delenv("TTS_DEDICATED_VOICES", raising=False)
    monkeypatch.delenv("TTS_AGENT_VOICE", raising=False)
    assert entry.main(["--voice", "en_GB-extra-medium", "--metrics-port", "0"]) == 2
    assert "not in TTS_DEDICATED_VOICES" in caplog.text
