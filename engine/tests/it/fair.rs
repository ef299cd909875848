//! Fair stalls: the mechanisms against brute force, the LP oracle and fair_oracle.py; equal
//! treatment over lottery draws; the shared run layer (canonical digest, verify, re-offers).

use std::collections::HashMap;
use std::path::Path;

use allot_engine::allocation::{
    self, Allocation, Beacon, Change, Holdings, RunRequest, load, monte_carlo, set_digest,
};
use allot_engine::fair::{
    self, FairFiles, FairInput, FairSolved, Fairs, Mechanism, Params, Precedence,
};
use allot_engine::input::Table;
use allot_engine::log::decision::{AllocationRun, Outcome};
use allot_engine::log::{Decision, Digest, Log, LogOptions, Record, Timestamp};
use allot_solvers::matching::Seed;
use allot_testkit::lp::Allocation as Lp;
use proptest::prelude::*;
use proptest::strategy::ValueTree;

/// Reads fair CSV text.
pub fn read(fairs: &str, applicants: &str) -> FairFiles {
    let fairs = Table::from_bytes("fairs.csv", fairs.as_bytes().to_vec()).unwrap();
    let applicants = Table::from_bytes("applicants.csv", applicants.as_bytes().to_vec()).unwrap();
    fair::read_tables(&fairs, &applicants).unwrap()
}

/// A tiny instance as rows: pools (fair, category, stalls); applicants (category, tier, choices).
#[derive(Debug, Clone)]
struct Tiny {
    pools: Vec<(usize, &'static str, u32)>,
    applicants: Vec<(&'static str, u8, Vec<usize>)>,
    lottery: Vec<u64>,
}

impl Tiny {
    fn csv(&self, with_lottery: bool) -> (String, String) {
        self.csv_without(with_lottery, None)
    }

    /// The CSV text, leaving out applicant `skip`'s row.
    fn csv_without(&self, with_lottery: bool, skip: Option<usize>) -> (String, String) {
        let mut fairs = String::from("fair,district,category,stalls\n");
        for &(f, c, s) in &self.pools {
            fairs += &format!("F{f},D{},{c},{s}\n", f % 2);
        }
        let mut apps = String::from(if with_lottery {
            "applicant,category,tier,lottery,choices\n"
        } else {
            "applicant,category,tier,choices\n"
        });
        for (i, (c, t, ch)) in self.applicants.iter().enumerate() {
            if Some(i) == skip {
                continue;
            }
            let choices: Vec<String> = ch.iter().map(|f| format!("F{f}")).collect();
            let lottery = if with_lottery {
                format!("{},", self.lottery[i])
            } else {
                String::new()
            };
            apps += &format!("A{i},{c},{t},{lottery}{}\n", choices.join(";"));
        }
        (fairs, apps)
    }

    fn files(&self) -> FairFiles {
        let (f, a) = self.csv(true);
        read(&f, &a)
    }

    /// Applicant i's options, as indices into `pools`, best first, and the fair rank of each:
    /// at each listed fair the own-category pool, then the open pool, when they have stalls.
    fn options(&self, i: usize, precedence: Precedence) -> Vec<(usize, u32)> {
        let (cat, _, choices) = &self.applicants[i];
        let mut out = Vec::new();
        for (k, &f) in choices.iter().enumerate() {
            let find = |c: &str| {
                self.pools
                    .iter()
                    .position(|&(pf, pc, s)| pf == f && pc == c && s > 0)
            };
            let (own, open) = (find(cat), find("*"));
            let pair = match precedence {
                Precedence::OwnFirst => [own, open],
                Precedence::OpenFirst => [open, own],
            };
            out.extend(pair.into_iter().flatten().map(|p| (p, k as u32 + 1)));
        }
        out
    }

    fn key(&self, i: usize) -> (u8, u64) {
        (self.applicants[i].1, self.lottery[i])
    }

    /// Every feasible assignment: per applicant an index into its options, or none.
    fn assignments(&self, precedence: Precedence) -> Vec<Vec<Option<usize>>> {
        let opts: Vec<_> = (0..self.applicants.len())
            .map(|i| self.options(i, precedence))
            .collect();
        let mut out = Vec::new();
        let mut load = vec![0u32; self.pools.len()];
        let mut cur = Vec::new();
        fn go(
            t: &Tiny,
            opts: &[Vec<(usize, u32)>],
            load: &mut Vec<u32>,
            cur: &mut Vec<Option<usize>>,
            out: &mut Vec<Vec<Option<usize>>>,
        ) {
            let i = cur.len();
            if i == opts.len() {
                out.push(cur.clone());
                return;
            }
            cur.push(None);
            go(t, opts, load, cur, out);
            cur.pop();
            for (k, &(p, _)) in opts[i].iter().enumerate() {
                if load[p] < t.pools[p].2 {
                    load[p] += 1;
                    cur.push(Some(k));
                    go(t, opts, load, cur, out);
                    cur.pop();
                    load[p] -= 1;
                }
            }
        }
        go(self, &opts, &mut load, &mut cur, &mut out);
        out
    }

    /// Stable: nobody prefers a pool with a free stall or holding somebody of lower priority.
    fn stable(&self, a: &[Option<usize>], precedence: Precedence, out: &[bool]) -> bool {
        let opts: Vec<_> = (0..a.len()).map(|i| self.options(i, precedence)).collect();
        let pool_of = |j: usize| a[j].map(|k| opts[j][k].0);
        (0..a.len()).filter(|&i| !out[i]).all(|i| {
            let better = a[i].unwrap_or(opts[i].len());
            opts[i][..better].iter().all(|&(p, _)| {
                let holders: Vec<usize> = (0..a.len()).filter(|&j| pool_of(j) == Some(p)).collect();
                holders.len() as u32 == self.pools[p].2
                    && holders.iter().all(|&j| self.key(j) < self.key(i))
            })
        })
    }

    /// (fair id, category) per applicant id.
    fn named(
        &self,
        a: &[Option<usize>],
        precedence: Precedence,
    ) -> HashMap<String, Option<(String, String)>> {
        (0..a.len())
            .map(|i| {
                let opts = self.options(i, precedence);
                let place = a[i].map(|k| {
                    let (f, c, _) = self.pools[opts[k].0];
                    (format!("F{f}"), c.to_owned())
                });
                (format!("A{i}"), place)
            })
            .collect()
    }

    /// (placed per tier, sum of rank²) of an assignment.
    fn score(&self, a: &[Option<usize>]) -> ([u64; 3], u64) {
        let mut placed = [0u64; 3];
        let mut rank2 = 0u64;
        for (i, k) in a.iter().enumerate() {
            if let Some(k) = k {
                let rank = self.options(i, Precedence::OwnFirst)[*k].1;
                placed[self.applicants[i].1 as usize] += 1;
                rank2 += u64::from(rank * rank);
            }
        }
        (placed, rank2)
    }
}

/// What the engine gave: (fair id, category) per applicant id.
fn placements(input: &FairInput, solved: &FairSolved) -> HashMap<String, Option<(String, String)>> {
    Fairs::placements(input, solved)
        .iter()
        .map(|p| {
            let place = p
                .place
                .map(|f| (f.to_owned(), p.detail.unwrap_or("").to_owned()));
            (p.participant.to_owned(), place)
        })
        .collect()
}

fn tiny(max_applicants: usize) -> impl Strategy<Value = Tiny> {
    let pools = proptest::collection::vec(
        (
            0usize..3,
            prop::sample::select(vec!["a", "b", "*"]),
            0u32..=2,
        ),
        1..=5,
    )
    .prop_map(|mut rows| {
        rows.sort_by_key(|r| (r.0, r.1));
        rows.dedup_by_key(|r| (r.0, r.1));
        rows
    });
    (pools, 1..=max_applicants).prop_flat_map(|(pools, n)| {
        let fairs: Vec<usize> = {
            let mut f: Vec<usize> = pools.iter().map(|p| p.0).collect();
            f.dedup();
            f
        };
        let applicant = (
            prop::sample::select(vec!["a", "b"]),
            0u8..=2,
            Just(fairs.clone()).prop_shuffle().prop_flat_map(|f| {
                let len = f.len();
                (1..=len).prop_map(move |k| f[..k].to_vec())
            }),
        );
        (
            Just(pools),
            proptest::collection::vec(applicant, n),
            Just((0..n as u64).collect::<Vec<_>>()).prop_shuffle(),
        )
            .prop_map(|(pools, applicants, lottery)| Tiny {
                pools,
                applicants,
                lottery,
            })
    })
}

fn solve(files: &FairFiles, mechanism: Mechanism, precedence: Precedence) -> FairSolved {
    let params = Params {
        mechanism,
        precedence,
    };
    Fairs::solve(&files.input, &params, None).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// DA is stable and equals the applicant-optimal stable matching found by brute force; rsd
    /// is the same matching.
    #[test]
    fn da_is_the_applicant_optimal_stable_matching(t in tiny(5), open_first in any::<bool>()) {
        let precedence = if open_first { Precedence::OpenFirst } else { Precedence::OwnFirst };
        let files = t.files();
        let da = solve(&files, Mechanism::Da, precedence);
        let none = vec![false; t.applicants.len()];
        let stable: Vec<_> = t
            .assignments(precedence)
            .into_iter()
            .filter(|a| t.stable(a, precedence, &none))
            .collect();
        prop_assert!(!stable.is_empty());
        let best: Vec<Option<usize>> = (0..t.applicants.len())
            .map(|i| stable.iter().map(|a| a[i].unwrap_or(usize::MAX)).min().unwrap())
            .map(|k| (k != usize::MAX).then_some(k))
            .collect();
        prop_assert!(stable.contains(&best), "no applicant-optimal stable matching");
        prop_assert_eq!(placements(&files.input, &da), t.named(&best, precedence));
        let rsd = solve(&files, Mechanism::Rsd, precedence);
        prop_assert_eq!(&rsd.position, &da.position);
        prop_assert_eq!(&rsd.cutoffs, &da.cutoffs);
    }

    /// Welfare reaches the brute-force optimum: most placed per tier, then least sum of rank².
    #[test]
    fn welfare_is_the_lexicographic_optimum(t in tiny(5)) {
        let files = t.files();
        let welfare = solve(&files, Mechanism::Welfare, Precedence::OwnFirst);
        let best = t
            .assignments(Precedence::OwnFirst)
            .iter()
            .map(|a| t.score(a))
            .max_by_key(|(placed, rank2)| (*placed, std::cmp::Reverse(*rank2)))
            .unwrap();
        let got = fair::compare(&files.input, &[Mechanism::Welfare], Precedence::OwnFirst, None)
            .unwrap()
            .remove(0)
            .1;
        prop_assert_eq!((got.placed_per_tier, got.rank2_sum), best);
        prop_assert!(welfare.position.iter().flatten().count() as u64 == got.placed());
    }

    /// A withdrawal's vacancy chain leaves no justified envy and no wanted free stall, and gives
    /// what DA gives on the market without the applicant.
    #[test]
    fn withdrawals_keep_the_outcome_stable(t in tiny(6), pick in any::<prop::sample::Index>()) {
        let files = t.files();
        let da = solve(&files, Mechanism::Da, Precedence::OwnFirst);
        let holders: Vec<usize> = (0..t.applicants.len()).filter(|&i| da.position[i].is_some()).collect();
        prop_assume!(!holders.is_empty());
        let out = holders[pick.index(holders.len())];
        let mut state = Holdings::after_run::<Fairs>(&da);
        let id = format!("A{out}");
        let changes = allocation::give_back::<Fairs>(&files.input, &da, &state, &id).unwrap();
        let logged: Vec<_> = changes
            .iter()
            .cloned()
            .enumerate()
            .map(|(index, change)| allocation::LoggedChange { index: index as u64, change })
            .collect();
        state = Holdings::replay::<Fairs>(&files.input, &da, &logged).unwrap();
        let mut gone = vec![false; t.applicants.len()];
        gone[out] = true;
        // The engine's state in the tiny instance's terms.
        let a: Vec<Option<usize>> = (0..t.applicants.len())
            .map(|i| {
                let pool = state.unit_of(&da.market, i as u32)?;
                let name = (files.input.fair_of(pool).to_owned(), files.input.pools[pool as usize].category.clone());
                t.options(i, Precedence::OwnFirst).iter().position(|&(p, _)| {
                    let (f, c, _) = t.pools[p];
                    (format!("F{f}"), c.to_owned()) == name
                })
            })
            .collect();
        prop_assert!(a[out].is_none());
        prop_assert!(t.stable(&a, Precedence::OwnFirst, &gone));
        // DA without the applicant (the files need one applicant at least).
        if t.applicants.len() > 1 {
            let (f, ap) = t.csv_without(true, Some(out));
            let without = read(&f, &ap);
            let da2 = solve(&without, Mechanism::Da, Precedence::OwnFirst);
            let mut expect = placements(&without.input, &da2);
            expect.insert(id.clone(), None);
            prop_assert_eq!(t.named(&a, Precedence::OwnFirst), expect);
        }
    }
}

/// Welfare against the LP oracle on small inputs: the tiers' placed counts maximised one after
/// the other, then the sum of rank² minimised, each as its own 0-1 program.
#[test]
fn welfare_equals_the_lexicographic_lp_oracle() {
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 6,
        rng_algorithm: proptest::test_runner::RngAlgorithm::ChaCha,
        ..ProptestConfig::default()
    });
    let strategy = tiny(12);
    for _ in 0..6 {
        let t = strategy.new_tree(&mut runner).unwrap().current();
        let files = t.files();
        let got = fair::compare(
            &files.input,
            &[Mechanism::Welfare],
            Precedence::OwnFirst,
            None,
        )
        .unwrap()
        .remove(0)
        .1;
        assert_eq!(
            (got.placed_per_tier, got.rank2_sum),
            lp_lexicographic(&t),
            "{t:?}"
        );
    }
}

fn lp_lexicographic(t: &Tiny) -> ([u64; 3], u64) {
    let n = t.applicants.len();
    let opts: Vec<_> = (0..n).map(|i| t.options(i, Precedence::OwnFirst)).collect();
    let mut fixed: Vec<(u8, i64)> = Vec::new();
    let build = |cost: &dyn Fn(usize, u32) -> i64, fixed: &[(u8, i64)]| {
        let mut lp = Lp::new(n, t.pools.iter().map(|p| i64::from(p.2)).collect());
        let mut per_tier = [Vec::new(), Vec::new(), Vec::new()];
        for (i, o) in opts.iter().enumerate() {
            lp.set_unassigned_cost(i, Some(0)).unwrap();
            for &(p, rank) in o {
                let pair = lp.allow(i, p, cost(i, rank));
                per_tier[t.applicants[i].1 as usize].push(pair);
            }
        }
        for &(tier, min) in fixed {
            lp.add_group(per_tier[tier as usize].clone(), Some(min), None);
        }
        lp.solve().unwrap()
    };
    let mut placed = [0u64; 3];
    for tier in 0..3u8 {
        let a = build(
            &|i, _| if t.applicants[i].1 == tier { -1 } else { 0 },
            &fixed,
        );
        placed[tier as usize] = (-a.cost) as u64;
        fixed.push((tier, -a.cost));
    }
    let a = build(&|_, rank| i64::from(rank * rank), &fixed);
    (placed, a.cost as u64)
}

/// Chi-square of win counts against equal shares, df = len - 1.
fn chi_square(wins: &[u64]) -> f64 {
    let total: u64 = wins.iter().sum();
    let expected = total as f64 / wins.len() as f64;
    wins.iter()
        .map(|&w| (w as f64 - expected).powi(2) / expected)
        .sum()
}

/// Over many lottery draws, applicants of the same tier with identical lists win a stall equally
/// often (every mechanism); tier 0 always wins first.
#[test]
fn equal_lists_win_equally_often() {
    // One fair, 3 stalls: two tier-0 applicants, six identical tier-1 applicants for the last
    // stall, two tier-2 applicants who never get one.
    let (f, a) = (
        "fair,district,category,stalls\nF,D,a,2\nF,D,*,1\nG,D,b,1\n",
        "applicant,category,tier,choices\n\
         z0,a,0,F\nz1,a,0,F\n\
         m0,a,1,F\nm1,a,1,F\nm2,a,1,F\nm3,a,1,F\nm4,a,1,F\nm5,a,1,F\n\
         o0,a,2,F\no1,a,2,F\n",
    );
    let files = read(f, a);
    let input = &files.input;
    for mechanism in Mechanism::ALL {
        let params = Params {
            mechanism,
            precedence: Precedence::OwnFirst,
        };
        let draws = monte_carlo::<Fairs, _>(input, &params, &Seed([42; 32]), 600, |input, s| {
            input
                .applicants
                .iter()
                .enumerate()
                .filter(|(i, _)| s.position[*i].is_some())
                .map(|(_, a)| a.id.clone())
                .collect::<Vec<_>>()
        })
        .unwrap();
        let mut wins: HashMap<String, u64> = HashMap::new();
        for placed in &draws {
            assert!(placed.contains(&"z0".to_owned()) && placed.contains(&"z1".to_owned()));
            assert_eq!(placed.len(), 3, "{mechanism:?}: {placed:?}");
            for id in placed {
                *wins.entry(id.clone()).or_default() += 1;
            }
        }
        let middle: Vec<u64> = (0..6)
            .map(|k| wins.get(&format!("m{k}")).copied().unwrap_or(0))
            .collect();
        assert_eq!(middle.iter().sum::<u64>(), 600);
        // df = 5: P(chi² > 20.52) = 0.001 under equal chances.
        let chi = chi_square(&middle);
        assert!(
            chi < 20.52,
            "{mechanism:?}: wins {middle:?}, chi-square {chi:.1}"
        );
    }
}

/// Draws do not depend on the number of threads.
#[test]
fn monte_carlo_is_deterministic_whatever_the_threads() {
    let t = Tiny {
        pools: vec![(0, "a", 2), (0, "*", 1), (1, "b", 2), (2, "*", 1)],
        applicants: (0..12)
            .map(|i| (["a", "b"][i % 2], (i % 3) as u8, vec![i % 3, (i + 1) % 3]))
            .collect(),
        lottery: (0..12).collect(),
    };
    let (f, a) = t.csv(false);
    let files = read(&f, &a);
    let params = Params::default();
    let run = |threads| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| {
                monte_carlo::<Fairs, _>(&files.input, &params, &Seed([1; 32]), 64, |_, s| {
                    s.position.clone()
                })
                .unwrap()
            })
    };
    let one = run(1);
    assert_eq!(one, run(2));
    assert_eq!(one, run(3));
    // And the draws differ from each other (the lottery does vary).
    assert!(one.iter().any(|d| d != &one[0]));
}

/// The canonical application set does not depend on the order of the rows.
#[test]
fn set_digest_ignores_row_order() {
    let f1 = "fair,district,category,stalls\nF1,D,a,2\nF2,D,*,1\nF1,D,*,1\n";
    let f2 = "fair,district,category,stalls\nF1,D,*,1\nF2,D,*,1\nF1,D,a,2\n";
    let a1 = "applicant,category,tier,lottery,choices\nx,a,0,5,F1;F2\ny,a,1,3,F2\n";
    let a2 = "applicant,category,tier,lottery,choices\ny,a,1,3,F2\nx,a,0,5,F1;F2\n";
    let d = |f: &str, a: &str| set_digest::<Fairs>(&read(f, a).input);
    assert_eq!(d(f1, a1), d(f2, a2));
    assert_ne!(d(f1, a1), d(f1, &a1.replace("F1;F2", "F2;F1")));
    let input = read(f1, a1).input;
    assert_eq!(Fairs::decode(&Fairs::encode(&input)).unwrap(), input);
    assert!(Fairs::decode(&Fairs::encode(&input)[..40]).is_err());
}

fn beacon() -> Beacon {
    Beacon {
        source: "test".into(),
        round: 7,
        value: vec![0xbe, 0xac, 0x04],
    }
}

/// Runs the small drawn-lottery instance into `dir`; returns (data folder, run index).
fn run_small(dir: &Path) -> u64 {
    let t = Tiny {
        pools: vec![(0, "a", 1), (0, "*", 1), (1, "b", 1)],
        applicants: vec![
            ("a", 0, vec![0, 1]),
            ("a", 1, vec![0]),
            ("b", 1, vec![0, 1]),
            ("b", 2, vec![1, 0]),
        ],
        lottery: vec![0, 1, 2, 3],
    };
    let (f, a) = t.csv(false);
    let files = read(&f, &a);
    let b = beacon();
    let request = RunRequest {
        log: &Log::open(dir.join("data"), LogOptions::default()).unwrap(),
        beacon: Some(&b),
        actor: "test",
        out: &dir.join("out"),
    };
    let published = fair::run(&files, &Params::default(), &request, &mut |_| {}).unwrap();
    published.info.index
}

#[test]
fn verify_detects_a_changed_input_or_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let index = run_small(dir.path());
    let v = allocation::verify::<Fairs>(&data, &index.to_string()).unwrap();
    assert!(v.ok(), "{:?}", v.checks);
    let failed = |which: &str| -> Vec<&'static str> {
        let v = allocation::verify::<Fairs>(&data, which).unwrap();
        v.checks.iter().filter(|c| !c.ok).map(|c| c.name).collect()
    };

    // Someone with write access logs a run whose outcomes differ from what the input gives.
    let log = Log::open(&data, LogOptions::default()).unwrap();
    let entries: Vec<_> = log
        .entries(0..log.size())
        .unwrap()
        .map(|e| e.unwrap().decode().unwrap())
        .collect();
    let Decision::AllocationRun(run) = entries[index as usize].record.decision.clone() else {
        panic!("entry {index} is not the run");
    };
    let outcomes: Vec<Record> = entries[index as usize - 4..index as usize]
        .iter()
        .map(|e| e.record.clone())
        .collect();
    let forge = |run: &AllocationRun, change: &dyn Fn(&mut Outcome)| -> u64 {
        let mut batch: Vec<Record> = outcomes
            .iter()
            .map(|r| {
                let Decision::Outcome(mut o) = r.decision.clone() else {
                    panic!("not an outcome")
                };
                o.run = run.id();
                Record::new(r.time, "mallory", &r.subject, o)
            })
            .collect();
        if let Decision::Outcome(o) = &mut batch[1].decision {
            change(o);
        }
        batch.push(Record::new(Timestamp::now(), "mallory", "w", run.clone()));
        log.append_batch(&batch).unwrap().end - 1
    };
    let one_changed = forge(&run, &|o| o.assigned = Some("nowhere".into()));
    let mut other_digest = run.clone();
    other_digest.outcome_digest = Digest([9; 32]);
    let digest_changed = forge(&other_digest, &|_| {});
    drop(log);
    assert_eq!(failed(&one_changed.to_string()), ["outcomes"]);
    assert_eq!(failed(&digest_changed.to_string()), ["outcome digest"]);

    // The stored input is changed on disk.
    let hex = hex::encode(run.input_digest.0);
    let blob = data.join("blobs").join(&hex[..2]).join(&hex);
    let mut bytes = std::fs::read(&blob).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&blob, bytes).unwrap();
    let v = allocation::verify::<Fairs>(&data, &index.to_string()).unwrap();
    let input = &v.checks[0];
    assert!(!input.ok && input.detail.contains("hashes to"), "{input:?}");
    assert!(load::<Fairs>(&data, None).is_err());
}

#[test]
fn the_log_holds_commitment_then_seed_then_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let index = run_small(dir.path());
    let log = Log::open_read_only(&data).unwrap();
    let kinds: Vec<&str> = log
        .entries(0..log.size())
        .unwrap()
        .map(|e| e.unwrap().decode().unwrap().record.decision.name())
        .collect();
    assert_eq!(
        kinds,
        [
            "ApplicationsClosed",
            "SeedDrawn",
            "Outcome",
            "Outcome",
            "Outcome",
            "Outcome",
            "AllocationRun"
        ]
    );
    assert_eq!(index, 6);
    let Decision::SeedDrawn(seed) = log.entry(1).unwrap().record.decision else {
        panic!()
    };
    let Decision::ApplicationsClosed(closed) = log.entry(0).unwrap().record.decision else {
        panic!()
    };
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    h.update(closed.set_digest.0);
    h.update(beacon().value);
    assert_eq!(seed.seed.0, <[u8; 32]>::from(h.finalize()));
    assert_eq!(seed.commitment, closed.set_digest);

    // Withdrawals are replayed onto the re-run.
    drop(log);
    let loaded = load::<Fairs>(&data, None).unwrap();
    let state = Holdings::replay::<Fairs>(&loaded.input, &loaded.solved, &loaded.changes).unwrap();
    let holder = (0..4)
        .find(|&i| state.position[i].is_some())
        .map(|i| loaded.input.applicants[i].id.clone())
        .unwrap();
    let changes =
        allocation::give_back::<Fairs>(&loaded.input, &loaded.solved, &state, &holder).unwrap();
    assert!(matches!(&changes[0], Change::Withdrawn { participant, .. } if *participant == holder));
    let (run, logged) = allocation::change::<Fairs>(&data, None, "test", |l| {
        let state = Holdings::replay::<Fairs>(&l.input, &l.solved, &l.changes)?;
        allocation::give_back::<Fairs>(&l.input, &l.solved, &state, &holder)
    })
    .unwrap();
    assert_eq!(run.index, loaded.run.index);
    assert_eq!(
        logged.iter().map(|l| l.change.clone()).collect::<Vec<_>>(),
        changes
    );
    let reloaded = load::<Fairs>(&data, None).unwrap();
    assert_eq!(reloaded.changes.len(), changes.len());
    let state =
        Holdings::replay::<Fairs>(&reloaded.input, &reloaded.solved, &reloaded.changes).unwrap();
    let i = reloaded.input.applicant(&holder).unwrap() as usize;
    assert!(state.withdrawn[i] && state.position[i].is_none());
    // A change is decided and logged under the writer lock: while another writer holds the log,
    // it is refused before anything is read or logged.
    let other = Log::open(&data, LogOptions::default()).unwrap();
    let size = other.size();
    let err = allocation::change::<Fairs>(&data, None, "test", |_| Ok(Vec::new())).unwrap_err();
    assert!(
        err.to_string()
            .contains("open for writing by another process"),
        "{err}"
    );
    assert_eq!(other.size(), size);
    drop(other);
    // Giving back twice is refused.
    assert!(
        allocation::give_back::<Fairs>(&reloaded.input, &reloaded.solved, &state, &holder).is_err()
    );
}

/// Against `../shared/anchors/fair_oracle.py` when the reference venv exists (it is built by
/// `../shared/anchors/setup.sh`); without it there is nothing to compare with.
#[test]
fn da_and_welfare_agree_with_fair_oracle() {
    let Some(found) = allot_testkit::anchors("da_and_welfare_agree_with_fair_oracle") else {
        return;
    };
    let (anchors, shared) = (found.built, found.sources);
    let py = anchors.join("venv/bin/python");
    let dir = tempfile::tempdir().unwrap();
    let inst = dir.path().join("inst");
    let status = std::process::Command::new(&py)
        .arg(shared.join("gen/fair_gen.py"))
        .args(["5"])
        .arg(&inst)
        .args(["3000", "40"])
        .status()
        .unwrap();
    assert!(status.success());
    let files = fair::read(&inst.join("fairs.csv"), &inst.join("applicants.csv")).unwrap();
    for (k, mechanism) in [Mechanism::Da, Mechanism::Welfare].into_iter().enumerate() {
        let out = dir.path().join(format!("out{k}"));
        let request = RunRequest {
            log: &Log::open(dir.path().join("data"), LogOptions::default()).unwrap(),
            beacon: None,
            actor: "test",
            out: &out,
        };
        let params = Params {
            mechanism,
            precedence: Precedence::OwnFirst,
        };
        fair::run(&files, &params, &request, &mut |_| {}).unwrap();
        let check = std::process::Command::new(&py)
            .args(["-W", "ignore"])
            .arg(shared.join("fair_oracle.py"))
            .arg(&inst)
            .arg(mechanism.name())
            .arg(out.join("assignment.csv"))
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "{}: {}",
            mechanism.name(),
            String::from_utf8_lossy(&check.stdout)
        );
    }
}
