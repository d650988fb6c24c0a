//! Plausible records in bulk, for load runs and sync tests.

use super::*;

/// Collections whose records carry a `date`.
pub const DATED_COLLECTIONS: [&str; 10] = [
    "absences",
    "access-clockings",
    "activity-durations",
    "assignments",
    "breaks",
    "calculated-totals",
    "clockings",
    "counters",
    "paid-presences",
    "work-interruptions",
];

/// How far back seeded dates go (never before 1 January of the previous year): inside the
/// syncer's default rolling window (243 days back), so seeded records are what its loads and
/// reconciliations see; records dated earlier (its history) are made by the tests that need them.
const SEED_DAYS: i64 = 240;

/// A plausible record of `collection` with this `id`; `date` is used by dated collections.
pub fn sample_record(collection: &str, id: Value, date: &str) -> Value {
    let mut rng = rand::rng();
    let person = json!({"id": rng.random_range(100..200)});
    let name = |prefix: &str| json!({"default": format!("{prefix} {id}"), "translations": {}});
    match collection {
        "absences" => {
            json!({"id": id, "person": person, "date": date, "absenceDefinition": {"id": rng.random_range(1..10)},
                             "durationInMinutes": 480, "status": "Approved"})
        }
        "absence-definitions" => json!({"id": id, "name": name("Absence"), "code": format!("A{id}"),
                                        "isEnabled": true, "absenceGroup": {"id": 1}}),
        "absence-groups" | "counter-groups" => json!({"id": id, "name": name("Group"), "code": format!("G{id}")}),
        "access-clockings" => json!({"id": id, "person": person, "date": date,
                                     "timeOfDayInMinutes": rng.random_range(0..1440), "terminal": {"id": 2},
                                     "status": "AccessOk"}),
        "activity-durations" => {
            json!({"id": id, "person": person, "date": date, "activity": {"id": rng.random_range(1..20)},
                                       "durationInMinutes": rng.random_range(15..480)})
        }
        "assignments" => {
            json!({"id": id, "person": person, "date": date, "shiftDefinition": {"id": rng.random_range(1..5)}})
        }
        "break-definitions" => {
            json!({"id": id, "name": name("Break"), "code": format!("B{id}"), "durationInMinutes": 30})
        }
        "breaks" => json!({"id": id, "person": person, "breakDefinition": {"id": 1}, "date": date,
                           "calculatedDurationInMinutes": 30, "clockedDurationInMinutes": rng.random_range(20..40),
                           "startTimeInMinutes": 720, "endTimeInMinutes": 750, "isBreakTaken": true}),
        "calculated-totals" | "counters" => json!({"id": id, "person": person, "date": date,
                                                   "counterDefinition": {"id": rng.random_range(1..10)},
                                                   "valueInMinutes": rng.random_range(0..600)}),
        "clockings" => {
            json!({"id": id, "person": person, "date": date, "timeOfDayInMinutes": rng.random_range(360..1200),
                              "kind": "InOut", "terminal": {"id": 1}})
        }
        "contracts" => json!({"id": id, "person": person, "startDate": "2020-01-01", "employmentRate": 100}),
        "counter-definitions" => json!({"id": id, "name": name("Counter"), "code": format!("C{id}"),
                                        "friendlyName": name("Counter"), "friendlyCode": {"default": format!("C{id}")},
                                        "isEnabled": true, "counterGroup": {"id": 1}, "unit": "Duration"}),
        "paid-presences" => {
            json!({"id": id, "person": person, "date": date, "durationInMinutes": rng.random_range(240..600),
                                   "shiftDefinition": {"id": 3}})
        }
        "people" => json!({"id": id, "firstName": "Sam", "lastName": format!("Example {id}")}),
        "shift-definitions" => {
            json!({"id": id, "name": name("Shift"), "code": format!("S{id}"), "durationInMinutes": 480})
        }
        "work-interruptions" => json!({"id": id, "person": person, "date": date, "startTimeInMinutes": 600,
                                       "endTimeInMinutes": 600 + rng.random_range(5..120)}),
        _ => json!({"id": id, "date": date}),
    }
}

impl Shared {
    /// See [`Simulator::seed`]: one lock, one scan for the highest id, then O(log n) a record.
    pub(super) fn seed(&self, collection: &str, count: usize) -> Vec<Value> {
        let mut sim = self.lock();
        // Fresh ids: after the highest numeric id listed or deleted.
        let first =
            highest_id(sim.records.get(collection)).max(highest_id(sim.deleted.get(collection))).saturating_add(1);
        let today = sim.now().date_naive();
        let earliest = (today - Duration::days(SEED_DAYS)).max(sim.earliest_delta_start()).min(today);
        let span = (today - earliest).num_days();
        let dated = DATED_COLLECTIONS.contains(&collection);
        let mut rng = rand::rng();
        let mut seeded = Vec::with_capacity(count);
        for n in 0..count as u64 {
            let id = first.saturating_add(n);
            let date = if dated {
                (earliest + Duration::days(rng.random_range(0..=span + ahead_days(collection)))).to_string()
            } else {
                String::new()
            };
            let mut record = sample_record(collection, json!(id), &date);
            if !dated {
                if let Some(fields) = record.as_object_mut() {
                    fields.remove("date");
                }
            }
            seeded.push(sim.upsert(collection, record));
        }
        seeded
    }
}

/// How many days past today a collection's seeded dates reach: clockings up to the next day
/// (night shifts), assignments planned up to three months ahead, the others up to today.
fn ahead_days(collection: &str) -> i64 {
    match collection {
        "clockings" => 1,
        "assignments" => 90,
        _ => 0,
    }
}

/// The highest numeric id among the keys (0 if none).
fn highest_id<V>(ids: Option<&BTreeMap<String, V>>) -> u64 {
    ids.into_iter().flat_map(|m| m.keys()).filter_map(|id| id.parse::<u64>().ok()).max().unwrap_or(0)
}
