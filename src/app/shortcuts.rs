//! Keyboard shortcuts. Bare keys (digits, Space, Enter) are ignored while a text field has focus.

use egui::{Context, Key, KeyboardShortcut, Modifiers};

use super::Command;
use super::state::State;

pub const OPEN: KeyboardShortcut = KeyboardShortcut::new(Modifiers::COMMAND, Key::O);
pub const EXPORT: KeyboardShortcut = KeyboardShortcut::new(Modifiers::COMMAND, Key::S);
pub const EXPORT_AS: KeyboardShortcut =
    KeyboardShortcut::new(Modifiers::COMMAND.plus(Modifiers::SHIFT), Key::S);

const DIGITS: [Key; 10] = [
    Key::Num0,
    Key::Num1,
    Key::Num2,
    Key::Num3,
    Key::Num4,
    Key::Num5,
    Key::Num6,
    Key::Num7,
    Key::Num8,
    Key::Num9,
];

/// The table shown in Help ▸ Shortcuts.
pub const HELP: &[(&str, &str)] = &[
    ("Ctrl+O", "Open an image"),
    ("Ctrl+V", "Paste an image (or a copied file)"),
    ("Enter", "Upscale"),
    ("Esc", "Cancel (finished scales are kept)"),
    ("Ctrl+S / Ctrl+Shift+S", "Export / Export as…"),
    ("Ctrl+C", "Copy the result image"),
    ("Space (hold)", "Show the input in place of the result"),
    ("0 or double-click", "Fit to the window"),
    ("1 … 5", "Zoom 100 % … 500 %"),
    ("+ / −, scroll", "Zoom in / out (about the cursor)"),
    ("Drag", "Pan"),
    (
        "Shift+drag",
        "Mark a region to re-sample (Shift+click clears it)",
    ),
    ("← / →", "Step through the scales"),
    ("P", "Replay the scales"),
    ("Ctrl+1 … Ctrl+9", "Show variation 1 … 9"),
    ("Ctrl+0", "Show the input"),
    ("M", "Next compare mode (side by side, split, result only)"),
    ("T", "Trust view: where the result departs from the input"),
    ("L", "Show or hide the log"),
    ("F1", "This list"),
];

pub fn handle(ctx: &Context, state: &mut State, cmds: &mut Vec<Command>) {
    let typing = ctx.text_edit_focused();
    ctx.input_mut(|i| {
        if i.consume_shortcut(&EXPORT_AS) {
            cmds.push(Command::ExportAs);
        }
        if i.consume_shortcut(&EXPORT) {
            cmds.push(Command::Export);
        }
        if i.consume_shortcut(&OPEN) {
            cmds.push(Command::OpenDialog);
        }
        // egui-winit turns Ctrl+C into a copy event rather than a key press.
        if !typing && i.events.iter().any(|e| matches!(e, egui::Event::Copy)) {
            cmds.push(Command::CopyResult);
        }
        if i.consume_key(Modifiers::NONE, Key::Escape) {
            if state.overwrite.is_some() {
                cmds.push(Command::DismissOverwrite);
            } else {
                cmds.push(Command::Cancel);
            }
        }
        for (n, key) in DIGITS.iter().enumerate() {
            if i.consume_key(Modifiers::COMMAND, *key) {
                cmds.push(match n {
                    0 => Command::ShowInput,
                    n => Command::Select(n - 1),
                });
            }
        }
        if typing {
            state.flip = false;
            return;
        }
        state.flip = i.key_down(Key::Space);
        if i.consume_key(Modifiers::NONE, Key::F1) {
            cmds.push(Command::ToggleHelp);
        }
        // Several presses can arrive in one frame (fast typing, scripts): count them all.
        for _ in 0..i.count_and_consume_key(Modifiers::NONE, Key::M) {
            cmds.push(Command::NextCompareMode);
        }
        if i.consume_key(Modifiers::NONE, Key::P) && state.selected_sample().is_some() {
            cmds.push(Command::PlayScales);
        }
        for _ in 0..i.count_and_consume_key(Modifiers::NONE, Key::T) {
            cmds.push(Command::ToggleTrust);
        }
        if i.consume_key(Modifiers::NONE, Key::L) {
            cmds.push(Command::ToggleLog);
        }
        if i.consume_key(Modifiers::NONE, Key::Enter) && state.overwrite.is_none() {
            cmds.push(Command::Upscale);
        }
        if i.consume_key(Modifiers::NONE, Key::Num0) {
            cmds.push(Command::Fit);
        }
        for (n, key) in DIGITS.iter().enumerate().skip(1).take(5) {
            if i.consume_key(Modifiers::NONE, *key) {
                cmds.push(Command::Zoom(n as f32));
            }
        }
        let zoom_in = i.count_and_consume_key(Modifiers::NONE, Key::Plus)
            + i.count_and_consume_key(Modifiers::NONE, Key::Equals);
        let zoom_out = i.count_and_consume_key(Modifiers::NONE, Key::Minus);
        if zoom_in != zoom_out {
            let steps = zoom_in as i32 - zoom_out as i32;
            cmds.push(Command::Zoom(state.view.zoom * 1.25f32.powi(steps)));
        }
        let strip_len = state
            .job
            .as_ref()
            .map(|j| j.live.len())
            .or_else(|| state.selected_sample().map(|s| s.scales.len()))
            .unwrap_or(0);
        if strip_len > 0 {
            // Positions 0..len are the scales, len is the result.
            let left = i.count_and_consume_key(Modifiers::NONE, Key::ArrowLeft);
            let right = i.count_and_consume_key(Modifiers::NONE, Key::ArrowRight);
            if left != right {
                let at = state.scrub.unwrap_or(strip_len) as i64;
                let to = (at - left as i64 + right as i64).clamp(0, strip_len as i64) as usize;
                cmds.push(Command::Scrub((to < strip_len).then_some(to)));
            }
        }
    });
}
