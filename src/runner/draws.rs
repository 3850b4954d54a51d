//! Per-operation random draws (uniform, Zipf hot keys, chance) from a client's seeded generator.
//! It draws values into slots; it must not seed generators (the client loop does) or read the
//! clock, so a seed reproduces the same sequence of draws.

use rand::RngExt;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Zipf};

use super::program::{Slots, Vars};
use crate::scenario::{DrawKind, Scenario, Value};

/// Redraws allowed for `distinct_from` before the run is stopped with an error.
const MAX_REDRAWS: usize = 10_000;

#[derive(Debug)]
enum Sampler {
    Uniform(i64, i64),
    Zipf(Zipf<f64>),
    Chance(f64),
}

#[derive(Debug)]
struct Compiled {
    slot: usize,
    sampler: Sampler,
    distinct_from: Option<usize>,
    name: String,
}

/// The scenario's draws, resolved to slots.
#[derive(Debug)]
pub struct Draws(Vec<Compiled>);

impl Draws {
    pub fn new(scenario: &Scenario, slots: &Slots) -> anyhow::Result<Draws> {
        let mut out = Vec::new();
        for d in &scenario.draws {
            let sampler = match d.kind {
                DrawKind::Uniform { low, high } => Sampler::Uniform(low, high),
                DrawKind::Zipf { n, s } => Sampler::Zipf(
                    Zipf::new(n as f64, s).map_err(|e| anyhow::anyhow!("draw.{}: {e}", d.name))?,
                ),
                DrawKind::Chance { p } => Sampler::Chance(p),
            };
            out.push(Compiled {
                slot: slots.get(&d.name).expect("draws have slots"),
                sampler,
                distinct_from: d.distinct_from.as_ref().and_then(|n| slots.get(n)),
                name: d.name.clone(),
            });
        }
        Ok(Draws(out))
    }

    /// Draws every variable for one operation.
    pub fn draw(&self, rng: &mut StdRng, vars: &mut Vars) -> anyhow::Result<()> {
        for d in &self.0 {
            let mut tries = 0;
            let v = loop {
                let v = match &d.sampler {
                    Sampler::Uniform(lo, hi) => Value::Int(rng.random_range(*lo..=*hi)),
                    Sampler::Zipf(z) => Value::Int(z.sample(rng) as i64),
                    Sampler::Chance(p) => Value::Boolean(rng.random_bool(*p)),
                };
                let clash = d
                    .distinct_from
                    .is_some_and(|other| vars.values[other].as_ref() == Some(&v));
                if !clash {
                    break v;
                }
                tries += 1;
                if tries > MAX_REDRAWS {
                    anyhow::bail!(
                        "draw.{}: no value distinct from its `distinct_from` after {MAX_REDRAWS} draws",
                        d.name
                    );
                }
            };
            vars.set(d.slot, v);
        }
        Ok(())
    }
}
