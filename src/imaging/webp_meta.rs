//! An XMP chunk in the WebP RIFF container, added after encoding.
//!
//! `image`'s WebP encoder cannot write XMP, and writes the simple layout (one VP8L chunk, no VP8X)
//! when there is no ICC or EXIF. XMP is only allowed in the extended layout, so a simple file is
//! converted: a VP8X chunk is put first with the canvas size from the bitstream header and the
//! flags of what the file holds (alpha, ICC, EXIF, XMP), as libwebp requires them to match.
//! The XMP chunk goes last, where the container spec places it, and the RIFF size is rewritten.

use std::io::{Read, Seek, SeekFrom};

const FLAG_XMP: u8 = 1 << 2;
const FLAG_EXIF: u8 = 1 << 3;
const FLAG_ALPHA: u8 = 1 << 4;
const FLAG_ICC: u8 = 1 << 5;

type Chunk<'a> = ([u8; 4], &'a [u8]);

/// `webp` with `xmp` as its (only) XMP chunk, in the extended layout.
pub fn add_xmp(webp: &[u8], xmp: &[u8]) -> Result<Vec<u8>, String> {
    let chunks = chunks(webp)?;
    let vp8x = match chunks.iter().find(|(id, _)| id == b"VP8X") {
        Some((_, data)) if data.len() >= 10 => {
            let mut v = data.to_vec();
            v[0] |= FLAG_XMP;
            v
        }
        Some(_) => return Err("short VP8X chunk in encoder output".into()),
        None => new_vp8x(&chunks)?,
    };
    let mut body = b"WEBP".to_vec();
    write_chunk(&mut body, b"VP8X", &vp8x)?;
    for (id, data) in &chunks {
        if id != b"VP8X" && id != b"XMP " {
            write_chunk(&mut body, id, data)?;
        }
    }
    write_chunk(&mut body, b"XMP ", xmp)?;
    let size = u32::try_from(body.len()).map_err(|_| "WebP file over 4 GiB".to_string())?;
    let mut out = Vec::with_capacity(body.len() + 8);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&size.to_le_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// The chunks inside the RIFF container, in file order.
fn chunks(webp: &[u8]) -> Result<Vec<Chunk<'_>>, String> {
    let bad = |what: &str| Err(format!("encoder output is not a valid WebP: {what}"));
    if webp.len() < 12 || &webp[..4] != b"RIFF" || &webp[8..12] != b"WEBP" {
        return bad("no RIFF/WEBP header");
    }
    let riff_size = u32::from_le_bytes([webp[4], webp[5], webp[6], webp[7]]) as usize;
    let Some(end) = riff_size.checked_add(8).filter(|&e| e <= webp.len()) else {
        return bad("RIFF size beyond the data");
    };
    let mut out = Vec::new();
    let mut pos = 12;
    while pos + 8 <= end {
        let id = [webp[pos], webp[pos + 1], webp[pos + 2], webp[pos + 3]];
        let size = u32::from_le_bytes([webp[pos + 4], webp[pos + 5], webp[pos + 6], webp[pos + 7]]);
        let start = pos + 8;
        let Some(stop) = start.checked_add(size as usize).filter(|&s| s <= end) else {
            return bad("chunk beyond the RIFF size");
        };
        out.push((id, &webp[start..stop]));
        // Odd-sized chunks are followed by one padding byte.
        pos = stop + (size as usize & 1);
    }
    Ok(out)
}

/// A VP8X chunk for a simple-layout file: canvas from the VP8/VP8L header, flags from the chunks.
fn new_vp8x(chunks: &[Chunk<'_>]) -> Result<Vec<u8>, String> {
    let has = |name: &[u8; 4]| chunks.iter().any(|(id, _)| id == name);
    let (width, height, mut alpha) = chunks
        .iter()
        .find_map(|(id, data)| match id {
            b"VP8L" => vp8l_header(data),
            b"VP8 " => vp8_header(data).map(|(w, h)| (w, h, false)),
            _ => None,
        })
        .ok_or("no readable VP8/VP8L image chunk in encoder output")?;
    alpha |= has(b"ALPH");
    let mut flags = FLAG_XMP;
    for (present, flag) in [
        (alpha, FLAG_ALPHA),
        (has(b"ICCP"), FLAG_ICC),
        (has(b"EXIF"), FLAG_EXIF),
    ] {
        if present {
            flags |= flag;
        }
    }
    let mut v = vec![flags, 0, 0, 0];
    v.extend_from_slice(&(width - 1).to_le_bytes()[..3]);
    v.extend_from_slice(&(height - 1).to_le_bytes()[..3]);
    Ok(v)
}

/// Width, height and the "alpha is used" bit of a lossless bitstream.
fn vp8l_header(data: &[u8]) -> Option<(u32, u32, bool)> {
    let [0x2F, a, b, c, d, ..] = *data else {
        return None;
    };
    let bits = u32::from_le_bytes([a, b, c, d]);
    Some((
        (bits & 0x3FFF) + 1,
        ((bits >> 14) & 0x3FFF) + 1,
        bits >> 28 & 1 == 1,
    ))
}

/// Width and height of a lossy key frame (the top two bits of each are upscaling hints).
fn vp8_header(data: &[u8]) -> Option<(u32, u32)> {
    let [tag, _, _, 0x9D, 0x01, 0x2A, w0, w1, h0, h1, ..] = *data else {
        return None;
    };
    if tag & 1 != 0 {
        return None; // not a key frame
    }
    let w = u32::from(u16::from_le_bytes([w0, w1]) & 0x3FFF);
    let h = u32::from(u16::from_le_bytes([h0, h1]) & 0x3FFF);
    (w > 0 && h > 0).then_some((w, h))
}

fn write_chunk(out: &mut Vec<u8>, id: &[u8; 4], data: &[u8]) -> Result<(), String> {
    let size = u32::try_from(data.len()).map_err(|_| "WebP chunk over 4 GiB".to_string())?;
    out.extend_from_slice(id);
    out.extend_from_slice(&size.to_le_bytes());
    out.extend_from_slice(data);
    if data.len() % 2 == 1 {
        out.push(0);
    }
    Ok(())
}

/// The payload of the first XMP chunk of a WebP stream; `None` if not a WebP or there is none.
pub fn read_xmp<R: Read + Seek>(mut r: R) -> Option<Vec<u8>> {
    let mut head = [0u8; 12];
    r.read_exact(&mut head).ok()?;
    if &head[..4] != b"RIFF" || &head[8..] != b"WEBP" {
        return None;
    }
    let end = 8 + u64::from(u32::from_le_bytes([head[4], head[5], head[6], head[7]]));
    let mut pos = 12u64;
    let mut chunk = [0u8; 8];
    while pos + 8 <= end {
        r.read_exact(&mut chunk).ok()?;
        let size = u64::from(u32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]));
        if &chunk[..4] == b"XMP " {
            // `take` bounds the allocation by what the file really holds.
            let mut data = Vec::new();
            r.by_ref().take(size).read_to_end(&mut data).ok()?;
            return (data.len() as u64 == size).then_some(data);
        }
        let skip = size + (size & 1);
        r.seek(SeekFrom::Current(i64::try_from(skip).ok()?)).ok()?;
        pos += 8 + skip;
    }
    None
}

#[cfg(test)]
#[path = "webp_meta_tests.rs"]
mod tests;
