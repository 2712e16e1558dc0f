//! The central area: the model banner, the compare panes (side by side, split, result only),
//! the gallery of results and the scale strip.

use egui::{Color32, CursorIcon, Rect, RichText, Sense, Stroke, Ui, Vec2, pos2, vec2};

use super::Command;
use super::region;
use super::settings::{CompareMode, Settings};
use super::state::{ModelStatus, ScaleStrip, State};
use super::textures::Checker;
use super::trust_view::overlay_of;
use super::viewer::{Layer, corner_label, paint_layers};
use crate::imaging::trust::TrustMap;

/// The input showing through where a preview has no tiles yet.
const DIMMED: Color32 = Color32::from_gray(90);

pub fn central(
    ui: &mut Ui,
    settings: &Settings,
    state: &mut State,
    checker: &Checker,
    cmds: &mut Vec<Command>,
) {
    egui::CentralPanel::default().show(ui, |ui| {
        state.picture_rects.clear();
        banner(ui, state, cmds);
        toolbar(ui, settings, state, cmds);
        let strip_height = if strip_of(state).is_some() { 74.0 } else { 0.0 };
        let avail = ui.available_rect_before_wrap();
        let panes = Rect::from_min_max(avail.min, pos2(avail.max.x, avail.max.y - strip_height));
        if state.input.is_none() {
            welcome(ui, panes, state, cmds);
        } else {
            match settings.compare {
                CompareMode::SideBySide => side_by_side(ui, panes, settings, state, checker),
                CompareMode::Split => split(ui, panes, settings, state, checker),
                CompareMode::Single => single(ui, panes, settings, state, checker),
            }
        }
        if strip_height > 0.0 {
            let strip = Rect::from_min_max(pos2(avail.min.x, panes.max.y), avail.max);
            let mut child = ui.new_child(egui::UiBuilder::new().max_rect(strip));
            scale_strip(&mut child, state, cmds);
        }
    });
}

fn banner(ui: &mut Ui, state: &State, cmds: &mut Vec<Command>) {
    let (text, color, choose) = match &state.model {
        ModelStatus::Failed(message) => (
            format!("No model: {message}"),
            ui.visuals().error_fg_color,
            true,
        ),
        ModelStatus::Ready(info) if info.untrained => (
            format!(
                "Loaded: {} on {}. This is a test model with untrained (random) weights: it \
                 runs the whole pipeline, but its output is noise, not a sharper photo.",
                info.description, info.device
            ),
            ui.visuals().warn_fg_color,
            true,
        ),
        ModelStatus::Ready(info) => (
            format!("Model: {} on {}", info.description, info.device),
            ui.visuals().weak_text_color(),
            false,
        ),
        ModelStatus::Loading(spec) => (
            match spec {
                crate::worker::ModelSpec::Embedded => "Loading the built-in model…".to_string(),
                crate::worker::ModelSpec::Path(p) => format!(
                    "Loading the model {}…",
                    p.file_name().map_or_else(
                        || p.display().to_string(),
                        |n| n.to_string_lossy().into_owned()
                    )
                ),
            },
            ui.visuals().weak_text_color(),
            false,
        ),
        ModelStatus::NotLoaded => (
            "No model loaded yet.".into(),
            ui.visuals().weak_text_color(),
            true,
        ),
    };
    ui.horizontal_wrapped(|ui| {
        ui.label(RichText::new(text).color(color));
        if choose && ui.small_button("Choose a model…").clicked() {
            cmds.push(Command::ChooseModelFolder);
        }
    });
    if let Some(err) = &state.error {
        egui::Frame::new()
            .fill(ui.visuals().error_fg_color.gamma_multiply(0.15))
            .stroke(Stroke::new(1.0, ui.visuals().error_fg_color))
            .corner_radius(4.0)
            .inner_margin(6.0)
            .show(ui, |ui| {
                ui.horizontal_wrapped(|ui| {
                    ui.label(RichText::new(err).color(ui.visuals().error_fg_color));
                    if ui.small_button("Dismiss").clicked() {
                        cmds.push(Command::DismissError);
                    }
                    if ui.small_button("Copy").clicked() {
                        ui.ctx().copy_text(err.clone());
                    }
                });
            });
    }
}

fn toolbar(ui: &mut Ui, settings: &Settings, state: &State, cmds: &mut Vec<Command>) {
    ui.horizontal(|ui| {
        for mode in CompareMode::ALL {
            if ui
                .selectable_label(settings.compare == mode, mode.label())
                .clicked()
            {
                cmds.push(Command::SetCompare(mode));
            }
        }
        ui.separator();
        if ui
            .button("Fit")
            .on_hover_text("0 or double-click")
            .clicked()
        {
            cmds.push(Command::Fit);
        }
        if ui.button("100 %").on_hover_text("1").clicked() {
            cmds.push(Command::Zoom(1.0));
        }
        ui.separator();
        trust_controls(ui, settings, state, cmds);
        ui.separator();
        // Elided rather than widening the panel past the window when the toolbar is full.
        ui.add(
            egui::Label::new(
                RichText::new(
                    "Hold Space for the input · scroll zooms · drag pans · Shift+drag marks a region",
                )
                .weak(),
            )
            .truncate(),
        );
    });
}

fn trust_controls(ui: &mut Ui, settings: &Settings, state: &State, cmds: &mut Vec<Command>) {
    let hint = "T · a heat map of where the result departs from the input: dark where the model \
                only enlarged, bright where it drew or changed something";
    if ui
        .selectable_label(state.trust_view, "Trust view")
        .on_hover_text(hint)
        .clicked()
    {
        cmds.push(Command::ToggleTrust);
    }
    if state.trust_view {
        let label = ui.label("Map");
        egui::ComboBox::from_id_salt("trust-map")
            .selected_text(settings.trust_map.label())
            .show_ui(ui, |ui| {
                for map in TrustMap::ALL {
                    if ui
                        .selectable_label(settings.trust_map == map, map.label())
                        .on_hover_text(map.explain())
                        .clicked()
                    {
                        cmds.push(Command::SetTrustMap(map));
                    }
                }
            })
            .response
            .labelled_by(label.id);
    }
}

fn welcome(ui: &mut Ui, rect: Rect, state: &State, cmds: &mut Vec<Command>) {
    let mut child = ui.new_child(egui::UiBuilder::new().max_rect(rect));
    child.vertical_centered(|ui| {
        ui.add_space(rect.height() * 0.3);
        ui.heading("Drop a photo anywhere on this window");
        ui.label("or press Ctrl+O to open one, or Ctrl+V to paste an image or a copied file.");
        ui.add_space(8.0);
        if ui.button("Open an image…").clicked() {
            cmds.push(Command::OpenDialog);
        }
        if state.loading > 0 {
            ui.add_space(8.0);
            ui.spinner();
        }
    });
}

/// Which strip the scale strip shows: the running job's, else the selected result's.
fn strip_of(state: &State) -> Option<&ScaleStrip> {
    if let Some(j) = &state.job
        && !j.live.is_empty()
    {
        return Some(&j.live);
    }
    state
        .selected_sample()
        .map(|s| &s.scales)
        .filter(|s| !s.is_empty())
}

/// The layers and label of the result pane.
fn result_layers<'a>(state: &'a State, settings: &Settings) -> (Vec<(Layer<'a>, Color32)>, String) {
    let Some(input) = &state.input else {
        return (Vec::new(), String::new());
    };
    if state.flip || state.show_input {
        let [w, h] = input.size();
        return (
            vec![(Layer::Full(&input.texture), Color32::WHITE)],
            format!("Input {w}×{h}"),
        );
    }
    if let Some(k) = state.scrub
        && let Some(strip) = strip_of(state)
        && let Some((_, tex)) = strip.get(k)
    {
        return (
            vec![
                (Layer::Full(&input.texture), DIMMED),
                (Layer::Preview(tex), Color32::WHITE),
            ],
            format!("Scale {}/{}", k + 1, strip.len()),
        );
    }
    if let Some(job) = &state.job
        && job.live.latest().is_none()
    {
        return (
            vec![(Layer::Full(&input.texture), DIMMED)],
            "Generating · waiting for the first scale".into(),
        );
    }
    if let Some(job) = &state.job
        && let Some(k) = job.live.latest()
        && let Some((_, tex)) = job.live.get(k)
    {
        return (
            vec![
                (Layer::Full(&input.texture), DIMMED),
                (Layer::Preview(tex), Color32::WHITE),
            ],
            format!("Generating · scale {}/{}", k + 1, job.live.len()),
        );
    }
    if let Some(s) = state.selected_sample() {
        let [w, h] = s.texture.size();
        let mut label = if s.partial {
            // The picture of a cancelled run is a reduced preview: its size says nothing.
            format!("Result ×{} · partial (cancelled)", s.options.scale)
        } else {
            format!("Result ×{} {w}×{h}", s.options.scale)
        };
        label.push_str(&format!(
            " · guidance {} · seed {}",
            s.options.params.cfg, s.seed
        ));
        if state.samples.len() > 1 {
            label = format!("#{} {label}", state.selected + 1);
        }
        if state.trust_view {
            if s.partial {
                label.push_str(" · the trust view needs a finished result");
            } else if let Some(t) = overlay_of(s, settings.trust_map) {
                return (vec![(Layer::Full(&t.texture), Color32::WHITE)], t.label());
            } else {
                label = format!(
                    "Trust view · computing {}… · {label}",
                    settings.trust_map.label()
                );
            }
        }
        let mut layers = Vec::new();
        if s.partial {
            layers.push((Layer::Full(&input.texture), DIMMED));
        }
        layers.push((Layer::Full(&s.texture), Color32::WHITE));
        return (layers, label);
    }
    (Vec::new(), "Result".into())
}

/// Whether the result pane shows something the model made (rather than the input).
fn shows_generated(state: &State) -> bool {
    !(state.flip || state.show_input)
}

fn pane_background(ui: &Ui, rect: Rect) {
    ui.painter()
        .rect_filled(rect, 0.0, ui.visuals().extreme_bg_color);
}

/// Allocates a pane, applies zoom and pan to the shared view, and returns the image rect.
fn interact_pane(
    ui: &mut Ui,
    rect: Rect,
    id: &str,
    settings: &Settings,
    state: &mut State,
) -> (Rect, egui::Response) {
    let ppp = ui.ctx().pixels_per_point();
    let frame = state.frame_size(settings.scale);
    state.pane_size = rect.size();
    state.view.update_fit(rect, frame, ppp);
    let response = ui
        .interact(rect, ui.scope_id().with(id), Sense::click_and_drag())
        .on_hover_cursor(CursorIcon::Grab);
    if !region::interact(ui, &response, rect, frame, state) {
        state.view.interact(ui, &response, rect);
    }
    state.view.update_fit(rect, frame, ppp);
    (state.view.image_rect(rect, frame, ppp), response)
}

fn paint_region(painter: &egui::Painter, img: Rect, state: &State) {
    if let Some(r) = &state.region {
        region::paint(painter, img, r);
    }
}

/// Names a pane for screen readers (and tests) by what it shows.
fn name_pane(response: &egui::Response, label: &str) {
    let label = label.to_owned();
    response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Image, true, &label));
}

fn placeholder(ui: &Ui, rect: Rect, state: &State) {
    let text = if state.busy() {
        "Starting…"
    } else {
        "Press Upscale (Enter) to see the result here"
    };
    ui.painter().text(
        rect.center(),
        egui::Align2::CENTER_CENTER,
        text,
        egui::FontId::proportional(15.0),
        ui.visuals().weak_text_color(),
    );
}

fn side_by_side(
    ui: &mut Ui,
    rect: Rect,
    settings: &Settings,
    state: &mut State,
    checker: &Checker,
) {
    let gap = 4.0;
    let half = (rect.width() - gap) / 2.0;
    let left = Rect::from_min_size(rect.min, vec2(half, rect.height()));
    let right = Rect::from_min_size(
        pos2(left.max.x + gap, rect.min.y),
        vec2(half, rect.height()),
    );
    // Both panes share one view: the second interaction sees the first's changes.
    let (_, resp_l) = interact_pane(ui, left, "pane-left", settings, state);
    let (_, resp_r) = interact_pane(ui, right, "pane-right", settings, state);
    let ppp = ui.ctx().pixels_per_point();
    let frame = state.frame_size(settings.scale);
    let img_l = state.view.image_rect(left, frame, ppp);
    let img_r = state.view.image_rect(right, frame, ppp);
    let mut masks = Vec::new();
    for (pane, img, is_result, resp) in [(left, img_l, false, resp_l), (right, img_r, true, resp_r)]
    {
        pane_background(ui, pane);
        let painter = ui.painter_at(pane);
        let (layers, label) = if is_result {
            result_layers(state, settings)
        } else {
            let input = state.input.as_ref();
            let layers = input
                .map(|i| vec![(Layer::Full(&i.texture), Color32::WHITE)])
                .unwrap_or_default();
            let label = input.map_or(String::new(), |i| {
                let [w, h] = i.size();
                format!("Input {w}×{h} · {}", i.name)
            });
            (layers, label)
        };
        if layers.is_empty() {
            placeholder(ui, pane, state);
        } else {
            paint_layers(&painter, checker, img, &layers);
            if is_result && shows_generated(state) {
                masks.push(img.intersect(pane));
            }
        }
        paint_region(&painter, img, state);
        if !label.is_empty() {
            corner_label(&painter, pane, &label, false);
        }
        name_pane(&resp, &label);
    }
    state.picture_rects.extend(masks);
}

fn split(ui: &mut Ui, rect: Rect, settings: &Settings, state: &mut State, checker: &Checker) {
    let (img, response) = interact_pane(ui, rect, "pane-split", settings, state);
    pane_background(ui, rect);
    let x = rect.min.x + rect.width() * state.split;
    let left = Rect::from_min_max(rect.min, pos2(x, rect.max.y));
    let right = Rect::from_min_max(pos2(x, rect.min.y), rect.max);
    if let Some(input) = &state.input {
        let layers = [(Layer::Full(&input.texture), Color32::WHITE)];
        paint_layers(&ui.painter_at(left), checker, img, &layers);
        let [w, h] = input.size();
        corner_label(&ui.painter_at(rect), rect, &format!("Input {w}×{h}"), false);
    }
    let mut mask = None;
    let (layers, label) = result_layers(state, settings);
    let painter = ui.painter_at(right);
    if layers.is_empty() {
        placeholder(ui, right, state);
    } else {
        paint_layers(&painter, checker, img, &layers);
        if shows_generated(state) {
            mask = Some(img.intersect(right));
        }
    }
    paint_region(&ui.painter_at(rect), img, state);
    corner_label(&ui.painter_at(rect), rect, &label, true);
    let input_label = state.input.as_ref().map_or(String::new(), |i| {
        format!("Input {}×{}", i.size()[0], i.size()[1])
    });
    name_pane(&response, &format!("{input_label} | {label}"));
    drop(layers);
    state.picture_rects.extend(mask);
    // The divider, drawn and dragged on top of the pane.
    let handle = Rect::from_center_size(pos2(x, rect.center().y), vec2(12.0, rect.height()));
    let response = ui
        .interact(handle, ui.scope_id().with("split-divider"), Sense::drag())
        .on_hover_cursor(CursorIcon::ResizeHorizontal);
    if response.dragged() && rect.width() > 0.0 {
        state.split = (state.split + response.drag_delta().x / rect.width()).clamp(0.0, 1.0);
    }
    let painter = ui.painter_at(rect);
    painter.line_segment(
        [pos2(x, rect.min.y), pos2(x, rect.max.y)],
        Stroke::new(2.0, Color32::WHITE),
    );
    painter.circle_filled(pos2(x, rect.center().y), 7.0, Color32::WHITE);
}

fn single(ui: &mut Ui, rect: Rect, settings: &Settings, state: &mut State, checker: &Checker) {
    let (img, response) = interact_pane(ui, rect, "pane-single", settings, state);
    pane_background(ui, rect);
    let mut mask = None;
    let (layers, label) = result_layers(state, settings);
    let painter = ui.painter_at(rect);
    if layers.is_empty() {
        placeholder(ui, rect, state);
    } else {
        paint_layers(&painter, checker, img, &layers);
        if shows_generated(state) {
            mask = Some(img.intersect(rect));
        }
    }
    paint_region(&painter, img, state);
    corner_label(&painter, rect, &label, false);
    name_pane(&response, &label);
    drop(layers);
    state.picture_rects.extend(mask);
}

fn scale_strip(ui: &mut Ui, state: &mut State, cmds: &mut Vec<Command>) {
    let mut pictures = Vec::new();
    scale_strip_buttons(ui, state, cmds, &mut pictures);
    state.picture_rects.extend(pictures);
}

fn scale_strip_buttons(
    ui: &mut Ui,
    state: &State,
    cmds: &mut Vec<Command>,
    pictures: &mut Vec<Rect>,
) {
    let Some(strip) = strip_of(state) else {
        return;
    };
    let live = state.job.as_ref().is_some_and(|j| !j.live.is_empty());
    ui.add_space(4.0);
    ui.horizontal(|ui| {
        ui.label(if live { "Scales (live)" } else { "Scales" });
        // Room for the labels and buttons at the end; the thumbnails share the rest.
        let per = (ui.available_width() - 150.0) / strip.len().max(1) as f32;
        let thumb = Vec2::splat(
            (per - 2.0 * ui.spacing().button_padding.x - ui.spacing().item_spacing.x)
                .clamp(16.0, 44.0),
        );
        for k in 0..strip.len() {
            let selected = state.scrub == Some(k);
            let response = match strip.get(k) {
                Some((_, tex)) => {
                    let img = egui::Image::new((tex.texture.id(), thumb));
                    let r = ui
                        .add(egui::Button::image(img).selected(selected))
                        .on_hover_text(format!("Scale {}", k + 1));
                    pictures.push(r.rect);
                    r
                }
                None => ui.add_enabled(
                    false,
                    egui::Button::new(format!("{}", k + 1))
                        .min_size(thumb + 2.0 * ui.spacing().button_padding),
                ),
            };
            response.widget_info(|| {
                egui::WidgetInfo::selected(
                    egui::Role::Button,
                    true,
                    selected,
                    format!("Scale {}", k + 1),
                )
            });
            if response.clicked() {
                cmds.push(Command::Scrub(Some(k)));
            }
        }
        if !live
            && ui
                .add_enabled(state.playing.is_none(), egui::Button::new("Replay"))
                .on_hover_text("Show the scales one after the other, coarse to fine")
                .clicked()
        {
            cmds.push(Command::PlayScales);
        }
        let final_label = if live { "Live" } else { "Final" };
        if ui
            .add(egui::Button::new(final_label).selected(state.scrub.is_none()))
            .clicked()
        {
            cmds.push(Command::Scrub(None));
        }
    });
}

/// The drop overlay while files hover over the window.
pub fn drop_overlay(ctx: &egui::Context) {
    let names: Vec<String> = ctx.input(|i| {
        i.raw
            .hovered_files
            .iter()
            .map(|f| {
                f.path
                    .as_ref()
                    .and_then(|p| p.file_name())
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
            })
            .collect()
    });
    if names.is_empty() {
        return;
    }
    let text = match names.as_slice() {
        [one] if !one.is_empty() => format!("Drop to open {one}"),
        [_] => "Drop to open".to_string(),
        many => format!("Drop to open {} (and {} more)", many[0], many.len() - 1),
    };
    let screen = ctx.content_rect();
    let painter = ctx.layer_painter(egui::LayerId::new(
        egui::Order::Foreground,
        egui::Id::unique("drop-overlay"),
    ));
    painter.rect_filled(screen, 0.0, Color32::from_black_alpha(180));
    painter.rect_stroke(
        screen.shrink(12.0),
        12.0,
        Stroke::new(3.0, Color32::from_rgb(120, 180, 255)),
        egui::StrokeKind::Inside,
    );
    painter.text(
        screen.center(),
        egui::Align2::CENTER_CENTER,
        text,
        egui::FontId::proportional(28.0),
        Color32::WHITE,
    );
}
