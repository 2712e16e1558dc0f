//! Loading any supported file (PNG, JPEG, WebP, TIFF, GIF first frame) into what the model sees:
//! an upright 8-bit RGB image, with the alpha channel and colour metadata kept apart.
//!
//! * EXIF orientation (all 8 values) is applied to the pixels, and the returned EXIF block has
//!   its orientation reset to 1 so it stays true for the rotated pixels.
//! * Grayscale is replicated to RGB; 16-bit and float samples are rounded to 8 bits
//!   (`round(v · 255 / 65535)`), which is what the model gets anyway.
//! * Alpha is split off as an 8-bit plane; a fully opaque alpha channel is dropped (`None`).
//!   The colour of fully transparent pixels is replaced by that of the nearest visible ones
//!   ([`bleed_transparent`]) so it cannot leak into visible edges during upscaling; visible
//!   pixels keep their colour exactly.
//! * Dimensions are checked against [`LoadLimits`] from the header, before any pixel buffer is
//!   allocated.

use super::alpha::bleed_transparent;
use super::error::{ImagingError, Result};
use image::metadata::Orientation;
use image::{ColorType, DynamicImage, GrayImage, ImageDecoder, ImageFormat, ImageReader, RgbImage};
use std::io::{BufRead, BufReader, Cursor, Seek};
use std::path::{Path, PathBuf};

/// Largest image accepted by default: 16384 px a side and 16384² (≈ 268 Mpx) in total.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadLimits {
    pub max_width: u32,
    pub max_height: u32,
    pub max_pixels: u64,
}

impl Default for LoadLimits {
    fn default() -> Self {
        Self {
            max_width: 16384,
            max_height: 16384,
            max_pixels: 16384 * 16384,
        }
    }
}

/// A decoded input image, upright, ready for the model.
#[derive(Clone, Debug)]
pub struct LoadedImage {
    /// 8-bit RGB, orientation applied: what the model sees. Where alpha is 0 the colour is
    /// bled from the nearest visible pixels (see the module docs).
    pub rgb: RgbImage,
    /// 8-bit alpha (same size as `rgb`), `None` if the source had none or it was fully opaque.
    pub alpha: Option<GrayImage>,
    /// Colour type of the decoded source (before conversion), e.g. `L8`, `Rgba16`.
    pub source_color: ColorType,
    /// Bits per channel of the source: 8, 16 or 32 (float).
    pub bit_depth: u8,
    pub format: ImageFormat,
    /// Orientation found in the file; already applied to `rgb` and `alpha`.
    pub orientation: Orientation,
    /// Embedded ICC profile, verbatim.
    pub icc: Option<Vec<u8>>,
    /// Raw EXIF (TIFF-structured, starting with `II*\0` / `MM\0*`), orientation reset to 1.
    pub exif: Option<Vec<u8>>,
    /// File it came from; `None` for [`load_from_memory`].
    pub path: Option<PathBuf>,
}

impl LoadedImage {
    pub fn width(&self) -> u32 {
        self.rgb.width()
    }

    pub fn height(&self) -> u32 {
        self.rgb.height()
    }

    /// True for L/LA sources (the model still gets RGB).
    pub fn is_grayscale(&self) -> bool {
        !self.source_color.has_color()
    }
}

/// Label used in errors for in-memory images.
pub const MEMORY_LABEL: &str = "<memory>";

/// Loads `path` with the default [`LoadLimits`].
pub fn load(path: impl AsRef<Path>) -> Result<LoadedImage> {
    load_with_limits(path, &LoadLimits::default())
}

/// Loads `path`; the format is sniffed from the content, falling back to the extension.
pub fn load_with_limits(path: impl AsRef<Path>, limits: &LoadLimits) -> Result<LoadedImage> {
    let path = path.as_ref();
    let read_err = |source| ImagingError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let mut reader = ImageReader::new(BufReader::new(file));
    if let Ok(format) = ImageFormat::from_path(path) {
        reader.set_format(format);
    }
    let mut loaded = decode(reader, path, limits)?;
    loaded.path = Some(path.to_path_buf());
    Ok(loaded)
}

/// Loads encoded bytes (paste, drag and drop) with the default limits; errors name `<memory>`.
pub fn load_from_memory(bytes: &[u8]) -> Result<LoadedImage> {
    load_from_memory_with_limits(bytes, &LoadLimits::default())
}

pub fn load_from_memory_with_limits(bytes: &[u8], limits: &LoadLimits) -> Result<LoadedImage> {
    decode(
        ImageReader::new(Cursor::new(bytes)),
        Path::new(MEMORY_LABEL),
        limits,
    )
}

fn decode<R: BufRead + Seek>(
    reader: ImageReader<R>,
    path: &Path,
    limits: &LoadLimits,
) -> Result<LoadedImage> {
    let mut reader = reader
        .with_guessed_format()
        .map_err(|source| ImagingError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    let format = reader.format().ok_or_else(|| ImagingError::UnknownFormat {
        path: path.to_path_buf(),
    })?;
    let format_name = format!("{format:?}").to_uppercase();
    let decode_err = |source: image::ImageError| match source {
        image::ImageError::IoError(source) => ImagingError::Read {
            path: path.to_path_buf(),
            source,
        },
        image::ImageError::Unsupported(ref u)
            if matches!(
                u.kind(),
                image::error::UnsupportedErrorKind::Format(image::error::ImageFormatHint::Unknown)
            ) =>
        {
            ImagingError::UnknownFormat {
                path: path.to_path_buf(),
            }
        }
        source => ImagingError::Decode {
            path: path.to_path_buf(),
            format: format_name.clone(),
            source,
        },
    };

    // Dimensions are checked here, from the header, for a clear error; image's own limits then
    // guard the allocations its decoders make, sized for the largest accepted image at 4 × f32
    // per pixel.
    reader.no_limits();
    let mut decoder = reader.into_decoder().map_err(decode_err)?;
    let (width, height) = decoder.dimensions();
    if width > limits.max_width
        || height > limits.max_height
        || u64::from(width) * u64::from(height) > limits.max_pixels
    {
        return Err(ImagingError::TooLarge {
            path: path.to_path_buf(),
            width,
            height,
            max_width: limits.max_width,
            max_height: limits.max_height,
            max_pixels: limits.max_pixels,
        });
    }
    let mut image_limits = image::Limits::default();
    image_limits.max_image_width = Some(limits.max_width);
    image_limits.max_image_height = Some(limits.max_height);
    image_limits.max_alloc = Some(limits.max_pixels.saturating_mul(16).max(1 << 26));
    decoder.set_limits(image_limits).map_err(decode_err)?;
    // Metadata problems must not make an otherwise readable image fail.
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let icc = decoder.icc_profile().ok().flatten();
    let mut exif = decoder.exif_metadata().ok().flatten();
    if let Some(chunk) = exif.as_mut() {
        let _ = Orientation::remove_from_exif_chunk(chunk);
    }
    let source_color = decoder.color_type();

    let mut img = DynamicImage::from_decoder(decoder).map_err(decode_err)?;
    img.apply_orientation(orientation);

    let alpha = source_color
        .has_alpha()
        .then(|| extract_alpha(&img))
        .filter(|a| a.as_raw().iter().any(|&v| v != 255));
    let bit_depth = match source_color.bytes_per_pixel() / source_color.channel_count() {
        1 => 8,
        2 => 16,
        _ => 32,
    };
    let mut rgb = img.to_rgb8();
    if let Some(a) = &alpha {
        rgb = bleed_transparent(&rgb, a)?;
    }
    Ok(LoadedImage {
        rgb,
        alpha,
        source_color,
        bit_depth,
        format,
        orientation,
        icc,
        exif,
        path: None,
    })
}

/// The alpha plane rounded to 8 bits (image's u16→u8 conversion rounds).
fn extract_alpha(img: &DynamicImage) -> GrayImage {
    let rgba = img.to_rgba8();
    let (w, h) = rgba.dimensions();
    let data = rgba.as_raw().chunks_exact(4).map(|p| p[3]).collect();
    GrayImage::from_raw(w, h, data).unwrap_or_else(|| GrayImage::new(w, h))
}

#[cfg(test)]
#[path = "load_tests.rs"]
mod tests;
