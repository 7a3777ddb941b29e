"""Assembling a job's WAV from the audio segments its agent sent."""

from __future__ import annotations

import tempfile
import wave
from dataclasses import dataclass

from django.core.files import File

from ..models import AudioSegment, SynthesisJob


@dataclass(frozen=True)
class SegmentChain:
    """The stored segments of one attempt that cover sentences 0 .. `covered` - 1, in order."""

    segments: list[AudioSegment]
    covered: int
    sample_rates: frozenset[int]

    def problem(self, *, expected: int) -> str | None:
        """Why the chain cannot become the job's audio, or None when it can."""
        if len(self.sample_rates) > 1:
            return f"segments disagree on the sample rate: {sorted(self.sample_rates)}"
        if not self.segments or self.covered != expected:
            return f"audio incomplete: {self.covered} of {expected} sentences received"
        return None


def segment_chain(*, job: SynthesisJob, attempt: int, expected: int) -> SegmentChain:
    """Walk 0 -> 0 + count -> ...: every sentence exactly once, in order, even if two deliveries
    cut their segments differently (a stored segment off the chain is left out)."""
    stored = {
        segment.first_sentence: segment
        for segment in AudioSegment.objects.filter(job=job, attempt=attempt).defer("pcm")
    }
    segments: list[AudioSegment] = []
    covered = 0
    while covered in stored and covered < expected:
        segments.append(stored[covered])
        covered += stored[covered].sentence_count
    return SegmentChain(
        segments=segments, covered=covered, sample_rates=frozenset(segment.sample_rate for segment in segments)
    )


def wav_file(*, segments: list[AudioSegment], sample_rate: int) -> tuple[File, int]:
    """The WAV of `segments` (in order) in a temporary file; PCM is read one segment at a time
    so a long job's audio is never held in memory whole. Returns the file and its frame count."""
    spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115 - returned open
    frames = 0
    with wave.open(spool, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        for segment in segments:
            pcm = AudioSegment.objects.values_list("pcm", flat=True).get(pk=segment.pk)
            wav.writeframes(bytes(pcm))
            frames += len(pcm) // 2
    spool.seek(0)
    return File(spool), frames
