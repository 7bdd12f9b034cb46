//! WebP decoding through libwebp (bundled C source, static): LSUN is WebP, and libwebp's SIMD
//! decoder is about twice as fast as the pure-Rust one in `image`, with the same pixels.

use libwebp_sys as ffi;

/// A RIFF container of WebP (`RIFF....WEBP`).
pub fn is_webp(bytes: &[u8]) -> bool {
    bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP"
}

/// The first (only) frame as RGB, or RGBA when the file has alpha: the colour type `image`
/// would give, so preprocessing sees the same image. None for undecodable or animated data.
pub fn decode(bytes: &[u8]) -> Option<image::DynamicImage> {
    let mut f: ffi::WebPBitstreamFeatures = unsafe { std::mem::zeroed() };
    // SAFETY: reads `bytes` within its length; writes only `f`.
    let status = unsafe { ffi::WebPGetFeatures(bytes.as_ptr(), bytes.len(), &mut f) };
    if status != ffi::VP8StatusCode::VP8_STATUS_OK || f.has_animation != 0 {
        return None;
    }
    let (w, h) = (u32::try_from(f.width).ok()?, u32::try_from(f.height).ok()?);
    let channels = if f.has_alpha != 0 { 4 } else { 3 };
    let stride = w as usize * channels;
    let mut px = vec![0u8; stride * h as usize];
    // SAFETY: libwebp writes at most `px.len()` bytes, `stride` per row, into `px`; it returns
    // null (nothing to free: the memory is ours) when the data is bad or `px` too small.
    let out = unsafe {
        let (data, len, buf) = (bytes.as_ptr(), bytes.len(), px.as_mut_ptr());
        if channels == 4 {
            ffi::WebPDecodeRGBAInto(data, len, buf, px.len(), stride as i32)
        } else {
            ffi::WebPDecodeRGBInto(data, len, buf, px.len(), stride as i32)
        }
    };
    if out.is_null() {
        return None;
    }
    Some(if channels == 4 {
        image::DynamicImage::ImageRgba8(image::RgbaImage::from_raw(w, h, px)?)
    } else {
        image::DynamicImage::ImageRgb8(image::RgbImage::from_raw(w, h, px)?)
    })
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// Lossy WebP from libwebp's encoder (`image` only encodes lossless), `quality` 0..=100.
    pub fn lossy(img: &image::RgbImage, quality: f32) -> Vec<u8> {
        let (w, h) = img.dimensions();
        let mut out = std::ptr::null_mut();
        // SAFETY: `img` holds w*h*3 bytes, rows of w*3; libwebp allocates `out`, freed below.
        unsafe {
            let n = ffi::WebPEncodeRGB(
                img.as_raw().as_ptr(),
                w as i32,
                h as i32,
                (w * 3) as i32,
                quality,
                &mut out,
            );
            assert!(n > 0 && !out.is_null(), "libwebp could not encode {w}x{h}");
            let v = std::slice::from_raw_parts(out, n).to_vec();
            ffi::WebPFree(out.cast());
            v
        }
    }

    /// Lossy WebP with an alpha plane (VP8X + ALPH + VP8).
    fn lossy_rgba(img: &image::RgbaImage, quality: f32) -> Vec<u8> {
        let (w, h) = img.dimensions();
        let mut out = std::ptr::null_mut();
        // SAFETY: as in `lossy`, with 4 bytes a pixel.
        unsafe {
            let n = ffi::WebPEncodeRGBA(
                img.as_raw().as_ptr(),
                w as i32,
                h as i32,
                (w * 4) as i32,
                quality,
                &mut out,
            );
            assert!(n > 0 && !out.is_null());
            let v = std::slice::from_raw_parts(out, n).to_vec();
            ffi::WebPFree(out.cast());
            v
        }
    }

    fn lossless(img: &image::DynamicImage) -> Vec<u8> {
        let mut buf = std::io::Cursor::new(vec![]);
        img.write_to(&mut buf, image::ImageFormat::WebP).unwrap();
        buf.into_inner()
    }

    /// Photo-like content: smooth gradients, edges, and deterministic noise (chroma detail is
    /// what separates upsampling methods, so both channels vary).
    pub fn photo(w: u32, h: u32, seed: u32) -> image::RgbImage {
        image::RgbImage::from_fn(w, h, |x, y| {
            let mut s = (x.wrapping_mul(73856093) ^ y.wrapping_mul(19349663) ^ seed)
                .wrapping_mul(2654435761);
            s ^= s >> 15;
            let n = (s & 31) as i32 - 16;
            let edge = if (x / 7 + y / 11 + seed).is_multiple_of(3) {
                60
            } else {
                0
            };
            let c = |v: i32| (v + n).clamp(0, 255) as u8;
            image::Rgb([
                c((x * 255 / w.max(1)) as i32 + edge),
                c((y * 255 / h.max(1)) as i32),
                c(((x + y) * 3 % 256) as i32 - edge),
            ])
        })
    }

    /// Today's path: `image` (image-webp) with its defaults.
    fn reference(bytes: &[u8]) -> image::DynamicImage {
        image::load_from_memory(bytes).unwrap()
    }

    fn assert_same(bytes: &[u8], what: &str) {
        let want = reference(bytes);
        let got = decode(bytes).unwrap_or_else(|| panic!("libwebp refused {what}"));
        assert_eq!(got.color(), want.color(), "{what}: colour type");
        assert_eq!(
            (got.width(), got.height()),
            (want.width(), want.height()),
            "{what}: size"
        );
        let diff = got
            .as_bytes()
            .iter()
            .zip(want.as_bytes())
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(diff, 0, "{what}: {diff} bytes differ");
        assert_eq!(
            got.to_rgb8().into_raw(),
            want.to_rgb8().into_raw(),
            "{what}"
        );
    }

    const SIZES: [(u32, u32); 8] = [
        (1, 1),
        (2, 3),
        (17, 9),
        (64, 64),
        (101, 77),
        (256, 256),
        (341, 256),
        (255, 383),
    ];

    #[test]
    fn the_riff_webp_header_is_what_routes_to_libwebp() {
        let img = photo(8, 8, 1);
        assert!(is_webp(&lossy(&img, 75.0)));
        assert!(is_webp(&lossless(&img.clone().into())));
        let jpeg = crate::data::lsun::tests::encoded(&img, image::ImageFormat::Jpeg);
        let png = crate::data::lsun::tests::encoded(&img, image::ImageFormat::Png);
        assert!(!is_webp(&jpeg) && !is_webp(&png) && !is_webp(b"RIFF"));
        assert!(!is_webp(b"RIFF\0\0\0\0WAVEfmt "));
    }

    #[test]
    fn lossy_webp_decodes_to_the_same_pixels_as_image_webp() {
        for (i, &(w, h)) in SIZES.iter().enumerate() {
            let img = photo(w, h, i as u32);
            for q in [10.0, 75.0, 95.0] {
                let b = lossy(&img, q);
                assert_eq!(&b[12..16], b"VP8 ", "a lossy bitstream");
                assert_same(&b, &format!("lossy {w}x{h} q{q}"));
            }
        }
    }

    #[test]
    fn lossless_webp_decodes_to_the_same_pixels_as_image_webp() {
        for (i, &(w, h)) in SIZES.iter().enumerate() {
            let img = photo(w, h, 100 + i as u32);
            let b = lossless(&img.clone().into());
            assert_eq!(&b[12..16], b"VP8L", "a lossless bitstream");
            assert_same(&b, &format!("lossless {w}x{h}"));
            let rgba = image::RgbaImage::from_fn(w, h, |x, y| {
                let p = img.get_pixel(x, y).0;
                image::Rgba([p[0], p[1], p[2], ((x * 7 + y * 3) % 256) as u8])
            });
            assert_same(&lossless(&rgba.into()), &format!("lossless RGBA {w}x{h}"));
        }
    }

    #[test]
    fn lossy_webp_with_alpha_decodes_to_the_same_pixels_as_image_webp() {
        for &(w, h) in &SIZES {
            let img = photo(w, h, 7);
            let rgba = image::RgbaImage::from_fn(w, h, |x, y| {
                let p = img.get_pixel(x, y).0;
                image::Rgba([p[0], p[1], p[2], ((x * 5 + y * 11) % 256) as u8])
            });
            assert_same(&lossy_rgba(&rgba, 75.0), &format!("lossy RGBA {w}x{h}"));
        }
    }

    #[test]
    fn bad_webp_is_none_not_a_crash() {
        let full = lossy(&photo(64, 64, 3), 75.0);
        for cut in [0, 11, 12, 30, full.len() / 2, full.len() - 1] {
            assert!(decode(&full[..cut]).is_none(), "cut at {cut}");
        }
        // VP8's start code (9d 01 2a) broken.
        let mut junk = full.clone();
        assert_eq!(&junk[23..26], &[0x9d, 0x01, 0x2a]);
        junk[24] = 0;
        assert!(decode(&junk).is_none());
    }

    /// Decode throughput, single thread, `image` (image-webp) vs libwebp, on LSUN-like 256x256
    /// lossy q75 images: 5 passes, the decoders alternating within each (so load from other
    /// processes hits both alike), medians. Run:
    /// `cargo test --release -p ebgan-exp --lib -- data::webp::tests::decode_throughput --ignored --nocapture`
    #[test]
    #[ignore = "a benchmark: seconds, prints images/s"]
    fn decode_throughput() {
        use crate::data::cache::{preprocess, Preprocess};
        let n = 300;
        let files: Vec<Vec<u8>> = (0..n).map(|i| lossy(&photo(256, 256, i), 75.0)).collect();
        let kb = files.iter().map(Vec::len).sum::<usize>() as f64 / n as f64 / 1024.0;
        let p = Preprocess::shorter_side(64);
        let rate = |f: &dyn Fn(&[u8]) -> usize| {
            let t = std::time::Instant::now();
            std::hint::black_box(files.iter().map(|b| f(b)).sum::<usize>());
            n as f64 / t.elapsed().as_secs_f64()
        };
        let mut runs = vec![vec![]; 4];
        for _ in 0..5 {
            runs[0].push(rate(&|b| reference(b).as_bytes().len()));
            runs[1].push(rate(&|b| decode(b).unwrap().as_bytes().len()));
            runs[2].push(rate(&|b| preprocess(&reference(b), p).len()));
            runs[3].push(rate(&|b| preprocess(&decode(b).unwrap(), p).len()));
        }
        let m: Vec<f64> = runs
            .iter_mut()
            .map(|r| {
                r.sort_by(f64::total_cmp);
                r[2]
            })
            .collect();
        println!("{n} WebP 256x256 lossy q75 ({kb:.1} KiB each), 1 thread, images/s, median of 5:");
        println!(
            "  decode:              image-webp {:6.0}  libwebp {:6.0}  x{:.2}",
            m[0],
            m[1],
            m[1] / m[0]
        );
        println!(
            "  decode + 64px crop:  image-webp {:6.0}  libwebp {:6.0}  x{:.2}",
            m[2],
            m[3],
            m[3] / m[2]
        );
        println!("  all runs: {runs:.0?}");
    }
}
