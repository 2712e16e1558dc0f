//! Reading the generation settings back from any format [`save`](super::save::save) writes: the PNG
//! text chunk, the JPEG comment or the WebP XMP property (see the docs of the `save` module).

use super::{jpeg_meta, save, webp_meta, xmp};
use std::io::{BufRead, Read, Seek, SeekFrom};
use std::path::Path;

/// The settings JSON stored in a PNG, JPEG or WebP file, or `None` if the file cannot be read,
/// is in another format, or carries no settings. Only the file's headers and metadata are read
/// (for WebP the chunk headers are skipped over, not the pixel data read).
pub fn read_settings(path: impl AsRef<Path>) -> Option<String> {
    let file = std::fs::File::open(path).ok()?;
    read_settings_from(std::io::BufReader::new(file))
}

/// As [`read_settings`], for encoded bytes in memory.
pub fn read_settings_from_memory(bytes: &[u8]) -> Option<String> {
    read_settings_from(std::io::Cursor::new(bytes))
}

fn read_settings_from<R: BufRead + Seek>(mut r: R) -> Option<String> {
    let mut magic = Vec::with_capacity(12);
    r.by_ref().take(12).read_to_end(&mut magic).ok()?;
    r.seek(SeekFrom::Start(0)).ok()?;
    if magic.starts_with(b"\x89PNG\r\n\x1a\n") {
        save::read_png_text(r, save::SETTINGS_KEY)
    } else if magic.starts_with(&[0xFF, 0xD8]) {
        jpeg_meta::read_settings(r)
    } else if magic.starts_with(b"RIFF") && magic.get(8..12) == Some(b"WEBP") {
        let packet = String::from_utf8(webp_meta::read_xmp(r)?).ok()?;
        xmp::settings(&packet)
    } else {
        None
    }
}
