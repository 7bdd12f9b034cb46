//! PNG sample sheets.

use crate::fsutil::write_atomic;
use anyhow::Result;
use image::{ImageFormat, Rgb, RgbImage};
use std::io::Cursor;
use std::path::Path;
use tch::{Kind, Tensor};

/// Lays out `[N, C, H, W]` images in [-1, 1] (C = 1 or 3) as an RGB grid `cols` wide with a
/// 2-pixel border.
pub fn image_grid(images: &Tensor, cols: u32) -> RgbImage {
    let s = images.size();
    let (n, c, h, w) = (s[0] as u32, s[1], s[2] as u32, s[3] as u32);
    let rgb = if c == 1 {
        images.expand([-1, 3, -1, -1], false)
    } else {
        images.shallow_clone()
    };
    let bytes = Vec::<u8>::try_from(
        ((rgb.to_device(tch::Device::Cpu).clamp(-1.0, 1.0) + 1.0) * 127.5)
            .round()
            .to_kind(Kind::Uint8)
            .permute([0, 2, 3, 1])
            .contiguous()
            .flatten(0, -1),
    )
    .expect("images convert to bytes");
    let cols = cols.min(n).max(1);
    let rows = n.div_ceil(cols);
    let pad = 2;
    let mut img = RgbImage::from_pixel(
        cols * (w + pad) + pad,
        rows * (h + pad) + pad,
        Rgb([128, 128, 128]),
    );
    for i in 0..n {
        let (r, cl) = (i / cols, i % cols);
        for y in 0..h {
            for x in 0..w {
                let o = (((i * h + y) * w + x) * 3) as usize;
                img.put_pixel(
                    pad + cl * (w + pad) + x,
                    pad + r * (h + pad) + y,
                    Rgb([bytes[o], bytes[o + 1], bytes[o + 2]]),
                );
            }
        }
    }
    img
}

pub fn save_rgb_png(img: &RgbImage, path: &Path) -> Result<()> {
    let mut buf = Cursor::new(vec![]);
    img.write_to(&mut buf, ImageFormat::Png)?;
    write_atomic(path, buf.get_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_grid_places_images_with_borders() {
        // Two 1x2 RGB images: image 0 = (black, white) in every channel, image 1 red.
        let mut v = vec![-1.0f32, 1.0, -1.0, 1.0, -1.0, 1.0];
        v.extend([1.0f32, 1.0, -1.0, -1.0, -1.0, -1.0]);
        let t = Tensor::from_slice(&v).view([2, 3, 1, 2]);
        let g = image_grid(&t, 2);
        assert_eq!(g.dimensions(), (2 * (2 + 2) + 2, 1 + 4));
        assert_eq!(g.get_pixel(2, 2).0, [0, 0, 0]);
        assert_eq!(g.get_pixel(3, 2).0, [255, 255, 255]);
        assert_eq!(g.get_pixel(6, 2).0, [255, 0, 0]);
        assert_eq!(g.get_pixel(0, 0).0, [128, 128, 128]);
    }
}
