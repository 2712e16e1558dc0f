//! Generating the tiles of a job: batches of tiles through the engine, one after another or on
//! several CPU lanes at once (see [`super::lanes`]), then the blend of their latents in tile order.

use candle_core::{DType, Device, Tensor};
use image::RgbImage;

use super::lanes;
use super::tile_noise::TileNoise;
use super::{JobObserver, LockedTokens, UpscaleOptions, UpscalePlan};
use crate::pipeline::Result;
use crate::pipeline::engine::Engine;
use crate::pipeline::events::Observer;
use crate::pipeline::tiling::{LatentBlender, Tile};

/// `tokens[tile][scale]`: the ids chosen per tile, row-major `pn²` grids.
pub(super) type TileTokens = Vec<Vec<Vec<u32>>>;

/// What one batch leaves: its tiles' final latents (CHW each) and their tokens per scale.
pub(super) struct BatchOut {
    latents: Vec<Vec<f32>>,
    tokens: TileTokens,
}

/// Everything a batch needs besides its tiles; shared by the lanes, so read-only.
pub(super) struct TileJob<'a> {
    pub engine: &'a Engine,
    pub lr: &'a RgbImage,
    pub plan: &'a UpscalePlan,
    pub opts: &'a UpscaleOptions,
    pub patch_nums: &'a [usize],
    pub noise: &'a TileNoise,
}

impl TileJob<'_> {
    /// Runs one batch of tiles through the engine (scales and refiner).
    pub fn run(&self, batch: &[Tile], observer: &mut dyn Observer) -> Result<BatchOut> {
        let engine = self.engine;
        let plan = self.plan;
        let tp = plan.tile_px();
        let first = batch.first().map_or(0, |t| t.index);
        let crops: Vec<f32> = batch
            .iter()
            .flat_map(|t| crop_unit(self.lr, t.x * plan.f, t.y * plan.f, tp))
            .collect();
        let input = Tensor::from_vec(crops, (batch.len(), 3, tp, tp), &engine.device)?
            .to_dtype(engine.var.dtype())?;
        let locked = locked_tensors(
            self.opts.locked.as_ref(),
            batch,
            self.patch_nums,
            &engine.device,
        )?;
        let mut noise = self.noise.for_batch(first, batch.len());
        let out = engine.generate(
            &input,
            &self.opts.params,
            &locked,
            &mut noise,
            observer,
            (first, plan.grid.len()),
        )?;
        let f_hat = out.f_hat.to_dtype(DType::F32)?.to_device(&Device::Cpu)?;
        let latents = (0..batch.len())
            .map(|i| f_hat.get(i)?.flatten_all()?.to_vec1::<f32>())
            .collect::<candle_core::Result<Vec<_>>>()?;
        let mut tokens: TileTokens = vec![Vec::new(); batch.len()];
        for scale in &out.tokens {
            let rows = scale.to_dtype(DType::U32)?.to_vec2::<u32>()?;
            for (tile, ids) in tokens.iter_mut().zip(rows) {
                tile.push(ids);
            }
        }
        Ok(BatchOut { latents, tokens })
    }
}

/// Batches of at most `size` tiles, each a run of consecutive indices: a batch's previews and
/// noise streams are addressed by its first tile.
fn consecutive_batches(tiles: &[Tile], size: usize) -> Vec<&[Tile]> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=tiles.len() {
        let breaks = i == tiles.len() || tiles[i].index != tiles[i - 1].index + 1;
        if breaks || i - start == size {
            out.push(&tiles[start..i]);
            start = i;
        }
    }
    out
}

/// Runs every batch of tiles (only the `redo` ones, sorted, when tiles are kept) and blends all
/// tiles' latents; returns the blended latent (CHW), the tokens per tile and scale, and each tile's
/// latent. The blend adds the tiles in tile order whatever order the lanes finished them in, so
/// the result does not depend on the lanes.
pub(super) fn generate_tiles(
    job: &TileJob,
    redo: Option<Vec<usize>>,
    observer: &mut JobObserver,
) -> Result<(Vec<f32>, TileTokens, Vec<Vec<f32>>)> {
    let grid = &job.plan.grid;
    let tiles: Vec<Tile> = match redo {
        Some(redo) => redo.into_iter().map(|i| grid.tile(i)).collect(),
        None => grid.tiles().collect(),
    };
    let batches = consecutive_batches(&tiles, job.plan.batch.max(1));
    let outs = lanes::run(
        batches.len(),
        job.plan.lanes,
        observer,
        |o, i| o.batch_len = batches[i].len(),
        |i, lane| job.run(batches[i], lane),
    )?;

    let (mut latents, mut tokens) = match &job.opts.kept {
        Some(kept) => (kept.latents.clone(), kept.tokens.clone()),
        None => (vec![Vec::new(); grid.len()], vec![Vec::new(); grid.len()]),
    };
    for (batch, out) in batches.iter().zip(outs) {
        for ((tile, latent), ids) in batch.iter().zip(out.latents).zip(out.tokens) {
            latents[tile.index] = latent;
            tokens[tile.index] = ids;
        }
    }
    let mut blender = LatentBlender::new(grid.clone(), job.engine.var.config.cvae);
    for tile in grid.tiles() {
        blender.add(&tile, &latents[tile.index])?;
    }
    Ok((blender.finish()?, tokens, latents))
}

/// A `tp × tp` window of the LR at (x, y), planar RGB in [−1, 1] (`ToTensor`, then `2x − 1`).
fn crop_unit(lr: &RgbImage, x: usize, y: usize, tp: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; 3 * tp * tp];
    for dy in 0..tp {
        for dx in 0..tp {
            let p = lr.get_pixel((x + dx) as u32, (y + dy) as u32).0;
            for c in 0..3 {
                out[(c * tp + dy) * tp + dx] = p[c] as f32 / 255.0 * 2.0 - 1.0;
            }
        }
    }
    out
}

/// The kept tokens of a batch as one `(B, pn²)` u32 tensor per locked scale.
fn locked_tensors(
    locked: Option<&LockedTokens>,
    batch: &[Tile],
    patch_nums: &[usize],
    device: &Device,
) -> Result<Vec<Tensor>> {
    let Some(l) = locked else {
        return Ok(Vec::new());
    };
    let mut out = Vec::with_capacity(l.from_scale);
    for (k, &pn) in patch_nums.iter().enumerate().take(l.from_scale) {
        let ids: Vec<u32> = batch
            .iter()
            .flat_map(|t| l.per_tile[t.index][k].iter().copied())
            .collect();
        out.push(Tensor::from_vec(ids, (batch.len(), pn * pn), device)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locked_tokens_become_batch_tensors_in_tile_order() {
        let good = LockedTokens {
            from_scale: 2,
            per_tile: vec![
                vec![vec![0], vec![1, 2, 3, 4]],
                vec![vec![5], vec![6, 7, 8, 9]],
            ],
        };
        let tile = |index, x| Tile {
            index,
            row: 0,
            col: x,
            y: 0,
            x,
        };
        let t = locked_tensors(
            Some(&good),
            &[tile(1, 1), tile(0, 0)],
            &[1, 2],
            &Device::Cpu,
        )
        .unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].to_vec2::<u32>().unwrap(), vec![vec![5], vec![0]]);
        assert_eq!(
            t[1].to_vec2::<u32>().unwrap(),
            vec![vec![6, 7, 8, 9], vec![1, 2, 3, 4]]
        );
    }

    #[test]
    fn batches_are_runs_of_consecutive_tiles() {
        let tiles: Vec<Tile> = [0, 1, 2, 3, 4, 7, 8, 12]
            .iter()
            .map(|&index| Tile {
                index,
                row: 0,
                col: index,
                y: 0,
                x: index,
            })
            .collect();
        let idx = |b: Vec<&[Tile]>| -> Vec<Vec<usize>> {
            b.iter()
                .map(|b| b.iter().map(|t| t.index).collect())
                .collect()
        };
        assert_eq!(
            idx(consecutive_batches(&tiles, 3)),
            vec![vec![0, 1, 2], vec![3, 4], vec![7, 8], vec![12]]
        );
        assert_eq!(
            idx(consecutive_batches(&tiles[..5], 5)),
            vec![vec![0, 1, 2, 3, 4]]
        );
        assert!(consecutive_batches(&[], 4).is_empty());
    }

    #[test]
    fn crops_are_planar_unit_range() {
        let lr = RgbImage::from_fn(4, 4, |x, y| {
            image::Rgb([(x * 60) as u8, (y * 60) as u8, 255])
        });
        let c = crop_unit(&lr, 1, 2, 2);
        // Pixel (1,2): R 60, G 120, B 255 → 2v/255 − 1.
        assert!((c[0] - (120.0 / 255.0 - 1.0)).abs() < 1e-6);
        assert!((c[4] - (240.0 / 255.0 - 1.0)).abs() < 1e-6);
        assert!((c[8] - 1.0).abs() < 1e-6);
    }
}
