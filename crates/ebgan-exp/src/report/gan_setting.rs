//! A GAN run's optimiser setting, the split of Table 1's GAN runs that Figure 3 draws: one type
//! and one order for every figure and table that splits them.

use crate::config::RunConfig;
use ebgan_core::OptimKind;
use std::cmp::Ordering;
use std::fmt;

/// (lr, optimD, optimG) of one run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GanSetting {
    pub lr: f64,
    pub optim_d: OptimKind,
    pub optim_g: OptimKind,
}

fn name(k: OptimKind) -> &'static str {
    match k {
        OptimKind::Adam => "adam",
        OptimKind::Sgd => "sgd",
    }
}

impl GanSetting {
    pub fn of(c: &RunConfig) -> Self {
        GanSetting {
            lr: c.lr,
            optim_d: c.optim_d,
            optim_g: c.optim_g,
        }
    }

    /// The order of every split: lr descending (Table 1's 0.01, 0.001, 0.0001), then optimD,
    /// then optimG, Adam before SGD.
    pub fn order(&self, other: &Self) -> Ordering {
        other
            .lr
            .total_cmp(&self.lr)
            .then(name(self.optim_d).cmp(name(other.optim_d)))
            .then(name(self.optim_g).cmp(name(other.optim_g)))
    }

    /// The distinct settings of `configs`, in [`GanSetting::order`].
    pub fn distinct<'a>(configs: impl Iterator<Item = &'a RunConfig>) -> Vec<GanSetting> {
        let mut v: Vec<GanSetting> = configs.map(GanSetting::of).collect();
        v.sort_by(GanSetting::order);
        v.dedup();
        v
    }

    pub fn optim_d(&self) -> &'static str {
        name(self.optim_d)
    }

    pub fn optim_g(&self) -> &'static str {
        name(self.optim_g)
    }
}

impl fmt::Display for GanSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "lr {}, optimD {}, optimG {}",
            self.lr,
            name(self.optim_d),
            name(self.optim_g)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_sort_by_lr_descending_then_optimisers() {
        let c = |lr, optim_d, optim_g| RunConfig {
            lr,
            optim_d,
            optim_g,
            ..Default::default()
        };
        let (a, s) = (OptimKind::Adam, OptimKind::Sgd);
        let configs = [c(0.0001, a, a), c(0.01, s, a), c(0.01, a, s), c(0.01, a, s)];
        let got: Vec<String> = GanSetting::distinct(configs.iter())
            .iter()
            .map(|g| g.to_string())
            .collect();
        assert_eq!(
            got,
            [
                "lr 0.01, optimD adam, optimG sgd",
                "lr 0.01, optimD sgd, optimG adam",
                "lr 0.0001, optimD adam, optimG adam"
            ]
        );
    }
}
