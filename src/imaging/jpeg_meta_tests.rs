//! Segment layout on hand-built headers (expected bytes written out by hand from the JPEG spec).

use super::*;
use std::io::Cursor;

/// SOI, APP0 (2 payload bytes), APP2 (1 byte), DQT (1 byte), SOS, some scan bytes, EOI.
fn header() -> Vec<u8> {
    let mut j = vec![0xFF, 0xD8];
    j.extend([0xFF, 0xE0, 0x00, 0x04, b'J', b'F']);
    j.extend([0xFF, 0xE2, 0x00, 0x03, b'I']);
    j.extend([0xFF, 0xDB, 0x00, 0x03, 0x07]);
    j.extend([0xFF, 0xDA, 0x00, 0x02, 0x12, 0x34, 0xFF, 0xD9]);
    j
}

#[test]
fn comment_goes_after_the_app_segments() {
    let j = header();
    let out = insert_settings(&j, "{\"s\":1}").unwrap();
    let mut want = j[..13].to_vec();
    // 0xFFFE, length 2 + 6 + 7 = 15.
    want.extend([0xFF, 0xFE, 0x00, 0x0F]);
    want.extend(b"varsr:{\"s\":1}");
    want.extend(&j[13..]);
    assert_eq!(out, want);
    assert_eq!(
        read_settings(Cursor::new(&out)).as_deref(),
        Some("{\"s\":1}")
    );
    assert_eq!(read_settings(Cursor::new(&j)), None);
}

#[test]
fn long_settings_split_at_character_boundaries() {
    // 3-byte characters so the 65527-byte room of the first segment falls inside one.
    let json = format!("\"{}\"", "猫".repeat(30_000));
    let out = insert_settings(&header(), &json).unwrap();
    let first_len = usize::from(u16::from_be_bytes([out[15], out[16]]));
    assert_eq!(&out[13..15], &[0xFF, 0xFE]);
    assert_eq!(&out[17..23], b"varsr:");
    // 1 quote + 21842 whole characters (65527 = 1 + 3·21842) fill the first segment exactly.
    assert_eq!(first_len, 2 + 6 + 1 + 3 * 21842);
    let second = 13 + 2 + first_len;
    assert_eq!(&out[second..second + 2], &[0xFF, 0xFE]);
    let second_len = usize::from(u16::from_be_bytes([out[second + 2], out[second + 3]]));
    assert_eq!(&out[second + 4..second + 11], b"varsr+:");
    assert_eq!(second_len, 2 + 7 + json.len() - (1 + 3 * 21842));
    assert_eq!(&out[second + 2 + second_len..], &header()[13..]);
    assert_eq!(read_settings(Cursor::new(&out)), Some(json));

    // 2-byte characters do not divide the room: the cut moves back to a boundary.
    let json = "é".repeat(40_000);
    let out = insert_settings(&header(), &json).unwrap();
    let first_len = usize::from(u16::from_be_bytes([out[15], out[16]]));
    assert_eq!(first_len, 2 + 6 + 65526);
    assert_eq!(read_settings(Cursor::new(&out)), Some(json));
}

#[test]
fn reader_skips_other_comments_and_fill_bytes() {
    let mut j = vec![0xFF, 0xD8];
    j.extend([0xFF, 0xFE, 0x00, 0x05, b'h', b'i', b'!']);
    j.extend([0xFF, 0xFF, 0xFE, 0x00, 0x0A]);
    j.extend(b"varsr:{}");
    j.extend([0xFF, 0xFE, 0x00, 0x0B]);
    j.extend(b"varsr+:[]");
    // A continuation after another segment is not part of the run.
    j.extend([0xFF, 0xDB, 0x00, 0x03, 0x07]);
    j.extend([0xFF, 0xFE, 0x00, 0x0B]);
    j.extend(b"varsr+:xx");
    j.extend([0xFF, 0xDA, 0x00, 0x02]);
    assert_eq!(read_settings(Cursor::new(&j)).as_deref(), Some("{}[]"));
}

#[test]
fn malformed_input() {
    assert!(insert_settings(b"\x89PNG", "{}").is_err());
    // APP0 claims more bytes than there are.
    assert!(insert_settings(&[0xFF, 0xD8, 0xFF, 0xE0, 0x10, 0x00, 0], "{}").is_err());
    assert_eq!(
        read_settings(Cursor::new(b"\xFF\xD8\xFF\xFE\x00\x20varsr:")),
        None
    );
    // Not UTF-8.
    assert_eq!(
        read_settings(Cursor::new(b"\xFF\xD8\xFF\xFE\x00\x09varsr:\xFF")),
        None
    );
    // A complete comment in a file cut short after it is still read.
    assert_eq!(
        read_settings(Cursor::new(b"\xFF\xD8\xFF\xFE\x00\x0Avarsr:{}\xFF")).as_deref(),
        Some("{}")
    );
    assert_eq!(read_settings(Cursor::new(b"GIF89a")), None);
}
