//! The multi-scale VQVAE of VAR/VARSR: quantizer (codebook + φ), decoder, and (for training) encoder.

pub mod blocks;
pub mod decoder;
pub mod encoder;
pub mod quantizer;
