//! Tiles over a latent grid and how their results are blended, as in the published `test_tile.py`,
//! generalised to any model size.
//!
//! Generation: the latent grid (`h × w`) is covered by square tiles of the model's latent side
//! (32 for the release) with an overlap of a quarter tile; the last row and column are clamped
//! inside the grid. Each tile's final latent is weighted by a separable Gaussian and the weighted
//! sum is normalised by the summed weights (in f64, as the reference does).
//!
//! Decoding: the blended latent is decoded in overlapping windows (the decoder's memory grows with
//! the square of the positions it attends over), and the pixels of neighbouring windows are
//! cross-faded with linear ramps across their overlap. Rows of the output are handed out as soon as
//! no later window can touch them, so only about two window rows of f32 sums are ever held.

use super::{Error, Result};

/// Variance of the Gaussian tile weights, relative to the tile side (`var = 0.01` in test_tile.py).
const GAUSS_VAR: f64 = 0.01;

/// Tile side, overlap and stride, in latent cells (or pixels, for decode windows).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TileGeometry {
    pub tile: usize,
    pub overlap: usize,
}

impl TileGeometry {
    /// The published geometry for a tile side: overlap a quarter of the tile (32 → 8, stride 24).
    pub fn for_tile(tile: usize) -> Self {
        Self {
            tile,
            overlap: tile / 4,
        }
    }

    pub fn stride(&self) -> usize {
        self.tile - self.overlap
    }

    /// The same geometry measured `factor` times finer (latent cells → pixels).
    pub fn scaled(&self, factor: usize) -> Self {
        Self {
            tile: self.tile * factor,
            overlap: self.overlap * factor,
        }
    }

    fn check(&self) -> Result<()> {
        if self.tile == 0 || self.overlap >= self.tile {
            return Err(Error::Invalid(format!(
                "tile geometry needs 0 ≤ overlap < tile, got tile {} overlap {}",
                self.tile, self.overlap
            )));
        }
        Ok(())
    }
}

/// Smallest `n` with `stride·(n−1) + tile ≥ len` (at least 1).
pub fn axis_count(len: usize, geometry: TileGeometry) -> usize {
    if len <= geometry.tile {
        1
    } else {
        1 + (len - geometry.tile).div_ceil(geometry.stride())
    }
}

/// Start of each tile along an axis: `stride·i`, the last one clamped to `len − tile`.
///
/// `len` must be at least `tile`.
pub fn axis_starts(len: usize, geometry: TileGeometry) -> Vec<usize> {
    let n = axis_count(len, geometry);
    (0..n)
        .map(|i| {
            if i + 1 == n {
                len.saturating_sub(geometry.tile)
            } else {
                geometry.stride() * i
            }
        })
        .collect()
}

/// One tile: its index in row-major order, its grid cell and its top-left corner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tile {
    pub index: usize,
    pub row: usize,
    pub col: usize,
    pub y: usize,
    pub x: usize,
}

/// The tiles covering a `height × width` grid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TileGrid {
    pub geometry: TileGeometry,
    pub height: usize,
    pub width: usize,
    pub row_starts: Vec<usize>,
    pub col_starts: Vec<usize>,
}

impl TileGrid {
    /// Both sides must be at least one tile (the caller pads the input up to that).
    pub fn new(height: usize, width: usize, geometry: TileGeometry) -> Result<Self> {
        geometry.check()?;
        if height < geometry.tile || width < geometry.tile {
            return Err(Error::Invalid(format!(
                "a {height}×{width} grid is smaller than one {0}×{0} tile",
                geometry.tile
            )));
        }
        Ok(Self {
            geometry,
            height,
            width,
            row_starts: axis_starts(height, geometry),
            col_starts: axis_starts(width, geometry),
        })
    }

    pub fn rows(&self) -> usize {
        self.row_starts.len()
    }

    pub fn cols(&self) -> usize {
        self.col_starts.len()
    }

    pub fn len(&self) -> usize {
        self.rows() * self.cols()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn tile(&self, index: usize) -> Tile {
        let (row, col) = (index / self.cols(), index % self.cols());
        Tile {
            index,
            row,
            col,
            y: self.row_starts[row],
            x: self.col_starts[col],
        }
    }

    /// All tiles, row-major (the order of the reference: one row of tiles per batch).
    pub fn tiles(&self) -> impl Iterator<Item = Tile> + '_ {
        (0..self.len()).map(|i| self.tile(i))
    }
}

/// `g(u) = exp(−(u−m)² / (tile²·2·var)) / sqrt(2π·var)` for `u` in `0..tile`.
pub fn gaussian(tile: usize, mid: f64) -> Vec<f64> {
    let t2 = (tile * tile) as f64;
    let norm = (2.0 * std::f64::consts::PI * GAUSS_VAR).sqrt();
    (0..tile)
        .map(|u| {
            let d = u as f64 - mid;
            (-(d * d) / t2 / (2.0 * GAUSS_VAR)).exp() / norm
        })
        .collect()
}

/// The per-tile weights along rows (y, centred at `tile/2`) and columns (x, centred at
/// `(tile−1)/2`). The two centres differ in the published code; kept so that output matches.
pub fn tile_weight_axes(tile: usize) -> (Vec<f64>, Vec<f64>) {
    let gy = gaussian(tile, tile as f64 / 2.0);
    let gx = gaussian(tile, (tile as f64 - 1.0) / 2.0);
    (gy, gx)
}

/// Weighted sum of tile latents over the whole grid, normalised at the end.
pub struct LatentBlender {
    grid: TileGrid,
    channels: usize,
    gy: Vec<f64>,
    gx: Vec<f64>,
    acc: Vec<f64>,
    weight: Vec<f64>,
}

impl LatentBlender {
    pub fn new(grid: TileGrid, channels: usize) -> Self {
        let (gy, gx) = tile_weight_axes(grid.geometry.tile);
        let cells = grid.height * grid.width;
        Self {
            channels,
            gy,
            gx,
            acc: vec![0.0; channels * cells],
            weight: vec![0.0; cells],
            grid,
        }
    }

    pub fn grid(&self) -> &TileGrid {
        &self.grid
    }

    /// Adds one tile's latent, `channels × tile × tile` row-major (CHW).
    pub fn add(&mut self, tile: &Tile, latent: &[f32]) -> Result<()> {
        let t = self.grid.geometry.tile;
        if latent.len() != self.channels * t * t {
            return Err(Error::Invalid(format!(
                "tile latent has {} values, expected {}×{t}×{t}",
                latent.len(),
                self.channels
            )));
        }
        let (h, w) = (self.grid.height, self.grid.width);
        for dy in 0..t {
            for dx in 0..t {
                let wgt = self.gy[dy] * self.gx[dx];
                let cell = (tile.y + dy) * w + tile.x + dx;
                self.weight[cell] += wgt;
                for c in 0..self.channels {
                    self.acc[c * h * w + cell] += latent[(c * t + dy) * t + dx] as f64 * wgt;
                }
            }
        }
        Ok(())
    }

    /// The blended latent, `channels × height × width` row-major.
    pub fn finish(self) -> Result<Vec<f32>> {
        let cells = self.grid.height * self.grid.width;
        if self.weight.iter().any(|&w| w <= 0.0) {
            return Err(Error::Invalid(
                "latent blend: some cells got no tile".into(),
            ));
        }
        Ok(self
            .acc
            .iter()
            .enumerate()
            .map(|(i, &a)| (a / self.weight[i % cells]) as f32)
            .collect())
    }
}

/// Cross-fade weights of one window along one axis: 1 inside, a linear ramp over the overlap on
/// the sides that have a neighbour, so that the decoder's border pixels count least.
pub fn ramp(len: usize, overlap: usize, fade_start: bool, fade_end: bool) -> Vec<f32> {
    (0..len)
        .map(|p| {
            let mut w = 1.0f32;
            if overlap > 0 {
                let o = overlap as f32;
                if fade_start {
                    w = w.min((p as f32 + 0.5) / o);
                }
                if fade_end {
                    w = w.min(((len - p) as f32 - 0.5) / o);
                }
            }
            w
        })
        .collect()
}

/// Per-axis window weights and their sums over all windows (the 2-D normaliser is their product,
/// since the windows form a product grid).
struct AxisRamps {
    starts: Vec<usize>,
    weights: Vec<Vec<f32>>,
    sums: Vec<f32>,
}

impl AxisRamps {
    fn new(len: usize, g: TileGeometry) -> Self {
        let starts = axis_starts(len, g);
        let n = starts.len();
        let weights: Vec<Vec<f32>> = (0..n)
            .map(|i| ramp(g.tile.min(len), g.overlap, i > 0, i + 1 < n))
            .collect();
        let mut sums = vec![0.0f32; len];
        for (s, w) in starts.iter().zip(&weights) {
            for (k, v) in w.iter().enumerate() {
                sums[s + k] += v;
            }
        }
        Self {
            starts,
            weights,
            sums,
        }
    }
}

/// Blends decoded RGB windows (values in [0, 1]) into an 8-bit image, streaming finished rows.
///
/// Windows must arrive row by row (all windows of window-row r before any of row r+1); within a
/// row any order works.
pub struct PixelBlender {
    height: usize,
    width: usize,
    geometry: TileGeometry,
    rows: AxisRamps,
    cols: AxisRamps,
    /// Weighted sums (already divided by the column normaliser) for rows `acc_y0..`.
    acc: Vec<f32>,
    acc_y0: usize,
    current_row: usize,
    out: Vec<u8>,
    /// Rows `0..done_y` of `out` are final.
    done_y: usize,
}

impl PixelBlender {
    /// `geometry` in pixels. An image smaller than a window along an axis gets one window there
    /// covering it all.
    pub fn new(height: usize, width: usize, geometry: TileGeometry) -> Result<Self> {
        geometry.check()?;
        if height == 0 || width == 0 {
            return Err(Error::Invalid("cannot blend an empty image".into()));
        }
        Ok(Self {
            height,
            width,
            geometry,
            rows: AxisRamps::new(height, geometry),
            cols: AxisRamps::new(width, geometry),
            acc: Vec::new(),
            acc_y0: 0,
            current_row: 0,
            out: vec![0; height * width * 3],
            done_y: 0,
        })
    }

    /// Window grid: (rows, cols).
    pub fn windows(&self) -> (usize, usize) {
        (self.rows.starts.len(), self.cols.starts.len())
    }

    /// Pixel rectangle `(y, x, h, w)` of window (row, col).
    pub fn window(&self, row: usize, col: usize) -> (usize, usize, usize, usize) {
        (
            self.rows.starts[row],
            self.cols.starts[col],
            self.geometry.tile.min(self.height),
            self.geometry.tile.min(self.width),
        )
    }

    /// Adds window (row, col): `3 × h × w` planar RGB in [0, 1] (the decoder's CHW output).
    pub fn add(&mut self, row: usize, col: usize, rgb: &[f32]) -> Result<()> {
        let (y0, x0, h, w) = self.window(row, col);
        if rgb.len() != 3 * h * w {
            return Err(Error::Invalid(format!(
                "decoded window has {} values, expected 3×{h}×{w}",
                rgb.len()
            )));
        }
        if row < self.current_row {
            return Err(Error::Invalid(
                "decode windows must arrive row by row".into(),
            ));
        }
        if row > self.current_row || self.acc.is_empty() {
            self.start_row(row);
        }
        let wy = &self.rows.weights[row];
        let wx = &self.cols.weights[col];
        let plane = h * w;
        for dy in 0..h {
            let ay = y0 + dy - self.acc_y0;
            for dx in 0..w {
                let x = x0 + dx;
                let wgt = wy[dy] * wx[dx] / self.cols.sums[x];
                let a = (ay * self.width + x) * 3;
                for c in 0..3 {
                    self.acc[a + c] += rgb[c * plane + dy * w + dx] * wgt;
                }
            }
        }
        Ok(())
    }

    /// Makes window row `row` current: rows above its start can no longer change.
    fn start_row(&mut self, row: usize) {
        let y_start = self.rows.starts[row];
        let y_end = (y_start + self.geometry.tile).min(self.height);
        self.flush_until(y_start);
        let have = self.acc.len() / (self.width * 3);
        let need = y_end - self.acc_y0;
        if need > have {
            self.acc.resize(need * self.width * 3, 0.0);
        }
        self.current_row = row;
    }

    /// Writes rows `done_y..y` to the output and drops them from the accumulator.
    fn flush_until(&mut self, y: usize) {
        let y = y.min(self.acc_y0 + self.acc.len() / (self.width * 3).max(1));
        if y <= self.done_y {
            return;
        }
        let stride = self.width * 3;
        for yy in self.done_y..y {
            let ny = self.rows.sums[yy];
            let src = &self.acc[(yy - self.acc_y0) * stride..(yy - self.acc_y0 + 1) * stride];
            let dst = &mut self.out[yy * stride..(yy + 1) * stride];
            for (d, &s) in dst.iter_mut().zip(src) {
                *d = (s / ny * 255.0).round().clamp(0.0, 255.0) as u8;
            }
        }
        self.acc.drain(..(y - self.acc_y0) * stride);
        self.acc_y0 = y;
        self.done_y = y;
    }

    /// The blended image, `height × width` interleaved RGB.
    pub fn finish(mut self) -> Result<Vec<u8>> {
        self.flush_until(self.height);
        if self.done_y < self.height {
            return Err(Error::Invalid(
                "pixel blend: some rows got no window".into(),
            ));
        }
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RELEASE: TileGeometry = TileGeometry {
        tile: 32,
        overlap: 8,
    };

    /// Independent statement of the published rule: stride·(n−1)+tile ≥ len, smallest n.
    fn brute_count(len: usize, tile: usize, stride: usize) -> usize {
        (1..).find(|&n| stride * (n - 1) + tile >= len).unwrap()
    }

    #[test]
    fn release_geometry_numbers() {
        assert_eq!(TileGeometry::for_tile(32), RELEASE);
        assert_eq!(RELEASE.stride(), 24);
        assert_eq!(
            RELEASE.scaled(16),
            TileGeometry {
                tile: 512,
                overlap: 128
            }
        );
        // h = 32 (a 512 px output) is one tile; 33..56 two; 57..80 three.
        assert_eq!(axis_starts(32, RELEASE), vec![0]);
        assert_eq!(axis_starts(33, RELEASE), vec![0, 1]);
        assert_eq!(axis_starts(56, RELEASE), vec![0, 24]);
        assert_eq!(axis_starts(57, RELEASE), vec![0, 24, 25]);
        assert_eq!(axis_starts(80, RELEASE), vec![0, 24, 48]);
        // A 1024×768 LR at 4×: 4096×3072 px, latent 256×192.
        assert_eq!(
            axis_starts(192, RELEASE),
            vec![0, 24, 48, 72, 96, 120, 144, 160]
        );
        assert_eq!(axis_count(256, RELEASE), 11);
        assert_eq!(*axis_starts(256, RELEASE).last().unwrap(), 224);
    }

    #[test]
    fn counts_match_the_published_rule_and_cover_every_cell() {
        for tile in [4usize, 8, 12, 32] {
            let g = TileGeometry::for_tile(tile);
            for len in tile..tile * 7 {
                let starts = axis_starts(len, g);
                assert_eq!(starts.len(), brute_count(len, tile, tile - tile / 4));
                let mut hits = vec![0usize; len];
                for &s in &starts {
                    assert!(s + tile <= len, "tile inside the grid");
                    for h in &mut hits[s..s + tile] {
                        *h += 1;
                    }
                }
                assert!(hits.iter().all(|&h| h >= 1), "len {len} tile {tile}");
                // Starts increase strictly, and all but the clamped last one are multiples of stride.
                assert!(starts.windows(2).all(|p| p[0] < p[1]));
                for (i, &s) in starts.iter().enumerate().take(starts.len() - 1) {
                    assert_eq!(s, i * g.stride());
                }
            }
        }
    }

    #[test]
    fn grid_rejects_undersized_input_and_lists_tiles_row_major() {
        assert!(TileGrid::new(31, 40, RELEASE).is_err());
        assert!(
            TileGrid::new(
                32,
                32,
                TileGeometry {
                    tile: 8,
                    overlap: 8
                }
            )
            .is_err()
        );
        let g = TileGrid::new(33, 80, RELEASE).unwrap();
        assert_eq!((g.rows(), g.cols(), g.len()), (2, 3, 6));
        let t: Vec<_> = g.tiles().map(|t| (t.row, t.col, t.y, t.x)).collect();
        assert_eq!(
            t,
            vec![
                (0, 0, 0, 0),
                (0, 1, 0, 24),
                (0, 2, 0, 48),
                (1, 0, 1, 0),
                (1, 1, 1, 24),
                (1, 2, 1, 48)
            ]
        );
        assert_eq!(g.tile(4).index, 4);
    }

    #[test]
    fn gaussian_matches_closed_form_values() {
        // Reference numbers from the formula written out by hand for tile 32, var 0.01:
        // g(m) = 1/sqrt(0.02π) = 3.989422804014327; g at distance 16 = that·exp(−256/(1024·0.02)).
        let (gy, gx) = tile_weight_axes(32);
        let peak = 3.989422804014327;
        assert!((gy[16] - peak).abs() < 1e-12);
        assert!((gy[0] - peak * (-12.5f64).exp()).abs() < 1e-15);
        // x is centred at 15.5: symmetric pairs, peak not reached.
        for u in 0..32 {
            assert!((gx[u] - gx[31 - u]).abs() < 1e-15);
        }
        assert!((gx[15] - peak * (-0.25f64 / 20.48).exp()).abs() < 1e-12);
        // y is centred at 16: gy[16−d] = gy[16+d], and gy[0] has no partner inside the tile.
        for d in 1..16 {
            assert!((gy[16 - d] - gy[16 + d]).abs() < 1e-15);
        }
        assert!(gy[0] < gy[31]);
    }

    /// Blending tiles that all carry the same constant gives that constant everywhere: the
    /// normalised weights form a partition of unity on every cell.
    #[test]
    fn normalised_weights_are_a_partition_of_unity() {
        for (h, w) in [(32, 32), (33, 57), (57, 80), (47, 33), (100, 41)] {
            let grid = TileGrid::new(h, w, RELEASE).unwrap();
            let mut b = LatentBlender::new(grid.clone(), 2);
            for t in grid.tiles() {
                let mut v = vec![1.25f32; 32 * 32];
                v.extend(std::iter::repeat_n(-3.0f32, 32 * 32));
                b.add(&t, &v).unwrap();
            }
            let out = b.finish().unwrap();
            assert_eq!(out.len(), 2 * h * w);
            assert!(out[..h * w].iter().all(|&v| (v - 1.25).abs() < 1e-6));
            assert!(out[h * w..].iter().all(|&v| (v + 3.0).abs() < 1e-6));
        }
    }

    /// One tile: the blend is the tile itself (the exact published single-tile path).
    #[test]
    fn single_tile_blend_is_identity() {
        let grid = TileGrid::new(32, 32, RELEASE).unwrap();
        let mut b = LatentBlender::new(grid, 3);
        let v: Vec<f32> = (0..3 * 1024).map(|i| (i as f32 * 0.37).sin()).collect();
        b.add(
            &Tile {
                index: 0,
                row: 0,
                col: 0,
                y: 0,
                x: 0,
            },
            &v,
        )
        .unwrap();
        let out = b.finish().unwrap();
        for (a, e) in out.iter().zip(&v) {
            assert!((a - e).abs() < 1e-6);
        }
    }

    /// Two overlapping tiles along x with values 0 and 1: in the overlap the blend is
    /// gx[x]/(gx[x]+gx[x−24]) of the first tile's weight, computed here from the formula directly.
    #[test]
    fn overlap_blend_matches_hand_computed_weights() {
        let grid = TileGrid::new(32, 56, RELEASE).unwrap();
        let mut b = LatentBlender::new(grid.clone(), 1);
        b.add(&grid.tile(0), &vec![0.0; 1024]).unwrap();
        b.add(&grid.tile(1), &vec![1.0; 1024]).unwrap();
        let out = b.finish().unwrap();
        let g = |u: f64| (-(u - 15.5).powi(2) / (1024.0 * 0.02)).exp();
        for x in 0..56usize {
            let w0 = if x < 32 { g(x as f64) } else { 0.0 };
            let w1 = if x >= 24 { g(x as f64 - 24.0) } else { 0.0 };
            let expect = w1 / (w0 + w1);
            for y in 0..32 {
                assert!((out[y * 56 + x] as f64 - expect).abs() < 1e-6, "x {x}");
            }
        }
    }

    #[test]
    fn latent_blender_checks_sizes() {
        let grid = TileGrid::new(32, 32, RELEASE).unwrap();
        let mut b = LatentBlender::new(grid.clone(), 2);
        assert!(b.add(&grid.tile(0), &[0.0; 10]).is_err());
    }

    #[test]
    fn ramp_fades_only_towards_neighbours() {
        assert_eq!(ramp(6, 2, false, false), vec![1.0; 6]);
        assert_eq!(
            ramp(6, 2, true, false),
            vec![0.25, 0.75, 1.0, 1.0, 1.0, 1.0]
        );
        assert_eq!(
            ramp(6, 2, false, true),
            vec![1.0, 1.0, 1.0, 1.0, 0.75, 0.25]
        );
        assert_eq!(
            ramp(6, 2, true, true),
            vec![0.25, 0.75, 1.0, 1.0, 0.75, 0.25]
        );
    }

    /// Windows cut from one smooth image and blended back give that image (to 8-bit rounding),
    /// for odd sizes, clamped last windows and images smaller than a window.
    #[test]
    fn pixel_blend_reassembles_a_cut_image() {
        let f = |c: usize, y: usize, x: usize| {
            (0.5 + 0.4 * ((y as f32 * 0.13 + c as f32).sin() * (x as f32 * 0.07).cos()))
                .clamp(0.0, 1.0)
        };
        for (h, w, g) in [
            (
                64,
                64,
                TileGeometry {
                    tile: 64,
                    overlap: 16,
                },
            ),
            (
                97,
                130,
                TileGeometry {
                    tile: 32,
                    overlap: 8,
                },
            ),
            (
                20,
                70,
                TileGeometry {
                    tile: 32,
                    overlap: 8,
                },
            ),
            (
                75,
                75,
                TileGeometry {
                    tile: 40,
                    overlap: 12,
                },
            ),
        ] {
            let mut b = PixelBlender::new(h, w, g).unwrap();
            let (nr, nc) = b.windows();
            for r in 0..nr {
                // Columns in reverse: order within a row does not matter.
                for c in (0..nc).rev() {
                    let (y0, x0, wh, ww) = b.window(r, c);
                    let mut rgb = vec![0.0f32; 3 * wh * ww];
                    for ch in 0..3 {
                        for dy in 0..wh {
                            for dx in 0..ww {
                                rgb[(ch * wh + dy) * ww + dx] = f(ch, y0 + dy, x0 + dx);
                            }
                        }
                    }
                    b.add(r, c, &rgb).unwrap();
                }
            }
            let out = b.finish().unwrap();
            for y in 0..h {
                for x in 0..w {
                    for ch in 0..3 {
                        let e = (f(ch, y, x) * 255.0).round();
                        let a = out[(y * w + x) * 3 + ch] as f32;
                        assert!((a - e).abs() <= 1.0, "({y},{x},{ch}) {a} vs {e}");
                    }
                }
            }
        }
    }

    /// Two windows with constants 0 and 1 cross-fade linearly over their overlap.
    #[test]
    fn pixel_blend_cross_fades_linearly() {
        let g = TileGeometry {
            tile: 8,
            overlap: 4,
        };
        let mut b = PixelBlender::new(1, 12, g).unwrap();
        assert_eq!(b.windows(), (1, 2));
        b.add(0, 0, &[0.0; 24]).unwrap();
        b.add(0, 1, &[1.0; 24]).unwrap();
        let out = b.finish().unwrap();
        let red: Vec<u8> = out.chunks(3).map(|p| p[0]).collect();
        // Overlap x = 4..8: second window's weight (k+0.5)/4, first's (4−k−0.5)/4.
        let expect: Vec<u8> = [
            0.0, 0.0, 0.0, 0.0, 0.125, 0.375, 0.625, 0.875, 1.0, 1.0, 1.0, 1.0,
        ]
        .iter()
        .map(|v: &f32| (v * 255.0).round() as u8)
        .collect();
        assert_eq!(red, expect);
    }

    #[test]
    fn pixel_blend_rejects_rows_out_of_order() {
        let g = TileGeometry {
            tile: 8,
            overlap: 2,
        };
        let mut b = PixelBlender::new(14, 8, g).unwrap();
        b.add(1, 0, &[0.5; 192]).unwrap();
        assert!(b.add(0, 0, &[0.5; 192]).is_err());
    }
}
