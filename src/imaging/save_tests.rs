//! Round trips through independent decoders, Pillow-written text chunks, and the file rules.

use super::*;
use image::ImageDecoder;
use serde_json::Value;

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/imaging/save")
}

pub(super) fn sample(w: u32, h: u32) -> (RgbImage, GrayImage) {
    let rgb = RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([
            (x * 37 % 256) as u8,
            (y * 59 % 256) as u8,
            ((x * y) % 251) as u8,
        ])
    });
    let alpha = GrayImage::from_fn(w, h, |x, y| image::Luma([((x + 3 * y) * 17 % 256) as u8]));
    (rgb, alpha)
}

/// A minimal little-endian EXIF block: IFD0 with Orientation (SHORT) and Make (ASCII).
pub(super) fn exif_block(orientation: u16) -> Vec<u8> {
    let mut e = b"II*\0".to_vec();
    e.extend(8u32.to_le_bytes());
    e.extend(2u16.to_le_bytes());
    // Orientation: tag 0x0112, type 3 (SHORT), count 1, value inline.
    e.extend(0x0112u16.to_le_bytes());
    e.extend(3u16.to_le_bytes());
    e.extend(1u32.to_le_bytes());
    e.extend(orientation.to_le_bytes());
    e.extend([0, 0]);
    // Make: tag 0x010F, type 2 (ASCII), count 8, offset 38.
    e.extend(0x010Fu16.to_le_bytes());
    e.extend(2u16.to_le_bytes());
    e.extend(8u32.to_le_bytes());
    e.extend(38u32.to_le_bytes());
    e.extend(0u32.to_le_bytes()); // no next IFD
    assert_eq!(e.len(), 38);
    e.extend(b"Camera!\0");
    e
}

pub(super) fn decoder_metadata(
    bytes: &[u8],
) -> (Option<Vec<u8>>, Option<Vec<u8>>, image::DynamicImage) {
    let reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .unwrap();
    let mut dec = reader.into_decoder().unwrap();
    let icc = dec.icc_profile().unwrap();
    let exif = dec.exif_metadata().unwrap();
    (icc, exif, image::DynamicImage::from_decoder(dec).unwrap())
}

#[test]
fn png_round_trip_pixels_text_icc_exif() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("out.png");
    let (rgb, alpha) = sample(13, 7);
    let icc = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/imaging/load/srgb.icc"),
    )
    .unwrap();
    let json = r#"{"seed":42,"cfg":7.0,"model":"VARSR-d24"}"#;
    let opts = SaveOptions {
        settings_json: Some(json.into()),
        icc: Some(icc.clone()),
        exif: Some(exif_block(6)),
        ..SaveOptions::new(OutputFormat::Png)
    };
    save(&path, &rgb, Some(&alpha), &opts).unwrap();

    assert_eq!(read_png_metadata(&path).as_deref(), Some(json));
    let bytes = std::fs::read(&path).unwrap();
    let (got_icc, got_exif, img) = decoder_metadata(&bytes);
    assert_eq!(got_icc, Some(icc));
    let got_exif = got_exif.expect("eXIf written");
    assert_eq!(
        got_exif,
        exif_block(1),
        "only the orientation value changes"
    );
    let rgba = img.to_rgba8();
    for ((p, q), a) in rgba.pixels().zip(rgb.pixels()).zip(alpha.pixels()) {
        assert_eq!(p.0, [q.0[0], q.0[1], q.0[2], a.0[0]]);
    }
    // Software chunk, checked through the png crate's text list.
    let dec = png::Decoder::new(std::io::Cursor::new(&bytes))
        .read_info()
        .unwrap();
    let sw = &dec.info().uncompressed_latin1_text;
    assert!(
        sw.iter()
            .any(|c| c.keyword == "Software" && c.text.starts_with("VARSR Studio"))
    );
    // No temporary file left behind.
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
}

#[test]
fn non_latin1_settings_use_itxt() {
    let (rgb, _) = sample(4, 4);
    let json = r#"{"name":"猫 🐈","seed":1}"#;
    let opts = SaveOptions {
        settings_json: Some(json.into()),
        ..SaveOptions::new(OutputFormat::Png)
    };
    let bytes = encode(&rgb, None, &opts).unwrap();
    assert!(bytes.windows(4).any(|w| w == b"iTXt"));
    assert_eq!(read_png_metadata_from_memory(&bytes).as_deref(), Some(json));
    let img = image::load_from_memory(&bytes).unwrap().to_rgb8();
    assert_eq!(img, rgb);
}

#[test]
fn reads_text_written_by_pillow() {
    let dir = fixture_dir();
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    for (file, want) in manifest.as_object().unwrap() {
        let got = read_png_metadata(dir.join(file));
        assert_eq!(got.as_deref(), want.as_str(), "{file}");
    }
    assert_eq!(read_png_metadata(dir.join("missing.png")), None);
    assert_eq!(read_png_metadata_from_memory(b"not a png"), None);
}

#[test]
fn jpeg_round_trip_quality_icc_exif_and_flattening() {
    let (rgb, _) = sample(32, 24);
    let icc = b"fake icc profile bytes, carried verbatim".to_vec();
    let opts = SaveOptions {
        icc: Some(icc.clone()),
        exif: Some(exif_block(8)),
        ..SaveOptions::new(OutputFormat::Jpeg { quality: 100 })
    };
    let bytes = encode(&rgb, None, &opts).unwrap();
    let (got_icc, got_exif, img) = decoder_metadata(&bytes);
    assert_eq!(got_icc, Some(icc));
    assert_eq!(got_exif, Some(exif_block(1)));
    assert_eq!(img.dimensions_tuple(), (32, 24));
    // Lower quality gives a smaller file.
    let small = encode(
        &rgb,
        None,
        &SaveOptions::new(OutputFormat::Jpeg { quality: 20 }),
    )
    .unwrap();
    assert!(small.len() < bytes.len());

    // Alpha 0 → white, alpha 255 → colour, 128 → (c·128 + 255·127)/255.
    let flat_rgb = RgbImage::from_pixel(16, 16, image::Rgb([0, 100, 200]));
    for (a, want) in [
        (0u8, [255u8, 255, 255]),
        (255, [0, 100, 200]),
        (128, [127, 177, 227]),
    ] {
        let alpha = GrayImage::from_pixel(16, 16, image::Luma([a]));
        let bytes = encode(
            &flat_rgb,
            Some(&alpha),
            &SaveOptions::new(OutputFormat::Jpeg { quality: 100 }),
        )
        .unwrap();
        let img = image::load_from_memory(&bytes).unwrap().to_rgb8();
        for (g, w) in img.get_pixel(8, 8).0.iter().zip(want) {
            assert!(
                g.abs_diff(w) <= 2,
                "alpha {a}: {:?} vs {want:?}",
                img.get_pixel(8, 8)
            );
        }
    }
}

trait Dims {
    fn dimensions_tuple(&self) -> (u32, u32);
}
impl Dims for image::DynamicImage {
    fn dimensions_tuple(&self) -> (u32, u32) {
        (self.width(), self.height())
    }
}

#[test]
fn webp_is_lossless_with_alpha_and_metadata() {
    let (rgb, alpha) = sample(9, 11);
    let icc = b"icc!".to_vec();
    let opts = SaveOptions {
        icc: Some(icc.clone()),
        exif: Some(exif_block(3)),
        ..SaveOptions::new(OutputFormat::WebP)
    };
    let bytes = encode(&rgb, Some(&alpha), &opts).unwrap();
    let (got_icc, got_exif, img) = decoder_metadata(&bytes);
    assert_eq!(got_icc, Some(icc));
    assert_eq!(got_exif, Some(exif_block(1)));
    let rgba = img.to_rgba8();
    for ((p, q), a) in rgba.pixels().zip(rgb.pixels()).zip(alpha.pixels()) {
        assert_eq!(p.0, [q.0[0], q.0[1], q.0[2], a.0[0]]);
    }
    let no_alpha = encode(&rgb, None, &SaveOptions::new(OutputFormat::WebP)).unwrap();
    assert_eq!(image::load_from_memory(&no_alpha).unwrap().to_rgb8(), rgb);
}

#[test]
fn refuses_to_overwrite_unless_asked() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("exists.png");
    std::fs::write(&path, b"precious").unwrap();
    let (rgb, _) = sample(4, 4);
    let err = save(&path, &rgb, None, &SaveOptions::new(OutputFormat::Png)).unwrap_err();
    assert!(err.is_already_exists(), "{err:?}");
    assert_eq!(err.io_kind(), Some(std::io::ErrorKind::AlreadyExists));
    assert!(err.to_string().contains("exists.png"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), b"precious");
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        1,
        "no temp left"
    );

    let opts = SaveOptions {
        overwrite: true,
        ..SaveOptions::new(OutputFormat::Png)
    };
    save(&path, &rgb, None, &opts).unwrap();
    assert_eq!(image::open(&path).unwrap().to_rgb8(), rgb);
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
}

#[test]
fn unwritable_destinations_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("file.txt");
    std::fs::write(&file, b"x").unwrap();
    let (rgb, _) = sample(2, 2);
    // Parent is a regular file (root ignores permissions, not this).
    let target = file.join("out.png");
    let err = save(&target, &rgb, None, &SaveOptions::new(OutputFormat::Png)).unwrap_err();
    assert!(matches!(err, ImagingError::Write { .. }), "{err:?}");
    assert!(err.to_string().contains("out.png"), "{err}");
    // Parent does not exist.
    let target = tmp.path().join("no/such/dir/out.png");
    let err = save(&target, &rgb, None, &SaveOptions::new(OutputFormat::Png)).unwrap_err();
    assert_eq!(err.io_kind(), Some(std::io::ErrorKind::NotFound), "{err:?}");
    // Mismatched alpha.
    let alpha = GrayImage::new(3, 2);
    let err = encode(&rgb, Some(&alpha), &SaveOptions::new(OutputFormat::Png)).unwrap_err();
    assert!(matches!(err, ImagingError::SizeMismatch { .. }), "{err:?}");
}

#[test]
fn format_from_extension() {
    assert_eq!(OutputFormat::from_path("a/b.PNG"), Some(OutputFormat::Png));
    assert_eq!(
        OutputFormat::from_path("x.jpeg"),
        Some(OutputFormat::Jpeg {
            quality: OutputFormat::DEFAULT_JPEG_QUALITY
        })
    );
    assert_eq!(OutputFormat::from_path("x.webp"), Some(OutputFormat::WebP));
    assert_eq!(OutputFormat::from_path("x.bmp"), None);
    assert_eq!(OutputFormat::WebP.extension(), "webp");
}
