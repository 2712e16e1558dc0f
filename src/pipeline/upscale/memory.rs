//! How much memory a tile and a decode window need, how much there is, and how many fit.

use candle_core::Device;

use crate::model::config::{VarConfig, VqvaeConfig};

/// Bytes one tile needs while it is generated: the KV cache of both guidance branches, the
/// largest attention and MLP activations, the logits of the last scale, and the refiner.
pub fn tile_memory(var: &VarConfig, dtype_bytes: usize) -> u64 {
    let l = var.total_tokens() as u64;
    let c = var.embed_dim as u64;
    let last = var.final_side() as u64;
    let pn2 = last * last;
    let d = dtype_bytes as u64;
    let kv = 2 * var.depth as u64 * 2 * l * c * d;
    let attn = 2 * var.num_heads as u64 * pn2 * l * 4;
    let mlp = 2 * pn2 * var.mlp_hidden as u64 * d;
    let hidden = 8 * 2 * pn2 * c * d;
    let logits = 2 * pn2 * var.vocab_size as u64 * 4 * 2;
    let refiner = 2 * pn2 * var.refiner_width as u64 * 4 * 6;
    kv + attn + mlp + hidden + logits + refiner
}

/// Bytes one decode window of `side × side` latents needs: a handful of full-resolution feature
/// maps at the widest level plus the attention over the window's positions.
pub fn window_memory(vae: &VqvaeConfig, side: usize) -> u64 {
    let f = vae.downsample() as u64;
    let px = (side as u64 * f).pow(2);
    let ch0 = vae.ch as u64 * vae.ch_mult.first().copied().unwrap_or(1) as u64;
    let widest = vae.ch as u64 * vae.ch_mult.iter().copied().max().unwrap_or(1) as u64;
    let positions = (side * side) as u64;
    8 * px * ch0 * 4 + 4 * positions * widest * 4 + 2 * positions * positions * 4
}

/// Free memory of a device, in bytes, when it can be asked.
pub fn available_memory(device: &Device) -> Option<u64> {
    match device {
        Device::Cpu => {
            let text = std::fs::read_to_string("/proc/meminfo").ok()?;
            let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
            let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kb * 1024)
        }
        #[cfg(feature = "cuda")]
        Device::Cuda(d) => d
            .cuda_stream()
            .context()
            .mem_get_info()
            .ok()
            .map(|(free, _)| free as u64),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// Share of the free memory a plan may use (the rest is headroom for the allocator and other
/// programs).
const MEMORY_SHARE: f64 = 0.6;

/// Automatic batch on a CPU for a released-size tile, and the least for any model: batching
/// amortises per-operation overhead at the small scales, but a tile of that size is enough work
/// alone, so beyond a few it only adds memory (the matmuls already use every core).
pub const CPU_MAX_BATCH: usize = 4;

/// Tokens × width a CPU batch should hold before batching stops paying.
const CPU_BATCH_WORK: usize = 3 << 20;

/// Largest automatic batch on a CPU for tiles of `var`'s size: more tiles at once when a tile is
/// little work. The built-in model (763 tokens of width 128 a tile) upscaled 128→512 px (81 tiles) in
/// 13.6 s at 4 tiles a batch, 11.5 s at 27 and 41, 11.7 s at 81 (`varsr bench --small --size 512
/// --tile-batch N`); a released-size tile (3264 tokens of width 1536) stays at 4.
pub fn cpu_max_batch(var: &VarConfig) -> usize {
    let work = (var.total_tokens() * var.embed_dim).max(1);
    (CPU_BATCH_WORK / work).clamp(CPU_MAX_BATCH, 32)
}

/// `n` items in batches of at most `batch`, as evenly as the same number of batches allows: 81 tiles
/// at 32 become three batches of 27 rather than 32, 32 and 17. The time is the same (measured on the
/// built-in model, 128→512 px) and the peak memory that of the smaller batch.
pub fn balanced_batch(n: usize, batch: usize) -> usize {
    let batch = batch.max(1);
    n.div_ceil(n.div_ceil(batch).max(1)).clamp(1, batch)
}

/// `(batch, lanes)` for `n` tiles when `fit` tiles fit in memory at once and `lanes` threads could
/// each run a batch: the lanes share the memory (`lanes · batch ≤ fit` when `fit ≥ lanes`) and
/// get the same number of batches each, as even as [`balanced_batch`] makes them (81 tiles, 32
/// fitting, 2 lanes → six batches of 14 or 11, three a lane). Fewer lanes when there are fewer
/// batches.
pub fn lane_batches(n: usize, fit: usize, lanes: usize) -> (usize, usize) {
    let n = n.max(1);
    let lanes = lanes.clamp(1, n);
    if lanes == 1 {
        return (balanced_batch(n, fit), 1);
    }
    let per_lane = (fit / lanes).max(1);
    let batches = n.div_ceil(per_lane).next_multiple_of(lanes);
    let batch = n.div_ceil(batches);
    (batch, lanes.min(n.div_ceil(batch)))
}

/// How many items of `per_item` bytes fit in `budget`, between 1 and `max`.
pub fn fit_batch(per_item: u64, budget: Option<u64>, max: usize) -> usize {
    let max = max.max(1);
    match budget {
        Some(b) if per_item > 0 => {
            (((b as f64 * MEMORY_SHARE) / per_item as f64) as usize).clamp(1, max)
        }
        // Without a number, a few tiles at a time.
        _ => max.min(CPU_MAX_BATCH),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_tile_memory_is_dominated_by_the_kv_cache() {
        let cfg = crate::model::config::VarConfig::release(24);
        // KV cache 2·24·2·3264·1536·4 bytes (§3: 3264 tokens with the prefix).
        let kv = 2 * 24 * 2 * 3264 * 1536 * 4u64;
        let m = tile_memory(&cfg, 4);
        assert!(m > kv && m < kv * 2, "{m} vs kv {kv}");
        assert_eq!(fit_batch(m, Some(m * 10), 6), 6);
        assert_eq!(fit_batch(m, Some(m * 5), 6), 3);
        assert_eq!(fit_batch(m, Some(m / 4), 6), 1);
        assert_eq!(fit_batch(m, None, 11), 4);
    }

    #[test]
    fn batches_are_even_and_never_larger() {
        assert_eq!(balanced_batch(81, 32), 27);
        assert_eq!(balanced_batch(81, 4), 4);
        assert_eq!(balanced_batch(10, 4), 4);
        assert_eq!(balanced_batch(9, 4), 3);
        assert_eq!(balanced_batch(3, 32), 3);
        assert_eq!(balanced_batch(0, 4), 1);
        for n in 1..200 {
            for b in 1..40 {
                let e = balanced_batch(n, b);
                assert!(e <= b && e >= 1);
                // The same number of batches as `b` gives.
                assert_eq!(n.div_ceil(e), n.div_ceil(b), "{n} {b}");
            }
        }
    }

    #[test]
    fn lanes_share_the_memory_and_the_batches() {
        assert_eq!(lane_batches(81, 32, 2), (14, 2));
        assert_eq!(lane_batches(81, 32, 1), (27, 1));
        assert_eq!(lane_batches(1, 32, 2), (1, 1));
        assert_eq!(lane_batches(3, 32, 2), (2, 2));
        for n in 1..120 {
            for fit in 1..40 {
                for lanes in 1..5 {
                    let (b, l) = lane_batches(n, fit, lanes);
                    let count = n.div_ceil(b);
                    assert!(b >= 1 && l >= 1 && l <= lanes, "{n} {fit} {lanes}");
                    // Every lane has a batch, and together they hold no more than fits.
                    assert!(l <= count, "{n} {fit} {lanes}");
                    assert!(l * b <= fit.max(l), "{n} {fit} {lanes}: {l}×{b}");
                    // No batch larger than a lane's share of what fits.
                    let share = if lanes.min(n) > 1 {
                        fit / lanes.min(n)
                    } else {
                        fit
                    };
                    assert!(b <= share.max(1), "{n} {fit} {lanes}");
                }
            }
        }
    }

    #[test]
    fn small_tiles_batch_more_on_a_cpu() {
        assert_eq!(cpu_max_batch(&VarConfig::release(24)), CPU_MAX_BATCH);
        assert_eq!(cpu_max_batch(&VarConfig::release(16)), CPU_MAX_BATCH);
        // 763 tokens of width 128: 3·2²⁰ / 97 664 = 32.
        assert_eq!(cpu_max_batch(&crate::train::small::var_config()), 32);
    }
}
