//! [`Seeds`]: runs a simulation over a range of seeds, or over the one seed an environment
//! variable asks to replay, and sums what the runs report.
//!
//! A seed fails by returning an error or by panicking (an assert of ours, of raft-rs or of the
//! state machine); either way the failure names the seed and the command that replays it.

use std::any::Any;
use std::fmt::Debug;
use std::ops::{AddAssign, Range};
use std::panic::{self, AssertUnwindSafe};
use std::time::{Duration, Instant};

/// The seeds of one test, and how to replay one of them.
#[derive(Clone, Debug)]
pub struct Seeds {
    /// The environment variable that names a seed to replay alone.
    var: &'static str,
    range: Range<u64>,
    /// The command that runs the test, e.g. `cargo test -p surge-node --test shard_sim <test>`.
    command: String,
}

/// What a run of [`Seeds::run`] did.
#[derive(Debug)]
pub struct Outcome<T> {
    /// How many seeds ran.
    pub seeds: u64,
    /// Only the replayed seed ran: the totals are one seed's, not the suite's.
    pub replayed: bool,
    pub totals: T,
    pub elapsed: Duration,
}

impl<T: Debug> Outcome<T> {
    /// Asserts a lower bound on what the seeds did together (`did`), so that a run which
    /// exercised nothing cannot pass. A replayed seed is judged by its invariants alone.
    pub fn assert_did(&self, did: bool, what: &str) {
        assert!(self.replayed || did, "{what}: {:#?}", self.totals);
    }
}

impl Seeds {
    pub fn new(var: &'static str, range: Range<u64>, command: impl Into<String>) -> Seeds {
        Seeds {
            var,
            range,
            command: command.into(),
        }
    }

    /// The seed the environment asks to replay, if any.
    pub fn replayed(&self) -> Option<u64> {
        let raw = std::env::var(self.var).ok()?;
        let seed = raw
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{} must be an unsigned integer, got {raw:?}", self.var));
        Some(seed)
    }

    /// Runs every seed (or the replayed one) and sums their reports into `T`; prints the
    /// totals under `label`. Panics at the first failing seed, naming it.
    pub fn run<R, T>(
        &self,
        label: &str,
        mut run: impl FnMut(u64) -> Result<R, String>,
    ) -> Outcome<T>
    where
        T: Default + AddAssign<R> + Debug,
    {
        let started = Instant::now();
        let replayed = self.replayed();
        let seeds: Vec<u64> = replayed.map_or_else(|| self.range.clone().collect(), |s| vec![s]);
        let mut totals = T::default();
        for &seed in &seeds {
            totals += self.check(seed, &mut run);
        }
        let elapsed = started.elapsed();
        println!(
            "{label}: {} seeds in {elapsed:.1?}, totals {totals:#?}",
            seeds.len()
        );
        Outcome {
            seeds: seeds.len() as u64,
            replayed: replayed.is_some(),
            totals,
            elapsed,
        }
    }

    /// Runs one seed; a failure panics with the seed and how to replay it.
    pub fn check<R>(&self, seed: u64, run: impl FnOnce(u64) -> Result<R, String>) -> R {
        let failure = match panic::catch_unwind(AssertUnwindSafe(|| run(seed))) {
            Ok(Ok(report)) => return report,
            Ok(Err(violation)) => violation,
            Err(payload) => format!("panicked: {}", panic_message(payload.as_ref())),
        };
        panic!(
            "seed {seed} failed: {failure}\nreplay: {}={seed} {} -- --nocapture",
            self.var, self.command
        )
    }
}

/// The text a panic carried, if it was a string.
fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default)]
    struct Sum(u64);

    impl AddAssign<u64> for Sum {
        fn add_assign(&mut self, n: u64) {
            self.0 += n;
        }
    }

    #[test]
    fn the_totals_sum_every_seed() {
        let seeds = Seeds::new("SURGE_SIM_SELF_TEST_SEED", 0..5, "cargo test");
        let outcome: Outcome<Sum> = seeds.run("self test", |seed| Ok(seed * 10));
        assert_eq!(
            (outcome.seeds, outcome.replayed, outcome.totals.0),
            (5, false, 100)
        );
    }

    #[test]
    fn a_failure_names_its_seed_and_the_replay() {
        let seeds = Seeds::new("SURGE_SIM_SELF_TEST_SEED", 0..5, "cargo test -p x t");
        let errs = panic::catch_unwind(|| seeds.check(3, |_| Err::<(), _>("broken".into())));
        let text = panic_message(errs.expect_err("fails").as_ref());
        assert!(text.contains("seed 3 failed: broken"), "{text}");
        assert!(
            text.contains("SURGE_SIM_SELF_TEST_SEED=3 cargo test -p x t"),
            "{text}"
        );
        let panics =
            panic::catch_unwind(|| seeds.check(4, |_| -> Result<(), String> { panic!("boom") }));
        let text = panic_message(panics.expect_err("fails").as_ref());
        assert!(text.contains("seed 4 failed: panicked: boom"), "{text}");
    }
}
