//! 3×3 convolutions (stride 1, padding 1) by Winograd's minimal filtering F(4×4, 3×3), for inference
//! on the CPU.
//!
//! candle's CPU `conv2d` unfolds the input (im2col) and runs one matrix product of 9·C_in·C_out
//! multiply-adds per output pixel; the VQVAE decoder, nearly all 3×3 convolutions at up to 512×512,
//! spent twice the published decode time there. F(4×4, 3×3) turns each 6×6 input patch and each
//! filter into 6×6 transformed tiles whose elementwise products, summed over input channels, give a
//! 4×4 output block after an inverse transform: 36 products per 16 outputs instead of 144, so the
//! matrix products (36 of them, one per tile element) do a quarter of the work (Lavin & Gray, 2016,
//! "Fast Algorithms for Convolutional Neural Networks"). The transforms are exact in real arithmetic;
//! in f32 the result differs from the direct sum by rounding only (tested against an f64 direct
//! convolution). Other devices, other dtypes and tensors that need gradients use candle's kernel.

use candle_core::{Result, Tensor};

use super::cpu::{fast_path, for_each_chunk, with_f32};

/// Bound on the transformed tiles held at once, in f32 values (28 MiB): the tiles of a large image
/// are processed in bands of tile rows. Below glibc's largest `mmap` threshold (32 MiB, see
/// [`crate::alloc`]), so the band buffers are reused from the heap instead of being faulted in anew.
const BAND_VALUES: usize = 7 << 20;
/// Tiles per band at least, so the matrix products stay large enough to run at full speed.
const MIN_BAND_TILES: usize = 512;

/// `conv2d(x, weight, padding=1) + bias` for a `(C_out, C_in, 3, 3)` weight.
pub fn conv3x3(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    let fast = fast_path(&[x, weight]) && bias.is_none_or(|b| fast_path(&[b]));
    if !fast {
        let y = x.conv2d(weight, 1, 1, 1, 1)?;
        return match bias {
            Some(b) => y.broadcast_add(&b.reshape((1, (), 1, 1))?),
            None => Ok(y),
        };
    }
    let (n, c_in, h, w) = x.dims4()?;
    let (c_out, c_in_w, kh, kw) = weight.dims4()?;
    if (c_in_w, kh, kw) != (c_in, 3, 3) {
        candle_core::bail!(
            "conv3x3: weight {:?} does not fit input {:?}",
            weight.dims(),
            x.dims()
        );
    }
    let u = filter_transform(weight)?;
    let bias = match bias {
        Some(b) => b.to_vec1::<f32>()?,
        None => vec![0.0; c_out],
    };
    let geom = Geometry {
        c_in,
        c_out,
        h,
        w,
        tw: w.div_ceil(4),
    };
    let mut out = vec![0f32; n * c_out * h * w];
    let band_rows = (BAND_VALUES / (36 * c_in.max(c_out) * geom.tw))
        .max(MIN_BAND_TILES.div_ceil(geom.tw))
        .max(1);
    with_f32(x, "conv3x3", |xs| {
        for (img, dst) in xs.chunks(c_in * h * w).zip(out.chunks_mut(c_out * h * w)) {
            for i0 in (0..h.div_ceil(4)).step_by(band_rows) {
                let rows = band_rows.min(h.div_ceil(4) - i0);
                let m = u.matmul(&geom.input_transform(img, i0, rows)?)?;
                with_f32(&m, "conv3x3", |ms| {
                    geom.output_transform(ms, &bias, dst, i0, rows);
                    Ok(())
                })?;
            }
        }
        Ok(())
    })?;
    Tensor::from_vec(out, (n, c_out, h, w), x.device())
}

/// `G g Gᵀ` for every filter: `(C_out, C_in, 3, 3)` → `(36, C_out, C_in)`, computed in f64 (stored
/// filter-major, so each output channel is written by one thread).
fn filter_transform(weight: &Tensor) -> Result<Tensor> {
    let (c_out, c_in, _, _) = weight.dims4()?;
    let g = weight.flatten_all()?.to_vec1::<f32>()?;
    let mut u = vec![0f32; c_out * 36 * c_in];
    for_each_chunk(&mut u, 36 * c_in, |o, dst| {
        for (c, k) in g[o * c_in * 9..(o + 1) * c_in * 9]
            .chunks_exact(9)
            .enumerate()
        {
            // G applied to each column of the 3×3 filter, then to each row of the 6×3 result.
            let cols: [[f64; 6]; 3] =
                std::array::from_fn(|j| g6([k[j], k[3 + j], k[6 + j]].map(f64::from)));
            for r in 0..6 {
                let row = g6([cols[0][r], cols[1][r], cols[2][r]]);
                for (q, v) in row.into_iter().enumerate() {
                    dst[(r * 6 + q) * c_in + c] = v as f32;
                }
            }
        }
    });
    Tensor::from_vec(u, (c_out, 36, c_in), weight.device())?.transpose(0, 1)
}

/// `G·g` for a 3-vector (interpolation points 0, ±1, ±2, ∞).
fn g6([g0, g1, g2]: [f64; 3]) -> [f64; 6] {
    [
        g0 / 4.0,
        -(g0 + g1 + g2) / 6.0,
        -(g0 - g1 + g2) / 6.0,
        g0 / 24.0 + g1 / 12.0 + g2 / 6.0,
        g0 / 24.0 - g1 / 12.0 + g2 / 6.0,
        g2,
    ]
}

/// `Bᵀ·d` for a 6-vector.
#[inline(always)]
fn bt6(d: [f32; 6]) -> [f32; 6] {
    [
        4.0 * d[0] - 5.0 * d[2] + d[4],
        -4.0 * (d[1] + d[2]) + d[3] + d[4],
        4.0 * (d[1] - d[2]) - d[3] + d[4],
        2.0 * (d[3] - d[1]) - d[2] + d[4],
        2.0 * (d[1] - d[3]) - d[2] + d[4],
        4.0 * d[1] - 5.0 * d[3] + d[5],
    ]
}

/// `Aᵀ·m` for a 6-vector.
#[inline(always)]
fn at4(m: [f32; 6]) -> [f32; 4] {
    let (s12, d12) = (m[1] + m[2], m[1] - m[2]);
    let (s34, d34) = (m[3] + m[4], m[3] - m[4]);
    [
        m[0] + s12 + s34,
        d12 + 2.0 * d34,
        s12 + 4.0 * s34,
        d12 + 8.0 * d34 + m[5],
    ]
}

struct Geometry {
    c_in: usize,
    c_out: usize,
    h: usize,
    w: usize,
    /// Tiles per row.
    tw: usize,
}

impl Geometry {
    /// `Bᵀ d B` of every 6×6 input patch of tile rows `i0..i0 + rows` of one image, as a
    /// `(36, C_in, T)` tensor (stored channel-major, so each channel's values are written by one
    /// thread; the matrix product reads it through strides).
    fn input_transform(&self, img: &[f32], i0: usize, rows: usize) -> Result<Tensor> {
        let tiles = rows * self.tw;
        let mut v = vec![0f32; self.c_in * 36 * tiles];
        let plane = self.h * self.w;
        for_each_chunk(&mut v, 36 * tiles, |c, dst| {
            super::simd::dispatch!(self.transform_channel(
                &img[c * plane..(c + 1) * plane],
                i0,
                rows,
                dst
            ))
        });
        Tensor::from_vec(v, (self.c_in, 36, tiles), &candle_core::Device::Cpu)?.transpose(0, 1)
    }

    /// One channel's tiles, a row of tiles at a time and vectorised across the row: each input
    /// row is split into its four column phases (`x mod 4`), so that element `(s, k)` of every
    /// patch in the row is one contiguous run.
    #[inline(always)]
    fn transform_channel(&self, src: &[f32], i0: usize, rows: usize, dst: &mut [f32]) {
        let tw = self.tw;
        let tiles = rows * tw;
        // phases[s][k][j] = input(4(i0 + r) − 1 + s, 4j − 1 + k), zero outside the image.
        let run = tw + 1;
        let mut phases = vec![0f32; 6 * 4 * run];
        let mut cols = vec![0f32; 36 * tw];
        let mut out = vec![0f32; 36 * tw];
        for r in 0..rows {
            phases.fill(0.0);
            for sy in 0..6 {
                let y = (4 * (i0 + r) + sy) as isize - 1;
                if y < 0 || y >= self.h as isize {
                    continue;
                }
                let row = &src[y as usize * self.w..(y as usize + 1) * self.w];
                for (x, &val) in row.iter().enumerate() {
                    let px = x + 1;
                    phases[(sy * 4 + px % 4) * run + px / 4] = val;
                }
            }
            let patch = |sy: usize, k: usize| {
                let at = (sy * 4 + k % 4) * run + k / 4;
                &phases[at..at + tw]
            };
            // Bᵀ down each patch column k: cols[a·6 + k][j].
            for k in 0..6 {
                let d: [&[f32]; 6] = std::array::from_fn(|sy| patch(sy, k));
                lanes(d, &mut cols, k, 6, bt6);
            }
            // …then along each row a: out[a·6 + b][j].
            for a in 0..6 {
                let d: [&[f32]; 6] = std::array::from_fn(|k| &cols[(a * 6 + k) * tw..][..tw]);
                lanes(d, &mut out, 6 * a, 1, bt6);
            }
            for (e, vals) in out.chunks_exact(tw).enumerate() {
                dst[e * tiles + r * tw..][..tw].copy_from_slice(vals);
            }
        }
    }

    /// `Aᵀ M A + bias` for every tile, from the `(36, C_out, T)` products, into `out` (one image).
    fn output_transform(&self, m: &[f32], bias: &[f32], out: &mut [f32], i0: usize, rows: usize) {
        let tw = self.tw;
        let tiles = rows * tw;
        let plane = self.h * self.w;
        let stride = self.c_out * tiles;
        for_each_chunk(out, plane, |o, dst| {
            super::simd::dispatch!({
                let mut cols = vec![0f32; 24 * tw];
                let mut blk = vec![0f32; 16 * tw];
                for r in 0..rows {
                    let at = |e: usize| &m[e * stride + o * tiles + r * tw..][..tw];
                    // Aᵀ along each row a of M: cols[a·4 + q][j].
                    for a in 0..6 {
                        let d: [&[f32]; 6] = std::array::from_fn(|b| at(a * 6 + b));
                        lanes(d, &mut cols, 4 * a, 1, at4);
                    }
                    // …then down each column q: blk[p·4 + q][j].
                    for q in 0..4 {
                        let d: [&[f32]; 6] =
                            std::array::from_fn(|a| &cols[(a * 4 + q) * tw..][..tw]);
                        lanes(d, &mut blk, q, 4, at4);
                    }
                    for p in 0..4 {
                        let y = 4 * (i0 + r) + p;
                        if y >= self.h {
                            break;
                        }
                        let line = &mut dst[y * self.w..(y + 1) * self.w];
                        for (x, px) in line.iter_mut().enumerate() {
                            *px = blk[(p * 4 + x % 4) * tw + x / 4] + bias[o];
                        }
                    }
                }
            })
        });
    }
}

/// `f` applied lane by lane to six input rows of `n` values; output `i` goes to row
/// `first + i·step` of `out` (rows of `n`).
#[inline(always)]
fn lanes<const N: usize>(
    d: [&[f32]; 6],
    out: &mut [f32],
    first: usize,
    step: usize,
    f: fn([f32; 6]) -> [f32; N],
) {
    let n = d[0].len();
    let rows: Vec<&mut [f32]> = out
        .chunks_exact_mut(n)
        .skip(first)
        .step_by(step)
        .take(N)
        .collect();
    let Ok(mut rows) = <[&mut [f32]; N]>::try_from(rows) else {
        panic!("transform rows out of range");
    };
    let d = d.map(|r| &r[..n]);
    for j in 0..n {
        let v = f(std::array::from_fn(|s| d[s][j]));
        for (row, val) in rows.iter_mut().zip(v) {
            row[j] = val;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    /// Unit-variance outputs: F(4×4, 3×3) rounds about 16× more than a direct f32 sum (5e-5 against
    /// 3e-6 at 128 channels); whole-model agreement is checked by tests/parity.rs.
    const TOLERANCE: f64 = 1e-4;

    /// Direct 3×3 convolution with zero padding, accumulated in f64.
    fn reference(
        x: &[f32],
        wt: &[f32],
        b: &[f32],
        dims: (usize, usize, usize, usize, usize),
    ) -> Vec<f64> {
        let (n, ci, co, h, w) = dims;
        let mut out = vec![0f64; n * co * h * w];
        for img in 0..n {
            for o in 0..co {
                for y in 0..h {
                    for xx in 0..w {
                        let mut s = b[o] as f64;
                        for c in 0..ci {
                            for ky in 0..3 {
                                for kx in 0..3 {
                                    let (yy, xi) = (
                                        y as isize + ky as isize - 1,
                                        xx as isize + kx as isize - 1,
                                    );
                                    if yy < 0 || xi < 0 || yy >= h as isize || xi >= w as isize {
                                        continue;
                                    }
                                    let xv =
                                        x[((img * ci + c) * h + yy as usize) * w + xi as usize];
                                    s += xv as f64 * wt[((o * ci + c) * 3 + ky) * 3 + kx] as f64;
                                }
                            }
                        }
                        out[((img * co + o) * h + y) * w + xx] = s;
                    }
                }
            }
        }
        out
    }

    fn check(n: usize, ci: usize, co: usize, h: usize, w: usize) -> Result<()> {
        let dev = Device::Cpu;
        let x = Tensor::randn(0f32, 1f32, (n, ci, h, w), &dev)?;
        let wt = (Tensor::randn(0f32, 1f32, (co, ci, 3, 3), &dev)? / (9.0 * ci as f64).sqrt())?;
        let b = Tensor::randn(0f32, 1f32, co, &dev)?;
        let got = conv3x3(&x, &wt, Some(&b))?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let want = reference(
            &x.flatten_all()?.to_vec1()?,
            &wt.flatten_all()?.to_vec1()?,
            &b.to_vec1()?,
            (n, ci, co, h, w),
        );
        let worst = got
            .iter()
            .zip(&want)
            .map(|(&g, &r)| (g as f64 - r).abs())
            .fold(0.0, f64::max);
        assert!(
            worst < TOLERANCE,
            "{n}×{ci}→{co} at {h}×{w}: max error {worst}"
        );
        Ok(())
    }

    #[test]
    fn matches_a_direct_convolution() -> Result<()> {
        // Sizes that are and are not multiples of the 4×4 output block, one image and two.
        check(1, 3, 5, 8, 8)?;
        check(2, 7, 4, 9, 13)?;
        check(1, 16, 16, 1, 1)?;
        check(1, 5, 3, 6, 2)?;
        check(1, 64, 32, 21, 19)
    }

    #[test]
    fn bands_of_a_large_image_join_seamlessly() -> Result<()> {
        // 128 channels at 260×260: more transformed tiles than one band holds.
        let dev = Device::Cpu;
        let (ci, co, s) = (128, 24, 260usize);
        assert!(36 * ci * s.div_ceil(4) * s.div_ceil(4) > BAND_VALUES);
        let x = Tensor::randn(0f32, 1f32, (1, ci, s, s), &dev)?;
        let wt = (Tensor::randn(0f32, 1f32, (co, ci, 3, 3), &dev)? / (9.0 * ci as f64).sqrt())?;
        let got = conv3x3(&x, &wt, None)?;
        let want = x
            .to_dtype(DType::F64)?
            .conv2d(&wt.to_dtype(DType::F64)?, 1, 1, 1, 1)?;
        let err = |y: Tensor| -> Result<f64> {
            (y.to_dtype(DType::F64)? - &want)?
                .abs()?
                .max_all()?
                .to_scalar::<f64>()
        };
        let (d, direct) = (err(got)?, err(x.conv2d(&wt, 1, 1, 1, 1)?)?);
        assert!(
            d < TOLERANCE && direct < TOLERANCE,
            "max error {d} (candle's direct kernel: {direct})"
        );
        Ok(())
    }
}
