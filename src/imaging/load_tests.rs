//! Against Pillow/numpy-made files (tests/fixtures/gen/gen_load.py) and hand-built edge cases.

use super::*;
use serde_json::Value;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/imaging/load")
}

fn manifest() -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir().join("manifest.json")).unwrap()).unwrap()
}

/// Decodes an expected PNG with the png crate (not `image`, which load.rs uses).
fn png_pixels(name: &str) -> (u32, u32, Vec<u8>, png::ColorType) {
    let file = std::fs::File::open(dir().join(name)).unwrap();
    let mut dec = png::Decoder::new(std::io::BufReader::new(file));
    dec.set_transformations(png::Transformations::EXPAND);
    let mut reader = dec.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf, info.color_type)
}

fn expected_rgb(name: &str) -> (u32, u32, Vec<u8>) {
    let (w, h, buf, color) = png_pixels(name);
    let rgb = match color {
        png::ColorType::Rgb => buf,
        png::ColorType::Rgba => buf
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect(),
        png::ColorType::Grayscale => buf.iter().flat_map(|&v| [v, v, v]).collect(),
        other => panic!("{name}: unexpected {other:?}"),
    };
    (w, h, rgb)
}

#[test]
fn fixtures_decode_as_pillow_and_numpy_say() {
    let m = manifest();
    for (file, spec) in m.as_object().unwrap() {
        let img = load(dir().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(img.path.as_deref(), Some(dir().join(file).as_path()));
        if let Some(expected) = spec.get("expected").and_then(Value::as_str) {
            let (w, h, want) = expected_rgb(expected);
            assert_eq!(img.rgb.dimensions(), (w, h), "{file}");
            let tol = spec.get("tolerance").and_then(Value::as_u64).unwrap_or(0) as u8;
            // Colour under alpha 0 is bled on purpose; only visible pixels must match.
            let visible = |i: usize| img.alpha.as_ref().is_none_or(|a| a.as_raw()[i / 3] > 0);
            let worst = img
                .rgb
                .as_raw()
                .iter()
                .zip(&want)
                .enumerate()
                .filter(|(i, _)| visible(*i))
                .map(|(_, (a, b))| a.abs_diff(*b))
                .max()
                .unwrap_or(0);
            assert!(worst <= tol, "{file}: max difference {worst} > {tol}");
        }
        if let Some(k) = spec.get("orientation").and_then(Value::as_u64) {
            assert_eq!(u64::from(img.orientation.to_exif()), k, "{file}");
        }
        match spec.get("alpha").and_then(Value::as_str) {
            Some(a) => {
                let (w, h, want, _) = png_pixels(a);
                let alpha = img
                    .alpha
                    .as_ref()
                    .unwrap_or_else(|| panic!("{file}: no alpha"));
                assert_eq!(alpha.dimensions(), (w, h), "{file}");
                assert_eq!(alpha.as_raw(), &want, "{file}: alpha");
            }
            None => assert!(img.alpha.is_none(), "{file}: unexpected alpha"),
        }
        for b in spec
            .get("bled")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let (x, y) = (b[0].as_u64().unwrap() as u32, b[1].as_u64().unwrap() as u32);
            let want: Vec<u8> = b[2]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as u8)
                .collect();
            assert_eq!(
                img.rgb.get_pixel(x, y).0.to_vec(),
                want,
                "{file}: bled ({x},{y})"
            );
        }
        if let Some(bits) = spec.get("bit_depth").and_then(Value::as_u64) {
            assert_eq!(u64::from(img.bit_depth), bits, "{file}");
        }
        let gray = spec.get("gray").and_then(Value::as_bool).unwrap_or(false);
        assert_eq!(img.is_grayscale(), gray, "{file}");
        if let Some(icc) = spec.get("icc").and_then(Value::as_str) {
            let want = std::fs::read(dir().join(icc)).unwrap();
            assert_eq!(img.icc.as_deref(), Some(want.as_slice()), "{file}: ICC");
        }
    }
}

#[test]
fn exif_is_kept_with_orientation_reset() {
    for k in [1u8, 6, 8] {
        let img = load(dir().join(format!("orient{k}.png"))).unwrap();
        let exif = img.exif.expect("eXIf chunk read");
        assert_eq!(
            Orientation::from_exif_chunk(&exif),
            Some(Orientation::NoTransforms)
        );
        // The other tag (Make = "VARSR test") is untouched.
        assert!(
            exif.windows(10).any(|w| w == b"VARSR test"),
            "orientation {k}"
        );
    }
}

#[test]
fn memory_load_matches_file_load() {
    let bytes = std::fs::read(dir().join("orient5.png")).unwrap();
    let a = load_from_memory(&bytes).unwrap();
    let b = load(dir().join("orient5.png")).unwrap();
    assert_eq!(a.rgb, b.rgb);
    assert_eq!(a.path, None);
    assert_eq!(a.format, ImageFormat::Png);
}

#[test]
fn missing_file_is_a_read_error_naming_it() {
    let p = dir().join("does_not_exist.png");
    let err = load(&p).unwrap_err();
    assert!(matches!(err, ImagingError::Read { .. }), "{err:?}");
    assert_eq!(err.io_kind(), Some(std::io::ErrorKind::NotFound));
    assert!(err.to_string().contains("does_not_exist.png"), "{err}");
}

#[test]
fn truncated_file_is_a_decode_error_naming_it() {
    let err = load(dir().join("truncated.png")).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, ImagingError::Decode { .. } | ImagingError::Read { .. }),
        "{err:?}"
    );
    assert!(msg.contains("truncated.png"), "{msg}");
    let err = load_from_memory(&std::fs::read(dir().join("truncated.png")).unwrap()).unwrap_err();
    assert!(err.to_string().contains(MEMORY_LABEL), "{err}");
}

#[test]
fn garbage_is_rejected() {
    // Named .png, so the PNG decoder is tried and fails on the signature.
    let err = load(dir().join("not_an_image.png")).unwrap_err();
    assert!(err.to_string().contains("not_an_image.png"), "{err}");
    // Without a name there is nothing to go on.
    let err = load_from_memory(b"plain text, no magic").unwrap_err();
    assert!(matches!(err, ImagingError::UnknownFormat { .. }), "{err:?}");
    let err = load_from_memory(&[]).unwrap_err();
    assert!(matches!(err, ImagingError::UnknownFormat { .. }), "{err:?}");
}

/// PNG header claiming `w`×`h`, followed by a few rows only: decoding it fully would need
/// w·h·3 bytes, so a TooLarge error proves the check happens before allocation.
fn huge_png_header(w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().unwrap();
        let mut stream = writer.stream_writer().unwrap();
        use std::io::Write;
        stream.write_all(&vec![7u8; w as usize * 3]).unwrap();
        stream.flush().unwrap();
        std::mem::forget(stream); // leave the file truncated, no finishing chunks
    }
    out
}

#[test]
fn oversized_images_are_refused_before_decoding() {
    let bytes = huge_png_header(60000, 60000);
    let err = load_from_memory(&bytes).unwrap_err();
    match &err {
        ImagingError::TooLarge { width, height, .. } => {
            assert_eq!((*width, *height), (60000, 60000))
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("60000×60000"), "{err}");
    // One side over the limit, small in total.
    let err = load_from_memory(&huge_png_header(20000, 1)).unwrap_err();
    assert!(matches!(err, ImagingError::TooLarge { .. }), "{err:?}");
    // Pixel-count limit.
    let limits = LoadLimits {
        max_pixels: 10,
        ..LoadLimits::default()
    };
    let err = load_with_limits(dir().join("gray8.png"), &limits).unwrap_err();
    assert!(matches!(err, ImagingError::TooLarge { .. }), "{err:?}");
}
