//! Saving results: PNG, JPEG or WebP, with metadata, written atomically and never replacing an
//! existing file unless asked.
//!
//! The generation settings (JSON) are stored in every format, and [`read_settings`] reads them
//! back from any of them:
//! * **PNG** (via the `png` crate, because `image`'s encoder cannot write text chunks): a text
//!   chunk with keyword `"varsr"` (tEXt when the JSON is Latin-1, iTXt (UTF-8) otherwise), plus
//!   `"Software"`; ICC as iCCP, EXIF as eXIf.
//! * **JPEG**: quality 1–100; ICC and EXIF are kept; the settings are a COM segment `varsr:` +
//!   JSON (UTF-8) after the APPn segments; longer than one segment holds (65527 bytes), it is
//!   split at character boundaries into consecutive COM segments, the later ones starting with
//!   `varsr+:`. JPEG has no alpha, so a transparent result is flattened onto white.
//! * **WebP**: `image`'s encoder is **lossless only**, so the quality setting is ignored (files are
//!   larger than a lossy WebP would be). ICC and EXIF are kept; the settings are an XMP packet
//!   (`varsr:settings` in the namespace [`XMP_NAMESPACE`]), which makes the file use the extended
//!   (VP8X) layout.
//!
//! EXIF always gets its orientation reset to 1, since the pixels are already upright.
//! The file is written to a temporary name in the destination folder, synced, then moved into
//! place, so a crash never leaves a half-written image under the final name. The destination
//! folder must exist (it is not created).

use super::error::{ImagingError, Result};
use super::{jpeg_meta, webp_meta, xmp};
use image::metadata::Orientation;
use image::{GrayImage, ImageEncoder, RgbImage};
use std::borrow::Cow;
use std::io::Write;
use std::path::{Path, PathBuf};

pub use super::settings_meta::{read_settings, read_settings_from_memory};
pub use super::xmp::NAMESPACE as XMP_NAMESPACE;

/// PNG text keyword that holds the generation settings (JSON).
pub const SETTINGS_KEY: &str = "varsr";

/// Value of the PNG "Software" chunk and of the WebP XMP `xmp:CreatorTool`.
pub const SOFTWARE: &str = concat!("VARSR Studio ", env!("CARGO_PKG_VERSION"));

/// Output encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    Png,
    /// `quality` 1–100 (clamped).
    Jpeg {
        quality: u8,
    },
    /// Lossless (the only WebP encoding the `image` crate offers).
    WebP,
}

impl OutputFormat {
    /// JPEG quality used by [`OutputFormat::from_extension`].
    pub const DEFAULT_JPEG_QUALITY: u8 = 95;

    /// From a file extension (`png`, `jpg`/`jpeg`, `webp`; case-insensitive).
    pub fn from_extension(ext: &str) -> Option<Self> {
        match ext.to_ascii_lowercase().as_str() {
            "png" => Some(Self::Png),
            "jpg" | "jpeg" => Some(Self::Jpeg {
                quality: Self::DEFAULT_JPEG_QUALITY,
            }),
            "webp" => Some(Self::WebP),
            _ => None,
        }
    }

    /// From the extension of `path`.
    pub fn from_path(path: impl AsRef<Path>) -> Option<Self> {
        path.as_ref()
            .extension()
            .and_then(|e| e.to_str())
            .and_then(Self::from_extension)
    }

    /// Canonical file extension, without the dot.
    pub fn extension(&self) -> &'static str {
        match self {
            Self::Png => "png",
            Self::Jpeg { .. } => "jpg",
            Self::WebP => "webp",
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Self::Png => "PNG",
            Self::Jpeg { .. } => "JPEG",
            Self::WebP => "WebP",
        }
    }
}

/// What to write besides the pixels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SaveOptions {
    pub format: OutputFormat,
    /// Generation settings as a JSON string, stored in every format (see the module docs).
    pub settings_json: Option<String>,
    /// ICC profile to embed, usually [`LoadedImage::icc`](super::LoadedImage::icc).
    pub icc: Option<Vec<u8>>,
    /// Raw EXIF (TIFF structure, no `Exif\0\0` prefix), usually
    /// [`LoadedImage::exif`](super::LoadedImage::exif). Its orientation is reset to 1.
    pub exif: Option<Vec<u8>>,
    /// Replace an existing file at the destination.
    pub overwrite: bool,
}

impl SaveOptions {
    /// Plain options for `format`: no metadata, no overwrite.
    pub fn new(format: OutputFormat) -> Self {
        Self {
            format,
            settings_json: None,
            icc: None,
            exif: None,
            overwrite: false,
        }
    }
}

/// Encodes and writes `rgb` (+ optional `alpha`, same size) to `path`; see the module docs.
///
/// Errors: [`ImagingError::AlreadyExists`] if `path` exists and `overwrite` is false,
/// [`ImagingError::Write`] if the folder is missing or unwritable,
/// [`ImagingError::Encode`] if the encoder refuses the image.
pub fn save(
    path: impl AsRef<Path>,
    rgb: &RgbImage,
    alpha: Option<&GrayImage>,
    options: &SaveOptions,
) -> Result<()> {
    let path = path.as_ref();
    if !options.overwrite && std::fs::symlink_metadata(path).is_ok() {
        return Err(ImagingError::AlreadyExists {
            path: path.to_path_buf(),
        });
    }
    let bytes = encode(rgb, alpha, options).map_err(|e| match e {
        ImagingError::Encode {
            format, message, ..
        } => ImagingError::Encode {
            path: path.to_path_buf(),
            format,
            message,
        },
        other => other,
    })?;
    write_atomic(path, &bytes, options.overwrite)
}

/// Encodes to memory (clipboard, previews) exactly as [`save`] would write the file.
pub fn encode(rgb: &RgbImage, alpha: Option<&GrayImage>, options: &SaveOptions) -> Result<Vec<u8>> {
    if let Some(a) = alpha
        && a.dimensions() != rgb.dimensions()
    {
        return Err(ImagingError::SizeMismatch {
            what: "alpha plane",
            got: a.dimensions(),
            expected: rgb.dimensions(),
        });
    }
    let exif = options.exif.as_ref().map(|e| {
        let mut e = e.clone();
        let _ = Orientation::remove_from_exif_chunk(&mut e);
        e
    });
    let fmt = options.format;
    let encode_err = |message: String| ImagingError::Encode {
        path: PathBuf::new(),
        format: fmt.name().to_string(),
        message,
    };
    match fmt {
        OutputFormat::Png => encode_png(rgb, alpha, options, exif.as_deref()).map_err(encode_err),
        OutputFormat::Jpeg { quality } => {
            let flat;
            let rgb = match alpha {
                Some(a) => {
                    flat = flatten_on_white(rgb, a);
                    &flat
                }
                None => rgb,
            };
            let mut out = Vec::new();
            let mut enc =
                image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality.clamp(1, 100));
            add_metadata(&mut enc, options.icc.as_ref(), exif);
            enc.write_image(
                rgb.as_raw(),
                rgb.width(),
                rgb.height(),
                image::ExtendedColorType::Rgb8,
            )
            .map_err(|e| encode_err(e.to_string()))?;
            match &options.settings_json {
                Some(json) => jpeg_meta::insert_settings(&out, json).map_err(encode_err),
                None => Ok(out),
            }
        }
        OutputFormat::WebP => {
            let mut out = Vec::new();
            let mut enc = image::codecs::webp::WebPEncoder::new_lossless(&mut out);
            add_metadata(&mut enc, options.icc.as_ref(), exif);
            let (data, color) = interleave(rgb, alpha);
            enc.write_image(&data, rgb.width(), rgb.height(), color)
                .map_err(|e| encode_err(e.to_string()))?;
            match &options.settings_json {
                Some(json) => webp_meta::add_xmp(&out, xmp::packet(json, SOFTWARE).as_bytes())
                    .map_err(encode_err),
                None => Ok(out),
            }
        }
    }
}

fn add_metadata(enc: &mut impl ImageEncoder, icc: Option<&Vec<u8>>, exif: Option<Vec<u8>>) {
    // Both encoders used here accept metadata; an encoder that did not would only lose it.
    if let Some(icc) = icc {
        let _ = enc.set_icc_profile(icc.clone());
    }
    if let Some(exif) = exif {
        let _ = enc.set_exif_metadata(exif);
    }
}

/// RGB or RGBA bytes for the encoders.
fn interleave<'a>(
    rgb: &'a RgbImage,
    alpha: Option<&GrayImage>,
) -> (Cow<'a, [u8]>, image::ExtendedColorType) {
    match alpha {
        None => (Cow::Borrowed(rgb.as_raw()), image::ExtendedColorType::Rgb8),
        Some(a) => {
            let data = rgb
                .as_raw()
                .chunks_exact(3)
                .zip(a.as_raw())
                .flat_map(|(p, &a)| [p[0], p[1], p[2], a])
                .collect();
            (Cow::Owned(data), image::ExtendedColorType::Rgba8)
        }
    }
}

/// `c·a + 255·(1 − a)` with a = alpha/255, rounded.
fn flatten_on_white(rgb: &RgbImage, alpha: &GrayImage) -> RgbImage {
    let mut out = rgb.clone();
    for (px, &a) in out.pixels_mut().zip(alpha.as_raw()) {
        for c in &mut px.0 {
            let v = u32::from(*c) * u32::from(a) + 255 * (255 - u32::from(a));
            *c = ((v + 127) / 255) as u8;
        }
    }
    out
}

fn encode_png(
    rgb: &RgbImage,
    alpha: Option<&GrayImage>,
    options: &SaveOptions,
    exif: Option<&[u8]>,
) -> std::result::Result<Vec<u8>, String> {
    let (data, color) = interleave(rgb, alpha);
    let mut info = png::Info::with_size(rgb.width(), rgb.height());
    info.color_type = if color == image::ExtendedColorType::Rgba8 {
        png::ColorType::Rgba
    } else {
        png::ColorType::Rgb
    };
    info.bit_depth = png::BitDepth::Eight;
    info.icc_profile = options.icc.as_deref().map(Cow::Borrowed);
    info.exif_metadata = exif.map(Cow::Borrowed);
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::with_info(&mut out, info).map_err(|e| e.to_string())?;
        enc.add_text_chunk("Software".into(), SOFTWARE.into())
            .map_err(|e| e.to_string())?;
        if let Some(json) = &options.settings_json {
            if json.chars().all(|c| u32::from(c) <= 0xFF) {
                enc.add_text_chunk(SETTINGS_KEY.into(), json.clone())
            } else {
                enc.add_itxt_chunk(SETTINGS_KEY.into(), json.clone())
            }
            .map_err(|e| e.to_string())?;
        }
        let mut writer = enc.write_header().map_err(|e| e.to_string())?;
        writer.write_image_data(&data).map_err(|e| e.to_string())?;
        writer.finish().map_err(|e| e.to_string())?;
    }
    Ok(out)
}

/// Writes `bytes` to `path` through a temporary file in the same folder.
fn write_atomic(path: &Path, bytes: &[u8], overwrite: bool) -> Result<()> {
    let write_err = |source| ImagingError::Write {
        path: path.to_path_buf(),
        source,
    };
    let file_name = path.file_name().ok_or_else(|| {
        ImagingError::InvalidArgument(format!("{}: not a file name", path.display()))
    })?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let (tmp, mut file) = create_temp(dir, &file_name.to_string_lossy()).map_err(write_err)?;
    let cleanup = |e: ImagingError| {
        let _ = std::fs::remove_file(&tmp);
        e
    };
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| cleanup(write_err(e)))?;
    drop(file);
    if overwrite {
        return std::fs::rename(&tmp, path).map_err(|e| cleanup(write_err(e)));
    }
    // A hard link fails if the destination exists, so two savers cannot clobber each other.
    match std::fs::hard_link(&tmp, path) {
        Ok(()) => {
            let _ = std::fs::remove_file(&tmp);
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Err(cleanup(ImagingError::AlreadyExists {
                path: path.to_path_buf(),
            }))
        }
        // File systems without hard links (FAT, some network shares): check, then rename.
        Err(_) => {
            if std::fs::symlink_metadata(path).is_ok() {
                return Err(cleanup(ImagingError::AlreadyExists {
                    path: path.to_path_buf(),
                }));
            }
            std::fs::rename(&tmp, path).map_err(|e| cleanup(write_err(e)))
        }
    }
}

fn create_temp(dir: &Path, name: &str) -> std::io::Result<(PathBuf, std::fs::File)> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let mut last_err = None;
    for _ in 0..64 {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{name}.{}-{n}.part", std::process::id()));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
        {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last_err = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_err.unwrap_or_else(|| std::io::Error::other("no free temporary name")))
}

/// The `"varsr"` settings JSON of a PNG written by [`save`] ([`read_settings`] reads every
/// format), or `None` if the file is not a readable PNG or has no such chunk (only chunks before
/// the image data are looked at, which is where [`save`] and most tools put them).
pub fn read_png_metadata(path: impl AsRef<Path>) -> Option<String> {
    let file = std::fs::File::open(path).ok()?;
    read_png_text(std::io::BufReader::new(file), SETTINGS_KEY)
}

/// As [`read_png_metadata`], for PNG bytes in memory.
pub fn read_png_metadata_from_memory(bytes: &[u8]) -> Option<String> {
    read_png_text(std::io::Cursor::new(bytes), SETTINGS_KEY)
}

pub(super) fn read_png_text<R: std::io::BufRead + std::io::Seek>(
    r: R,
    key: &str,
) -> Option<String> {
    let reader = png::Decoder::new(r).read_info().ok()?;
    let info = reader.info();
    info.uncompressed_latin1_text
        .iter()
        .find(|c| c.keyword == key)
        .map(|c| c.text.clone())
        .or_else(|| {
            info.utf8_text
                .iter()
                .find(|c| c.keyword == key)
                .and_then(|c| c.get_text().ok())
        })
        .or_else(|| {
            info.compressed_latin1_text
                .iter()
                .find(|c| c.keyword == key)
                .and_then(|c| c.get_text().ok())
        })
}

#[cfg(test)]
#[path = "save_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "save_settings_tests.rs"]
mod settings_tests;
