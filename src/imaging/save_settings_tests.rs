//! Settings in JPEG and WebP: round trips through [`read_settings`], the files still decoding to the
//! same pixels with ICC/EXIF intact (checked with `image`'s decoders), and committed files made by
//! our encoder whose metadata Pillow read (tests/fixtures/gen/gen_meta.py, pillow.json).

use super::tests::{decoder_metadata, exif_block, sample};
use super::*;
use image::ImageDecoder;
use serde_json::Value;

fn meta_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/meta")
}

/// Settings of the committed fixtures: markup, quotes, `]]>`, CRLF and non-ASCII on purpose.
const FIXTURE_JSON: &str = "{\r\n \"model\": \"VARSR-d24 <test> & \\\"q\\\" 'a' ]]>\",\r\n \
                            \"seed\": 42,\r\n \"note\": \"café 猫 🐈\"\r\n}";
const FIXTURE_ICC: &[u8] = b"fake icc profile for varsr tests";

/// The COM segment holding `varsr:` as (start, total length with marker).
fn settings_comment(jpeg: &[u8]) -> Option<(usize, usize)> {
    let i = jpeg
        .windows(10)
        .position(|w| w[..2] == [0xFF, 0xFE] && &w[4..] == b"varsr:")?;
    Some((
        i,
        2 + usize::from(u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]])),
    ))
}

#[test]
fn jpeg_comment_is_the_only_change() {
    let (rgb, _) = sample(32, 24);
    let json = r#"{"seed":42,"note":"猫"}"#;
    let plain = SaveOptions {
        icc: Some(FIXTURE_ICC.to_vec()),
        exif: Some(exif_block(6)),
        ..SaveOptions::new(OutputFormat::Jpeg { quality: 90 })
    };
    let with = SaveOptions {
        settings_json: Some(json.into()),
        ..plain.clone()
    };
    let without = encode(&rgb, None, &plain).unwrap();
    let bytes = encode(&rgb, None, &with).unwrap();
    assert_eq!(read_settings_from_memory(&bytes).as_deref(), Some(json));
    assert_eq!(read_settings_from_memory(&without), None);

    let (at, len) = settings_comment(&bytes).expect("COM segment");
    let mut stripped = bytes.clone();
    stripped.drain(at..at + len);
    assert_eq!(
        stripped, without,
        "removing the comment gives the plain file"
    );
    // Right after SOI and the APPn segments (JFIF/EXIF/ICC), before the first other segment.
    let mut pos = 2;
    while pos < at {
        assert!(
            matches!(without[pos..pos + 2], [0xFF, 0xE0..=0xEF]),
            "APPn at {pos}"
        );
        pos += 2 + usize::from(u16::from_be_bytes([without[pos + 2], without[pos + 3]]));
    }
    assert_eq!(pos, at);
    assert!(matches!(without[at..at + 2], [0xFF, m] if !(0xE0..=0xEF).contains(&m)));
    assert!(without[..at].windows(4).any(|w| w == b"JFIF"));
    assert!(without[..at].windows(12).any(|w| w == b"ICC_PROFILE\0"));

    let (icc, exif, img) = decoder_metadata(&bytes);
    assert_eq!(icc.as_deref(), Some(FIXTURE_ICC));
    assert_eq!(exif, Some(exif_block(1)));
    let plain_img = image::load_from_memory(&without).unwrap();
    assert_eq!(img.to_rgb8(), plain_img.to_rgb8());
}

#[test]
fn long_jpeg_settings_survive_a_file_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("long.jpg");
    let (rgb, alpha) = sample(16, 16);
    let json = format!("{{\"log\":\"{}\"}}", "ü<x>".repeat(30_000));
    let opts = SaveOptions {
        settings_json: Some(json.clone()),
        ..SaveOptions::new(OutputFormat::Jpeg { quality: 80 })
    };
    save(&path, &rgb, Some(&alpha), &opts).unwrap();
    assert_eq!(read_settings(&path), Some(json));
    let bytes = std::fs::read(&path).unwrap();
    let comments = bytes.windows(2).filter(|w| w == &[0xFF, 0xFE]).count();
    assert!(
        comments >= 3,
        "150 kB needs three segments, found {comments}"
    );
    let plain = encode(
        &rgb,
        Some(&alpha),
        &SaveOptions::new(OutputFormat::Jpeg { quality: 80 }),
    )
    .unwrap();
    let decoded = image::load_from_memory(&bytes).unwrap().to_rgb8();
    assert_eq!(decoded, image::load_from_memory(&plain).unwrap().to_rgb8());
}

#[test]
fn webp_settings_with_and_without_alpha_icc_exif() {
    let (rgb, alpha) = sample(9, 11);
    let json = r#"{"seed":7,"a":"<&>"}"#;
    for with_alpha in [false, true] {
        for with_meta in [false, true] {
            let case = format!("alpha {with_alpha}, icc/exif {with_meta}");
            let mut opts = SaveOptions::new(OutputFormat::WebP);
            if with_meta {
                opts.icc = Some(FIXTURE_ICC.to_vec());
                opts.exif = Some(exif_block(8));
            }
            let a = with_alpha.then_some(&alpha);
            let plain = encode(&rgb, a, &opts).unwrap();
            assert_eq!(&plain[12..16], if with_meta { b"VP8X" } else { b"VP8L" });
            assert_eq!(read_settings_from_memory(&plain), None, "{case}");
            opts.settings_json = Some(json.into());
            let bytes = encode(&rgb, a, &opts).unwrap();
            assert_eq!(&bytes[12..16], b"VP8X", "{case}");
            assert_eq!(
                read_settings_from_memory(&bytes).as_deref(),
                Some(json),
                "{case}"
            );

            let mut dec =
                image::codecs::webp::WebPDecoder::new(std::io::Cursor::new(&bytes)).unwrap();
            let xmp = String::from_utf8(dec.xmp_metadata().unwrap().expect("XMP chunk")).unwrap();
            assert!(xmp.contains("&lt;&amp;&gt;"), "{case}: {xmp}");
            assert_eq!(dec.color_type().has_alpha(), with_alpha, "{case}");
            let (icc, exif, img) = decoder_metadata(&bytes);
            assert_eq!(icc.is_some(), with_meta, "{case}");
            assert_eq!(exif, with_meta.then(|| exif_block(1)), "{case}");
            if with_alpha {
                let rgba = img.to_rgba8();
                for ((p, q), a) in rgba.pixels().zip(rgb.pixels()).zip(alpha.pixels()) {
                    assert_eq!(p.0, [q.0[0], q.0[1], q.0[2], a.0[0]], "{case}");
                }
            } else {
                assert_eq!(img.to_rgb8(), rgb, "{case}");
            }
        }
    }
}

#[test]
fn read_settings_covers_png_and_rejects_the_rest() {
    let (rgb, _) = sample(4, 4);
    let json = r#"{"seed":3}"#;
    let opts = SaveOptions {
        settings_json: Some(json.into()),
        ..SaveOptions::new(OutputFormat::Png)
    };
    let png = encode(&rgb, None, &opts).unwrap();
    assert_eq!(read_settings_from_memory(&png).as_deref(), Some(json));
    assert_eq!(read_png_metadata_from_memory(&png).as_deref(), Some(json));
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/imaging/save");
    assert_eq!(
        read_settings(dir.join("text_ztxt.png")),
        read_png_metadata(dir.join("text_ztxt.png"))
    );
    assert_eq!(read_settings(dir.join("no_text.png")), None);
    assert_eq!(read_settings(dir.join("missing.webp")), None);
    assert_eq!(read_settings_from_memory(b""), None);
    assert_eq!(read_settings_from_memory(b"GIF89a......"), None);
    // read_png_metadata stays PNG-only.
    let jpeg = encode(
        &rgb,
        None,
        &SaveOptions {
            format: OutputFormat::Jpeg { quality: 90 },
            ..opts
        },
    )
    .unwrap();
    assert_eq!(read_png_metadata_from_memory(&jpeg), None);
}

#[test]
fn reader_agrees_with_pillow_on_our_files() {
    let dir = meta_dir();
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("pillow.json")).unwrap()).unwrap();
    let files = manifest.as_object().unwrap();
    assert_eq!(files.len(), 4);
    let (rgb, alpha) = sample(5, 4);
    let icc_hex: String = FIXTURE_ICC.iter().map(|b| format!("{b:02x}")).collect();
    for (file, pil) in files {
        let ours = read_settings(dir.join(file));
        assert_eq!(ours.as_deref(), pil["settings"].as_str(), "{file}");
        assert_eq!(ours.as_deref(), Some(FIXTURE_JSON), "{file}");
        assert_eq!(pil["loaded"], true, "{file}");
        let full = !file.ends_with("_simple.webp");
        let icc = if full {
            Value::from(icc_hex.clone())
        } else {
            Value::Null
        };
        assert_eq!(pil["icc_profile_hex"], icc, "{file}");
        let (orientation, make) = if full {
            (Value::from(1), Value::from("Camera!"))
        } else {
            (Value::Null, Value::Null)
        };
        assert_eq!(pil["exif_orientation"], orientation, "{file}");
        assert_eq!(pil["exif_make"], make, "{file}");
        if file.ends_with(".jpg") {
            assert_eq!(pil["mode"], "RGB");
            assert_eq!(pil["size"], serde_json::json!([8, 6]));
            continue;
        }
        let tool = pil["creator_tool"].as_str().unwrap_or_default();
        assert!(tool.starts_with("VARSR Studio "), "{file}: {tool}");
        let alpha_file = file.contains("rgba");
        assert_eq!(
            pil["mode"],
            if alpha_file { "RGBA" } else { "RGB" },
            "{file}"
        );
        let want: Vec<u8> = rgb
            .pixels()
            .zip(alpha.pixels())
            .flat_map(|(p, a)| {
                let px = [p.0[0], p.0[1], p.0[2], a.0[0]];
                px[..if alpha_file { 4 } else { 3 }].to_vec()
            })
            .collect();
        let want: String = want.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            pil["pixels_hex"], want,
            "{file}: Pillow decodes the pixels we encoded"
        );
    }
}

/// Writes the files of tests/fixtures/meta that gen_meta.py then reads with Pillow. Run through
/// that script, not on its own.
#[test]
#[ignore = "fixture writer, run by tests/fixtures/gen/gen_meta.py"]
fn write_meta_fixtures() {
    let dir = meta_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let full = SaveOptions {
        settings_json: Some(FIXTURE_JSON.into()),
        icc: Some(FIXTURE_ICC.to_vec()),
        exif: Some(exif_block(6)),
        overwrite: true,
        ..SaveOptions::new(OutputFormat::Jpeg { quality: 90 })
    };
    let (rgb, _) = sample(8, 6);
    save(dir.join("ours.jpg"), &rgb, None, &full).unwrap();
    let (rgb, alpha) = sample(5, 4);
    let webp = SaveOptions {
        format: OutputFormat::WebP,
        ..full.clone()
    };
    save(dir.join("ours_rgba.webp"), &rgb, Some(&alpha), &webp).unwrap();
    let simple = SaveOptions {
        icc: None,
        exif: None,
        ..webp
    };
    save(
        dir.join("ours_rgba_simple.webp"),
        &rgb,
        Some(&alpha),
        &simple,
    )
    .unwrap();
    save(dir.join("ours_rgb_simple.webp"), &rgb, None, &simple).unwrap();
}
