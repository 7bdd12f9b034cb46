//! `--shard I/N`: every N-th run of a plan, starting at I; or `--shard env` / `env/N`, the
//! index (and count) a cluster's scheduler gives the task: a Slurm array task
//! (`SLURM_ARRAY_TASK_ID` of `SLURM_ARRAY_TASK_COUNT`, so also submitit's jobs) or a Kubernetes
//! Indexed Job (`JOB_COMPLETION_INDEX`, with the count given).

use std::fmt;

/// `I/N`: shard I (0-based) of N.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    #[cfg(test)]
    pub const ALL: Shard = Shard { index: 0, count: 1 };
}

/// `--shard` as given: a shard, or one to read from the scheduler's environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShardArg {
    Given(Shard),
    /// `env` (None: the count from Slurm too) or `env/N`.
    Env(Option<usize>),
}

/// The scheduler variables `--shard env` reads.
pub const SLURM_INDEX: &str = "SLURM_ARRAY_TASK_ID";
pub const SLURM_COUNT: &str = "SLURM_ARRAY_TASK_COUNT";
pub const K8S_INDEX: &str = "JOB_COMPLETION_INDEX";

impl ShardArg {
    /// The shard, reading `env(name)` for `--shard env`: an error names the variable and says
    /// what it expected, never a guess (a wrong shard would train another task's runs).
    pub fn resolve(self, env: impl Fn(&str) -> Option<String>) -> Result<Shard, String> {
        let count = match self {
            ShardArg::Given(shard) => return Ok(shard),
            ShardArg::Env(count) => count,
        };
        let number = |name: &str| -> Result<Option<usize>, String> {
            env(name)
                .map(|v| {
                    v.trim()
                        .parse()
                        .map_err(|_| format!("--shard env: {name}={v:?} is not a number"))
                })
                .transpose()
        };
        let (slurm, k8s) = (number(SLURM_INDEX)?, number(K8S_INDEX)?);
        let (index, source) = match (slurm, k8s) {
            (Some(i), None) => (i, SLURM_INDEX),
            (None, Some(i)) => (i, K8S_INDEX),
            (Some(_), Some(_)) => {
                return Err(format!(
                    "--shard env: both {SLURM_INDEX} and {K8S_INDEX} are set; give --shard I/N"
                ))
            }
            (None, None) => {
                return Err(format!(
                    "--shard env: neither {SLURM_INDEX} (a Slurm array task) nor {K8S_INDEX} (a Kubernetes Indexed Job) is set"
                ))
            }
        };
        let count = match (count, source) {
            (Some(n), _) => n,
            (None, SLURM_INDEX) => number(SLURM_COUNT)?.ok_or_else(|| {
                format!("--shard env: {SLURM_INDEX} is set but {SLURM_COUNT} is not; give --shard env/N")
            })?,
            (None, _) => {
                return Err(format!(
                    "--shard env: {K8S_INDEX} gives the index only; give the count: --shard env/N"
                ))
            }
        };
        match index < count {
            true => Ok(Shard { index, count }),
            false => Err(format!(
                "--shard env: {source}={index} is not below the shard count {count} (array indices run 0..N-1)"
            )),
        }
    }
}

impl std::str::FromStr for ShardArg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "env" => Ok(ShardArg::Env(None)),
            e if e.starts_with("env/") => match e["env/".len()..].trim().parse() {
                Ok(n) if n >= 1 => Ok(ShardArg::Env(Some(n))),
                _ => Err(format!("--shard {s:?}: expected env/N with N >= 1")),
            },
            _ => s.parse().map(ShardArg::Given).map_err(|_| {
                format!("--shard {s:?}: expected I/N with 0 <= I < N (e.g. 0/4), env or env/N")
            }),
        }
    }
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("--shard {s:?}: expected I/N with 0 <= I < N, e.g. 0/4");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(arg: &str, vars: &[(&str, &str)]) -> Result<Shard, String> {
        let arg: ShardArg = arg.parse()?;
        arg.resolve(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn env_shards_come_from_slurm_arrays_and_kubernetes_indexed_jobs() {
        let shard = |index, count| Ok(Shard { index, count });
        let slurm = [(SLURM_INDEX, "3"), (SLURM_COUNT, "8")];
        assert_eq!(resolve("env", &slurm), shard(3, 8));
        assert_eq!(resolve("env/16", &slurm), shard(3, 16));
        assert_eq!(resolve("env/4", &[(K8S_INDEX, "2")]), shard(2, 4));
        assert_eq!(resolve("1/4", &slurm), shard(1, 4), "a given shard wins");
        for (arg, vars, why) in [
            ("env", &[][..], "neither SLURM_ARRAY_TASK_ID"),
            (
                "env",
                &[(K8S_INDEX, "2")][..],
                "give the count: --shard env/N",
            ),
            (
                "env",
                &[(SLURM_INDEX, "2")][..],
                "SLURM_ARRAY_TASK_COUNT is not",
            ),
            (
                "env/4",
                &[(K8S_INDEX, "x")][..],
                "JOB_COMPLETION_INDEX=\"x\" is not a number",
            ),
            (
                "env/4",
                &[(K8S_INDEX, "4")][..],
                "JOB_COMPLETION_INDEX=4 is not below",
            ),
            ("env/4", &[(K8S_INDEX, "1"), (SLURM_INDEX, "1")][..], "both"),
            ("env/0", &[][..], "expected env/N with N >= 1"),
            ("3/2", &[][..], "expected I/N"),
        ] {
            let err = resolve(arg, vars).unwrap_err();
            assert!(err.contains(why), "{arg} {vars:?}: {err}");
        }
    }
}
