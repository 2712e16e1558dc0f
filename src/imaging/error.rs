//! Errors of the imaging module. Every variant names the file (or `<memory>` for pasted bytes)
//! and what failed, so the CLI and GUI can show the message as is.

use std::path::PathBuf;

/// What went wrong while loading, saving or comparing images.
#[derive(Debug, thiserror::Error)]
pub enum ImagingError {
    /// The file could not be opened or read (missing, permission, I/O error).
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not in a format we can decode (or not an image at all).
    #[error("{}: not a supported image (PNG, JPEG, WebP, TIFF or GIF expected)", path.display())]
    UnknownFormat { path: PathBuf },
    /// The image is larger than the configured limits; nothing was allocated for its pixels.
    #[error(
        "{}: image is {width}×{height} ({mpx:.1} Mpx), over the limit of {max_width}×{max_height} / {max_mpx:.1} Mpx",
        path.display(),
        mpx = (*width as f64) * (*height as f64) / 1e6,
        max_mpx = (*max_pixels as f64) / 1e6
    )]
    TooLarge {
        path: PathBuf,
        width: u32,
        height: u32,
        max_width: u32,
        max_height: u32,
        max_pixels: u64,
    },
    /// The header was fine but decoding failed (truncated or corrupt data, unsupported variant).
    #[error("{}: cannot decode {format} image: {source}", path.display())]
    Decode {
        path: PathBuf,
        format: String,
        #[source]
        source: image::ImageError,
    },
    /// The output file exists and overwriting was not requested.
    #[error("{} already exists (not overwritten)", path.display())]
    AlreadyExists { path: PathBuf },
    /// The output could not be written (folder missing or not a folder, read-only, disk full…).
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The encoder rejected the image (e.g. JPEG larger than 65535 px a side).
    #[error("cannot encode {} as {format}: {message}", path.display())]
    Encode {
        path: PathBuf,
        format: String,
        message: String,
    },
    /// Two images that must have the same size do not.
    #[error("size mismatch: {what} is {got:?}, expected {expected:?}")]
    SizeMismatch {
        what: &'static str,
        got: (u32, u32),
        expected: (u32, u32),
    },
    /// An argument outside what the function accepts (e.g. a crop larger than the image).
    #[error("{0}")]
    InvalidArgument(String),
}

impl ImagingError {
    /// The closest `std::io::ErrorKind`, for callers that branch on it (e.g. "file exists").
    pub fn io_kind(&self) -> Option<std::io::ErrorKind> {
        match self {
            Self::Read { source, .. } | Self::Write { source, .. } => Some(source.kind()),
            Self::AlreadyExists { .. } => Some(std::io::ErrorKind::AlreadyExists),
            _ => None,
        }
    }

    /// True when saving refused to replace an existing file.
    pub fn is_already_exists(&self) -> bool {
        matches!(self, Self::AlreadyExists { .. })
    }
}

/// Shorthand used across the module.
pub type Result<T> = std::result::Result<T, ImagingError>;
