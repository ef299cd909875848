//! Schools: the mechanisms against brute force on tiny markets (through the CSV readers),
//! against the C++ reference and the `matching` library when present, reserves and their
//! precedence, tie-breaking, the shared run layer.

use std::collections::HashMap;

use allot_engine::allocation::{self, Allocation, Beacon, Holdings, RunRequest, monte_carlo};
use allot_engine::input::Table;
use allot_engine::log::{Log, LogOptions};
use allot_engine::school::{
    self, Mechanism, Params, ReserveOrder, SchoolFiles, SchoolSolved, Schools, TieBreaking,
};
use allot_solvers::matching::Seed;
use proptest::prelude::*;

/// Reads school CSV text (reserves optional).
fn read(schools: &str, students: &str, priorities: &str, reserves: Option<&str>) -> SchoolFiles {
    let t = |name: &str, text: &str| Table::from_bytes(name, text.as_bytes().to_vec()).unwrap();
    let reserves = reserves.map(|r| t("reserves.csv", r));
    school::read_tables(
        &t("schools.csv", schools),
        &t("students.csv", students),
        &t("priorities.csv", priorities),
        reserves.as_ref(),
    )
    .unwrap()
}

/// A tiny market: capacities, each student's list, listed priority classes, lotteries.
#[derive(Debug, Clone)]
struct Tiny {
    capacity: Vec<u32>,
    lists: Vec<Vec<usize>>,
    classes: Vec<(usize, usize, u32)>,
    lottery: Vec<u64>,
    /// (school, class, seats), at most one row per school and class.
    reserves: Vec<(usize, u32, u32)>,
}

type Assignment = Vec<Option<usize>>;

impl Tiny {
    fn files(&self) -> SchoolFiles {
        let mut schools = String::from("school,capacity\n");
        for (j, c) in self.capacity.iter().enumerate() {
            schools += &format!("S{j},{c}\n");
        }
        let mut students = String::from("student,lottery,choices\n");
        for (i, l) in self.lists.iter().enumerate() {
            let list: Vec<String> = l.iter().map(|j| format!("S{j}")).collect();
            students += &format!("P{i},{},{}\n", self.lottery[i], list.join(";"));
        }
        let mut prio = String::from("school,student,priority\n");
        for (j, i, c) in &self.classes {
            prio += &format!("S{j},P{i},{c}\n");
        }
        let mut reserves = String::from("school,class,seats\n");
        for (j, c, n) in &self.reserves {
            reserves += &format!("S{j},{c},{n}\n");
        }
        read(
            &schools,
            &students,
            &prio,
            (!self.reserves.is_empty()).then_some(reserves.as_str()),
        )
    }

    fn key(&self, i: usize, j: usize) -> (u32, u64) {
        let default = self.classes.iter().map(|c| c.2 + 1).max().unwrap_or(0);
        let class = self
            .classes
            .iter()
            .find(|c| c.0 == j && c.1 == i)
            .map_or(default, |c| c.2);
        (class, self.lottery[i])
    }

    /// 0-based rank of a school in i's list (the list's length when unassigned).
    fn rank(&self, i: usize, a: Option<usize>) -> usize {
        a.map_or(self.lists[i].len(), |j| {
            self.lists[i].iter().position(|&x| x == j).unwrap()
        })
    }

    fn all(&self) -> Vec<Assignment> {
        let mut out = Vec::new();
        let mut cur = Vec::new();
        let mut load = vec![0u32; self.capacity.len()];
        fn go(t: &Tiny, cur: &mut Assignment, load: &mut Vec<u32>, out: &mut Vec<Assignment>) {
            let i = cur.len();
            if i == t.lists.len() {
                out.push(cur.clone());
                return;
            }
            cur.push(None);
            go(t, cur, load, out);
            cur.pop();
            for &j in &t.lists[i] {
                if load[j] < t.capacity[j] {
                    load[j] += 1;
                    cur.push(Some(j));
                    go(t, cur, load, out);
                    cur.pop();
                    load[j] -= 1;
                }
            }
        }
        go(self, &mut cur, &mut load, &mut out);
        out
    }

    fn stable(&self, a: &Assignment) -> bool {
        (0..a.len()).all(|i| {
            let r = self.rank(i, a[i]);
            self.lists[i][..r].iter().all(|&j| {
                let held: Vec<usize> = (0..a.len()).filter(|&k| a[k] == Some(j)).collect();
                held.len() as u32 == self.capacity[j]
                    && held.iter().all(|&k| self.key(k, j) < self.key(i, j))
            })
        })
    }

    fn dominated(&self, a: &Assignment) -> bool {
        self.all().iter().any(|b| {
            let better = (0..a.len()).filter(|&i| self.rank(i, b[i]) < self.rank(i, a[i]));
            better.count() > 0 && (0..a.len()).all(|i| self.rank(i, b[i]) <= self.rank(i, a[i]))
        })
    }
}

/// The engine's assignment in the tiny market's terms.
fn assignment(t: &Tiny, files: &SchoolFiles, solved: &SchoolSolved) -> Assignment {
    (0..t.lists.len())
        .map(|i| {
            let k = files.input.student(&format!("P{i}")).unwrap();
            let j = solved.school_of(k)?;
            files.input.schools[j as usize].id[1..].parse().ok()
        })
        .collect()
}

fn solve(files: &SchoolFiles, mechanism: Mechanism) -> SchoolSolved {
    let params = Params {
        mechanism,
        ..Params::default()
    };
    Schools::solve(&files.input, &params, None).unwrap()
}

fn tiny() -> impl Strategy<Value = Tiny> {
    (1usize..=3, 1usize..=5).prop_flat_map(|(m, n)| {
        let list = Just((0..m).collect::<Vec<_>>())
            .prop_shuffle()
            .prop_flat_map(move |l| (1..=m).prop_map(move |k| l[..k].to_vec()));
        (
            proptest::collection::vec(0u32..=2, m),
            proptest::collection::vec(list, n),
            proptest::collection::vec((0..m, 0..n, 0u32..=1), 0..=4),
            Just((0..n as u64).collect::<Vec<_>>()).prop_shuffle(),
        )
            .prop_map(|(capacity, lists, mut classes, lottery)| {
                classes.sort_by_key(|c| (c.0, c.1));
                classes.dedup_by_key(|c| (c.0, c.1));
                Tiny {
                    capacity,
                    lists,
                    classes,
                    lottery,
                    reserves: Vec::new(),
                }
            })
    })
}

/// A tiny market where some schools reserve some of their seats for class 0 or 1.
fn tiny_with_reserves() -> impl Strategy<Value = Tiny> {
    (
        tiny(),
        proptest::collection::vec((0usize..3, 0u32..=1, 1u32..=2), 0..=3),
    )
        .prop_map(|(mut t, rows)| {
            let mut left = t.capacity.clone();
            for (j, class, seats) in rows {
                let j = j % t.capacity.len();
                let seats = seats.min(left[j]);
                if seats > 0 && !t.reserves.iter().any(|r| r.0 == j && r.1 == class) {
                    left[j] -= seats;
                    t.reserves.push((j, class, seats));
                }
            }
            t.reserves.sort_unstable();
            t
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Seats given back one after another (each down its vacancy chain) leave a matching with no
    /// blocking pair among the students still in (with or without reserves, in either
    /// precedence; by brute force without reserves) in which nobody is worse off than after the
    /// run. Where every school ranks students alike (no priority classes) it is what DA gives on
    /// the market without the students who gave back; with classes it need not be: a student
    /// who gave back may have been an interrupter (Kesten 2010) whose absence from the start
    /// would have let others do better, and a re-offer moves nobody who does not want the seat
    /// freed.
    #[test]
    fn seats_given_back_leave_a_stable_outcome_nobody_worse_off(
        t in tiny_with_reserves(),
        open_first in any::<bool>(),
        picks in proptest::collection::vec(any::<prop::sample::Index>(), 1..=3),
    ) {
        let files = t.files();
        let params = Params {
            reserve_order: if open_first { ReserveOrder::OpenFirst } else { ReserveOrder::ReservedFirst },
            ..Params::default()
        };
        let da = Schools::solve(&files.input, &params, None).unwrap();
        let mut logged = Vec::new();
        let mut gone = Vec::new();
        for pick in picks {
            let state = Holdings::replay::<Schools>(&files.input, &da, &logged).unwrap();
            let holders: Vec<u32> = (0..t.lists.len() as u32)
                .filter(|&i| state.position[i as usize].is_some())
                .collect();
            if holders.is_empty() {
                break;
            }
            let i = holders[pick.index(holders.len())];
            let id = files.input.students[i as usize].id.clone();
            let changes = allocation::give_back::<Schools>(&files.input, &da, &state, &id).unwrap();
            let first_is_own = matches!(
                &changes[0],
                allocation::Change::Withdrawn { participant, .. } if *participant == id
            );
            prop_assert!(first_is_own);
            for change in changes {
                logged.push(allocation::LoggedChange { index: logged.len() as u64, change });
            }
            gone.push(i);
        }
        let state = Holdings::replay::<Schools>(&files.input, &da, &logged).unwrap();
        // DA on the same keys, the students who gave their seat back listing nothing.
        let mut without = files.input.clone();
        for &i in &gone {
            without.students[i as usize].choices.clear();
        }
        let oracle = Schools::solve(&without, &params, None).unwrap();
        for i in 0..t.lists.len() as u32 {
            let (after, run) = (state.position[i as usize], da.position[i as usize]);
            if !gone.contains(&i) {
                prop_assert!(after.unwrap_or(u32::MAX) <= run.unwrap_or(u32::MAX), "P{} worse off", i);
            }
            if t.classes.is_empty() && t.reserves.is_empty() {
                let want = oracle.school_of(i);
                prop_assert_eq!(state.unit_of(&da.market, i), want, "P{} after {:?} gave back", i, gone);
            }
        }
        gone.sort_unstable();
        let stats = school::stats_with(&files.input, &da, &state.position, &gone).unwrap();
        prop_assert_eq!(stats.blocking_pairs, 0);
        if t.reserves.is_empty() {
            let mut tiny = t.clone();
            for &i in &gone {
                tiny.lists[i as usize].clear();
            }
            let a: Assignment = (0..t.lists.len())
                .map(|i| {
                    let j = state.unit_of(&da.market, i as u32)?;
                    files.input.schools[j as usize].id[1..].parse().ok()
                })
                .collect();
            prop_assert!(tiny.stable(&a), "{:?}", a);
        }
    }

    /// DA is the student-optimal stable matching and school-DA the school-optimal (student-
    /// pessimal) one; both have no blocking pair.
    #[test]
    fn deferred_acceptance_matches_brute_force(t in tiny()) {
        let files = t.files();
        let stable: Vec<Assignment> = t.all().into_iter().filter(|a| t.stable(a)).collect();
        prop_assert!(!stable.is_empty());
        let pick = |best: bool| -> Assignment {
            (0..t.lists.len())
                .map(|i| {
                    let ranks = stable.iter().map(|a| (t.rank(i, a[i]), a[i]));
                    if best { ranks.min().unwrap().1 } else { ranks.max().unwrap().1 }
                })
                .collect()
        };
        for (mechanism, best) in [(Mechanism::Da, true), (Mechanism::SchoolDa, false)] {
            let solved = solve(&files, mechanism);
            prop_assert_eq!(assignment(&t, &files, &solved), pick(best), "{:?}", mechanism);
            let stats = school::stats(&files.input, &solved).unwrap();
            prop_assert_eq!((stats.blocking_pairs, stats.justified_envy), (0, 0));
        }
    }

    /// TTC and EADA are Pareto efficient (no feasible matching is better for some student and
    /// worse for none); EADA is weakly better than DA for every student.
    #[test]
    fn ttc_and_eada_are_pareto_efficient(t in tiny()) {
        let files = t.files();
        let da = assignment(&t, &files, &solve(&files, Mechanism::Da));
        let ttc = assignment(&t, &files, &solve(&files, Mechanism::Ttc));
        let eada = assignment(&t, &files, &solve(&files, Mechanism::Eada));
        prop_assert!(!t.dominated(&ttc), "ttc {:?}", ttc);
        prop_assert!(!t.dominated(&eada), "eada {:?}", eada);
        for i in 0..t.lists.len() {
            prop_assert!(t.rank(i, eada[i]) <= t.rank(i, da[i]));
        }
    }
}

/// The canonical application set does not depend on the order of the rows, and decodes back.
#[test]
fn set_digest_ignores_row_order() {
    let a = read(
        "school,capacity\nA,1\nB,2\n",
        "student,lottery,choices\nx,3,A;B\ny,1,B\n",
        "school,student,priority\nA,x,0\nB,y,1\nB,x,0\n",
        Some("school,class,seats\nB,1,1\nB,0,1\n"),
    );
    let b = read(
        "school,capacity\nB,2\nA,1\n",
        "student,lottery,choices\ny,1,B\nx,3,A;B\n",
        "school,student,priority\nB,x,0\nA,x,0\nB,y,1\n",
        Some("school,class,seats\nB,0,1\nB,1,1\n"),
    );
    let digest = |f: &SchoolFiles| allocation::set_digest::<Schools>(&f.input);
    assert_eq!(digest(&a), digest(&b));
    assert_eq!(
        Schools::decode(&Schools::encode(&a.input)).unwrap(),
        a.input
    );
    let c = read(
        "school,capacity\nA,1\nB,2\n",
        "student,lottery,choices\nx,3,B;A\ny,1,B\n",
        "school,student,priority\nA,x,0\nB,y,1\nB,x,0\n",
        None,
    );
    assert_ne!(digest(&a), digest(&c));
}

/// Reserves respect the precedence order (the example in the module docs), and the verifier's
/// stability is with respect to the reserves.
#[test]
fn reserve_precedence_changes_who_gets_in() {
    let schools = "school,capacity\nX,2\n";
    let students = "student,lottery,choices\nw,5,X\no,1,X\n";
    let priorities = "school,student,priority\nX,w,1\n";
    let reserves = "school,class,seats\nX,1,1\n";
    let files = read(schools, students, priorities, Some(reserves));
    // o has no listed priority: class 2, below w's class 1 whatever the lottery.
    assert_eq!(files.input.default_class(), 2);
    let admitted = |order: ReserveOrder, mechanism: Mechanism| -> Vec<String> {
        let params = Params {
            mechanism,
            tie_breaking: TieBreaking::Single,
            reserve_order: order,
        };
        let solved = Schools::solve(&files.input, &params, None).unwrap();
        let stats = school::stats(&files.input, &solved).unwrap();
        assert_eq!(stats.blocking_pairs, 0, "{order:?} {mechanism:?}");
        let mut ids: Vec<String> = (0..2)
            .filter(|&i| solved.school_of(i).is_some())
            .map(|i| files.input.students[i as usize].id.clone())
            .collect();
        ids.sort();
        ids
    };
    for mechanism in [Mechanism::Da, Mechanism::SchoolDa, Mechanism::Boston] {
        assert_eq!(admitted(ReserveOrder::ReservedFirst, mechanism), ["o", "w"]);
        assert_eq!(admitted(ReserveOrder::OpenFirst, mechanism), ["w"]);
    }
    // Without reserves both get in.
    let plain = read(schools, students, priorities, None);
    let solved = solve(&plain, Mechanism::Da);
    assert_eq!(solved.position.iter().flatten().count(), 2);
    // TTC and EADA refuse reserves before anything runs.
    for mechanism in [Mechanism::Ttc, Mechanism::Eada] {
        let params = Params {
            mechanism,
            ..Params::default()
        };
        let err = Schools::draws_lottery(&files.input, &params).unwrap_err();
        assert!(
            err.to_string().contains("does not support seat reserves"),
            "{err}"
        );
    }
}

/// Reserved seats keep the strongest of their class when the class is scarce, and a reserve for
/// a low class protects it against higher classes (reserved seats taken first either way).
#[test]
fn a_reserve_protects_its_class() {
    let schools = "school,capacity\nX,2\n";
    let students = "student,lottery,choices\na,1,X\nb,2,X\nc,3,X\n";
    let priorities = "school,student,priority\nX,a,0\nX,b,0\n";
    let plain = read(schools, students, priorities, None);
    let reserved = read(
        schools,
        students,
        priorities,
        Some("school,class,seats\nX,1,1\n"),
    );
    let got = |files: &SchoolFiles| -> Vec<bool> {
        let s = solve(files, Mechanism::Da);
        (0..3).map(|i| s.school_of(i).is_some()).collect()
    };
    // Unlisted students have class 1 here; c (class 1) loses to a and b (class 0) without the
    // reserve and takes the reserved seat with it.
    assert_eq!(got(&plain), [true, true, false]);
    assert_eq!(got(&reserved), [true, false, true]);
}

/// Multiple tie-breaking draws one number per (student, school); single one per student. Both
/// are reproducible from the seed, and they differ.
#[test]
fn tie_breaking_draws_from_the_seed() {
    let schools = "school,capacity\nA,1\nB,1\n";
    let students: String = std::iter::once("student,choices\n".to_owned())
        .chain((0..6).map(|i| format!("p{i},A;B\n")))
        .collect();
    let files = read(schools, &students, "school,student,priority\n", None);
    let params = |tie_breaking| Params {
        tie_breaking,
        ..Params::default()
    };
    assert!(Schools::draws_lottery(&files.input, &params(TieBreaking::Multiple)).unwrap());
    let seed = Seed([9; 32]);
    let single = Schools::solve(&files.input, &params(TieBreaking::Single), Some(&seed)).unwrap();
    let again = Schools::solve(&files.input, &params(TieBreaking::Single), Some(&seed)).unwrap();
    assert_eq!(single.position, again.position);
    // Single: each student has the same key (lottery) at both schools.
    for i in 0..6 {
        let keys = single.market.keys_of(i);
        assert_eq!(keys[0], keys[1]);
    }
    let multiple =
        Schools::solve(&files.input, &params(TieBreaking::Multiple), Some(&seed)).unwrap();
    assert!((0..6).any(|i| {
        let keys = multiple.market.keys_of(i);
        keys[0] != keys[1]
    }));
    assert!(Schools::solve(&files.input, &params(TieBreaking::Multiple), None).is_err());
    // A lottery column and multiple tie-breaking do not go together.
    let given = read(
        schools,
        "student,lottery,choices\np,1,A\n",
        "school,student,priority\n",
        None,
    );
    assert!(Schools::draws_lottery(&given.input, &params(TieBreaking::Multiple)).is_err());
}

/// Over many draws, students with identical lists and no priorities win equally often.
#[test]
fn identical_students_win_equally_often() {
    let students: String = std::iter::once("student,choices\n".to_owned())
        .chain((0..5).map(|i| format!("p{i},A\n")))
        .collect();
    let files = read(
        "school,capacity\nA,1\n",
        &students,
        "school,student,priority\n",
        None,
    );
    for tie_breaking in [TieBreaking::Single, TieBreaking::Multiple] {
        let params = Params {
            tie_breaking,
            ..Params::default()
        };
        let winners =
            monte_carlo::<Schools, _>(&files.input, &params, &Seed([3; 32]), 500, |_, s| {
                (0..5).find(|&i| s.position[i].is_some())
            })
            .unwrap();
        let mut wins = [0u64; 5];
        for w in winners {
            wins[w.unwrap()] += 1;
        }
        let chi: f64 = wins
            .iter()
            .map(|&w| (w as f64 - 100.0).powi(2) / 100.0)
            .sum();
        // df = 4: P(chi² > 18.47) = 0.001 under equal chances.
        assert!(chi < 18.47, "{tie_breaking:?}: {wins:?}");
    }
}

#[test]
fn runs_verify_and_explain() {
    let dir = tempfile::tempdir().unwrap();
    let schools = "school,capacity\nA,1\nB,1\n";
    let students = "student,choices\nx,A;B\ny,A;B\nz,A\n";
    let priorities = "school,student,priority\nA,z,0\n";
    let files = read(schools, students, priorities, None);
    let beacon = Beacon {
        source: "test".into(),
        round: 1,
        value: vec![1, 2],
    };
    let data = dir.path().join("data");
    let request = RunRequest {
        log: &Log::open(&data, LogOptions::default()).unwrap(),
        beacon: Some(&beacon),
        actor: "test",
        out: &dir.path().join("out"),
    };
    let params = Params {
        tie_breaking: TieBreaking::Multiple,
        ..Params::default()
    };
    let published = school::run(&files, &params, &request, &mut |_| {}).unwrap();
    let v = allocation::verify::<Schools>(&data, &published.info.index.to_string()).unwrap();
    assert!(v.ok(), "{:?}", v.checks);
    let loaded = allocation::load::<Schools>(&data, None).unwrap();
    assert_eq!(loaded.params, params);
    // z has class 0 at A and takes it; whoever of x and y loses B's draw has nothing, and the
    // explanation names A's cutoff: class 0, ahead of class 1 whatever the lottery.
    let z = files.input.student("z").unwrap();
    assert_eq!(published.solved.school_of(z), Some(0));
    let loser = ["x", "y"]
        .into_iter()
        .find(|id| {
            let i = files.input.student(id).unwrap();
            published.solved.school_of(i).is_none()
        })
        .unwrap();
    let text = school::explain(
        &loaded,
        &Holdings::after_run::<Schools>(&loaded.solved),
        loser,
    )
    .unwrap()
    .to_string();
    assert!(text.contains("You have no seat."), "{text}");
    assert!(
        text.contains("- A (your choice 1): its 1 seat went to students ahead of you; the last admitted has priority class 0 and lottery number"),
        "{text}"
    );
    assert!(
        text.contains("priority class 0 comes before priority class 1 (no priority listed), whatever the lottery"),
        "{text}"
    );
    assert!(text.contains("- B (your choice 2):"), "{text}");
}

/// DA against the C++ reference (`da_ref`) and the `matching` library's resident-optimal
/// matching on a `school_gen.py` instance, when the reference tools exist on this machine
/// (`../shared/anchors/setup.sh` builds them); without them there is nothing to compare with.
#[test]
fn da_equals_the_reference_and_the_matching_library() {
    let Some(found) = allot_testkit::anchors("da_equals_the_reference_and_the_matching_library")
    else {
        return;
    };
    let (anchors, shared) = (found.built, found.sources);
    let dir = tempfile::tempdir().unwrap();
    let inst = dir.path().join("inst");
    let py = anchors.join("venv/bin/python");
    let status = std::process::Command::new(&py)
        .arg(shared.join("gen/school_gen.py"))
        .arg("3")
        .arg(&inst)
        .args(["3000", "120", "8"])
        .status()
        .unwrap();
    assert!(status.success());
    let files = school::read(school::SchoolPaths {
        schools: &inst.join("schools.csv"),
        students: &inst.join("students.csv"),
        priorities: &inst.join("priorities.csv"),
        reserves: None,
    })
    .unwrap();
    let out = dir.path().join("out");
    let request = RunRequest {
        log: &Log::open(dir.path().join("data"), LogOptions::default()).unwrap(),
        beacon: None,
        actor: "test",
        out: &out,
    };
    school::run(&files, &Params::default(), &request, &mut |_| {}).unwrap();
    let ours = out.join("assignment.csv");
    let read_assignment = |path: &std::path::Path| -> HashMap<String, String> {
        let text = std::fs::read_to_string(path).unwrap();
        text.lines()
            .skip(1)
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                (f[0].to_owned(), f[1].to_owned())
            })
            .collect()
    };
    let reference = dir.path().join("ref.csv");
    let status = std::process::Command::new(anchors.join("da_ref"))
        .arg(&inst)
        .arg(&reference)
        .output()
        .unwrap();
    assert!(status.status.success());
    assert_eq!(read_assignment(&ours), read_assignment(&reference));
    let check = std::process::Command::new(&py)
        .arg(shared.join("da_matching.py"))
        .arg(&inst)
        .arg(&ours)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
}
