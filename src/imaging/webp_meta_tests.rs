//! Container layout on hand-built RIFF files (expected bytes from the WebP container spec), and a
//! lossy simple-layout file made by Pillow (tests/fixtures/gen/gen_meta.py) for the VP8 path.

use super::*;
use std::io::Cursor;

fn riff(chunks: &[(&[u8; 4], &[u8])]) -> Vec<u8> {
    let mut body = b"WEBP".to_vec();
    for (id, data) in chunks {
        write_chunk(&mut body, id, data).unwrap();
    }
    let mut out = b"RIFF".to_vec();
    out.extend((body.len() as u32).to_le_bytes());
    out.extend(body);
    out
}

/// VP8L signature + header of a 5×4 image (width−1 = 4, height−1 = 3 in 14-bit fields, alpha bit
/// 28), then a stand-in for the entropy-coded data (never decoded here).
const VP8L_5X4_ALPHA: [u8; 7] = [0x2F, 0x04, 0xC0, 0x00, 0x10, 0xAB, 0xCD];

#[test]
fn simple_lossless_becomes_extended_with_alpha_flag() {
    let simple = riff(&[(b"VP8L", &VP8L_5X4_ALPHA)]);
    let out = add_xmp(&simple, b"<x/>").unwrap();
    let mut want = b"RIFF".to_vec();
    // WEBP + VP8X (8+10) + VP8L (8+7+pad) + XMP (8+4) = 4 + 18 + 16 + 12.
    want.extend(50u32.to_le_bytes());
    want.extend(b"WEBP");
    want.extend(b"VP8X\x0A\0\0\0");
    // Flags: XMP (bit 2) | alpha (bit 4); canvas 4, 3 as 24-bit little-endian.
    want.extend([0x14, 0, 0, 0, 4, 0, 0, 3, 0, 0]);
    want.extend(b"VP8L\x07\0\0\0");
    want.extend(VP8L_5X4_ALPHA);
    want.push(0);
    want.extend(b"XMP \x04\0\0\0<x/>");
    assert_eq!(out, want);
    assert_eq!(read_xmp(Cursor::new(&out)).as_deref(), Some(&b"<x/>"[..]));
    assert_eq!(read_xmp(Cursor::new(&simple)), None);

    // Without the alpha bit, no alpha flag.
    let mut opaque = VP8L_5X4_ALPHA;
    opaque[4] = 0x00;
    let out = add_xmp(&riff(&[(b"VP8L", &opaque)]), b"<x/>").unwrap();
    assert_eq!(out[20], 0x04);
}

#[test]
fn extended_file_keeps_its_chunks_and_gets_the_flag() {
    let vp8x = [0x28, 0, 0, 0, 4, 0, 0, 3, 0, 0]; // ICC | EXIF
    let file = riff(&[
        (b"VP8X", &vp8x),
        (b"ICCP", b"icc"),
        (b"VP8L", &VP8L_5X4_ALPHA),
        (b"EXIF", b"II*\0"),
        (b"XMP ", b"<old/>"),
    ]);
    let out = add_xmp(&file, b"<new/>!").unwrap();
    let mut flags_set = vp8x;
    flags_set[0] = 0x2C;
    let want = riff(&[
        (b"VP8X", &flags_set),
        (b"ICCP", b"icc"),
        (b"VP8L", &VP8L_5X4_ALPHA),
        (b"EXIF", b"II*\0"),
        (b"XMP ", b"<new/>!"),
    ]);
    assert_eq!(out, want);
    assert_eq!(
        u32::from_le_bytes([out[4], out[5], out[6], out[7]]) as usize,
        out.len() - 8
    );
    assert_eq!(
        read_xmp(Cursor::new(&out)).as_deref(),
        Some(&b"<new/>!"[..])
    );
}

#[test]
fn lossy_simple_file_from_pillow() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/meta/pillow_lossy_7x5.webp");
    let original = std::fs::read(path).unwrap();
    assert_eq!(&original[12..16], b"VP8 ", "fixture is simple lossy");
    let out = add_xmp(&original, b"<x/>").unwrap();
    // Canvas 7×5, no alpha, only the XMP flag.
    assert_eq!(&out[12..30], b"VP8X\x0A\0\0\0\x04\0\0\0\x06\0\0\x04\0\0");
    let before = image::load_from_memory(&original).unwrap().to_rgba8();
    let after = image::load_from_memory(&out).unwrap().to_rgba8();
    assert_eq!((after.width(), after.height()), (7, 5));
    assert_eq!(after, before);
    // The `image` decoder's own chunk reader finds the XMP too.
    let mut dec = image::codecs::webp::WebPDecoder::new(Cursor::new(&out)).unwrap();
    let xmp = image::ImageDecoder::xmp_metadata(&mut dec).unwrap();
    assert_eq!(xmp.as_deref(), Some(&b"<x/>"[..]));
}

#[test]
fn malformed_input() {
    assert!(
        add_xmp(b"RIFF\x04\0\0\0WEBP", b"x").is_err(),
        "no image chunk"
    );
    assert!(
        add_xmp(b"RIFF\xFF\0\0\0WEBPVP8L", b"x").is_err(),
        "size past end"
    );
    assert!(add_xmp(b"\x89PNG\r\n\x1a\n....", b"x").is_err());
    let mut cut = riff(&[(b"VP8L", &VP8L_5X4_ALPHA), (b"XMP ", b"<xmp/>")]);
    cut.truncate(cut.len() - 2);
    assert_eq!(read_xmp(Cursor::new(&cut)), None);
    assert_eq!(read_xmp(Cursor::new(b"RIFF")), None);
}
