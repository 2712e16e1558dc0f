//! The VQVAE encoder, used only for training (to be written with the training code).
