//! Training patches: HR crops cut from the fetched photos, kept in one binary file
//! (`VARSRPAT`, u32 count, u32 side, then `count` RGB8 patches of `side²·3` bytes), plus the photos
//! held out for evaluation.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use image::RgbImage;
use rand::Rng;

const MAGIC: &[u8; 8] = b"VARSRPAT";

pub struct Patches {
    pub side: usize,
    data: Vec<u8>,
}

impl Patches {
    pub fn len(&self) -> usize {
        self.data.len() / (self.side * self.side * 3)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, i: usize) -> RgbImage {
        let n = self.side * self.side * 3;
        let s = self.side as u32;
        RgbImage::from_raw(s, s, self.data[i * n..(i + 1) * n].to_vec())
            .unwrap_or_else(|| RgbImage::new(s, s))
    }

    /// Patch `i` under one of the 8 flips/rotations.
    pub fn augmented(&self, i: usize, rng: &mut impl Rng) -> RgbImage {
        let mut p = self.get(i);
        if rng.random_bool(0.5) {
            p = image::imageops::flip_horizontal(&p);
        }
        match rng.random_range(0..4) {
            1 => image::imageops::rotate90(&p),
            2 => image::imageops::rotate180(&p),
            3 => image::imageops::rotate270(&p),
            _ => p,
        }
    }

    pub fn load(path: &Path) -> Result<Self> {
        let mut f =
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let mut head = [0u8; 16];
        f.read_exact(&mut head)?;
        if &head[..8] != MAGIC {
            bail!("{} is not a patch file", path.display());
        }
        let count = u32::from_le_bytes([head[8], head[9], head[10], head[11]]) as usize;
        let side = u32::from_le_bytes([head[12], head[13], head[14], head[15]]) as usize;
        let mut data = Vec::with_capacity(count * side * side * 3);
        f.read_to_end(&mut data)?;
        if data.len() != count * side * side * 3 {
            bail!("{} is truncated", path.display());
        }
        Ok(Self { side, data })
    }
}

/// Photos (sorted by name) with every `holdout_every`-th one set aside for evaluation.
pub fn split_photos(dir: &Path, holdout_every: usize) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let mut all: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("png")))
        .collect();
    all.sort();
    let (mut train, mut held) = (Vec::new(), Vec::new());
    for (i, p) in all.into_iter().enumerate() {
        if holdout_every > 0 && i % holdout_every == holdout_every - 1 {
            held.push(p);
        } else {
            train.push(p);
        }
    }
    Ok((train, held))
}

/// Standard deviation of the luma of a patch, in [0, 1] units.
fn luma_std(p: &RgbImage) -> f64 {
    let y: Vec<f64> = p
        .pixels()
        .map(|px| (0.299 * px[0] as f64 + 0.587 * px[1] as f64 + 0.114 * px[2] as f64) / 255.0)
        .collect();
    let m = y.iter().sum::<f64>() / y.len() as f64;
    (y.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / y.len() as f64).sqrt()
}

/// Cuts `side`-pixel patches every `stride` pixels from the training photos; flat patches (sky,
/// walls) are kept only one time in four so that the data is mostly texture and edges. Writes the
/// patch file and copies the held-out photos' centre crops (at most `holdout_px` per side) to
/// `holdout_dir`. Returns (patches, held-out photos).
#[allow(clippy::too_many_arguments)]
pub fn build_patches(
    photos: &Path,
    out: &Path,
    holdout_dir: &Path,
    side: usize,
    stride: usize,
    holdout_every: usize,
    holdout_px: u32,
    seed: u64,
) -> Result<(usize, usize)> {
    use rand::SeedableRng;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let (train, held) = split_photos(photos, holdout_every)?;
    let mut data = Vec::new();
    let mut count = 0usize;
    for p in &train {
        let img = image::open(p)
            .with_context(|| format!("reading {}", p.display()))?
            .to_rgb8();
        let (w, h) = (img.width() as usize, img.height() as usize);
        let mut y = 0;
        while y + side <= h {
            let mut x = 0;
            while x + side <= w {
                let crop =
                    image::imageops::crop_imm(&img, x as u32, y as u32, side as u32, side as u32)
                        .to_image();
                if luma_std(&crop) > 0.04 || rng.random_range(0..4) == 0 {
                    data.extend_from_slice(crop.as_raw());
                    count += 1;
                }
                x += stride;
            }
            y += stride;
        }
    }
    let mut f = std::io::BufWriter::new(std::fs::File::create(out)?);
    f.write_all(MAGIC)?;
    f.write_all(&(count as u32).to_le_bytes())?;
    f.write_all(&(side as u32).to_le_bytes())?;
    f.write_all(&data)?;
    f.flush()?;
    std::fs::create_dir_all(holdout_dir)?;
    for p in &held {
        let img = image::open(p)?.to_rgb8();
        let cw = img.width().min(holdout_px) / 4 * 4;
        let ch = img.height().min(holdout_px) / 4 * 4;
        let crop = image::imageops::crop_imm(
            &img,
            (img.width() - cw) / 2,
            (img.height() - ch) / 2,
            cw,
            ch,
        )
        .to_image();
        let name = p.file_name().map(|n| n.to_os_string()).unwrap_or_default();
        crop.save(holdout_dir.join(name))?;
    }
    Ok((count, held.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patches_round_trip_through_the_file() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let photos = dir.path().join("photos");
        std::fs::create_dir_all(&photos)?;
        // A 40×20 gradient photo gives 2 textured 16-px patches at stride 16 (width 40 → x 0, 16).
        let img = RgbImage::from_fn(40, 20, |x, y| {
            image::Rgb([(x * 6) as u8, (y * 12) as u8, ((x + y) * 3) as u8])
        });
        img.save(photos.join("a.png"))?;
        let out = dir.path().join("p.bin");
        let (n, held) = build_patches(&photos, &out, &dir.path().join("held"), 16, 16, 0, 64, 1)?;
        assert_eq!((n, held), (2, 0));
        let p = Patches::load(&out)?;
        assert_eq!(p.len(), 2);
        let second = p.get(1);
        assert_eq!(second.get_pixel(0, 0), img.get_pixel(16, 0));
        assert_eq!(second.get_pixel(15, 15), img.get_pixel(31, 15));
        Ok(())
    }
}
