//! A variable path: named, member-stacked trainable tensors created in a fixed order.

use crate::rng::{MemberRng, Stream};
use tch::{Device, Kind, Tensor};

pub struct Vars {
    named: Vec<(String, Tensor)>,
    init: MemberRng,
    prefix: String,
}

impl Vars {
    /// Variables for members with the given seeds (each member initialises from its own seed).
    pub fn new(seeds: &[u64], device: Device) -> Self {
        Self::on_stream(seeds, Stream::Init, device)
    }

    /// Variables initialised from stream `stream` of each seed (a second network of a run that
    /// must not start as a copy of the first).
    pub fn on_stream(seeds: &[u64], stream: Stream, device: Device) -> Self {
        Vars {
            named: vec![],
            init: MemberRng::new(seeds, stream, device),
            prefix: String::new(),
        }
    }

    pub fn members(&self) -> i64 {
        self.init.members()
    }

    pub fn device(&self) -> Device {
        self.init.device()
    }

    /// Runs `f` with `name.` prepended to the names it creates.
    pub fn sub<T>(&mut self, name: &str, f: impl FnOnce(&mut Vars) -> T) -> T {
        let saved = self.prefix.clone();
        self.prefix = format!("{saved}{name}.");
        let out = f(self);
        self.prefix = saved;
        out
    }

    /// `[K, shape...]` drawn from N(0, std_k^2) for member k.
    pub fn normal(&mut self, name: &str, shape: &[i64], std: &[f64]) -> Tensor {
        assert_eq!(std.len() as i64, self.members(), "one init std per member");
        let t = self.init.normal(shape, 1.0);
        let std: Vec<f32> = std.iter().map(|&s| s as f32).collect();
        let mut per_member = vec![1i64; shape.len() + 1];
        per_member[0] = -1;
        let t = t * Tensor::from_slice(&std)
            .view(per_member.as_slice())
            .to_device(self.device());
        self.register(name, t)
    }

    /// `[K, shape...]` filled with `value`.
    pub fn constant(&mut self, name: &str, shape: &[i64], value: f64) -> Tensor {
        let mut full = vec![self.members()];
        full.extend_from_slice(shape);
        let t = Tensor::full(full.as_slice(), value, (Kind::Float, self.device()));
        self.register(name, t)
    }

    fn register(&mut self, name: &str, t: Tensor) -> Tensor {
        let t = t.set_requires_grad(true);
        self.named
            .push((format!("{}{name}", self.prefix), t.shallow_clone()));
        t
    }

    /// Every variable created so far, in creation order.
    pub fn named(&self) -> &[(String, Tensor)] {
        &self.named
    }

    pub fn tensors(&self) -> Vec<Tensor> {
        self.named.iter().map(|(_, t)| t.shallow_clone()).collect()
    }

    /// The variables whose names start with `prefix`.
    pub fn tensors_under(&self, prefix: &str) -> Vec<Tensor> {
        self.named
            .iter()
            .filter(|(n, _)| n.starts_with(prefix))
            .map(|(_, t)| t.shallow_clone())
            .collect()
    }

    /// Copies values saved by name (e.g. from a checkpoint) into the variables; every variable
    /// must be present with its exact shape.
    pub fn load(&mut self, saved: &[(String, Tensor)]) -> Result<(), String> {
        let _guard = tch::no_grad_guard();
        for (name, t) in &mut self.named {
            let src = saved
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, s)| s)
                .ok_or_else(|| format!("no tensor `{name}`"))?;
            if src.size() != t.size() {
                return Err(format!(
                    "tensor `{name}` has shape {:?}, expected {:?}",
                    src.size(),
                    t.size()
                ));
            }
            t.copy_(src);
        }
        Ok(())
    }
}
