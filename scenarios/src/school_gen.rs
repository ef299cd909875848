//! In-memory school-choice markets shaped like `../shared/anchors/gen/school_gen.py` (same
//! distributions, not numpy's random stream): schools and students uniform on the unit square,
//! capacities max(5, Poisson(1.05 students / schools)), 1 to `max_choices` choices per student
//! among the 40 nearest schools scored by 0.7 quality - 8 distance + Gumbel noise, priority class
//! 0 (sibling, 3%), 1 (same district of a 10 x 10 grid) or 2, and one lottery permutation.
//! [`walk_zone_reserves`] adds Boston-style walk-zone reserves to such a market.

use allot_engine::school::{Priority, School, SchoolInput, Student};
use allot_solvers::matching::{Market, PreferencesBuilder, Reserves, SeatBlock, priority_key};
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Gumbel, Normal, Poisson};

/// Candidate schools per student (the nearest ones), as in the Python generator.
const NEAREST: usize = 40;

/// The shape of a generated market.
#[derive(Debug, Clone, Copy)]
pub struct SchoolSpec {
    pub seed: u64,
    pub students: usize,
    pub schools: usize,
    pub max_choices: usize,
}

/// A generated market and each student's lottery number (for serial dictatorship).
#[derive(Debug)]
pub struct SchoolMarket {
    pub market: Market,
    pub lotteries: Vec<u64>,
}

fn district(x: f64, y: f64) -> u32 {
    ((x * 10.0).floor() * 10.0 + (y * 10.0).floor()) as u32
}

/// Schools bucketed on a uniform grid, to find a student's nearest schools without scanning all.
struct Grid {
    side: usize,
    offsets: Vec<u32>,
    schools: Vec<u32>,
}

impl Grid {
    fn new(xs: &[f64], ys: &[f64]) -> Self {
        // About four schools per cell.
        let side = ((xs.len() as f64 / 4.0).sqrt().ceil() as usize).max(1);
        let cell = |x: f64, y: f64| Self::coord(side, x) * side + Self::coord(side, y);
        let mut offsets = vec![0u32; side * side + 1];
        for (&x, &y) in xs.iter().zip(ys) {
            offsets[cell(x, y) + 1] += 1;
        }
        for c in 0..side * side {
            offsets[c + 1] += offsets[c];
        }
        let mut fill = offsets.clone();
        let mut schools = vec![0u32; xs.len()];
        for (j, (&x, &y)) in xs.iter().zip(ys).enumerate() {
            let c = cell(x, y);
            schools[fill[c] as usize] = j as u32;
            fill[c] += 1;
        }
        Self {
            side,
            offsets,
            schools,
        }
    }

    fn coord(side: usize, v: f64) -> usize {
        ((v * side as f64) as usize).min(side - 1)
    }

    /// The `k` nearest schools to (x, y), in no particular order, with their distances.
    fn nearest(&self, x: f64, y: f64, k: usize, sx: &[f64], sy: &[f64], out: &mut Vec<(f64, u32)>) {
        out.clear();
        let k = k.min(sx.len());
        let (cx, cy) = (
            Self::coord(self.side, x) as isize,
            Self::coord(self.side, y) as isize,
        );
        let cell_size = 1.0 / self.side as f64;
        for ring in 0..=self.side as isize {
            for gx in cx - ring..=cx + ring {
                for gy in cy - ring..=cy + ring {
                    let on_ring = (gx - cx).abs() == ring || (gy - cy).abs() == ring;
                    let inside = (0..self.side as isize).contains(&gx)
                        && (0..self.side as isize).contains(&gy);
                    if !on_ring || !inside {
                        continue;
                    }
                    let c = gx as usize * self.side + gy as usize;
                    for &j in &self.schools[self.offsets[c] as usize..self.offsets[c + 1] as usize]
                    {
                        let d = (sx[j as usize] - x).hypot(sy[j as usize] - y);
                        out.push((d, j));
                    }
                }
            }
            if out.len() >= k {
                out.select_nth_unstable_by(k - 1, |a, b| a.0.total_cmp(&b.0));
                // Cells beyond this ring are at least `ring` cells away from (x, y).
                if out[k - 1].0 <= ring as f64 * cell_size {
                    break;
                }
            }
        }
        out.truncate(k);
    }
}

/// What the generator draws, before it becomes a [`Market`] or a [`SchoolInput`].
struct Drawn {
    capacities: Vec<u32>,
    /// Each student's list, best first: `lists[offsets[i]..offsets[i + 1]]`, with the student's
    /// priority class at each listed school in `classes`.
    offsets: Vec<u32>,
    lists: Vec<u32>,
    classes: Vec<u32>,
    lotteries: Vec<u64>,
}

fn draw(spec: SchoolSpec) -> Drawn {
    let (n, m) = (spec.students, spec.schools.max(1));
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let sx: Vec<f64> = (0..m).map(|_| rng.random()).collect();
    let sy: Vec<f64> = (0..m).map(|_| rng.random()).collect();
    let normal = Normal::new(0.0, 1.0).expect("valid normal");
    let quality: Vec<f64> = (0..m).map(|_| normal.sample(&mut rng)).collect();
    let poisson = Poisson::new(1.05 * n.max(1) as f64 / m as f64).expect("positive mean");
    let capacities: Vec<u32> = (0..m)
        .map(|_| (poisson.sample(&mut rng) as u32).max(5))
        .collect();
    let school_district: Vec<u32> = sx.iter().zip(&sy).map(|(&x, &y)| district(x, y)).collect();
    let mut lotteries: Vec<u64> = (0..n as u64).collect();
    lotteries.shuffle(&mut rng);
    let gumbel = Gumbel::new(0.0, 1.0).expect("valid gumbel");
    let grid = Grid::new(&sx, &sy);
    let mut offsets = Vec::with_capacity(n + 1);
    offsets.push(0u32);
    let mut lists = Vec::with_capacity(n * (spec.max_choices + 1) / 2);
    let mut classes = Vec::with_capacity(n * (spec.max_choices + 1) / 2);
    let (mut near, mut scored) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let k = rng.random_range(1..=spec.max_choices.max(1));
        let (px, py) = (rng.random::<f64>(), rng.random::<f64>());
        grid.nearest(px, py, NEAREST, &sx, &sy, &mut near);
        scored.clear();
        for &(d, j) in &near {
            scored.push((
                0.7 * quality[j as usize] - 8.0 * d + gumbel.sample(&mut rng),
                j,
            ));
        }
        scored.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
        scored.truncate(k);
        let home = district(px, py);
        for &(_, j) in &scored {
            let class = if rng.random::<f64>() < 0.03 {
                0
            } else if school_district[j as usize] == home {
                1
            } else {
                2
            };
            classes.push(class);
            lists.push(j);
        }
        offsets.push(lists.len() as u32);
    }
    Drawn {
        capacities,
        offsets,
        lists,
        classes,
        lotteries,
    }
}

/// Generates a market; the same spec always gives the same market.
pub fn generate(spec: SchoolSpec) -> SchoolMarket {
    let d = draw(spec);
    let n = d.lotteries.len();
    let mut prefs = PreferencesBuilder::with_capacity(d.capacities.len(), n, d.lists.len());
    for pair in d.offsets.windows(2) {
        prefs
            .push(d.lists[pair[0] as usize..pair[1] as usize].iter().copied())
            .expect("sizes fit");
    }
    let prefs = prefs.build().expect("generated lists are valid");
    let mut keys = Vec::with_capacity(prefs.num_entries());
    for (student, pair) in prefs.offsets().windows(2).enumerate() {
        for &class in &d.classes[pair[0] as usize..pair[1] as usize] {
            keys.push(
                priority_key(class, d.lotteries[student]).expect("class and lottery in range"),
            );
        }
    }
    let market = Market::new(prefs, d.capacities, keys).expect("generated market is valid");
    SchoolMarket {
        market,
        lotteries: d.lotteries,
    }
}

/// The same market as [`generate`], as the engine's school input: schools `S00000`.., students
/// `T0000000`.. (zero-padded, so id order is generation order), the lottery numbers given, and
/// the priority classes 0 (sibling) and 1 (walk zone) listed (class 2, the rest, is the default).
pub fn generate_input(spec: SchoolSpec) -> SchoolInput {
    let d = draw(spec);
    let schools = d
        .capacities
        .iter()
        .enumerate()
        .map(|(j, &capacity)| School {
            id: format!("S{j:05}"),
            capacity,
        })
        .collect();
    let mut priorities = Vec::new();
    let students = d
        .offsets
        .windows(2)
        .enumerate()
        .map(|(i, pair)| {
            let range = pair[0] as usize..pair[1] as usize;
            for (&school, &class) in d.lists[range.clone()].iter().zip(&d.classes[range.clone()]) {
                if class < 2 {
                    priorities.push(Priority {
                        school,
                        student: i as u32,
                        class,
                    });
                }
            }
            Student {
                id: format!("T{i:07}"),
                lottery: Some(d.lotteries[i]),
                choices: d.lists[range].to_vec(),
            }
        })
        .collect();
    priorities.sort_unstable();
    SchoolInput {
        schools,
        students,
        priorities,
        reserves: Vec::new(),
        lottery_given: true,
    }
}

/// Priority class of a student living in the school's district (its walk zone).
pub const WALK_ZONE_CLASS: u32 = 1;

/// Walk-zone reserves: every fifth school (ids 0, 5, 10, ...) reserves half its seats (rounded
/// down) for students of its walk zone ([`WALK_ZONE_CLASS`], read from the keys), processed
/// before its open seats when `reserved_first` (Boston's order), after them otherwise.
pub fn walk_zone_reserves(market: &Market, reserved_first: bool) -> Reserves<'_> {
    let blocks = (0..market.num_schools() as u32).step_by(5).map(|school| {
        let capacity = market.capacity(school);
        let walk = SeatBlock::reserved(capacity / 2, [WALK_ZONE_CLASS]);
        let open = SeatBlock::open(capacity - capacity / 2);
        let blocks = if reserved_first {
            vec![walk, open]
        } else {
            vec![open, walk]
        };
        (school, blocks)
    });
    Reserves::with_key_classes(market, blocks).expect("capacities split exactly, class in range")
}

#[cfg(test)]
mod tests {
    use super::*;
    use allot_solvers::matching::Eligibility;

    #[test]
    fn nearest_matches_a_full_scan() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let sx: Vec<f64> = (0..500).map(|_| rng.random()).collect();
        let sy: Vec<f64> = (0..500).map(|_| rng.random()).collect();
        let grid = Grid::new(&sx, &sy);
        let mut out = Vec::new();
        for _ in 0..200 {
            let (x, y) = (rng.random::<f64>(), rng.random::<f64>());
            grid.nearest(x, y, NEAREST, &sx, &sy, &mut out);
            let mut got: Vec<u32> = out.iter().map(|&(_, j)| j).collect();
            got.sort_unstable();
            let mut all: Vec<(f64, u32)> = (0..500)
                .map(|j| ((sx[j] - x).hypot(sy[j] - y), j as u32))
                .collect();
            all.sort_by(|a, b| a.0.total_cmp(&b.0));
            let mut want: Vec<u32> = all[..NEAREST].iter().map(|&(_, j)| j).collect();
            want.sort_unstable();
            assert_eq!(got, want);
        }
    }

    #[test]
    fn generated_markets_have_the_requested_shape() {
        let spec = SchoolSpec {
            seed: 1,
            students: 3000,
            schools: 60,
            max_choices: 12,
        };
        let generated = generate(spec);
        let market = &generated.market;
        assert_eq!((market.num_students(), market.num_schools()), (3000, 60));
        assert!((0..3000).all(|i| (1..=12).contains(&market.list(i).len())));
        assert!(market.capacities().iter().all(|&c| c >= 5));
        let again = generate(spec);
        assert_eq!(&again.market, market);
    }

    #[test]
    fn walk_zone_reserves_split_every_fifth_school() {
        let generated = generate(SchoolSpec {
            seed: 2,
            students: 2000,
            schools: 40,
            max_choices: 8,
        });
        let market = &generated.market;
        for reserved_first in [true, false] {
            let reserves = walk_zone_reserves(market, reserved_first);
            for school in 0..40u32 {
                let blocks = reserves.blocks(school);
                let seats: u32 = blocks.iter().map(|b| b.capacity).sum();
                assert_eq!(seats, market.capacity(school));
                let reserved: Vec<u32> = blocks
                    .iter()
                    .filter(|b| b.eligibility != Eligibility::Open)
                    .map(|b| b.capacity)
                    .collect();
                let want = if school % 5 == 0 {
                    vec![market.capacity(school) / 2]
                } else {
                    vec![]
                };
                assert_eq!(reserved, want, "school {school}");
                if school % 5 == 0 {
                    assert_eq!(blocks[0].eligibility == Eligibility::Open, !reserved_first);
                }
            }
        }
    }
}
