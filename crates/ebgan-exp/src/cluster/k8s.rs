//! `ebgan k8s FILE --shards N`: the grid as a Kubernetes Indexed Job, one pod per shard. Each
//! pod runs `ebgan run FILE --shard env/N`, which takes its shard from the pod's
//! `JOB_COMPLETION_INDEX`; Kubernetes schedules and retries, ebgan decides which runs a shard
//! holds and which are done, exactly as under Slurm (docs/cluster.md).

use crate::config::Experiment;
use anyhow::{Context, Result};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// Write a Kubernetes Indexed Job (JSON, which `kubectl apply -f` takes) for FILE's shards.
#[derive(clap::Args)]
pub struct K8sArgs {
    file: PathBuf,
    /// Pods = shards (or `shards` in the file's [slurm] table).
    #[arg(long)]
    shards: Option<usize>,
    /// Pods running at once (default: every shard).
    #[arg(long)]
    parallelism: Option<usize>,
    /// The container image: ebgan-rs built with its torch environment.
    #[arg(long, default_value = "ebgan-rs:latest")]
    image: String,
    /// The repository inside the container (the working directory of every pod).
    #[arg(long, default_value = "/work/ebgan-rs")]
    workdir: String,
    /// A PersistentVolumeClaim mounted at `--workdir`/runs and `--workdir`/data in every
    /// pod: the shared filesystem the shards commit their rows to.
    #[arg(long, default_value = "ebgan-work")]
    claim: String,
    /// GPUs per pod (nvidia.com/gpu; default the [slurm] table's gpus_per_task, else 1).
    #[arg(long)]
    gpus: Option<u32>,
    /// Where to write it (default runs/<experiment>/k8s/indexed-job.json).
    #[arg(long)]
    out: Option<PathBuf>,
    #[arg(long, default_value = crate::results::USER_ROOT)]
    results: PathBuf,
}

/// The Job's settings, resolved.
pub struct Job {
    pub experiment: String,
    /// The experiment file, relative to the repository (the pods' working directory).
    pub file: String,
    pub shards: usize,
    pub parallelism: usize,
    pub image: String,
    pub workdir: String,
    pub claim: String,
    pub gpus: u32,
}

impl K8sArgs {
    pub fn run(&self) -> Result<()> {
        let exp = Experiment::load(&self.file)?;
        let shards = self.shards.or(exp.slurm.shards).ok_or_else(|| {
            anyhow::anyhow!(
                "how many shards? give --shards N or `shards` in the [slurm] table of {}",
                self.file.display()
            )
        })?;
        anyhow::ensure!(shards >= 1, "--shards must be >= 1");
        let parallelism = self.parallelism.unwrap_or(shards);
        anyhow::ensure!(parallelism >= 1, "--parallelism must be >= 1");
        let job = Job {
            experiment: exp.name.clone(),
            file: self.file.display().to_string(),
            shards,
            parallelism,
            image: self.image.clone(),
            workdir: self.workdir.clone(),
            claim: self.claim.clone(),
            gpus: self.gpus.or(exp.slurm.gpus_per_task).unwrap_or(1),
        };
        let out = self.out.clone().unwrap_or_else(|| {
            self.results
                .join(&exp.name)
                .join("k8s")
                .join("indexed-job.json")
        });
        write(&job, &out)?;
        println!(
            "wrote {} ({shards} shards, {parallelism} at once): kubectl apply -f {}",
            out.display(),
            out.display()
        );
        Ok(())
    }
}

/// Kubernetes object names: lowercase alphanumerics and '-', at most 63 characters.
fn object_name(experiment: &str) -> String {
    let name: String = format!("ebgan-{experiment}")
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(63)
        .collect();
    name.trim_end_matches('-').to_string()
}

/// The Indexed Job of `job`.
pub fn manifest(job: &Job) -> Value {
    let mount = |sub: &str| json!({"name": "work", "mountPath": format!("{}/{sub}", job.workdir), "subPath": sub});
    let mut resources = json!({});
    if job.gpus > 0 {
        resources = json!({"limits": {"nvidia.com/gpu": job.gpus}});
    }
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": object_name(&job.experiment), "labels": {"app": "ebgan"}},
        "spec": {
            "completionMode": "Indexed",
            "completions": job.shards,
            "parallelism": job.parallelism,
            // Retried per index: a shard that fails does not fail the others.
            "backoffLimitPerIndex": 3,
            "template": {
                "metadata": {"labels": {"app": "ebgan"}},
                "spec": {
                    "restartPolicy": "Never",
                    // SIGTERM first: `ebgan run` checkpoints what is in flight (exit 3).
                    "terminationGracePeriodSeconds": 300,
                    "containers": [{
                        "name": "ebgan",
                        "image": job.image,
                        "workingDir": job.workdir,
                        "command": [
                            "./scripts/with-torch", "./target/release/ebgan", "run", job.file,
                            "--shard", format!("env/{}", job.shards),
                        ],
                        "resources": resources,
                        "volumeMounts": [mount(crate::results::USER_ROOT), mount("data")],
                    }],
                    "volumes": [{"name": "work", "persistentVolumeClaim": {"claimName": job.claim}}],
                },
            },
        },
    })
}

/// Writes the manifest of `job` to `out` (atomically).
pub fn write(job: &Job, out: &Path) -> Result<()> {
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let text = serde_json::to_string_pretty(&manifest(job))? + "\n";
    crate::fsutil::write_atomic(out, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_is_an_indexed_job_whose_pods_take_their_shard_from_the_index() {
        let job = Job {
            experiment: "grid_mnist.Quick".into(),
            file: "experiments/grid-mnist-quick.toml".into(),
            shards: 8,
            parallelism: 3,
            image: "registry.example/ebgan-rs:1".into(),
            workdir: "/work/ebgan-rs".into(),
            claim: "grid".into(),
            gpus: 1,
        };
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("k8s/job.json");
        write(&job, &out).unwrap();
        // Read back as a client would: the fields Kubernetes needs for an Indexed Job.
        let m: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
        assert_eq!(
            (m["apiVersion"].as_str(), m["kind"].as_str()),
            (Some("batch/v1"), Some("Job"))
        );
        assert_eq!(m["metadata"]["name"], "ebgan-grid-mnist-quick");
        let spec = &m["spec"];
        assert_eq!(spec["completionMode"], "Indexed");
        assert_eq!(
            (spec["completions"].as_u64(), spec["parallelism"].as_u64()),
            (Some(8), Some(3))
        );
        let pod = &spec["template"]["spec"];
        assert_eq!(pod["restartPolicy"], "Never");
        let c = &pod["containers"][0];
        let command: Vec<&str> = c["command"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(
            &command[2..],
            [
                "run",
                "experiments/grid-mnist-quick.toml",
                "--shard",
                "env/8"
            ]
        );
        assert_eq!(c["resources"]["limits"]["nvidia.com/gpu"], 1);
        assert_eq!(
            pod["volumes"][0]["persistentVolumeClaim"]["claimName"],
            "grid"
        );
        let mounts: Vec<&str> = c["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["mountPath"].as_str().unwrap())
            .collect();
        assert_eq!(mounts, ["/work/ebgan-rs/runs", "/work/ebgan-rs/data"]);
        // What each pod runs resolves to its own shard from the index Kubernetes gives it.
        let arg: crate::config::ShardArg = command[5].parse().unwrap();
        for index in 0..8 {
            let shard = arg
                .resolve(|n| (n == "JOB_COMPLETION_INDEX").then(|| index.to_string()))
                .unwrap();
            assert_eq!((shard.index, shard.count), (index, 8));
        }
    }
}
