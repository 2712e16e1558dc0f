//! Image I/O and pixel-exact helpers around the model: loading (EXIF orientation, alpha, 16-bit,
//! limits), saving (metadata, atomic, no silent overwrite), Pillow-compatible bicubic resizing,
//! the AdaIN colour fix, alpha handling, PSNR/SSIM and the model's tensor layouts.

pub mod alpha;
pub mod color_fix;
pub mod error;
mod jpeg_meta;
pub mod load;
pub mod metrics;
pub mod pil_resize;
pub mod save;
mod settings_meta;
pub mod tensor;
pub mod trust;
mod webp_meta;
mod xmp;

pub use alpha::{bleed_transparent, combine, recombine, split_rgba, upscale_alpha};
pub use color_fix::{ChannelStats, adain_color_fix, adain_color_fix_to_lr};
pub use error::{ImagingError, Result};
pub use load::{
    LoadLimits, LoadedImage, load, load_from_memory, load_from_memory_with_limits, load_with_limits,
};
pub use metrics::{psnr_y, rgb_to_y, ssim_y};
pub use pil_resize::{resize_f32, resize_gray, resize_rgb, resize_u8};
pub use save::{
    OutputFormat, SaveOptions, encode, read_png_metadata, read_png_metadata_from_memory,
    read_settings, read_settings_from_memory, save,
};
pub use tensor::{from_unit_f32, to_model_input, unit_to_u8_round};
