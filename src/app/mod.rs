//! VARSR Studio, the window: open a photo, watch it upscale scale by scale, compare, export.
//!
//! Settings (persisted) are separate from the runtime state; panels return [`Command`]s that are
//! applied after drawing; worker events are drained in `logic` within a time budget.

mod compare;
mod controls;
mod export;
mod jobs;
pub mod log;
pub mod region;
mod save;
mod settings;
mod shortcuts;
pub mod state;
mod tasks;
pub mod textures;
pub mod trust_view;
pub mod viewer;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use settings::{CompareMode, ExportFormat, ModelChoice, Settings};
pub use state::{ExportWhat, FrameStats, JobKind, ModelStatus};

use crate::worker::{DeviceChoice, ModelSpec, Request, Worker};
use state::State;
use tasks::{Done, Pick, Tasks};
use textures::Checker;

/// How long `logic` may spend on worker messages per frame before leaving the rest for the next.
const DRAIN_BUDGET: Duration = Duration::from_millis(8);
/// Delay between the last slider move and the automatic re-render.
const RERENDER_DELAY: Duration = Duration::from_millis(400);
/// Time each scale is shown when the scales are replayed.
const REPLAY_STEP: Duration = Duration::from_millis(400);

/// How the window starts: tests pass a model and no persistence.
#[derive(Clone, Debug)]
pub struct AppOptions {
    pub files: Vec<PathBuf>,
    /// Overrides the remembered model choice.
    pub model: Option<ModelSpec>,
    pub device: Option<DeviceChoice>,
    /// Read and write settings through eframe's storage.
    pub persist: bool,
    /// Starting settings instead of defaults (tests).
    pub settings: Option<Settings>,
}

impl Default for AppOptions {
    fn default() -> Self {
        Self {
            files: Vec::new(),
            model: None,
            device: None,
            persist: true,
            settings: None,
        }
    }
}

/// Everything the UI can ask for; collected while drawing and applied afterwards.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    OpenDialog,
    Open(Vec<PathBuf>),
    Upscale,
    Cancel,
    Rerun {
        from_scale: usize,
    },
    Variations {
        n: usize,
    },
    /// Generate the tiles under the marked region again (current seed and guidance).
    ResampleRegion,
    ClearRegion,
    RerollSeed,
    ScheduleRerender,
    LoadModel,
    ChooseModelFolder,
    ChooseModelFile,
    UseEmbeddedModel,
    Export,
    ExportAs,
    ExportGif,
    ExportContactSheet,
    ExportTrustMap,
    ConfirmOverwrite,
    KeepBoth,
    DismissOverwrite,
    CopyResult,
    OpenOutputFolder,
    ResetSettings,
    ClearRecent,
    Select(usize),
    ShowInput,
    Scrub(Option<usize>),
    /// Replay the scales of the shown result, coarse to fine.
    PlayScales,
    Fit,
    Zoom(f32),
    DismissError,
    SetCompare(CompareMode),
    NextCompareMode,
    SetDevice(DeviceChoice),
    ToggleLog,
    ToggleHelp,
    /// Show the selected result's trust map in its place, or the result again.
    ToggleTrust,
    SetTrustMap(crate::imaging::trust::TrustMap),
}

pub struct VarsrApp {
    pub settings: Settings,
    pub state: State,
    pub log: log::Log,
    worker: Worker,
    tasks: Tasks,
    checker: Checker,
    persist: bool,
    /// (remembered, session) model when the session's model came from the options.
    remembered_model: Option<(ModelChoice, ModelChoice)>,
    commands: Vec<Command>,
    ctx: egui::Context,
}

impl VarsrApp {
    pub fn new(cc: &eframe::CreationContext<'_>, options: AppOptions) -> Self {
        let ctx = cc.egui_ctx.clone();
        let mut settings = options.settings.clone().unwrap_or_else(|| {
            if options.persist {
                cc.storage
                    .and_then(|s| eframe::get_value::<Settings>(s, eframe::APP_KEY))
                    .unwrap_or_default()
            } else {
                Settings::default()
            }
        });
        // A model given for this session only is not remembered.
        let remembered_model = options
            .model
            .as_ref()
            .map(|spec| (settings.model.clone(), ModelChoice::from_spec(spec)));
        if let Some((_, session)) = &remembered_model {
            settings.model = session.clone();
        }
        if let Some(d) = options.device {
            settings.device = d;
        }
        let waker_ctx = ctx.clone();
        let worker = Worker::spawn(Arc::new(move || waker_ctx.request_repaint()));
        let mut app = Self {
            settings,
            state: State::default(),
            log: log::Log::default(),
            worker,
            tasks: Tasks::new(ctx.clone()),
            checker: Checker::new(&ctx),
            persist: options.persist,
            remembered_model,
            commands: Vec::new(),
            ctx,
        };
        app.log.push(format!(
            "VARSR Studio {} started",
            env!("CARGO_PKG_VERSION")
        ));
        app.apply(Command::LoadModel);
        if !options.files.is_empty() {
            app.apply(Command::Open(options.files));
        }
        app
    }

    /// Where pictures were drawn in the last frame (tests mask them in snapshots).
    pub fn picture_rects(&self) -> Vec<egui::Rect> {
        self.state.picture_rects.clone()
    }

    /// Queues a command as if a widget had issued it (tests, menus).
    pub fn command(&mut self, command: Command) {
        self.commands.push(command);
    }

    /// Whether the worker, a loader or a debounce timer still has something coming.
    pub fn is_idle(&self) -> bool {
        self.state.job.is_none()
            && self.state.loading == 0
            && self.state.rerender_at.is_none()
            && self.state.exporting == 0
            && self.state.playing.is_none()
            && !self.state.trust_busy
            && self.missing_trust().is_none()
            && !matches!(self.state.model, ModelStatus::Loading(_))
            && !self.tasks.dialog_open
    }

    fn apply(&mut self, command: Command) {
        match command {
            Command::OpenDialog => {
                let start = self.settings.last_open_dir.clone();
                self.tasks.open_dialog(start);
            }
            Command::Open(paths) => self.open_paths(paths),
            Command::LoadModel => {
                let spec = self.settings.model.spec();
                self.state.model = ModelStatus::Loading(spec.clone());
                self.worker.send(Request::LoadModel {
                    spec,
                    device: self.settings.device,
                });
            }
            Command::ChooseModelFolder => {
                let start = self.model_dir();
                self.tasks.model_folder_dialog(start);
            }
            Command::ChooseModelFile => {
                let start = self.model_dir();
                self.tasks.model_file_dialog(start);
            }
            Command::UseEmbeddedModel => {
                self.settings.model = ModelChoice::Embedded;
                self.apply(Command::LoadModel);
            }
            Command::ResetSettings => {
                let old_model = self.settings.model.clone();
                let old_device = self.settings.device;
                self.settings.reset_keep_history();
                self.state.notice = Some("Settings reset to defaults.".into());
                if self.settings.model != old_model || self.settings.device != old_device {
                    self.apply(Command::LoadModel);
                }
            }
            Command::ClearRecent => self.settings.recent.clear(),
            Command::DismissError => self.state.error = None,
            Command::SetCompare(mode) => self.settings.compare = mode,
            Command::NextCompareMode => {
                let all = CompareMode::ALL;
                let i = all
                    .iter()
                    .position(|m| *m == self.settings.compare)
                    .unwrap_or(0);
                self.settings.compare = all[(i + 1) % all.len()];
            }
            Command::SetDevice(d) => {
                if d != self.settings.device {
                    self.settings.device = d;
                    self.apply(Command::LoadModel);
                }
            }
            Command::ToggleLog => self.settings.show_log = !self.settings.show_log,
            Command::ToggleHelp => self.state.show_help = !self.state.show_help,
            Command::ToggleTrust => self.state.trust_view = !self.state.trust_view,
            Command::SetTrustMap(map) => {
                self.settings.trust_map = map;
                self.state.trust_view = true;
            }
            Command::Select(i) => {
                if i < self.state.samples.len() {
                    self.state.selected = i;
                    self.state.scrub = None;
                    self.state.show_input = false;
                }
            }
            Command::ShowInput => self.state.show_input = true,
            Command::Scrub(k) => {
                self.state.scrub = k;
                self.state.playing = None;
            }
            Command::PlayScales => {
                self.state.playing = Some(Instant::now());
                self.state.scrub = Some(0);
            }
            Command::Fit => self.state.view.fit(),
            Command::Zoom(z) => {
                let ppp = self.ctx.pixels_per_point();
                let pane = egui::Rect::from_min_size(egui::Pos2::ZERO, self.state.pane_size);
                self.state.view.zoom_about(pane, pane.center(), z, ppp);
            }
            Command::RerollSeed => {
                self.settings.params.seed = fresh_seed();
                self.after_param_change();
            }
            Command::ScheduleRerender => self.after_param_change(),
            Command::ClearRegion => self.state.region = None,
            c @ (Command::Upscale
            | Command::Cancel
            | Command::Rerun { .. }
            | Command::ResampleRegion
            | Command::Variations { .. }) => self.apply_job_command(c),
            c @ (Command::Export
            | Command::ExportAs
            | Command::ExportGif
            | Command::ExportContactSheet
            | Command::ExportTrustMap
            | Command::ConfirmOverwrite
            | Command::KeepBoth
            | Command::DismissOverwrite
            | Command::CopyResult
            | Command::OpenOutputFolder) => self.apply_export_command(c),
        }
    }

    fn model_dir(&self) -> Option<PathBuf> {
        match &self.settings.model {
            ModelChoice::Path(p) => p.parent().map(PathBuf::from),
            ModelChoice::Embedded => self.settings.last_open_dir.clone(),
        }
    }

    fn open_paths(&mut self, paths: Vec<PathBuf>) {
        // One image at a time is shown; the others go to the recent list for later.
        let mut paths = paths.into_iter();
        let Some(first) = paths.next() else { return };
        for rest in paths.rev() {
            self.settings.add_recent(rest);
        }
        self.log.push(format!("Opening {}", first.display()));
        self.state.loading += 1;
        self.tasks.load_path(first);
    }

    fn on_task(&mut self, done: Done) {
        match done {
            Done::Loaded { path, result } => {
                self.state.loading = self.state.loading.saturating_sub(1);
                match result {
                    Ok(image) => self.set_input(image),
                    Err(e) => {
                        let name = path
                            .as_ref()
                            .map_or("the pasted image".to_string(), |p| p.display().to_string());
                        self.log.push(format!("Could not open {name}: {e}"));
                        self.state.error = Some(e);
                    }
                }
            }
            Done::Picked(Pick::Open(paths)) => {
                if let Some(dir) = paths.first().and_then(|p| p.parent()) {
                    self.settings.last_open_dir = Some(dir.to_path_buf());
                }
                self.apply(Command::Open(paths));
            }
            Done::Picked(Pick::ModelFolder(p)) | Done::Picked(Pick::ModelFile(p)) => {
                self.settings.model = ModelChoice::Path(p);
                self.apply(Command::LoadModel);
            }
            Done::Picked(Pick::ExportTo(p)) => self.export_to(p, ExportWhat::Image, false),
            Done::DialogClosed => {}
            Done::Exported { path, result } => self.on_exported(path, result),
            Done::Trust(done) => self.on_trust(*done),
        }
    }

    fn set_input(&mut self, image: crate::worker::InputImage) {
        let name = image
            .path
            .as_ref()
            .and_then(|p| p.file_stem())
            .map_or("pasted".to_string(), |s| s.to_string_lossy().into_owned());
        if let Some(p) = &image.path {
            self.settings.add_recent(p.clone());
            if let Some(dir) = p.parent() {
                self.settings.last_open_dir = Some(dir.to_path_buf());
            }
        }
        let texture = textures::TiledTexture::new(&self.ctx, "input", &image.picture);
        self.log.push(format!(
            "Opened {name}: {}×{}{}",
            image.picture.width(),
            image.picture.height(),
            if texture.has_alpha {
                ", with transparency"
            } else {
                ""
            }
        ));
        // A new photo: old results and a running job belong to the old one.
        if let Some(job) = self.state.job.take() {
            job.cancel.cancel();
        }
        self.state.samples.clear();
        self.state.selected = 0;
        self.state.scrub = None;
        self.state.rerender_at = None;
        self.state.error = None;
        self.state.region = None;
        self.state.input = Some(state::Input {
            image,
            texture,
            name,
        });
        self.state.view.fit();
    }

    /// The guidance or seed changed: re-render after a pause, if there is something to redo.
    fn after_param_change(&mut self) {
        if self.settings.live_guidance
            && self.state.input.is_some()
            && !self.state.samples.is_empty()
        {
            self.state.rerender_at = Some(Instant::now() + RERENDER_DELAY);
        }
    }

    /// Steps the scale replay; the result itself is shown a little longer at the end.
    fn advance_replay(&mut self, ctx: &egui::Context) {
        let Some(start) = self.state.playing else {
            return;
        };
        let n = self.state.selected_sample().map_or(0, |s| s.scales.len());
        let step = REPLAY_STEP.as_secs_f32();
        let elapsed = start.elapsed().as_secs_f32();
        let k = (elapsed / step) as usize;
        if self.state.job.is_some() || k >= n {
            self.state.playing = None;
            self.state.scrub = None;
            return;
        }
        self.state.scrub = Some(k);
        let next = step * (k + 1) as f32 - elapsed;
        ctx.request_repaint_after(Duration::from_secs_f32(next.max(0.001)));
    }

    fn drain(&mut self) {
        let start = Instant::now();
        while start.elapsed() < DRAIN_BUDGET {
            let Some(event) = self.worker.try_recv() else {
                break;
            };
            self.state.stats.events += 1;
            self.on_event(event);
        }
        while start.elapsed() < DRAIN_BUDGET {
            let Some(done) = self.tasks.try_recv() else {
                break;
            };
            self.on_task(done);
        }
        let took = start.elapsed();
        self.state.stats.last_drain = took;
        self.state.stats.max_drain = self.state.stats.max_drain.max(took);
        if took >= DRAIN_BUDGET {
            // More may be waiting: come back next frame instead of blocking this one.
            self.ctx.request_repaint();
        }
    }
}

impl eframe::App for VarsrApp {
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.drain();
        self.request_trust();
        self.advance_replay(ctx);
        if let Some(at) = self.state.rerender_at {
            let now = Instant::now();
            if now >= at {
                self.state.rerender_at = None;
                // With a region marked, a changed guidance or seed redraws the region only.
                let again = if region::ready(&self.state, &self.settings).is_some() {
                    Command::ResampleRegion
                } else {
                    Command::Upscale
                };
                self.apply(again);
            } else {
                ctx.request_repaint_after(at - now);
            }
        }
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let t0 = Instant::now();
        let mut cmds = std::mem::take(&mut self.commands);
        shortcuts::handle(ui.ctx(), &mut self.state, &mut cmds);
        self.handle_dropped_and_pasted(ui.ctx(), &mut cmds);
        controls::menu_bar(ui, &self.settings, &self.state, &mut cmds);
        controls::status_bar(
            ui,
            &mut self.settings,
            &self.state,
            &mut self.log,
            &mut cmds,
        );
        controls::side_panel(ui, &mut self.settings, &self.state, &mut cmds);
        compare::central(
            ui,
            &self.settings,
            &mut self.state,
            &self.checker,
            &mut cmds,
        );
        export::overwrite_dialog(ui.ctx(), &self.state, &mut cmds);
        controls::help_window(ui.ctx(), &mut self.state.show_help);
        compare::drop_overlay(ui.ctx());
        if !cmds.is_empty() {
            // Commands change what the next frame shows, which nothing else would ask for.
            ui.ctx().request_repaint();
        }
        for c in cmds {
            self.apply(c);
        }
        let took = t0.elapsed();
        let s = &mut self.state.stats;
        s.frames += 1;
        s.last_ui = took;
        s.max_ui = s.max_ui.max(took);
        s.total_ui += took;
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        if self.persist {
            let mut settings = self.settings.clone();
            if let Some((remembered, session)) = &self.remembered_model
                && settings.model == *session
            {
                settings.model = remembered.clone();
            }
            eframe::set_value(storage, eframe::APP_KEY, &settings);
        }
    }

    fn on_exit(&mut self) {
        if let Some(job) = &self.state.job {
            job.cancel.cancel();
        }
    }
}

impl VarsrApp {
    fn handle_dropped_and_pasted(&mut self, ctx: &egui::Context, cmds: &mut Vec<Command>) {
        let (dropped, pasted) = ctx.input(|i| {
            let dropped: Vec<PathBuf> = i
                .raw
                .dropped_files
                .iter()
                .map(|f| f.path().to_path_buf())
                .filter(|p| !p.as_os_str().is_empty())
                .collect();
            let pasted: Vec<egui::Event> = i
                .events
                .iter()
                .filter(|e| matches!(e, egui::Event::Paste(_) | egui::Event::PasteImage(_)))
                .cloned()
                .collect();
            (dropped, pasted)
        });
        if !dropped.is_empty() {
            cmds.push(Command::Open(dropped));
        }
        // Text fields take their own pastes; only act on pastes nobody is typing into.
        if ctx.text_edit_focused() {
            return;
        }
        for e in pasted {
            match e {
                egui::Event::PasteImage(img) => match tasks::from_color_image(&img) {
                    Some(image) => {
                        self.log.push("Pasted an image from the clipboard");
                        self.set_input(image);
                    }
                    None => self.state.error = Some("The pasted image is empty.".into()),
                },
                egui::Event::Paste(text) => {
                    let paths = tasks::paths_in_text(&text);
                    if paths.is_empty() {
                        self.state.notice =
                            Some("The clipboard holds text, not an image or a path to one.".into());
                    } else {
                        cmds.push(Command::Open(paths));
                    }
                }
                _ => {}
            }
        }
    }
}

/// A seed nobody typed: the clock's nanoseconds, mixed.
pub fn fresh_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut z = nanos.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    // Short seeds are easier to read, type and put in a file name.
    (z ^ (z >> 31)) % 1_000_000
}

/// Opens the window; `files` are opened at start (the first is shown).
pub fn run(files: Vec<PathBuf>) -> anyhow::Result<()> {
    let mut viewport = egui::ViewportBuilder::default()
        .with_title("VARSR Studio")
        // Matches the desktop entry, so that the window gets its icon and taskbar grouping.
        .with_app_id("io.github.varsr_studio.VarsrStudio")
        .with_inner_size([1280.0, 820.0])
        .with_min_inner_size([640.0, 420.0])
        .with_drag_and_drop(true);
    if let Ok(icon) = eframe::icon_data::from_png_bytes(include_bytes!(
        "../../assets/icons/io.github.varsr_studio.VarsrStudio-256.png"
    )) {
        viewport = viewport.with_icon(icon);
    }
    let options = eframe::NativeOptions {
        viewport,
        renderer: eframe::Renderer::Wgpu,
        persist_window: true,
        ..Default::default()
    };
    // VARSR_MODEL (a folder or .safetensors) and VARSR_DEVICE (auto, cpu, cuda) override the
    // remembered choice for this session: for scripts, and for trying a model without a dialog.
    let model = std::env::var_os("VARSR_MODEL").map(|p| ModelSpec::Path(PathBuf::from(p)));
    let device =
        std::env::var("VARSR_DEVICE")
            .ok()
            .and_then(|d| match d.to_ascii_lowercase().as_str() {
                "cpu" => Some(DeviceChoice::Cpu),
                "cuda" | "gpu" => Some(DeviceChoice::Cuda),
                "auto" => Some(DeviceChoice::Auto),
                _ => None,
            });
    let app_options = AppOptions {
        files,
        model,
        device,
        ..Default::default()
    };
    eframe::run_native(
        "VARSR Studio",
        options,
        Box::new(move |cc| Ok(Box::new(VarsrApp::new(cc, app_options)))),
    )
    .map_err(|e| anyhow::anyhow!("could not open the window: {e}"))
}
