//! The menu bar, the settings panel on the left and the status bar with its log.

use egui::{Color32, RichText, Ui};

use super::Command;
use super::log::Log;
use super::settings::{CompareMode, ExportFormat, ModelChoice, Settings};
use super::shortcuts;
use super::state::{JobKind, ModelStatus, State};
use crate::pipeline::SamplingParams;
use crate::worker::{DeviceChoice, Stage};

pub fn menu_bar(ui: &mut Ui, settings: &Settings, state: &State, cmds: &mut Vec<Command>) {
    egui::Panel::top("menu").show(ui, |ui| {
        egui::MenuBar::new().ui(ui, |ui| {
            ui.menu_button("File", |ui| file_menu(ui, settings, state, cmds));
            ui.menu_button("View", |ui| {
                for mode in CompareMode::ALL {
                    if ui.radio(settings.compare == mode, mode.label()).clicked() {
                        cmds.push(Command::SetCompare(mode));
                    }
                }
                ui.separator();
                if ui
                    .add(egui::Button::new("Fit").shortcut_text("0"))
                    .clicked()
                {
                    cmds.push(Command::Fit);
                }
                for z in 1..=5 {
                    let b = egui::Button::new(format!("{}00 %", z)).shortcut_text(z.to_string());
                    if ui.add(b).clicked() {
                        cmds.push(Command::Zoom(z as f32));
                    }
                }
                ui.separator();
                if ui.selectable_label(settings.show_log, "Show log").clicked() {
                    cmds.push(Command::ToggleLog);
                }
            });
            ui.menu_button("Model", |ui| {
                if ui
                    .radio(settings.model == ModelChoice::Embedded, "Built-in model")
                    .clicked()
                {
                    cmds.push(Command::UseEmbeddedModel);
                }
                if ui.button("Choose a model folder…").clicked() {
                    cmds.push(Command::ChooseModelFolder);
                }
                if ui.button("Choose a .safetensors file…").clicked() {
                    cmds.push(Command::ChooseModelFile);
                }
                ui.separator();
                ui.label("Device");
                for d in DeviceChoice::ALL {
                    if ui.radio(settings.device == d, d.label()).clicked() {
                        cmds.push(Command::SetDevice(d));
                    }
                }
                ui.separator();
                if ui.button("Reload model").clicked() {
                    cmds.push(Command::LoadModel);
                }
            });
            ui.menu_button("Help", |ui| {
                if ui.button("Keyboard shortcuts").clicked() {
                    cmds.push(Command::ToggleHelp);
                }
                if ui.button("Reset settings to defaults").clicked() {
                    cmds.push(Command::ResetSettings);
                }
            });
        });
    });
}

fn file_menu(ui: &mut Ui, settings: &Settings, state: &State, cmds: &mut Vec<Command>) {
    let (open, export, export_as) = {
        let ctx = ui.ctx();
        (
            ctx.format_shortcut(&shortcuts::OPEN),
            ctx.format_shortcut(&shortcuts::EXPORT),
            ctx.format_shortcut(&shortcuts::EXPORT_AS),
        )
    };
    if ui
        .add(egui::Button::new("Open…").shortcut_text(open))
        .clicked()
    {
        cmds.push(Command::OpenDialog);
    }
    ui.menu_button("Open recent", |ui| {
        if settings.recent.is_empty() {
            ui.label("No recent files");
        }
        for p in &settings.recent {
            let name = p.file_name().map_or_else(
                || p.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            );
            if ui
                .button(name)
                .on_hover_text(p.display().to_string())
                .clicked()
            {
                cmds.push(Command::Open(vec![p.clone()]));
            }
        }
        ui.separator();
        if ui.button("Clear recent files").clicked() {
            cmds.push(Command::ClearRecent);
        }
    });
    ui.separator();
    let has_result = state.selected_sample().is_some();
    ui.add_enabled_ui(has_result, |ui| {
        if ui
            .add(egui::Button::new("Export").shortcut_text(export))
            .clicked()
        {
            cmds.push(Command::Export);
        }
        if ui
            .add(egui::Button::new("Export as…").shortcut_text(export_as))
            .clicked()
        {
            cmds.push(Command::ExportAs);
        }
        if ui.button("Export the scales as GIF").clicked() {
            cmds.push(Command::ExportGif);
        }
        if ui.button("Export the scales as contact sheet").clicked() {
            cmds.push(Command::ExportContactSheet);
        }
        if ui
            .add_enabled(state.trust_view, egui::Button::new("Export the trust map"))
            .clicked()
        {
            cmds.push(Command::ExportTrustMap);
        }
        if ui
            .add(egui::Button::new("Copy result").shortcut_text("Ctrl+C"))
            .clicked()
        {
            cmds.push(Command::CopyResult);
        }
    });
    ui.separator();
    if ui.button("Quit").clicked() {
        ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close);
    }
}

pub fn side_panel(ui: &mut Ui, settings: &mut Settings, state: &State, cmds: &mut Vec<Command>) {
    egui::Panel::left("controls")
        .resizable(true)
        .default_size(280.0)
        .show(ui, |ui| {
            egui::ScrollArea::vertical().show(ui, |ui| {
                model_section(ui, settings, state, cmds);
                ui.separator();
                generate_section(ui, settings, state, cmds);
                ui.separator();
                result_section(ui, settings, state, cmds);
            });
        });
}

fn model_section(ui: &mut Ui, settings: &mut Settings, state: &State, cmds: &mut Vec<Command>) {
    ui.heading("Model");
    let which = match &settings.model {
        ModelChoice::Embedded => "Built-in".to_string(),
        ModelChoice::Path(p) => p.file_name().map_or_else(
            || p.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        ),
    };
    ui.horizontal(|ui| {
        ui.label(which);
        if ui.small_button("Folder…").clicked() {
            cmds.push(Command::ChooseModelFolder);
        }
        if ui.small_button("File…").clicked() {
            cmds.push(Command::ChooseModelFile);
        }
    });
    ui.horizontal(|ui| {
        let label = ui.label("Device");
        let mut device = settings.device;
        egui::ComboBox::from_id_salt("device")
            .selected_text(device.label())
            .show_ui(ui, |ui| {
                for d in DeviceChoice::ALL {
                    ui.selectable_value(&mut device, d, d.label());
                }
            })
            .response
            .labelled_by(label.id);
        if device != settings.device {
            cmds.push(Command::SetDevice(device));
        }
    });
    match &state.model {
        ModelStatus::NotLoaded => {
            ui.label("No model loaded.");
        }
        ModelStatus::Loading(_) => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("Loading the model…");
            });
        }
        ModelStatus::Ready(info) => {
            ui.label(RichText::new(format!("Ready on {}", info.device)).small());
        }
        ModelStatus::Failed(_) => {
            ui.colored_label(ui.visuals().error_fg_color, "No usable model");
        }
    }
}

fn generate_section(ui: &mut Ui, settings: &mut Settings, state: &State, cmds: &mut Vec<Command>) {
    ui.heading("Upscale");
    ui.horizontal(|ui| {
        ui.label("Scale");
        for s in [2u32, 3, 4] {
            ui.selectable_value(&mut settings.scale, s, format!("{s}×"));
        }
    });
    let before = (settings.params.cfg, settings.params.seed);
    ui.spacing_mut().slider_width = (ui.available_width() - 110.0).clamp(100.0, 220.0);
    ui.add(
        egui::Slider::new(&mut settings.params.cfg, 0.0..=15.0)
            .step_by(0.1)
            .text("Guidance"),
    )
    .on_hover_text(format!(
        "Classifier-free guidance: higher follows the model's idea of a sharp photo more \
         strongly. This model's default is {}; the release uses {}.",
        state.model_default_cfg,
        SamplingParams::DEFAULT_CFG
    ));
    ui.horizontal(|ui| {
        let label = ui.label("Seed");
        ui.add(egui::DragValue::new(&mut settings.params.seed).speed(1.0))
            .labelled_by(label.id);
        if ui
            .button("New seed")
            .on_hover_text("New random seed")
            .clicked()
        {
            cmds.push(Command::RerollSeed);
        }
    });
    ui.checkbox(
        &mut settings.new_seed_each_run,
        "New seed for every upscale",
    );
    if (settings.params.cfg, settings.params.seed) != before {
        cmds.push(Command::ScheduleRerender);
    }
    egui::CollapsingHeader::new("Advanced")
        .default_open(settings.show_advanced)
        .show(ui, |ui| {
            ui.horizontal(|ui| {
                let label = ui.label("Top-k");
                ui.add(egui::DragValue::new(&mut settings.params.top_k).range(0..=4096))
                    .labelled_by(label.id)
                    .on_hover_text("Keep only the k most likely tokens (1 = always the most likely, 0 = no limit).");
            });
            ui.add(
                egui::Slider::new(&mut settings.params.top_p, 0.05..=1.0)
                    .step_by(0.01)
                    .text("Top-p"),
            )
            .on_hover_text("Keep the most likely tokens that together hold this share (1 = off).");
            ui.checkbox(
                &mut settings.live_guidance,
                "Re-render when guidance or seed change",
            );
            if ui.button("Default sampling").clicked() {
                settings.params = SamplingParams {
                    seed: settings.params.seed,
                    ..SamplingParams::default()
                };
                cmds.push(Command::ScheduleRerender);
            }
        });
    ui.add_space(6.0);
    let can_run = state.input.is_some() && !matches!(state.model, ModelStatus::Failed(_));
    if state.busy() {
        let cancelling = state.job.as_ref().is_some_and(|j| j.cancelling);
        let label = if cancelling {
            "Cancelling…"
        } else {
            "Cancel  (Esc)"
        };
        if ui
            .add_enabled(
                !cancelling,
                egui::Button::new(RichText::new(label).size(16.0))
                    .min_size(egui::vec2(ui.available_width(), 34.0)),
            )
            .clicked()
        {
            cmds.push(Command::Cancel);
        }
    } else {
        let button = egui::Button::new(RichText::new("Upscale  (Enter)").size(16.0).strong())
            .fill(if can_run {
                ui.visuals().selection.bg_fill
            } else {
                ui.visuals().widgets.inactive.bg_fill
            })
            .min_size(egui::vec2(ui.available_width(), 34.0));
        if ui.add_enabled(can_run, button).clicked() {
            cmds.push(Command::Upscale);
        }
    }
    let num_scales = state.model.ready().map_or(10, |i| i.num_scales).max(2);
    let has_tokens = state
        .selected_sample()
        .is_some_and(|s| s.tokens.is_some() && s.options.scale == settings.scale);
    ui.add_space(4.0);
    ui.horizontal(|ui| {
        ui.add(
            egui::DragValue::new(&mut settings.rerun_from)
                .range(1..=num_scales - 1)
                .prefix("from scale "),
        );
        let b = ui
            .add_enabled(has_tokens && !state.busy(), egui::Button::new("Re-run"))
            .on_hover_text(
                "Keep the coarse scales of the current result (its overall structure) and \
                 redraw the finer ones with the current guidance and seed.",
            );
        if b.clicked() {
            cmds.push(Command::Rerun {
                from_scale: settings.rerun_from,
            });
        }
    });
    region_row(ui, settings, state, cmds);
    ui.horizontal(|ui| {
        ui.add(
            egui::DragValue::new(&mut settings.variations)
                .range(2..=9)
                .suffix(" variations"),
        );
        let b = ui
            .add_enabled(can_run && !state.busy(), egui::Button::new("Generate"))
            .on_hover_text("Samples with seeds seed, seed+1, …; Ctrl+1… flips between them.");
        if b.clicked() {
            cmds.push(Command::Variations {
                n: settings.variations,
            });
        }
    });
}

fn result_section(ui: &mut Ui, settings: &mut Settings, state: &State, cmds: &mut Vec<Command>) {
    ui.heading("Result");
    if state.samples.len() > 1 || state.selected_sample().is_some() {
        ui.horizontal_wrapped(|ui| {
            let showing_input = state.show_input;
            if ui
                .selectable_label(showing_input, "Input")
                .on_hover_text("Ctrl+0")
                .clicked()
            {
                cmds.push(Command::ShowInput);
            }
            for (i, s) in state.samples.iter().enumerate() {
                let mut text = format!("#{} seed {}", i + 1, s.seed);
                if s.partial {
                    text.push_str(" (partial)");
                }
                let selected = !showing_input && i == state.selected;
                if ui
                    .selectable_label(selected, text)
                    .on_hover_text(format!("Ctrl+{}", i + 1))
                    .clicked()
                {
                    cmds.push(Command::Select(i));
                }
            }
        });
    }
    ui.horizontal(|ui| {
        let label = ui.label("Format");
        egui::ComboBox::from_id_salt("format")
            .selected_text(settings.export_format.label())
            .show_ui(ui, |ui| {
                for f in ExportFormat::ALL {
                    ui.selectable_value(&mut settings.export_format, f, f.label());
                }
            })
            .response
            .labelled_by(label.id);
    });
    if settings.export_format.has_quality() {
        ui.add(egui::Slider::new(&mut settings.export_quality, 1..=100).text("Quality"));
    }
    ui.horizontal(|ui| {
        let label = ui.label("Name");
        ui.add(
            egui::TextEdit::singleline(&mut settings.name_template).desired_width(f32::INFINITY),
        )
        .labelled_by(label.id)
        .on_hover_text("{name} {scale} {cfg} {seed} {topk} {topp} are filled in.");
    });
    ui.checkbox(&mut settings.write_metadata, "Write settings into the file");
    let has_result = state.selected_sample().is_some();
    ui.add_enabled_ui(has_result, |ui| {
        ui.horizontal_wrapped(|ui| {
            if ui.button("Export").on_hover_text("Ctrl+S").clicked() {
                cmds.push(Command::Export);
            }
            if ui
                .button("Export as…")
                .on_hover_text("Ctrl+Shift+S")
                .clicked()
            {
                cmds.push(Command::ExportAs);
            }
            if ui.button("Copy").on_hover_text("Ctrl+C").clicked() {
                cmds.push(Command::CopyResult);
            }
        });
        ui.horizontal_wrapped(|ui| {
            if ui.button("Scales as GIF").clicked() {
                cmds.push(Command::ExportGif);
            }
            if ui.button("Contact sheet").clicked() {
                cmds.push(Command::ExportContactSheet);
            }
            if state.trust_view && ui.button("Trust map").clicked() {
                cmds.push(Command::ExportTrustMap);
            }
        });
    });
    if state.samples.iter().any(|s| s.saved_to.is_some())
        && ui.button("Open output folder").clicked()
    {
        cmds.push(Command::OpenOutputFolder);
    }
}

/// The text of the progress line: "tile 3/12 · scale 7/10 · about 0:42 left".
pub fn progress_text(state: &State) -> Option<String> {
    let job = state.job.as_ref()?;
    let mut parts = Vec::new();
    if let JobKind::Variations { n } = job.kind {
        parts.push(format!("variation {}/{n}", job.variant + 1));
    }
    match &job.progress {
        None => parts.push("starting".into()),
        Some(p) => {
            if p.num_tiles > 1 && p.batch > 1 {
                let last = (p.tile + p.batch).min(p.num_tiles);
                parts.push(format!("tiles {}–{last}/{}", p.tile + 1, p.num_tiles));
            } else if p.num_tiles > 1 {
                parts.push(format!("tile {}/{}", p.tile + 1, p.num_tiles));
            }
            parts.push(match &p.stage {
                Stage::Preparing => "preparing".into(),
                Stage::Encoding => "encoding the input".into(),
                Stage::Scale { scale, num_scales } => format!("scale {}/{num_scales}", scale + 1),
                Stage::Refining { step, steps } => format!("refining {step}/{steps}"),
                Stage::Decoding => "decoding".into(),
            });
            if let Some(eta) = p.eta {
                let s = eta.as_secs();
                parts.push(format!("about {}:{:02} left", s / 60, s % 60));
            }
        }
    }
    if job.cancelling {
        parts.push("cancelling at the next scale".into());
    }
    Some(parts.join(" · "))
}

pub fn status_bar(
    ui: &mut Ui,
    settings: &mut Settings,
    state: &State,
    log: &mut Log,
    cmds: &mut Vec<Command>,
) {
    egui::Panel::bottom("status").show(ui, |ui| {
        ui.horizontal(|ui| {
            if let Some(text) = progress_text(state) {
                let fraction = state
                    .job
                    .as_ref()
                    .and_then(|j| j.progress.as_ref())
                    .map_or(0.0, |p| p.fraction);
                ui.add(
                    egui::ProgressBar::new(fraction)
                        .desired_width(180.0)
                        .show_percentage(),
                );
                ui.label(text);
            } else if let Some(n) = &state.notice {
                ui.label(n);
            } else if state.loading > 0 {
                ui.spinner();
                ui.label("Opening…");
            } else {
                ui.label(RichText::new("Ready").color(Color32::GRAY));
            }
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                if ui.selectable_label(settings.show_log, "Log").clicked() {
                    cmds.push(Command::ToggleLog);
                }
                let z = (state.view.zoom * 100.0).round();
                ui.label(RichText::new(format!("{z} %")).monospace());
            });
        });
    });
    if settings.show_log {
        egui::Panel::bottom("log")
            .resizable(true)
            .default_size(160.0)
            .show(ui, |ui| log.ui(ui));
    }
}

/// Help ▸ Keyboard shortcuts.
pub fn help_window(ctx: &egui::Context, open: &mut bool) {
    egui::Window::new("Keyboard shortcuts")
        .open(open)
        .resizable(false)
        .collapsible(false)
        .show(ctx, |ui| {
            egui::Grid::new("shortcuts").striped(true).show(ui, |ui| {
                for (k, what) in shortcuts::HELP {
                    ui.label(RichText::new(*k).monospace());
                    ui.label(*what);
                    ui.end_row();
                }
            });
        });
}

/// "Re-sample region": the tiles under the Shift+dragged rectangle again, with the current seed
/// and guidance, blended into the shown result.
fn region_row(ui: &mut Ui, settings: &Settings, state: &State, cmds: &mut Vec<Command>) {
    let frame = state.frame_size(settings.scale);
    let rect = state.region.and_then(|r| r.pixels(frame));
    let ready = super::region::ready(state, settings).is_some();
    ui.horizontal(|ui| {
        let b = ui
            .add_enabled(
                ready && !state.busy(),
                egui::Button::new("Re-sample region"),
            )
            .on_hover_text(
                "Shift+drag over the image to mark a region. Its tiles are generated again with \
                 the current seed and guidance (a new seed if both are the result's own) and \
                 blended into the shown result; the rest stays as it is. While a region is \
                 marked, moving the guidance or changing the seed redraws only the region. Each \
                 version joins the results (Ctrl+1…).",
            );
        if b.clicked() {
            cmds.push(Command::ResampleRegion);
        }
        match rect {
            Some((_, _, w, h)) => {
                ui.label(RichText::new(format!("{w}×{h}")).weak());
                if ui
                    .small_button("Clear")
                    .on_hover_text("Clear the region")
                    .clicked()
                {
                    cmds.push(Command::ClearRegion);
                }
            }
            None => {
                ui.label(RichText::new("Shift+drag to mark").weak());
            }
        }
    });
}
