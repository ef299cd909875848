//! Batch re-balancing: a queue of referrals (a day or a week of them) assigned to free slots at
//! minimum total cost, by min-cost flow.
//!
//! The cost of giving request `r` (district δ, specialty s, earliest day e) a slot at clinic c on
//! day d is `travel(δ, c) + wait × (d − e)`, plus, per clinic-day, a convex piecewise-linear
//! penalty on its load: each booking that lifts the clinic-day's utilisation into band k costs
//! `tiers[k].1` points. Leaving a request unassigned costs `unassigned` points. Travel is measured
//! from the district's centre (the mean location of its clinics), so requests of one district,
//! specialty and earliest day are interchangeable and form one group: 200,000 referrals make a
//! network of a few thousand group nodes. Costs are integers in milli-points (each term rounded
//! once: travel per district-clinic pair, wait per day, each tier's price).
//!
//! Network: group → (clinic, specialty, entry day) for the `nearest` clinics of the specialty
//! (cost: travel and the days already waited before the horizon's first bookable day); a chain
//! (c, s, d) → (c, s, d + 1) costing one day of waiting; (c, s, d) → (c, d) carrying at most the
//! free slots; (c, d) → sink once per load band, capacity the band's slots, cost its price; and
//! group → sink for the unassigned. The flow is decomposed first in, first served along each
//! chain (any decomposition has the same cost), then into specific slots, earliest first.
//!
//! The greedy baseline for comparison: each request in turn takes the nearest of its candidate
//! clinics that has a free slot, and that clinic's earliest one.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use allot_solvers::mcf::{self, ArcId, INFINITE_CAPACITY, Network, NodeId};

use super::engine::Engine;
use super::error::{Error, Result};
use super::ids::AppointmentId;
use super::inputs::Request;
use super::pending::Pending;
use super::schedule::{ClinicRef, DoctorRef, SlotInfo, SlotRef, SpecialtyRef, km};
use super::state::{Effect, FREE, Inventory, patient_shard};
use super::time::LocalTime;
use crate::log::codec::{Canonical, Writer};
use crate::log::decision::{AllocationRun, Domain, RunCounts, SlotBooked};
use crate::log::{Digest, Parameters};

/// The re-balancing objective.
#[derive(Debug, Clone, PartialEq)]
pub struct RebalanceOptions {
    pub travel_per_km: f64,
    pub wait_per_day: f64,
    /// Load bands of a clinic-day: `(utilisation up to, points per booking in the band)`, both
    /// increasing (so the penalty is convex); the last band ends at 1.
    pub tiers: Vec<(f64, f64)>,
    /// Candidate clinics per group: the nearest with the specialty.
    pub nearest: usize,
    /// Points for a request left unassigned.
    pub unassigned: f64,
}

impl Default for RebalanceOptions {
    fn default() -> Self {
        RebalanceOptions {
            travel_per_km: 1.0,
            wait_per_day: 3.0,
            tiers: vec![(0.7, 0.0), (0.85, 2.0), (0.95, 6.0), (1.0, 15.0)],
            nearest: 16,
            unassigned: 500.0,
        }
    }
}

fn milli(points: f64) -> i64 {
    (points * 1000.0).round() as i64
}

impl RebalanceOptions {
    /// Checks the bands: increasing bounds ending at 1, non-decreasing prices.
    pub fn check(&self) -> Result<()> {
        let bad = |p: String| Err(Error::bad("tiers", p));
        if self.tiers.is_empty() || (self.tiers[self.tiers.len() - 1].0 - 1.0).abs() > 1e-9 {
            return bad("the last load band must end at utilisation 1".into());
        }
        for w in self.tiers.windows(2) {
            if w[1].0 <= w[0].0 || w[1].1 < w[0].1 {
                return bad(format!(
                    "bands must rise in utilisation and price (convex): {:?} then {:?}",
                    w[0], w[1]
                ));
            }
        }
        if self.tiers[0].0 <= 0.0 {
            return bad("the first band must end above utilisation 0".into());
        }
        for (what, v) in [
            ("travel_per_km", self.travel_per_km),
            ("wait_per_day", self.wait_per_day),
            ("unassigned", self.unassigned),
        ] {
            if !(0.0..=1e6).contains(&v) {
                return Err(Error::bad(what, format!("{v} is outside 0..1e6")));
            }
        }
        if self.nearest == 0 {
            return Err(Error::bad("nearest", "at least one candidate clinic"));
        }
        Ok(())
    }

    /// Travel cost in milli-points for a distance in km.
    pub fn travel_cost(&self, km: f32) -> i64 {
        milli(self.travel_per_km * f64::from(km))
    }

    /// Waiting cost in milli-points per day.
    pub fn wait_cost(&self) -> i64 {
        milli(self.wait_per_day)
    }

    pub fn unassigned_cost(&self) -> i64 {
        milli(self.unassigned)
    }

    fn parameters(&self) -> Parameters {
        let mut p = Parameters::new();
        p.insert("travel_per_km".into(), self.travel_per_km.to_string());
        p.insert("wait_per_day".into(), self.wait_per_day.to_string());
        p.insert("nearest".into(), self.nearest.to_string());
        p.insert("unassigned".into(), self.unassigned.to_string());
        let tiers: Vec<String> = self.tiers.iter().map(|(u, c)| format!("{u}:{c}")).collect();
        p.insert("tiers".into(), tiers.join(","));
        p
    }
}

/// Slots per load band of a clinic-day with `used` of `avail` slots taken: band k holds the
/// bookings that lift utilisation from `tiers[k-1].0` to `tiers[k].0` (the part above `used`).
/// The bands sum to `avail - used`.
pub fn tier_capacities(used: u32, avail: u32, tiers: &[(f64, f64)]) -> Vec<u32> {
    let mut lower = used;
    tiers
        .iter()
        .enumerate()
        .map(|(k, &(upto, _))| {
            let upper = if k + 1 == tiers.len() {
                avail
            } else {
                ((upto * f64::from(avail)).floor() as u32).min(avail)
            };
            let cap = upper.saturating_sub(lower);
            lower = lower.max(upper);
            cap
        })
        .collect()
}

/// Milli-points of the load penalty for `added` bookings on a clinic-day (cheapest bands first).
pub fn load_cost(used: u32, avail: u32, added: u32, options: &RebalanceOptions) -> i64 {
    let mut left = added;
    let mut cost = 0;
    for (cap, &(_, price)) in tier_capacities(used, avail, &options.tiers)
        .into_iter()
        .zip(&options.tiers)
    {
        let n = left.min(cap);
        cost += i64::from(n) * milli(price);
        left -= n;
    }
    cost
}

/// How an assignment does.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub assigned: usize,
    pub unassigned: usize,
    /// The objective, in points.
    pub cost: f64,
    pub mean_travel_km: f64,
    pub mean_wait_days: f64,
    pub p50_wait_days: u32,
    pub p95_wait_days: u32,
    pub max_wait_days: u32,
    /// Over the clinic-days from today on, after the assignment.
    pub max_utilisation: f64,
    pub mean_utilisation: f64,
    /// Standard deviation of the clinic-days' utilisation.
    pub utilisation_spread: f64,
}

/// A re-balancing plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Per request (input order), its slot or none.
    pub slots: Vec<Option<SlotRef>>,
    /// The flow's optimum, milli-points.
    pub flow_cost: i64,
    pub optimal: Outcome,
    /// The greedy baseline on the same inventory.
    pub greedy: Outcome,
    pub greedy_slots: Vec<Option<SlotRef>>,
    pub groups: usize,
    pub nodes: usize,
    pub arcs: usize,
    pub solve_seconds: f64,
    pub seconds: f64,
    /// The min-cost flow network that was solved (for side-by-side runs against other solvers).
    pub network: Network,
}

/// Free inventory as seen by one plan: capacities per (clinic, specialty, day) and the slots
/// themselves, earliest first, looked up lazily.
struct Stock<'a> {
    inv: &'a Inventory,
    now: LocalTime,
    today: u32,
    slots: HashMap<(u32, u8, u32), Vec<SlotRef>>,
}

impl Stock<'_> {
    fn free(&mut self, c: ClinicRef, s: SpecialtyRef, day: u32) -> &mut Vec<SlotRef> {
        let (inv, now) = (self.inv, self.now);
        self.slots.entry((c.0, s.0, day)).or_insert_with(|| {
            let sched = &inv.schedule;
            let midnight = sched.date(day).start();
            let mut out: Vec<(i64, SlotRef)> = Vec::new();
            for &d in sched.clinic_doctors(c, s) {
                for (k, slot) in sched.doctor_day(d, day).enumerate() {
                    let start =
                        midnight.add_minutes(i64::from(sched.start_minute(d, day, k as u32)));
                    if start > now && inv.status(slot) == FREE {
                        out.push((start.0, SlotRef(slot)));
                    }
                }
            }
            // Latest last, so taking the earliest is a pop.
            out.sort_unstable_by(|a, b| b.cmp(a));
            out.into_iter().map(|x| x.1).collect()
        })
    }

    fn capacity(&mut self, c: ClinicRef, s: SpecialtyRef, day: u32) -> u32 {
        if day > self.today {
            self.inv
                .free_in(self.inv.csd(c.index(), s.index(), day as usize))
        } else {
            self.free(c, s, day).len() as u32
        }
    }
}

/// A (clinic, specialty) pair, the key of a chain of days.
type ChainKey = (u32, u8);

#[derive(Debug)]
struct Group {
    district: u32,
    specialty: SpecialtyRef,
    earliest: i64,
    requests: Vec<usize>,
}

impl Engine {
    /// Plans the assignment of `requests` to the free slots now (nothing changes; see
    /// [`Engine::book_plan`]). Also computes the greedy baseline on the same inventory.
    pub fn plan_rebalance(&self, requests: &[Request], options: &RebalanceOptions) -> Result<Plan> {
        options.check()?;
        let started = Instant::now();
        let e = &self.inner;
        e.check()?;
        let s = &*e.schedule;
        let now = e.now_local();
        let today = s.day_of(now).max(0);
        if today >= i64::from(s.days) {
            return Err(Error::bad("now", "the horizon has passed"));
        }
        let today = today as u32;
        let days = s.days;

        let mut groups: BTreeMap<(u32, u8, i64), Group> = BTreeMap::new();
        for (i, r) in requests.iter().enumerate() {
            let earliest = s.day_of(r.earliest.start());
            groups
                .entry((r.district.0, r.specialty.0, earliest))
                .or_insert_with(|| Group {
                    district: r.district.0,
                    specialty: r.specialty,
                    earliest,
                    requests: Vec::new(),
                })
                .requests
                .push(i);
        }
        let groups: Vec<Group> = groups.into_values().collect();

        let mut stock = Stock {
            inv: &e.inv,
            now,
            today,
            slots: HashMap::new(),
        };
        let wait = options.wait_cost();
        let mut net = Network::new();
        let sink = net.add_node();
        let mut total: i64 = 0;
        // Chains and clinic-days are made when a group first reaches them.
        let mut chains: HashMap<(u32, u8), NodeId> = HashMap::new();
        let mut clinic_days: HashMap<u32, NodeId> = HashMap::new();
        let mut serve_arcs: Vec<(ArcId, ClinicRef, SpecialtyRef, u32)> = Vec::new();
        let mut entry_arcs: Vec<(ArcId, usize, ClinicRef, u32)> = Vec::new();
        let mut candidates: Vec<Vec<(ClinicRef, f32)>> = Vec::with_capacity(groups.len());
        let span = days - today;
        for (g, group) in groups.iter().enumerate() {
            let n = group.requests.len() as i64;
            total += n;
            let node = net.add_node();
            net.set_supply(node, n)?;
            net.add_arc(node, sink, n, options.unassigned_cost());
            let centre = s.districts[group.district as usize].centre;
            let near = s.nearest_clinics(group.specialty, centre, options.nearest);
            let entry = group.earliest.max(i64::from(today));
            if entry < i64::from(days) {
                let entry = entry as u32;
                let waited = (i64::from(entry) - group.earliest) * wait;
                for &(c, dist) in &near {
                    let chain = match chains.get(&(c.0, group.specialty.0)) {
                        Some(&first) => first,
                        None => {
                            let first = net.add_nodes(span as usize)?;
                            let cd = match clinic_days.get(&c.0) {
                                Some(&x) => x,
                                None => {
                                    let x = net.add_nodes(span as usize)?;
                                    for j in 0..span {
                                        let day = today + j;
                                        let (used, avail) = e.inv.load(c.index(), day as usize);
                                        let caps = tier_capacities(used, avail, &options.tiers);
                                        for (cap, &(_, price)) in caps.iter().zip(&options.tiers) {
                                            if *cap > 0 {
                                                net.add_arc(
                                                    NodeId(x.0 + j),
                                                    sink,
                                                    i64::from(*cap),
                                                    milli(price),
                                                );
                                            }
                                        }
                                    }
                                    clinic_days.insert(c.0, x);
                                    x
                                }
                            };
                            for j in 0..span {
                                let day = today + j;
                                if j + 1 < span {
                                    net.add_arc(
                                        NodeId(first.0 + j),
                                        NodeId(first.0 + j + 1),
                                        INFINITE_CAPACITY,
                                        wait,
                                    );
                                }
                                let cap = stock.capacity(c, group.specialty, day);
                                if cap > 0 {
                                    let arc = net.add_arc(
                                        NodeId(first.0 + j),
                                        NodeId(cd.0 + j),
                                        i64::from(cap),
                                        0,
                                    );
                                    serve_arcs.push((arc, c, group.specialty, day));
                                }
                            }
                            chains.insert((c.0, group.specialty.0), first);
                            first
                        }
                    };
                    let arc = net.add_arc(
                        node,
                        NodeId(chain.0 + (entry - today)),
                        n,
                        options.travel_cost(dist) + waited,
                    );
                    entry_arcs.push((arc, g, c, entry));
                }
            }
            candidates.push(near);
        }
        net.set_supply(sink, -total)?;
        let (nodes, arcs) = (net.node_count(), net.arc_count());
        let solving = Instant::now();
        let solution = mcf::solve(&net)?;
        let solve_seconds = solving.elapsed().as_secs_f64();

        // First in, first served along each chain.
        // Per (clinic, specialty) chain: (entry day, group, flow).
        let mut entries: HashMap<ChainKey, Vec<(u32, usize, i64)>> = HashMap::new();
        for &(arc, g, c, entry) in &entry_arcs {
            let f = solution.flow[arc.index()];
            if f > 0 {
                entries
                    .entry((c.0, groups[g].specialty.0))
                    .or_default()
                    .push((entry, g, f));
            }
        }
        let mut served: HashMap<(u32, u8), Vec<(u32, i64)>> = HashMap::new();
        for &(arc, c, sp, day) in &serve_arcs {
            let f = solution.flow[arc.index()];
            if f > 0 {
                served.entry((c.0, sp.0)).or_default().push((day, f));
            }
        }
        let mut next_request: Vec<usize> = vec![0; groups.len()];
        let mut slots: Vec<Option<SlotRef>> = vec![None; requests.len()];
        let mut taken: HashMap<&str, Vec<SlotInfo>> = HashMap::new();
        let mut left: HashMap<(u32, u8, u32), Vec<SlotRef>> = HashMap::new();
        let mut chain_keys: Vec<(u32, u8)> = served.keys().copied().collect();
        chain_keys.sort_unstable();
        for key in chain_keys {
            let mut queue = entries.remove(&key).unwrap_or_default();
            queue.sort_unstable();
            let mut serves = served.remove(&key).unwrap_or_default();
            serves.sort_unstable();
            let mut head = 0;
            for (day, mut f) in serves {
                while f > 0 && head < queue.len() {
                    let (entry, g, ref mut remaining) = queue[head];
                    if entry > day {
                        return Err(Error::Internal(format!(
                            "flow served on day {day} before it entered on day {entry}"
                        )));
                    }
                    let k = (*remaining).min(f);
                    *remaining -= k;
                    f -= k;
                    if *remaining == 0 {
                        head += 1;
                    }
                    let free = left.entry((key.0, key.1, day)).or_insert_with(|| {
                        stock
                            .free(ClinicRef(key.0), SpecialtyRef(key.1), day)
                            .clone()
                    });
                    for _ in 0..k {
                        let group = &groups[g];
                        let Some(&r) = group.requests.get(next_request[g]) else {
                            break;
                        };
                        next_request[g] += 1;
                        let patient = requests[r].patient.as_str();
                        let mine = taken.entry(patient).or_default();
                        // The earliest free slot that does not overlap the patient's others.
                        if let Some(pos) = free.iter().rposition(|&x| {
                            let i = s.slot(x);
                            !mine.iter().any(|m| m.overlaps(&i))
                        }) {
                            let slot = free.remove(pos);
                            mine.push(s.slot(slot));
                            slots[r] = Some(slot);
                        }
                    }
                }
            }
        }

        let greedy_slots = self.greedy(requests, &groups, &candidates, &mut stock, today);
        let optimal = self.evaluate(requests, &slots, options, today);
        let greedy = self.evaluate(requests, &greedy_slots, options, today);
        Ok(Plan {
            slots,
            flow_cost: solution.cost,
            optimal,
            greedy,
            greedy_slots,
            groups: groups.len(),
            nodes,
            arcs,
            solve_seconds,
            seconds: started.elapsed().as_secs_f64(),
            network: net,
        })
    }

    /// Nearest clinic with a free slot, its earliest one; requests in order.
    fn greedy(
        &self,
        requests: &[Request],
        groups: &[Group],
        candidates: &[Vec<(ClinicRef, f32)>],
        stock: &mut Stock<'_>,
        today: u32,
    ) -> Vec<Option<SlotRef>> {
        let s = &*self.inner.schedule;
        let mut left: HashMap<(u32, u8, u32), Vec<SlotRef>> = HashMap::new();
        let mut out = vec![None; requests.len()];
        let mut taken: HashMap<&str, Vec<SlotInfo>> = HashMap::new();
        let group_of: HashMap<usize, usize> = groups
            .iter()
            .enumerate()
            .flat_map(|(g, group)| group.requests.iter().map(move |&r| (r, g)))
            .collect();
        for (r, req) in requests.iter().enumerate() {
            let g = group_of[&r];
            let entry = groups[g].earliest.max(i64::from(today));
            if entry >= i64::from(s.days) {
                continue;
            }
            let mine = taken.entry(req.patient.as_str()).or_default();
            'clinics: for &(c, _) in &candidates[g] {
                for day in entry as u32..s.days {
                    let free = left
                        .entry((c.0, req.specialty.0, day))
                        .or_insert_with(|| stock.free(c, req.specialty, day).clone());
                    if let Some(pos) = free.iter().rposition(|&x| {
                        let i = s.slot(x);
                        !mine.iter().any(|m| m.overlaps(&i))
                    }) {
                        let slot = free.remove(pos);
                        mine.push(s.slot(slot));
                        out[r] = Some(slot);
                        break 'clinics;
                    }
                }
            }
        }
        out
    }

    /// The objective and the figures of an assignment.
    fn evaluate(
        &self,
        requests: &[Request],
        slots: &[Option<SlotRef>],
        options: &RebalanceOptions,
        today: u32,
    ) -> Outcome {
        let e = &self.inner;
        let s = &*e.schedule;
        let mut cost: i64 = 0;
        let mut waits = Vec::new();
        let mut travel = 0.0;
        let mut added: HashMap<(u32, u32), u32> = HashMap::new();
        for (r, slot) in requests.iter().zip(slots) {
            match slot {
                Some(x) => {
                    let i = s.slot(*x);
                    let dist = km(
                        s.districts[r.district.index()].centre,
                        s.clinics[i.clinic.index()].xy,
                    );
                    let w = (i64::from(i.day) - s.day_of(r.earliest.start())).max(0);
                    cost += options.travel_cost(dist) + w * options.wait_cost();
                    travel += f64::from(dist);
                    waits.push(w as u32);
                    *added.entry((i.clinic.0, i.day)).or_default() += 1;
                }
                None => cost += options.unassigned_cost(),
            }
        }
        for (&(c, day), &n) in &added {
            let (used, avail) = e.inv.load(c as usize, day as usize);
            cost += load_cost(used, avail, n, options);
        }
        let mut utilisation = Vec::new();
        for c in 0..s.clinics.len() {
            for day in today..s.days {
                let (used, avail) = e.inv.load(c, day as usize);
                if avail > 0 {
                    let n = added.get(&(c as u32, day)).copied().unwrap_or(0);
                    utilisation.push(f64::from(used + n) / f64::from(avail));
                }
            }
        }
        waits.sort_unstable();
        let pct = |p: f64| {
            if waits.is_empty() {
                0
            } else {
                waits[((waits.len() - 1) as f64 * p).round() as usize]
            }
        };
        let n = utilisation.len().max(1) as f64;
        let mean_u = utilisation.iter().sum::<f64>() / n;
        let var = utilisation
            .iter()
            .map(|u| (u - mean_u).powi(2))
            .sum::<f64>()
            / n;
        let assigned = waits.len();
        Outcome {
            assigned,
            unassigned: requests.len() - assigned,
            cost: cost as f64 / 1000.0,
            mean_travel_km: travel / assigned.max(1) as f64,
            mean_wait_days: waits.iter().map(|&w| f64::from(w)).sum::<f64>()
                / assigned.max(1) as f64,
            p50_wait_days: pct(0.5),
            p95_wait_days: pct(0.95),
            max_wait_days: waits.last().copied().unwrap_or(0),
            max_utilisation: utilisation.iter().copied().fold(0.0, f64::max),
            mean_utilisation: mean_u,
            utilisation_spread: var.sqrt(),
        }
    }

    /// Books a plan: one `AllocationRun` (mechanism `mcf`, the requests' and the assignment's
    /// digests) and a `SlotBooked` per request, as one batch. A slot taken since the plan was
    /// made, or one overlapping the patient's appointments, is skipped (its request gets none).
    pub fn book_plan(
        &self,
        actor: &str,
        run: &str,
        requests: &[Request],
        plan: &Plan,
        options: &RebalanceOptions,
    ) -> Result<Vec<Option<AppointmentId>>> {
        self.begin_book_plan(actor, run, requests, plan, options)?
            .wait()
    }

    pub fn begin_book_plan(
        &self,
        actor: &str,
        run: &str,
        requests: &[Request],
        plan: &Plan,
        options: &RebalanceOptions,
    ) -> Result<Pending<Vec<Option<AppointmentId>>>> {
        let e = &self.inner;
        e.check()?;
        crate::input::check_id(run).map_err(|p| Error::bad("run", p))?;
        if plan.slots.len() != requests.len() {
            return Err(Error::bad("plan", "it was made for other requests"));
        }
        // Every request is checked before anything changes: an error leaves the inventory as
        // it was (nothing is applied that would then not be logged).
        for r in requests {
            crate::input::check_id(&r.patient).map_err(|p| {
                Error::bad(
                    "patient",
                    format!("request {}: {p}", crate::input::clip(&r.id)),
                )
            })?;
        }
        let s = &*e.schedule;
        let now = e.clock.now();
        let now_local = e.now_local();
        let mut locks = e.inv.lock_all();
        let mut booked = vec![None; requests.len()];
        let mut batch = e.batch(now);
        let mut bookings = Vec::new();
        for (i, (r, slot)) in requests.iter().zip(&plan.slots).enumerate() {
            let Some(slot) = *slot else { continue };
            let info = s.slot(slot);
            if e.inv.status(slot.0) != FREE || info.start <= now_local {
                continue;
            }
            let shard = patient_shard(&r.patient);
            let g = &mut locks.patients[shard];
            let p = g.intern(shard, &r.patient);
            if g.active(p).any(|x| s.slot(SlotRef(x)).overlaps(&info)) {
                continue;
            }
            let appt = g.new_appt(shard);
            e.inv
                .apply(
                    g,
                    &Effect::Book {
                        patient: p,
                        slot: slot.0,
                        appt,
                        hold: None,
                    },
                )
                .map_err(Error::Internal)?;
            booked[i] = Some(AppointmentId(appt));
            bookings.push((i, slot, appt));
        }
        let mut canon = Writer::new();
        for r in requests {
            for field in [
                r.id.as_str(),
                r.patient.as_str(),
                &s.districts[r.district.index()].id,
                s.specialty_code(r.specialty),
            ] {
                field.to_owned().encode(&mut canon);
            }
            r.earliest.to_string().encode(&mut canon);
        }
        let mut outcome = Writer::new();
        for &(i, slot, appt) in &bookings {
            requests[i].id.clone().encode(&mut outcome);
            s.slot_id(slot).encode(&mut outcome);
            AppointmentId(appt).to_string().encode(&mut outcome);
        }
        batch.push(actor, run, || {
            AllocationRun {
                domain: Domain::Appointments,
                mechanism: "mcf".into(),
                input_digest: Digest::of(&canon.into_bytes()),
                parameters: options.parameters(),
                seed: None,
                outcome_digest: Digest::of(&outcome.into_bytes()),
                counts: RunCounts {
                    participants: requests.len() as u64,
                    places: plan.slots.iter().flatten().count() as u64,
                    assigned: bookings.len() as u64,
                },
            }
            .into()
        });
        for &(i, slot, appt) in &bookings {
            batch.push(actor, &requests[i].patient, || {
                SlotBooked {
                    slot: s.slot_id(slot),
                    appointment: AppointmentId(appt).to_string(),
                    hold: None,
                }
                .into()
            });
        }
        let ack = e.submit_all(batch)?;
        drop(locks);
        Ok(Pending::new(&self.inner, ack, booked, Vec::new()))
    }

    /// A doctor's id (for output files).
    pub fn doctor_id(&self, d: DoctorRef) -> &str {
        &self.inner.schedule.doctors[d.index()].id
    }
}
