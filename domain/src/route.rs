//! The recorder's day as a route: which order of today's visits travels least
//! between the families' homes, without moving any visit far from its time.
//!
//! # The model
//! The day keeps its time slots: the k-th visit of the route takes the k-th
//! scheduled time of the day (the times sorted), so a route only permutes
//! *which* visit fills which slot. A visit may fill a slot only if that slot's
//! time is within the window (`CARELOG_ROUTE_WINDOW_MIN`, default 60 minutes)
//! of its own scheduled time. The order by time always satisfies this (each
//! visit in its own slot), so a route within the window always exists and is
//! never longer than the order by time.
//!
//! Visits whose family has no home coordinates cannot be placed on a map:
//! they keep their slot of the order by time, and the others are routed
//! around them. A leg is measured between consecutive located stops (from the
//! start point, when given, to the first); a stop without coordinates has no
//! leg of its own.
//!
//! The search: nearest neighbour from every feasible first stop, plus the
//! order by time, each improved by 2-opt (reversing a stretch of the route)
//! as long as a reversal shortens it and keeps every visit within its window;
//! the shortest wins. Exact enough for a day's dozen visits, O(n³) per pass.

use chrono::NaiveTime;

/// A point on the earth, in degrees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GeoPoint {
    pub lat: f64,
    pub lng: f64,
}

impl GeoPoint {
    /// A point with both coordinates in range, else the name of the bad one.
    pub fn parse(lat: f64, lng: f64) -> Result<Self, &'static str> {
        if !(lat.is_finite() && (-90.0..=90.0).contains(&lat)) {
            return Err("lat");
        }
        if !(lng.is_finite() && (-180.0..=180.0).contains(&lng)) {
            return Err("lng");
        }
        Ok(GeoPoint { lat, lng })
    }

    /// Great-circle distance in metres (haversine, mean earth radius).
    pub fn distance_m(&self, other: &GeoPoint) -> f64 {
        const EARTH_RADIUS_M: f64 = 6_371_000.0;
        let (p1, p2) = (self.lat.to_radians(), other.lat.to_radians());
        let dp = (other.lat - self.lat).to_radians();
        let dl = (other.lng - self.lng).to_radians();
        let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_M * a.sqrt().min(1.0).asin()
    }
}

/// One visit of the day, as the route sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stop {
    pub scheduled_time: NaiveTime,
    /// The family's home; `None` keeps the visit in its time slot.
    pub home: Option<GeoPoint>,
}

/// One position of the route.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Leg {
    /// Index of the visit in the input.
    pub stop: usize,
    /// Metres from the previous located stop (or the start point); 0 for the
    /// first located stop without a start point; `None` for a stop without
    /// coordinates.
    pub leg_m: Option<f64>,
}

/// The day's route and what it saves against the order by time.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub legs: Vec<Leg>,
    pub total_m: f64,
    pub by_time_total_m: f64,
}

/// Plans the route of `stops` (in any order) from `start`, keeping each visit
/// within `window_min` minutes of its scheduled time (see the module's model).
pub fn plan(stops: &[Stop], start: Option<GeoPoint>, window_min: u32) -> Route {
    let by_time = time_order(stops);
    let slots: Vec<NaiveTime> = by_time.iter().map(|&i| stops[i].scheduled_time).collect();
    // The slots the located visits share; the unlocated keep theirs.
    let free: Vec<usize> = (0..by_time.len())
        .filter(|&k| stops[by_time[k]].home.is_some())
        .collect();
    let located: Vec<usize> = free.iter().map(|&k| by_time[k]).collect();
    let problem = Problem {
        stops,
        start,
        slot_times: free.iter().map(|&k| slots[k]).collect(),
        window_min: i64::from(window_min),
    };
    let mut best = problem.improve(located.clone());
    let mut best_len = problem.length(&best);
    for &first in &located {
        if let Some(seq) = problem.nearest_neighbour(&located, first) {
            let seq = problem.improve(seq);
            let len = problem.length(&seq);
            if len < best_len - 1e-6 {
                best_len = len;
                best = seq;
            }
        }
    }
    let mut order = by_time.clone();
    for (k, stop) in free.iter().zip(best) {
        order[*k] = stop;
    }
    Route {
        legs: legs(stops, start, &order),
        total_m: best_len,
        by_time_total_m: problem.length(&located),
    }
}

/// Indices of `stops` by scheduled time (stable for equal times).
fn time_order(stops: &[Stop]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..stops.len()).collect();
    order.sort_by_key(|&i| stops[i].scheduled_time);
    order
}

fn legs(stops: &[Stop], start: Option<GeoPoint>, order: &[usize]) -> Vec<Leg> {
    let mut at = start;
    order
        .iter()
        .map(|&i| {
            let leg_m = stops[i].home.map(|home| {
                let d = at.map_or(0.0, |from| from.distance_m(&home));
                at = Some(home);
                d
            });
            Leg { stop: i, leg_m }
        })
        .collect()
}

/// The located visits and the slots they share.
struct Problem<'a> {
    stops: &'a [Stop],
    start: Option<GeoPoint>,
    /// The time of each shared slot, in route order.
    slot_times: Vec<NaiveTime>,
    window_min: i64,
}

impl Problem<'_> {
    fn home(&self, i: usize) -> GeoPoint {
        // Only located stops enter the problem.
        self.stops[i].home.unwrap_or(GeoPoint { lat: 0.0, lng: 0.0 })
    }

    fn fits(&self, stop: usize, slot: usize) -> bool {
        let minutes = (self.slot_times[slot] - self.stops[stop].scheduled_time)
            .num_minutes()
            .abs();
        minutes <= self.window_min
    }

    fn feasible(&self, seq: &[usize]) -> bool {
        seq.iter().enumerate().all(|(slot, &stop)| self.fits(stop, slot))
    }

    fn length(&self, seq: &[usize]) -> f64 {
        let mut at = self.start;
        let mut total = 0.0;
        for &i in seq {
            let home = self.home(i);
            total += at.map_or(0.0, |from| from.distance_m(&home));
            at = Some(home);
        }
        total
    }

    /// Greedy: from `first`, always the nearest visit that fits the next slot;
    /// `None` when it paints itself into a corner.
    fn nearest_neighbour(&self, located: &[usize], first: usize) -> Option<Vec<usize>> {
        if !self.fits(first, 0) {
            return None;
        }
        let mut left: Vec<usize> = located.iter().copied().filter(|&i| i != first).collect();
        let mut seq = vec![first];
        while !left.is_empty() {
            let here = self.home(seq[seq.len() - 1]);
            let slot = seq.len();
            let (pos, _) = left
                .iter()
                .enumerate()
                .filter(|(_, &i)| self.fits(i, slot))
                .map(|(pos, &i)| (pos, here.distance_m(&self.home(i))))
                .min_by(|a, b| a.1.total_cmp(&b.1))?;
            seq.push(left.remove(pos));
        }
        Some(seq)
    }

    /// 2-opt: reverse any stretch that shortens the route and keeps it
    /// within the windows, until none does.
    fn improve(&self, mut seq: Vec<usize>) -> Vec<usize> {
        let mut len = self.length(&seq);
        let mut improved = true;
        while improved {
            improved = false;
            for i in 0..seq.len() {
                for j in i + 1..seq.len() {
                    seq[i..=j].reverse();
                    let candidate = self.length(&seq);
                    if candidate < len - 1e-6 && self.feasible(&seq) {
                        len = candidate;
                        improved = true;
                    } else {
                        seq[i..=j].reverse();
                    }
                }
            }
        }
        seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> NaiveTime {
        NaiveTime::parse_from_str(s, "%H:%M").unwrap()
    }
    fn at(time: &str, lat: f64, lng: f64) -> Stop {
        Stop {
            scheduled_time: t(time),
            home: Some(GeoPoint { lat, lng }),
        }
    }
    fn order(r: &Route) -> Vec<usize> {
        r.legs.iter().map(|l| l.stop).collect()
    }

    #[test]
    fn it_should_measure_great_circle_distances_in_metres() {
        let tiananmen = GeoPoint {
            lat: 39.9087,
            lng: 116.3975,
        };
        let shanghai = GeoPoint {
            lat: 31.2304,
            lng: 121.4737,
        };
        let d = tiananmen.distance_m(&shanghai);
        assert!((d - 1_067_000.0).abs() < 5_000.0, "{d}");
        assert_eq!(tiananmen.distance_m(&tiananmen), 0.0);
    }

    /// Homes on a line east of the start: 0, 2, 1, 3 km, visited by time in
    /// that zig-zag order; within a wide window the route walks 0, 1, 2, 3.
    #[test]
    fn it_should_find_a_route_shorter_than_the_time_order_when_the_homes_allow_it() {
        let km = 0.009; // about a kilometre of longitude at the equator
        let stops = [
            at("09:00", 0.0, 0.0),
            at("09:30", 0.0, 2.0 * km),
            at("10:00", 0.0, km),
            at("10:30", 0.0, 3.0 * km),
        ];
        let r = plan(&stops, None, 60);
        assert_eq!(order(&r), vec![0, 2, 1, 3]);
        assert!(r.total_m < r.by_time_total_m, "{r:?}");
        assert!((r.by_time_total_m - 5_000.0).abs() < 50.0, "{r:?}");
        assert!((r.total_m - 3_000.0).abs() < 30.0, "{r:?}");
        let legs: f64 = r.legs.iter().filter_map(|l| l.leg_m).sum();
        assert!((legs - r.total_m).abs() < 1e-6);
        assert_eq!(r.legs[0].leg_m, Some(0.0));
    }

    #[test]
    fn it_should_keep_each_visit_within_its_window_even_when_a_longer_route_results() {
        let km = 0.009;
        // Swapping the 09:00 and 12:00 visits would save travel, but moves
        // each by three hours.
        let stops = [
            at("09:00", 0.0, 2.0 * km),
            at("12:00", 0.0, km),
            at("15:00", 0.0, 3.0 * km),
        ];
        let start = Some(GeoPoint { lat: 0.0, lng: 0.0 });
        let r = plan(&stops, start, 60);
        assert_eq!(order(&r), vec![0, 1, 2]);
        assert_eq!(r.total_m, r.by_time_total_m);
        let wide = plan(&stops, start, 200);
        assert_eq!(order(&wide), vec![1, 0, 2]);
        assert!(wide.total_m < wide.by_time_total_m);
    }

    #[test]
    fn it_should_start_from_the_start_point_when_one_is_given() {
        let km = 0.009;
        let stops = [at("09:00", 0.0, 0.0), at("09:10", 0.0, 5.0 * km)];
        // Without a start, either end will do and the first leg is free.
        let free = plan(&stops, None, 60);
        assert!((free.total_m - 5_000.0).abs() < 50.0);
        // From near the second home, go there first.
        let start = Some(GeoPoint {
            lat: 0.0,
            lng: 5.1 * km,
        });
        let r = plan(&stops, start, 60);
        assert_eq!(order(&r), vec![1, 0]);
        let first = r.legs[0].leg_m.unwrap();
        assert!((first - 100.0).abs() < 5.0, "{first}");
        assert!(r.total_m < r.by_time_total_m);
    }

    #[test]
    fn it_should_keep_visits_without_home_coordinates_in_their_time_slot() {
        let km = 0.009;
        let unknown = Stop {
            scheduled_time: t("09:30"),
            home: None,
        };
        let stops = [
            at("09:00", 0.0, 0.0),
            unknown,
            at("10:00", 0.0, 2.0 * km),
            at("10:30", 0.0, km),
        ];
        let r = plan(&stops, None, 120);
        let o = order(&r);
        assert_eq!(o[1], 1, "the unlocated visit keeps its slot: {o:?}");
        assert_eq!(r.legs[1].leg_m, None);
        assert_eq!(o, vec![0, 1, 3, 2]);
        // The leg after it is measured from the last located home.
        assert!((r.legs[2].leg_m.unwrap() - 1_000.0).abs() < 10.0);
        assert!(r.total_m < r.by_time_total_m);
    }

    #[test]
    fn it_should_plan_an_empty_day_as_an_empty_route() {
        let r = plan(&[], None, 60);
        assert!(r.legs.is_empty());
        assert_eq!((r.total_m, r.by_time_total_m), (0.0, 0.0));
    }
}
