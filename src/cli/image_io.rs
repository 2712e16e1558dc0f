//! Reading inputs and writing outputs for the command line, over `imaging`'s loader and saver
//! (EXIF orientation applied and reset, alpha and ICC kept, settings in the file's metadata, atomic
//! writes, no replacing of existing files unless asked).

use std::path::{Path, PathBuf};

use crate::imaging::{self, ImagingError, OutputFormat, SaveOptions};
use crate::pipeline::upscale::{UpscaleInput, UpscaleOutput};

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Png,
    #[value(alias = "jpeg")]
    Jpg,
    Webp,
}

impl Format {
    pub fn ext(self) -> &'static str {
        self.output(95).extension()
    }

    fn output(self, quality: u8) -> OutputFormat {
        match self {
            Format::Png => OutputFormat::Png,
            Format::Jpg => OutputFormat::Jpeg { quality },
            Format::Webp => OutputFormat::WebP,
        }
    }
}

/// Loads an image for upscaling: orientation applied, alpha split off, ICC/EXIF kept.
pub fn load(path: &Path) -> Result<UpscaleInput, String> {
    imaging::load(path)
        .map(UpscaleInput::from_loaded)
        .map_err(|e| e.to_string())
}

/// Why a save did not happen.
#[derive(Debug)]
pub enum SaveError {
    Exists(PathBuf),
    Failed(String),
}

/// What goes into the file besides the pixels.
#[derive(Clone, Debug, Default)]
pub struct Extras {
    /// Generation settings (JSON: a PNG text chunk, a JPEG comment, WebP XMP).
    pub settings_json: Option<String>,
    pub icc: Option<Vec<u8>>,
    pub exif: Option<Vec<u8>>,
}

/// Encodes the result and writes it to `path` atomically; an existing file is kept unless
/// `overwrite`. The folder must exist.
pub fn save(
    path: &Path,
    out: &UpscaleOutput,
    format: Format,
    quality: u8,
    extras: &Extras,
    overwrite: bool,
) -> Result<(), SaveError> {
    let options = SaveOptions {
        format: format.output(quality),
        settings_json: extras.settings_json.clone(),
        icc: extras.icc.clone(),
        exif: extras.exif.clone(),
        overwrite,
    };
    match imaging::save(path, &out.rgb, out.alpha.as_ref(), &options) {
        Ok(()) => Ok(()),
        Err(ImagingError::AlreadyExists { path }) => Err(SaveError::Exists(path)),
        Err(e) => Err(SaveError::Failed(e.to_string())),
    }
}
