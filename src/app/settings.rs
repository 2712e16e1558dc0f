//! What the window remembers between sessions. Every field has a default, so settings written
//! by an older or newer version still load.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::imaging::trust::TrustMap;
use crate::pipeline::SamplingParams;
use crate::worker::{DeviceChoice, JobOptions, ModelSpec};

/// How many recent files the File menu keeps.
pub const MAX_RECENT: usize = 10;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum CompareMode {
    /// Input and result next to each other, zoom and pan shared.
    #[default]
    SideBySide,
    /// One view, input left of a movable divider and result right of it.
    Split,
    /// The result alone (hold Space for the input).
    Single,
}

impl CompareMode {
    pub const ALL: [CompareMode; 3] = [
        CompareMode::SideBySide,
        CompareMode::Split,
        CompareMode::Single,
    ];

    pub fn label(self) -> &'static str {
        match self {
            CompareMode::SideBySide => "Side by side",
            CompareMode::Split => "Split",
            CompareMode::Single => "Result only",
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExportFormat {
    #[default]
    Png,
    Jpeg,
    WebP,
}

impl ExportFormat {
    pub const ALL: [ExportFormat; 3] = [ExportFormat::Png, ExportFormat::Jpeg, ExportFormat::WebP];

    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::Png => "png",
            ExportFormat::Jpeg => "jpg",
            ExportFormat::WebP => "webp",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            ExportFormat::Png => "PNG",
            ExportFormat::Jpeg => "JPEG",
            ExportFormat::WebP => "WebP (lossless)",
        }
    }

    /// Whether the quality setting changes anything.
    pub fn has_quality(self) -> bool {
        self == ExportFormat::Jpeg
    }

    pub fn from_extension(ext: &str) -> Option<Self> {
        match ext.to_ascii_lowercase().as_str() {
            "png" => Some(ExportFormat::Png),
            "jpg" | "jpeg" => Some(ExportFormat::Jpeg),
            "webp" => Some(ExportFormat::WebP),
            _ => None,
        }
    }
}

/// Where the model comes from, as remembered (the embedded one or a path).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub enum ModelChoice {
    #[default]
    Embedded,
    Path(PathBuf),
}

impl ModelChoice {
    pub fn spec(&self) -> ModelSpec {
        match self {
            ModelChoice::Embedded => ModelSpec::Embedded,
            ModelChoice::Path(p) => ModelSpec::Path(p.clone()),
        }
    }

    pub fn from_spec(spec: &ModelSpec) -> Self {
        match spec {
            ModelSpec::Embedded => ModelChoice::Embedded,
            ModelSpec::Path(p) => ModelChoice::Path(p.clone()),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub params: SamplingParams,
    /// Output size relative to the input: 2, 3 or 4.
    pub scale: u32,
    pub model: ModelChoice,
    pub device: DeviceChoice,
    /// Re-render automatically shortly after the guidance or seed changes.
    pub live_guidance: bool,
    /// Draw a new seed for every upscale instead of keeping the one in the field.
    pub new_seed_each_run: bool,
    /// The first scale that "re-run from scale" samples anew.
    pub rerun_from: usize,
    pub variations: usize,
    pub compare: CompareMode,
    /// Which map the trust view shows.
    pub trust_map: TrustMap,
    pub export_format: ExportFormat,
    /// JPEG quality, 1..=100.
    pub export_quality: u8,
    /// Output name; `{name}`, `{scale}`, `{cfg}`, `{seed}`, `{topk}`, `{topp}` are filled in.
    pub name_template: String,
    /// Write the generation settings into the output's metadata.
    pub write_metadata: bool,
    pub last_open_dir: Option<PathBuf>,
    pub last_export_dir: Option<PathBuf>,
    pub recent: Vec<PathBuf>,
    pub show_log: bool,
    pub show_advanced: bool,
}

pub const DEFAULT_TEMPLATE: &str = "{name}_varsr_x{scale}_cfg{cfg}_seed{seed}";

impl Default for Settings {
    fn default() -> Self {
        Self {
            params: SamplingParams::default(),
            scale: 4,
            model: ModelChoice::Embedded,
            device: DeviceChoice::Auto,
            live_guidance: true,
            new_seed_each_run: false,
            rerun_from: 5,
            variations: 4,
            compare: CompareMode::SideBySide,
            trust_map: TrustMap::Invented,
            export_format: ExportFormat::Png,
            export_quality: 92,
            name_template: DEFAULT_TEMPLATE.into(),
            write_metadata: true,
            last_open_dir: None,
            last_export_dir: None,
            recent: Vec::new(),
            show_log: false,
            show_advanced: false,
        }
    }
}

impl Settings {
    pub fn job_options(&self) -> JobOptions {
        JobOptions {
            params: self.params.clone(),
            scale: self.scale.clamp(2, 4),
            previews: true,
        }
    }

    /// Puts `path` first in the recent list.
    pub fn add_recent(&mut self, path: PathBuf) {
        self.recent.retain(|p| p != &path);
        self.recent.insert(0, path);
        self.recent.truncate(MAX_RECENT);
    }

    /// Back to the defaults, keeping what is history rather than preference.
    pub fn reset_keep_history(&mut self) {
        let keep = (
            self.recent.clone(),
            self.last_open_dir.clone(),
            self.last_export_dir.clone(),
            self.model.clone(),
        );
        *self = Self::default();
        (
            self.recent,
            self.last_open_dir,
            self.last_export_dir,
            self.model,
        ) = keep;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_from_an_older_version_fill_missing_fields_with_defaults() {
        let s: Settings = serde_json::from_str(r#"{"scale": 2, "params": {"cfg": 3.5}}"#).unwrap();
        assert_eq!(s.scale, 2);
        assert_eq!(s.params.cfg, 3.5);
        assert_eq!(s.params.seed, SamplingParams::default().seed);
        assert_eq!(s.name_template, DEFAULT_TEMPLATE);
    }

    #[test]
    fn recent_files_are_unique_newest_first_and_bounded() {
        let mut s = Settings::default();
        for i in 0..15 {
            s.add_recent(format!("/p/{i}.png").into());
        }
        s.add_recent("/p/3.png".into());
        assert_eq!(s.recent.len(), MAX_RECENT);
        assert_eq!(s.recent[0], PathBuf::from("/p/3.png"));
        assert_eq!(s.recent.iter().filter(|p| p.ends_with("3.png")).count(), 1);
    }

    #[test]
    fn reset_keeps_history() {
        let mut s = Settings::default();
        s.params.cfg = 2.0;
        s.add_recent("/a.png".into());
        s.reset_keep_history();
        assert_eq!(s.params.cfg, SamplingParams::DEFAULT_CFG);
        assert_eq!(s.recent, vec![PathBuf::from("/a.png")]);
    }
}
