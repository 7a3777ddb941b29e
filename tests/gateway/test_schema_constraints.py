"""The OpenAPI schema states the limits the API enforces, so clients and fuzzers see the real contract."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(settings: Any) -> dict[str, Any]:
    settings.TTS_MAX_TEXT_CHARS = 12345
    settings.TTS_MAX_BATCH = 17
    response = Client().get("/api/schema", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    return response.json()


def test_job_input_states_text_voice_and_params_limits(schema: dict[str, Any]) -> None:
    job_input = schema["components"]["schemas"]["JobInput"]
    assert job_input["required"] == ["text"]
    text = job_input["properties"]["text"]
    assert (text["type"], text["minLength"], text["maxLength"]) == ("string", 1, 12345)  # the configured limit
    assert "en_US-joe-medium" in job_input["properties"]["voice"]["enum"]
    params = job_input["properties"]["params"]
    assert params["additionalProperties"] is False
    ranges = {name: (p["type"], p["minimum"], p.get("maximum")) for name, p in params["properties"].items()}
    assert ranges == {
        "length_scale": ("number", 0.25, 4.0),
        "noise_scale": ("number", 0.0, 2.0),
        "noise_w": ("number", 0.0, 2.0),
        "speaker": ("integer", 0, None),
        "seed": ("integer", 0, 2**31 - 1),
    }


def test_batch_size_and_list_paging(schema: dict[str, Any]) -> None:
    jobs = schema["components"]["schemas"]["JobBatchInput"]["properties"]["jobs"]
    assert (jobs["minItems"], jobs["maxItems"]) == (1, 17)
    parameters = {p["name"]: p["schema"] for p in schema["paths"]["/api/v1/jobs"]["get"]["parameters"]}
    assert parameters["page_size"] == {"type": "integer", "minimum": 1, "maximum": 100}
    assert set(parameters["status"]["enum"]) == {"queued", "running", "succeeded", "failed", "cancelled"}


def test_every_operation_documents_its_errors(schema: dict[str, Any]) -> None:
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert {"401", "429"} <= set(responses), (method, path)
            assert "Retry-After" in responses["429"]["headers"]
            if "requestBody" in operation:
                assert {"400", "413", "415"} <= set(responses), (method, path)
    assert "415" not in schema["paths"]["/api/v1/jobs/{job_id}/cancel"]["post"]["responses"]  # reads no body
    assert schema["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
