//! In-memory weekend-fair instances shaped like `../shared/anchors/gen/fair_gen.py` (same
//! distributions, not numpy's random stream), as CSV text so that benches also read them: fair
//! popularity Pareto(1.2) + 1, pool sizes by the square root of popularity, six categories with
//! Dirichlet(2) shares and 10% open stalls per fair; applicants with tiers 25/35/40%, categories
//! 40/15/15/5/10/15%, 1 to 10 distinct fairs drawn by popularity, and one lottery permutation.

use allot_engine::input::CsvText;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Gamma, Pareto};

const CATEGORIES: [&str; 6] = ["produce", "dairy", "meat", "fish", "honey", "bakery"];

/// The shape of a generated instance.
#[derive(Debug, Clone, Copy)]
pub struct FairSpec {
    pub seed: u64,
    pub applicants: usize,
    pub fairs: usize,
}

/// `fairs.csv` and `applicants.csv` text.
#[derive(Debug, Clone)]
pub struct FairCsv {
    pub fairs: String,
    pub applicants: String,
}

fn pick(rng: &mut ChaCha8Rng, cumulative: &[f64]) -> usize {
    let total = cumulative.last().copied().unwrap_or(0.0);
    let u = rng.random::<f64>() * total;
    cumulative
        .partition_point(|&c| c <= u)
        .min(cumulative.len() - 1)
}

/// Generates an instance.
pub fn generate(spec: FairSpec) -> FairCsv {
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let f = spec.fairs.max(1);
    let pareto = Pareto::new(1.0, 1.2).expect("valid Pareto");
    // numpy's pareto(a) is Lomax: Pareto(1, a) - 1; fair_gen.py adds 1 back.
    let pop: Vec<f64> = (0..f).map(|_| pareto.sample(&mut rng)).collect();
    let total_stalls = (15_000.0 * spec.applicants as f64 / 20_000.0).round();
    let root: f64 = pop.iter().map(|p| p.sqrt()).sum();
    let gamma = Gamma::new(2.0, 1.0).expect("valid Gamma");
    let mut fairs = CsvText::new(&["fair", "district", "category", "stalls"]);
    for (j, p) in pop.iter().enumerate() {
        let size = ((p.sqrt() / root * total_stalls).round() as usize).max(20);
        let flex = size / 10;
        let shares: Vec<f64> = CATEGORIES.iter().map(|_| gamma.sample(&mut rng)).collect();
        let sum: f64 = shares.iter().sum();
        for (c, s) in CATEGORIES.iter().zip(&shares) {
            let n = ((size - flex) as f64 * s / sum) as usize;
            if n > 0 {
                fairs.row([
                    &format!("F{j}"),
                    &format!("D{}", j % 125),
                    *c,
                    &n.to_string(),
                ]);
            }
        }
        fairs.row([
            &format!("F{j}"),
            &format!("D{}", j % 125),
            "*",
            &flex.to_string(),
        ]);
    }
    let mut cumulative = Vec::with_capacity(f);
    let mut acc = 0.0;
    for p in &pop {
        acc += p;
        cumulative.push(acc);
    }
    let mut lottery: Vec<usize> = (0..spec.applicants).collect();
    lottery.shuffle(&mut rng);
    let mut applicants = CsvText::new(&["applicant", "category", "tier", "lottery", "choices"]);
    let tier_cut = [0.25, 0.60];
    let cat_cum = [0.40, 0.55, 0.70, 0.75, 0.85, 1.0];
    for (i, lot) in lottery.iter().enumerate() {
        let u = rng.random::<f64>();
        let tier = tier_cut.iter().filter(|&&c| u >= c).count();
        let u = rng.random::<f64>();
        let cat = cat_cum.iter().position(|&c| u < c).unwrap_or(0);
        let k = rng.random_range(1..=10usize).min(f);
        let mut chosen: Vec<usize> = Vec::with_capacity(k);
        while chosen.len() < k {
            let j = pick(&mut rng, &cumulative);
            if !chosen.contains(&j) {
                chosen.push(j);
            }
        }
        let list: Vec<String> = chosen.iter().map(|j| format!("F{j}")).collect();
        applicants.row([
            &format!("A{i}"),
            CATEGORIES[cat],
            &tier.to_string(),
            &lot.to_string(),
            &list.join(";"),
        ]);
    }
    FairCsv {
        fairs: fairs.finish(),
        applicants: applicants.finish(),
    }
}
