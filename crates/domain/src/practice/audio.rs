//! Recognises an uploaded audio file from its bytes and works out its length, so a facilitator's
//! upload is checked by what it is rather than by its name or the browser's claimed type.
//!
//! Formats: Ogg with Opus (RFC 7845) or Vorbis, MP3 (MPEG-1/2/2.5 Layer III, ISO/IEC 11172-3 and
//! 13818-3), and M4A (the ISO base media file format of ISO/IEC 14496-12 with an `mvhd` box).

use crate::InvalidValue;

const FIELD: &str = "audio";

/// A supported audio container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioFormat {
    Ogg,
    Mp3,
    M4a,
}

impl AudioFormat {
    /// The media type to serve the file with.
    #[must_use]
    pub const fn media_type(self) -> &'static str {
        match self {
            Self::Ogg => "audio/ogg",
            Self::Mp3 => "audio/mpeg",
            Self::M4a => "audio/mp4",
        }
    }

    /// Reads a stored media type back.
    pub fn from_media_type(text: &str) -> Result<Self, InvalidValue> {
        match text {
            "audio/ogg" => Ok(Self::Ogg),
            "audio/mpeg" => Ok(Self::Mp3),
            "audio/mp4" => Ok(Self::M4a),
            _ => Err(InvalidValue::new(
                "media_type",
                format!(
                    "'{text}' is not a supported audio type; use audio/ogg, audio/mpeg or audio/mp4"
                ),
            )),
        }
    }
}

/// An audio file's container and playing time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AudioInfo {
    pub format: AudioFormat,
    pub duration_seconds: f64,
}

/// Recognises `bytes` and measures its length.
///
/// # Errors
/// Returns an error when the bytes are not Ogg Opus or Vorbis, MP3 or M4A, or when the file is
/// cut short so that its length cannot be read.
pub fn inspect(bytes: &[u8]) -> Result<AudioInfo, InvalidValue> {
    let (format, duration) = if bytes.starts_with(b"OggS") {
        (AudioFormat::Ogg, ogg_duration(bytes)?)
    } else if bytes.get(4..8) == Some(b"ftyp") {
        (AudioFormat::M4a, mp4_duration(bytes)?)
    } else if bytes.starts_with(b"ID3") || mpeg_frame(bytes, 0).is_some() {
        (AudioFormat::Mp3, mp3_duration(bytes)?)
    } else {
        return Err(InvalidValue::new(
            FIELD,
            "the file is not audio in a supported format; upload Ogg (Opus or Vorbis), MP3 or M4A",
        ));
    };
    if !(duration.is_finite() && duration >= 1.0) {
        return Err(InvalidValue::new(
            FIELD,
            "the recording is shorter than one second or its length could not be read; export it again",
        ));
    }
    Ok(AudioInfo {
        format,
        duration_seconds: duration,
    })
}

fn damaged(format: &str) -> InvalidValue {
    InvalidValue::new(
        FIELD,
        format!(
            "the {format} file is damaged or cut short; export it again and upload the whole file"
        ),
    )
}

fn u16_le(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn u32_le(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn u32_be(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn u64_be(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

/// An Ogg stream's length is the granule position of its last page over the codec's sample
/// rate: 48 kHz minus the pre-skip for Opus, the identification header's rate for Vorbis.
#[allow(clippy::cast_precision_loss)] // Sample counts far below 2^52.
fn ogg_duration(bytes: &[u8]) -> Result<f64, InvalidValue> {
    // The first page carries the codec's identification header after the segment table.
    let segments = usize::from(*bytes.get(26).ok_or_else(|| damaged("Ogg"))?);
    let packet = bytes.get(27 + segments..).ok_or_else(|| damaged("Ogg"))?;
    let (rate, pre_skip) = if packet.starts_with(b"OpusHead") {
        (
            48_000.0,
            f64::from(u16_le(packet, 10).ok_or_else(|| damaged("Ogg"))?),
        )
    } else if packet.starts_with(b"\x01vorbis") {
        let rate = u32_le(packet, 12).ok_or_else(|| damaged("Ogg"))?;
        (f64::from(rate), 0.0)
    } else {
        return Err(InvalidValue::new(
            FIELD,
            "the Ogg file holds neither Opus nor Vorbis audio; export it as Ogg Opus",
        ));
    };
    if rate <= 0.0 {
        return Err(damaged("Ogg"));
    }

    let last_page = bytes
        .windows(4)
        .rposition(|window| window == b"OggS")
        .ok_or_else(|| damaged("Ogg"))?;
    let granule = bytes
        .get(last_page + 6..last_page + 14)
        .and_then(|raw| raw.try_into().ok())
        .map(u64::from_le_bytes)
        .ok_or_else(|| damaged("Ogg"))?;
    if granule == u64::MAX {
        return Err(damaged("Ogg"));
    }
    Ok(((granule as f64) - pre_skip).max(0.0) / rate)
}

/// One MPEG audio Layer III frame header: its length in bytes and its samples and rate.
#[derive(Debug, Clone, Copy)]
struct MpegFrame {
    length: usize,
    samples: u32,
    sample_rate: u32,
}

/// Reads the Layer III frame header at `at`, if there is a valid one.
fn mpeg_frame(bytes: &[u8], at: usize) -> Option<MpegFrame> {
    const BITRATES_V1: [u32; 15] = [
        0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
    ];
    const BITRATES_V2: [u32; 15] = [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160];
    const RATES_V1: [u32; 3] = [44_100, 48_000, 32_000];

    let header = u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?);
    let sync = header >> 21 == 0x7ff;
    let version = (header >> 19) & 0b11; // 0 = 2.5, 2 = 2, 3 = 1
    let layer = (header >> 17) & 0b11; // 1 = Layer III
    let bitrate_index = ((header >> 12) & 0b1111) as usize;
    let rate_index = ((header >> 10) & 0b11) as usize;
    let padding = (header >> 9) & 1;
    if !sync
        || version == 1
        || layer != 1
        || bitrate_index == 0
        || bitrate_index == 15
        || rate_index == 3
    {
        return None;
    }

    let mpeg1 = version == 3;
    let kbps = if mpeg1 {
        BITRATES_V1[bitrate_index]
    } else {
        BITRATES_V2[bitrate_index]
    };
    let sample_rate = match version {
        3 => RATES_V1[rate_index],
        2 => RATES_V1[rate_index] / 2,
        _ => RATES_V1[rate_index] / 4,
    };
    let samples = if mpeg1 { 1152 } else { 576 };
    let length = (samples / 8 * kbps * 1000 / sample_rate + padding) as usize;
    Some(MpegFrame {
        length,
        samples,
        sample_rate,
    })
}

/// Walks every MP3 frame after an optional ID3v2 tag and adds up their samples; this measures
/// constant and variable bit rate files alike.
fn mp3_duration(bytes: &[u8]) -> Result<f64, InvalidValue> {
    let mut at = 0;
    if bytes.starts_with(b"ID3") {
        let size = bytes.get(6..10).ok_or_else(|| damaged("MP3"))?;
        // The tag size is "synchsafe": seven bits in each of four bytes.
        let tag = size.iter().fold(0usize, |total, byte| {
            (total << 7) | usize::from(byte & 0x7f)
        });
        let footer = if bytes.get(5).is_some_and(|flags| flags & 0x10 != 0) {
            10
        } else {
            0
        };
        at = 10 + tag + footer;
    }

    let mut seconds = 0.0;
    let mut frames = 0usize;
    while at + 4 <= bytes.len() {
        let Some(frame) = mpeg_frame(bytes, at) else {
            // A trailing ID3v1 tag or padding ends the audio.
            break;
        };
        seconds += f64::from(frame.samples) / f64::from(frame.sample_rate);
        frames += 1;
        at += frame.length.max(1);
    }
    if frames == 0 {
        return Err(damaged("MP3"));
    }
    Ok(seconds)
}

/// Finds the `mvhd` box inside the top-level `moov` box and divides its duration by its
/// timescale.
#[allow(clippy::cast_precision_loss)] // Durations far below 2^52 ticks.
fn mp4_duration(bytes: &[u8]) -> Result<f64, InvalidValue> {
    let moov = find_box(bytes, *b"moov").ok_or_else(|| damaged("M4A"))?;
    let mvhd = find_box(moov, *b"mvhd").ok_or_else(|| damaged("M4A"))?;
    let (timescale, duration) = match mvhd.first() {
        Some(0) => (u32_be(mvhd, 12), u32_be(mvhd, 16).map(u64::from)),
        Some(1) => (u32_be(mvhd, 20), u64_be(mvhd, 24)),
        _ => (None, None),
    };
    match (timescale, duration) {
        (Some(timescale), Some(duration)) if timescale > 0 => {
            Ok(duration as f64 / f64::from(timescale))
        }
        _ => Err(damaged("M4A")),
    }
}

/// Returns the payload of the first box of `kind` among the boxes laid out in `bytes`.
fn find_box(bytes: &[u8], kind: [u8; 4]) -> Option<&[u8]> {
    let mut at = 0usize;
    while at + 8 <= bytes.len() {
        let size = u32_be(bytes, at)?;
        let (header, length) = match size {
            1 => (16, usize::try_from(u64_be(bytes, at + 8)?).ok()?),
            0 => (8, bytes.len() - at),
            size => (8, usize::try_from(size).ok()?),
        };
        if length < header || at + length > bytes.len() {
            return None;
        }
        if bytes[at + 4..at + 8] == kind {
            return Some(&bytes[at + header..at + length]);
        }
        at += length;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ogg page with the given granule position and one packet.
    fn ogg_page(granule: u64, packet: &[u8]) -> Vec<u8> {
        let mut page = b"OggS\0\0".to_vec();
        page.extend_from_slice(&granule.to_le_bytes());
        page.extend_from_slice(&[0; 12]); // serial, sequence, checksum
        page.push(1);
        page.push(u8::try_from(packet.len()).expect("short packet"));
        page.extend_from_slice(packet);
        page
    }

    #[test]
    fn ogg_opus_length_from_the_last_granule() {
        let mut head = b"OpusHead\x01\x01".to_vec();
        head.extend_from_slice(&312u16.to_le_bytes());
        head.extend_from_slice(&[0; 7]);
        let mut file = ogg_page(0, &head);
        file.extend(ogg_page(48_000 * 90 + 312, b"audio"));
        let info = inspect(&file).expect("Ogg Opus");
        assert_eq!(info.format, AudioFormat::Ogg);
        assert!(
            (info.duration_seconds - 90.0).abs() < 1e-9,
            "{}",
            info.duration_seconds
        );
    }

    #[test]
    fn mp3_length_from_its_frames() {
        // MPEG-1 Layer III, 128 kbit/s, 44.1 kHz, no padding: 417-byte frames of 1,152 samples.
        let header = [0xff, 0xfb, 0x90, 0x00];
        let mut frame = header.to_vec();
        frame.resize(417, 0);
        let mut file = b"ID3\x04\x00\x00\x00\x00\x00\x0a".to_vec();
        file.extend_from_slice(&[0; 10]);
        for _ in 0..1_000 {
            file.extend_from_slice(&frame);
        }
        let info = inspect(&file).expect("MP3");
        assert_eq!(info.format, AudioFormat::Mp3);
        let expected = 1_000.0 * 1_152.0 / 44_100.0;
        assert!(
            (info.duration_seconds - expected).abs() < 1e-9,
            "{}",
            info.duration_seconds
        );
    }

    #[test]
    fn m4a_length_from_mvhd() {
        let mut mvhd = vec![0u8; 100];
        mvhd[12..16].copy_from_slice(&1_000u32.to_be_bytes());
        mvhd[16..20].copy_from_slice(&125_500u32.to_be_bytes());
        let boxed = |kind: &[u8], payload: &[u8]| {
            let mut out = u32::try_from(payload.len() + 8)
                .expect("small")
                .to_be_bytes()
                .to_vec();
            out.extend_from_slice(kind);
            out.extend_from_slice(payload);
            out
        };
        let mut file = boxed(b"ftyp", b"M4A \0\0\0\0isom");
        file.extend(boxed(b"moov", &boxed(b"mvhd", &mvhd)));
        let info = inspect(&file).expect("M4A");
        assert_eq!(info.format, AudioFormat::M4a);
        assert!((info.duration_seconds - 125.5).abs() < 1e-9);
    }

    #[test]
    fn other_files_are_rejected() {
        let cases: [(&[u8], &str); 5] = [
            (b"%PDF-1.7 a document", "not audio in a supported format"),
            (b"RIFF\0\0\0\0WAVEfmt ", "not audio in a supported format"),
            (
                b"OggS\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x01\x08theora!!",
                "neither Opus nor Vorbis",
            ),
            (b"\0\0\0\x14ftypM4A \0\0\0\0", "M4A file is damaged"),
            (b"", "not audio"),
        ];
        for (bytes, expected) in cases {
            let error = inspect(bytes).expect_err(expected);
            assert_eq!(error.field, "audio");
            assert!(error.problem.contains(expected), "{}", error.problem);
        }
    }
}
