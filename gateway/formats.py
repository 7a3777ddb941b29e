"""Audio formats the API offers, negotiation, and encoding with soundfile (libsndfile).

The stored master is a 16-bit mono WAV. FLAC, MP3 and Ogg Opus come from libsndfile (no
external binary). Opus supports only 8/12/16/24/48 kHz, so the voice's 22.05 kHz is resampled
to 24 kHz for it (linear interpolation: good enough for speech at Opus's bitrates, no SciPy).
A whole-file encoding is stored once beside the WAV and served from storage afterwards
(`services.job_audio_encode`); streams encode incrementally (`StreamEncoder`).
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass

import numpy as np
import soundfile

from .errors import ApplicationError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AudioFormat:
    name: str
    content_type: str
    extension: str
    sf_format: str | None  # None: raw PCM, no container
    subtype: str | None
    sample_rates: tuple[int, ...] = ()  # the codec's allowed rates; empty = any


FORMATS: dict[str, AudioFormat] = {
    "wav": AudioFormat("wav", "audio/wav", "wav", "WAV", "PCM_16"),
    "flac": AudioFormat("flac", "audio/flac", "flac", "FLAC", "PCM_16"),
    "mp3": AudioFormat("mp3", "audio/mpeg", "mp3", "MP3", "MPEG_LAYER_III"),
    "opus": AudioFormat("opus", "audio/ogg", "opus", "OGG", "OPUS", (8000, 12000, 16000, 24000, 48000)),
    "pcm": AudioFormat("pcm", "audio/pcm", "pcm", None, None),
}
SUPPORTED = tuple(FORMATS)
# FLAC rewrites its header once the length is known; a streamed FLAC without it made libsndfile
# fail to read to the end, so the streams offer the formats that need no rewrite.
STREAMABLE = ("wav", "pcm", "mp3", "opus")

# Accept media types -> format. `audio/L16` is raw 16-bit PCM (RFC 2586).
_MEDIA_TYPES = {
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/wave": "wav",
    "audio/flac": "flac",
    "audio/x-flac": "flac",
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
    "audio/ogg": "opus",
    "audio/opus": "opus",
    "audio/pcm": "pcm",
    "audio/l16": "pcm",
}


def unsupported(value: str, *, field: str = "format", supported: tuple[str, ...] = SUPPORTED) -> ApplicationError:
    return ApplicationError(
        f"unsupported audio format {value!r}; supported: {', '.join(supported)}",
        code="unsupported_format",
        field=field,
        extra={"supported": list(supported)},
    )


def negotiate(*, query_format: str | None, accept: str | None, default: str = "wav") -> AudioFormat:
    """`?format=` wins; else the first supported type of `Accept` by q-value; else `default`.

    An explicit unknown `?format=` is a 400 listing the supported formats; an `Accept` that
    names only unsupported audio types is one too (a client that accepts anything gets WAV).
    """
    if query_format:
        fmt = FORMATS.get(query_format.strip().lower())
        if fmt is None:
            raise unsupported(query_format)
        return fmt
    if not accept:
        return FORMATS[default]
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(accept.split(",")):
        media, *params = (piece.strip() for piece in part.split(";"))
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if media and quality > 0:
            ranked.append((-quality, index, media.lower()))
    audio_asked = False
    for _, _, media in sorted(ranked):
        if media in _MEDIA_TYPES:
            return FORMATS[_MEDIA_TYPES[media]]
        if media in ("*/*", "audio/*", "application/json", "application/octet-stream"):
            return FORMATS[default]
        audio_asked = audio_asked or media.startswith("audio/")
    if audio_asked:
        raise unsupported(accept, field="Accept")
    return FORMATS[default]


def resample(samples: np.ndarray, *, from_rate: int, to_rate: int) -> np.ndarray:
    """int16 mono resampled by linear interpolation (speech to a rate Opus accepts)."""
    if from_rate == to_rate or samples.size == 0:
        return samples
    count = round(samples.size * to_rate / from_rate)
    positions = np.arange(count) * (from_rate / to_rate)
    return np.interp(positions, np.arange(samples.size), samples.astype(np.float32)).round().astype(np.int16)


def _codec_rate(fmt: AudioFormat, sample_rate: int) -> int:
    if not fmt.sample_rates or sample_rate in fmt.sample_rates:
        return sample_rate
    return min((rate for rate in fmt.sample_rates if rate >= sample_rate), default=fmt.sample_rates[-1])


class _Sink(io.RawIOBase):
    """A write-only, seekable buffer that hands out what was appended since the last `take`.

    MP3 and Ogg never seek back once audio flows; FLAC rewrites its header on close, which a
    stream has already sent: a streamed FLAC keeps "total samples unknown", which is valid.
    """

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.position = 0
        self.sent = 0

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, b: bytearray) -> int:  # type: ignore[override]
        return 0

    def write(self, data: bytes) -> int:  # type: ignore[override]
        data = bytes(data)
        if self.position >= self.sent:  # already-sent bytes can no longer be patched
            self.buffer[self.position : self.position + len(data)] = data
        self.position += len(data)
        return len(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.position, 2: len(self.buffer)}[whence]
        self.position = base + offset
        return self.position

    def tell(self) -> int:
        return self.position

    def take(self) -> bytes:
        chunk = bytes(self.buffer[self.sent :])
        self.sent = len(self.buffer)
        return chunk


class StreamEncoder:
    """Encode 16-bit PCM chunk by chunk: `feed` returns the bytes ready to send, `finish` the rest."""

    def __init__(self, fmt: AudioFormat, *, sample_rate: int) -> None:
        if fmt.name not in STREAMABLE:
            raise unsupported(fmt.name, supported=STREAMABLE)
        self.fmt = fmt
        self.sample_rate = sample_rate
        self.codec_rate = _codec_rate(fmt, sample_rate)
        self._sink = _Sink()
        self._file: soundfile.SoundFile | None = None
        if fmt.name == "wav":
            self._header = streaming_wav_header(sample_rate=sample_rate)
        elif fmt.sf_format is not None:
            self._header = b""
            # A stream's MP3 cannot get its Xing header patched at the end (already sent), and a
            # decoder without it estimates a VBR file's length from the first frame's bitrate
            # (libsndfile cut a 2 s stream to 0.5 s): constant bitrate keeps that estimate right.
            extra = {"bitrate_mode": "CONSTANT", "compression_level": 0.5} if fmt.name == "mp3" else {}
            self._file = soundfile.SoundFile(
                self._sink, "w", self.codec_rate, 1, fmt.subtype, format=fmt.sf_format, **extra
            )
        else:
            self._header = b""

    def feed(self, pcm: bytes) -> bytes:
        header, self._header = self._header, b""
        if self._file is None:
            return header + pcm
        samples = resample(np.frombuffer(pcm, dtype="<i2"), from_rate=self.sample_rate, to_rate=self.codec_rate)
        self._file.write(samples)
        return header + self._sink.take()

    def finish(self) -> bytes:
        header, self._header = self._header, b""
        if self._file is None:
            return header
        self._file.close()
        return header + self._sink.take()


def streaming_wav_header(*, sample_rate: int) -> bytes:
    """A WAV header for audio of unknown length: RIFF and data sizes set to 0xFFFFFFFF."""
    byte_rate = sample_rate * 2
    return (
        b"RIFF"
        + (0xFFFFFFFF).to_bytes(4, "little")
        + b"WAVEfmt "
        + (16).to_bytes(4, "little")
        + (1).to_bytes(2, "little")  # PCM
        + (1).to_bytes(2, "little")  # mono
        + sample_rate.to_bytes(4, "little")
        + byte_rate.to_bytes(4, "little")
        + (2).to_bytes(2, "little")  # block align
        + (16).to_bytes(2, "little")  # bits per sample
        + b"data"
        + (0xFFFFFFFF).to_bytes(4, "little")
    )


def encode_pcm(pcm: bytes, *, fmt: AudioFormat, sample_rate: int) -> bytes:
    """A whole-file encoding of `pcm` (FLAC and WAV get their real headers)."""
    if fmt.sf_format is None:
        return pcm
    samples = np.frombuffer(pcm, dtype="<i2")
    rate = _codec_rate(fmt, sample_rate)
    buffer = io.BytesIO()
    soundfile.write(
        buffer, resample(samples, from_rate=sample_rate, to_rate=rate), rate, fmt.subtype, format=fmt.sf_format
    )
    return buffer.getvalue()


# Extensions of the whole-file encodings stored beside a WAV.
ENCODED_EXTENSIONS = frozenset(fmt.extension for fmt in FORMATS.values() if fmt.name not in ("wav", "pcm"))
