//! PNG sample sheets.

use crate::fsutil::write_atomic;
use anyhow::Result;
use image::{GrayImage, ImageFormat, Luma};
use std::io::Cursor;
use std::path::Path;
use tch::{Kind, Tensor};

/// Lays out `[N, side*side]` images in [-1, 1] as a grid `cols` wide with a 2-pixel border.
pub fn sample_sheet(images: &Tensor, side: u32, cols: u32) -> GrayImage {
    let n = images.size()[0] as u32;
    let rows = n.div_ceil(cols);
    let pad = 2;
    let bytes = Vec::<u8>::try_from(
        ((images.to_device(tch::Device::Cpu).clamp(-1.0, 1.0) + 1.0) * 127.5)
            .round()
            .to_kind(Kind::Uint8)
            .flatten(0, -1),
    )
    .expect("images convert to bytes");
    let mut img = GrayImage::from_pixel(
        cols * (side + pad) + pad,
        rows * (side + pad) + pad,
        Luma([128]),
    );
    for i in 0..n {
        let (r, c) = (i / cols, i % cols);
        for y in 0..side {
            for x in 0..side {
                let v = bytes[(i * side * side + y * side + x) as usize];
                img.put_pixel(
                    pad + c * (side + pad) + x,
                    pad + r * (side + pad) + y,
                    Luma([v]),
                );
            }
        }
    }
    img
}

pub fn save_png(img: &GrayImage, path: &Path) -> Result<()> {
    let mut buf = Cursor::new(vec![]);
    img.write_to(&mut buf, ImageFormat::Png)?;
    write_atomic(path, buf.get_ref())
}
