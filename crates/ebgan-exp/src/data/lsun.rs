//! LSUN: the official LMDB release (`bedroom_train_lmdb/`: keys are image ids, values encoded
//! images, WebP among them) or a folder of images.

use super::source::{list_images_recursive, Source};
use anyhow::{bail, Context, Result};
use lmdb::{Cursor, Environment, EnvironmentFlags, Transaction};
use std::path::Path;

/// The LMDB environment or image folder at `root` (or `root/bedroom_train_lmdb`).
pub fn source(root: &Path) -> Result<Source> {
    for dir in [root.to_path_buf(), root.join("bedroom_train_lmdb")] {
        if dir.join("data.mdb").is_file() {
            return Ok(Source::Lmdb(dir));
        }
    }
    if root.is_dir() {
        let files = list_images_recursive(root)?;
        if !files.is_empty() {
            return Ok(Source::Files(files));
        }
    }
    bail!(
        "no LSUN data at {}: expected LSUN's LMDB release (a folder holding data.mdb, e.g. \
         {}/data.mdb) or a folder of images (jpg, png, webp; subfolders are searched)",
        root.display(),
        root.join("bedroom_train_lmdb").display()
    )
}

fn open(dir: &Path) -> Result<Environment> {
    // Read-only and without the lock file, so a read-only copy of the release works too.
    Environment::new()
        .set_flags(EnvironmentFlags::READ_ONLY | EnvironmentFlags::NO_LOCK)
        .open(dir)
        .with_context(|| format!("cannot open the LMDB database in {}", dir.display()))
}

/// Records in the database.
pub fn entries(dir: &Path) -> Result<usize> {
    Ok(open(dir)?.stat()?.entries())
}

/// Calls `f` with the values of the database in key order, `chunk` at a time.
pub fn for_each_chunk(dir: &Path, chunk: usize, mut f: impl FnMut(Vec<Vec<u8>>)) -> Result<()> {
    let env = open(dir)?;
    let db = env
        .open_db(None)
        .with_context(|| format!("{}: no main database", dir.display()))?;
    let txn = env.begin_ro_txn()?;
    let mut cursor = txn.open_ro_cursor(db)?;
    let mut values = Vec::with_capacity(chunk);
    for item in cursor.iter_start() {
        let (_key, value) =
            item.with_context(|| format!("{}: cannot read a record", dir.display()))?;
        values.push(value.to_vec());
        if values.len() == chunk {
            f(std::mem::replace(&mut values, Vec::with_capacity(chunk)));
        }
    }
    if !values.is_empty() {
        f(values);
    }
    Ok(())
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::data::cache::{build_cache, load_cache, Preprocess};
    use lmdb::{DatabaseFlags, WriteFlags};

    /// An LMDB like LSUN's: ids as keys, encoded images (`format` per record) as values.
    pub fn write_lmdb(dir: &Path, records: &[(&str, Vec<u8>)]) {
        std::fs::create_dir_all(dir).unwrap();
        let env = Environment::new().set_map_size(64 << 20).open(dir).unwrap();
        let db = env.create_db(None, DatabaseFlags::empty()).unwrap();
        let mut txn = env.begin_rw_txn().unwrap();
        for (k, v) in records {
            txn.put(db, k, v, WriteFlags::empty()).unwrap();
        }
        txn.commit().unwrap();
    }

    pub fn encoded(img: &image::RgbImage, format: image::ImageFormat) -> Vec<u8> {
        let mut buf = std::io::Cursor::new(vec![]);
        img.write_to(&mut buf, format).unwrap();
        buf.into_inner()
    }

    #[test]
    fn lmdb_with_webp_and_jpeg_values_to_a_64px_cache() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("bedroom_train_lmdb");
        // 128x96 landscape: left half red, right half green; the centre 96x96 crop keeps both.
        let img = image::RgbImage::from_fn(128, 96, |x, _| {
            image::Rgb(if x < 64 { [255, 0, 0] } else { [0, 255, 0] })
        });
        write_lmdb(
            &dir,
            &[
                ("0001a", encoded(&img, image::ImageFormat::WebP)),
                ("0002b", encoded(&img, image::ImageFormat::Jpeg)),
                ("0003c", b"corrupt record".to_vec()),
            ],
        );
        let src = source(root.path()).unwrap();
        assert!(matches!(&src, Source::Lmdb(d) if d == &dir));
        assert_eq!(entries(&dir).unwrap(), 3);
        let out = root.path().join("lsun.cache");
        let r = build_cache(&src, Preprocess::shorter_side(64), &out).unwrap();
        assert_eq!((r.images, r.skipped), (2, 1));
        let c = load_cache(&out).unwrap();
        assert_eq!((c.images, c.size, c.data.len()), (2, 64, 2 * 64 * 64 * 3));
        for im in c.data.chunks(64 * 64 * 3) {
            let px = |x: usize, y: usize| &im[(y * 64 + x) * 3..(y * 64 + x) * 3 + 3];
            // Left edge red, right edge green (lossy JPEG: loose bounds).
            assert!(px(2, 32)[0] > 200 && px(2, 32)[1] < 60, "{:?}", px(2, 32));
            assert!(
                px(61, 32)[1] > 200 && px(61, 32)[0] < 60,
                "{:?}",
                px(61, 32)
            );
        }
    }

    #[test]
    fn a_missing_lsun_folder_says_what_it_expects() {
        let root = tempfile::tempdir().unwrap();
        let err = match source(&root.path().join("nowhere")) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("no data is an error"),
        };
        assert!(err.contains("data.mdb") && err.contains("nowhere"), "{err}");
    }
}
