//! `nat-matrix --seeds N`: every cell (an unordered pair of presets) run as its own
//! 2-member meeting, once per seed, and summed up per cell: how many runs connected, how
//! fast, and how (`via`).
//!
//! Each run is [`run`](super::run) with `presets: vec![a, b]` and the rest of a template
//! [`MeetingSimConfig`]; runs are independent, so [`run_cells`] spreads them over threads
//! and the result does not depend on how many.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use dhtmeet_core::Via;

use super::{MeetingSimConfig, Prediction};
use crate::preset::NatPreset;
use crate::scenario::ScenarioError;

/// One run of a cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CellRun {
    /// The seed of the run.
    pub seed: u64,
    /// The two members connected ([`PairOutcome::connected`](super::PairOutcome)).
    pub connected: bool,
    /// How ([`PairOutcome::via`](super::PairOutcome)).
    pub via: Option<Via>,
    /// The two sides' `PeerConnected` named different `via`s.
    pub via_differs: bool,
    /// Virtual time from the join to the later side's `PeerConnected`.
    pub connect_time: Option<Duration>,
    /// Virtual time from the join to the earlier side's `PeerDiscovered`.
    pub discover_time: Option<Duration>,
}

impl CellRun {
    /// Connect time counted from discovery instead of the join.
    pub fn after_discovery(&self) -> Option<Duration> {
        Some(self.connect_time?.saturating_sub(self.discover_time?))
    }
}

/// Every run of one cell.
#[derive(Clone, Debug, PartialEq)]
pub struct CellSummary {
    /// The first preset (the earlier in [`NatPreset::ALL`]).
    pub a: NatPreset,
    /// The second preset.
    pub b: NatPreset,
    /// The expected outcome ([`MeetingSimConfig::prediction`]).
    pub prediction: Prediction,
    /// The runs, in seed order.
    pub runs: Vec<CellRun>,
}

impl CellSummary {
    /// Runs that connected.
    pub fn connected(&self) -> usize {
        self.runs.iter().filter(|r| r.connected).count()
    }

    /// Runs that connected with `via`.
    pub fn via_count(&self, via: Via) -> usize {
        self.runs.iter().filter(|r| r.via == Some(via)).count()
    }

    /// Runs whose two sides named different `via`s.
    pub fn via_differs(&self) -> usize {
        self.runs.iter().filter(|r| r.via_differs).count()
    }

    /// Connect times of the runs that connected, sorted.
    pub fn connect_times(&self) -> Vec<Duration> {
        sorted(self.runs.iter().filter(|r| r.connected), |r| r.connect_time)
    }

    /// Connect times counted from discovery, of the runs that connected, sorted.
    pub fn times_after_discovery(&self) -> Vec<Duration> {
        sorted(
            self.runs.iter().filter(|r| r.connected),
            CellRun::after_discovery,
        )
    }

    /// Whether every run did what [`CellSummary::prediction`] allows: all connected
    /// ([`Prediction::Connects`]), none ([`Prediction::Fails`]), or either.
    pub fn matches(&self) -> bool {
        self.runs
            .iter()
            .all(|r| self.prediction.allows(r.connected))
    }
}

fn sorted<'a>(
    runs: impl Iterator<Item = &'a CellRun>,
    time: impl Fn(&CellRun) -> Option<Duration>,
) -> Vec<Duration> {
    let mut t: Vec<Duration> = runs.filter_map(time).collect();
    t.sort();
    t
}

/// The median of sorted `times` (the lower of the two middle ones for an even count).
pub fn median(times: &[Duration]) -> Option<Duration> {
    times.get(times.len().checked_sub(1)? / 2).copied()
}

/// The cells between `rows` and `columns`: every unordered pair `{x, y}` with `x` in one
/// and `y` in the other, each once, ordered as [`NatPreset::ALL`] (the earlier preset
/// first).
pub fn cells(rows: &[NatPreset], columns: &[NatPreset]) -> Vec<(NatPreset, NatPreset)> {
    let all = NatPreset::ALL;
    let mut out = Vec::new();
    for (i, &x) in all.iter().enumerate() {
        for &y in &all[i..] {
            let wanted = |p: NatPreset, q: NatPreset| rows.contains(&p) && columns.contains(&q);
            if wanted(x, y) || wanted(y, x) {
                out.push((x, y));
            }
        }
    }
    out
}

/// Runs every cell of `cells` as a 2-member meeting with the settings of `template`
/// (its presets are replaced), once per seed of `seeds`, on `threads` threads (at
/// least one). Returns the cells in the order given; the first error stops the rest.
pub fn run_cells(
    template: &MeetingSimConfig,
    cells: &[(NatPreset, NatPreset)],
    seeds: &[u64],
    threads: usize,
) -> Result<Vec<CellSummary>, ScenarioError> {
    let jobs: Vec<(usize, u64)> = (0..cells.len())
        .flat_map(|c| seeds.iter().map(move |&s| (c, s)))
        .collect();
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<CellRun>>> = Mutex::new(vec![None; jobs.len()]);
    let failure: Mutex<Option<ScenarioError>> = Mutex::new(None);
    let work = || {
        loop {
            let j = next.fetch_add(1, Ordering::Relaxed);
            let Some(&(c, seed)) = jobs.get(j) else { break };
            if lock(&failure).is_some() {
                break;
            }
            let (a, b) = cells[c];
            let config = MeetingSimConfig {
                presets: vec![a, b],
                ..template.clone()
            };
            match super::run(&config, seed, None) {
                Ok(o) => {
                    let p = &o.pairs[0];
                    lock(&results)[j] = Some(CellRun {
                        seed,
                        connected: p.connected,
                        via: p.via,
                        via_differs: p.via_differs(),
                        connect_time: p.connect_time,
                        discover_time: p.discover_time,
                    });
                }
                Err(e) => {
                    lock(&failure).get_or_insert(e);
                }
            }
        }
    };
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(work);
        }
    });
    if let Some(e) = lock(&failure).take() {
        return Err(e);
    }
    let results = lock(&results);
    Ok(cells
        .iter()
        .enumerate()
        .map(|(c, &(a, b))| CellSummary {
            a,
            b,
            prediction: template.prediction(a, b),
            runs: jobs
                .iter()
                .zip(results.iter())
                .filter(|((jc, _), _)| *jc == c)
                .filter_map(|(_, r)| *r)
                .collect(),
        })
        .collect())
}

/// Locks `m`; a worker that panicked mid-run left nothing half-written worth refusing.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unordered_pair_of_presets_once() {
        let all = cells(&NatPreset::ALL, &NatPreset::ALL);
        assert_eq!(all.len(), 45, "36 pairs and 9 with themselves");
        let some = cells(
            &[NatPreset::Symmetric],
            &[NatPreset::Home, NatPreset::Open, NatPreset::Symmetric],
        );
        assert_eq!(
            some,
            [
                (NatPreset::Open, NatPreset::Symmetric),
                (NatPreset::Home, NatPreset::Symmetric),
                (NatPreset::Symmetric, NatPreset::Symmetric),
            ]
        );
        // Rows and columns swapped name the same cells.
        assert_eq!(
            cells(&[NatPreset::Home, NatPreset::Open], &[NatPreset::Symmetric]),
            some[..2]
        );
    }

    #[test]
    fn median_is_the_lower_middle() {
        let s = Duration::from_secs;
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[s(4)]), Some(s(4)));
        assert_eq!(median(&[s(1), s(2)]), Some(s(1)));
        assert_eq!(median(&[s(1), s(2), s(9)]), Some(s(2)));
    }

    #[test]
    fn the_cells_do_not_depend_on_the_threads() {
        let template = MeetingSimConfig::new(Vec::new(), 10);
        let cell = [(NatPreset::Home, NatPreset::FullCone)];
        let one = run_cells(&template, &cell, &[5, 6, 7], 1).expect("runs");
        let three = run_cells(&template, &cell, &[5, 6, 7], 3).expect("runs");
        assert_eq!(one, three);
        assert_eq!(one[0].connected(), 3, "{one:?}");
        assert_eq!(one[0].via_count(Via::Direct), 3, "{one:?}");
        assert_eq!(
            one[0].runs.iter().map(|r| r.seed).collect::<Vec<_>>(),
            [5, 6, 7]
        );
        assert!(one[0].matches());
    }
}
