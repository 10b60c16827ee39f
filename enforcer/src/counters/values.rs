//! One value per counter: a group's totals ([`Counts`]) and its rates
//! ([`PerSec`]), indexed by [`Counter`].

use std::ops::{Index, IndexMut};

use super::{COUNTERS, Counter, CounterDef};
use crate::bpf::GroupCounters;

/// Every counter's total.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts([u64; Counter::COUNT]);

impl Default for Counts {
    fn default() -> Self {
        Counts([0; Counter::COUNT])
    }
}

impl Index<Counter> for Counts {
    type Output = u64;
    fn index(&self, c: Counter) -> &u64 {
        &self.0[c as usize]
    }
}

impl IndexMut<Counter> for Counts {
    fn index_mut(&mut self, c: Counter) -> &mut u64 {
        &mut self.0[c as usize]
    }
}

impl Counts {
    /// Every counter's value in a group's kernel counters.
    pub fn read(c: &GroupCounters) -> Counts {
        Counts(std::array::from_fn(|i| (COUNTERS[i].read)(c)))
    }

    /// Adds a folded descendant's counts. Saturating: a sum of totals that
    /// only grow must not wrap to a smaller one.
    pub fn add(&mut self, other: &Counts) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a = a.saturating_add(b);
        }
    }

    /// Each counter with its value, in table order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static CounterDef, u64)> + '_ {
        COUNTERS.iter().zip(self.0.iter().copied())
    }

    /// Per second from `before` to these over `secs`. A counter that went
    /// down (its group's map entry was deleted and made again) reads 0.
    pub fn per_sec(&self, before: &Counts, secs: f64) -> PerSec {
        PerSec(std::array::from_fn(|i| {
            self.0[i].saturating_sub(before.0[i]) as f64 / secs
        }))
    }
}

/// Every counter's rate over the last interval, per second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PerSec([f64; Counter::COUNT]);

impl Default for PerSec {
    fn default() -> Self {
        PerSec([0.0; Counter::COUNT])
    }
}

impl Index<Counter> for PerSec {
    type Output = f64;
    fn index(&self, c: Counter) -> &f64 {
        &self.0[c as usize]
    }
}

impl IndexMut<Counter> for PerSec {
    fn index_mut(&mut self, c: Counter) -> &mut f64 {
        &mut self.0[c as usize]
    }
}

impl PerSec {
    pub fn add(&mut self, other: &PerSec) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a += b;
        }
    }
}
