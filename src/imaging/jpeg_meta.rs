//! Generation settings in JPEG COM (comment) segments.
//!
//! The comment is [`PREFIX`] + the JSON as UTF-8, so it is recognisable among other comments and
//! readable by anything that shows JPEG comments (Pillow's `info["comment"]`, exiftool, GIMP).
//! A segment holds at most 65533 payload bytes; longer settings are split, at character
//! boundaries, into consecutive COM segments: the first starts with [`PREFIX`], each following
//! one with [`CONTINUATION`], and the reader joins such a run. The segments go after the APPn
//! segments the encoder wrote (JFIF APP0, EXIF APP1, ICC APP2), because viewers expect JFIF/EXIF
//! straight after SOI.

use std::io::{Read, Seek, SeekFrom};

/// Start of the first settings comment.
pub const PREFIX: &[u8] = b"varsr:";
/// Start of every further settings comment when the JSON did not fit in one segment.
pub const CONTINUATION: &[u8] = b"varsr+:";
/// The most payload a segment can hold (its 16-bit length counts itself).
pub const MAX_PAYLOAD: usize = 65533;

const SOI: u8 = 0xD8;
const EOI: u8 = 0xD9;
const SOS: u8 = 0xDA;
const COM: u8 = 0xFE;

/// `jpeg` with the settings comment(s) inserted after SOI and the APPn segments that follow it.
pub fn insert_settings(jpeg: &[u8], json: &str) -> Result<Vec<u8>, String> {
    if jpeg.len() < 4 || jpeg[0] != 0xFF || jpeg[1] != SOI {
        return Err("encoder output is not a JPEG".into());
    }
    let mut pos = 2;
    while let [0xFF, 0xE0..=0xEF, hi, lo, ..] = jpeg[pos..] {
        pos += 2 + usize::from(u16::from_be_bytes([hi, lo]));
        if pos > jpeg.len() {
            return Err("truncated APP segment in encoder output".into());
        }
    }
    let mut out = Vec::with_capacity(jpeg.len() + json.len() + 16);
    out.extend_from_slice(&jpeg[..pos]);
    let mut rest = json;
    let mut prefix = PREFIX;
    loop {
        let room = MAX_PAYLOAD - prefix.len();
        let cut = rest.floor_char_boundary(room.min(rest.len()));
        let payload_len = prefix.len() + cut;
        out.extend_from_slice(&[0xFF, COM]);
        // Fits: payload_len <= MAX_PAYLOAD, so + 2 <= 65535.
        out.extend_from_slice(&((payload_len + 2) as u16).to_be_bytes());
        out.extend_from_slice(prefix);
        out.extend_from_slice(&rest.as_bytes()[..cut]);
        rest = &rest[cut..];
        prefix = CONTINUATION;
        if rest.is_empty() {
            break;
        }
    }
    out.extend_from_slice(&jpeg[pos..]);
    Ok(out)
}

/// The settings JSON from the first run of settings comments before the image data; `None` if the
/// stream is not a JPEG, has none, or the text is not UTF-8.
pub fn read_settings<R: Read + Seek>(mut r: R) -> Option<String> {
    let mut two = [0u8; 2];
    r.read_exact(&mut two).ok()?;
    if two != [0xFF, SOI] {
        return None;
    }
    let mut found: Option<Vec<u8>> = None;
    // A stream that ends (or breaks) between segments still yields the comments read so far;
    // a comment cut short yields nothing, as its text would be partial.
    while let Some(marker) = next_marker(&mut r) {
        if marker == SOS || marker == EOI {
            break;
        }
        // Stand-alone markers (TEM, RSTn) have no length.
        if marker == 0x01 || (0xD0..=0xD7).contains(&marker) {
            continue;
        }
        if r.read_exact(&mut two).is_err() {
            break;
        }
        let Some(len) = usize::from(u16::from_be_bytes(two)).checked_sub(2) else {
            break;
        };
        if marker != COM {
            if found.is_some() {
                break;
            }
            if r.seek(SeekFrom::Current(len as i64)).is_err() {
                break;
            }
            continue;
        }
        let mut payload = vec![0u8; len];
        r.read_exact(&mut payload).ok()?;
        match &mut found {
            None => {
                if let Some(text) = payload.strip_prefix(PREFIX) {
                    found = Some(text.to_vec());
                }
            }
            Some(text) => match payload.strip_prefix(CONTINUATION) {
                Some(more) => text.extend_from_slice(more),
                None => break,
            },
        }
    }
    String::from_utf8(found?).ok()
}

/// The next marker code, skipping the 0xFF fill bytes JPEG allows before it.
fn next_marker<R: Read>(r: &mut R) -> Option<u8> {
    let mut b = [0u8; 1];
    r.read_exact(&mut b).ok()?;
    if b[0] != 0xFF {
        return None;
    }
    while b[0] == 0xFF {
        r.read_exact(&mut b).ok()?;
    }
    Some(b[0])
}

#[cfg(test)]
#[path = "jpeg_meta_tests.rs"]
mod tests;
