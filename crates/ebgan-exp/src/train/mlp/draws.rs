//! What a cohort drew, kept for the parity harness: its noise, dropout masks and WGAN-GP's
//! interpolation weights, in draw order, masks widened to every member.

use super::Cohort;
use tch::Tensor;

/// What a cohort drew in its steps since [`Cohort::take_draws`] (the parity harness).
pub struct Draws {
    pub noise: Vec<Tensor>,
    pub masks: Vec<Tensor>,
    pub interpolation: Vec<Tensor>,
}

impl Cohort {
    /// Mask bytes `[M, ...]` of the members with dropout as `[K, ...]`, zeros for the others.
    fn every_members_masks(&self, m: Tensor) -> Tensor {
        let k = self.seeds.len() as i64;
        if m.size()[0] == k {
            return m;
        }
        let rows: Vec<i64> = (0..k).filter(|&i| self.dropout[i as usize]).collect();
        let mut size = m.size();
        size[0] = k;
        let rows = Tensor::from_slice(&rows).to_device(m.device());
        m.new_zeros(size.as_slice(), (m.kind(), m.device()))
            .index_copy(0, &rows, &m)
    }

    /// Keeps every noise and dropout-mask draw from now on (the parity harness).
    pub fn record_draws(&mut self) {
        self.noise.record();
        self.critic.masks.record();
        self.interpolation.record();
    }

    /// Noise, dropout masks and WGAN-GP's interpolation weights drawn since the last call, in
    /// draw order.
    pub fn take_draws(&mut self) -> Draws {
        Draws {
            noise: self.noise.take_recorded(),
            masks: (self.critic.masks.take_recorded().into_iter())
                .map(|m| self.every_members_masks(m))
                .collect(),
            interpolation: self.interpolation.take_recorded(),
        }
    }
}
