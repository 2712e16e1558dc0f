//! Export: names from a template, the settings written into the file, no silent overwrite, the
//! scale sequence as an animated GIF or a contact sheet, copying the result.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use image::{RgbaImage, imageops};

use super::settings::ExportFormat;
use super::state::{ExportWhat, PendingOverwrite, Sample, State};
use super::tasks::Done;
use super::{Command, VarsrApp};
use crate::worker::Picture;

/// Fills the name template; the result is a file name without extension, safe on every system.
pub fn file_stem(template: &str, input_name: &str, sample: &Sample) -> String {
    let p = &sample.options.params;
    let name = template
        .replace("{name}", input_name)
        .replace("{scale}", &sample.options.scale.to_string())
        .replace("{cfg}", &short_number(p.cfg))
        .replace("{seed}", &sample.seed.to_string())
        .replace("{topk}", &p.top_k.to_string())
        .replace("{topp}", &short_number(p.top_p));
    let clean: String = name
        .chars()
        .map(|c| match c {
            '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|' => '_',
            c if c.is_control() => '_',
            c => c,
        })
        .collect();
    let clean = clean.trim().trim_matches('.').to_string();
    if clean.is_empty() {
        "varsr".into()
    } else {
        clean
    }
}

/// 6.0 → "6", 6.5 → "6.5", 0.75 → "0.75".
fn short_number(v: f32) -> String {
    let s = format!("{:.2}", v);
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// `name (2).ext`, `name (3).ext`, … : the first that does not exist.
pub fn numbered(path: &Path) -> PathBuf {
    let stem = path
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    let ext = path.extension().map(|e| e.to_string_lossy().into_owned());
    let dir = path.parent().unwrap_or(Path::new("."));
    for n in 2.. {
        let name = match &ext {
            Some(e) => format!("{stem} ({n}).{e}"),
            None => format!("{stem} ({n})"),
        };
        let candidate = dir.join(name);
        if !candidate.exists() {
            return candidate;
        }
    }
    unreachable!("some number is free")
}

/// The settings of a result as JSON for the file's metadata (enough to reproduce it).
pub fn settings_json(model: &str, input: Option<&Path>, sample: &Sample) -> String {
    let p = &sample.options.params;
    serde_json::json!({
        "software": format!("VARSR Studio {}", env!("CARGO_PKG_VERSION")),
        "model": model,
        "scale": sample.options.scale,
        "cfg": p.cfg,
        "seed": sample.seed,
        "top_k": p.top_k,
        "top_p": p.top_p,
        "partial": sample.partial,
        "source": input.map(|p| p.display().to_string()),
    })
    .to_string()
}

/// What a background export needs.
pub struct ExportJob {
    pub path: PathBuf,
    pub what: ExportWhat,
    pub format: ExportFormat,
    pub quality: u8,
    pub settings_json: Option<String>,
    pub icc: Option<Arc<Vec<u8>>>,
    pub exif: Option<Arc<Vec<u8>>>,
    pub image: Picture,
    pub scales: Vec<Picture>,
    pub overwrite: bool,
}

impl ExportJob {
    pub fn run(self) -> Result<(), String> {
        match self.what {
            ExportWhat::Image => self.save(&self.image, self.format),
            ExportWhat::Gif => {
                let bytes = scales_gif(&self.scales, &self.image)?;
                super::save::write_atomic(&self.path, &bytes, self.overwrite)
            }
            ExportWhat::ContactSheet => {
                let sheet = contact_sheet(&self.scales, &self.image);
                self.save(&sheet, ExportFormat::Png)
            }
            ExportWhat::TrustMap => self.save(&self.image, ExportFormat::Png),
        }
    }

    fn save(&self, image: &RgbaImage, format: ExportFormat) -> Result<(), String> {
        use crate::imaging::{OutputFormat, SaveOptions};
        let (rgb, alpha) = crate::imaging::split_rgba(image);
        let alpha = alpha.pixels().any(|a| a.0[0] < 255).then_some(alpha);
        let options = SaveOptions {
            format: match format {
                ExportFormat::Png => OutputFormat::Png,
                ExportFormat::Jpeg => OutputFormat::Jpeg {
                    quality: self.quality.clamp(1, 100),
                },
                ExportFormat::WebP => OutputFormat::WebP,
            },
            settings_json: self.settings_json.clone(),
            icc: self.icc.as_deref().cloned(),
            exif: self.exif.as_deref().cloned(),
            overwrite: self.overwrite,
        };
        crate::imaging::save(&self.path, &rgb, alpha.as_ref(), &options).map_err(|e| e.to_string())
    }
}

/// The scales, then the result, as a looping GIF at the size of the scale previews.
pub fn scales_gif(scales: &[Picture], result: &RgbaImage) -> Result<Vec<u8>, String> {
    use image::codecs::gif::{GifEncoder, Repeat};
    use image::{Delay, Frame};
    let (w, h) = scales
        .first()
        .map_or((result.width(), result.height()), |s| {
            (s.width(), s.height())
        });
    let fit = |img: &RgbaImage| {
        if img.dimensions() == (w, h) {
            img.clone()
        } else {
            imageops::resize(img, w, h, imageops::FilterType::Triangle)
        }
    };
    let mut frames: Vec<Frame> = scales
        .iter()
        .map(|s| Frame::from_parts(fit(s), 0, 0, Delay::from_numer_denom_ms(450, 1)))
        .collect();
    frames.push(Frame::from_parts(
        fit(result),
        0,
        0,
        Delay::from_numer_denom_ms(2000, 1),
    ));
    let mut bytes = Vec::new();
    {
        let mut enc = GifEncoder::new_with_speed(&mut bytes, 10);
        enc.set_repeat(Repeat::Infinite)
            .map_err(|e| e.to_string())?;
        enc.encode_frames(frames).map_err(|e| e.to_string())?;
    }
    Ok(bytes)
}

/// The scales and the result in a grid, coarse to fine, row by row.
pub fn contact_sheet(scales: &[Picture], result: &RgbaImage) -> RgbaImage {
    const CELL: u32 = 256;
    const GAP: u32 = 8;
    let mut cells: Vec<&RgbaImage> = scales.iter().map(|p| p.as_ref()).collect();
    cells.push(result);
    let cols = 4u32.min(cells.len() as u32).max(1);
    let rows = (cells.len() as u32).div_ceil(cols);
    let aspect = result.height() as f32 / result.width().max(1) as f32;
    let (cw, ch) = if aspect <= 1.0 {
        (CELL, ((CELL as f32 * aspect).round() as u32).max(1))
    } else {
        (((CELL as f32 / aspect).round() as u32).max(1), CELL)
    };
    let mut sheet = RgbaImage::from_pixel(
        cols * (cw + GAP) + GAP,
        rows * (ch + GAP) + GAP,
        image::Rgba([24, 24, 24, 255]),
    );
    for (i, cell) in cells.iter().enumerate() {
        let (c, r) = (i as u32 % cols, i as u32 / cols);
        let small = imageops::resize(*cell, cw, ch, imageops::FilterType::Triangle);
        imageops::overlay(
            &mut sheet,
            &small,
            (GAP + c * (cw + GAP)) as i64,
            (GAP + r * (ch + GAP)) as i64,
        );
    }
    sheet
}

impl VarsrApp {
    fn export_dir(&self) -> PathBuf {
        self.settings
            .last_export_dir
            .clone()
            .or_else(|| {
                self.state
                    .input
                    .as_ref()
                    .and_then(|i| i.image.path.as_ref())
                    .and_then(|p| p.parent().map(Path::to_path_buf))
            })
            .or_else(|| {
                directories::UserDirs::new().and_then(|u| u.picture_dir().map(Path::to_path_buf))
            })
            .unwrap_or_else(|| PathBuf::from("."))
    }

    fn default_path(&self, what: ExportWhat) -> Option<PathBuf> {
        let input = self.state.input.as_ref()?;
        let sample = self.state.selected_sample()?;
        let stem = file_stem(&self.settings.name_template, &input.name, sample);
        let name = match what {
            ExportWhat::Image => format!("{stem}.{}", self.settings.export_format.extension()),
            ExportWhat::Gif => format!("{stem}_scales.gif"),
            ExportWhat::ContactSheet => format!("{stem}_scales.png"),
            ExportWhat::TrustMap => format!("{stem}_trust-{}.png", self.settings.trust_map.slug()),
        };
        Some(self.export_dir().join(name))
    }

    pub(super) fn apply_export_command(&mut self, command: Command) {
        match command {
            Command::Export => self.export_default(ExportWhat::Image),
            Command::ExportGif => self.export_default(ExportWhat::Gif),
            Command::ExportContactSheet => self.export_default(ExportWhat::ContactSheet),
            Command::ExportTrustMap => self.export_default(ExportWhat::TrustMap),
            Command::ExportAs => {
                let Some(path) = self.default_path(ExportWhat::Image) else {
                    self.state.notice = Some("Nothing to export yet.".into());
                    return;
                };
                let name = path
                    .file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
                let filters = vec![
                    ("PNG", &["png"][..]),
                    ("JPEG", &["jpg", "jpeg"][..]),
                    ("WebP", &["webp"][..]),
                ];
                self.tasks
                    .save_dialog(path.parent().map(Path::to_path_buf), name, filters);
            }
            Command::ConfirmOverwrite => {
                if let Some(p) = self.state.overwrite.take() {
                    self.export_to(p.path, p.what, true);
                }
            }
            Command::KeepBoth => {
                if let Some(p) = self.state.overwrite.take() {
                    let path = numbered(&p.path);
                    self.export_to(path, p.what, false);
                }
            }
            Command::DismissOverwrite => self.state.overwrite = None,
            Command::CopyResult => self.copy_result(),
            Command::OpenOutputFolder => {
                let dir = self
                    .state
                    .samples
                    .iter()
                    .rev()
                    .find_map(|s| s.saved_to.as_ref())
                    .and_then(|p| p.parent().map(Path::to_path_buf))
                    .unwrap_or_else(|| self.export_dir());
                open_folder(&dir, &mut self.log);
            }
            _ => {}
        }
    }

    fn export_default(&mut self, what: ExportWhat) {
        let Some(path) = self.default_path(what) else {
            self.state.notice = Some("Nothing to export yet: upscale an image first.".into());
            return;
        };
        if what == ExportWhat::TrustMap && self.shown_trust_map().is_none() {
            self.state.notice =
                Some("No trust map to export yet: turn on the trust view (T) first.".into());
            return;
        }
        if matches!(what, ExportWhat::Gif | ExportWhat::ContactSheet)
            && self
                .state
                .selected_sample()
                .is_some_and(|s| s.scales.is_empty())
        {
            self.state.notice = Some("This result has no scale previews to export.".into());
            return;
        }
        if path.exists() {
            self.state.overwrite = Some(PendingOverwrite { path, what });
        } else {
            self.export_to(path, what, false);
        }
    }

    /// Writes in the background; `overwrite` only after the person said so.
    pub(super) fn export_to(&mut self, mut path: PathBuf, what: ExportWhat, overwrite: bool) {
        let Some(sample) = self.state.selected_sample() else {
            return;
        };
        let mut format = self.settings.export_format;
        if what == ExportWhat::Image {
            match path
                .extension()
                .and_then(|e| ExportFormat::from_extension(&e.to_string_lossy()))
            {
                Some(f) => format = f,
                None => {
                    path.set_extension(format.extension());
                }
            }
        }
        let model = self
            .state
            .model
            .ready()
            .map_or_else(|| "unknown".to_string(), |i| i.description.clone());
        let input_path = self.state.input.as_ref().and_then(|i| i.image.path.clone());
        let input = self.state.input.as_ref().map(|i| &i.image);
        let keep = self.settings.write_metadata;
        let settings_json = keep.then(|| settings_json(&model, input_path.as_deref(), sample));
        // The photo's colour profile and EXIF describe the photo, not a heat map of it.
        let photo = what != ExportWhat::TrustMap;
        let icc = input.and_then(|i| i.icc.clone()).filter(|_| photo);
        let exif = input.and_then(|i| i.exif.clone()).filter(|_| keep && photo);
        let job = ExportJob {
            path: path.clone(),
            what,
            format,
            quality: self.settings.export_quality,
            settings_json,
            icc,
            exif,
            image: match what {
                ExportWhat::TrustMap => match self.shown_trust_map() {
                    Some(map) => map,
                    None => return,
                },
                _ => Arc::clone(&sample.image),
            },
            scales: sample.scales.pictures(),
            overwrite,
        };
        if let Some(dir) = path.parent() {
            self.settings.last_export_dir = Some(dir.to_path_buf());
        }
        self.log.push(format!("Exporting {}", path.display()));
        self.state.exporting += 1;
        self.tasks.spawn("export", move || {
            let result = job.run();
            Done::Exported { path, result }
        });
    }

    pub(super) fn on_exported(&mut self, path: PathBuf, result: Result<(), String>) {
        self.state.exporting = self.state.exporting.saturating_sub(1);
        match result {
            Ok(()) => {
                self.log.push(format!("Saved {}", path.display()));
                self.state.notice = Some(format!("Saved {}", path.display()));
                if let Some(s) = self.state.samples.get_mut(self.state.selected) {
                    s.saved_to = Some(path);
                }
            }
            Err(e) => {
                self.log
                    .push(format!("Export to {} failed: {e}", path.display()));
                self.state.error = Some(format!("Could not save {}: {e}", path.display()));
            }
        }
    }

    fn copy_result(&mut self) {
        let Some(sample) = self.state.selected_sample() else {
            self.state.notice = Some("Nothing to copy yet.".into());
            return;
        };
        let image = super::textures::to_color_image(&sample.image);
        let (w, h) = (sample.image.width(), sample.image.height());
        self.ctx.copy_image(image);
        self.log
            .push(format!("Copied the result ({w}×{h}) to the clipboard"));
        self.state.notice = Some(format!("Copied the result ({w}×{h}) to the clipboard."));
    }
}

fn open_folder(dir: &Path, log: &mut super::log::Log) {
    #[cfg(target_os = "windows")]
    let program = "explorer";
    #[cfg(target_os = "macos")]
    let program = "open";
    #[cfg(not(any(target_os = "windows", target_os = "macos")))]
    let program = "xdg-open";
    if let Err(e) = std::process::Command::new(program).arg(dir).spawn() {
        log.push(format!("Could not open {}: {e}", dir.display()));
    }
}

/// Asks before replacing an existing file.
pub fn overwrite_dialog(ctx: &egui::Context, state: &State, cmds: &mut Vec<Command>) {
    let Some(p) = &state.overwrite else { return };
    let modal = egui::Modal::new(egui::Id::unique("overwrite")).show(ctx, |ui| {
        ui.set_width(440.0);
        ui.heading("Replace the existing file?");
        ui.label(format!("{} already exists.", p.path.display()));
        ui.add_space(8.0);
        ui.horizontal(|ui| {
            if ui.button("Replace").clicked() {
                cmds.push(Command::ConfirmOverwrite);
            }
            if ui.button("Keep both").clicked() {
                cmds.push(Command::KeepBoth);
            }
            if ui.button("Cancel").clicked() {
                cmds.push(Command::DismissOverwrite);
            }
        });
    });
    if modal.should_close()
        && !cmds
            .iter()
            .any(|c| matches!(c, Command::ConfirmOverwrite | Command::KeepBoth))
    {
        cmds.push(Command::DismissOverwrite);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_short() {
        assert_eq!(short_number(6.0), "6");
        assert_eq!(short_number(6.5), "6.5");
        assert_eq!(short_number(0.75), "0.75");
    }

    #[test]
    fn numbered_paths_skip_existing_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.png");
        std::fs::write(&p, b"1").unwrap();
        let n2 = numbered(&p);
        assert_eq!(n2, dir.path().join("a (2).png"));
        std::fs::write(&n2, b"2").unwrap();
        assert_eq!(numbered(&p), dir.path().join("a (3).png"));
    }

    #[test]
    fn contact_sheet_has_a_cell_per_scale_and_one_for_the_result() {
        let scales: Vec<Picture> = (0..10)
            .map(|i| {
                Arc::new(RgbaImage::from_pixel(
                    32,
                    16,
                    image::Rgba([i * 20, 0, 0, 255]),
                ))
            })
            .collect();
        let result = RgbaImage::from_pixel(64, 32, image::Rgba([0, 255, 0, 255]));
        let sheet = contact_sheet(&scales, &result);
        // 11 cells in 4 columns: 3 rows of 256×128 cells with 8 px gaps.
        assert_eq!(sheet.dimensions(), (4 * 264 + 8, 3 * 136 + 8));
        // The last cell (row 2, column 2) is the result.
        assert_eq!(
            sheet.get_pixel(8 + 2 * 264 + 100, 8 + 2 * 136 + 60).0,
            [0, 255, 0, 255]
        );
    }

    #[test]
    fn the_gif_decodes_to_one_frame_per_scale_plus_the_result() {
        use image::AnimationDecoder;
        let scales: Vec<Picture> = (0..3)
            .map(|i| {
                Arc::new(RgbaImage::from_pixel(
                    8,
                    8,
                    image::Rgba([i * 80, 0, 0, 255]),
                ))
            })
            .collect();
        let result = RgbaImage::from_pixel(16, 16, image::Rgba([0, 0, 255, 255]));
        let bytes = scales_gif(&scales, &result).unwrap();
        let dec = image::codecs::gif::GifDecoder::new(std::io::Cursor::new(bytes)).unwrap();
        let frames = dec.into_frames().collect_frames().unwrap();
        assert_eq!(frames.len(), 4);
        assert_eq!(frames[3].buffer().dimensions(), (8, 8));
        let px = frames[3].buffer().get_pixel(4, 4).0;
        assert!(px[2] > 200 && px[0] < 40, "{px:?}");
    }
}
