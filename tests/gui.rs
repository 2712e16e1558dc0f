//! The real window (`VarsrApp`), rendered headless with egui_kittest on a software GPU, driving
//! the real worker thread with the tiny random-weight fixture model.
//!
//! Needs a software Vulkan or GL driver (Debian: `mesa-vulkan-drivers libvulkan1` or
//! `libegl1 libegl-mesa0 libgl1-mesa-dri`). Snapshots live in `tests/snapshots/`; refresh them
//! with `UPDATE_SNAPSHOTS=1 cargo test --test gui`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use egui::{Key, Modifiers};
use egui_kittest::kittest::Queryable;
use egui_kittest::{Harness, SnapshotOptions};
use varsr::app::{AppOptions, CompareMode, Settings, VarsrApp};
use varsr::worker::{DeviceChoice, ModelSpec};

const SIZE: [f32; 2] = [1100.0, 720.0];

fn fixture_model() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/parity/parity-d2")
}

/// A small photo-like test image: smooth gradients and a few hard edges.
fn write_photo(dir: &Path, name: &str, w: u32, h: u32) -> PathBuf {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        let fx = x as f32 / w as f32;
        let fy = y as f32 / h as f32;
        let disc = ((fx - 0.6).powi(2) + (fy - 0.4).powi(2)).sqrt() < 0.2;
        if disc {
            image::Rgb([240, 200, 40])
        } else {
            image::Rgb([
                (40.0 + 180.0 * fx) as u8,
                (60.0 + 120.0 * fy) as u8,
                (200.0 - 120.0 * fx * fy) as u8,
            ])
        }
    });
    let p = dir.join(name);
    img.save(&p).unwrap();
    p
}

fn test_settings() -> Settings {
    Settings {
        live_guidance: true,
        ..Settings::default()
    }
}

fn harness_with(options: AppOptions) -> Harness<'static, VarsrApp> {
    Harness::builder()
        .with_size(SIZE)
        .with_max_steps(20_000)
        .wgpu()
        .build_eframe(move |cc| VarsrApp::new(cc, options))
}

fn harness(files: Vec<PathBuf>) -> Harness<'static, VarsrApp> {
    harness_with(AppOptions {
        files,
        model: Some(ModelSpec::Path(fixture_model())),
        device: Some(DeviceChoice::Cpu),
        persist: false,
        settings: Some(test_settings()),
    })
}

/// Steps frames (letting the worker run) until `done` holds.
fn wait_for(
    h: &mut Harness<'_, VarsrApp>,
    what: &str,
    timeout: Duration,
    mut done: impl FnMut(&VarsrApp) -> bool,
) {
    let start = Instant::now();
    // Step first: queued input (key presses, clicks) is only seen by the app in a frame.
    h.step();
    while !done(h.state()) {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}; log:\n{}",
            h.state().log.text()
        );
        std::thread::sleep(Duration::from_millis(10));
        h.step();
    }
}

fn wait_idle(h: &mut Harness<'_, VarsrApp>, what: &str) {
    wait_for(h, what, Duration::from_secs(300), |a| a.is_idle());
    h.run_ok();
}

fn ready(h: &mut Harness<'_, VarsrApp>) {
    wait_for(h, "model and image", Duration::from_secs(120), |a| {
        a.state.model.ready().is_some() && a.state.input.is_some()
    });
}

/// Snapshot options for pictures made by the random model (masked) and text rendered by a
/// software rasteriser.
fn snap_opts() -> SnapshotOptions {
    SnapshotOptions::new().threshold(1.0).max_failed_pixels(200)
}

/// Hides what the random model draws, so that a change in the numeric pipeline does not fail
/// the layout snapshots.
fn mask_pictures(h: &mut Harness<'_, VarsrApp>) {
    let rects: Vec<egui::Rect> = h.state().picture_rects();
    for r in rects {
        h.mask(r);
    }
}

#[derive(Debug)]
struct Dropped(PathBuf);

impl egui::DroppedFile for Dropped {
    fn path(&self) -> &Path {
        &self.0
    }
    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

#[test]
fn starting_window_invites_a_drop_and_shows_the_overlay() {
    let mut h = harness(vec![]);
    wait_idle(&mut h, "model");
    h.get_by_label("Open an image…");
    h.snapshot_options("welcome", &snap_opts());
    h.input_mut().hovered_files.push(egui::HoveredFile {
        path: Some("/tmp/photo.png".into()),
        mime: String::new(),
    });
    h.step();
    h.snapshot_options("drop_overlay", &snap_opts());
    h.input_mut().hovered_files.clear();

    h.key_press(Key::F1);
    h.run_ok();
    assert!(h.state().state.show_help);
    h.get_by_label("Ctrl+O");
    h.snapshot_options("shortcuts", &snap_opts());
}

#[test]
fn dropping_a_file_shows_it() {
    let dir = tempfile::tempdir().unwrap();
    let photo = write_photo(dir.path(), "dropped photo ü.png", 48, 32);
    let mut h = harness(vec![]);
    h.input_mut()
        .dropped_files
        .push(Arc::new(Dropped(photo.clone())));
    wait_idle(&mut h, "the dropped file");
    let input = h
        .state()
        .state
        .input
        .as_ref()
        .expect("the drop opened the file");
    assert_eq!(input.size(), [48, 32]);
    assert_eq!(input.image.path.as_deref(), Some(photo.as_path()));
    assert_eq!(h.state().settings.recent.first(), Some(&photo));
    h.get_by_label_contains("Input 48×32");
    h.snapshot_options("dropped", &snap_opts());

    // Something that is not an image: a plain-words error, and the photo stays.
    let junk = dir.path().join("notes.png");
    std::fs::write(&junk, b"this is text").unwrap();
    h.input_mut().dropped_files.push(Arc::new(Dropped(junk)));
    wait_idle(&mut h, "the bad file");
    let err = h.state().state.error.clone().expect("an error is shown");
    assert!(
        err.contains("notes.png") && err.contains("not a readable image"),
        "{err}"
    );
    assert!(h.state().state.input.is_some());
    h.snapshot_options("bad_image", &snap_opts());

    // Ctrl+V with an image on the clipboard (egui-winit turns it into a paste event).
    let pixels = (0..20 * 10)
        .map(|i| egui::Color32::from_rgb(i as u8, 100, 200))
        .collect();
    let pasted = egui::ColorImage::new([20, 10], pixels);
    h.event(egui::Event::PasteImage(Arc::new(pasted)));
    wait_idle(&mut h, "the pasted image");
    let input = h.state().state.input.as_ref().unwrap();
    assert_eq!(input.size(), [20, 10]);
    assert_eq!(input.name, "pasted");
    assert_eq!(input.image.picture.get_pixel(7, 0).0, [7, 100, 200, 255]);

    // Ctrl+V with a copied file (a file manager puts its URI on the clipboard as text).
    h.event(egui::Event::Paste(
        format!("file://{}", photo.display()).replace(' ', "%20"),
    ));
    wait_idle(&mut h, "the pasted file");
    assert_eq!(h.state().state.input.as_ref().unwrap().size(), [48, 32]);
}

#[test]
fn upscale_shows_each_scale_and_the_final_image() {
    let dir = tempfile::tempdir().unwrap();
    let photo = write_photo(dir.path(), "photo.png", 40, 30);
    let mut h = harness(vec![photo]);
    ready(&mut h);
    h.key_press(Key::Enter);
    h.step();
    assert!(h.state().state.job.is_some(), "Enter starts a job");
    // Count the scales the window received while the job ran.
    let mut seen = std::collections::BTreeSet::new();
    wait_for(&mut h, "the result", Duration::from_secs(300), |a| {
        if let Some(j) = &a.state.job {
            seen.extend((0..j.live.len()).filter(|&k| j.live.get(k).is_some()));
        }
        a.state.job.is_none()
    });
    let app = h.state();
    assert!(app.state.error.is_none(), "{:?}", app.state.error);
    let sample = app.state.selected_sample().expect("a result");
    assert_eq!(sample.image.dimensions(), (160, 120));
    assert!(!sample.partial);
    let n = sample.scales.len();
    assert_eq!(n, 10);
    assert!(
        (0..n).all(|k| sample.scales.get(k).is_some()),
        "every scale has a picture"
    );
    assert!(
        seen.len() >= 2,
        "previews arrived while the job ran: {seen:?}"
    );
    h.run_ok();
    h.get_by_label_contains("Result ×4 160×120");
    mask_pictures(&mut h);
    h.snapshot_options("result_side_by_side", &snap_opts());

    // Replay the scales: every scale is shown in turn, then the result again.
    h.key_press(Key::P);
    let mut shown = std::collections::BTreeSet::new();
    wait_for(&mut h, "the replay", Duration::from_secs(30), |a| {
        shown.extend(a.state.scrub);
        a.state.playing.is_none()
    });
    assert_eq!(h.state().state.scrub, None);
    assert!(shown.len() >= 8 && shown.contains(&0), "{shown:?}");

    // Scrub back to scale 3, then split view.
    h.get_by_label("Scale 3").click();
    h.run_ok();
    assert_eq!(h.state().state.scrub, Some(2));
    h.get_by_label_contains("Scale 3/10");
    h.get_by_label("Split").click();
    h.run_ok();
    assert_eq!(h.state().settings.compare, CompareMode::Split);
    mask_pictures(&mut h);
    h.snapshot_options("scrub_split", &snap_opts());
}

#[test]
fn moving_the_guidance_slider_rerenders_without_a_click() {
    let dir = tempfile::tempdir().unwrap();
    let photo = write_photo(dir.path(), "photo.png", 32, 32);
    let mut h = harness(vec![photo]);
    ready(&mut h);
    h.key_press(Key::Enter);
    wait_idle(&mut h, "the first result");
    let first_job = h.state().state.next_job;
    assert_eq!(
        h.state()
            .state
            .selected_sample()
            .unwrap()
            .options
            .params
            .cfg,
        6.0
    );

    h.get_by_role_and_label(egui::accesskit::Role::Slider, "Guidance")
        .increment_accesskit();
    h.step();
    let cfg = h.state().settings.params.cfg;
    assert!(cfg > 6.0, "the slider moved: {cfg}");
    assert!(
        h.state().state.job.is_none(),
        "no re-render before the pause"
    );
    assert!(h.state().state.rerender_at.is_some());
    wait_idle(&mut h, "the re-render");
    let app = h.state();
    assert_eq!(
        app.state.next_job,
        first_job + 1,
        "exactly one more job ran"
    );
    let s = app.state.selected_sample().unwrap();
    assert_eq!(s.options.params.cfg, cfg);
    assert!(!s.partial);
}

#[test]
fn rerun_from_a_scale_keeps_the_coarser_scales() {
    let dir = tempfile::tempdir().unwrap();
    let photo = write_photo(dir.path(), "photo.png", 32, 32);
    let mut h = harness(vec![photo]);
    // Sampling (not argmax), so that another seed draws other tokens.
    h.state_mut().settings.params.top_k = 100;
    ready(&mut h);
    h.key_press(Key::Enter);
    wait_idle(&mut h, "the first result");
    let first = h
        .state()
        .state
        .selected_sample()
        .unwrap()
        .tokens
        .clone()
        .unwrap();

    // A new seed, then "Re-run" from scale 5: scales 1-4 (indices 0..4) are kept.
    h.state_mut().settings.live_guidance = false;
    h.state_mut().settings.params.seed = 4242;
    h.state_mut().settings.rerun_from = 4;
    h.get_by_label("Re-run").click();
    wait_idle(&mut h, "the re-run");
    let app = h.state();
    assert!(app.state.error.is_none(), "{:?}", app.state.error);
    let s = app.state.selected_sample().unwrap();
    assert_eq!(s.seed, 4242);
    let second = s.tokens.clone().unwrap();
    assert_eq!(first.per_tile.len(), second.per_tile.len());
    for (a, b) in first.per_tile.iter().zip(&second.per_tile) {
        assert_eq!(a[..4], b[..4], "the coarse scales are kept");
        assert_ne!(a[4..], b[4..], "the finer scales are sampled anew");
    }
}

/// Shift+drag over the result marks a region; "Re-sample region" generates only the tiles under it
/// again with the new seed, and the new version joins the old one in the gallery.
#[test]
fn resampling_a_region_redraws_only_its_tiles() {
    let dir = tempfile::tempdir().unwrap();
    // 130×40 → 520×160: two 512-px tiles of the fixture model, at 0–462 and 58–520 of the output.
    let photo = write_photo(dir.path(), "wide.png", 130, 40);
    let mut h = harness(vec![photo]);
    h.state_mut().settings.params.top_k = 100;
    h.state_mut().settings.live_guidance = false;
    ready(&mut h);
    h.key_press(Key::Enter);
    wait_idle(&mut h, "the first result");
    let first = h.state().state.selected_sample().unwrap();
    let (first_tokens, first_image) = (first.tokens.clone().unwrap(), first.image.clone());
    assert_eq!(first_tokens.per_tile.len(), 2);
    assert_eq!(first_tokens.latents.len(), 2);

    // The result is fitted into its pane: the largest picture drawn is the whole 520×160 frame.
    let shown = h
        .state()
        .state
        .picture_rects
        .iter()
        .copied()
        .max_by(|a, b| a.area().total_cmp(&b.area()))
        .unwrap();
    let at = |fx: f32, fy: f32| {
        shown.min + egui::vec2(fx / 520.0 * shown.width(), fy / 160.0 * shown.height())
    };
    let shift_drag = |h: &mut Harness<'_, VarsrApp>, from: egui::Pos2, to: egui::Pos2| {
        h.event(egui::Event::ModifiersChanged(Modifiers::SHIFT));
        h.drag_at(from);
        h.step();
        h.hover_at(to);
        h.step();
        h.drop_at(to);
        h.step();
        h.event(egui::Event::ModifiersChanged(Modifiers::NONE));
        h.run_ok();
    };
    let view = h.state().state.view;
    shift_drag(&mut h, at(480.0, 20.0), at(515.0, 140.0));
    assert_eq!(h.state().state.view, view, "selecting does not pan");
    let frame = egui::vec2(520.0, 160.0);
    let (x, y, w, rh) = h.state().state.region.unwrap().pixels(frame).unwrap();
    let near = |a: u32, b: u32| a.abs_diff(b) <= 3;
    assert!(
        near(x, 480) && near(y, 20) && near(x + w, 515) && near(y + rh, 140),
        "{:?}",
        (x, y, w, rh)
    );

    h.state_mut().settings.params.seed = 777;
    h.get_by_label("Re-sample region").click();
    wait_idle(&mut h, "the re-sampled region");
    let app = h.state();
    assert!(app.state.error.is_none(), "{:?}", app.state.error);
    assert_eq!(
        app.state.samples.len(),
        2,
        "the new version joins the old one"
    );
    assert_eq!(app.state.selected, 1);
    assert!(app.state.samples[0].image.as_raw() == first_image.as_raw());
    let new = &app.state.samples[1];
    assert_eq!(new.seed, 777);
    let tokens = new.tokens.clone().unwrap();
    assert_eq!(
        tokens.per_tile[0], first_tokens.per_tile[0],
        "tile 0 is kept"
    );
    assert_eq!(tokens.latents[0], first_tokens.latents[0]);
    assert_ne!(
        tokens.per_tile[1], first_tokens.per_tile[1],
        "tile 1 is redrawn"
    );
    assert_ne!(new.image.as_raw(), first_image.as_raw());

    // Again with the result's own settings: a new seed is rolled rather than the same tiles made.
    h.get_by_label("Re-sample region").click();
    wait_idle(&mut h, "the region re-rolled");
    let app = h.state();
    assert_eq!(app.state.samples.len(), 3);
    let rolled = &app.state.samples[2];
    assert_ne!(rolled.seed, 777);
    assert_eq!(
        app.settings.params.seed, rolled.seed,
        "shown in the seed field"
    );
    let t = rolled.tokens.clone().unwrap();
    assert_eq!(t.per_tile[0], first_tokens.per_tile[0]);
    assert_ne!(t.per_tile[1], tokens.per_tile[1]);

    // While the region is marked, moving the guidance redraws the region only.
    h.state_mut().settings.live_guidance = true;
    h.get_by_role_and_label(egui::accesskit::Role::Slider, "Guidance")
        .increment_accesskit();
    wait_for(
        &mut h,
        "the region re-render",
        Duration::from_secs(300),
        |a| a.state.samples.len() == 4 && a.is_idle(),
    );
    let app = h.state();
    let live = &app.state.samples[3];
    assert_eq!(live.options.params.cfg, app.settings.params.cfg);
    assert!(live.options.params.cfg > 6.0);
    assert_eq!(
        live.tokens.clone().unwrap().per_tile[0],
        first_tokens.per_tile[0],
        "a region re-render, not a whole one"
    );

    // Shift+click clears the region and the button is disabled again.
    shift_drag(&mut h, at(100.0, 80.0), at(100.0, 80.0));
    assert!(h.state().state.region.is_none());
    h.get_by_label("Re-sample region").click();
    h.run_ok();
    assert!(h.state().is_idle(), "a disabled button starts nothing");
}

#[test]
fn the_trust_view_maps_the_result_against_the_input() {
    use varsr::imaging::trust::{TrustMap, render, trust};
    let dir = tempfile::tempdir().unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let photo = write_photo(dir.path(), "photo.png", 40, 30);
    let mut h = harness(vec![photo]);
    h.state_mut().settings.last_export_dir = Some(out_dir.path().to_path_buf());
    ready(&mut h);
    h.key_press(Key::Enter);
    wait_idle(&mut h, "the result");
    h.key_press(Key::T);
    wait_idle(&mut h, "the trust map");
    let app = h.state();
    let rgb = |p: &image::RgbaImage| image::DynamicImage::ImageRgba8(p.clone()).to_rgb8();
    let input = rgb(&app.state.input.as_ref().unwrap().image.picture);
    let sample = app.state.selected_sample().expect("a result");
    let result = rgb(&sample.image);
    assert_eq!(sample.trust.len(), 1);
    let shown = &sample.trust[0];
    assert_eq!(shown.figures.map, TrustMap::Invented);
    assert_eq!(shown.texture.size(), [160, 120]);
    let want = trust(TrustMap::Invented, &input, &result);
    assert_eq!(
        shown.figures.mean, want.mean,
        "the map of the shown result and input"
    );
    assert!(want.mean > 0.0, "a random model invents something");
    // And by its definition: mean |Y(result) − Y(Pillow-bicubic enlargement of the input)|.
    let y = |p: &image::Rgb<u8>| {
        let [r, g, b] = p.0.map(f64::from);
        16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0
    };
    let base = varsr::imaging::resize_rgb(&input, 160, 120);
    let by_definition = result
        .pixels()
        .zip(base.pixels())
        .map(|(a, b)| (y(a) - y(b)).abs())
        .sum::<f64>()
        / (160.0 * 120.0);
    assert!(
        (shown.figures.mean - by_definition).abs() < 1e-4,
        "{} vs {by_definition}",
        shown.figures.mean
    );
    h.get_by_label_contains("Trust view · What was invented · mean");

    // Exported as shown, under the result's name.
    h.get_by_label("Trust map").click();
    wait_idle(&mut h, "the export of the map");
    let saved = out_dir
        .path()
        .join("photo_varsr_x4_cfg6_seed42_trust-invented.png");
    let saved = image::open(&saved)
        .unwrap_or_else(|e| panic!("{e}; log:\n{}", h.state().log.text()))
        .to_rgba8();
    assert_eq!(saved, render(&want, &result));

    // The other map, from the menu next to the toggle; the first is kept.
    h.get_by_role_and_label(egui::accesskit::Role::ComboBox, "Map")
        .click();
    h.run_ok();
    h.get_by_label("Disagreement with the input").click();
    wait_idle(&mut h, "the second map");
    let app = h.state();
    assert_eq!(app.settings.trust_map, TrustMap::Inconsistency);
    let sample = app.state.selected_sample().unwrap();
    assert_eq!(sample.trust.len(), 2);
    let want = trust(TrustMap::Inconsistency, &input, &result);
    assert_eq!(sample.trust[1].figures.mean, want.mean);
    h.get_by_label_contains("Trust view · Disagreement with the input");

    // T again: the result itself.
    h.key_press(Key::T);
    h.run_ok();
    assert!(!h.state().state.trust_view);
    h.get_by_label_contains("Result ×4 160×120");
}

#[test]
fn cancel_keeps_the_finished_scales() {
    let dir = tempfile::tempdir().unwrap();
    // Big enough for several tiles, so that the run is far from done at the first scales.
    let photo = write_photo(dir.path(), "big.png", 300, 200);
    let mut h = harness(vec![photo]);
    ready(&mut h);
    h.get_by_label("Upscale  (Enter)").click();
    wait_for(&mut h, "two scales", Duration::from_secs(300), |a| {
        a.state.job.as_ref().and_then(|j| j.live.latest()) >= Some(1)
    });
    h.key_press(Key::Escape);
    h.step();
    assert!(h.state().state.job.as_ref().is_some_and(|j| j.cancelling));
    wait_idle(&mut h, "the cancellation");
    let app = h.state();
    let s = app
        .state
        .selected_sample()
        .expect("the partial result is kept");
    assert!(s.partial);
    let kept = (0..s.scales.len())
        .filter(|&k| s.scales.get(k).is_some())
        .count();
    assert!((2..10).contains(&kept), "finished scales kept: {kept}");
    assert!(app.log.contains("cancelled"));
    h.get_by_label_contains("partial (cancelled)");
    // A reduced preview is not the result: the trust view says so instead of mapping it.
    h.key_press(Key::T);
    h.run_ok();
    h.get_by_label_contains("the trust view needs a finished result");
    h.key_press(Key::T);
    h.run_ok();
    mask_pictures(&mut h);
    // How many scales finish before the cancel lands depends on timing.
    let strip = h.get_by_label("Final").rect();
    h.mask(egui::Rect::from_min_max(
        egui::pos2(280.0, strip.center().y - 30.0),
        egui::pos2(SIZE[0], strip.center().y + 30.0),
    ));
    h.snapshot_options("cancelled", &snap_opts());
}

fn png_text(path: &Path) -> Vec<(String, String)> {
    let dec = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = dec.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    reader.next_frame(&mut buf).unwrap();
    reader.finish().unwrap();
    let info = reader.info();
    let mut out: Vec<(String, String)> = info
        .uncompressed_latin1_text
        .iter()
        .map(|t| (t.keyword.clone(), t.text.clone()))
        .collect();
    for t in &info.utf8_text {
        out.push((t.keyword.clone(), t.get_text().unwrap()));
    }
    for t in &info.compressed_latin1_text {
        out.push((t.keyword.clone(), t.get_text().unwrap()));
    }
    out
}

#[test]
fn export_writes_a_readable_file_with_metadata_and_asks_before_overwriting() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let photo = write_photo(dir.path(), "photo.png", 32, 24);
    let mut h = harness(vec![photo]);
    h.state_mut().settings.last_export_dir = Some(out_dir.path().to_path_buf());
    h.state_mut().settings.params.seed = 7;
    ready(&mut h);
    h.key_press(Key::Enter);
    wait_idle(&mut h, "the result");

    h.key_press_modifiers(Modifiers::COMMAND, Key::S);
    wait_idle(&mut h, "the export");
    let expected = out_dir.path().join("photo_varsr_x4_cfg6_seed7.png");
    assert!(expected.exists(), "log:\n{}", h.state().log.text());
    let decoded = image::open(&expected).unwrap();
    assert_eq!((decoded.width(), decoded.height()), (128, 96));
    let text = png_text(&expected);
    let json = &text
        .iter()
        .find(|(k, _)| k == "varsr")
        .expect("settings chunk")
        .1;
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(v["seed"], 7);
    assert_eq!(v["cfg"], 6.0);
    assert_eq!(v["scale"], 4);
    assert_eq!(v["top_k"], 1);
    assert!(
        text.iter()
            .any(|(k, v)| k == "Software" && v.starts_with("VARSR Studio"))
    );

    // Again: the window asks instead of replacing the file.
    let before = std::fs::read(&expected).unwrap();
    std::fs::write(&expected, b"precious").unwrap();
    h.key_press_modifiers(Modifiers::COMMAND, Key::S);
    h.run_ok();
    assert!(
        h.state().state.overwrite.is_some(),
        "an overwrite question is shown"
    );
    h.get_by_label("Replace the existing file?");
    // The temporary folder's name changes every run.
    let question = h.get_by_label_contains("already exists").rect();
    let notice = h.get_by_label_contains("Saved ").rect();
    // Fixed widths: the masks must not depend on the length of the path either.
    h.mask(egui::Rect::from_min_size(
        question.min,
        egui::vec2(440.0, question.height()),
    ));
    h.mask(egui::Rect::from_min_size(
        notice.min,
        egui::vec2(700.0, notice.height()),
    ));
    mask_pictures(&mut h);
    h.snapshot_options("overwrite_question", &snap_opts());
    h.get_by_label("Keep both").click();
    wait_idle(&mut h, "the second export");
    assert_eq!(
        std::fs::read(&expected).unwrap(),
        b"precious",
        "not replaced"
    );
    let second = out_dir.path().join("photo_varsr_x4_cfg6_seed7 (2).png");
    assert_eq!(std::fs::read(&second).unwrap(), before);

    // Replace, when asked to.
    h.key_press_modifiers(Modifiers::COMMAND, Key::S);
    h.run_ok();
    h.get_by_label("Replace").click();
    wait_idle(&mut h, "the replacing export");
    assert_eq!(std::fs::read(&expected).unwrap(), before);

    // Ctrl+C puts the result image on the clipboard.
    h.event(egui::Event::Copy);
    h.step();
    let copied = h
        .output()
        .platform_output
        .commands
        .iter()
        .any(|c| matches!(c, egui::OutputCommand::CopyImage(img) if img.size == [128, 96]));
    assert!(copied, "{:?}", h.output().platform_output.commands.len());

    // The scale sequence as an animated GIF.
    h.get_by_label("Scales as GIF").click();
    wait_idle(&mut h, "the GIF");
    let gif = out_dir.path().join("photo_varsr_x4_cfg6_seed7_scales.gif");
    use image::AnimationDecoder;
    let dec = image::codecs::gif::GifDecoder::new(std::io::BufReader::new(
        std::fs::File::open(&gif).unwrap(),
    ))
    .unwrap();
    assert_eq!(dec.into_frames().count(), 11, "10 scales and the result");
}

#[test]
fn flipping_between_variations_and_the_input_keeps_zoom_and_pan() {
    let dir = tempfile::tempdir().unwrap();
    let photo = write_photo(dir.path(), "photo.png", 32, 32);
    let mut h = harness(vec![photo]);
    ready(&mut h);
    h.state_mut().settings.variations = 2;
    h.get_by_label("Generate").click();
    wait_idle(&mut h, "two variations");
    let app = h.state();
    assert_eq!(app.state.samples.len(), 2);
    assert_ne!(app.state.samples[0].seed, app.state.samples[1].seed);
    assert_ne!(
        app.state.samples[0].image.as_raw(),
        app.state.samples[1].image.as_raw(),
        "different seeds, different samples"
    );

    h.key_press(Key::Num2);
    h.run_ok();
    let pane = h.state().state.pane_size;
    h.drag_at(egui::pos2(800.0, 400.0));
    h.step();
    h.drop_at(egui::pos2(760.0, 380.0));
    h.run_ok();
    let view = h.state().state.view;
    assert!(
        !view.fit && (view.zoom - 2.0).abs() < 1e-4,
        "{view:?} in {pane:?}"
    );

    h.key_press_modifiers(Modifiers::COMMAND, Key::Num2);
    h.run_ok();
    assert_eq!(h.state().state.selected, 1);
    assert_eq!(h.state().state.view, view);
    h.key_down(Key::Space);
    h.step();
    assert!(h.state().state.flip);
    // Both panes now show the input.
    assert_eq!(h.get_all_by_label_contains("Input 32×32").count(), 2);
    assert_eq!(h.state().state.view, view);
    h.key_up(Key::Space);
    h.step();
    assert!(!h.state().state.flip);
    h.key_press_modifiers(Modifiers::COMMAND, Key::Num0);
    h.run_ok();
    assert!(h.state().state.show_input);
    h.key_press_modifiers(Modifiers::COMMAND, Key::Num1);
    h.run_ok();
    assert_eq!(h.state().state.selected, 0);
    assert!(!h.state().state.show_input);
    assert_eq!(h.state().state.view, view);
    h.key_press(Key::Num0);
    h.run_ok();
    assert!(h.state().state.view.fit);
}

#[test]
fn transparency_is_shown_over_a_checkerboard() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("logo.png");
    image::RgbaImage::from_fn(40, 30, |x, y| {
        let inside = (x as i32 - 20).pow(2) + (y as i32 - 15).pow(2) < 120;
        image::Rgba([220, 60, 40, if inside { 255 } else { (x * 3) as u8 }])
    })
    .save(&p)
    .unwrap();
    let mut h = harness(vec![p]);
    wait_idle(&mut h, "the image");
    assert!(h.state().state.input.as_ref().unwrap().texture.has_alpha);
    h.snapshot_options("transparent_input", &snap_opts());
}

#[test]
fn an_image_wider_than_a_texture_is_shown_in_pieces() {
    let dir = tempfile::tempdir().unwrap();
    let photo = write_photo(dir.path(), "wide.png", 5000, 40);
    let mut h = harness(vec![photo]);
    h.input_mut().max_texture_side = Some(2048);
    wait_idle(&mut h, "the wide image");
    let input = h.state().state.input.as_ref().unwrap();
    assert_eq!(input.texture.num_pieces(), 3);
    h.key_press(Key::Num1);
    h.run_ok();
    h.render().expect("renders");
}

/// An in-memory `eframe::Storage`.
#[derive(Default)]
struct Memory(std::collections::HashMap<String, String>);

impl eframe::Storage for Memory {
    fn get_string(&self, key: &str) -> Option<String> {
        self.0.get(key).cloned()
    }
    fn set_string(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
    fn remove_string(&mut self, key: &str) {
        self.0.remove(key);
    }
    fn flush(&mut self) {}
}

#[test]
fn settings_are_saved_but_a_model_given_for_the_session_is_not() {
    let mut h = harness_with(AppOptions {
        model: Some(ModelSpec::Path(fixture_model())),
        device: Some(DeviceChoice::Cpu),
        persist: true,
        settings: Some(Settings::default()),
        ..AppOptions::default()
    });
    wait_idle(&mut h, "the model");
    h.state_mut().settings.params.cfg = 3.5;
    h.state_mut().settings.compare = CompareMode::Split;
    let mut storage = Memory::default();
    eframe::App::save(h.state_mut(), &mut storage);
    let saved: Settings = eframe::get_value(&storage, eframe::APP_KEY).expect("settings saved");
    assert_eq!(saved.params.cfg, 3.5);
    assert_eq!(saved.compare, CompareMode::Split);
    assert_eq!(saved.model, varsr::app::ModelChoice::Embedded);
    assert_eq!(saved.device, DeviceChoice::Cpu);

    // Reset to defaults keeps the history.
    h.state_mut().settings.add_recent("/photos/a.png".into());
    h.get_by_label("Help").click();
    h.run_ok();
    h.get_by_label("Reset settings to defaults").click();
    h.run_ok();
    let s = &h.state().settings;
    assert_eq!(s.params.cfg, 6.0);
    assert_eq!(s.compare, CompareMode::SideBySide);
    assert_eq!(s.recent, vec![PathBuf::from("/photos/a.png")]);
}

#[test]
fn a_missing_model_is_explained_in_plain_words() {
    let mut h = harness_with(AppOptions {
        model: Some(ModelSpec::Path("/nonexistent/model-folder".into())),
        device: Some(DeviceChoice::Cpu),
        persist: false,
        ..AppOptions::default()
    });
    wait_idle(&mut h, "the model failure");
    let err = h.state().state.error.clone().expect("an error");
    assert!(err.contains("/nonexistent/model-folder"), "{err}");
    h.get_by_label_contains("No model:");
    h.snapshot_options("missing_model", &snap_opts());
}

/// Process CPU time (user + system) so far.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the name.
    let ticks = f.get(10).copied().unwrap_or(0) + f.get(11).copied().unwrap_or(0);
    Duration::from_secs_f64(ticks as f64 / 100.0)
}

/// Prints (does not assert) frame times while a job runs and CPU use while idle:
/// `cargo test --release --test gui measure -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement, not a check: run it with --ignored --nocapture"]
fn measure_frame_time_while_generating_and_cpu_while_idle() {
    let dir = tempfile::tempdir().unwrap();
    let photo = write_photo(dir.path(), "big.png", 200, 150);
    let mut h = harness(vec![photo]);
    ready(&mut h);
    h.run_ok();
    h.key_press(Key::Enter);
    h.step();
    assert!(h.state().state.job.is_some(), "Enter starts a job");
    let mut steps = Vec::new();
    let mut renders = Vec::new();
    let start = Instant::now();
    while h.state().state.job.is_some() && start.elapsed() < Duration::from_secs(600) {
        let t = Instant::now();
        h.step();
        steps.push(t.elapsed());
        let t = Instant::now();
        h.render().expect("render");
        renders.push(t.elapsed());
        std::thread::sleep(Duration::from_millis(16));
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let summary = |v: &mut Vec<Duration>| {
        v.sort();
        let at = |p: f64| v[((v.len() - 1) as f64 * p) as usize];
        format!(
            "median {:.2} ms, p95 {:.2} ms, max {:.2} ms",
            ms(at(0.5)),
            ms(at(0.95)),
            ms(at(1.0))
        )
    };
    let stats = h.state().state.stats.clone();
    println!(
        "while generating ({:.1} s, {} frames, both cores busy with the model):\n  \
         logic + ui per frame: {}\n  software rasteriser (lavapipe or llvmpipe) per frame: {}\n  \
         worker events drained: {}, longest drain {:.2} ms (budget 8 ms), longest ui {:.2} ms",
        start.elapsed().as_secs_f32(),
        steps.len(),
        summary(&mut steps),
        summary(&mut renders),
        stats.events,
        ms(stats.max_drain),
        ms(stats.max_ui),
    );
    wait_idle(&mut h, "the end of the job");
    let repaint = h
        .output()
        .viewport_output
        .get(&egui::ViewportId::ROOT)
        .map(|v| v.repaint_delay);
    let c0 = cpu_time();
    std::thread::sleep(Duration::from_secs(3));
    let used = cpu_time() - c0;
    println!(
        "idle: the window asks for its next repaint after {repaint:?} (MAX = only on input); \
         process CPU over 3 s idle: {:.0} ms ({:.1} %)",
        used.as_secs_f64() * 1e3,
        used.as_secs_f64() / 3.0 * 100.0
    );
}
