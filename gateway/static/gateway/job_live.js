// The admin job page follows the job's server-sent events (the API's own stream, session auth)
// and updates its progress bar until the `done` event.
(function () {
  "use strict";
  var box = document.getElementById("job-live-progress");
  if (!box || !window.EventSource) {
    return;
  }
  var bar = box.querySelector("progress");
  var label = box.querySelector("span");
  var source = new EventSource(box.dataset.eventsUrl);
  source.addEventListener("progress", function (event) {
    var data = JSON.parse(event.data);
    bar.value = data.progress;
    label.textContent = data.status + ": " + data.sentences_done + " of " + (data.sentence_count === null ? "?" : data.sentence_count) +
      " sentences, " + data.audio_seconds + " s of audio";
  });
  source.addEventListener("done", function (event) {
    var data = JSON.parse(event.data);
    source.close();
    bar.value = data.status === "succeeded" ? 1 : bar.value;
    label.textContent = data.status + (data.error ? " (" + data.error + ")" : "") + ". Reload the page for the audio and timings.";
  });
})();
