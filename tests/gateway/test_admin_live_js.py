"""The admin page's script: it follows the SSE stream and moves the bar (run under Node, a fake DOM)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "gateway" / "static" / "gateway" / "job_live.js"

HARNESS = """
const bar = {value: 0}, label = {textContent: ""};
const box = {dataset: {eventsUrl: "/api/v1/jobs/abc/events"}, querySelector: (s) => (s === "progress" ? bar : label)};
const sources = [];
class FakeEventSource {
  constructor(url) { this.url = url; this.listeners = {}; this.closed = false; sources.push(this); }
  addEventListener(name, fn) { this.listeners[name] = fn; }
  close() { this.closed = true; }
}
global.window = {EventSource: FakeEventSource};
global.EventSource = FakeEventSource;
global.document = {getElementById: (id) => (id === "job-live-progress" ? box : null)};
require(process.argv[2]);
const source = sources[0];
const seen = [];
const state = {status: "running", progress: 0.5, sentences_done: 2, sentence_count: 4, audio_seconds: 3.2};
source.listeners.progress({data: JSON.stringify(state)});
seen.push({value: bar.value, text: label.textContent, closed: source.closed});
source.listeners.done({data: JSON.stringify({status: "succeeded", error: ""})});
seen.push({value: bar.value, text: label.textContent, closed: source.closed});
console.log(JSON.stringify({url: source.url, seen}));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js")
def test_the_page_script_follows_progress_until_done(tmp_path: Path) -> None:
    harness = tmp_path / "harness.js"
    harness.write_text(HARNESS)
    result = subprocess.run(["node", str(harness), str(SCRIPT)], capture_output=True, text=True, timeout=30, check=True)
    out = json.loads(result.stdout)
    assert out["url"] == "/api/v1/jobs/abc/events"
    progress, done = out["seen"]
    assert progress == {"value": 0.5, "text": "running: 2 of 4 sentences, 3.2 s of audio", "closed": False}
    assert done["value"] == 1 and done["closed"] and done["text"].startswith("succeeded")
