//! End to end for the convolutional experiments on tiny datasets generated in the exact on-disk
//! formats: an aligned-CelebA folder with its partition file, an LSUN-style LMDB holding WebP and
//! JPEG values, and an ImageNet class tree with a WordNet id list.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;
use common::{ebgan_env as ebgan, ok, rows};
use ebgan_exp::config::Family;
use ebgan_exp::results::Status;

/// A 178x218 "face": a disc whose colour depends on `i`, on a grey background.
fn face(i: u32) -> image::RgbImage {
    image::RgbImage::from_fn(178, 218, |x, y| {
        let (dx, dy) = (x as i32 - 89, y as i32 - 109);
        if dx * dx + dy * dy < 40 * 40 {
            image::Rgb([(40 * i % 256) as u8, 200, (255 - 30 * i % 256) as u8])
        } else {
            image::Rgb([90, 90, 90])
        }
    })
}

fn encoded(img: &image::RgbImage, format: image::ImageFormat) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(vec![]);
    img.write_to(&mut buf, format).unwrap();
    buf.into_inner()
}

/// The `[common]` table of these experiments: tiny widths and the given run length and
/// sample-grid interval.
fn tiny_common(network: &str, steps: u64, sample_every: u64) -> String {
    format!(
        r#"[common]
network = "{network}"
image_size = 16
g_base = 4
ae_base = 4
d_base = 4
batch_size = 4
lr = 0.0002
init_std_d = 0.02
steps = {steps}
sample_every = {sample_every}
"#
    )
}

/// Every grid of these experiments: EBGAN-PT, EBGAN and the DCGAN comparison, tiny widths.
fn experiment(dir: &Path, head: &str, network: &str, common: &str) -> PathBuf {
    let text = format!(
        r#"{head}
{}{common}

[[grid]]
model = "ebgan"
margin = 20
pulling_away = [0.1, 0.0]

[[grid]]
model = "gan"
"#,
        tiny_common(network, 4, 2)
    );
    let p = dir.join("exp.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// `ebgan run EXP --device cpu` with data and results under `tmp`.
fn run(exp: &Path, tmp: &Path, env: &[(&str, &Path)]) -> Output {
    let (data, results) = (tmp.join("data"), tmp.join("results"));
    ebgan(
        &[
            "run",
            exp.to_str().unwrap(),
            "--device",
            "cpu",
            "--data",
            data.to_str().unwrap(),
            "--results",
            results.to_str().unwrap(),
        ],
        env,
    )
}

fn check_results(root: &Path) {
    let rows = rows(&root.join("runs.csv"));
    assert_eq!(rows.len(), 3, "{rows:?}");
    for family in [Family::EbganPt, Family::Ebgan, Family::Gan] {
        assert!(
            rows.iter()
                .any(|r| r.family == family && r.status == Status::Finished),
            "{family}: {rows:?}"
        );
    }
    for row in &rows {
        let id = &row.run_id;
        for f in [
            "config.toml",
            "losses.csv",
            "result.json",
            "checkpoint.safetensors",
            "samples.png",
            "interpolations.png",
            "curves.png",
            "samples/step-0000002.png",
        ] {
            assert!(root.join(id).join(f).is_file(), "{id}/{f} missing");
        }
    }
    let summary = std::fs::read_to_string(root.join("summary.md")).unwrap();
    assert!(summary.contains("## Convolutional runs"), "{summary}");
    // Step-count runs say so instead of showing the epochs default.
    assert!(summary.contains("| 4 steps |"), "{summary}");
    for f in [
        "samples-side-by-side.png",
        "interpolations-ebgan-pt.png",
        "curves-gan.png",
    ] {
        assert!(root.join(f).is_file(), "{f} missing");
    }
}

/// `<dir>/celeba`: 10 faces (8 in the training partition) and a corrupt JPEG listed as training.
fn celeba_folder(dir: &Path) -> PathBuf {
    let celeba = dir.join("celeba");
    std::fs::create_dir_all(celeba.join("img_align_celeba")).unwrap();
    let mut partition = String::new();
    for i in 1..=10u32 {
        let name = format!("{i:06}.jpg");
        face(i)
            .save(celeba.join("img_align_celeba").join(&name))
            .unwrap();
        partition += &format!("{name} {}\n", if i <= 8 { 0 } else { 2 });
    }
    std::fs::write(
        celeba.join("img_align_celeba/000011.jpg"),
        b"truncated jpeg",
    )
    .unwrap();
    partition += "000011.jpg 0\n";
    std::fs::write(celeba.join("list_eval_partition.txt"), partition).unwrap();
    celeba
}

#[test]
fn celeba_folder_trains_all_three_models_and_resumes_nothing_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let celeba = celeba_folder(tmp.path());
    let exp = experiment(
        tmp.path(),
        "name = \"faces\"\ndataset = \"celeba\"",
        "dcgan",
        "",
    );
    let results = tmp.path().join("results");

    // Missing data: the error says where it looked and how the folder must look.
    let out = run(&exp, tmp.path(), &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("img_align_celeba") && err.contains("EBGAN_CELEBA"),
        "{err}"
    );

    let log = ok(run(&exp, tmp.path(), &[("EBGAN_CELEBA", &celeba)]));
    // 9 training-partition files, one of them unreadable.
    assert!(
        log.contains("cached 8 images") && log.contains("1 unreadable"),
        "{log}"
    );
    check_results(&results.join("faces"));
    let log = ok(run(&exp, tmp.path(), &[("EBGAN_CELEBA", &celeba)]));
    assert!(log.contains("3 already done, 0 to run"), "{log}");

    // Samples and interpolations from a checkpoint.
    let id = rows(&results.join("faces/runs.csv"))[0].run_id.clone();
    let ck = results
        .join("faces")
        .join(&id)
        .join("checkpoint.safetensors");
    let out = tmp.path().join("grid.png");
    let grid = |command: &str, flags: &[&str]| {
        let mut args = vec![
            command,
            ck.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend(["--device", "cpu"]);
        args.extend(flags);
        ok(ebgan(&args, &[]));
        let g = image::open(&out).unwrap();
        (g.width(), g.height())
    };
    assert_eq!(grid("sample", &["--n", "16"]), (4 * 18 + 2, 4 * 18 + 2));
    assert_eq!(
        grid("interpolate", &["--rows", "2", "--steps", "5"]),
        (5 * 18 + 2, 2 * 18 + 2)
    );
    // A truncated checkpoint is an error naming it.
    let bytes = std::fs::read(&ck).unwrap();
    std::fs::write(&ck, &bytes[..100]).unwrap();
    let out = ebgan(
        &[
            "sample",
            ck.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--device",
            "cpu",
        ],
        &[],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && err.contains("truncated")
            && err.contains("checkpoint.safetensors"),
        "{err}"
    );
}

#[test]
fn lsun_lmdb_with_webp_and_jpeg_trains_on_random_crops() {
    let tmp = tempfile::tempdir().unwrap();
    let lmdb_dir = tmp.path().join("bedroom_train_lmdb");
    std::fs::create_dir_all(&lmdb_dir).unwrap();
    let env = lmdb::Environment::new()
        .set_map_size(64 << 20)
        .open(&lmdb_dir)
        .unwrap();
    let db = env.create_db(None, lmdb::DatabaseFlags::empty()).unwrap();
    {
        use lmdb::Transaction;
        let mut txn = env.begin_rw_txn().unwrap();
        for i in 0..8u32 {
            let img =
                image::imageops::resize(&face(i), 120, 90, image::imageops::FilterType::Triangle);
            let format = if i % 2 == 0 {
                image::ImageFormat::WebP
            } else {
                image::ImageFormat::Jpeg
            };
            txn.put(
                db,
                &format!("{:040x}", i),
                &encoded(&img, format),
                lmdb::WriteFlags::empty(),
            )
            .unwrap();
        }
        txn.commit().unwrap();
    }
    drop(env);
    let exp = experiment(
        tmp.path(),
        &format!(
            "name = \"bedrooms\"\ndataset = \"lsun\"\ndata_root = {:?}",
            tmp.path().to_str().unwrap()
        ),
        "dcgan",
        "random_crop = true",
    );
    let results = tmp.path().join("results");
    let log = ok(run(&exp, tmp.path(), &[]));
    // Random 16x16 crops of images cached at 24x24.
    assert!(
        log.contains("cached 8 images") && log.contains("8 images of 24x24x3"),
        "{log}"
    );
    check_results(&results.join("bedrooms"));
}

#[test]
fn imagenet_class_tree_restricted_to_a_wnid_list() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("imagenet");
    for (c, wnid) in ["n02085620", "n02085782", "n01440764"].iter().enumerate() {
        let d = root.join("train").join(wnid);
        std::fs::create_dir_all(&d).unwrap();
        for i in 0..3u32 {
            face(i + 3 * c as u32)
                .save(d.join(format!("{wnid}_{i}.JPEG")))
                .unwrap();
        }
    }
    let wnids = tmp.path().join("dogs.txt");
    std::fs::write(&wnids, "n02085620\nn02085782\n").unwrap();
    let exp = experiment(
        tmp.path(),
        &format!(
            "name = \"dogs\"\ndataset = \"imagenet\"\nwnids = {:?}",
            wnids.to_str().unwrap()
        ),
        "imagenet",
        "noise_planes = 2",
    );
    let results = tmp.path().join("results");
    let log = ok(run(&exp, tmp.path(), &[("EBGAN_IMAGENET", &root)]));
    assert!(log.contains("cached 6 images"), "{log}");
    check_results(&results.join("dogs"));
}

#[test]
fn a_killed_run_resumes_from_its_checkpoint_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let celeba = celeba_folder(tmp.path());
    let exp = tmp.path().join("k.toml");
    std::fs::write(
        &exp,
        format!(
            r#"name = "k"
dataset = "celeba"
{}[[grid]]
model = "ebgan"
margin = 20
pulling_away = 0.1
"#,
            tiny_common("dcgan", 150, 100)
        ),
    )
    .unwrap();
    let env = [("EBGAN_CELEBA", celeba.as_path())];
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    ok(run(&exp, &a, &env));

    // The same run, checkpointing after every step, killed (SIGKILL) as soon as its first
    // checkpoint exists.
    let (data, results) = (b.join("data"), b.join("results"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_ebgan"))
        .args(["run", exp.to_str().unwrap(), "--device", "cpu"])
        .args(["--checkpoint-minutes", "0"])
        .args([
            "--data",
            data.to_str().unwrap(),
            "--results",
            results.to_str().unwrap(),
        ])
        .env("EBGAN_CELEBA", &celeba)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let checkpoint = |root: &Path| -> Option<PathBuf> {
        std::fs::read_dir(root.join("results/k"))
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path().join("checkpoint.safetensors")))
            .find(|p| p.is_file())
    };
    let start = std::time::Instant::now();
    while checkpoint(&b).is_none() {
        assert!(start.elapsed().as_secs() < 120, "no checkpoint appeared");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !results.join("k/runs.csv").exists(),
        "the run finished before it could be killed; the test needs more steps"
    );
    let log = ok(run(&exp, &b, &env));
    assert!(log.contains("resumed at step"), "{log}");

    // Every tensor of the final checkpoints agrees bit for bit.
    let (ca, cb) = (checkpoint(&a).unwrap(), checkpoint(&b).unwrap());
    let (fa, fb) = (std::fs::read(&ca).unwrap(), std::fs::read(&cb).unwrap());
    let (ta, tb) = (
        safetensors::SafeTensors::deserialize(&fa).unwrap(),
        safetensors::SafeTensors::deserialize(&fb).unwrap(),
    );
    let mut names = ta.names();
    names.sort();
    assert!(names.len() > 20, "{names:?}");
    for name in names {
        let (x, y) = (ta.tensor(name).unwrap(), tb.tensor(name).unwrap());
        assert!(
            x.data() == y.data(),
            "{name} differs after the kill and resume"
        );
    }
}
