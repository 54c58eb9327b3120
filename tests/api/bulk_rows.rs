//! A pipeline step's multi-row writes (`projections::bulk::Rows`) store
//! exactly the values they were given, in every statement a long run is
//! split into.

use projections::bulk::{Cell, Rows};
use projections::store::RowExt;
use sqlx::Row;

use crate::dual;
use crate::helpers::{spawn_app, Backend};

dual!(rows_read_back_exactly_as_given_whatever_their_text);

/// Text that would end or change a statement if it were ever spliced in
/// (quotes, backslashes, semicolons, comments), text outside the Basic
/// Multilingual Plane, and numbers at their limits.
async fn rows_read_back_exactly_as_given_whatever_their_text(b: Backend) {
    let app = spawn_app(b).await;
    let read = app.state.read().await;
    let mut c = read.writer().acquire().await.unwrap();
    sqlx::query("CREATE TABLE bulk_probe (id BIGINT NOT NULL PRIMARY KEY, t TEXT, n BIGINT, x DOUBLE, kind TEXT)")
        .execute(&mut *c)
        .await
        .unwrap();
    let texts: Vec<Option<String>> = [
        Some(""),
        Some("a'b''c"),
        Some("back\\slash\\'"),
        Some("x'); DROP TABLE bulk_probe; -- "),
        Some("王建国 🏠 家"),
        Some("tab\tnew\nline\r"),
        Some("%_?*"),
        Some("_utf8mb4 X'41'"),
        None,
    ]
    .into_iter()
    .map(|t| t.map(str::to_string))
    .collect();
    let ints = [Some(i64::MIN), Some(i64::MAX), Some(0), Some(-1), None];
    let reals = [
        Some(31.2304),
        Some(0.1 + 0.2),
        Some(-1e-300),
        Some(f64::MAX),
        Some(f64::MIN_POSITIVE),
        Some(121.473_701_5),
        None,
    ];
    // More rows than one statement holds (256): the run is split into
    // statements of several shapes.
    let n = 700;
    let mut rows = Rows::new("INSERT", "bulk_probe", "id, t, n, x, kind", "(?, ?, ?, ?, 'k')");
    for i in 0..n {
        rows.push([
            Cell::Int(Some(i as i64)),
            Cell::Text(texts[i % texts.len()].clone()),
            Cell::Int(ints[i % ints.len()]),
            Cell::Real(reals[i % reals.len()]),
        ]);
    }
    rows.flush(&mut c).await.unwrap();
    let got = sqlx::query("SELECT id, t, n, x, kind FROM bulk_probe ORDER BY id")
        .fetch_all(&mut *c)
        .await
        .unwrap();
    assert_eq!(got.len(), n);
    for (i, r) in got.iter().enumerate() {
        assert_eq!(r.try_get::<i64, _>(0).unwrap(), i as i64);
        assert_eq!(r.opt_text("t").unwrap(), texts[i % texts.len()], "row {i}");
        assert_eq!(r.try_get::<Option<i64>, _>(2).unwrap(), ints[i % ints.len()], "row {i}");
        assert_eq!(
            r.try_get::<Option<f64>, _>(3).unwrap(),
            reals[i % reals.len()],
            "row {i}"
        );
        assert_eq!(r.text("kind").unwrap(), "k", "a constant of the row");
    }
    sqlx::query("DROP TABLE bulk_probe").execute(&mut *c).await.unwrap();
}
