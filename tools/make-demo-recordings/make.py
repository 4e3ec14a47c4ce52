#!/usr/bin/env python3
"""Regenerate the meditation bell and the synthetic demo guided recordings.

Writes crates/web/assets/bell.ogg and bell.mp3, and for each recording in guidance.toml
content/practice/recordings/{slug}.ogg, .vtt and .txt, plus recordings.toml. Every sentence is
synthesized on its own with espeak-ng, so its offsets in the recording, and so the caption times,
are known to the sample. The output depends only on guidance.toml, this script and the versions
of espeak-ng, opus-tools and ffmpeg, with no random or time-dependent input.

Needs Python 3.11 or later (for tomllib) and the espeak-ng, opusenc, ffmpeg and ffprobe programs.
"""

from __future__ import annotations

import argparse
import array
import json
import math
import shutil
import subprocess
import sys
import tempfile
import tomllib
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

TOOL_DIR = Path(__file__).resolve().parent
REPO_ROOT = TOOL_DIR.parents[1]
GUIDANCE_FILE = TOOL_DIR / "guidance.toml"

BELL_DIR = Path("crates/web/assets")
RECORDINGS_DIR = Path("content/practice/recordings")

SAMPLE_RATE = 48_000
FULL_SCALE = 32_767

BELL_SECONDS = 4.0
BELL_PEAK_DBFS = -3.0
# The bell inside a recording is quieter than the stand-alone file, so that it does not
# startle next to the speech. Each sentence from espeak-ng at amplitude 70 has a mean level
# of about -25 dBFS and a peak between -6 and -2 dBFS.
BELL_IN_RECORDING_PEAK_DBFS = -10.0
BELL_ATTACK_SECONDS = 0.015
BELL_FADE_SECONDS = 1.5
# (frequency in Hz, relative amplitude, decay time constant in seconds). The overtones are at
# inharmonic ratios of 2.71, 5.13 and 8.27 to the fundamental, and the copy of the fundamental
# 1.4 Hz higher beats against it 1.4 times a second.
BELL_PARTIALS = (
    (329.6, 1.00, 1.50),
    (331.0, 0.35, 1.50),
    (893.0, 0.45, 0.90),
    (1690.0, 0.22, 0.55),
    (2725.0, 0.10, 0.30),
)

SILENCE_AFTER_OPENING_BELL_SECONDS = 1.0
# espeak-ng -a, from 0 to 200 (default 100). At 100 the es-419 voice of espeak-ng 1.51 reaches
# full scale and clips on some sentences.
ESPEAK_AMPLITUDE = 70
# A sample counts as speech when its magnitude exceeds this (about -54 dBFS). The margin keeps
# soft consonants that sit just below the threshold.
SPEECH_THRESHOLD = 64
SPEECH_MARGIN_SECONDS = 0.010
MIN_PAUSE_SECONDS = 2.0
MAX_PAUSE_SECONDS = 6.0

MIN_RECORDING_SECONDS = 60.0
MAX_RECORDING_SECONDS = 120.0
MAX_BELL_FILE_BYTES = 40_000
MAX_TOTAL_BYTES = 2_000_000

RECORDING_OPUS_KBPS = 24
BELL_OPUS_KBPS = 32
BELL_MP3_KBPS = 64
# opusenc picks a random Ogg stream serial number unless given one.
OGG_SERIAL = "1"
ARTIST = "Stillpoint demo (speech synthesis, espeak-ng)"


@dataclass(frozen=True)
class Sentence:
    text: str
    pause_after: float


@dataclass(frozen=True)
class Recording:
    slug: str
    practice: str
    language: str
    title: str
    voice: str
    rate: int
    pitch: int
    sentences: tuple[Sentence, ...]


@dataclass(frozen=True)
class Cue:
    start_sample: int
    end_sample: int
    text: str


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--output-root",
        type=Path,
        default=REPO_ROOT,
        help="folder to write crates/web/assets/ and content/practice/recordings/ under "
        "(default: the repository root)",
    )
    args = parser.parse_args()

    check_tools()
    recordings = load_guidance(GUIDANCE_FILE)
    bell_dir = args.output_root / BELL_DIR
    recordings_dir = args.output_root / RECORDINGS_DIR
    bell_dir.mkdir(parents=True, exist_ok=True)
    recordings_dir.mkdir(parents=True, exist_ok=True)

    bell = synthesize_bell()
    written: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="make-demo-recordings-") as scratch_name:
        scratch = Path(scratch_name)
        written += write_bell_files(bell, bell_dir, scratch)

        bell_in_recording = scale(bell, db_to_gain(BELL_IN_RECORDING_PEAK_DBFS - BELL_PEAK_DBFS))
        durations: dict[str, float] = {}
        for recording in recordings:
            files, duration = build_recording(recording, bell_in_recording, recordings_dir, scratch)
            written += files
            durations[recording.slug] = duration

    manifest = recordings_dir / "recordings.toml"
    manifest.write_text(format_manifest(recordings, durations), encoding="utf-8")
    written.append(manifest)

    total = sum(path.stat().st_size for path in written)
    if total > MAX_TOTAL_BYTES:
        fail(f"the generated files total {total} bytes, more than {MAX_TOTAL_BYTES}. Shorten the guidance text or lower the bit rate")
    for path in written:
        print(f"{path.stat().st_size:>8} bytes  {path.relative_to(args.output_root)}")
    print(f"{total:>8} bytes  in total")
    return 0


def fail(message: str) -> NoReturn:
    print(f"make.py: error: {message}", file=sys.stderr)
    sys.exit(1)


def check_tools() -> None:
    packages = {"espeak-ng": "espeak-ng", "opusenc": "opus-tools", "ffmpeg": "ffmpeg", "ffprobe": "ffmpeg"}
    for program, package in packages.items():
        if shutil.which(program) is None:
            fail(f"'{program}' was not found on PATH. Install it with 'apt-get install {package}'")


def run(command: list[str], stdin: bytes | None = None) -> bytes:
    """Run a program and return its standard output, or stop with its error output."""
    result = subprocess.run(command, input=stdin, capture_output=True, check=False)
    if result.returncode != 0:
        error = result.stderr.decode("utf-8", "replace").strip()
        fail(f"'{' '.join(command)}' failed with exit code {result.returncode}: {error}")
    return result.stdout


# Guidance text


def load_guidance(path: Path) -> list[Recording]:
    with path.open("rb") as file:
        data = tomllib.load(file)

    recordings = []
    for table in data.get("recordings", []):
        sentences = tuple(Sentence(entry["text"], float(entry["pause_after"])) for entry in table["sentences"])
        recording = Recording(
            slug=table["slug"],
            practice=table["practice"],
            language=table["language"],
            title=table["title"],
            voice=table["voice"],
            rate=int(table["rate"]),
            pitch=int(table["pitch"]),
            sentences=sentences,
        )
        check_recording(recording, path)
        recordings.append(recording)

    if not recordings:
        fail(f"{path} has no [[recordings]] tables")
    slugs = [recording.slug for recording in recordings]
    if len(set(slugs)) != len(slugs):
        fail(f"{path} uses a slug more than once: {slugs}")
    return recordings


def check_recording(recording: Recording, path: Path) -> None:
    if not recording.sentences:
        fail(f"{path}: recording '{recording.slug}' has no sentences")
    for sentence in recording.sentences:
        if not sentence.text.strip() or "\n" in sentence.text:
            fail(f"{path}: recording '{recording.slug}' has an empty or multi-line sentence: {sentence.text!r}")
        if not MIN_PAUSE_SECONDS <= sentence.pause_after <= MAX_PAUSE_SECONDS:
            fail(
                f"{path}: recording '{recording.slug}': pause_after {sentence.pause_after} after "
                f"{sentence.text!r} is outside {MIN_PAUSE_SECONDS} to {MAX_PAUSE_SECONDS} seconds"
            )


# Samples are Python floats from -1.0 to 1.0 until they are written as 16-bit PCM.


def db_to_gain(decibels: float) -> float:
    return 10.0 ** (decibels / 20.0)


def scale(samples: list[float], gain: float) -> list[float]:
    return [sample * gain for sample in samples]


def silence(seconds: float) -> list[float]:
    return [0.0] * round(seconds * SAMPLE_RATE)


def synthesize_bell() -> list[float]:
    """Synthesize a struck bell: decaying inharmonic partials, a short attack and a fade to zero."""
    length = round(BELL_SECONDS * SAMPLE_RATE)
    attack_length = round(BELL_ATTACK_SECONDS * SAMPLE_RATE)
    fade_length = round(BELL_FADE_SECONDS * SAMPLE_RATE)
    fade_start = length - fade_length

    samples = []
    for index in range(length):
        time = index / SAMPLE_RATE
        value = 0.0
        for frequency, amplitude, decay in BELL_PARTIALS:
            value += amplitude * math.exp(-time / decay) * math.sin(2.0 * math.pi * frequency * time)
        # Raised-cosine ramps: up from 0 over the attack, and down to exactly 0 at the last sample.
        if index < attack_length:
            value *= 0.5 - 0.5 * math.cos(math.pi * index / attack_length)
        if index >= fade_start:
            value *= 0.5 + 0.5 * math.cos(math.pi * (index - fade_start) / (fade_length - 1))
        samples.append(value)

    peak = max(abs(sample) for sample in samples)
    return scale(samples, db_to_gain(BELL_PEAK_DBFS) / peak)


def write_wav(path: Path, samples: list[float]) -> None:
    pcm = array.array("h", (max(-FULL_SCALE, min(FULL_SCALE, round(sample * FULL_SCALE))) for sample in samples))
    if sys.byteorder == "big":
        pcm.byteswap()
    with wave.open(str(path), "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(2)
        file.setframerate(SAMPLE_RATE)
        file.writeframes(pcm.tobytes())


def encode_opus(wav: Path, ogg: Path, kbps: int, title: str, language: str | None) -> None:
    command = [
        "opusenc", "--quiet", "--bitrate", str(kbps), "--serial", OGG_SERIAL,
        "--title", title, "--artist", ARTIST,
    ]
    if language is not None:
        command += ["--comment", f"LANGUAGE={language}"]
    run(command + [str(wav), str(ogg)])
    check_ogg_opus(ogg)


def check_ogg_opus(path: Path) -> int:
    """Check that the file starts with an Ogg page whose first packet is a mono OpusHead.

    Returns the header's pre-skip, the number of decoded samples at 48 kHz that a player drops.
    """
    data = path.read_bytes()
    if data[:4] != b"OggS":
        fail(f"{path} does not start with the Ogg capture pattern 'OggS'")
    # An Ogg page header is 27 bytes, then one lacing value per segment, then the payload.
    segment_count = data[26]
    head = data[27 + segment_count:]
    if head[:8] != b"OpusHead":
        fail(f"the first Ogg page of {path} does not contain an OpusHead packet")
    # OpusHead layout (RFC 7845, section 5.1): version at byte 8, channel count at 9, pre-skip
    # as a little-endian 16-bit integer at 10.
    channels = head[9]
    if channels != 1:
        fail(f"{path} has {channels} channels in its OpusHead, but mono was expected")
    return int.from_bytes(head[10:12], "little")


def probe_stream(path: Path) -> dict:
    """Return what ffprobe reads about the first audio stream of a file."""
    output = run([
        "ffprobe", "-v", "error", "-select_streams", "a:0",
        "-show_entries", "stream=codec_name,channels,sample_rate,time_base,duration_ts,duration",
        "-of", "json", str(path),
    ])
    streams = json.loads(output)["streams"]
    if not streams:
        fail(f"ffprobe finds no audio stream in {path}")
    stream = streams[0]
    if stream["channels"] != 1:
        fail(f"ffprobe reads {stream['channels']} channels in {path}, but mono was expected")
    return stream


def count_decoded_samples(path: Path) -> int:
    pcm = run(["ffmpeg", "-v", "error", "-i", str(path), "-ac", "1", "-ar", str(SAMPLE_RATE), "-f", "s16le", "-c:a", "pcm_s16le", "-"])
    return len(pcm) // 2


def measure_ogg_opus(path: Path, expected_samples: int) -> float:
    """Check an Ogg Opus file and return its playback length in seconds.

    ffprobe from ffmpeg 5.1 reports the final granule position as the duration without
    subtracting the pre-skip (312 samples, 6.5 ms, from opusenc 0.2), so the length is computed
    as RFC 7845 defines it: final granule position minus pre-skip.
    """
    pre_skip = check_ogg_opus(path)
    stream = probe_stream(path)
    if stream["codec_name"] != "opus" or stream["time_base"] != f"1/{SAMPLE_RATE}":
        fail(f"ffprobe reads {path} as {stream['codec_name']} with time base {stream['time_base']}, but opus with 1/{SAMPLE_RATE} was expected")
    samples = int(stream["duration_ts"]) - pre_skip
    decoded = count_decoded_samples(path)
    if not samples == decoded == expected_samples:
        fail(
            f"{path} has {samples} samples by its granule position and pre-skip and {decoded} when decoded, "
            f"but {expected_samples} were encoded"
        )
    return samples / SAMPLE_RATE


def write_bell_files(bell: list[float], bell_dir: Path, scratch: Path) -> list[Path]:
    wav = scratch / "bell.wav"
    write_wav(wav, bell)

    ogg = bell_dir / "bell.ogg"
    encode_opus(wav, ogg, BELL_OPUS_KBPS, "Meditation bell (synthesized)", None)

    mp3 = bell_dir / "bell.mp3"
    run([
        "ffmpeg", "-v", "error", "-y", "-i", str(wav), "-ac", "1", "-c:a", "libmp3lame",
        "-b:a", f"{BELL_MP3_KBPS}k", "-map_metadata", "-1",
        "-fflags", "+bitexact", "-flags:a", "+bitexact", str(mp3),
    ])

    ogg_seconds = measure_ogg_opus(ogg, len(bell))
    mp3_seconds = float(probe_stream(mp3)["duration"])
    for path in (ogg, mp3):
        if path.stat().st_size > MAX_BELL_FILE_BYTES:
            fail(f"{path} is {path.stat().st_size} bytes, more than {MAX_BELL_FILE_BYTES}")
    # ffprobe's MP3 duration includes the encoder delay and padding of libmp3lame.
    print(f"bell.ogg: {ogg_seconds:.3f} s, bell.mp3: {mp3_seconds:.3f} s by ffprobe, {count_decoded_samples(mp3) / SAMPLE_RATE:.3f} s decoded")
    return [ogg, mp3]


# Recordings


def synthesize_sentence(recording: Recording, text: str, scratch: Path) -> list[float]:
    """Speak one sentence with espeak-ng and return it at 48 kHz with leading and trailing silence cut."""
    wav = scratch / "sentence.wav"
    run(
        [
            "espeak-ng", "-v", recording.voice, "-s", str(recording.rate), "-p", str(recording.pitch),
            "-a", str(ESPEAK_AMPLITUDE), "-b", "1", "-w", str(wav),
        ],
        stdin=text.encode("utf-8"),
    )
    # espeak-ng writes 22050 Hz. ffmpeg resamples to 48 kHz, so the sample count here is the
    # sentence's exact length in the recording.
    raw = run(["ffmpeg", "-v", "error", "-i", str(wav), "-ac", "1", "-ar", str(SAMPLE_RATE), "-f", "s16le", "-c:a", "pcm_s16le", "-"])
    pcm = array.array("h")
    pcm.frombytes(raw)
    if sys.byteorder == "big":
        pcm.byteswap()

    if max(pcm) >= FULL_SCALE or min(pcm) <= -FULL_SCALE:
        fail(f"the speech for {text!r} reaches full scale and may be clipped. Lower ESPEAK_AMPLITUDE in make.py")

    loud = [index for index, sample in enumerate(pcm) if abs(sample) > SPEECH_THRESHOLD]
    if not loud:
        fail(f"espeak-ng produced silence for {text!r} with voice '{recording.voice}'")
    margin = round(SPEECH_MARGIN_SECONDS * SAMPLE_RATE)
    start = max(0, loud[0] - margin)
    end = min(len(pcm), loud[-1] + 1 + margin)
    return [sample / FULL_SCALE for sample in pcm[start:end]]


def build_recording(recording: Recording, bell: list[float], out_dir: Path, scratch: Path) -> tuple[list[Path], float]:
    """Assemble, encode and check one recording, and return the files written and its duration."""
    audio = bell + silence(SILENCE_AFTER_OPENING_BELL_SECONDS)
    cues = []
    for sentence in recording.sentences:
        speech = synthesize_sentence(recording, sentence.text, scratch)
        cues.append(Cue(len(audio), len(audio) + len(speech), sentence.text))
        audio += speech
        audio += silence(sentence.pause_after)
    audio += bell

    wav = scratch / f"{recording.slug}.wav"
    write_wav(wav, audio)
    ogg = out_dir / f"{recording.slug}.ogg"
    encode_opus(wav, ogg, RECORDING_OPUS_KBPS, recording.title, recording.language)

    duration = measure_ogg_opus(ogg, len(audio))
    if not MIN_RECORDING_SECONDS <= duration <= MAX_RECORDING_SECONDS:
        fail(
            f"{ogg} lasts {duration:.3f} s, outside {MIN_RECORDING_SECONDS} to {MAX_RECORDING_SECONDS} s. "
            "Change the sentences or pauses in guidance.toml"
        )
    check_cues(cues, duration, ogg)

    vtt = out_dir / f"{recording.slug}.vtt"
    vtt.write_text(format_webvtt(cues), encoding="utf-8")
    transcript = out_dir / f"{recording.slug}.txt"
    transcript.write_text("".join(f"{sentence.text}\n" for sentence in recording.sentences), encoding="utf-8")

    print(f"{recording.slug}: {duration:.3f} s, {len(cues)} cues")
    return [ogg, vtt, transcript], duration


def to_milliseconds(sample: int) -> int:
    return round(sample * 1000 / SAMPLE_RATE)


def check_cues(cues: list[Cue], duration: float, ogg: Path) -> None:
    previous_end = 0
    for cue in cues:
        start, end = to_milliseconds(cue.start_sample), to_milliseconds(cue.end_sample)
        if start < previous_end or end <= start:
            fail(f"cue {cue.text!r} in {ogg.name} runs from {start} ms to {end} ms and overlaps the cue before or is empty")
        previous_end = end
    if previous_end > round(duration * 1000):
        fail(f"the last cue of {ogg.name} ends at {previous_end} ms, after the audio ends at {duration:.3f} s")


def format_timestamp(milliseconds: int) -> str:
    hours, rest = divmod(milliseconds, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02}:{minutes:02}:{seconds:02}.{millis:03}"


def format_webvtt(cues: list[Cue]) -> str:
    blocks = ["WEBVTT\n"]
    for cue in cues:
        timing = f"{format_timestamp(to_milliseconds(cue.start_sample))} --> {format_timestamp(to_milliseconds(cue.end_sample))}"
        blocks.append(f"{timing}\n{cue.text}\n")
    return "\n".join(blocks)


def toml_string(value: str) -> str:
    # A JSON string with non-ASCII characters kept is also a valid TOML basic string.
    return json.dumps(value, ensure_ascii=False)


def format_manifest(recordings: list[Recording], durations: dict[str, float]) -> str:
    lines = [
        "# Synthetic demo recordings for the home-practice library.",
        "# Generated by tools/make-demo-recordings/make.py from guidance.toml. Do not edit by hand.",
        "# duration_seconds is the playback length of the Ogg Opus file: its final granule position,",
        "# as ffprobe reads it, minus the pre-skip in its OpusHead.",
    ]
    for recording in recordings:
        fields = [
            ("slug", toml_string(recording.slug)),
            ("practice", toml_string(recording.practice)),
            ("language", toml_string(recording.language)),
            ("title", toml_string(recording.title)),
            ("audio", toml_string(f"{recording.slug}.ogg")),
            ("captions", toml_string(f"{recording.slug}.vtt")),
            ("transcript", toml_string(f"{recording.slug}.txt")),
            ("duration_seconds", f"{durations[recording.slug]:.3f}"),
            ("media_type", toml_string("audio/ogg")),
        ]
        lines += ["", "[[recordings]]"]
        lines += [f"{key} = {value}" for key, value in fields]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
