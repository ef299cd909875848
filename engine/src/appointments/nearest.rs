//! The `k` clinics nearest to a point, exactly, without measuring the distance to every clinic.
//!
//! Every `$find` and every re-balancing group starts from the nearest dozen clinics of a
//! specialty among several hundred. A uniform grid of square cells (about two points a cell)
//! is searched ring by ring outwards from the point's cell; once the `k`-th best distance is
//! shorter than the nearest any unvisited ring can be, the answer is final. The answer is the
//! same as sorting all points by `(distance, id)` and keeping `k`, ties included.

use super::schedule::km;

/// A point in projected kilometres, and its id.
pub type Point<Id> = ((f32, f32), Id);

/// Points with ids, bucketed into square cells.
#[derive(Debug, Clone)]
pub struct NearestGrid<Id> {
    origin: (f32, f32),
    cell: f32,
    cols: usize,
    rows: usize,
    /// Points of cell `k` (row-major): `points[starts[k]..starts[k + 1]]`.
    starts: Vec<u32>,
    points: Vec<Point<Id>>,
}

/// Points a cell holds on average; fewer cells are cheaper to skip, fewer points cheaper to
/// measure, and two is about where the costs meet for a dozen neighbours.
const POINTS_PER_CELL: f32 = 2.0;
/// Most cells a side: bounds the grid's memory whatever the points' spread.
const MAX_CELLS_A_SIDE: usize = 1024;

impl<Id: Copy + Ord> NearestGrid<Id> {
    /// Points must be finite.
    pub fn new(points: Vec<Point<Id>>) -> NearestGrid<Id> {
        let (mut lo, mut hi) = ((f32::MAX, f32::MAX), (f32::MIN, f32::MIN));
        for &((x, y), _) in &points {
            lo = (lo.0.min(x), lo.1.min(y));
            hi = (hi.0.max(x), hi.1.max(y));
        }
        if points.is_empty() {
            lo = (0.0, 0.0);
            hi = (0.0, 0.0);
        }
        let (width, height) = (hi.0 - lo.0, hi.1 - lo.1);
        let per_side =
            |extent: f32, cell: f32| ((extent / cell) as usize + 1).clamp(1, MAX_CELLS_A_SIDE);
        let cells_wanted = (points.len() as f32 / POINTS_PER_CELL).max(1.0);
        // Square cells covering the box; a degenerate (flat) box falls back to its long side.
        let cell = (width * height / cells_wanted)
            .sqrt()
            .max(width.max(height) / cells_wanted)
            .max(1e-3);
        let (cols, rows) = (per_side(width, cell), per_side(height, cell));
        // Cells of MAX_CELLS_A_SIDE may not cover the box at `cell`: widen them to cover it.
        let cell = cell.max(width / cols as f32).max(height / rows as f32);
        let mut grid = NearestGrid {
            origin: lo,
            cell,
            cols,
            rows,
            starts: vec![0; cols * rows + 1],
            points: Vec::with_capacity(points.len()),
        };
        let mut keyed: Vec<(usize, Point<Id>)> =
            points.into_iter().map(|p| (grid.cell_of(p.0), p)).collect();
        keyed.sort_by_key(|&(k, (_, id))| (k, id));
        for &(k, _) in &keyed {
            grid.starts[k + 1] += 1;
        }
        for k in 0..cols * rows {
            grid.starts[k + 1] += grid.starts[k];
        }
        grid.points = keyed.into_iter().map(|(_, p)| p).collect();
        grid
    }

    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// Memory held, in bytes.
    pub fn bytes(&self) -> usize {
        self.starts.len() * 4 + self.points.len() * size_of::<Point<Id>>()
    }

    /// Column and row of a point's cell; points outside the grid go to the nearest edge cell.
    fn column_row(&self, (x, y): (f32, f32)) -> (usize, usize) {
        let along = |v: f32, origin: f32, n: usize| {
            let i = ((v - origin) / self.cell).floor();
            // `as` saturates (NaN to 0), so any float lands in 0..n.
            (i.max(0.0) as usize).min(n - 1)
        };
        (
            along(x, self.origin.0, self.cols),
            along(y, self.origin.1, self.rows),
        )
    }

    fn cell_of(&self, at: (f32, f32)) -> usize {
        let (c, r) = self.column_row(at);
        r * self.cols + c
    }

    /// The `k` points nearest to `at` as `(id, distance)`, nearest first, ties by id (all of
    /// them when `k` is at least their number).
    pub fn nearest(&self, at: (f32, f32), k: usize) -> Vec<(Id, f32)> {
        let by_distance_then_id =
            |a: &(Id, f32), b: &(Id, f32)| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0));
        if k >= self.points.len() {
            let mut all: Vec<(Id, f32)> = self
                .points
                .iter()
                .map(|&(xy, id)| (id, km(at, xy)))
                .collect();
            all.sort_unstable_by(by_distance_then_id);
            return all;
        }
        let mut best: Vec<(Id, f32)> = Vec::with_capacity(k + 1);
        if k == 0 {
            return best;
        }
        let (c, r) = self.column_row(at);
        let (c, r) = (c as isize, r as isize);
        let (cols, rows) = (self.cols as isize, self.rows as isize);
        let rings = cols.max(rows);
        for ring in 0..rings {
            let mut visit = |col: isize, row: isize| {
                if col < 0 || row < 0 || col >= cols || row >= rows {
                    return;
                }
                let k_cell = row as usize * self.cols + col as usize;
                let range = self.starts[k_cell] as usize..self.starts[k_cell + 1] as usize;
                for &(xy, id) in &self.points[range] {
                    let candidate = (id, km(at, xy));
                    if best.len() == k && by_distance_then_id(&candidate, &best[k - 1]).is_ge() {
                        continue;
                    }
                    let place =
                        best.partition_point(|b| by_distance_then_id(b, &candidate).is_lt());
                    best.insert(place, candidate);
                    best.truncate(k);
                }
            };
            if ring == 0 {
                visit(c, r);
            } else {
                for col in c - ring..=c + ring {
                    visit(col, r - ring);
                    visit(col, r + ring);
                }
                for row in r - ring + 1..r + ring {
                    visit(c - ring, row);
                    visit(c + ring, row);
                }
            }
            // Unvisited cells are more than `ring` cells away along one axis (from the point's
            // cell, and the point is inside it or beyond it away from the grid), so no point in
            // them is nearer than `ring` cells; the margin absorbs rounding in `km` and cells.
            let nearest_unvisited = (ring as f32 - 0.01) * self.cell;
            if best.len() == k && best[k - 1].1 < nearest_unvisited {
                break;
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn brute_force(points: &[Point<u32>], at: (f32, f32), k: usize) -> Vec<(u32, f32)> {
        let mut all: Vec<(u32, f32)> = points.iter().map(|&(xy, id)| (id, km(at, xy))).collect();
        all.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        all.truncate(k);
        all
    }

    fn check(points: Vec<Point<u32>>, at: (f32, f32), k: usize) {
        let expect = brute_force(&points, at, k);
        let grid = NearestGrid::new(points);
        assert_eq!(grid.nearest(at, k), expect, "at {at:?}, k {k}");
    }

    proptest! {
        #[test]
        fn equals_brute_force(
            // Coordinates on a coarse lattice, so equal distances (ties) are common.
            points in proptest::collection::vec((-40i32..40, -30i32..30), 0..300),
            spread in prop_oneof![Just(0.5f32), Just(1.0), Just(7.3)],
            at in (-80i32..80, -60i32..60),
            k in 0usize..20,
        ) {
            let points = points
                .into_iter()
                .enumerate()
                .map(|(i, (x, y))| ((x as f32 * spread, y as f32 * spread), (i as u32).wrapping_mul(2_654_435_761) % 1000))
                .collect();
            check(points, (at.0 as f32 * 0.7, at.1 as f32 * 0.7), k);
        }
    }

    #[test]
    fn edge_cases() {
        // One point, far away, and a query far outside the grid.
        check(vec![((3.0, 4.0), 7)], (1e6, -1e6), 1);
        // All points at one place: every distance ties, ids decide.
        check(
            vec![((1.0, 1.0), 5), ((1.0, 1.0), 2), ((1.0, 1.0), 9)],
            (0.0, 0.0),
            2,
        );
        // Points on a line (a flat box).
        let line = (0..50).map(|i| ((i as f32, 2.0), i)).collect();
        check(line, (25.3, -8.0), 6);
        // Clustered points with one outlier stretching the grid.
        let mut clustered: Vec<_> = (0..200).map(|i| ((0.01 * i as f32, 0.0), i)).collect();
        clustered.push(((5000.0, 5000.0), 999));
        check(clustered, (1.0, 0.0), 12);
        // No points.
        assert!(
            NearestGrid::<u32>::new(Vec::new())
                .nearest((0.0, 0.0), 3)
                .is_empty()
        );
    }
}
