//! A grid as a Slurm array job, on a REAL single-node Slurm cluster that this test starts itself
//! (munged, slurmctld, slurmd under a temporary folder; no systemd). CI installs Slurm and must
//! run this test; elsewhere it is skipped, with a message, when Slurm is not installed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::data_dir;

fn have(program: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// The daemons of a one-node cluster; stopped by PID when dropped, also when the test fails.
struct Cluster {
    dir: tempfile::TempDir,
    daemons: Vec<Child>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for d in &mut self.daemons {
            let _ = d.kill();
            let _ = d.wait();
        }
    }
}

impl Cluster {
    fn conf(&self) -> PathBuf {
        self.dir.path().join("slurm.conf")
    }

    fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", self.conf());
        c
    }

    fn start() -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let d = &dir.path().to_path_buf();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap(); // munged refuses a private socket dir
        for sub in ["state", "spool", "munge"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        std::fs::set_permissions(d.join("munge"), std::fs::Permissions::from_mode(0o755)).unwrap();
        let key = d.join("munge/munge.key");
        let mut bytes = vec![0u8; 1024];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (i * 7919 % 251) as u8 ^ (std::process::id() as u8);
        }
        std::fs::write(&key, bytes).unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o400)).unwrap();
        let socket = d.join("munge/munge.socket");
        let mut cluster = Cluster {
            dir,
            daemons: vec![],
        };
        let munged = Command::new("munged")
            .arg("--foreground")
            .arg("--force")
            .arg(format!("--key-file={}", key.display()))
            .arg(format!("--socket={}", socket.display()))
            .arg(format!(
                "--pid-file={}",
                d.join("munge/munged.pid").display()
            ))
            .arg(format!(
                "--log-file={}",
                d.join("munge/munged.log").display()
            ))
            .arg(format!(
                "--seed-file={}",
                d.join("munge/munged.seed").display()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("munged starts");
        cluster.daemons.push(munged);
        wait_for(Duration::from_secs(10), "munged socket", || socket.exists());

        let cpus = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let conf = format!(
            "ClusterName=ebgantest\nSlurmctldHost=localhost\nAuthType=auth/munge\nAuthInfo=socket={sock}\nCredType=cred/munge\n\
             SlurmUser=root\nSlurmdUser=root\nSlurmctldPort=16817\nSlurmdPort=16818\n\
             StateSaveLocation={d}/state\nSlurmdSpoolDir={d}/spool\n\
             SlurmctldPidFile={d}/slurmctld.pid\nSlurmdPidFile={d}/slurmd.pid\n\
             SlurmctldLogFile={d}/slurmctld.log\nSlurmdLogFile={d}/slurmd.log\n\
             ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\nJobAcctGatherType=jobacct_gather/none\n\
             AccountingStorageType=accounting_storage/none\nSelectType=select/cons_tres\nSelectTypeParameters=CR_CPU\n\
             MpiDefault=none\nReturnToService=2\nMailProg=/bin/true\n\
             NodeName=localhost CPUs={cpus} State=UNKNOWN\nPartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP\n",
            sock = socket.display(),
            d = d.display(),
        );
        std::fs::write(cluster.conf(), conf).unwrap();
        let ctld = cluster
            .cmd("slurmctld")
            .args(["-D", "-i"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("slurmctld starts");
        cluster.daemons.push(ctld);
        let slurmd = cluster
            .cmd("slurmd")
            .args(["-D", "-N", "localhost"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("slurmd starts");
        cluster.daemons.push(slurmd);
        wait_for(
            Duration::from_secs(60),
            "the node to be idle in sinfo",
            || {
                cluster
                    .cmd("sinfo")
                    .args(["-h", "-o", "%T"])
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "idle")
                    .unwrap_or(false)
            },
        );
        cluster
    }

    fn ebgan(&self, args: &[&str]) -> Output {
        self.cmd(env!("CARGO_BIN_EXE_ebgan"))
            .args(args)
            .env("EBGAN_DATA", data_dir())
            .output()
            .expect("ebgan runs")
    }

    fn queued(&self, job: &str) -> Vec<(String, String)> {
        let out = self
            .cmd("squeue")
            .args(["--array", "-h", "-o", "%i %T", "-j", job])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(a, b)| (a.into(), b.into()))
            .collect()
    }

    fn wait_job(&self, job: &str, limit: Duration) {
        wait_for(limit, &format!("job {job} to leave the queue"), || {
            self.queued(job).is_empty()
        });
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("slurmctld.log")).unwrap_or_default()
    }
}

fn wait_for(limit: Duration, what: &str, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn ok(out: Output) -> String {
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ebgan failed: {text}");
    text
}

fn job_id(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("submitted job "))
        .expect("a job id")
        .trim()
        .to_string()
}

/// Run ids over every runs*.csv of `root`.
/// Run ids over every runs*.csv of `root`, duplicates kept (a run trained twice shows twice).
fn finished_ids(root: &Path) -> Vec<String> {
    let res = ebgan_exp::results::ResultsDir::new(root.to_path_buf());
    let files = res.csv_files().unwrap();
    common::ids(
        &files
            .iter()
            .flat_map(|f| common::rows(f))
            .collect::<Vec<_>>(),
    )
}

fn planned_ids(c: &Cluster, exp: &Path) -> Vec<String> {
    common::planned_ids(&ok(c.ebgan(&["plan", exp.to_str().unwrap(), "--list"])))
}

fn experiment(dir: &Path, name: &str, epochs: u32) -> PathBuf {
    let p = dir.join(format!("{name}.toml"));
    std::fs::write(
        &p,
        format!(
            "name = \"{name}\"\n[common]\nsize_g = 32\nsize_d = 16\nbatch_size = 32\ntrain_images = 512\nepochs = {epochs}\nscore_samples = 128\n\
             [[grid]]\nmodel = \"ebgan\"\nn_layer_g = [2, 3]\n[[grid]]\nmodel = \"gan\"\nlr = [0.01, 0.001, 0.0001]\noptim_d = [\"adam\", \"sgd\"]\n"
        ),
    )
    .unwrap();
    p
}

#[test]
fn a_grid_runs_as_a_slurm_array_and_resubmits_what_was_cancelled() {
    if !(have("slurmctld") && have("slurmd") && have("munged") && have("sbatch")) {
        assert!(std::env::var_os("CI").is_none(), "CI must run the Slurm test: install slurmctld slurmd slurm-client munge (.ci/run does)");
        eprintln!("SKIPPED: Slurm is not installed here (apt-get install --no-install-recommends slurmctld slurmd slurm-client munge)");
        return;
    }
    let c = Cluster::start();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let classifier = w.join("classifier");
    ok(c.ebgan(&[
        "classifier",
        "--device",
        "cpu",
        "--classifier",
        classifier.to_str().unwrap(),
    ]));
    let results = w.join("results");
    let common = [
        "--results",
        results.to_str().unwrap(),
        "--classifier",
        classifier.to_str().unwrap(),
        "--cpus-per-task",
        "1",
        "--device",
        "cpu",
    ];

    // 1. The whole grid as 4 array tasks: every run exactly once.
    let exp = experiment(w, "sl", 3);
    let start = Instant::now();
    let out = ok(c.ebgan(
        &[
            &["slurm", exp.to_str().unwrap(), "--shards", "4", "--submit"],
            &common[..],
        ]
        .concat(),
    ));
    let job = job_id(&out);
    c.wait_job(&job, Duration::from_secs(300));
    let slurm_wall = start.elapsed().as_secs_f64();
    let root = results.join("sl");
    assert_eq!(
        finished_ids(&root),
        planned_ids(&c, &exp),
        "slurmctld log:\n{}",
        c.log()
    );
    let status = ok(c.ebgan(&["status", root.to_str().unwrap()]));
    assert!(
        status.contains("in 4 shard(s)")
            && status
                .lines()
                .any(|l| l.trim_start().starts_with("all") && l.trim_end().ends_with(" 0")),
        "{status}"
    );
    assert!(
        status.contains("no array task of this experiment is queued or running"),
        "{status}"
    );

    // The same grid with `ebgan run` on this one machine, for comparison.
    let start = Instant::now();
    ok(c.ebgan(&[
        "run",
        exp.to_str().unwrap(),
        "--device",
        "cpu",
        "--no-report",
        "--results",
        w.join("single").to_str().unwrap(),
        "--classifier",
        classifier.to_str().unwrap(),
    ]));
    eprintln!("wall time of the 8-run grid: 4-task Slurm array {slurm_wall:.1} s, one `ebgan run` {:.1} s", start.elapsed().as_secs_f64());

    // 2. Cancel one task mid-run, then --resubmit only the unfinished shards.
    let exp2 = experiment(w, "sl2", 100);
    let out = ok(c.ebgan(
        &[
            &["slurm", exp2.to_str().unwrap(), "--shards", "4", "--submit"],
            &common[..],
        ]
        .concat(),
    ));
    let job2 = job_id(&out);
    let task = format!("{job2}_3");
    wait_for(Duration::from_secs(120), "task 3 to run", || {
        c.queued(&job2)
            .iter()
            .any(|(t, s)| *t == task && s == "RUNNING")
    });
    assert!(c.cmd("scancel").arg(&task).status().unwrap().success());
    c.wait_job(&job2, Duration::from_secs(600));
    let root2 = results.join("sl2");
    let planned = planned_ids(&c, &exp2);
    let partial = finished_ids(&root2);
    assert!(
        partial.len() < planned.len(),
        "the cancelled task finished anyway"
    );
    let status = ok(c.ebgan(&["status", root2.to_str().unwrap()]));
    assert!(
        status
            .lines()
            .any(|l| l.trim_start().starts_with("3/4") && !l.trim_end().ends_with(" 0")),
        "{status}"
    );
    let out = ok(c.ebgan(
        &[
            &["slurm", exp2.to_str().unwrap(), "--resubmit"],
            &common[..],
        ]
        .concat(),
    ));
    assert!(out.contains("(array 3 of 4 shards)"), "{out}");
    let job3 = job_id(&out);
    c.wait_job(&job3, Duration::from_secs(600));
    let done = finished_ids(&root2);
    assert_eq!(
        done, planned,
        "after --resubmit every run is done exactly once"
    );
    assert!(partial.iter().all(|id| done.contains(id)));
    let out = ok(c.ebgan(
        &[
            &["slurm", exp2.to_str().unwrap(), "--resubmit"],
            &common[..],
        ]
        .concat(),
    ));
    assert!(out.contains("nothing to submit"), "{out}");
}
