//! Margin schedules m(t). Table 1 keeps m = 10; EBGAN-LN (paper §4.2) decays m to 0.

use serde::{Deserialize, Serialize};

/// A margin as a function of the training step.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum MarginSchedule {
    Constant(f64),
    /// `start` until step `from`, then linear to `floor` at step `to`, then `floor`.
    LinearDecay {
        start: f64,
        floor: f64,
        from: u64,
        to: u64,
    },
}

impl MarginSchedule {
    /// Builds a schedule whose decay window is given as fractions of `total_steps`.
    /// Equal `start` and `floor` give a constant.
    pub fn from_fractions(start: f64, floor: f64, from: f64, to: f64, total_steps: u64) -> Self {
        if start == floor {
            return MarginSchedule::Constant(start);
        }
        let at = |f: f64| (f.clamp(0.0, 1.0) * total_steps as f64).round() as u64;
        MarginSchedule::LinearDecay {
            start,
            floor,
            from: at(from),
            to: at(to).max(at(from)),
        }
    }

    pub fn margin_at(&self, step: u64) -> f64 {
        match *self {
            MarginSchedule::Constant(m) => m,
            MarginSchedule::LinearDecay {
                start,
                floor,
                from,
                to,
            } => {
                if step <= from {
                    start
                } else if step >= to {
                    floor
                } else {
                    let f = (step - from) as f64 / (to - from) as f64;
                    start + f * (floor - start)
                }
            }
        }
    }

    pub fn is_constant(&self) -> bool {
        matches!(self, MarginSchedule::Constant(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_margin() {
        let s = MarginSchedule::from_fractions(10.0, 10.0, 0.0, 1.0, 100);
        assert!(s.is_constant());
        assert_eq!(s.margin_at(0), 10.0);
        assert_eq!(s.margin_at(1_000_000), 10.0);
    }

    #[test]
    fn linear_decay_hits_its_end_points() {
        // 1000 steps, hold 8 until step 500, reach 0 at step 900.
        let s = MarginSchedule::from_fractions(8.0, 0.0, 0.5, 0.9, 1000);
        assert_eq!(
            s,
            MarginSchedule::LinearDecay {
                start: 8.0,
                floor: 0.0,
                from: 500,
                to: 900
            }
        );
        assert_eq!(s.margin_at(0), 8.0);
        assert_eq!(s.margin_at(500), 8.0);
        assert_eq!(s.margin_at(700), 4.0);
        assert_eq!(s.margin_at(800), 2.0);
        assert_eq!(s.margin_at(900), 0.0);
        assert_eq!(s.margin_at(999), 0.0);
    }

    #[test]
    fn decay_to_a_floor() {
        let s = MarginSchedule::from_fractions(10.0, 2.0, 0.0, 1.0, 4);
        assert_eq!(s.margin_at(1), 8.0);
        assert_eq!(s.margin_at(4), 2.0);
    }
}
