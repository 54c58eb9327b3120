//! The list queries keep plans that stay fast at a million rows: checked with
//! `EXPLAIN` on both read stores (MySQL and SQLite), not with timings.

use domain::ids::UserId;
use projections::families::{families_by_id_sql, family_list_sql, Start};
use projections::store::RowExt;
use projections::{Dialect, PageParams};

use crate::dual;
use crate::helpers::{spawn_app, Backend};

dual!(
    the_family_list_reads_an_index_in_order_and_counts_without_scanning,
    a_patients_history_reads_the_events_by_key_without_statistics,
    a_users_history_reads_the_events_by_key,
    the_followers_page_reads_the_events_by_position,
    the_access_log_is_read_by_index_in_order,
    indexed_times_dates_and_codes_compare_byte_by_byte,
    a_patients_records_come_newest_first_from_the_index_without_a_sort,
    a_patients_medical_orders_come_newest_first_from_the_index_without_a_sort,
);

/// A patient's records page and the family detail's last record read
/// `health_records_patient` backwards and stop at the page (or the first
/// row). With the id ascending after the three descending columns, MySQL
/// sorted every record of the patient on each read: at 1,001 records 0.94 ms
/// of sorting for the page and 0.93 ms for the last record, against 0.15 ms
/// and 0.01 ms in index order (docs/performance.md, thirty-third session).
async fn a_patients_records_come_newest_first_from_the_index_without_a_sort(b: Backend) {
    use projections::records::{LATEST_RECORD_ID, RECORDS_NEWEST_FIRST};
    let app = spawn_app(b).await;
    let family = app.family("记录多的家").await;
    let patient = app.patient(&family, "老病号").await;
    let read = &app.state.read().await;
    let patient_of = |n: usize| match n % 50 {
        7 => patient.clone(),
        k => format!("pat-{k:02}"),
    };
    // 50 patients of 100 records each; a patient's records (n = 50 k + its
    // number) fall on 12 dates, times and instants, so ids break ties.
    let month = |n: usize| 1 + (n / 50) % 4;
    let hour = |n: usize| 8 + (n / 50) % 2;
    let milli = |n: usize| (n / 50) % 3;
    for chunk in 0..10 {
        let values: Vec<String> = (0..500)
            .map(|i| {
                let n = chunk * 500 + i;
                format!(
                    "('rec-{n:05}', '{}', 'rec-er', '2026-{:02}-{:02}', '{:02}:00', 0, '[]', 0, \
                     '2026-12-01T08:00:00.{:03}Z', '2026-12-01T08:00:00.000Z', 1)",
                    patient_of(n),
                    month(n),
                    1 + n % 50 % 28,
                    hour(n),
                    milli(n),
                )
            })
            .collect();
        sqlx::query(&format!(
            "INSERT INTO health_records (id, patient_id, recorder_id, visit_date, visit_time, away_from_home, \
             alerts, abnormal, created_at, updated_at, version) VALUES {}",
            values.join(", ")
        ))
        .execute(read.writer())
        .await
        .unwrap();
    }
    if read.dialect() == Dialect::MySql {
        sqlx::query("ANALYZE TABLE health_records")
            .execute(read.writer())
            .await
            .unwrap();
    }
    let page =
        format!("SELECT * FROM health_records WHERE patient_id = ? ORDER BY {RECORDS_NEWEST_FIRST} LIMIT ? OFFSET ?");
    let last = format!("SELECT p.id, ({LATEST_RECORD_ID}) AS last_id FROM patients p WHERE p.id = ?");
    for (sql, paged) in [(&page, true), (&last, false)] {
        read_in_index_order(read, sql, &patient, paged, "health_records_patient").await;
    }
    // The order itself: newest date, time and instant first, then newest id.
    let ids: Vec<String> = sqlx::query_scalar(&format!(
        "SELECT id FROM health_records WHERE patient_id = ? ORDER BY {RECORDS_NEWEST_FIRST}"
    ))
    .bind(&patient)
    .fetch_all(read.pool())
    .await
    .unwrap();
    assert_eq!(ids.len(), 100);
    let mut by_hand = ids.clone();
    let key = |id: &String| id[4..].parse::<usize>().unwrap();
    by_hand.sort_by_key(|id| {
        let n = key(id);
        std::cmp::Reverse((month(n), 1 + n % 50 % 28, hour(n), milli(n), n))
    });
    assert_eq!(ids, by_hand);
}

/// Asserts that `sql`, for `patient`, reads `index` and sorts none of the
/// patient's rows. SQLite's index ends in its rowid, not the id: it orders
/// the rows alike in the other columns as it goes ("FOR RIGHT PART OF ORDER
/// BY"), stopping at the page, which is no sort of the whole.
async fn read_in_index_order(read: &projections::ReadStore, sql: &str, patient: &str, paged: bool, index: &str) {
    let lines = plan_of(read, sql, &[patient.to_string()], paged).await;
    assert!(
        lines.iter().any(|l| l.contains(index)),
        "read by the patient's index: {lines:?}"
    );
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("filesort") || l.contains("USE TEMP B-TREE FOR ORDER BY")),
        "no sort of the patient's rows: {lines:?}"
    );
}

/// A patient's medical orders page and their latest doctor read
/// `medical_orders_patient` backwards, as the records do (above).
async fn a_patients_medical_orders_come_newest_first_from_the_index_without_a_sort(b: Backend) {
    use projections::orders::{LATEST_DOCTOR, ORDERS_NEWEST_FIRST};
    let app = spawn_app(b).await;
    let read = &app.state.read().await;
    // 50 patients of 100 orders each; a patient's orders fall on 6 instants,
    // so ids break ties.
    let instant = |n: usize| format!("2026-12-0{}T08:00:00.000Z", 1 + (n / 50) % 6);
    fodder(
        read,
        "medical_orders (id, patient_id, doctor_id, order_type, content, status, created_at, updated_at, version)",
        |n| {
            format!(
                "('ord-{n:05}', 'pat-{:02}', 'doc-{:02}', 'medication', '遵医嘱', 'active', '{}', '{}', 1)",
                n % 50,
                n % 7,
                instant(n),
                instant(n)
            )
        },
    )
    .await;
    if read.dialect() == Dialect::MySql {
        sqlx::query("ANALYZE TABLE medical_orders")
            .execute(read.writer())
            .await
            .unwrap();
    }
    let page =
        format!("SELECT * FROM medical_orders WHERE patient_id = ? ORDER BY {ORDERS_NEWEST_FIRST} LIMIT ? OFFSET ?");
    for (sql, paged) in [(page.as_str(), true), (LATEST_DOCTOR, false)] {
        read_in_index_order(read, sql, "pat-07", paged, "medical_orders_patient").await;
    }
    let ids: Vec<String> = sqlx::query_scalar(&format!(
        "SELECT id FROM medical_orders WHERE patient_id = 'pat-07' ORDER BY {ORDERS_NEWEST_FIRST}"
    ))
    .fetch_all(read.pool())
    .await
    .unwrap();
    assert_eq!(ids.len(), 100);
    let mut by_hand = ids.clone();
    by_hand.sort_by_key(|id| {
        let n: usize = id[4..].parse().unwrap();
        std::cmp::Reverse((instant(n), n))
    });
    assert_eq!(ids, by_hand);
}

/// The indexed columns that hold text people type: the only ones compared
/// by a collation for people (case-insensitive on MySQL).
const PEOPLES_TEXT: [&str; 5] = [
    "families.family_name",
    "hospital_departments.name",
    "hospitals.name",
    "patients.name",
    "users.username",
];

/// Every other indexed column holds what the server writes (ids, instants,
/// dates, times, codes, digests) and compares byte by byte, as on SQLite, not
/// through the Unicode collation algorithm on every index descent and index
/// build (migration 0021).
async fn indexed_times_dates_and_codes_compare_byte_by_byte(b: Backend) {
    let app = spawn_app(b).await;
    let read = &app.state.read().await;
    let mut by_collation: Vec<String> = match read.dialect() {
        Dialect::MySql => sqlx::query(
            "SELECT DISTINCT CONCAT(c.TABLE_NAME, '.', c.COLUMN_NAME) AS col
             FROM information_schema.STATISTICS s
             JOIN information_schema.COLUMNS c ON c.TABLE_SCHEMA = s.TABLE_SCHEMA
                  AND c.TABLE_NAME = s.TABLE_NAME AND c.COLUMN_NAME = s.COLUMN_NAME
             WHERE s.TABLE_SCHEMA = DATABASE() AND c.COLLATION_NAME IS NOT NULL
               AND c.COLLATION_NAME NOT LIKE '%\\_bin'",
        )
        .fetch_all(read.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| r.text("col").unwrap())
        .collect(),
        Dialect::Sqlite => {
            let indexes = sqlx::query("SELECT tbl_name AS t, name AS i FROM sqlite_schema WHERE type = 'index'")
                .fetch_all(read.pool())
                .await
                .unwrap();
            assert!(indexes.len() > 20, "{} indexes", indexes.len());
            let mut cols = Vec::new();
            for r in &indexes {
                let (t, i) = (r.text("t").unwrap(), r.text("i").unwrap());
                let keys = sqlx::query(&format!(
                    "SELECT name, coll FROM pragma_index_xinfo('{i}') WHERE key = 1"
                ))
                .fetch_all(read.pool())
                .await
                .unwrap();
                assert!(!keys.is_empty(), "{t}.{i} has no key columns");
                for k in keys {
                    if k.text("coll").unwrap() != "BINARY" {
                        cols.push(format!("{t}.{}", k.text("name").unwrap()));
                    }
                }
            }
            cols
        }
    };
    by_collation.sort();
    by_collation.dedup();
    let expected: Vec<String> = match read.dialect() {
        Dialect::MySql => PEOPLES_TEXT.iter().map(|c| c.to_string()).collect(),
        Dialect::Sqlite => Vec::new(),
    };
    assert_eq!(
        by_collation, expected,
        "indexed columns compared by a collation for people"
    );
}

/// 5,000 rows into `table (columns)`, row `n` given by `row` (written straight
/// into the read table: plan fodder, not data the API wrote).
async fn fodder(read: &projections::ReadStore, table: &str, row: impl Fn(usize) -> String) {
    for chunk in 0..10 {
        let values: Vec<String> = (0..500).map(|i| row(chunk * 500 + i)).collect();
        sqlx::query(&format!("INSERT INTO {table} VALUES {}", values.join(", ")))
            .execute(read.writer())
            .await
            .unwrap();
    }
}

/// The plan of a list query `sql` with `binds`, then 20 and 0 for its
/// `LIMIT ? OFFSET ?`, one line per step.
async fn plan(read: &projections::ReadStore, sql: &str, binds: &[String]) -> Vec<String> {
    plan_of(read, sql, binds, true).await
}

/// The plan of `sql` with `binds` (and a page's `LIMIT` and `OFFSET` if `paged`).
async fn plan_of(read: &projections::ReadStore, sql: &str, binds: &[String], paged: bool) -> Vec<String> {
    let explain = match read.dialect() {
        Dialect::MySql => format!("EXPLAIN {sql}"),
        Dialect::Sqlite => format!("EXPLAIN QUERY PLAN {sql}"),
    };
    let mut q = sqlx::query(&explain);
    for b in binds {
        q = q.bind(b.clone());
    }
    if paged {
        q = q.bind(20_i64).bind(0_i64);
    }
    let rows = q.fetch_all(read.pool()).await.unwrap();
    rows.iter()
        .map(|r| match read.dialect() {
            Dialect::MySql => format!(
                "table={} type={} key={} extra={}",
                r.opt_text("table").unwrap().unwrap_or_default(),
                r.opt_text("type").unwrap().unwrap_or_default(),
                r.opt_text("key").unwrap().unwrap_or_default(),
                r.opt_text("Extra").unwrap().unwrap_or_default()
            ),
            Dialect::Sqlite => r.text("detail").unwrap(),
        })
        .collect()
}

async fn the_family_list_reads_an_index_in_order_and_counts_without_scanning(b: Backend) {
    let app = spawn_app(b).await;
    let (recorder, _) = app.recorder(1).await;
    let package = app.package().await;
    for i in 0..40 {
        let f = app.family(&format!("家{i}")).await;
        if i % 4 == 0 {
            let p = app.patient(&f, &format!("患者{i}")).await;
            app.subscribe(&p, &package, &recorder).await;
        }
    }
    let read = &app.state.read().await;
    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .date_naive();
    let total: i64 = sqlx::query_scalar("SELECT families FROM family_totals WHERE id = 1")
        .fetch_one(read.pool())
        .await
        .unwrap();
    assert_eq!(total, 40);
    let listed = app.get("/families?limit=1", &app.admin_token).await.ok();
    assert_eq!(listed.data()["total"], 40);

    // Planners pick plans by table size: give them thousands of rows (plan
    // fodder written straight into the read table, not through the API).
    fodder(
        read,
        "families (id, family_name, primary_address, secondary_address, contact_phone, emergency_contact,
            emergency_phone, home_lat, home_lng, created_at, updated_at, version)",
        |n| {
            format!(
                "('plan-{n:05}', '{}家{n}', '地址', NULL, '13900000000', NULL, NULL, NULL, NULL, \
                 '2020-01-01T00:00:{:02}.{:03}Z', '2020-01-01T00:00:00.000Z', 1)",
                // A rare character, for a search that gathers its few holders.
                if n.is_multiple_of(250) { "罕" } else { "" },
                n % 60,
                n % 1000
            )
        },
    )
    .await;
    fodder(
        read,
        "subscriptions (id, patient_id, package_id, recorder_id, start_date, end_date, status, payment_status,
            created_at, updated_at, version)",
        |n| {
            format!(
                "('plan-sub-{n:05}', 'plan-patient-{n:05}', 'plan-package', 'plan-recorder-{:02}', '2020-01-01', \
                 '2099-12-31', 'active', 'paid', '2020-01-01T00:00:00.000Z', '2020-01-01T00:00:00.000Z', 1)",
                n % 50
            )
        },
    )
    .await;
    fodder(
        read,
        "patients (id, family_id, name, gender, birth_date, relationship_to_head, medical_history,
            current_medications, created_at, updated_at, version)",
        |n| {
            format!(
                "('plan-patient-{n:05}', 'plan-{n:05}', '患者', 'female', '1950-01-01', '本人', '[]', '[]', \
                 '2020-01-01T00:00:00.000Z', '2020-01-01T00:00:00.000Z', 1)"
            )
        },
    )
    .await;
    fodder(
        read,
        "recorder_families (subscription_id, recorder_id, family_id, patient_id, status, start_date, end_date,
            family_created_at)",
        |n| {
            format!(
                "('plan-sub-{n:05}', 'plan-recorder-{:02}', 'plan-{n:05}', 'plan-patient-{n:05}', 'active', \
                 '2020-01-01', '2099-12-31', '2020-01-01T00:00:00.000Z')",
                n % 50
            )
        },
    )
    .await;
    // Every household's search grams, as at start-up.
    sqlx::query("DELETE FROM family_grams")
        .execute(read.writer())
        .await
        .unwrap();
    read.fill_family_grams().await.unwrap();
    let analyze = match read.dialect() {
        Dialect::MySql => "ANALYZE TABLE families, patients, subscriptions, recorder_families, family_grams",
        Dialect::Sqlite => "ANALYZE",
    };
    sqlx::query(analyze).execute(read.writer()).await.unwrap();

    // The admin's list: newest first straight off the index, no sort, and
    // no COUNT(*) at all (the projector's counter).
    let page = PageParams::default();
    let admin = family_list_sql(read.dialect(), None, None, None, today, page);
    assert!(admin.count.is_none(), "the unfiltered total must not be counted");
    let lines = plan(read, &admin.list, &admin.list_binds).await;
    let families = lines
        .iter()
        .find(|l| l.contains("table=f ") || l.starts_with("SCAN f"))
        .unwrap_or_else(|| panic!("no step reads families: {lines:?}"));
    match read.dialect() {
        Dialect::MySql => {
            assert!(families.contains("key=families_created"), "{lines:?}");
            assert!(!families.contains("filesort"), "{lines:?}");
        }
        Dialect::Sqlite => {
            assert!(families.contains("families_created_id"), "{lines:?}");
            assert!(!lines.iter().any(|l| l.contains("TEMP B-TREE")), "{lines:?}");
        }
    }
    // Its counts: a household's subscriptions active today come with its row
    // (its windows), not from a lookup per household.
    household_subscriptions_read_with_its_row(read.dialect(), &lines);
    // A recorder's list, its total and its per-family counts are one range of
    // their assignments (a covering index), not a lookup of every
    // subscription, patient and family, nor a walk over every family.
    let recorder: UserId = recorder.parse().unwrap();
    let mine = family_list_sql(read.dialect(), Some(recorder), None, None, today, page);
    assert!(mine.assignments, "a recorder's list is grouped from their assignments");
    assert!(mine.count.is_none(), "its total is the number of households grouped");
    let lines = plan_of(read, &mine.list, &mine.list_binds, false).await;
    assert!(
        lines
            .iter()
            .any(|l| reads_index_alone(read.dialect(), l, "ra", "recorder_families_list")),
        "{lines:?}"
    );
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("subscriptions") || l.contains("patients") || l.contains("families f")),
        "{lines:?}"
    );
    // The page's households, each by its key.
    let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM families ORDER BY id LIMIT 20")
        .fetch_all(read.pool())
        .await
        .unwrap();
    assert_eq!(ids.len(), 20);
    let lines = plan_of(read, &families_by_id_sql(ids.len()), &ids, false).await;
    match read.dialect() {
        Dialect::MySql => assert!(
            lines.iter().any(|l| l.contains("table=families")
                && (l.contains("type=range") || l.contains("type=eq_ref") || l.contains("type=const"))),
            "{lines:?}"
        ),
        Dialect::Sqlite => assert!(
            !lines.iter().any(|l| l.starts_with("SCAN")) && lines.iter().any(|l| l.starts_with("SEARCH families")),
            "{lines:?}"
        ),
    }
    // A recorder's search starts from their assignments too, and probes
    // each of their households for the grams by key (for pairs; one
    // character is checked by `LIKE` alone).
    for text in ["家3", "家"] {
        let mine_search = family_list_sql(read.dialect(), Some(recorder), Some(text), None, today, page);
        let lines = plan(read, &mine_search.list, &mine_search.list_binds).await;
        assert!(lines.iter().any(|l| l.contains("recorder_families_list")), "{lines:?}");
        if text.chars().count() > 1 {
            grams_read_by_key(read.dialect(), &lines);
        }
        assert!(
            !lines
                .iter()
                .any(|l| l.contains("table=p2 type=ALL") || l.starts_with("SCAN p2")),
            "{lines:?}"
        );
    }
    // An admin's search, from each start: never a walk over every family
    // but in the list's order (a scan), and the walk from a pair's grams in
    // their key order (no sort before the walk's cap).
    let walk = Start::Walk {
        drive: "家3".into(),
        others: vec!["34".into()],
        households: None,
    };
    // A common pair's walk, its total estimated past the page from the
    // households walked: two ranges of the grams' key; a common character's
    // scan, from the households scanned: two of `families_created_id`.
    let (at, id) = ("2020-01-01T00:00:00.000000Z", "00000000-0000-7000-8000-000000000000");
    two_ranges_by_key(
        read,
        projections::families::WALKED,
        &["家3", at, "家3", at, id],
        (
            "key=PRIMARY",
            "SEARCH family_grams USING PRIMARY KEY (gram=? AND created_at",
        ),
    )
    .await;
    two_ranges_by_key(
        read,
        projections::families::SCANNED,
        &[at, at, id],
        (
            "key=families_created",
            "SEARCH families USING COVERING INDEX families_created",
        ),
    )
    .await;
    // On SQLite the walk's extent is counted in the page's statement: the
    // same two ranges of the grams' key, from the oldest match.
    let common = Start::Walk {
        drive: "家3".into(),
        others: vec!["34".into()],
        households: Some(projections::families::SEARCH_TOTAL_CAP + 1),
    };
    let estimated = family_list_sql(read.dialect(), None, Some("家34"), Some(&common), today, page);
    assert_eq!(estimated.walked_in_rows, read.dialect() == Dialect::Sqlite);
    if estimated.walked_in_rows {
        let lines = plan(read, &estimated.list, &estimated.list_binds).await;
        for range in ["(gram=? AND created_at>?)", "(gram=? AND created_at=? AND family_id>?)"] {
            assert!(
                lines
                    .iter()
                    .any(|l| l == &format!("SEARCH x USING PRIMARY KEY {range}")),
                "{range}: {lines:?}"
            );
        }
    }
    // A number's tokens: two ranges of the grams' key (from a run's start
    // and from inside one).
    let number = Start::Number(projections::numbers::ranges("345").remove(0));
    for (text, start) in [
        ("家34", &walk),
        ("罕", &Start::Gather('罕')),
        ("家", &Start::Scan('家')),
        ("345", &number),
    ] {
        let search = family_list_sql(read.dialect(), None, Some(text), Some(start), today, page);
        let lines = plan(read, &search.list, &search.list_binds).await;
        household_subscriptions_read_with_its_row(read.dialect(), &lines);
        let (count, count_binds) = search.count.as_ref().expect("a search's total is counted");
        let counted = plan_of(read, count, count_binds, false).await;
        // A common character walks the households in the list's order, each
        // checked by `LIKE` (the grams add nothing for one character), for
        // its page and for its tally alike.
        if let Start::Scan(_) = start {
            assert!(counted.iter().any(|l| l.contains("families_created")), "{counted:?}");
            assert!(
                lines.iter().any(|l| l.contains("families_created"))
                    && !lines
                        .iter()
                        .any(|l| l.contains("filesort") || l.contains("TEMP B-TREE")),
                "{lines:?}"
            );
        } else {
            grams_read_by_key(read.dialect(), &lines);
            grams_read_by_key(read.dialect(), &counted);
        }
        let scans_f = |lines: &[String]| match read.dialect() {
            Dialect::MySql => lines
                .iter()
                .any(|l| l.contains("table=f ") && !l.contains("type=eq_ref") && !l.contains("key=families_created")),
            Dialect::Sqlite => lines
                .iter()
                .any(|l| l.starts_with("SCAN f") && !l.contains("families_created_id")),
        };
        // (A common character's total may walk the households instead of
        // its grams: either stops at the cap, its holders being dense.)
        let count_may_scan = matches!(start, Start::Scan(_));
        assert!(
            !scans_f(&lines) && (count_may_scan || !scans_f(&counted)),
            "{start:?}: {lines:?} {counted:?}"
        );
        // A household's patients are read by its key, never all of them,
        // and their names from the household's index alone.
        for l in lines.iter().chain(&counted) {
            assert!(
                !l.contains("table=p2 type=ALL") && !l.starts_with("SCAN p2"),
                "{start:?}: {l}"
            );
        }
        assert!(
            lines
                .iter()
                .any(|l| reads_index_alone(read.dialect(), l, "p2", "patients_family")),
            "{start:?}: {lines:?}"
        );
        if let Start::Walk { .. } = start {
            match read.dialect() {
                Dialect::MySql => assert!(
                    counted
                        .iter()
                        .any(|l| l.contains("table=g ") && l.contains("key=PRIMARY"))
                        && !counted
                            .iter()
                            .any(|l| l.contains("filesort") || l.contains("temporary")),
                    "{counted:?}"
                ),
                Dialect::Sqlite => assert!(
                    counted
                        .iter()
                        .any(|l| l.starts_with("SEARCH g USING PRIMARY KEY (gram=?)"))
                        && !counted.iter().any(|l| l.contains("TEMP B-TREE")),
                    "{counted:?}"
                ),
            }
        }
    }
    // No filter is carried as `? IS NULL OR …`, which defeats indexes.
    for q in [
        &admin,
        &mine,
        &family_list_sql(read.dialect(), Some(recorder), Some("家"), None, today, page),
    ] {
        assert!(!q.list.contains("IS NULL OR"), "{}", q.list);
        if let Some((c, _)) = &q.count {
            assert!(!c.contains("IS NULL OR"), "{c}");
        }
    }
}

/// Whether a plan's step reads table `alias` through `index` alone (a
/// covering index: no row looked up).
fn reads_index_alone(dialect: Dialect, line: &str, alias: &str, index: &str) -> bool {
    match dialect {
        Dialect::MySql => {
            line.contains(&format!("table={alias} "))
                && line.contains(&format!("key={index}"))
                && line.contains("Using index")
        }
        Dialect::Sqlite => line.starts_with(&format!("SEARCH {alias} USING COVERING INDEX {index}")),
    }
}

/// A family page's active subscriptions are counted from the household's row
/// (its subscription windows), never from `recorder_families` or
/// `subscriptions`.
fn household_subscriptions_read_with_its_row(dialect: Dialect, lines: &[String]) {
    let rf = match dialect {
        Dialect::MySql => "table=rf ",
        Dialect::Sqlite => "SEARCH rf ",
    };
    assert!(
        !lines
            .iter()
            .any(|l| l.contains(rf) || l.contains("recorder_families") || l.contains("subscriptions")),
        "{lines:?}"
    );
}

/// The plan of a count over two ranges of one index (`WALKED`, `SCANNED`):
/// both read by it (MySQL's key, the start of SQLite's line), nothing scanned.
async fn two_ranges_by_key(read: &projections::ReadStore, sql: &str, binds: &[&str], by: (&str, &str)) {
    let binds: Vec<String> = binds.iter().map(|b| b.to_string()).collect();
    let lines = plan_of(read, sql, &binds, false).await;
    let ok = match read.dialect() {
        Dialect::MySql => {
            lines.iter().filter(|l| l.contains(by.0)).count() == 2
                && !lines.iter().any(|l| l.contains("type=ALL") || l.contains("type=index"))
        }
        Dialect::Sqlite => {
            lines.iter().filter(|l| l.starts_with(by.1)).count() == 2
                && !lines.iter().any(|l| l.starts_with("SCAN") && l != "SCAN CONSTANT ROW")
        }
    };
    assert!(ok, "{sql}: {lines:?}");
}

/// A search's plan: the grams read by their key, each family by its key or
/// in the list's order.
fn grams_read_by_key(dialect: Dialect, lines: &[String]) {
    match dialect {
        Dialect::MySql => assert!(
            lines
                .iter()
                .any(|l| (l.contains("table=g ") || l.contains("table=o ")) && l.contains("key=PRIMARY")),
            "{lines:?}"
        ),
        Dialect::Sqlite => assert!(
            lines
                .iter()
                .any(|l| l.starts_with("SEARCH g") || l.starts_with("SEARCH o")),
            "{lines:?}"
        ),
    }
}

/// The plan of the event store's page `sql` (`EventStore::filtered_sql`) for
/// a filter of one `value` (none for an empty filter), from position 0, 20
/// events: one line per step.
async fn event_plan(store: &carelog::store::EventStore, sql: &str, value: Option<&str>) -> Vec<String> {
    // The filter's value if any, then `after`, `limit` and `offset`.
    macro_rules! bound {
        ($q:expr) => {
            value
                .into_iter()
                .fold($q, |q, v| q.bind(v))
                .bind(0_i64)
                .bind(20_i64)
                .bind(0_i64)
        };
    }
    match store.backend() {
        carelog::backend::Backend::Postgres(pool) => bound!(sqlx::query_scalar(&format!("EXPLAIN {sql}")))
            .fetch_all(pool)
            .await
            .unwrap(),
        carelog::backend::Backend::Sqlite(db) => bound!(sqlx::query(&format!("EXPLAIN QUERY PLAN {sql}")))
            .fetch_all(&db.read)
            .await
            .unwrap()
            .iter()
            .map(|r| sqlx::Row::get::<String, _>(r, "detail"))
            .collect(),
    }
}

/// The followers' page (every event after a position, `EventStore::query_raw`
/// with an empty filter, after every commit) reads the events by position
/// and nothing else.
async fn the_followers_page_reads_the_events_by_position(b: Backend) {
    let app = spawn_app(b).await;
    let family = app.family("家").await;
    app.patient(&family, "患者").await;
    let store = &app.state.store;
    let filter = carelog::store::EventFilter::default();
    let (sql, values) = store.filtered_sql(&filter);
    assert!(values.is_empty());
    assert!(
        sql.contains("WHERE position > $1 ORDER BY position LIMIT $2 OFFSET $3"),
        "{sql}"
    );
    // SQLite's plan does not depend on statistics; PostgreSQL's, on a table
    // of a few rows, may well be a scan and a sort.
    if let carelog::backend::Backend::Sqlite(_) = store.backend() {
        let lines = event_plan(store, &sql, None).await;
        assert!(
            lines
                .iter()
                .any(|l| l == "SEARCH events USING INDEX events_position (position>?)"),
            "{lines:?}"
        );
        assert!(!lines.iter().any(|l| l.contains("TEMP B-TREE")), "{lines:?}");
    }
    // And the page holds the events after the position, in order (an
    // offset skips the tail cache, so the statement itself runs).
    let all = store.query_raw(&filter, 0, 1_000, 0).await.unwrap();
    assert!(all.len() >= 3, "{all:?}");
    let page = store.query_raw(&filter, all[0].position, 1, 1).await.unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].position, all[2].position);
}

/// The auditor's history of a patient (`GET /audit/events?patient_id=`)
/// takes the events by key whatever the planner knows. On a PostgreSQL store
/// never analyzed (a bulk load, a restore, autovacuum off) it hashed the
/// patient's subjects against a scan of every event: 0.26 s a page at
/// 300,000 events.
async fn a_patients_history_reads_the_events_by_key_without_statistics(b: Backend) {
    let app = spawn_app(b).await;
    let family = app.family("家").await;
    let patient = app.patient(&family, "患者").await;
    let store = &app.state.store;
    let filter = carelog::store::EventFilter {
        patient_id: Some(patient.clone()),
        ..Default::default()
    };
    // The page's statement, with each event's hash read by key.
    let (sql, _) = store.sealed_sql(&filter);
    match store.backend() {
        carelog::backend::Backend::Postgres(pool) => {
            // Other patients' subjects, and no statistics (never analyzed).
            sqlx::query(
                "INSERT INTO event_subjects (aggregate_type, aggregate_id, patient_id)
                 SELECT 'health_record', 'fodder-' || n, 'patient-' || (n % 5000) FROM generate_series(1, 20000) n",
            )
            .execute(pool)
            .await
            .unwrap();
            let plan = event_plan(store, &sql, Some(&patient)).await.join("\n");
            assert!(!plan.contains("Seq Scan"), "{plan}");
            assert!(!plan.contains("Hash Join"), "{plan}");
            assert!(plan.contains("Index Cond: ((\"position\" = ANY"), "{plan}");
            assert!(plan.contains("event_hashes_pkey"), "{plan}");
        }
        carelog::backend::Backend::Sqlite(_) => {
            let lines = event_plan(store, &sql, Some(&patient)).await;
            for scan in ["SCAN events", "SCAN e", "SCAN o", "SCAN s", "SCAN h"] {
                assert!(
                    !lines.iter().any(|l| l == scan || l.starts_with(&format!("{scan} "))),
                    "{lines:?}"
                );
            }
            assert!(
                lines
                    .iter()
                    .any(|l| l.starts_with("SEARCH h USING INTEGER PRIMARY KEY")),
                "{lines:?}"
            );
        }
    }
}

/// The auditor's history of one user (`GET /audit/events?actor=`) reads the
/// events that user caused by key, in position order. It matched the actor
/// in every event's metadata instead: 2.3–8.6 s a page at 3 million events.
async fn a_users_history_reads_the_events_by_key(b: Backend) {
    let app = spawn_app(b).await;
    // Events without an actor (the seeder's), and a few of the admin's.
    carelog::seed::seed(
        &app.state,
        carelog::seed::SeedOptions {
            patients: 1_000,
            recorders: Some(1),
        },
    )
    .await
    .unwrap();
    let family = app.family("家").await;
    app.patient(&family, "患者").await;
    let admin: String = app.get("/auth/me", &app.admin_token).await.ok().data()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let store = &app.state.store;
    let filter = carelog::store::EventFilter {
        actor_id: Some(admin.clone()),
        ..Default::default()
    };
    let (sql, _) = store.filtered_sql(&filter);
    let lines = event_plan(store, &sql, Some(&admin)).await;
    // (PostgreSQL may sort the few rows it expects of a rare user.)
    for step in ["Seq Scan", "SCAN events", "TEMP B-TREE"] {
        assert!(!lines.iter().any(|l| l.contains(step)), "{lines:?}");
    }
    let plan = lines.join("\n");
    assert!(plan.contains("events_actor"), "{plan}");
    // And it finds them: the admin's own, none of the seeder's.
    let (_, token) = app.staff("auditor", 1).await;
    let page = app
        .get(&format!("/audit/events?actor={admin}&limit=100"), &token)
        .await
        .ok();
    let events = page.data()["events"].as_array().unwrap();
    assert!(events.len() >= 2, "{events:?}");
    assert!(events.iter().all(|e| e["actor_id"] == admin.as_str()), "{events:?}");
    assert!(events
        .windows(2)
        .all(|w| w[0]["position"].as_i64() < w[1]["position"].as_i64()));
}

/// How many times SQLite prepared `sql` again on `conn` (after its first
/// preparation), and how many times it ran: from the statement's own counters
/// (`sqlite3_stmt_status`), found among the connection's prepared statements.
async fn prepared_again_and_runs(conn: &mut sqlx::SqliteConnection, sql: &str) -> (i32, i32) {
    use libsqlite3_sys as ffi;
    let mut handle = conn.lock_handle().await.unwrap();
    let db = handle.as_raw_handle().as_ptr();
    let mut found = None;
    // SAFETY: the handle is locked for this scope, so no other thread uses
    // the connection; `sqlite3_next_stmt` walks its own prepared statements,
    // which stay alive while it is locked, and `sqlite3_sql` returns their
    // text, owned by SQLite, read before the next call.
    unsafe {
        let mut stmt = ffi::sqlite3_next_stmt(db, std::ptr::null_mut());
        while !stmt.is_null() {
            let text = std::ffi::CStr::from_ptr(ffi::sqlite3_sql(stmt)).to_string_lossy();
            if text.trim() == sql.trim() {
                found = Some((
                    ffi::sqlite3_stmt_status(stmt, ffi::SQLITE_STMTSTATUS_REPREPARE, 0),
                    ffi::sqlite3_stmt_status(stmt, ffi::SQLITE_STMTSTATUS_RUN, 0),
                ));
            }
            stmt = ffi::sqlite3_next_stmt(db, stmt);
        }
    }
    found.expect("the statement is among the connection's prepared statements")
}

/// SQLite plans a statement once, whatever is bound to it (the query planner
/// stability guarantee, on by default in the bundled SQLite:
/// `SQLITE_ENABLE_QPSG` in `.cargo/config.toml`). An admin's search compares
/// the patients' names by `LIKE ?` under an `AND`; without the guarantee
/// SQLite marks the whole page statement expired whenever a pattern is bound,
/// and parses and plans it again on every search (a fifth of its time at
/// 1,000,000 patients), for a prefix optimisation a `%…%` pattern never gets.
#[tokio::test]
async fn sqlite_plans_a_search_once_whatever_is_searched() {
    use sqlx::Connection;
    let app = spawn_app(Backend::Embedded).await;
    let today = chrono::NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
    let page = PageParams::default();
    let path = app._dir.path().join(carelog::data_dir::READ_DB);
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=ro", path.display()))
        .await
        .unwrap();
    let searches = ["王建国", "李建国", "张建国"];
    let mut statements = Vec::new();
    for text in searches {
        let pairs: Vec<String> = vec![text.chars().take(2).collect(), text.chars().skip(1).collect()];
        let start = Start::Walk {
            drive: pairs[0].clone(),
            others: vec![pairs[1].clone()],
            households: Some(1_000),
        };
        let q = family_list_sql(Dialect::Sqlite, None, Some(text), Some(&start), today, page);
        assert!(q.list.contains("LIKE ?"), "the patterns are bound: {}", q.list);
        q.list_binds
            .iter()
            .fold(sqlx::query(&q.list), |s, b| s.bind(b.clone()))
            .bind(page.limit())
            .bind(page.offset())
            .fetch_all(&mut conn)
            .await
            .unwrap();
        statements.push(q.list);
    }
    assert!(
        statements.windows(2).all(|w| w[0] == w[1]),
        "one statement for every search"
    );
    let (again, runs) = prepared_again_and_runs(&mut conn, &statements[0]).await;
    assert_eq!(
        runs,
        searches.len() as i32,
        "each search ran the one prepared statement"
    );
    assert_eq!(again, 0, "a new pattern must not make SQLite prepare the search again");
}

/// Every question an auditor asks of the access log walks an index in the
/// order of its answer: a patient's keys (`access_read_patients`, each read
/// then by its id), an actor's reads or the reads by time, each unfolded into
/// its patients. At most the places within one read are sorted, never the
/// whole log. SQLite's plans are checked; PostgreSQL's depend on statistics a
/// test's few rows do not give.
async fn the_access_log_is_read_by_index_in_order(b: Backend) {
    use carelog::access_log::AccessFilter;
    let app = spawn_app(b).await;
    let family = app.family("家").await;
    let patient = app.patient(&family, "患者").await;
    let log = &app.state.access;
    let at = Some(chrono::Utc::now());
    let cases = [
        (
            AccessFilter {
                patient_id: Some(patient.clone()),
                ..AccessFilter::default()
            },
            vec![
                "SEARCH k USING PRIMARY KEY (patient_id=?)",
                "SEARCH r USING INTEGER PRIMARY KEY (rowid=?)",
            ],
        ),
        (
            AccessFilter {
                patient_id: Some(patient.clone()),
                actor_id: Some("actor".into()),
                from: at,
                ..AccessFilter::default()
            },
            vec![
                "SEARCH k USING PRIMARY KEY (patient_id=? AND at>?)",
                "SEARCH r USING INTEGER PRIMARY KEY (rowid=?)",
            ],
        ),
        (
            AccessFilter {
                actor_id: Some("actor".into()),
                ..AccessFilter::default()
            },
            vec!["SEARCH r USING INDEX access_reads_actor_at (actor_id=?)"],
        ),
        (
            AccessFilter {
                from: at,
                to: at,
                ..AccessFilter::default()
            },
            vec!["SEARCH r USING INDEX access_reads_at (at>? AND at<?)"],
        ),
        (AccessFilter::default(), vec!["SCAN r USING INDEX access_reads_at"]),
    ];
    for (filter, expected) in cases {
        let sql = log.list_sql(&filter);
        assert!(!sql.contains("IS NULL"), "{sql}");
        let carelog::backend::Backend::Sqlite(db) = app.state.store.backend() else {
            continue;
        };
        let explain = format!("EXPLAIN QUERY PLAN {sql}");
        let mut q = sqlx::query(&explain);
        for v in [&filter.patient_id, &filter.actor_id].into_iter().flatten() {
            q = q.bind(v.clone());
        }
        for t in [filter.from, filter.to].into_iter().flatten() {
            q = q.bind(t.to_rfc3339());
        }
        let lines: Vec<String> = q
            .bind(20_i64)
            .bind(0_i64)
            .fetch_all(&db.read)
            .await
            .unwrap()
            .iter()
            .map(|r| sqlx::Row::get::<String, _>(r, "detail"))
            .collect();
        for line in expected {
            assert!(lines.iter().any(|l| l == line), "{sql}: {line} in {lines:?}");
        }
        assert!(
            !lines.iter().any(
                |l| l == "USE TEMP B-TREE FOR ORDER BY" || (filter.patient_id.is_some() && l.starts_with("SCAN k"))
            ),
            "{sql}: {lines:?}"
        );
    }
}
