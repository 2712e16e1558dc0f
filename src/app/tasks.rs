//! Short background jobs of the window that must not block a frame: decoding an opened file,
//! native file dialogs, writing exports. Each runs on its own thread and reports back through
//! one channel, waking the window.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender, unbounded};

use crate::worker::InputImage;

#[derive(Debug)]
pub enum Pick {
    Open(Vec<PathBuf>),
    ModelFolder(PathBuf),
    ModelFile(PathBuf),
    ExportTo(PathBuf),
}

#[derive(Debug)]
pub enum Done {
    Loaded {
        path: Option<PathBuf>,
        result: Result<InputImage, String>,
    },
    Picked(Pick),
    /// A dialog was closed without choosing.
    DialogClosed,
    Exported {
        path: PathBuf,
        result: Result<(), String>,
    },
    Trust(Box<super::trust_view::TrustDone>),
}

pub struct Tasks {
    tx: Sender<Done>,
    rx: Receiver<Done>,
    ctx: egui::Context,
    /// A native dialog is open (only one at a time).
    pub dialog_open: bool,
}

impl Tasks {
    pub fn new(ctx: egui::Context) -> Self {
        let (tx, rx) = unbounded();
        Self {
            tx,
            rx,
            ctx,
            dialog_open: false,
        }
    }

    pub fn try_recv(&mut self) -> Option<Done> {
        let done = self.rx.try_recv().ok()?;
        if matches!(done, Done::Picked(_) | Done::DialogClosed) {
            self.dialog_open = false;
        }
        Some(done)
    }

    pub fn spawn(&self, name: &str, f: impl FnOnce() -> Done + Send + 'static) {
        let tx = self.tx.clone();
        let ctx = self.ctx.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("varsr-{name}"))
            .spawn(move || {
                let done = f();
                let _ = tx.send(done);
                ctx.request_repaint();
            });
        if let Err(e) = spawned {
            let _ = self.tx.send(Done::Loaded {
                path: None,
                result: Err(format!("could not start a thread: {e}")),
            });
        }
    }

    pub fn load_path(&self, path: PathBuf) {
        self.spawn("load", move || {
            let result = load_image(&path);
            Done::Loaded {
                path: Some(path),
                result,
            }
        });
    }

    fn dialog(&mut self, f: impl FnOnce() -> Option<Pick> + Send + 'static) {
        if self.dialog_open {
            return;
        }
        self.dialog_open = true;
        self.spawn("dialog", move || match f() {
            Some(p) => Done::Picked(p),
            None => Done::DialogClosed,
        });
    }

    pub fn open_dialog(&mut self, start: Option<PathBuf>) {
        self.dialog(move || {
            let mut d = rfd::AsyncFileDialog::new()
                .set_title("Open images")
                .add_filter("Images", IMAGE_EXTENSIONS)
                .add_filter("All files", &["*"]);
            if let Some(dir) = start {
                d = d.set_directory(dir);
            }
            let files = block_on(d.pick_files())?;
            Some(Pick::Open(
                files.into_iter().map(|f| f.path().to_path_buf()).collect(),
            ))
        });
    }

    pub fn model_folder_dialog(&mut self, start: Option<PathBuf>) {
        self.dialog(move || {
            let mut d = rfd::AsyncFileDialog::new()
                .set_title("Choose a folder with VARSR.pth and VQVAE.pth");
            if let Some(dir) = start {
                d = d.set_directory(dir);
            }
            let f = block_on(d.pick_folder())?;
            Some(Pick::ModelFolder(f.path().to_path_buf()))
        });
    }

    pub fn model_file_dialog(&mut self, start: Option<PathBuf>) {
        self.dialog(move || {
            let mut d = rfd::AsyncFileDialog::new()
                .set_title("Choose a converted VARSR model")
                .add_filter("safetensors", &["safetensors"]);
            if let Some(dir) = start {
                d = d.set_directory(dir);
            }
            let f = block_on(d.pick_file())?;
            Some(Pick::ModelFile(f.path().to_path_buf()))
        });
    }

    pub fn save_dialog(
        &mut self,
        dir: Option<PathBuf>,
        name: String,
        filters: Vec<(&'static str, &'static [&'static str])>,
    ) {
        self.dialog(move || {
            let mut d = rfd::AsyncFileDialog::new()
                .set_title("Export")
                .set_file_name(name);
            for (label, ext) in filters {
                d = d.add_filter(label, ext);
            }
            if let Some(dir) = dir {
                d = d.set_directory(dir);
            }
            let f = block_on(d.save_file())?;
            Some(Pick::ExportTo(f.path().to_path_buf()))
        });
    }
}

pub const IMAGE_EXTENSIONS: &[&str] = &[
    "png", "jpg", "jpeg", "webp", "tif", "tiff", "bmp", "gif", "PNG", "JPG", "JPEG",
];

/// Decodes a file upright (EXIF orientation applied), alpha, ICC and EXIF kept; failures in
/// plain words.
pub fn load_image(path: &Path) -> Result<InputImage, String> {
    use crate::imaging::ImagingError as E;
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let loaded = crate::imaging::load(path).map_err(|e| match &e {
        E::UnknownFormat { .. } => {
            format!("{name} is not a readable image (PNG, JPEG, WebP, TIFF or GIF expected).")
        }
        E::Read { source, .. } => format!("Could not read {name}: {source}."),
        E::Decode { format, source, .. } => {
            format!(
                "{name} is not a readable image: it looks like {format} but is damaged ({source})."
            )
        }
        E::TooLarge { .. } => format!("{e}."),
        _ => format!("Could not open {name}: {e}."),
    })?;
    if loaded.width() == 0 || loaded.height() == 0 {
        return Err(format!("{name} is empty."));
    }
    let picture = match &loaded.alpha {
        Some(a) => crate::imaging::combine(&loaded.rgb, a).map_err(|e| e.to_string())?,
        None => image::DynamicImage::ImageRgb8(loaded.rgb).into_rgba8(),
    };
    Ok(InputImage {
        picture: Arc::new(picture),
        path: Some(path.to_path_buf()),
        icc: loaded.icc.map(Arc::new),
        exif: loaded.exif.map(Arc::new),
    })
}

/// A pasted clipboard image as an input.
pub fn from_color_image(image: &egui::ColorImage) -> Option<InputImage> {
    let [w, h] = image.size;
    let mut raw = Vec::with_capacity(w * h * 4);
    for c in &image.pixels {
        raw.extend_from_slice(&c.to_srgba_unmultiplied());
    }
    let picture = image::RgbaImage::from_raw(w as u32, h as u32, raw)?;
    Some(InputImage::from_picture(Arc::new(picture)))
}

/// Paths in pasted text: one per line, plain or `file://` URIs (what file managers copy).
pub fn paths_in_text(text: &str) -> Vec<PathBuf> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let p = match l.strip_prefix("file://") {
                Some(rest) => PathBuf::from(percent_decode(rest)),
                None => PathBuf::from(l.trim_matches('"')),
            };
            p.is_file().then_some(p)
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Runs a future to completion on this thread (the dialogs' futures need no runtime).
fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    use std::task::{Context, Poll, Wake, Waker};
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        match fut.as_mut().poll(&mut cx) {
            Poll::Ready(v) => return v,
            Poll::Pending => std::thread::park(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_uris_and_plain_paths_are_recognised() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a b ü.png");
        std::fs::write(&p, b"x").unwrap();
        let uri = format!(
            "file://{}",
            p.to_str()
                .unwrap()
                .replace(' ', "%20")
                .replace('ü', "%C3%BC")
        );
        assert_eq!(paths_in_text(&uri), vec![p.clone()]);
        assert_eq!(paths_in_text(&format!("\"{}\"\n", p.display())), vec![p]);
        assert!(paths_in_text("hello world").is_empty());
    }
}
