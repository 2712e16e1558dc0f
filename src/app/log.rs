//! The session log: every worker message, error and export, copyable as text.

use std::collections::VecDeque;
use std::time::Instant;

const MAX_LINES: usize = 2000;

pub struct Log {
    start: Instant,
    lines: VecDeque<String>,
}

impl Default for Log {
    fn default() -> Self {
        Self {
            start: Instant::now(),
            lines: VecDeque::new(),
        }
    }
}

impl Log {
    pub fn push(&mut self, line: impl AsRef<str>) {
        let t = self.start.elapsed().as_secs_f32();
        let line = format!("[{t:8.2}s] {}", line.as_ref());
        // Mirrored to stderr: useful when started from a terminal, and what scripts wait on.
        eprintln!("{line}");
        if self.lines.len() == MAX_LINES {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
    }

    pub fn text(&self) -> String {
        let mut s = String::new();
        for l in &self.lines {
            s.push_str(l);
            s.push('\n');
        }
        s
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    pub fn contains(&self, needle: &str) -> bool {
        self.lines.iter().any(|l| l.contains(needle))
    }

    pub fn ui(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            ui.strong("Log");
            if ui.button("Copy log").clicked() {
                ui.ctx().copy_text(self.text());
            }
            if ui.button("Clear").clicked() {
                self.lines.clear();
            }
        });
        egui::ScrollArea::vertical()
            .stick_to_bottom(true)
            .auto_shrink([false, false])
            .show(ui, |ui| {
                for l in &self.lines {
                    ui.add(egui::Label::new(egui::RichText::new(l).monospace()).wrap());
                }
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_lines_in_order() {
        let mut log = Log::default();
        for i in 0..MAX_LINES + 5 {
            log.push(format!("line {i}"));
        }
        assert_eq!(log.len(), MAX_LINES);
        let text = log.text();
        assert!(!text.contains("] line 4\n"));
        assert!(
            text.trim_end()
                .ends_with(&format!("line {}", MAX_LINES + 4))
        );
    }
}
