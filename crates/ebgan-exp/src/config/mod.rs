//! Experiment files: typed TOML, every default in one place, lists expand as a cartesian product.
//!
//! ```toml
//! name = "grid-mnist"
//! [common]            # applies to every grid below
//! epochs = 25
//! [[grid]]            # any field may be a single value or a list
//! model = "ebgan"
//! size_g = [400, 800]
//! ```
//! Unknown keys and wrong types are errors naming the file, line and key.

mod experiment;
mod grid;
mod kinds;
mod run_config;
pub mod shape;
mod shard;
mod validate;

pub use experiment::{set_max_runs, DatasetSpec, Experiment, Run, SlurmSettings, DEFAULT_MAX_RUNS};
pub use grid::OneOrMany;
pub use kinds::{Dataset, Family, MarginDecay, Model, Network};
pub use run_config::{GridSpec, RunConfig};
pub use shard::{Shard, ShardArg};

/// `ebgan plan`: the runs an experiment file expands to, per family and in total.
#[derive(clap::Args)]
pub struct PlanArgs {
    file: std::path::PathBuf,
    /// List every run.
    #[arg(long)]
    list: bool,
}

impl PlanArgs {
    pub fn run(&self) -> anyhow::Result<()> {
        let exp = Experiment::load(&self.file)?;
        let mut per_family = std::collections::BTreeMap::<&str, usize>::new();
        for r in &exp.runs {
            *per_family.entry(r.config.family().as_str()).or_default() += 1;
            if self.list {
                println!("{}", r.id);
            }
        }
        for (family, n) in &per_family {
            println!("{family}: {n} runs");
        }
        println!("total: {} runs", exp.runs.len());
        if !exp.description.is_empty() {
            println!("({})", exp.description);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ebgan_core::OptimKind;
    use sha2::{Digest, Sha256};

    const TWO_GRIDS: &str = r#"
        name = "t"
        [common]
        epochs = 1
        [[grid]]
        model = "ebgan"
        nLayerG = [2, 3]
        size_g = [400, 800]
        [[grid]]
        model = "gan"
        optim_d = ["adam", "sgd"]
        lr = [0.01, 0.001, 0.0001]
    "#;

    #[test]
    fn lists_expand_as_a_cartesian_product_per_grid() {
        let e = Experiment::parse(TWO_GRIDS, "t.toml").unwrap();
        assert_eq!(e.runs.len(), 4 + 6);
        assert!(e.runs.iter().all(|r| r.config.epochs == 1));
        let gans: Vec<_> = e
            .runs
            .iter()
            .filter(|r| r.config.model == Model::Gan)
            .collect();
        assert_eq!(gans.len(), 6);
        // Later fields vary fastest: lr within optim_d.
        assert_eq!(
            (gans[0].config.optim_d, gans[0].config.lr),
            (OptimKind::Adam, 0.01)
        );
        assert_eq!(
            (gans[1].config.optim_d, gans[1].config.lr),
            (OptimKind::Adam, 0.001)
        );
        assert_eq!(gans[3].config.optim_d, OptimKind::Sgd);
        // Unset fields keep the defaults.
        assert_eq!(gans[0].config.margin, 10.0);
    }

    #[test]
    fn run_ids_are_stable_and_distinct() {
        let a = Experiment::parse(TWO_GRIDS, "t.toml").unwrap();
        let b = Experiment::parse(TWO_GRIDS, "t.toml").unwrap();
        let ids: Vec<_> = a.runs.iter().map(|r| r.id.clone()).collect();
        assert_eq!(ids, b.runs.iter().map(|r| r.id.clone()).collect::<Vec<_>>());
        let unique: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
        assert!(ids[0].starts_with("ebgan-") && ids[9].starts_with("gan-"));
        // Editing the GAN grid leaves the EBGAN runs' ids alone.
        let edited =
            Experiment::parse(&TWO_GRIDS.replace("[0.01, 0.001, 0.0001]", "0.5"), "t.toml")
                .unwrap();
        assert_eq!(
            edited.runs[..4].iter().map(|r| &r.id).collect::<Vec<_>>(),
            ids[..4].iter().collect::<Vec<_>>()
        );
    }

    #[test]
    fn the_canonical_form_lists_only_fields_off_their_defaults() {
        assert_eq!(RunConfig::default().canonical(), "{}");
        let c = RunConfig {
            margin: 5.0,
            model: Model::Gan,
            seed: 3,
            ..Default::default()
        };
        assert_eq!(c.canonical(), r#"{"margin":5.0,"model":"gan","seed":3}"#);
        let hex: String = Sha256::digest(br#"{"margin":5.0,"model":"gan","seed":3}"#)
            .iter()
            .take(5)
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(c.run_id(), format!("gan-{hex}"));
    }

    #[test]
    fn a_huge_grid_is_an_error_before_it_is_expanded() {
        // 1000^4 = 10^12 runs: counted, never allocated.
        let list = format!(
            "[{}]",
            (1..=1000)
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        let text = format!(
            "name = \"huge\"\n[[grid]]\nsize_g = {list}\nsize_d = {list}\nz_dim = {list}\nseed = {list}\n"
        );
        let err = Experiment::parse(&text, "huge.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("huge.toml")
                && err.contains("1000000000000 runs")
                && err.contains("--max-runs"),
            "{err}"
        );
        // Just under the limit plans; one over does not.
        let at = |n: u64| {
            format!(
                "name = \"t\"\n[[grid]]\nseed = [{}]\n",
                (0..n).map(|v| v.to_string()).collect::<Vec<_>>().join(",")
            )
        };
        assert_eq!(Experiment::parse(&at(3), "t.toml").unwrap().runs.len(), 3);
        let err = Experiment::parse_limited(&at(3), "t.toml", 2)
            .unwrap_err()
            .to_string();
        assert!(err.contains("3 runs, over the limit of 2"), "{err}");
    }

    #[test]
    fn names_are_plain_folder_names() {
        for bad in [
            "a\\nb",
            "a\\u0000b",
            "../up",
            ".hidden",
            "a b",
            "{{DATA}}",
            "<x>",
        ] {
            let text = format!("name = \"{bad}\"\n[[grid]]\nmodel = \"ebgan\"\n");
            let err = Experiment::parse(&text, "n.toml").unwrap_err().to_string();
            assert!(
                err.contains("n.toml") && err.contains("plain folder name"),
                "{bad}: {err}"
            );
        }
        let long = format!(
            "name = \"{}\"\n[[grid]]\nmodel = \"ebgan\"\n",
            "a".repeat(300)
        );
        assert!(Experiment::parse(&long, "n.toml").is_err());
        let ok = "name = \"grid-mnist_v2.1\"\n[[grid]]\nmodel = \"ebgan\"\n";
        assert_eq!(
            Experiment::parse(ok, "n.toml").unwrap().name,
            "grid-mnist_v2.1"
        );
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let text = "name = \"t\"\n[[grid]]\nmodel = \"gan\"\nsize_gg = 3\n";
        let err = Experiment::parse(text, "bad.toml").unwrap_err().to_string();
        assert!(err.contains("bad.toml"), "{err}");
        assert!(err.contains("line 4"), "{err}");
        assert!(err.contains("size_gg"), "{err}");
    }

    #[test]
    fn wrong_type_names_line_and_expectation() {
        let text = "name = \"t\"\n[[grid]]\nlr = [0.1, \"fast\"]\n";
        let err = Experiment::parse(text, "bad.toml").unwrap_err().to_string();
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("fast") || err.contains("f64"), "{err}");
        let text = "name = \"t\"\n[[grid]]\nmodel = \"wgan\"\n";
        let err = Experiment::parse(text, "bad.toml").unwrap_err().to_string();
        assert!(err.contains("line 3") && err.contains("wgan"), "{err}");
    }

    #[test]
    fn invalid_values_are_rejected_with_the_grid() {
        let text = "name = \"t\"\n[[grid]]\nn_layer_g = [2, 1]\n";
        let err = Experiment::parse(text, "bad.toml").unwrap_err().to_string();
        assert!(
            err.contains("n_layer_g must be >= 2") && err.contains("bad.toml"),
            "{err}"
        );
    }

    #[test]
    fn non_finite_and_out_of_range_values_are_rejected_with_file_line_key_and_value() {
        for (line, why) in [
            ("lr = inf", "lr must be a finite number"),
            ("margin = inf", "margin must be a finite number"),
            ("pulling_away = nan", "pulling_away must be a finite number"),
            ("lr = [0.001, -inf]", "lr must be a finite number"),
            ("beta1 = 1.5", "beta1 must be in [0, 1)"),
            ("beta2 = -1", "beta2 must be in [0, 1)"),
            ("adam_eps = 0", "adam_eps must be > 0"),
            ("sgd_momentum = -2", "sgd_momentum must be in [0, 1)"),
            ("pulling_away = -1", "pulling_away must be >= 0"),
            ("init_std_g = -1", "init_std_g must be >= 0"),
            ("margin_floor = -5", "margin_floor must be in [0, margin]"),
            (
                "dropoutD = true\ndropout_p = 1.5",
                "dropout_p must be in [0, 1)",
            ),
            (
                "lr_decay_start = 0.5",
                "lr_decay_start is a setting of LN (model = \"ladder\") or EBGAN-LN",
            ),
            (
                "g_lr_decay = true",
                "g_lr_decay is a setting of EBGAN-LN (model = \"ebgan-ln\") only",
            ),
            (
                "g_fresh_noise = false",
                "g_fresh_noise is a setting of EBGAN-LN (model = \"ebgan-ln\") only",
            ),
        ] {
            let text = format!(
                "name = \"t\"\n[common]\nepochs = 1\n[[grid]]\nmodel = \"ebgan\"\n{line}\n"
            );
            let err = Experiment::parse(&text, "bad.toml")
                .unwrap_err()
                .to_string();
            // The offending key is on the last line of the file.
            let (n, last) = (text.lines().count(), text.lines().last().unwrap());
            assert!(
                err.contains(&format!("bad.toml: line {n}: {last}: ")) && err.contains(why),
                "{line}: {err}"
            );
        }
        // BEGAN's and MAGAN's own fields, and the EBGAN fields they do not use.
        for (model, line, why) in [
            ("ebgan-ln", "g_lr = inf", "g_lr must be a finite number"),
            ("ebgan-ln", "g_lr = 0", "g_lr must be > 0"),
            ("ebgan-ln", "g_beta1 = 1.5", "g_beta1 must be in [0, 1)"),
            ("ebgan-ln", "hinge_weight = -1", "hinge_weight must be >= 0"),
            (
                "ebgan-ln",
                "hinge_weight = nan",
                "hinge_weight must be a finite number",
            ),
            (
                "ladder",
                "hinge_weight = 10",
                "hinge_weight is a setting of EBGAN-LN",
            ),
            ("ladder", "validation = 59950", "validation leaves too few"),
            (
                "ladder",
                "lr_decay_start = -3",
                "lr_decay_start must be in [0, 1]",
            ),
            ("ladder", "lambda_0 = -1", "lambda_0 must be >= 0"),
            (
                "ebgan-ln",
                "ladder_noise = -0.1",
                "ladder_noise must be >= 0",
            ),
            ("ladder", "labels = 15", "labels must be a multiple of 10"),
            ("ebgan", "g_lr = 0.001", "g_lr is a setting of EBGAN-LN"),
            ("ebgan", "validation = 10", "validation is a setting of LN"),
            ("ebgan", "labels = 1000", "labels is a setting of LN"),
            ("gan", "lambda_0 = 10", "lambda_0 is a setting of LN"),
            (
                "wgan-gp",
                "combinator = \"sig\"",
                "combinator is a setting of LN",
            ),
            (
                "began",
                "ladder_noise = 0.1",
                "ladder_noise is a setting of LN",
            ),
            (
                "ebgan",
                "began_gamma = 0.7",
                "began_gamma is a setting of BEGAN",
            ),
            (
                "gan",
                "magan_strict = false",
                "magan_strict is a setting of MAGAN",
            ),
            (
                "began",
                "began_gamma = 1.5",
                "began_gamma must be in [0, 1]",
            ),
            ("began", "began_eta = 0", "began_eta must be > 0"),
            (
                "began",
                "began_lambda_k = -0.1",
                "began_lambda_k must be >= 0",
            ),
            (
                "began",
                "margin = 20",
                "model \"began\" sets its own margin",
            ),
            (
                "magan",
                "margin = 20",
                "model \"magan\" sets its own margin",
            ),
            (
                "magan",
                "pulling_away = 0.1",
                "the pulling-away term is EBGAN-PT's",
            ),
            (
                "magan",
                "margin_decay = \"linear\"",
                "leave margin_decay unset",
            ),
            (
                "gan",
                "wgan_lambda = 5",
                "wgan_lambda is a setting of WGAN-GP (model = \"wgan-gp\") only",
            ),
            (
                "wgan-gp",
                "wgan_n_critic = 0",
                "wgan_n_critic must be in [1, 1000]",
            ),
            ("wgan-gp", "wgan_lambda = -1", "wgan_lambda must be >= 0"),
            (
                "wgan-gp",
                "margin = 20",
                "model \"wgan-gp\" has a critic, not an energy with a margin: leave margin unset",
            ),
            (
                "gan",
                "pulling_away = 0.1",
                "pulling_away is a setting of EBGAN (model = \"ebgan\") only",
            ),
            ("ebgan", "epochs = 1844674407370955162", "over 10^12 steps"),
            (
                "magan",
                "magan_pretrain_epochs = 1844674407370955162",
                "of 938 steps each is over 10^12 steps",
            ),
            ("gan", "size_g = 10000000000", "is over 1048576"),
            (
                "ebgan",
                "steps = 2000000000000",
                "steps = 2000000000000 is over 10^12",
            ),
            ("began", "energy = \"mse\"", "set began_eta, not energy"),
            ("magan", "steps = 100", "give epochs, not steps"),
            (
                "magan",
                "magan_pretrain_epochs = 0",
                "magan_pretrain_epochs must be >= 1",
            ),
        ] {
            let text = format!(
                "name = \"t\"\n[common]\nepochs = 1\n[[grid]]\nmodel = \"{model}\"\n{line}\n"
            );
            let err = Experiment::parse(&text, "bad.toml")
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(&format!("bad.toml: line 6: {line}: ")) && err.contains(why),
                "{model} / {line}: {err}"
            );
        }
        // A bad value set in [common] is found there.
        let text = "name = \"t\"\n[common]\nbeta1 = 1.5\n[[grid]]\nmodel = \"gan\"\n";
        let err = Experiment::parse(text, "c.toml").unwrap_err().to_string();
        assert!(err.contains("c.toml: line 3: beta1 = 1.5: "), "{err}");
        // Table 1's alias is named as written.
        let text = "name = \"t\"\n[[grid]]\nnLayerG = [2, 1]\n";
        let err = Experiment::parse(text, "a.toml").unwrap_err().to_string();
        assert!(
            err.contains("a.toml: line 3: nLayerG = [2, 1]: n_layer_g must be >= 2"),
            "{err}"
        );
    }

    #[test]
    fn each_family_owns_the_fields_its_settings_type_holds() {
        use crate::family::{self, began, ladder, Settings};
        let defaults = RunConfig::default().fields();
        let mut owners: std::collections::BTreeMap<String, Vec<Model>> = Default::default();
        for m in Model::ALL {
            let c = RunConfig {
                model: m,
                ..RunConfig::default()
            };
            assert_eq!(c.settings().model(), m);
            for (key, value) in c.settings().flat() {
                assert_eq!(defaults.get(&key), Some(&value), "{m}: {key}");
                owners.entry(key).or_default().push(m);
            }
        }
        let ladders = vec![Model::Ladder, Model::EbganLn];
        let expected: std::collections::BTreeMap<String, Vec<Model>> = [
            ("pulling_away", vec![Model::Ebgan]),
            ("began_eta", vec![Model::Began]),
            ("began_gamma", vec![Model::Began]),
            ("began_lambda_k", vec![Model::Began]),
            ("magan_pretrain_epochs", vec![Model::Magan]),
            ("magan_strict", vec![Model::Magan]),
            ("wgan_lambda", vec![Model::WganGp]),
            ("wgan_n_critic", vec![Model::WganGp]),
            ("labels", ladders.clone()),
            ("lambda_0", ladders.clone()),
            ("combinator", ladders.clone()),
            ("ladder_noise", ladders.clone()),
            ("lr_decay_start", ladders.clone()),
            ("validation", ladders),
            ("g_lr_decay", vec![Model::EbganLn]),
            ("g_fresh_noise", vec![Model::EbganLn]),
            ("g_lr", vec![Model::EbganLn]),
            ("g_beta1", vec![Model::EbganLn]),
            ("hinge_weight", vec![Model::EbganLn]),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        assert_eq!(owners, expected);
        // Values are read by name from the flat fields.
        let c = RunConfig {
            model: Model::Began,
            began_gamma: 0.7,
            ..RunConfig::default()
        };
        let began = began::Settings {
            eta: 1.0,
            gamma: 0.7,
            lambda_k: 0.001,
        };
        assert_eq!(c.settings(), Settings::Began(began));
        let c = RunConfig {
            model: Model::EbganLn,
            labels: 200,
            hinge_weight: Some(4.0),
            ..RunConfig::default()
        };
        let Settings::EbganLn(s, g) = c.settings() else {
            panic!("{:?}", c.settings());
        };
        assert_eq!(
            (s.labels, s.lambda_0, g.hinge_weight),
            (200, 1000.0, Some(4.0))
        );
        assert_eq!(s.combinator, ebgan_models::ladder::Combinator::Gauss);
        let _: ladder::Generator = g;
        assert_eq!(
            RunConfig::default().settings(),
            Settings::Ebgan(family::ebgan::Settings { pulling_away: 0.0 })
        );
    }

    #[test]
    fn a_shape_field_is_refused_on_a_network_that_does_not_read_it() {
        use super::shape::Shape;
        // What each shape holds, written down by hand.
        let defaults = RunConfig::default().fields();
        let held: Vec<Vec<String>> = Shape::all(&defaults)
            .iter()
            .map(|s| {
                let flat = s.flat();
                for (key, value) in &flat {
                    assert_eq!(defaults.get(key), Some(value), "{key}");
                }
                flat.keys().cloned().collect()
            })
            .collect();
        let conv = [
            "ae_base",
            "d_base",
            "g_base",
            "image_size",
            "random_crop",
            "sample_every",
        ];
        let expected: Vec<Vec<&str>> = vec![
            vec![
                "dropout_d",
                "dropout_p",
                "n_layer_d",
                "n_layer_g",
                "size_d",
                "size_g",
            ],
            vec!["n_layer_g", "size_g"],
            conv.to_vec(),
            {
                let mut imagenet = [conv.as_slice(), &["noise_planes"]].concat();
                imagenet.sort();
                imagenet
            },
        ];
        assert_eq!(held, expected);
        // file header, model and network lines, the offending line (the file's last).
        for (header, line, why) in [
            (
                "",
                "image_size = 32",
                "image_size is a setting of network = \"dcgan\" or network = \"imagenet\" only",
            ),
            (
                "",
                "g_base = 32",
                "g_base is a setting of network = \"dcgan\" or",
            ),
            (
                "dataset = \"mnist64\"\n",
                "network = \"dcgan\"\nn_layer_g = 3",
                "n_layer_g is a setting of network = \"mlp\" or EBGAN-LN's G",
            ),
            (
                "dataset = \"mnist64\"\n",
                "network = \"dcgan\"\nnoise_planes = 2",
                "noise_planes is a setting of network = \"imagenet\" only",
            ),
            (
                "dataset = \"mnist64\"\n",
                "network = \"dcgan\"\ndropoutD = true",
                "dropout_d is a setting of network = \"mlp\" only",
            ),
            (
                "",
                "model = \"ebgan-ln\"\nsize_d = 128",
                "size_d is a setting of network = \"mlp\" only",
            ),
        ] {
            let text = format!("name = \"t\"\n{header}[[grid]]\n{line}\n");
            let err = Experiment::parse(&text, "s.toml").unwrap_err().to_string();
            let (n, last) = (text.lines().count(), text.lines().last().unwrap());
            assert!(
                err.contains(&format!("s.toml: line {n}: {last}: ")) && err.contains(why),
                "{line}: {err}"
            );
        }
        // Read where they belong.
        let text =
            "name = \"t\"\ndataset = \"mnist64\"\n[[grid]]\nnetwork = \"dcgan\"\ng_base = 32\n";
        let run = &Experiment::parse(text, "s.toml").unwrap().runs[0].config;
        let Shape::Dcgan(conv) = run.shape() else {
            panic!("{:?}", run.shape());
        };
        assert_eq!((conv.g_base, conv.image_size), (32, 64));
        assert_eq!(run.conv_spec(1).g_base, 32);
    }

    #[test]
    fn every_shipped_experiment_file_parses() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments");
        let mut n = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "toml") {
                let exp = Experiment::load(&p).unwrap_or_else(|e| panic!("{e:#}"));
                assert!(!exp.runs.is_empty(), "{}", p.display());
                n += 1;
            }
        }
        assert!(n >= 12, "{n} experiment files");
        // Figure 9 on CPU: the eight margins of the sweep, one run each.
        let sweep = Experiment::load(&dir.join("margin-sweep-quick.toml")).unwrap();
        let margins: Vec<f64> = sweep.runs.iter().map(|r| r.config.margin).collect();
        assert_eq!(margins, [1.0, 2.0, 4.0, 6.0, 8.0, 12.0, 16.0, 32.0]);
    }

    #[test]
    fn margin_schedule_over_a_runs_real_length() {
        // Image runs count steps from their data set: the decay's end points follow `total`.
        let c = RunConfig {
            margin: 20.0,
            margin_decay: MarginDecay::Linear,
            margin_floor: 0.0,
            margin_decay_start: 0.5,
            margin_decay_end: 1.0,
            ..Default::default()
        };
        let s = c.margin_schedule_over(1000);
        assert_eq!(
            (
                s.margin_at(0),
                s.margin_at(500),
                s.margin_at(750),
                s.margin_at(1000)
            ),
            (20.0, 20.0, 10.0, 0.0)
        );
        let constant = RunConfig {
            margin: 20.0,
            ..Default::default()
        }
        .margin_schedule_over(1000);
        assert_eq!(constant.margin_at(999), 20.0);
    }

    #[test]
    fn image_datasets_need_convolutional_networks_and_say_so() {
        let err = Experiment::parse(
            "name = \"t\"\ndataset = \"celeba\"\n[[grid]]\nmodel = \"ebgan\"\n",
            "c.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("c.toml") && err.contains("network = \"dcgan\""),
            "{err}"
        );
        let err = Experiment::parse("name = \"t\"\n[[grid]]\nnetwork = \"dcgan\"\n", "m.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("mnist64"), "{err}");
        let err = Experiment::parse(
            "name = \"t\"\ndataset = \"lsun\"\n[[grid]]\nnetwork = \"dcgan\"\nimage_size = 48\n",
            "l.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("power of two"), "{err}");
        let err = Experiment::parse(
            "name = \"t\"\ndataset = \"lsun\"\nwnids = \"x.txt\"\n[[grid]]\nnetwork = \"dcgan\"\n",
            "w.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("wnids"), "{err}");
        let err = Experiment::parse("name = \"t\"\ndataset = \"faces\"\n[[grid]]\n", "d.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("d.toml") && err.contains("celeba"), "{err}");
        // Every shipped image experiment parses and plans EBGAN-PT, EBGAN and the DCGAN comparison
        // (CelebA BEGAN and MAGAN too).
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments");
        for f in [
            "celeba",
            "lsun",
            "lsun-augmented",
            "imagenet128",
            "imagenet256",
            "mnist64",
        ] {
            let e = Experiment::load(&dir.join(format!("{f}.toml"))).unwrap();
            let mut fams: Vec<&str> = e.runs.iter().map(|r| r.config.family().as_str()).collect();
            fams.sort();
            // CelebA also lists EBGAN's successors; the 64x64 sets WGAN-GP, ImageNet neither.
            let want: &[&str] = match f {
                "celeba" => &["began", "ebgan", "ebgan-pt", "gan", "magan", "wgan-gp"],
                "imagenet128" | "imagenet256" => &["ebgan", "ebgan-pt", "gan"],
                _ => &["ebgan", "ebgan-pt", "gan", "wgan-gp"],
            };
            assert_eq!(fams, want, "{f}");
            assert!(e.runs.iter().all(|r| r.config.network.is_conv()), "{f}");
        }
    }

    #[test]
    fn shards_are_disjoint_and_cover_the_plan() {
        let e = Experiment::parse(TWO_GRIDS, "t.toml").unwrap();
        let mut all: Vec<String> = (0..3)
            .flat_map(|i| e.shard(Shard { index: i, count: 3 }))
            .map(|r| r.id)
            .collect();
        assert_eq!(all.len(), e.runs.len());
        all.sort();
        all.dedup();
        assert_eq!(all.len(), e.runs.len());
        assert_eq!(
            "1/4".parse::<Shard>().unwrap(),
            Shard { index: 1, count: 4 }
        );
        assert!("4/4".parse::<Shard>().is_err() && "x".parse::<Shard>().is_err());
    }

    #[test]
    fn margin_schedule_from_config() {
        let c = RunConfig {
            margin_decay: MarginDecay::Linear,
            margin: 4.0,
            margin_floor: 0.0,
            margin_decay_start: 0.5,
            margin_decay_end: 1.0,
            epochs: 1,
            train_images: 640,
            batch_size: 64,
            ..Default::default()
        };
        assert_eq!(c.total_steps(), 10);
        let s = c.margin_schedule();
        assert_eq!((s.margin_at(5), s.margin_at(10)), (4.0, 0.0));
    }
}
