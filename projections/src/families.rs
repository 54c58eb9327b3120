//! Families and their patients, the family list and the family detail.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::NaiveDate;
use domain::family::FamilyEvent;
use domain::ids::{FamilyId, HealthRecordId, PatientId, UserId};
use domain::patient::PatientEvent;
use domain::subscription::SubscriptionEvent;
use domain::values::{age_on, Gender};
use domain::ERASED;
use serde::Serialize;
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::{AnyConnection, Arguments};
use utoipa::ToSchema;

use crate::bind_assigned;
use crate::bulk::{apply_buffered, Buffer, Cell, Rows};
use crate::gram_counts::{self, counted_as, GramCounts};
use crate::gram_load::{self, GramLoad};
use crate::numbers;
use crate::page::{Page, PageParams};
use crate::projector::{ProjectionError, Projector, StoredEvent};
use crate::records::LATEST_RECORD_ID;
use crate::store::{like_pattern, Dialect, ReadStore, RowExt};
use crate::subscriptions::{assigned_binds, assigned_sql, current_subscription, SubscriptionSummary};

pub struct FamiliesProjector;

fn json(v: &impl Serialize) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

/// `n` more families in the counter the unfiltered list's total reads (the
/// row is created on the first family, as after a reset).
async fn count_families(c: &mut AnyConnection, n: i64) -> Result<(), sqlx::Error> {
    if n == 0 {
        return Ok(());
    }
    let bumped = sqlx::query("UPDATE family_totals SET families = families + ? WHERE id = 1")
        .bind(n)
        .execute(&mut *c)
        .await?;
    if bumped.rows_affected() == 0 {
        sqlx::query("INSERT INTO family_totals (id, families) VALUES (1, ?)")
            .bind(n)
            .execute(&mut *c)
            .await?;
    }
    Ok(())
}

/// The search grams of `text`, lowercased: each pair of neighbouring
/// characters, and the last character. Every character of the text starts
/// one of them, so a text containing the search `q` holds what
/// [`Candidates::of`]`(q)` asks for, and the families holding it are a
/// superset of those `LIKE '%q%'` matches, which then checks them. (Single
/// characters were kept for each position until 2026-12: they doubled the
/// table; a store filled then still holds them, which a search of either
/// kind tolerates, until `carelog rebuild families`.) Then the number tokens
/// of its runs of digits ([`numbers::tokens`]), which a search with digits
/// may start from instead ([`numbers::ranges`]).
pub fn grams(text: &str) -> BTreeSet<String> {
    gram_chars(text)
        .map(|(first, second)| std::iter::once(first).chain(second).collect())
        .chain(numbers::tokens(text))
        .collect()
}

/// The grams of `text` (see [`grams`]) as their characters, in the text's
/// order: each character, with the one after it unless it is the last.
fn gram_chars(text: &str) -> impl Iterator<Item = (char, Option<char>)> {
    let chars: Vec<char> = text.chars().flat_map(char::to_lowercase).collect();
    (0..chars.len()).map(move |i| (chars[i], chars.get(i + 1).copied()))
}

/// The families a search starts from, in `family_grams`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Candidates {
    /// Those holding every one of these pairs of neighbouring characters (a
    /// search of two characters or more), in the text's order.
    Pairs(Vec<String>),
    /// Those holding a gram that starts with this character (a search of
    /// one: the character followed by another, or ending a text).
    Starting(char),
}

impl Candidates {
    /// What the search `q` asks of `family_grams`; `None` for an empty one.
    pub fn of(q: &str) -> Option<Candidates> {
        let chars: Vec<char> = q.chars().flat_map(char::to_lowercase).collect();
        match chars.as_slice() {
            [] => None,
            [c] => Some(Candidates::Starting(*c)),
            _ => {
                // In the text's order, once each: of pairs held by as many
                // households, a search starts from the first (see `start`).
                let mut pairs: Vec<String> = Vec::new();
                for w in chars.windows(2) {
                    let pair: String = w.iter().collect();
                    if !pairs.contains(&pair) {
                        pairs.push(pair);
                    }
                }
                Some(Candidates::Pairs(pairs))
            }
        }
    }
}

/// The grams of a family's name, primary address and patients' names, by family.
fn family_grams<'a>(texts: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
    texts.into_iter().flat_map(grams).collect()
}

/// Households read per page when writing the grams from the tables.
const FILL_PAGE: i64 = 2_000;
/// Gram rows a server gathers before writing them, when it fills the grams of
/// a store that predates them (about 40 MB; a rebuild gathers them all).
const FILL_GATHER: usize = 1 << 22;

/// Rows of the search grams. Every writer of them inserts-or-ignores: MySQL
/// compares grams ignoring trailing spaces, so a text's "e " and another's
/// final "e" are one key there (either row serves a search for both), and a
/// household's patients share grams.
fn gram_rows(dialect: Dialect) -> Rows {
    Rows::new(
        dialect.insert_ignore(),
        "family_grams",
        "gram, created_at, family_id",
        "(?, ?, ?)",
    )
}

/// A household as its search grams are keyed after the gram: its creation
/// time, then its id (the family list's order). Shared by all its grams.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Household {
    created_at: Arc<str>,
    id: Arc<str>,
}

impl Household {
    fn new(created_at: &str, id: &str) -> Self {
        Household {
            created_at: created_at.into(),
            id: id.into(),
        }
    }
}

/// Adds `grams` (with their households) to `out` in key order, once each:
/// written in that order, they touch each page of the table's key once.
fn push_grams(out: &mut Rows, mut grams: Vec<(String, Household)>) {
    grams.sort_unstable();
    grams.dedup();
    for (gram, h) in grams {
        out.push([gram.into(), h.created_at.into(), h.id.into()]);
    }
}

/// A household's search grams as its rows give them now: those its rows in
/// `family_grams` hold (every writer keeps the two equal), read before a
/// change to its texts so that the change deletes exactly the grams it
/// takes away, each by the table's key (no second index by household).
#[derive(Debug)]
struct HeldGrams {
    family: String,
    created_at: String,
    grams: BTreeSet<String>,
}

impl HeldGrams {
    /// From the household's row and its patients' rows; `None` for a
    /// household the read model does not know.
    async fn read(c: &mut AnyConnection, family: &str) -> Result<Option<HeldGrams>, sqlx::Error> {
        let Some(f) = sqlx::query("SELECT family_name, primary_address, created_at FROM families WHERE id = ?")
            .bind(family)
            .fetch_optional(&mut *c)
            .await?
        else {
            return Ok(None);
        };
        let names = sqlx::query("SELECT name FROM patients WHERE family_id = ?")
            .bind(family)
            .fetch_all(&mut *c)
            .await?;
        let mut texts = vec![f.text("family_name")?, f.text("primary_address")?];
        for n in &names {
            texts.push(n.text("name")?);
        }
        let mut grams = family_grams(texts.iter().map(String::as_str));
        if Dialect::of(c) == Dialect::MySql {
            drop_padded_twins(&mut grams);
        }
        Ok(Some(HeldGrams {
            family: family.to_string(),
            created_at: f.text("created_at")?,
            grams,
        }))
    }

    /// As [`HeldGrams::read`], for the household of a patient.
    async fn of_patient(c: &mut AnyConnection, patient: &str) -> Result<Option<HeldGrams>, sqlx::Error> {
        let family: Option<String> = sqlx::query_scalar("SELECT family_id FROM patients WHERE id = ?")
            .bind(patient)
            .fetch_optional(&mut *c)
            .await?;
        match family {
            Some(f) => HeldGrams::read(c, &f).await,
            None => Ok(None),
        }
    }

    /// After the change: deletes the grams the household no longer holds,
    /// then inserts (or ignores) every one it holds. (All of them, not only
    /// the new ones: MySQL compares grams ignoring trailing spaces, so a
    /// deleted "e " may have been the row that served a kept "e".)
    async fn rewrite(self, c: &mut AnyConnection) -> Result<(), sqlx::Error> {
        let now = HeldGrams::read(c, &self.family).await?;
        let kept = now.as_ref().map(|n| &n.grams);
        // The household's grams as counted, before and after: one fewer
        // household for each it no longer holds, one more for each it gains.
        let dialect = Dialect::of(c);
        let counted = |grams: Option<&BTreeSet<String>>| -> BTreeSet<String> {
            grams
                .into_iter()
                .flatten()
                .map(|g| counted_as(g, dialect).to_string())
                .collect()
        };
        let (was, is) = (counted(Some(&self.grams)), counted(kept));
        let mut counts = GramCounts::default();
        for g in was.difference(&is) {
            counts.add(g, -1);
        }
        for g in is.difference(&was) {
            counts.add(g, 1);
        }
        counts.flush(c).await?;
        let gone: Vec<&String> = self
            .grams
            .iter()
            .filter(|g| kept.is_none_or(|k| !k.contains(*g)))
            .collect();
        for chunk in gone.chunks(DELETE_GRAMS) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let sql = format!("DELETE FROM family_grams WHERE created_at = ? AND family_id = ? AND gram IN ({marks})");
            let mut q = sqlx::query(&sql).bind(&self.created_at).bind(&self.family);
            for g in chunk {
                q = q.bind(g.as_str());
            }
            q.execute(&mut *c).await?;
        }
        let Some(now) = now else { return Ok(()) };
        let household = Household::new(&now.created_at, &now.family);
        let mut out = gram_rows(Dialect::of(c));
        push_grams(
            &mut out,
            now.grams.into_iter().map(|g| (g, household.clone())).collect(),
        );
        out.flush(c).await
    }
}

/// As [`gram_load::drop_padded_twins`], for grams as text: on MySQL a
/// household's rows hold "e" where its texts give both "e" and "e " (one key
/// there), as a rebuild writes them, so a change that adds "e" beside a kept
/// "e " replaces that row instead of keeping it.
fn drop_padded_twins(grams: &mut BTreeSet<String>) {
    let twins: Vec<String> = grams
        .iter()
        .filter(|g| {
            g.strip_suffix(' ')
                .is_some_and(|c| c.chars().count() == 1 && grams.contains(c))
        })
        .cloned()
        .collect();
    for t in twins {
        grams.remove(&t);
    }
}

/// Grams deleted per statement (well under either store's limit of binds).
const DELETE_GRAMS: usize = 500;

impl ReadStore {
    /// Fills `family_grams` for the families a store held before it existed
    /// (once, at start-up: nothing to do when it has rows or there are no
    /// families). Concurrent starts insert the same rows; duplicates are ignored.
    pub async fn fill_family_grams(&self) -> Result<(), sqlx::Error> {
        let has_grams: Option<i64> = sqlx::query_scalar("SELECT 1 FROM family_grams LIMIT 1")
            .fetch_optional(self.pool())
            .await?;
        let has_families: Option<i64> = sqlx::query_scalar("SELECT 1 FROM families LIMIT 1")
            .fetch_optional(self.pool())
            .await?;
        if has_grams.is_some() || has_families.is_none() {
            return Ok(());
        }
        self.write_family_grams(FILL_GATHER).await
    }

    /// Writes the search grams of every household from its row and its
    /// patients' rows, into an empty `family_grams` (or one holding some of
    /// them: duplicates are ignored), in one transaction (a crash leaves
    /// none). Households are read a page at a time; their grams are gathered
    /// until `gather` rows, then written in the key's order ([`GramLoad`]), so
    /// memory is bounded by `gather` (a rebuild, a process of its own, gathers
    /// them all: one pass over the table's key).
    pub async fn write_family_grams(&self, gather: usize) -> Result<(), sqlx::Error> {
        self.write_grams(gather, false, Counting::Recount).await
    }

    /// As [`ReadStore::write_family_grams`] for a rebuild's shadow, all
    /// gathered at once. On MySQL the rows are written in two halves of the
    /// key side by side, on two connections (each its own transaction; a
    /// failed rebuild throws the shadow away): MariaDB inserts one half while
    /// this process builds the next statement of the other, where one
    /// connection left each waiting for the other. The two never wait on each
    /// other's locks: the table is empty, the halves hold disjoint keys, and
    /// no row is a duplicate in MySQL's eyes ([`gram_load::drop_padded_twins`]),
    /// so neither takes the shared next-key lock a duplicate's check takes
    /// (inserts' own intention locks do not conflict). SQLite has one writer.
    pub async fn load_family_grams(&self) -> Result<(), sqlx::Error> {
        self.write_grams(usize::MAX, self.dialect() == Dialect::MySql, Counting::Loaded)
            .await
    }

    async fn write_grams(&self, gather: usize, two_writers: bool, counting: Counting) -> Result<(), sqlx::Error> {
        let mut other = if two_writers {
            Some(self.writer().begin().await?)
        } else {
            None
        };
        let mysql = self.dialect() == Dialect::MySql;
        let mut tx = self.writer().begin().await?;
        let (mut after, mut families, mut grams) = (String::new(), 0_usize, 0_usize);
        let mut load = GramLoad::default();
        let mut counts = GramCounts::default();
        loop {
            let page = sqlx::query(
                "SELECT id, family_name, primary_address, created_at FROM families WHERE id > ? ORDER BY id LIMIT ?",
            )
            .bind(&after)
            .bind(FILL_PAGE)
            .fetch_all(&mut *tx)
            .await?;
            let Some(last) = page.last() else { break };
            after = last.text("id")?;
            let mut texts: HashMap<String, (String, Vec<String>)> = HashMap::with_capacity(page.len());
            for r in &page {
                texts.insert(
                    r.text("id")?,
                    (
                        r.text("created_at")?,
                        vec![r.text("family_name")?, r.text("primary_address")?],
                    ),
                );
            }
            // The page's patients: one range of the households' ids.
            let names = sqlx::query("SELECT family_id, name FROM patients WHERE family_id >= ? AND family_id <= ?")
                .bind(page[0].text("id")?)
                .bind(&after)
                .fetch_all(&mut *tx)
                .await?;
            for r in &names {
                if let Some((_, t)) = texts.get_mut(&r.text("family_id")?) {
                    t.push(r.text("name")?);
                }
            }
            for (id, (created_at, texts)) in &texts {
                let mut keys: Vec<u64> = texts
                    .iter()
                    .flat_map(|t| gram_chars(t))
                    .map(|(first, second)| gram_load::pack(first, second))
                    .collect();
                for t in texts.iter().flat_map(|t| numbers::tokens(t)) {
                    keys.push(load.token(t));
                }
                keys.sort_unstable();
                keys.dedup();
                if mysql {
                    gram_load::drop_padded_twins(&mut keys);
                }
                load.add(created_at, id, keys);
                if load.len() >= gather || load.is_full() {
                    let also = other.as_deref_mut();
                    let load = std::mem::take(&mut load);
                    grams += write_in_key_order(&mut tx, also, load, gather, &mut counts).await?;
                }
            }
            families += texts.len();
        }
        grams += write_in_key_order(&mut tx, other.as_deref_mut(), load, gather, &mut counts).await?;
        match counting {
            Counting::Loaded => counts.flush(&mut tx).await?,
            Counting::Recount => gram_counts::recount(&mut tx).await?,
        }
        if let Some(other) = other {
            other.commit().await?;
        }
        tx.commit().await?;
        tracing::info!(families, grams, "family search grams written");
        Ok(())
    }
}

/// How [`ReadStore::write_grams`] counts the households holding each gram.
#[derive(Debug, Clone, Copy)]
enum Counting {
    /// From the rows it loads, into an empty table (a rebuild's shadow).
    Loaded,
    /// From the table once written: a fill may find some rows there already
    /// (another server filling it at the same time).
    Recount,
}

/// Writes the rows of `load` in the key's order, in long statements whose
/// arguments borrow the load's text (the driver makes the one copy); returns
/// how many, and adds each gram's rows to `counts`. A statement holds no more rows than a load gathers (`gather`),
/// so a small test load goes through full statements and a last short one.
/// With `also`, the rows are cut in two halves ([`KeyOrder::halfway`]) written
/// side by side, the second on `also`.
///
/// [`KeyOrder::halfway`]: gram_load::KeyOrder::halfway
async fn write_in_key_order(
    c: &mut AnyConnection,
    also: Option<&mut AnyConnection>,
    load: GramLoad,
    gather: usize,
    counts: &mut GramCounts,
) -> Result<usize, sqlx::Error> {
    let dialect = Dialect::of(c);
    let shape = gram_rows(dialect).in_long_statements();
    let most = shape.statement_rows().min(gather.max(1));
    let order = load.into_key_order();
    for (gram, households) in order.households_by_gram() {
        counts.add(counted_as(gram, dialect), households);
    }
    let full = shape.statement(most);
    match also {
        None => write_rows(c, &shape, &full, most, order.rows()).await?,
        Some(d) => {
            let at = order.halfway();
            let (low, high) = tokio::join!(
                write_rows(c, &shape, &full, most, order.rows_in(0..at)),
                write_rows(d, &shape, &full, most, order.rows_in(at..order.len())),
            );
            low?;
            high?;
        }
    }
    Ok(order.len())
}

/// Writes `rows` as statements of `most` rows (`full`'s SQL), the last one
/// shorter.
async fn write_rows<'a>(
    c: &mut AnyConnection,
    shape: &Rows,
    full: &str,
    most: usize,
    rows: impl Iterator<Item = [&'a str; 3]>,
) -> Result<(), sqlx::Error> {
    let mut rows = rows.peekable();
    while rows.peek().is_some() {
        let mut args = AnyArguments::default();
        let mut n = 0;
        for row in rows.by_ref().take(most) {
            for cell in row {
                args.add(cell).map_err(sqlx::Error::Encode)?;
            }
            n += 1;
        }
        let sql = if n == most {
            Cow::Borrowed(full)
        } else {
            Cow::Owned(shape.statement(n))
        };
        sqlx::query_with(&sql, args).execute(&mut *c).await?;
    }
    Ok(())
}

#[async_trait]
impl Projector for FamiliesProjector {
    fn name(&self) -> &'static str {
        "families"
    }
    fn tables(&self) -> &'static [&'static str] {
        &[
            "patients",
            "families",
            "family_totals",
            "family_grams",
            "family_gram_counts",
            "recorder_families",
        ]
    }

    /// The lists' orders; its writes go by id, by subscription and (for a
    /// household's patients) through `patients_family`, which stays.
    fn deferred_indexes(&self) -> &'static [&'static str] {
        &[
            "families_created",
            "families_created_id",
            "families_name",
            "patients_name",
            "recorder_families_list",
            "recorder_families_household",
        ]
    }

    async fn apply(&self, c: &mut AnyConnection, e: &StoredEvent) -> Result<(), ProjectionError> {
        self.apply_all(c, &[e]).await
    }

    /// Households created, patients registered and subscriptions taken out
    /// (nearly all of a replay) are written as multi-row inserts; any other
    /// event of the projector's writes them first, then applies itself.
    async fn apply_all(&self, c: &mut AnyConnection, events: &[&StoredEvent]) -> Result<(), ProjectionError> {
        apply_buffered(c, events, &mut FamilyRows::new(Dialect::of(c), Grams::Kept)).await
    }

    /// As `apply_all`, without the search grams: they are derived from the
    /// households' and patients' rows, and written once from their final
    /// state by [`Projector::finish_load`] instead of at every change (about
    /// nine in ten of the rows a replay of this read model writes).
    async fn load_all(&self, c: &mut AnyConnection, events: &[&StoredEvent]) -> Result<(), ProjectionError> {
        apply_buffered(c, events, &mut FamilyRows::new(Dialect::of(c), Grams::Deferred)).await
    }

    /// Writes the grams once, from the households' final rows, and the
    /// subscription windows the load left unwritten, from `recorder_families`
    /// (once its index by household is built).
    async fn finish_load(&self, store: &ReadStore) -> Result<(), ProjectionError> {
        store.load_family_grams().await?;
        let windows = windows_sql(store.dialect());
        sqlx::query(&format!(
            "UPDATE families SET subscription_windows = {windows} WHERE subscription_windows IS NULL"
        ))
        .execute(store.writer())
        .await?;
        Ok(())
    }
}

/// Whether a run of events keeps the rows derived from other rows (the search
/// grams, `family_grams`, and the households' subscription windows) as it
/// goes, or leaves them to be written after a bulk load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grams {
    Kept,
    Deferred,
}

impl Grams {
    /// What a household's subscription windows are set to when they change:
    /// written again from `recorder_families`, or during a load NULL, left
    /// to `finish_load` (the load has no index by household yet).
    fn windows(self, dialect: Dialect) -> &'static str {
        match self {
            Grams::Kept => windows_sql(dialect),
            Grams::Deferred => "NULL",
        }
    }

    /// The household's grams before a change to its texts, when they are kept.
    async fn before(self, c: &mut AnyConnection, family: &str) -> Result<Option<HeldGrams>, sqlx::Error> {
        match self {
            Grams::Kept => HeldGrams::read(c, family).await,
            Grams::Deferred => Ok(None),
        }
    }

    /// As [`Grams::before`], for the household of a patient.
    async fn before_patient(self, c: &mut AnyConnection, patient: &str) -> Result<Option<HeldGrams>, sqlx::Error> {
        match self {
            Grams::Kept => HeldGrams::of_patient(c, patient).await,
            Grams::Deferred => Ok(None),
        }
    }
}

/// After a change to a household's texts: its grams as they are now.
async fn after(c: &mut AnyConnection, before: Option<HeldGrams>) -> Result<(), sqlx::Error> {
    match before {
        Some(held) => held.rewrite(c).await,
        None => Ok(()),
    }
}

/// Every event [`FamilyRows::take`] does not write.
async fn apply_one(c: &mut AnyConnection, e: &StoredEvent, grams: Grams) -> Result<(), ProjectionError> {
    let id = e.aggregate_id.as_str();
    let at = e.at();
    match e.aggregate_type.as_str() {
        "family" => match e.decode::<FamilyEvent>()? {
            // Written by `FamilyRows::take`, which takes every one.
            FamilyEvent::FamilyCreated(_) => {}
            FamilyEvent::FamilyErased { .. } => {
                let held = grams.before(c, id).await?;
                sqlx::query(
                    "UPDATE families SET family_name = ?, primary_address = ?, secondary_address = NULL,
                        contact_phone = ?, emergency_contact = NULL, emergency_phone = NULL,
                        home_lat = NULL, home_lng = NULL, erased_at = ?, updated_at = ?, version = ?
                     WHERE id = ?",
                )
                .bind(ERASED)
                .bind(ERASED)
                .bind(ERASED)
                .bind(&at)
                .bind(&at)
                .bind(e.sequence)
                .bind(id)
                .execute(&mut *c)
                .await?;
                after(c, held).await?;
            }
            FamilyEvent::FamilyUpdated(ch) => {
                let held = if ch.family_name.is_some() || ch.primary_address.is_some() {
                    grams.before(c, id).await?
                } else {
                    None
                };
                sqlx::query(
                    "UPDATE families SET family_name = COALESCE(?, family_name),
                        primary_address = COALESCE(?, primary_address),
                        secondary_address = COALESCE(?, secondary_address),
                        contact_phone = COALESCE(?, contact_phone),
                        emergency_contact = COALESCE(?, emergency_contact),
                        emergency_phone = COALESCE(?, emergency_phone),
                        home_lat = COALESCE(?, home_lat), home_lng = COALESCE(?, home_lng),
                        updated_at = ?, version = ?
                     WHERE id = ?",
                )
                .bind(&ch.family_name)
                .bind(&ch.primary_address)
                .bind(&ch.secondary_address)
                .bind(ch.contact_phone.as_ref().map(|p| p.as_str().to_string()))
                .bind(&ch.emergency_contact)
                .bind(ch.emergency_phone.as_ref().map(|p| p.as_str().to_string()))
                .bind(ch.home_lat)
                .bind(ch.home_lng)
                .bind(&at)
                .bind(e.sequence)
                .bind(id)
                .execute(&mut *c)
                .await?;
                after(c, held).await?;
            }
        },
        "patient" => match e.decode::<PatientEvent>()? {
            // Written by `FamilyRows::take`, which takes every one.
            PatientEvent::PatientRegistered { .. } => {}
            PatientEvent::PatientErased { .. } => {
                let held = grams.before_patient(c, id).await?;
                sqlx::query(
                    "UPDATE patients SET name = ?, id_card = NULL, phone = NULL, medical_history = '[]',
                        allergies = NULL, current_medications = '[]', service_preferences = NULL,
                        erased_at = ?, updated_at = ?, version = ?
                     WHERE id = ?",
                )
                .bind(ERASED)
                .bind(&at)
                .bind(&at)
                .bind(e.sequence)
                .bind(id)
                .execute(&mut *c)
                .await?;
                after(c, held).await?;
            }
            PatientEvent::PatientUpdated(ch) => {
                let held = if ch.name.is_some() {
                    grams.before_patient(c, id).await?
                } else {
                    None
                };
                sqlx::query(
                    "UPDATE patients SET name = COALESCE(?, name), gender = COALESCE(?, gender),
                        birth_date = COALESCE(?, birth_date), id_card = COALESCE(?, id_card),
                        phone = COALESCE(?, phone), relationship_to_head = COALESCE(?, relationship_to_head),
                        medical_history = COALESCE(?, medical_history), allergies = COALESCE(?, allergies),
                        current_medications = COALESCE(?, current_medications),
                        service_preferences = COALESCE(?, service_preferences),
                        updated_at = ?, version = ?
                     WHERE id = ?",
                )
                .bind(&ch.name)
                .bind(ch.gender.map(|g| g.as_str()))
                .bind(ch.birth_date.map(|d| d.to_string()))
                .bind(ch.id_card.as_ref().map(|v| v.as_str().to_string()))
                .bind(ch.phone.as_ref().map(|v| v.as_str().to_string()))
                .bind(&ch.relationship_to_head)
                .bind(ch.medical_history.as_ref().map(json))
                .bind(&ch.allergies)
                .bind(ch.current_medications.as_ref().map(json))
                .bind(ch.service_preferences.as_ref().map(json))
                .bind(&at)
                .bind(e.sequence)
                .bind(id)
                .execute(&mut *c)
                .await?;
                after(c, held).await?;
            }
        },
        // Each subscription's recorder and household, for the recorder's
        // family list (`recorder_families`).
        "subscription" => {
            let status = match e.decode::<SubscriptionEvent>()? {
                // Written by `FamilyRows::take`, which takes every one.
                SubscriptionEvent::SubscriptionCreated(_) => return Ok(()),
                SubscriptionEvent::SubscriptionStatusChanged { status, .. } => status.as_str(),
                SubscriptionEvent::SubscriptionExpired { .. } => "expired",
                SubscriptionEvent::SubscriptionPaymentChanged { .. } => return Ok(()),
            };
            sqlx::query("UPDATE recorder_families SET status = ? WHERE subscription_id = ?")
                .bind(status)
                .bind(id)
                .execute(&mut *c)
                .await?;
            // The household's windows: written again, or during a load left
            // to `finish_load`.
            let windows = grams.windows(Dialect::of(c));
            sqlx::query(&format!(
                "UPDATE families SET subscription_windows = {windows}
                 WHERE id = (SELECT family_id FROM recorder_families WHERE subscription_id = ?)"
            ))
            .bind(id)
            .execute(&mut *c)
            .await?;
        }
        _ => {}
    }
    Ok(())
}

/// The placeholder of `patient_count` in a household's row of [`FamilyRows`].
const FAMILY_PATIENT_COUNT: usize = 12;

/// The placeholder of `subscription_windows` in a household's row of
/// [`FamilyRows`].
const FAMILY_SUBSCRIPTION_WINDOWS: usize = 13;

/// The characters of one window in `families.subscription_windows` (migration
/// 0028): a subscription active by status, as its start date and end date
/// (`YYYY-MM-DD`) and its recorder's id, sorted. None is `''`; NULL is a
/// household whose windows a rebuild's load left to `finish_load`.
pub const WINDOW: usize = 10 + 10 + 36;

/// A household's windows (`families.id`), from its rows of
/// `recorder_families`: a scalar expression for an `UPDATE` of `families`.
fn windows_sql(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::MySql => {
            "COALESCE((SELECT GROUP_CONCAT(rf.start_date, rf.end_date, rf.recorder_id
                                  ORDER BY rf.start_date, rf.end_date, rf.recorder_id SEPARATOR '')
              FROM recorder_families rf WHERE rf.family_id = families.id AND rf.status = 'active'), '')"
        }
        Dialect::Sqlite => {
            "COALESCE((SELECT group_concat(rf.start_date || rf.end_date || rf.recorder_id, ''
                                  ORDER BY rf.start_date, rf.end_date, rf.recorder_id)
              FROM recorder_families rf WHERE rf.family_id = families.id AND rf.status = 'active'), '')"
        }
    }
}

/// Writes again the windows of `households`, from their `recorder_families`
/// rows (by `recorder_families_household`); or, during a rebuild's load
/// (whose list indexes come after it), leaves them to `finish_load` (NULL).
async fn write_windows(
    c: &mut AnyConnection,
    dialect: Dialect,
    grams: Grams,
    households: BTreeSet<String>,
) -> Result<(), sqlx::Error> {
    let households: Vec<String> = households.into_iter().collect();
    let windows = grams.windows(dialect);
    for chunk in households.chunks(500) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let sql = format!("UPDATE families SET subscription_windows = {windows} WHERE id IN ({marks})");
        chunk
            .iter()
            .fold(sqlx::query(&sql), |q, id| q.bind(id))
            .execute(&mut *c)
            .await?;
    }
    Ok(())
}

/// How many of a household's `windows` (see [`WINDOW`]) are active on `today`
/// (`YYYY-MM-DD`): started and not ended; only `recorder`'s, if given.
pub fn active_windows(windows: &str, today: &str, recorder: Option<&str>) -> i64 {
    let today = today.as_bytes();
    let active = windows
        .as_bytes()
        .chunks_exact(WINDOW)
        .filter(|w| &w[..10] <= today && &w[10..20] >= today && recorder.is_none_or(|r| &w[20..] == r.as_bytes()));
    active.count() as i64
}

/// The rows of a run of households created, patients registered and
/// subscriptions taken out, written together by [`FamilyRows::flush`].
struct FamilyRows {
    keep_grams: Grams,
    families: Rows,
    patients: Rows,
    grams: Rows,
    /// Grams waiting, with their household's creation time and id (one
    /// shared copy per household), written in key order at the flush
    /// ([`push_grams`]).
    waiting_grams: Vec<(String, Household)>,
    recorder_families: Rows,
    /// Households created in the run (added to `family_totals` at the flush).
    created: i64,
    /// Where each household created in the run waits in `families`: its
    /// patients registered in the run are counted in its row.
    family_rows: HashMap<String, usize>,
    /// Patients registered in the run of households written before it, by
    /// household (added to `patient_count` at the flush).
    more_patients: HashMap<String, i64>,
    /// The grams each household touched in the run holds, as counted
    /// ([`counted_as`]): a gram counts a household once, when the household
    /// first holds it.
    held: HashMap<String, BTreeSet<String>>,
    /// The changes to `family_gram_counts` the run's grams make.
    counts: GramCounts,
    dialect: Dialect,
    /// What a subscription's row needs of the rows waiting here: a patient's
    /// household, a household's creation time.
    patient_family: HashMap<String, String>,
    family_created_at: HashMap<String, String>,
    /// The windows of households created in the run, by their row in
    /// `families` (written with it).
    row_windows: HashMap<usize, Vec<String>>,
    /// Households written before the run and given a subscription in it:
    /// their windows are written again at the flush, once their
    /// `recorder_families` rows are ([`write_windows`]).
    windows: BTreeSet<String>,
}

#[async_trait]
impl Buffer for FamilyRows {
    /// Takes `e` into the rows if it is one they write, or one this projector
    /// ignores; false if it must be applied on its own (after a flush).
    async fn take(&mut self, c: &mut AnyConnection, e: &StoredEvent) -> Result<bool, ProjectionError> {
        let id = e.aggregate_id.as_str();
        match (e.aggregate_type.as_str(), e.event_type.as_str()) {
            ("family", "FamilyCreated") => {
                let FamilyEvent::FamilyCreated(d) = e.decode::<FamilyEvent>()? else {
                    return Ok(false);
                };
                let at = e.at();
                self.families.push([
                    id.into(),
                    (&d.family_name).into(),
                    (&d.primary_address).into(),
                    (&d.secondary_address).into(),
                    d.contact_phone.as_str().into(),
                    (&d.emergency_contact).into(),
                    d.emergency_phone.as_ref().map(|p| p.as_str().to_string()).into(),
                    d.home_lat.into(),
                    d.home_lng.into(),
                    (&at).into(),
                    (&at).into(),
                    e.sequence.into(),
                    0_i64.into(),
                    String::new().into(),
                ]);
                self.family_rows.insert(id.to_string(), self.families.len() - 1);
                self.created += 1;
                self.add_grams(
                    Household::new(&at, id),
                    [d.family_name.as_str(), d.primary_address.as_str()],
                );
                self.family_created_at.insert(id.to_string(), at);
                Ok(true)
            }
            ("patient", "PatientRegistered") => {
                let PatientEvent::PatientRegistered { family_id, details: d } = e.decode::<PatientEvent>()? else {
                    return Ok(false);
                };
                let at = e.at();
                let family = family_id.to_string();
                self.patients.push([
                    id.into(),
                    (&family).into(),
                    (&d.name).into(),
                    d.gender.as_str().into(),
                    d.birth_date.to_string().into(),
                    d.id_card.as_ref().map(|v| v.as_str().to_string()).into(),
                    d.phone.as_ref().map(|v| v.as_str().to_string()).into(),
                    (&d.relationship_to_head).into(),
                    json(&d.medical_history).into(),
                    (&d.allergies).into(),
                    json(&d.current_medications).into(),
                    d.service_preferences.as_ref().map(json).into(),
                    (&at).into(),
                    at.into(),
                    e.sequence.into(),
                ]);
                if self.keep_grams == Grams::Kept {
                    // As the household's row: none for a household the read
                    // model does not know.
                    if let Some(created_at) = self.created_at(c, &family).await? {
                        self.hold(c, &family).await?;
                        self.add_grams(Household::new(&created_at, &family), [d.name.as_str()]);
                    }
                }
                self.count_patient(&family);
                self.patient_family.insert(id.to_string(), family);
                Ok(true)
            }
            ("subscription", "SubscriptionCreated") => {
                let SubscriptionEvent::SubscriptionCreated(t) = e.decode::<SubscriptionEvent>()? else {
                    return Ok(false);
                };
                // As the join of the patient and the household: no row for a
                // patient the read model does not know.
                let patient = t.patient_id.to_string();
                let Some(family) = self.family_of(c, &patient).await? else {
                    return Ok(true);
                };
                let Some(created_at) = self.created_at(c, &family).await? else {
                    return Ok(true);
                };
                let window = format!("{}{}{}", t.start_date, t.end_date, t.recorder_id);
                match self.family_rows.get(&family) {
                    Some(&row) => self.row_windows.entry(row).or_default().push(window),
                    None => {
                        self.windows.insert(family.clone());
                    }
                }
                self.recorder_families.push([
                    id.into(),
                    t.recorder_id.to_string().into(),
                    family.into(),
                    patient.into(),
                    t.start_date.to_string().into(),
                    t.end_date.to_string().into(),
                    created_at.into(),
                ]);
                Ok(true)
            }
            ("family" | "patient" | "subscription", _) => Ok(false),
            _ => Ok(true),
        }
    }

    async fn flush(&mut self, c: &mut AnyConnection) -> Result<(), ProjectionError> {
        for (row, mut windows) in std::mem::take(&mut self.row_windows) {
            windows.sort_unstable();
            *self.families.cell_mut(row, FAMILY_SUBSCRIPTION_WINDOWS) = Cell::Text(Some(windows.concat()));
        }
        self.families.flush(c).await?;
        self.patients.flush(c).await?;
        self.family_rows.clear();
        for (family, added) in std::mem::take(&mut self.more_patients) {
            sqlx::query("UPDATE families SET patient_count = patient_count + ? WHERE id = ?")
                .bind(added)
                .bind(family)
                .execute(&mut *c)
                .await?;
        }
        push_grams(&mut self.grams, std::mem::take(&mut self.waiting_grams));
        self.grams.flush(c).await?;
        self.counts.flush(c).await?;
        self.held.clear();
        self.recorder_families.flush(c).await?;
        write_windows(c, self.dialect, self.keep_grams, std::mem::take(&mut self.windows)).await?;
        count_families(c, std::mem::take(&mut self.created)).await?;
        self.patient_family.clear();
        self.family_created_at.clear();
        Ok(())
    }

    async fn apply_one(&mut self, c: &mut AnyConnection, e: &StoredEvent) -> Result<(), ProjectionError> {
        apply_one(c, e, self.keep_grams).await
    }
}

impl FamilyRows {
    fn new(dialect: Dialect, keep_grams: Grams) -> Self {
        FamilyRows {
            keep_grams,
            families: Rows::new(
                "INSERT",
                "families",
                "id, family_name, primary_address, secondary_address, contact_phone, emergency_contact,
                 emergency_phone, home_lat, home_lng, created_at, updated_at, version, patient_count,
                 subscription_windows",
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ),
            family_rows: HashMap::new(),
            more_patients: HashMap::new(),
            patients: Rows::new(
                "INSERT",
                "patients",
                "id, family_id, name, gender, birth_date, id_card, phone, relationship_to_head, medical_history,
                 allergies, current_medications, service_preferences, created_at, updated_at, version",
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ),
            grams: gram_rows(dialect),
            waiting_grams: Vec::new(),
            recorder_families: Rows::new(
                "INSERT",
                "recorder_families",
                "subscription_id, recorder_id, family_id, patient_id, status, start_date, end_date, family_created_at",
                "(?, ?, ?, ?, 'active', ?, ?, ?)",
            ),
            created: 0,
            held: HashMap::new(),
            counts: GramCounts::default(),
            dialect,
            patient_family: HashMap::new(),
            family_created_at: HashMap::new(),
            row_windows: HashMap::new(),
            windows: BTreeSet::new(),
        }
    }

    /// Counts a patient registered in `family`: in the household's row if it
    /// waits in this run, else as an addition to its stored count.
    fn count_patient(&mut self, family: &str) {
        match self.family_rows.get(family) {
            Some(&row) => match self.families.cell_mut(row, FAMILY_PATIENT_COUNT) {
                Cell::Int(Some(n)) => *n += 1,
                other => unreachable!("a household's patient count is a number, not {other:?}"),
            },
            None => *self.more_patients.entry(family.to_string()).or_default() += 1,
        }
    }

    /// Adds the grams of `texts` to the household's, counting those it did
    /// not hold yet (see [`FamilyRows::hold`] for a household written before
    /// the run).
    fn add_grams<'a>(&mut self, household: Household, texts: impl IntoIterator<Item = &'a str>) {
        if self.keep_grams == Grams::Deferred {
            return;
        }
        let held = self.held.entry(household.id.to_string()).or_default();
        for g in family_grams(texts) {
            let counted = counted_as(&g, self.dialect);
            if !held.contains(counted) {
                self.counts.add(counted, 1);
                held.insert(counted.to_string());
            }
            self.waiting_grams.push((g, household.clone()));
        }
    }

    /// Learns the grams a household written before the run holds, from its
    /// rows, unless the run touched it already (its rows then wait here).
    async fn hold(&mut self, c: &mut AnyConnection, family: &str) -> Result<(), sqlx::Error> {
        if self.held.contains_key(family) {
            return Ok(());
        }
        let grams = HeldGrams::read(c, family).await?.map(|h| h.grams).unwrap_or_default();
        let held = grams.iter().map(|g| counted_as(g, self.dialect).to_string()).collect();
        self.held.insert(family.to_string(), held);
        Ok(())
    }

    /// A patient's household: waiting here, or in the table (a patient not
    /// waiting here was written before the run).
    async fn family_of(&self, c: &mut AnyConnection, patient: &str) -> Result<Option<String>, sqlx::Error> {
        if let Some(f) = self.patient_family.get(patient) {
            return Ok(Some(f.clone()));
        }
        sqlx::query_scalar("SELECT family_id FROM patients WHERE id = ?")
            .bind(patient)
            .fetch_optional(&mut *c)
            .await
    }

    async fn created_at(&self, c: &mut AnyConnection, family: &str) -> Result<Option<String>, sqlx::Error> {
        if let Some(at) = self.family_created_at.get(family) {
            return Ok(Some(at.clone()));
        }
        sqlx::query_scalar("SELECT created_at FROM families WHERE id = ?")
            .bind(family)
            .fetch_optional(&mut *c)
            .await
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FamilyListItem {
    #[schema(value_type = String, format = Uuid)]
    pub id: FamilyId,
    pub family_name: String,
    pub primary_address: String,
    pub contact_phone: String,
    pub patient_count: i64,
    pub active_subscriptions: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LastRecord {
    #[schema(value_type = String, format = Uuid)]
    pub id: HealthRecordId,
    pub date: String,
    pub time: String,
    pub notes: Option<String>,
    pub abnormal: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FamilyPatient {
    #[schema(value_type = String, format = Uuid)]
    pub id: PatientId,
    pub name: String,
    pub age: i32,
    #[schema(value_type = String)]
    pub gender: Gender,
    pub birth_date: String,
    pub relationship_to_head: String,
    pub current_subscription: Option<SubscriptionSummary>,
    pub last_record: Option<LastRecord>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FamilyDetail {
    #[schema(value_type = String, format = Uuid)]
    pub id: FamilyId,
    pub family_name: String,
    pub primary_address: String,
    pub secondary_address: Option<String>,
    pub contact_phone: String,
    pub emergency_contact: Option<String>,
    pub emergency_phone: Option<String>,
    pub home_lat: Option<f64>,
    pub home_lng: Option<f64>,
    pub created_at: String,
    pub updated_at: String,
    pub version: i64,
    pub patients: Vec<FamilyPatient>,
}

/// One current medication as the API reads and writes it (the schema only;
/// the value is `domain::medication::Medication`): free text, as entries were
/// before structured medications and as they stay when sent as text, or an
/// object whose parts are known.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum MedicationEntry {
    /// Free text, up to 200 characters.
    Text(String),
    Structured(StructuredMedicationEntry),
}

/// `{name, dosage?, frequency?, route?}`; reads return every key, null when not given.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct StructuredMedicationEntry {
    /// Required; up to 200 characters.
    #[schema(min_length = 1, max_length = 200)]
    name: String,
    /// e.g. "5mg"; up to 100 characters.
    #[schema(max_length = 100)]
    dosage: Option<String>,
    /// e.g. "每日一次"; up to 100 characters.
    #[schema(max_length = 100)]
    frequency: Option<String>,
    /// e.g. "口服"; up to 100 characters.
    #[schema(max_length = 100)]
    route: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PatientView {
    #[schema(value_type = String, format = Uuid)]
    pub id: PatientId,
    #[schema(value_type = String, format = Uuid)]
    pub family_id: FamilyId,
    pub name: String,
    #[schema(value_type = String)]
    pub gender: Gender,
    pub birth_date: String,
    pub age: i32,
    pub id_card: Option<String>,
    pub phone: Option<String>,
    pub relationship_to_head: String,
    #[schema(value_type = Vec<String>)]
    pub medical_history: serde_json::Value,
    pub allergies: Option<String>,
    /// Each entry as it was sent: free text, or `{name, dosage, frequency, route}`.
    #[schema(value_type = Vec<MedicationEntry>)]
    pub current_medications: serde_json::Value,
    /// An object, or null when none was given.
    #[schema(value_type = Option<Object>)]
    pub service_preferences: serde_json::Value,
    pub current_subscription: Option<SubscriptionSummary>,
    /// Set when the patient's personal data were erased (fields read as erased).
    pub erased: bool,
    pub erased_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub version: i64,
}

/// A family is visible to a recorder when one of its patients is assigned to
/// that recorder today ([`assigned_sql`]). Binds: recorder, today, today.
fn recorder_family() -> String {
    format!(
        "EXISTS (SELECT 1 FROM patients p WHERE p.family_id = f.id AND {})",
        assigned_sql("p.id")
    )
}

/// The family list's statements for one caller and search: only the
/// conditions that apply, so the planner can use `families_created_id` (newest
/// first), start a recorder's list from their assignments
/// (`recorder_families`), or a search from its grams (`family_grams`, keyed in
/// the list's order), instead of scanning.
pub struct FamilyListSql {
    /// `LIMIT ? OFFSET ?` follow `list_binds`.
    pub list: String,
    pub list_binds: Vec<String>,
    /// The total's statement and its binds; `None`: no filter, the total is
    /// the projector's counter, which the list's rows carry (`family_total`,
    /// one read of `family_totals` in the page's statement) and which is read
    /// on its own only for a page past the end.
    pub count: Option<(String, Vec<String>)>,
    /// The list's rows carry the total (`total_rows`, a window count taken
    /// in the same pass as the page): `count` runs only for a page past the
    /// end, which has no rows to carry it.
    pub windowed: bool,
    /// An admin's search counts at most this many matches, plus one: a total
    /// above it is reported as this number, as a lower bound, or estimated
    /// (`estimate`).
    pub cap: Option<i64>,
    /// A total past `cap` is estimated from the walk ([`estimate`]): the
    /// walk's rows (the list's, or with `tally` the count's) carry the oldest
    /// match's creation time and id (`walked_to`, `walked_to_id`).
    pub estimate: Option<Estimate>,
    /// The list's rows also carry how many households holding the drive pair
    /// the walk passed (`walked`, what [`WALKED`] counts), computed in the
    /// page's statement (on SQLite, from its common table expression):
    /// `WALKED` then need not run on its own.
    pub walked_in_rows: bool,
    /// `count` is a tally: at most one row, with the matches walked
    /// (`total_rows`) and where the walk ended (`walked_to`, `walked_to_id`);
    /// none when nothing matched.
    pub tally: bool,
    /// A recorder's list without a search: `list` reads every one of their
    /// assignments today (one range of the covering `recorder_families_list`,
    /// no `LIMIT`), which are grouped by household, counted and paged in
    /// memory ([`group_assignments`]); the page's households are then read by
    /// id ([`families_by_id_sql`]). A recorder has a few hundred assignments
    /// at most, and SQLite's `GROUP BY`, `COUNT(DISTINCT)` and window count
    /// over them cost 0.4 ms a request at 1,000,000 patients, six times
    /// the range itself.
    pub assignments: bool,
}

/// The households `n` ids name (the page of a recorder's list).
pub fn families_by_id_sql(n: usize) -> String {
    let marks = vec!["?"; n.max(1)].join(", ");
    format!("SELECT id, family_name, primary_address, contact_phone FROM families WHERE id IN ({marks})")
}

/// One household of a recorder's assignments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssignedFamily<'a> {
    pub family_id: &'a str,
    pub created_at: &'a str,
    /// Distinct patients.
    pub patients: i64,
    pub subscriptions: i64,
}

/// A recorder's assignments `(family id, family created at, patient id)`,
/// one per active subscription, grouped by household in the family list's
/// order (newest first, then id descending), as the list shows them: the
/// distinct patients and the subscriptions of each. Sorts in place, no
/// hashing: a few hundred rows per request.
pub fn group_assignments<'a>(rows: &mut [(&'a str, &'a str, &'a str)]) -> Vec<AssignedFamily<'a>> {
    rows.sort_unstable_by(|a, b| (a.0, a.2).cmp(&(b.0, b.2)));
    let mut out: Vec<AssignedFamily<'a>> = Vec::new();
    let mut last_patient: Option<&str> = None;
    for &(family_id, created_at, patient_id) in rows.iter() {
        match out.last_mut() {
            Some(f) if f.family_id == family_id => {
                f.created_at = f.created_at.max(created_at);
                f.patients += i64::from(last_patient != Some(patient_id));
                f.subscriptions += 1;
            }
            _ => out.push(AssignedFamily {
                family_id,
                created_at,
                patients: 1,
                subscriptions: 1,
            }),
        }
        last_patient = Some(patient_id);
    }
    out.sort_unstable_by(|a, b| (b.created_at, b.family_id).cmp(&(a.created_at, a.family_id)));
    out
}

/// A recorder's assigned subscriptions today, with their households
/// (`recorder_families`, alias `ra`). Binds: recorder, today, today.
const RECORDER_FAMILIES: &str = "recorder_families ra
    WHERE ra.recorder_id = ? AND ra.status = 'active' AND ra.start_date <= ? AND ra.end_date >= ?";

/// Matching households an admin's search counts exactly. When its rarest
/// pair is held by no more households than this, the walk reads them all
/// and the total is exact (or, past the cap, a lower bound: a page past it
/// extends the count to that page). When the pair is more common, the walk
/// stops after the page (and one more match, to know there are more) and the
/// total is estimated from it ([`estimate`]): a common name's search then costs
/// about what its page does, where counting two hundred matches read ten
/// times the page (2 of the 6 ms a common name took at 1,000,000 patients).
pub const SEARCH_TOTAL_CAP: i64 = 200;

/// Gram rows (households, summed over the grams starting with the character)
/// from which a one-character search scans every household instead of
/// gathering the character's holders ([`Candidates::start`]).
pub const PROBE_ROWS: i64 = 4_000;

/// Runs of digits of one search whose tokens' households are counted (the
/// longest; a search is at most 100 characters, so 50 runs).
pub const NUMBER_RUNS_COUNTED: usize = 4;

/// Where an admin's search starts, chosen from how many households hold its
/// grams (`family_gram_counts`, [`Candidates::start`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// Walk the households holding `drive` newest first (its rows' key
    /// order), each probed by key for the `others`; the walk stops after
    /// the page, or after the capped total. `households`: how many hold
    /// `drive` (`None`: not known, as for a start given by hand or none at
    /// all; the total is then counted to the cap).
    Walk {
        drive: String,
        others: Vec<String>,
        households: Option<i64>,
    },
    /// One character in few rows: take their households and sort them.
    Gather(char),
    /// Digits held by fewer households than any pair of the search (and than
    /// [`PROBE_ROWS`]): take the households holding a number token in these
    /// ranges ([`numbers::ranges`]) and sort them.
    Number(Vec<[String; 2]>),
    /// One character in many rows (a common one): walk every household newest
    /// first, each checked by `LIKE` alone (a household holds a gram starting
    /// with the character exactly when its text holds the character); holders
    /// are dense, so the page is found within a few hundred.
    Scan(char),
}

impl Candidates {
    /// Where the search starts, given how many households hold each pair
    /// (in the order of [`Candidates::Pairs`]) or the grams starting with the
    /// character. For pairs, the one the fewest hold (a pair none holds ends
    /// the search at once; the first of those tied): the walk reads about its
    /// rows when matches are few. For one character, its holders gathered when
    /// few and scanned for when many.
    pub fn start(self, households: &[i64]) -> Start {
        match self {
            Candidates::Pairs(pairs) => {
                // By households, the first of those tied (a stable sort); the
                // others are probed in that order too, so the first probe
                // turns away the most.
                let mut counted: Vec<(Option<i64>, String)> = pairs
                    .into_iter()
                    .enumerate()
                    .map(|(i, p)| (households.get(i).copied(), p))
                    .collect();
                counted.sort_by_key(|(n, _)| n.unwrap_or(i64::MAX));
                let mut pairs = counted.into_iter();
                let (households, drive) = pairs.next().unwrap_or_default();
                Start::Walk {
                    drive,
                    others: pairs.map(|(_, p)| p).collect(),
                    households,
                }
            }
            Candidates::Starting(c) if households.first().is_some_and(|&n| n >= PROBE_ROWS) => Start::Scan(c),
            Candidates::Starting(c) => Start::Gather(c),
        }
    }

    /// Conditions that a household `f` holds these grams, each a probe by
    /// key, and their binds. None for one character: a household holds a
    /// gram starting with it exactly when its text holds it, which `LIKE`
    /// checks anyway.
    fn held_by_f(&self) -> (Vec<String>, Vec<String>) {
        match self {
            Candidates::Pairs(pairs) => (
                pairs.iter().map(|_| holds_pair("f.created_at", "f.id")).collect(),
                pairs.clone(),
            ),
            Candidates::Starting(_) => (Vec::new(), Vec::new()),
        }
    }
}

/// How many households hold a gram in one of `ranges` (inclusive), summed
/// over the grams from the projector's counts (a household holding two is
/// counted twice: an upper bound).
async fn held_in(conn: &mut AnyConnection, ranges: &[[String; 2]]) -> Result<i64, sqlx::Error> {
    let sum = match Dialect::of(conn) {
        Dialect::Sqlite => "COALESCE(SUM(households), 0)",
        Dialect::MySql => "CAST(COALESCE(SUM(households), 0) AS SIGNED)",
    };
    let held = vec!["(gram >= ? AND gram <= ?)"; ranges.len()].join(" OR ");
    let sql = format!("SELECT {sum} FROM family_gram_counts WHERE {held}");
    ranges
        .iter()
        .flatten()
        .fold(sqlx::query_scalar(&sql), |q, b| q.bind(b.as_str()))
        .fetch_one(&mut *conn)
        .await
}

/// Where a search starts whose runs of digits give `numbers` (each run's
/// ranges of number tokens, [`numbers::ranges`], and how many households hold
/// a token in them): from the rarest run's tokens, gathered, when fewer
/// households hold them than the pair `start` walks and than [`PROBE_ROWS`];
/// otherwise `start`. A house number's pairs are all common (a hundred pairs
/// of digits), its tokens rare.
pub fn or_number(start: Start, numbers: Vec<(Vec<[String; 2]>, i64)>) -> Start {
    let Some((ranges, n)) = numbers.into_iter().min_by_key(|(_, n)| *n) else {
        return start;
    };
    let walked = match &start {
        Start::Walk { households, .. } => households.unwrap_or(i64::MAX),
        _ => return start,
    };
    if n < walked && n <= PROBE_ROWS {
        Start::Number(ranges)
    } else {
        start
    }
}

/// The grams starting with `c`: from the character alone to the character
/// followed by the highest code point (both stores compare grams by code
/// point).
fn range(c: char) -> [String; 2] {
    [c.to_string(), format!("{c}{}", char::MAX)]
}

// The probes below are scalar subqueries, not `EXISTS`: MariaDB turns an
// `EXISTS` into a semi-join it may start from, then sorts what it found,
// where the search means to walk its one gram in order and stop.

/// That the household (`created_at`, `id`) holds the pair bound: one read of
/// the grams' key (at most one row). Bind: the pair.
fn holds_pair(created_at: &str, id: &str) -> String {
    format!(
        "1 = (SELECT 1 FROM family_grams o WHERE o.gram = ? AND o.created_at = {created_at} AND o.family_id = {id})"
    )
}

/// A recorder's page of households ([`FamilyListSql::assignments`]): their
/// assignments read once, grouped and paged here, then the page's households
/// by id, on the same connection.
async fn assigned_page(
    conn: &mut AnyConnection,
    q: &FamilyListSql,
    page: PageParams,
) -> Result<Page<FamilyListItem>, sqlx::Error> {
    // Owned text (one of the two), borrowed by the rows grouped below.
    let json: String;
    let texts: Vec<(String, String, String)>;
    let mut assigned: Vec<(&str, &str, &str)> = match Dialect::of(conn) {
        // sqlx hands each row of a SQLite statement from the connection's
        // thread to the task on its own (a wake-up per row: 200 context
        // switches for 200 assignments, which halved the throughput), so
        // SQLite returns them as one JSON array in one row.
        Dialect::Sqlite => {
            let sql = format!(
                "SELECT json_group_array(json_array(a.family_id, a.family_created_at, a.patient_id)) FROM ({}) a",
                q.list
            );
            let mut one = sqlx::query_scalar::<_, String>(&sql);
            for b in &q.list_binds {
                one = one.bind(b.clone());
            }
            json = one.fetch_one(&mut *conn).await?;
            // Ids and instants hold no escapes: the text borrows from the array.
            serde_json::from_str(&json).map_err(|e| sqlx::Error::Decode(Box::new(e)))?
        }
        Dialect::MySql => {
            let mut list = sqlx::query(&q.list);
            for b in &q.list_binds {
                list = list.bind(b.clone());
            }
            texts = list
                .fetch_all(&mut *conn)
                .await?
                .iter()
                .map(|r| {
                    Ok((
                        r.text("family_id")?,
                        r.text("family_created_at")?,
                        r.text("patient_id")?,
                    ))
                })
                .collect::<Result<_, sqlx::Error>>()?;
            texts
                .iter()
                .map(|(f, c, p)| (f.as_str(), c.as_str(), p.as_str()))
                .collect()
        }
    };
    let groups = group_assignments(&mut assigned);
    let total = groups.len() as i64;
    let offset = usize::try_from(page.offset()).unwrap_or(usize::MAX);
    let limit = usize::try_from(page.limit()).unwrap_or(0);
    let shown: Vec<&AssignedFamily> = groups.iter().skip(offset).take(limit).collect();
    let mut items = Vec::with_capacity(shown.len());
    if !shown.is_empty() {
        let sql = families_by_id_sql(shown.len());
        let mut families = sqlx::query(&sql);
        for f in &shown {
            families = families.bind(f.family_id.to_string());
        }
        let rows = families.fetch_all(&mut *conn).await?;
        let mut by_id = HashMap::with_capacity(rows.len());
        for r in &rows {
            by_id.insert(r.text("id")?, r);
        }
        // In the page's order; a household without its row (never, as the
        // projector writes both in one transaction) is left out, as a join would.
        for f in shown {
            if let Some(r) = by_id.get(f.family_id) {
                items.push(FamilyListItem {
                    id: r.id("id")?,
                    family_name: r.text("family_name")?,
                    primary_address: r.text("primary_address")?,
                    contact_phone: r.text("contact_phone")?,
                    patient_count: f.patients,
                    active_subscriptions: f.subscriptions,
                });
            }
        }
    }
    Ok(Page::exact(items, total, page))
}

/// The family list's statements. `start` says where an admin's search starts
/// ([`Families::list`] reads the grams' counts for it; `None` with a search:
/// from the text's grams alone, as a recorder's search does); `page` sets how
/// far a search's walk goes.
pub fn family_list_sql(
    dialect: Dialect,
    recorder: Option<UserId>,
    search: Option<&str>,
    start: Option<&Start>,
    today: NaiveDate,
    page: PageParams,
) -> FamilyListSql {
    let today = today.to_string();
    let assigned = |r: UserId| vec![r.to_string(), today.clone(), today.clone()];
    let mut select_binds = Vec::new();
    // An admin's page: the household's own count. A recorder's: the patients
    // assigned to them.
    let patient_count = match recorder {
        Some(r) => {
            select_binds.extend(assigned(r));
            format!(
                "(SELECT COUNT(*) FROM patients p WHERE p.family_id = f.id AND {})",
                assigned_sql("p.id")
            )
        }
        None => "f.patient_count".to_string(),
    };
    // The subscriptions active today are counted from the household's row
    // (its windows, [`active_windows`]), not from a range of
    // `recorder_families` per household.
    let counts = format!(
        "SELECT f.id, f.family_name, f.primary_address, f.contact_phone,
            {patient_count} AS patient_count, f.subscription_windows"
    );
    let candidates = search.and_then(Candidates::of);
    let (Some(text), Some(candidates)) = (search, candidates) else {
        return match recorder {
            // A recorder's list without a search: the page, its counts and
            // the total all come from one range of `recorder_families_list`
            // (covering), grouped in memory; only the page's twenty
            // households are then looked up (see `assignments`).
            Some(r) => FamilyListSql {
                list: format!("SELECT ra.family_id, ra.family_created_at, ra.patient_id FROM {RECORDER_FAMILIES}"),
                list_binds: assigned(r),
                count: None,
                windowed: false,
                cap: None,
                estimate: None,
                walked_in_rows: false,
                tally: false,
                assignments: true,
            },
            // Newest first straight off `families_created_id`: the counts are
            // computed for the rows returned only.
            None => FamilyListSql {
                list: format!(
                    "{counts}, (SELECT COALESCE(MAX(t.families), 0) FROM family_totals t WHERE t.id = 1) AS family_total
                     FROM families f ORDER BY f.created_at DESC, f.id DESC LIMIT ? OFFSET ?"
                ),
                list_binds: select_binds,
                count: None,
                windowed: false,
                cap: None,
                estimate: None,
                walked_in_rows: false,
                tally: false,
                assignments: false,
            },
        };
    };

    // `LIKE` checks each household the grams lead to (they are a superset:
    // `LIKE` also compares case as each store's collation does).
    let pattern = like_pattern(text);
    let mut like_binds = vec![pattern.clone(), pattern.clone(), pattern];
    let mine_p2 = match recorder {
        Some(r) => {
            like_binds.extend(assigned(r));
            format!(" AND {}", assigned_sql("p2.id"))
        }
        None => String::new(),
    };
    // The patients' names are a scalar subquery too (see [`holds_pair`]):
    // as an `EXISTS`, MariaDB may read every patient's name first.
    let like = format!(
        "(f.family_name LIKE ? ESCAPE '!' OR f.primary_address LIKE ? ESCAPE '!'
          OR 1 = (SELECT 1 FROM patients p2 WHERE p2.family_id = f.id AND p2.name LIKE ? ESCAPE '!'{mine_p2} LIMIT 1))"
    );
    // The page is chosen first, by key (the derived table `pg`), and the
    // counts computed for its rows alone. The matches walked (at most the
    // cap and one) also give the total and the oldest match.
    let paged = |matches: &str, walked: &str| match dialect {
        // SQLite computes window functions through ephemeral tables and a
        // sort of their own: over a walk of 21 matches they cost as much as
        // the walk itself (0.19 of 0.65 ms for "王建国" at 1,000,000
        // patients). The walk (`m`) and its oldest match (`o`) as common
        // table expressions, which SQLite materializes once when they are
        // read more than once, give the same three values by uncorrelated
        // subqueries, each evaluated once.
        Dialect::Sqlite => format!(
            "WITH m AS ({matches}),
                o AS (SELECT m.created_at, m.id FROM m ORDER BY m.created_at, m.id LIMIT 1)
             {counts}, (SELECT COUNT(*) FROM m) AS total_rows,
                (SELECT o.created_at FROM o) AS walked_to, (SELECT o.id FROM o) AS walked_to_id{walked}
             FROM (SELECT m.id, m.created_at FROM m ORDER BY m.created_at DESC, m.id DESC LIMIT ? OFFSET ?) pg
             JOIN families f ON f.id = pg.id
             ORDER BY pg.created_at DESC, pg.id DESC"
        ),
        // MariaDB may evaluate a common table expression once per reference:
        // the walk once, with window functions.
        Dialect::MySql => format!(
            "{counts}, pg.total_rows, pg.walked_to, pg.walked_to_id
             FROM (SELECT m.id, m.created_at, COUNT(*) OVER () AS total_rows,
                    FIRST_VALUE(m.created_at) OVER (ORDER BY m.created_at, m.id) AS walked_to,
                    FIRST_VALUE(m.id) OVER (ORDER BY m.created_at, m.id) AS walked_to_id
                FROM ({matches}) m
                ORDER BY m.created_at DESC, m.id DESC LIMIT ? OFFSET ?) pg
             JOIN families f ON f.id = pg.id
             ORDER BY pg.created_at DESC, pg.id DESC"
        ),
    };
    let with = |first: Vec<String>, then: &[String]| first.into_iter().chain(then.iter().cloned()).collect::<Vec<_>>();
    // The binds of `paged(matches, walked)`, in the order of their marks: on
    // SQLite the matches' come first (the common table expression), then the
    // select list's, then `walked`'s.
    let paged_binds = |select: Vec<String>, matches: &[String], walked: &[String]| match dialect {
        Dialect::Sqlite => with(with(matches.to_vec(), &select), walked),
        Dialect::MySql => with(select, matches),
    };

    let start = match (recorder, start) {
        // A recorder's households are a few hundred at most: each is probed
        // for the grams by key, and all are counted.
        (Some(r), _) => {
            let (held, held_binds) = candidates.held_by_f();
            let from = format!(
                "(SELECT DISTINCT ra.family_id AS id FROM {RECORDER_FAMILIES}) mine JOIN families f ON f.id = mine.id"
            );
            let conditions = held.into_iter().chain([like]).collect::<Vec<_>>().join(" AND ");
            let matches = format!("SELECT f.id, f.created_at FROM {from} WHERE {conditions}");
            let binds = with(with(assigned(r), &held_binds), &like_binds);
            return FamilyListSql {
                list: paged(&matches, ""),
                list_binds: paged_binds(select_binds, &binds, &[]),
                count: Some((format!("SELECT COUNT(*) FROM ({matches}) m"), binds)),
                windowed: true,
                cap: None,
                estimate: None,
                walked_in_rows: false,
                tally: false,
                assignments: false,
            };
        }
        (None, Some(start)) => start.clone(),
        (None, None) => candidates.start(&[]),
    };
    // An admin's search: the first `walk` matches newest first, counted in
    // the page's pass, as far as the cap (or the page, past it); from a
    // common pair, as far as the page, the total past it estimated.
    let page_end = page.offset() + page.limit();
    let estimate = match &start {
        Start::Walk {
            drive,
            households: Some(n),
            ..
        } if *n > SEARCH_TOTAL_CAP => Some(Estimate::Pair {
            drive: drive.clone(),
            households: *n,
        }),
        Start::Scan(_) => Some(Estimate::Every),
        _ => None,
    };
    let walk = match estimate {
        Some(_) => page_end + 1,
        None => SEARCH_TOTAL_CAP.max(page_end) + 1,
    };
    let cap = Some(walk - 1);
    let (matches, binds) = match &start {
        // Matches newest first in the drive gram's key order: no sort, and
        // the walk stops at `walk` matches.
        Start::Walk { drive, others, .. } => {
            let probes: String = others
                .iter()
                .map(|_| format!(" AND {}", holds_pair("g.created_at", "g.family_id")))
                .collect();
            (
                format!(
                    "SELECT f.id, f.created_at FROM family_grams g JOIN families f ON f.id = g.family_id
                     WHERE g.gram = ?{probes} AND {like}
                     ORDER BY g.created_at DESC, g.family_id DESC LIMIT {walk}"
                ),
                with(with(vec![drive.clone()], others), &like_binds),
            )
        }
        Start::Gather(c) => gathered(std::slice::from_ref(&range(*c)), &like, &like_binds, walk),
        Start::Number(ranges) => gathered(ranges, &like, &like_binds, walk),
        // The page walks every household newest first, and the tally every
        // household as far as the page and one more match: holders are
        // common, so either stops soon (the grams add nothing to `LIKE` for
        // one character); past that the total is estimated.
        Start::Scan(_) => {
            return FamilyListSql {
                list: format!(
                    "{counts} FROM families f WHERE {like}
                     ORDER BY f.created_at DESC, f.id DESC LIMIT ? OFFSET ?"
                ),
                list_binds: with(select_binds, &like_binds),
                count: Some((
                    format!(
                        "SELECT COUNT(*) OVER () AS total_rows,
                            FIRST_VALUE(m.created_at) OVER (ORDER BY m.created_at, m.id) AS walked_to,
                            FIRST_VALUE(m.id) OVER (ORDER BY m.created_at, m.id) AS walked_to_id
                         FROM (SELECT f.id, f.created_at FROM families f WHERE {like}
                               ORDER BY f.created_at DESC, f.id DESC LIMIT {walk}) m
                         LIMIT 1"
                    ),
                    like_binds,
                )),
                windowed: false,
                cap,
                estimate,
                walked_in_rows: false,
                tally: true,
                assignments: false,
            };
        }
    };
    // On SQLite the walk's extent past the cap ([`WALKED`]) in the same
    // statement: two ranges of the grams' key, from the oldest match (`o`).
    let (walked, walked_binds) = match (&estimate, dialect) {
        (Some(Estimate::Pair { drive, .. }), Dialect::Sqlite) => (
            ",
                (SELECT COUNT(*) FROM family_grams x
                  WHERE x.gram = ? AND x.created_at > (SELECT o.created_at FROM o))
                + (SELECT COUNT(*) FROM family_grams x
                  WHERE x.gram = ? AND x.created_at = (SELECT o.created_at FROM o)
                    AND x.family_id >= (SELECT o.id FROM o)) AS walked",
            vec![drive.clone(), drive.clone()],
        ),
        _ => ("", Vec::new()),
    };
    FamilyListSql {
        list: paged(&matches, walked),
        list_binds: paged_binds(select_binds, &binds, &walked_binds),
        count: Some((format!("SELECT COUNT(*) FROM ({matches}) m"), binds)),
        windowed: true,
        cap,
        estimate,
        walked_in_rows: !walked.is_empty(),
        tally: false,
        assignments: false,
    }
}

/// The matches among the households holding a gram in one of `ranges`
/// (inclusive), gathered and sorted newest first, at most `walk`; and the
/// binds (the ranges', then `LIKE`'s).
fn gathered(ranges: &[[String; 2]], like: &str, like_binds: &[String], walk: i64) -> (String, Vec<String>) {
    let held = vec!["(g.gram >= ? AND g.gram <= ?)"; ranges.len()].join(" OR ");
    let binds = ranges.iter().flatten().chain(like_binds).cloned().collect();
    (
        format!(
            "SELECT f.id, f.created_at
             FROM (SELECT DISTINCT g.family_id AS id FROM family_grams g WHERE {held}) cand
             JOIN families f ON f.id = cand.id
             WHERE {like}
             ORDER BY f.created_at DESC, f.id DESC LIMIT {walk}"
        ),
        binds,
    )
}

/// What a search's total past its walk is estimated over ([`estimate`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Estimate {
    /// The households holding the pair walked, `households` of them ([`WALKED`]).
    Pair { drive: String, households: i64 },
    /// Every household, walked newest first (a common character, [`SCANNED`]).
    Every,
}

/// As [`WALKED`], for a walk over every household: two ranges of
/// `families_created_id`. Binds: the match's creation time, the same time,
/// its id.
pub const SCANNED: &str = "SELECT (SELECT COUNT(*) FROM families WHERE created_at > ?)
    + (SELECT COUNT(*) FROM families WHERE created_at = ? AND id >= ?)";

/// How many households holding a pair a search walked to reach its last match
/// (the oldest): those created after it, and those created at the same
/// instant with an id from its on (households created in one batch share an
/// instant: 325 at a time in `carelog bench seed`). Two ranges of the grams'
/// key, the rows the walk read. Binds: the pair, the match's creation time,
/// the pair, the same time, the match's id.
pub const WALKED: &str = "SELECT (SELECT COUNT(*) FROM family_grams WHERE gram = ? AND created_at > ?)
    + (SELECT COUNT(*) FROM family_grams WHERE gram = ? AND created_at = ? AND family_id >= ?)";

/// How many households the read model holds: the projector's counter.
async fn family_total(conn: &mut AnyConnection) -> Result<i64, sqlx::Error> {
    Ok(
        sqlx::query_scalar::<_, i64>("SELECT families FROM family_totals WHERE id = 1")
            .fetch_optional(&mut *conn)
            .await?
            .unwrap_or(0),
    )
}

/// The total of a search whose walk found `found` matches (more than the
/// page) among the first `walked` households holding its drive pair (or of
/// all, for a common character), of `households` holding it: the share of
/// matches the walk saw, applied to every household holding the pair (rounded
/// to the nearest). At least the matches found, at most the households
/// holding the pair. Exact when every household holding the pair matches (a
/// name, which is most searches).
pub fn estimate(found: i64, walked: i64, households: i64) -> i64 {
    if walked <= 0 {
        return found;
    }
    let share = (found as f64 / walked as f64).min(1.0);
    ((share * households as f64).round() as i64).clamp(found, households.max(found))
}

fn age(birth: &str, today: NaiveDate) -> i32 {
    NaiveDate::parse_from_str(birth, "%Y-%m-%d")
        .map(|b| age_on(b, today))
        .unwrap_or(0)
}

impl ReadStore {
    /// The families read model (households, with their patients).
    pub fn families(&self) -> Families<'_> {
        Families(self)
    }

    /// The patients read model.
    pub fn patients(&self) -> Patients<'_> {
        Patients(self)
    }
}

/// Queries of the families read model.
#[derive(Clone, Copy)]
pub struct Families<'a>(&'a ReadStore);

impl Families<'_> {
    /// The family list. `recorder` limits it to that recorder's families, and
    /// then everything counted or searched in a family is limited to the
    /// patients assigned to them. Newest first.
    ///
    /// The SQL carries only the conditions asked for (see [`family_list_sql`]),
    /// so each shape has a plan that uses an index; the admin's unfiltered
    /// total is the counter the projector keeps (`family_totals`), not a scan.
    pub async fn list(
        self,
        recorder: Option<UserId>,
        search: Option<&str>,
        today: NaiveDate,
        page: PageParams,
    ) -> Result<Page<FamilyListItem>, sqlx::Error> {
        // One connection for the search's counts, the page and its total.
        let mut conn = self.0.pool().acquire().await?;
        let start = match (recorder, search.and_then(Candidates::of)) {
            (None, Some(candidates)) => Some(self.start(&mut conn, search, candidates).await?),
            _ => None,
        };
        self.list_on(&mut conn, recorder, search, start.as_ref(), today, page)
            .await
    }

    /// [`Families::list`], an admin's search starting at `start` (any start
    /// gives the same page, and the same total up to the cap; past it an
    /// estimate, which depends on the pair walked; the counts pick the
    /// cheapest).
    pub async fn list_from(
        self,
        recorder: Option<UserId>,
        search: Option<&str>,
        start: Option<&Start>,
        today: NaiveDate,
        page: PageParams,
    ) -> Result<Page<FamilyListItem>, sqlx::Error> {
        let mut conn = self.0.pool().acquire().await?;
        self.list_on(&mut conn, recorder, search, start, today, page).await
    }

    async fn list_on(
        self,
        conn: &mut sqlx::AnyConnection,
        recorder: Option<UserId>,
        search: Option<&str>,
        start: Option<&Start>,
        today: NaiveDate,
        page: PageParams,
    ) -> Result<Page<FamilyListItem>, sqlx::Error> {
        let q = family_list_sql(Dialect::of(conn), recorder, search, start, today, page);
        if q.assignments {
            return assigned_page(conn, &q, page).await;
        }
        let (today, recorder) = (today.to_string(), recorder.map(|r| r.to_string()));
        let mut list = sqlx::query(&q.list);
        for b in &q.list_binds {
            list = list.bind(b.clone());
        }
        let rows = list
            .bind(page.limit())
            .bind(page.offset())
            .fetch_all(&mut *conn)
            .await?;
        // The matches counted, and where a walk that counted them ended (and,
        // with `walked_in_rows`, how many households holding its pair it
        // passed).
        let walk_end = |r: &AnyRow| -> Result<(String, String, Option<i64>), sqlx::Error> {
            let walked = if q.walked_in_rows { Some(r.int("walked")?) } else { None };
            Ok((r.text("walked_to")?, r.text("walked_to_id")?, walked))
        };
        type Ended = Option<(String, String, Option<i64>)>;
        let (counted, ended): (i64, Ended) = match (&q.count, rows.first()) {
            (None, Some(first)) => (first.int("family_total")?, None),
            (None, None) => (family_total(conn).await?, None),
            (Some(_), Some(first)) if q.windowed => (first.int("total_rows")?, Some(walk_end(first)?)),
            (Some(_), None) if q.windowed && page.offset() == 0 => (0, None),
            (Some((count, binds)), _) if q.tally => {
                let tally = binds
                    .iter()
                    .fold(sqlx::query(count), |c, b| c.bind(b.clone()))
                    .fetch_optional(&mut *conn)
                    .await?;
                match tally {
                    Some(t) => (t.int("total_rows")?, Some(walk_end(&t)?)),
                    None => (0, None),
                }
            }
            (Some((count, binds)), _) => {
                let mut c = sqlx::query_scalar(count);
                for b in binds {
                    c = c.bind(b.clone());
                }
                (c.fetch_one(&mut *conn).await?, None)
            }
        };
        // Past the cap the count stopped: the total is a lower bound, or
        // estimated from the share of the households walked that matched.
        let (total, total_exact) = match (q.cap, &q.estimate, ended) {
            (Some(cap), Some(over), Some((at, id, in_rows))) if counted > cap => {
                let (walked, of) = match (over, in_rows) {
                    (Estimate::Pair { households, .. }, Some(walked)) => (walked, *households),
                    (Estimate::Pair { drive, households }, None) => {
                        let walked: i64 = sqlx::query_scalar(WALKED)
                            .bind(drive.as_str())
                            .bind(&at)
                            .bind(drive.as_str())
                            .bind(&at)
                            .bind(id)
                            .fetch_one(&mut *conn)
                            .await?;
                        (walked, *households)
                    }
                    (Estimate::Every, _) => {
                        let walked: i64 = sqlx::query_scalar(SCANNED)
                            .bind(&at)
                            .bind(&at)
                            .bind(id)
                            .fetch_one(&mut *conn)
                            .await?;
                        (walked, family_total(conn).await?)
                    }
                };
                (estimate(counted, walked, of), false)
            }
            (Some(cap), _, _) if counted > cap => (cap, false),
            _ => (counted, true),
        };
        let items = rows
            .iter()
            .map(|r| {
                Ok(FamilyListItem {
                    id: r.id("id")?,
                    family_name: r.text("family_name")?,
                    primary_address: r.text("primary_address")?,
                    contact_phone: r.text("contact_phone")?,
                    patient_count: r.int("patient_count")?,
                    active_subscriptions: active_windows(
                        r.opt_text("subscription_windows")?.as_deref().unwrap_or_default(),
                        &today,
                        recorder.as_deref(),
                    ),
                })
            })
            .collect::<Result<_, sqlx::Error>>()?;
        Ok(Page {
            items,
            total,
            total_exact,
            page: page.page,
            limit: page.limit,
        })
    }

    /// Where an admin's search for `candidates` starts: how many households
    /// hold each of its pairs, or the grams starting with its character, read
    /// from the projector's counts (`family_gram_counts`, by key).
    async fn start(
        self,
        conn: &mut sqlx::AnyConnection,
        search: Option<&str>,
        candidates: Candidates,
    ) -> Result<Start, sqlx::Error> {
        let dialect = Dialect::of(conn);
        let households = match &candidates {
            Candidates::Pairs(pairs) => {
                let marks = vec!["?"; pairs.len()].join(", ");
                let sql = format!("SELECT gram, households FROM family_gram_counts WHERE gram IN ({marks})");
                let rows = pairs
                    .iter()
                    .fold(sqlx::query(&sql), |q, p| q.bind(p.as_str()))
                    .fetch_all(&mut *conn)
                    .await?;
                let mut counted = HashMap::with_capacity(rows.len());
                for r in &rows {
                    counted.insert(counted_as(&r.text("gram")?, dialect).to_string(), r.int("households")?);
                }
                pairs
                    .iter()
                    .map(|p| counted.get(counted_as(p, dialect)).copied().unwrap_or(0))
                    .collect()
            }
            Candidates::Starting(c) => vec![held_in(conn, std::slice::from_ref(&range(*c))).await?],
        };
        let mut numbers = match &candidates {
            Candidates::Pairs(_) => search.map(numbers::ranges).unwrap_or_default(),
            Candidates::Starting(_) => Vec::new(),
        };
        // One count per run: the longest few (the rarest, as a rule), so a
        // search of many short runs costs no more statements than that.
        numbers.sort_by_key(|ranges| std::cmp::Reverse(ranges.first().map_or(0, |[from, _]| from.len())));
        numbers.truncate(NUMBER_RUNS_COUNTED);
        let start = candidates.start(&households);
        let mut counted = Vec::with_capacity(numbers.len());
        for ranges in numbers {
            let n = held_in(conn, &ranges).await?;
            counted.push((ranges, n));
        }
        Ok(or_number(start, counted))
    }

    /// Whether `recorder` may see `family` (see [`recorder_family`]).
    pub async fn sees(self, recorder: UserId, family: FamilyId, today: NaiveDate) -> Result<bool, sqlx::Error> {
        let sql = format!(
            "SELECT COUNT(*) FROM families f WHERE f.id = ? AND {}",
            recorder_family()
        );
        let n: i64 = bind_assigned!(
            sqlx::query_scalar(&sql).bind(family.to_string()),
            assigned_binds(recorder, today)
        )
        .fetch_one(self.0.pool())
        .await?;
        Ok(n > 0)
    }

    /// The home coordinates of `families` that have them (both set), by family id.
    pub async fn homes(self, families: &[FamilyId]) -> Result<Vec<(FamilyId, f64, f64)>, sqlx::Error> {
        if families.is_empty() {
            return Ok(Vec::new());
        }
        let marks = vec!["?"; families.len()].join(", ");
        let sql = format!(
            "SELECT id, home_lat, home_lng FROM families
             WHERE id IN ({marks}) AND home_lat IS NOT NULL AND home_lng IS NOT NULL"
        );
        let rows = families
            .iter()
            .fold(sqlx::query(&sql), |q, f| q.bind(f.to_string()))
            .fetch_all(self.0.pool())
            .await?;
        rows.iter()
            .map(|r| {
                let lat = r.opt_f64("home_lat")?.unwrap_or_default();
                let lng = r.opt_f64("home_lng")?.unwrap_or_default();
                Ok((r.id("id")?, lat, lng))
            })
            .collect()
    }

    /// A family with its patients. `recorder` limits the patients to those
    /// assigned to that recorder today: the others of the household are left
    /// out entirely (no name, subscription or last record).
    pub async fn get(
        self,
        id: FamilyId,
        today: NaiveDate,
        recorder: Option<UserId>,
    ) -> Result<Option<FamilyDetail>, sqlx::Error> {
        // One connection for the two statements: one hand-out and one return
        // to the pool (which pings it) instead of two.
        let mut conn = self.0.pool().acquire().await?;
        // The household and its patients in one statement (a row per patient,
        // or one without a patient), each patient's last record too, one
        // keyed read of `health_records_patient` per patient (see
        // [`LATEST_RECORD_ID`]): one round trip to the read store instead of
        // one for the household and one per patient.
        let (mine, mut binds) = match recorder {
            Some(recorder) => {
                let (r, from, to) = assigned_binds(recorder, today);
                (format!(" AND {}", assigned_sql("p.id")), vec![r, from, to])
            }
            None => (String::new(), Vec::new()),
        };
        binds.push(id.to_string());
        let sql = format!(
            "SELECT f.id AS family_id, f.family_name, f.primary_address, f.secondary_address, f.contact_phone,
                f.emergency_contact, f.emergency_phone, f.home_lat, f.home_lng, f.created_at, f.updated_at,
                f.version, p.id, p.name, p.gender, p.birth_date, p.relationship_to_head,
                p.created_at AS registered_at,
                hr.id AS last_id, hr.visit_date AS last_date, hr.visit_time AS last_time,
                hr.notes AS last_notes, hr.abnormal AS last_abnormal
             FROM families f
             LEFT JOIN patients p ON p.family_id = f.id{mine}
             LEFT JOIN health_records hr ON hr.id = ({LATEST_RECORD_ID})
             WHERE f.id = ?"
        );
        let rows = binds
            .into_iter()
            .fold(sqlx::query(&sql), |q, b| q.bind(b))
            .fetch_all(&mut *conn)
            .await?;
        let Some(f) = rows.first() else {
            return Ok(None);
        };
        // A household without a patient (of this recorder's) is one row
        // without one. The patients in the order registered, sorted here: an
        // `ORDER BY` of the join made MariaDB copy its rows, text and all,
        // into a temporary table first.
        let mut patient_rows = Vec::with_capacity(rows.len());
        for r in &rows {
            if let Some(id) = r.opt_text("id")? {
                patient_rows.push((r.text("registered_at")?, id, r));
            }
        }
        patient_rows.sort_unstable_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        let subs = self.0.subscriptions().of_family(&mut conn, id).await?;
        drop(conn);
        let mut patients = Vec::with_capacity(patient_rows.len());
        for (_, _, r) in patient_rows {
            let pid: PatientId = r.id("id")?;
            let birth = r.text("birth_date")?;
            let last_record = match r.opt_text("last_id")? {
                None => None,
                Some(_) => Some(LastRecord {
                    id: r.id("last_id")?,
                    date: r.text("last_date")?,
                    time: r.text("last_time")?,
                    notes: r.opt_text("last_notes")?,
                    abnormal: r.int("last_abnormal")? != 0,
                }),
            };
            patients.push(FamilyPatient {
                current_subscription: current_subscription(subs.iter().filter(|s| s.patient_id == pid), today),
                last_record,
                id: pid,
                name: r.text("name")?,
                age: age(&birth, today),
                gender: r.status("gender")?,
                birth_date: birth,
                relationship_to_head: r.text("relationship_to_head")?,
            });
        }
        Ok(Some(FamilyDetail {
            id: f.id("family_id")?,
            family_name: f.text("family_name")?,
            primary_address: f.text("primary_address")?,
            secondary_address: f.opt_text("secondary_address")?,
            contact_phone: f.text("contact_phone")?,
            emergency_contact: f.opt_text("emergency_contact")?,
            emergency_phone: f.opt_text("emergency_phone")?,
            home_lat: f.opt_f64("home_lat")?,
            home_lng: f.opt_f64("home_lng")?,
            created_at: f.text("created_at")?,
            updated_at: f.text("updated_at")?,
            version: f.int("version")?,
            patients,
        }))
    }

    /// The household's primary address.
    pub async fn address(self, family: FamilyId) -> Result<Option<String>, sqlx::Error> {
        sqlx::query_scalar("SELECT primary_address FROM families WHERE id = ?")
            .bind(family.to_string())
            .fetch_optional(self.0.pool())
            .await
    }
}

/// Queries of the patients read model.
#[derive(Clone, Copy)]
pub struct Patients<'a>(&'a ReadStore);

impl Patients<'_> {
    /// A patient, with their current subscription as of `today`.
    pub async fn get(self, id: PatientId, today: NaiveDate) -> Result<Option<PatientView>, sqlx::Error> {
        let mut conn = self.0.pool().acquire().await?;
        let Some(r) = sqlx::query("SELECT * FROM patients WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&mut *conn)
            .await?
        else {
            return Ok(None);
        };
        let subs = self.0.subscriptions().of_patient(&mut conn, id).await?;
        drop(conn);
        let birth = r.text("birth_date")?;
        Ok(Some(PatientView {
            id: r.id("id")?,
            family_id: r.id("family_id")?,
            name: r.text("name")?,
            gender: r.status("gender")?,
            age: age(&birth, today),
            birth_date: birth,
            id_card: r.opt_text("id_card")?,
            phone: r.opt_text("phone")?,
            relationship_to_head: r.text("relationship_to_head")?,
            medical_history: r.json("medical_history")?,
            allergies: r.opt_text("allergies")?,
            current_medications: r.json("current_medications")?,
            service_preferences: r.json("service_preferences")?,
            current_subscription: current_subscription(subs.iter(), today),
            erased: r.opt_text("erased_at")?.is_some(),
            erased_at: r.opt_text("erased_at")?,
            created_at: r.text("created_at")?,
            updated_at: r.text("updated_at")?,
            version: r.int("version")?,
        }))
    }

    /// The family a patient belongs to.
    pub async fn family_of(self, patient: PatientId) -> Result<Option<FamilyId>, sqlx::Error> {
        let row = sqlx::query("SELECT family_id FROM patients WHERE id = ?")
            .bind(patient.to_string())
            .fetch_optional(self.0.pool())
            .await?;
        row.map(|r| r.id("family_id")).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments_group_by_household_newest_first_with_distinct_patients() {
        // (family, created at, patient): two subscriptions of patient p1, one of p2.
        let mut rows = vec![
            ("f1", "2026-01-01T00:00:00.000Z", "p1"),
            ("f2", "2026-02-01T00:00:00.000Z", "p3"),
            ("f1", "2026-01-01T00:00:00.000Z", "p2"),
            ("f3", "2026-02-01T00:00:00.000Z", "p4"),
            ("f1", "2026-01-01T00:00:00.000Z", "p1"),
        ];
        let groups = group_assignments(&mut rows);
        let shown: Vec<(&str, i64, i64)> = groups
            .iter()
            .map(|g| (g.family_id, g.patients, g.subscriptions))
            .collect();
        // Newest first; ties by id descending, as the list's SQL orders them.
        assert_eq!(shown, vec![("f3", 1, 1), ("f2", 1, 1), ("f1", 2, 3)]);
        assert!(group_assignments(&mut []).is_empty());
    }

    /// Whether a text with the grams `held` is a candidate for the search `q`.
    fn candidate(held: &BTreeSet<String>, q: &str) -> bool {
        match Candidates::of(q) {
            None => true,
            Some(Candidates::Pairs(pairs)) => pairs.iter().all(|g| held.contains(g)),
            Some(Candidates::Starting(c)) => held.iter().any(|g| g.starts_with(c)),
        }
    }

    #[test]
    fn a_text_is_a_candidate_for_every_part_of_it() {
        let text = "上海市Smith路1号";
        let held = grams(text);
        let chars: Vec<char> = text.chars().collect();
        // Every substring, of every length, in any case.
        for i in 0..chars.len() {
            for j in i + 1..=chars.len() {
                let part: String = chars[i..j].iter().collect();
                assert!(candidate(&held, &part), "{part}");
                assert!(candidate(&held, &part.to_uppercase()), "{part}");
            }
        }
        for q in ["北京", "北", "smiths", "号1"] {
            assert!(!candidate(&held, q), "{q}");
        }
    }

    #[test]
    fn a_text_keeps_its_pairs_and_its_last_character() {
        let held: Vec<String> = grams("王小明").into_iter().collect();
        assert_eq!(held, vec!["小明", "明", "王小"]);
        assert_eq!(grams("A").into_iter().collect::<Vec<_>>(), vec!["a"]);
        assert!(grams("").is_empty());
    }

    #[test]
    fn a_search_asks_for_its_pairs_or_a_gram_starting_with_its_one_character() {
        assert_eq!(Candidates::of("王"), Some(Candidates::Starting('王')));
        assert_eq!(Candidates::of("A"), Some(Candidates::Starting('a')));
        assert_eq!(
            Candidates::of("王小明"),
            Some(Candidates::Pairs(vec!["王小".into(), "小明".into()]))
        );
        assert_eq!(
            Candidates::of("AbA"),
            Some(Candidates::Pairs(vec!["ab".into(), "ba".into()]))
        );
        assert_eq!(Candidates::of(""), None);
    }

    #[test]
    fn a_search_starts_from_its_rarest_pair_or_by_how_common_its_character_is() {
        let pairs = || Candidates::Pairs(vec!["ab".into(), "bc".into(), "cd".into()]);
        assert_eq!(
            pairs().start(&[10, 3, 7]),
            Start::Walk {
                drive: "bc".into(),
                others: vec!["cd".into(), "ab".into()],
                households: Some(3),
            }
        );
        // Tied: the first.
        assert_eq!(
            pairs().start(&[50, 50, 50]),
            Start::Walk {
                drive: "ab".into(),
                others: vec!["bc".into(), "cd".into()],
                households: Some(50),
            }
        );
        // A pair no household holds: the walk finds none at once.
        assert_eq!(
            pairs().start(&[5, 0, 9]),
            Start::Walk {
                drive: "bc".into(),
                others: vec!["ab".into(), "cd".into()],
                households: Some(0),
            }
        );
        // Not counted (a start by hand): its total is counted to the cap.
        assert_eq!(
            pairs().start(&[]),
            Start::Walk {
                drive: "ab".into(),
                others: vec!["bc".into(), "cd".into()],
                households: None,
            }
        );
        assert_eq!(Candidates::Starting('王').start(&[PROBE_ROWS]), Start::Scan('王'));
        assert_eq!(Candidates::Starting('王').start(&[PROBE_ROWS - 1]), Start::Gather('王'));
    }

    #[test]
    fn a_search_starts_from_its_digits_tokens_when_fewer_hold_them_than_its_rarest_pair() {
        let pairs = || Candidates::Pairs(vec!["路1".into(), "12".into(), "2号".into()]);
        let twelve = numbers::ranges("路12号").remove(0);
        // Held by 1 household, against 29,551 for the rarest pair.
        assert_eq!(
            or_number(pairs().start(&[111_111, 29_551, 50_000]), vec![(twelve.clone(), 1)]),
            Start::Number(twelve.clone())
        );
        // The rarest run of several.
        let (a, b) = (
            vec![["a".to_string(), "a".to_string()]],
            vec![["b".to_string(), "b".to_string()]],
        );
        assert_eq!(
            or_number(pairs().start(&[9_000, 9_000, 9_000]), vec![(a, 700), (b.clone(), 30)]),
            Start::Number(b)
        );
        // A pair as rare, or tokens too common to gather: the walk.
        let walk = pairs().start(&[40, 29_551, 50_000]);
        assert_eq!(or_number(walk.clone(), vec![(twelve.clone(), 40)]), walk);
        let walk = pairs().start(&[111_111, 29_551, 50_000]);
        assert_eq!(or_number(walk.clone(), vec![(twelve.clone(), PROBE_ROWS + 1)]), walk);
        // No digits to use.
        assert_eq!(or_number(walk.clone(), Vec::new()), walk);
        // Not counted: the tokens, when few hold them.
        assert_eq!(
            or_number(pairs().start(&[]), vec![(twelve.clone(), 3)]),
            Start::Number(twelve)
        );
    }

    #[test]
    fn a_text_holds_its_pairs_and_its_number_tokens() {
        let held = grams("幸福路12号");
        assert!(
            held.contains("\u{E000}12") && held.contains("12") && held.contains("号"),
            "{held:?}"
        );
    }

    #[test]
    fn a_households_windows_count_those_started_and_not_ended_today() {
        let r1 = "01a2518c-2509-710d-b8f7-cf9da2b1652c";
        let r2 = "01a2518c-24ec-7452-9ed4-dff8c558578d";
        let windows = [
            format!("2026-01-012026-12-31{r1}"),
            format!("2026-06-012026-06-30{r2}"),
            format!("2026-06-152027-06-14{r2}"),
            format!("2026-07-012026-07-31{r1}"),
        ]
        .concat();
        assert_eq!(windows.len(), 4 * WINDOW);
        assert_eq!(active_windows(&windows, "2026-06-15", None), 3);
        assert_eq!(active_windows(&windows, "2026-06-15", Some(r1)), 1);
        assert_eq!(active_windows(&windows, "2026-06-15", Some(r2)), 2);
        // Both ends are days of the window.
        assert_eq!(active_windows(&windows, "2026-06-30", Some(r2)), 2);
        assert_eq!(active_windows(&windows, "2026-07-01", None), 3);
        assert_eq!(active_windows(&windows, "2025-12-31", None), 0);
        assert_eq!(active_windows(&windows, "2027-06-15", None), 0);
        assert_eq!(active_windows("", "2026-06-15", None), 0);
    }

    #[test]
    fn a_common_pairs_total_is_estimated_from_the_share_of_its_walk_that_matched() {
        // Every household walked matched (a name): every holder counted.
        assert_eq!(estimate(21, 21, 16_667), 16_667);
        // One in three matched.
        assert_eq!(estimate(21, 63, 3_000), 1_000);
        // Never fewer than found, nor more than hold the pair.
        assert_eq!(estimate(21, 10_000, 300), 21);
        assert_eq!(estimate(21, 20, 300), 300);
        assert_eq!(estimate(21, 0, 300), 21);
    }
}
