//! End-to-end tests of the `varsr` binary with the parity fixture model (a real tiny VARSR with
//! random weights and the release's 512 px tiles). Inputs are small (≤ 128 px a side), so each is
//! one tile and one decode; the batch test upscales several files with one model load.

use std::path::Path;
use std::process::{Command, Output};

use image::{GrayImage, Luma, Rgb, RgbImage, Rgba, RgbaImage};

const MODEL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/parity/parity-d2"
);

fn varsr(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_varsr"))
        .args(args)
        .output()
        .expect("the varsr binary runs")
}

fn os<S: AsRef<std::ffi::OsStr> + ?Sized>(s: &S) -> &std::ffi::OsStr {
    s.as_ref()
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// `varsr upscale <inputs> --model fixture --device cpu --quiet <extra>`.
fn upscale(inputs: &[&Path], extra: &[&str]) -> Output {
    upscale_with(MODEL.as_ref(), inputs, extra)
}

fn upscale_with(model: &Path, inputs: &[&Path], extra: &[&str]) -> Output {
    let mut args: Vec<&std::ffi::OsStr> = vec![os("upscale")];
    args.extend(inputs.iter().map(|p| p.as_os_str()));
    args.extend([
        os("--model"),
        model.as_os_str(),
        os("--device"),
        os("cpu"),
        os("--quiet"),
    ]);
    args.extend(extra.iter().map(os));
    varsr(&args)
}

/// A smooth, asymmetric test picture (so that a rotation or flip changes it).
fn picture(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        Rgb([
            (x * 255 / w.max(1)) as u8,
            (y * 255 / h.max(1)) as u8,
            ((x * 7 + y * 3) % 256) as u8,
        ])
    })
}

/// Minimal little-endian TIFF block with one IFD entry: Orientation (0x0112, SHORT) = `value`.
fn exif_orientation(value: u16) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(b"II*\0");
    t.extend_from_slice(&8u32.to_le_bytes()); // IFD0 offset
    t.extend_from_slice(&1u16.to_le_bytes()); // one entry
    t.extend_from_slice(&0x0112u16.to_le_bytes());
    t.extend_from_slice(&3u16.to_le_bytes()); // SHORT
    t.extend_from_slice(&1u32.to_le_bytes()); // count
    t.extend_from_slice(&value.to_le_bytes());
    t.extend_from_slice(&[0, 0]); // value padding
    t.extend_from_slice(&0u32.to_le_bytes()); // no next IFD
    t
}

/// A JPEG with an APP1 "Exif" segment spliced in right after SOI.
fn jpeg_with_orientation(img: &RgbImage, orientation: u16) -> Vec<u8> {
    let mut plain = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut plain, 95)
        .encode_image(img)
        .unwrap();
    assert_eq!(&plain[..2], &[0xFF, 0xD8]);
    let tiff = exif_orientation(orientation);
    let len = (2 + 6 + tiff.len()) as u16;
    let mut out = plain[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(b"Exif\0\0");
    out.extend_from_slice(&tiff);
    out.extend_from_slice(&plain[2..]);
    out
}

/// Orientation 6 means "rotate 90° clockwise to display": stored (x, y) lands at (h−1−y, x).
fn rotate_cw(img: &RgbImage) -> RgbImage {
    let (w, h) = img.dimensions();
    let mut out = RgbImage::new(h, w);
    for y in 0..h {
        for x in 0..w {
            out.put_pixel(h - 1 - y, x, *img.get_pixel(x, y));
        }
    }
    out
}

fn png_text(path: &Path, key: &str) -> Option<String> {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).ok()?));
    let reader = decoder.read_info().ok()?;
    let info = reader.info();
    info.uncompressed_latin1_text
        .iter()
        .find(|c| c.keyword == key)
        .map(|c| c.text.clone())
        .or_else(|| {
            info.utf8_text
                .iter()
                .find(|c| c.keyword == key)
                .and_then(|c| c.get_text().ok())
        })
}

#[test]
fn help_and_version() {
    let o = varsr(&[os("--version")]);
    assert!(o.status.success());
    assert_eq!(
        text(&o).0.trim(),
        format!("varsr {}", env!("CARGO_PKG_VERSION"))
    );

    let o = varsr(&[os("--help")]);
    assert!(o.status.success());
    let help = text(&o).0;
    for word in [
        "upscale",
        "convert",
        "info",
        "parity",
        "bench",
        "desktop app",
    ] {
        assert!(help.contains(word), "--help lacks {word}:\n{help}");
    }

    let o = varsr(&[os("upscale"), os("--help")]);
    assert!(o.status.success());
    let help = text(&o).0;
    for flag in [
        "--output",
        "--scale",
        "--width",
        "--height",
        "--cfg",
        "--seed",
        "--top-k",
        "--top-p",
        "--model",
        "--device",
        "--dtype",
        "--format",
        "--quality",
        "--name",
        "--overwrite",
        "--recursive",
        "--tile-batch",
        "--keep-metadata",
        "{stem}",
        "{ext}",
        "{scale}",
        "{cfg}",
        "{seed}",
    ] {
        assert!(help.contains(flag), "upscale --help lacks {flag}:\n{help}");
    }
    assert!(varsr(&[os("convert"), os("--help")]).status.success());

    // Bad arguments are usage errors (exit 2), before any model is loaded.
    let o = varsr(&[os("upscale"), os("x.png"), os("--scale"), os("5")]);
    assert_eq!(o.status.code(), Some(2));
    let o = varsr(&[
        os("upscale"),
        os("x.png"),
        os("--name"),
        os("{stem}_{size}.png"),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("{size}"));
}

/// One batch over a folder with non-ASCII names: odd, non-square, grayscale, RGBA and
/// EXIF-rotated inputs, a sub-folder, and one broken file.
#[test]
fn batch_of_awkward_inputs() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("Bilder ü 写真");
    let sub = src.join("sub dir");
    std::fs::create_dir_all(&sub).unwrap();
    let out = tmp.path().join("résultats");

    picture(41, 23).save(src.join("odd wide.png")).unwrap();
    GrayImage::from_fn(17, 33, |x, y| Luma([((x * 13 + y * 5) % 256) as u8]))
        .save(sub.join("grå.png"))
        .unwrap();
    // Left half transparent, right half opaque.
    RgbaImage::from_fn(40, 30, |x, y| {
        let p = picture(40, 30).get_pixel(x, y).0;
        Rgba([p[0], p[1], p[2], if x < 20 { 0 } else { 255 }])
    })
    .save(src.join("alpha.png"))
    .unwrap();
    // Stored 40×30 with orientation 6; the upright picture is 30×40.
    let stored = picture(40, 30);
    let jpeg = jpeg_with_orientation(&stored, 6);
    std::fs::write(src.join("rotated.jpg"), &jpeg).unwrap();
    // The same pixels turned upright by hand, without EXIF: must give the same output.
    let decoded = image::load_from_memory(&jpeg).unwrap().to_rgb8();
    assert_eq!(
        decoded.dimensions(),
        (40, 30),
        "image::load_from_memory does not apply EXIF"
    );
    rotate_cw(&decoded).save(src.join("upright.png")).unwrap();
    std::fs::write(
        src.join("broken.png"),
        b"\x89PNG\r\n\x1a\nthis is not a png",
    )
    .unwrap();

    let o = upscale(
        &[&src],
        &["-o", out.to_str().unwrap(), "--recursive", "--seed", "7"],
    );
    let (stdout, stderr) = text(&o);
    assert_eq!(
        o.status.code(),
        Some(1),
        "one failure → exit 1\n{stdout}\n{stderr}"
    );
    assert!(stderr.contains("broken.png"), "{stderr}");
    assert!(
        stdout.contains("5 written, 0 skipped, 1 failed"),
        "{stdout}"
    );

    let open = |name: &str| {
        image::open(out.join(name)).unwrap_or_else(|e| panic!("{name}: {e}\n{stdout}\n{stderr}"))
    };
    assert_eq!(
        open("odd wide_varsr_x4.png").to_rgb8().dimensions(),
        (164, 92)
    );
    let gray = open("sub dir/grå_varsr_x4.png");
    assert_eq!(gray.to_rgb8().dimensions(), (68, 132));

    let alpha = open("alpha_varsr_x4.png");
    assert!(alpha.color().has_alpha(), "alpha kept");
    let alpha = alpha.to_rgba8();
    assert_eq!(alpha.dimensions(), (160, 120));
    // Away from the edge (bicubic support), left is transparent and right opaque.
    for y in [0, 60, 119] {
        assert_eq!(alpha.get_pixel(10, y).0[3], 0);
        assert_eq!(alpha.get_pixel(70, y).0[3], 0);
        assert_eq!(alpha.get_pixel(90, y).0[3], 255);
        assert_eq!(alpha.get_pixel(159, y).0[3], 255);
    }

    let rotated = open("rotated_varsr_x4.png").to_rgb8();
    assert_eq!(
        rotated.dimensions(),
        (120, 160),
        "orientation applied before upscaling"
    );
    let upright = open("upright_varsr_x4.png").to_rgb8();
    assert!(
        rotated == upright,
        "EXIF rotation must equal rotating the pixels clockwise by hand"
    );

    // The settings are in the PNG.
    let json = png_text(&out.join("odd wide_varsr_x4.png"), "varsr").expect("settings chunk");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["seed"], 7);
    assert_eq!(v["cfg"], 6.0);
    assert_eq!(v["top_k"], 1);
    assert_eq!(v["scale"], "4");
    assert_eq!(v["tiling"]["tiles"], 1);
    assert_eq!(v["tiling"]["tile_px"], 512);
    assert!(v["model"].as_str().unwrap().contains("depth 2"), "{json}");
    assert!(
        v["software"]
            .as_str()
            .unwrap()
            .contains(env!("CARGO_PKG_VERSION"))
    );
}

/// Existing outputs are kept (and need no model load); `--overwrite` replaces them; other
/// sizes, formats and name templates.
#[test]
fn existing_outputs_sizes_and_names() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("photo.png");
    picture(40, 30).save(&input).unwrap();
    let existing = tmp.path().join("photo_varsr_x2.png");
    std::fs::write(&existing, b"keep me").unwrap();

    // A model that does not exist: nothing needs it, so nothing fails.
    let o = upscale_with("/nonexistent/model".as_ref(), &[&input], &["--scale", "2"]);
    let (stdout, stderr) = text(&o);
    assert!(
        o.status.success(),
        "skipped is not a failure\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("skipped") && stdout.contains("0 written, 1 skipped, 0 failed"),
        "{stdout}"
    );
    assert_eq!(std::fs::read(&existing).unwrap(), b"keep me");

    let o = upscale(&[&input], &["--scale", "2", "--overwrite"]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert_eq!(
        image::open(&existing).unwrap().to_rgb8().dimensions(),
        (80, 60)
    );

    let o = upscale(
        &[&input],
        &[
            "--width",
            "100",
            "--format",
            "jpg",
            "--quality",
            "80",
            "--name",
            "{stem}-{scale}-{cfg}-{seed}.{ext}",
            "--cfg",
            "6.5",
        ],
    );
    assert!(o.status.success(), "{:?}", text(&o));
    let jpg = tmp.path().join("photo-2.5-6.5-42.jpg");
    let img = image::open(&jpg).unwrap_or_else(|e| panic!("{e}: {:?}", text(&o)));
    assert_eq!(img.to_rgb8().dimensions(), (100, 75));
}

/// `--trust-map invented` writes the heat map beside the output and prints its mean, which is the
/// mean luma difference between the written output and a Pillow-bicubic enlargement of the input.
#[test]
fn trust_map_is_written_beside_the_output() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("photo.png");
    let lr = picture(40, 30);
    lr.save(&input).unwrap();
    let o = upscale(
        &[&input],
        &["--name", "{stem}_up.{ext}", "--trust-map", "invented"],
    );
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stdout}\n{stderr}");
    let out = image::open(tmp.path().join("photo_up.png"))
        .unwrap()
        .to_rgb8();
    let map_path = tmp.path().join("photo_up_trust-invented.png");
    let map = image::open(&map_path)
        .unwrap_or_else(|e| panic!("{e}: {stdout}"))
        .to_rgb8();
    assert_eq!(map.dimensions(), out.dimensions());
    let printed: f64 = stdout
        .split("mean ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no mean in {stdout}"));
    let luma = |p: &Rgb<u8>| {
        let [r, g, b] = p.0.map(f64::from);
        16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0
    };
    let base = varsr::imaging::resize_rgb(&lr, out.width(), out.height());
    let want = out
        .pixels()
        .zip(base.pixels())
        .map(|(a, b)| (luma(a) - luma(b)).abs())
        .sum::<f64>()
        / (out.width() * out.height()) as f64;
    assert!(want > 0.0, "the random model changes something");
    assert!(
        (printed - want).abs() < 0.006,
        "printed {printed}, computed {want}"
    );
}

/// `convert` writes a safetensors file that `info` reads and that upscales exactly like the
/// released-format checkpoints it came from.
#[test]
fn convert_info_and_same_output() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("modèle.safetensors");
    let o = varsr(&[os("convert"), os(MODEL), os("-o"), model.as_os_str()]);
    assert!(o.status.success(), "{:?}", text(&o));
    let again = varsr(&[os("convert"), os(MODEL), os("-o"), model.as_os_str()]);
    assert_eq!(
        again.status.code(),
        Some(1),
        "no overwrite without --overwrite"
    );

    let o = varsr(&[os("info"), model.as_os_str(), os("--json")]);
    assert!(o.status.success(), "{:?}", text(&o));
    let v: serde_json::Value = serde_json::from_str(&text(&o).0).unwrap();
    assert_eq!(v["var"]["depth"], 2);
    assert_eq!(v["var"]["embed_dim"], 128);
    assert_eq!(
        v["var"]["patch_nums"],
        serde_json::json!([1, 2, 3, 4, 6, 9, 13, 18, 24, 32])
    );
    assert_eq!(v["vqvae"]["ch"], 32);
    let o = varsr(&[os("info"), os(MODEL)]);
    assert!(
        o.status.success() && text(&o).0.contains("512×512 px"),
        "{:?}",
        text(&o)
    );

    let input = tmp.path().join("in.png");
    picture(24, 20).save(&input).unwrap();
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    let oa = upscale(&[&input], &["-o", a.to_str().unwrap()]);
    assert!(oa.status.success(), "{:?}", text(&oa));
    let ob = upscale_with(&model, &[&input], &["-o", b.to_str().unwrap()]);
    assert!(ob.status.success(), "{:?}", text(&ob));
    let ia = image::open(a.join("in_varsr_x4.png")).unwrap().to_rgb8();
    let ib = image::open(b.join("in_varsr_x4.png")).unwrap().to_rgb8();
    assert_eq!(ia.dimensions(), (96, 80));
    assert!(ia == ib, "converted f32 weights must give the same image");
}

/// `varsr parity` on the real fixture (recorded by running the published code): every token identical at
/// every scale, and the differences within the parity test's tolerances.
#[test]
fn parity_of_the_recorded_fixture_on_the_cpu() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/parity");
    let o = varsr(&[os("parity"), os(root), os("--device"), os("cpu")]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("parity-d2"), "{stdout}");
    assert!(
        stdout.contains("token agreement: 100.00 % over 10 scales"),
        "{stdout}"
    );
    // One row per scale of the fixture (patch numbers from its config.json), all identical.
    let pns = [1, 2, 3, 4, 6, 9, 13, 18, 24, 32];
    for (si, pn) in pns.iter().enumerate() {
        let n = pn * pn;
        let row = stdout
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|w| w.len() > 4 && w[0] == si.to_string() && w[1] == pn.to_string())
            .unwrap_or_else(|| panic!("no row for scale {si}:\n{stdout}"));
        assert_eq!(row[2], format!("{n}/{n}"), "{stdout}");
        assert_eq!(row[3], "100.00", "{stdout}");
    }
    assert!(stdout.contains("1 passed, 0 failed"), "{stdout}");
    assert!(!stdout.contains("FAILED"), "{stdout}");
}

/// A copy of the fixture with one recorded token changed at scale 5 (of 9×9 = 81): our run now
/// disagrees with the "reference" in exactly that token, which must fail an f32 check and be counted.
#[test]
fn parity_reports_and_fails_a_token_that_differs() {
    use candle_core::{DType, Device, Tensor};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("altered");
    std::fs::create_dir(&dir).unwrap();
    for f in ["VARSR.pth", "VQVAE.pth", "config.json"] {
        std::fs::copy(Path::new(MODEL).join(f), dir.join(f)).unwrap();
    }
    let mut reference = candle_core::safetensors::load(
        Path::new(MODEL).join("reference.safetensors"),
        &Device::Cpu,
    )
    .unwrap();
    let t = &reference["tokens_s5"];
    let dtype = t.dtype();
    let mut ids = t
        .to_dtype(DType::I64)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<i64>()
        .unwrap();
    assert_eq!(ids.len(), 81);
    ids[40] = (ids[40] + 1) % 4096;
    let altered = Tensor::from_vec(ids, t.dims(), &Device::Cpu)
        .unwrap()
        .to_dtype(dtype)
        .unwrap();
    reference.insert("tokens_s5".into(), altered);
    candle_core::safetensors::save(&reference, dir.join("reference.safetensors")).unwrap();

    let o = varsr(&[os("parity"), dir.as_os_str(), os("--device"), os("cpu")]);
    let (stdout, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("tokens differ first at scale 5"),
        "{stdout}"
    );
    let row = stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|w| w.len() > 4 && w[0] == "5" && w[1] == "9")
        .unwrap_or_else(|| panic!("no row for scale 5:\n{stdout}"));
    assert_eq!(row[2], "80/81");
    assert_eq!(row[3], format!("{:.2}", 8000.0 / 81.0));
    assert!(stdout.contains("0 passed, 1 failed"), "{stdout}");
}

/// Half precision is for CUDA: asking for it on the CPU is a clear usage error before any work.
#[test]
fn half_precision_on_the_cpu_is_refused() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/parity");
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.png");
    picture(8, 8).save(&input).unwrap();
    let runs: [Vec<&std::ffi::OsStr>; 3] = [
        vec![os("parity"), os(root)],
        vec![os("bench"), os("--small")],
        vec![os("upscale"), input.as_os_str(), os("--model"), os(MODEL)],
    ];
    for (args, dtype) in runs.iter().zip(["f16", "bf16", "f16"]) {
        let mut args = args.clone();
        args.extend([os("--device"), os("cpu"), os("--dtype"), os(dtype)]);
        let o = varsr(&args);
        let (stdout, stderr) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}\n{stdout}\n{stderr}");
        assert!(
            stderr.contains(&format!("--dtype {dtype}")) && stderr.contains("--device cuda"),
            "{args:?}: {stderr}"
        );
    }
    assert!(!tmp.path().join("in_varsr_x4.png").exists());

    let o = varsr(&[
        os("parity"),
        os("/nonexistent/fixtures"),
        os("--device"),
        os("cpu"),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("/nonexistent/fixtures"));
}

/// Parses the phase table of `varsr bench`: rows by label, six numbers each.
fn bench_rows(stdout: &str) -> Vec<(String, Vec<f64>)> {
    stdout
        .lines()
        .filter_map(|l| {
            let (label, rest) = if let Some(r) = l.strip_prefix("warm-up") {
                ("warm-up".to_string(), r)
            } else if let Some(r) = l.strip_prefix("run ") {
                let (n, r) = r.trim_start().split_once(' ')?;
                (format!("run {n}"), r)
            } else {
                return None;
            };
            // "-": a phase the run cannot separate (the refiner, with several lanes).
            let v: Vec<f64> = rest
                .split_whitespace()
                .filter_map(|w| {
                    if w == "-" {
                        Some(f64::NAN)
                    } else {
                        w.parse().ok()
                    }
                })
                .collect();
            (v.len() == 6).then_some((label, v))
        })
        .collect()
}

/// `varsr bench --small --runs 1 --device cpu <extra>`.
fn bench_small(extra: &[&str]) -> Output {
    let mut args = vec![os("bench"), os("--small"), os("--runs"), os("1")];
    args.extend([os("--device"), os("cpu")]);
    args.extend(extra.iter().map(os));
    varsr(&args)
}

/// `varsr bench --small` on the CPU: a warm-up and the asked-for runs, each with its phases; the phases
/// inside the upscale fit in its total. Larger outputs are tiled (64 px tiles of 16 latent cells at
/// f = 4, a quarter overlap, stride 12: 128 px = 32 cells need 3 tiles a side).
#[test]
fn bench_small_prints_phases() {
    let o = bench_small(&[]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stdout}\n{stderr}");
    for word in [
        "encoder",
        "transformer",
        "refiner",
        "decode",
        "total",
        "peak RSS:",
    ] {
        assert!(stdout.contains(word), "no {word}:\n{stdout}");
    }
    assert!(
        stdout.contains("output 64×64") && stdout.contains("1 tile of 64 px"),
        "{stdout}"
    );
    let rows = bench_rows(&stdout);
    let labels: Vec<&str> = rows.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(labels, ["warm-up", "run 1"], "{stdout}");
    for (label, v) in &rows {
        let [_encoder, transformer, refiner, decode, other, total] = v[..] else {
            unreachable!()
        };
        assert!(v.iter().all(|&x| x >= 0.0), "{label}: {v:?}");
        // Each of these takes milliseconds at least, even for the small model.
        assert!(
            transformer > 0.0 && refiner > 0.0 && decode > 0.0,
            "{label}: {v:?}"
        );
        // Printed to the millisecond: the parts may exceed the total by rounding only.
        assert!(
            transformer + refiner + decode + other <= total + 0.003,
            "{label}: {v:?}"
        );
    }
    let rss = stdout
        .lines()
        .find_map(|l| l.strip_prefix("peak RSS: "))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|m| m.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(rss > 1.0, "{stdout}");

    let o = bench_small(&["--size", "128", "--tile", "64", "--lanes", "1"]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("output 128×128") && stdout.contains("9 tiles of 64 px (3×3)"),
        "{stdout}"
    );
    let rows = bench_rows(&stdout);
    assert_eq!(rows.len(), 2, "{stdout}");
    assert!(
        rows.iter().all(|(_, v)| v.iter().all(|x| x.is_finite())),
        "{stdout}"
    );

    // Two lanes: the refiner is inside the tiles' generation, so its column is empty.
    let o = bench_small(&["--size", "128", "--lanes", "2"]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("2 batches at once"), "{stdout}");
    let rows = bench_rows(&stdout);
    assert_eq!(rows.len(), 2, "{stdout}");
    for (label, v) in &rows {
        let [_encoder, generate, refiner, decode, other, total] = v[..] else {
            unreachable!()
        };
        assert!(refiner.is_nan(), "{label}: {v:?}");
        assert!(
            generate > 0.0 && decode > 0.0 && other >= 0.0,
            "{label}: {v:?}"
        );
        assert!(generate + decode + other <= total + 0.003, "{label}: {v:?}");
    }

    let o = bench_small(&["--tile", "512"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("64 px"), "{:?}", text(&o));
}

/// `varsr eval`: the bicubic baseline row equals an independent computation of the SR papers'
/// protocol (tests/fixtures/gen/gen_eval_bicubic.py: Pillow bicubic ↓4 ↑4, BT.601 Y, 4-px crop),
/// and the model's row is there, finite, with its outputs saved for LPIPS.
#[test]
fn eval_reports_bicubic_as_the_papers_compute_it() {
    let hr_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/quality");
    let out = tempfile::tempdir().unwrap();
    let o = varsr(&[
        os("eval"),
        os(hr_dir),
        os("--model"),
        os(MODEL),
        os("--cfg"),
        os("6"),
        os("--out"),
        out.path().as_os_str(),
    ]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stdout}\n{stderr}");
    let row = |name: &str| -> Vec<f64> {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} row:\n{stdout}"));
        line[name.len()..]
            .split_whitespace()
            .map(|v| v.parse().unwrap())
            .collect()
    };
    let bicubic = row("bicubic");
    assert!((bicubic[0] - 30.183527).abs() < 2e-3, "{stdout}");
    let model = row("model cfg 6");
    assert!(model.iter().all(|v| v.is_finite()), "{stdout}");
    for sub in ["hr", "bicubic", "cfg6"] {
        assert!(out.path().join(sub).join("bird.png").is_file(), "{sub}");
    }
}
