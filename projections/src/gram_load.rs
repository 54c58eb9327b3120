//! The search grams of many households, gathered in memory and put in the
//! order of `family_grams`' key (gram, created_at, family_id) before they are
//! written (pure logic, no I/O).
//!
//! A rebuild writes the grams of every household at its end. Written a page of
//! households at a time, each page's rows land all over the table's key (each
//! gram of a page has its own place in it), so every page touches most of the
//! tree again. Written in the key's order, the table is appended to. At
//! 1,000,000 patients (12.4 million rows, SQLite), in long statements
//! ([`crate::bulk::Rows::in_long_statements`]), the grams took 13.1 s
//! against 25.2 s a page at a time (docs/performance.md, "The search grams
//! in the key's order").
//!
//! A row is a key of 8 bytes while it is sorted: the gram's rank among the
//! distinct grams gathered in the high half, the household's rank in
//! (created_at, id) order in the low half.
//!
//! While gathered, a gram is a number: a pair [`pack`]ed, or a number token
//! ([`crate::numbers`]) by its place among the load's tokens ([`GramLoad::token`]).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Set in a gathered gram that is a number token: the rest is its place in
/// [`GramLoad`]'s tokens. Never set by [`pack`] (43 bits at most).
const TOKEN: u64 = 1 << 63;

/// A gram as a number that sorts as the gram's text does (both stores compare
/// grams by code point, which is UTF-8's byte order): the first character
/// shifted past the second, the second plus one (zero when there is none, so
/// a single character sorts before every pair it starts).
pub(crate) fn pack(first: char, second: Option<char>) -> u64 {
    (u64::from(first) << 22) | second.map_or(0, |c| u64::from(c) + 1)
}

/// Drops from a household's sorted, distinct [`pack`]ed grams each character
/// followed by a space when the character alone is there too: MySQL compares
/// text ignoring trailing spaces, so "e " and "e" are one key there (the row
/// "e" serves a search for either), and a load holding both would make its
/// insert-or-ignore check a duplicate, taking a lock.
/// `keys` must be sorted.
pub(crate) fn drop_padded_twins(keys: &mut Vec<u64>) {
    const SECOND: u64 = (1 << 22) - 1;
    let space = u64::from(' ') + 1;
    let twins: Vec<u64> = keys
        .iter()
        .copied()
        .filter(|k| k & TOKEN == 0 && k & SECOND == space && keys.binary_search(&(k & !SECOND)).is_ok())
        .collect();
    if !twins.is_empty() {
        keys.retain(|k| !twins.contains(k));
    }
}

/// The text of a [`pack`]ed gram.
fn unpack(key: u64) -> String {
    let first = char::from_u32((key >> 22) as u32).unwrap_or(char::REPLACEMENT_CHARACTER);
    let mut out = String::from(first);
    let second = key & ((1 << 22) - 1);
    if second > 0 {
        out.push(char::from_u32((second - 1) as u32).unwrap_or(char::REPLACEMENT_CHARACTER));
    }
    out
}

/// Households and their grams, in the order they were added.
#[derive(Default)]
pub(crate) struct GramLoad {
    /// (created_at, id) of each household.
    households: Vec<(Arc<str>, Arc<str>)>,
    /// The [`pack`]ed grams of every household, one after another.
    grams: Vec<u64>,
    /// Where each household's grams end in `grams`.
    ends: Vec<usize>,
    /// The number tokens gathered, each once, with their gathered grams.
    token_at: HashMap<String, u64>,
}

impl GramLoad {
    /// The gathered gram of a number token, to [`GramLoad::add`] with a
    /// household's pairs.
    pub(crate) fn token(&mut self, token: String) -> u64 {
        let next = TOKEN | self.token_at.len() as u64;
        *self.token_at.entry(token).or_insert(next)
    }

    /// Adds a household and its grams ([`pack`]ed).
    pub(crate) fn add(&mut self, created_at: &str, id: &str, grams: impl IntoIterator<Item = u64>) {
        self.households.push((created_at.into(), id.into()));
        self.grams.extend(grams);
        self.ends.push(self.grams.len());
    }

    /// Rows gathered.
    pub(crate) fn len(&self) -> usize {
        self.grams.len()
    }

    /// Whether one more household could overflow a key's half.
    pub(crate) fn is_full(&self) -> bool {
        self.households.len() >= u32::MAX as usize
    }

    /// The rows, (gram, created_at, id), in the key's order, once each.
    pub(crate) fn into_key_order(self) -> KeyOrder {
        let GramLoad {
            households,
            mut grams,
            ends,
            token_at,
        } = self;
        // The tokens by their places.
        let mut tokens = vec![String::new(); token_at.len()];
        for (token, at) in token_at {
            tokens[(at & !TOKEN) as usize] = token;
        }
        // The households' ranks in (created_at, id) order.
        let mut order: Vec<u32> = (0..households.len() as u32).collect();
        order.sort_unstable_by(|a, b| households[*a as usize].cmp(&households[*b as usize]));
        let mut rank = vec![0_u32; households.len()];
        for (r, h) in order.iter().enumerate() {
            rank[*h as usize] = r as u32;
        }
        let sorted: Vec<(Arc<str>, Arc<str>)> = order.iter().map(|h| households[*h as usize].clone()).collect();
        drop(households);
        // The distinct grams: a few hundred thousand at most (pairs of
        // characters that occur in names and addresses, and numbers).
        let mut distinct: Vec<u64> = grams.iter().copied().collect::<HashSet<u64>>().into_iter().collect();
        distinct.sort_unstable();
        // Their texts, and each one's rank in the texts' order (pairs sort as
        // their texts do; tokens were numbered as they came).
        let mut texts: Vec<String> = distinct
            .iter()
            .map(|&g| match g & TOKEN {
                0 => unpack(g),
                _ => std::mem::take(&mut tokens[(g & !TOKEN) as usize]),
            })
            .collect();
        // A pair and a token may have one text (a text holding the marker
        // before a digit): they take one rank, so one row and one count.
        let mut by_text: Vec<u32> = (0..texts.len() as u32).collect();
        by_text.sort_unstable_by(|a, b| texts[*a as usize].cmp(&texts[*b as usize]));
        let mut text_rank = vec![0_u64; texts.len()];
        let mut unique: Vec<u32> = Vec::with_capacity(by_text.len());
        for d in by_text {
            if unique.last().is_none_or(|u| texts[*u as usize] != texts[d as usize]) {
                unique.push(d);
            }
            text_rank[d as usize] = unique.len() as u64 - 1;
        }
        // Each row's key, in place of its gram.
        let mut start = 0;
        for (h, end) in ends.iter().enumerate() {
            for g in &mut grams[start..*end] {
                let gram_rank = text_rank[distinct.partition_point(|d| d < g)];
                *g = (gram_rank << 32) | u64::from(rank[h]);
            }
            start = *end;
        }
        grams.sort_unstable();
        grams.dedup();
        let texts = unique.iter().map(|d| std::mem::take(&mut texts[*d as usize])).collect();
        KeyOrder {
            texts,
            households: sorted,
            keys: grams,
        }
    }
}

/// The rows of a [`GramLoad`] in the key's order.
pub(crate) struct KeyOrder {
    texts: Vec<String>,
    households: Vec<(Arc<str>, Arc<str>)>,
    keys: Vec<u64>,
}

impl KeyOrder {
    /// How many rows.
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    /// The rows, (gram, created_at, id), borrowed: 12 million rows at
    /// 1,000,000 patients, so no reference count is touched per row (a
    /// household's text lives far from its neighbours': two cache misses a
    /// row, 12 % of the grams' time, when each row cloned its `Arc`s).
    pub(crate) fn rows(&self) -> impl Iterator<Item = [&str; 3]> + '_ {
        self.rows_in(0..self.keys.len())
    }

    /// Each gram with how many rows (households) hold it, in the key's order.
    pub(crate) fn households_by_gram(&self) -> impl Iterator<Item = (&str, i64)> + '_ {
        self.keys
            .chunk_by(|a, b| a >> 32 == b >> 32)
            .map(|run| (self.texts[(run[0] >> 32) as usize].as_str(), run.len() as i64))
    }

    /// The rows at positions `range` of the key's order, as [`KeyOrder::rows`].
    pub(crate) fn rows_in(&self, range: std::ops::Range<usize>) -> impl Iterator<Item = [&str; 3]> + '_ {
        self.keys[range].iter().map(|key| {
            let (created_at, id) = &self.households[(key & u64::from(u32::MAX)) as usize];
            [self.texts[(key >> 32) as usize].as_str(), &**created_at, &**id]
        })
    }
}

impl KeyOrder {
    /// Where to cut the rows in two halves written side by side: at the
    /// middle, moved on to the first row whose gram starts with another
    /// character than the row before's (`len()` if none). MySQL compares
    /// grams ignoring trailing spaces, so "e" and "e " are one key there: both
    /// start with the same character, so they stay in one half, and two
    /// writers never insert the same key.
    pub(crate) fn halfway(&self) -> usize {
        let first = |key: &u64| self.texts[(key >> 32) as usize].chars().next();
        let mut at = self.keys.len() / 2;
        while at > 0 && at < self.keys.len() && first(&self.keys[at]) == first(&self.keys[at - 1]) {
            at += 1;
        }
        at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packed(text: &str) -> u64 {
        let mut chars = text.chars();
        pack(chars.next().unwrap(), chars.next())
    }

    #[test]
    fn packed_grams_sort_as_their_text_and_come_back() {
        let mut texts = vec![
            "a",
            "ab",
            "a\u{0}",
            "b",
            "王",
            "王建",
            "建国",
            "z9",
            "é",
            "\u{10FFFF}\u{10FFFF}",
            "ſ",
        ];
        let mut keys: Vec<u64> = texts.iter().map(|t| packed(t)).collect();
        keys.sort_unstable();
        texts.sort_unstable();
        let back: Vec<String> = keys.into_iter().map(unpack).collect();
        assert_eq!(back, texts);
    }

    #[test]
    fn rows_come_in_key_order_once_each() {
        let mut load = GramLoad::default();
        load.add("2026-01-02", "f2", ["王建", "建国", "国"].map(packed));
        load.add("2026-01-01", "f9", ["王建", "a"].map(packed));
        load.add("2026-01-02", "f1", ["建国", "建国"].map(packed));
        assert_eq!(load.len(), 7);
        let order = load.into_key_order();
        assert_eq!(order.len(), 6);
        let rows: Vec<(String, String, String)> = order
            .rows()
            .map(|[g, c, i]| (g.to_string(), c.to_string(), i.to_string()))
            .collect();
        let mut expected: Vec<(String, String, String)> = [
            ("王建", "2026-01-02", "f2"),
            ("建国", "2026-01-02", "f2"),
            ("国", "2026-01-02", "f2"),
            ("王建", "2026-01-01", "f9"),
            ("a", "2026-01-01", "f9"),
            ("建国", "2026-01-02", "f1"),
        ]
        .iter()
        .map(|(g, c, i)| (g.to_string(), c.to_string(), i.to_string()))
        .collect();
        expected.sort();
        assert_eq!(rows, expected);
    }

    #[test]
    fn a_padded_twin_is_dropped_only_beside_its_character_alone() {
        let mut keys: Vec<u64> = ["e", "e ", "ez", "a ", "  ", " ", "王 ", "王"].map(packed).to_vec();
        keys.sort_unstable();
        drop_padded_twins(&mut keys);
        let mut left: Vec<String> = keys.into_iter().map(unpack).collect();
        left.sort();
        assert_eq!(left, [" ", "a ", "e", "ez", "王"]);
    }

    #[test]
    fn the_halves_never_part_grams_of_one_first_character() {
        // MySQL's "e" and "e " are one key: they must land in one half.
        let mut load = GramLoad::default();
        load.add("2026-01-01", "f1", ["a", "ab", "e", "e "].map(packed));
        load.add("2026-01-02", "f2", ["e", "ez", "z"].map(packed));
        let order = load.into_key_order();
        let at = order.halfway();
        let firsts = |r: std::ops::Range<usize>| {
            order
                .rows_in(r)
                .map(|[g, _, _]| g.chars().next().unwrap())
                .collect::<std::collections::BTreeSet<char>>()
        };
        let (low, high) = (firsts(0..at), firsts(at..order.len()));
        assert!(low.is_disjoint(&high), "{low:?} {high:?}");
        assert!(!low.is_empty() && !high.is_empty(), "{low:?} {high:?}");
        assert_eq!(
            order.rows_in(0..at).count() + order.rows_in(at..order.len()).count(),
            order.len()
        );
        // Every row with one first character: nothing to cut.
        let mut one = GramLoad::default();
        one.add("2026-01-01", "f1", ["e", "e ", "ex"].map(packed));
        let one = one.into_key_order();
        assert_eq!(one.halfway(), one.len());
        assert_eq!(GramLoad::default().into_key_order().halfway(), 0);
    }

    #[test]
    fn number_tokens_come_in_their_texts_order_beside_the_pairs() {
        let mut load = GramLoad::default();
        let (b, a) = (load.token("\u{E001}456".into()), load.token("\u{E000}123456".into()));
        assert_eq!(load.token("\u{E001}456".into()), b);
        // The 34th token's place ends like a padded twin's key (a space plus
        // one): still no twin of the first.
        for n in 0..31 {
            load.token(format!("\u{E000}{n}0"));
        }
        let last = load.token("\u{E000}99".into());
        assert_eq!(last & ((1 << 22) - 1), u64::from(' ') + 1);
        let mut keys = vec![packed("家1"), b, a, packed("\u{10FFFF}\u{10FFFF}"), last];
        keys.sort_unstable();
        // A token is no padded twin, whatever its place.
        drop_padded_twins(&mut keys);
        assert_eq!(keys.len(), 5);
        keys.retain(|k| *k != last);
        load.add("2026-01-01", "f1", keys);
        load.add("2026-01-02", "f2", [b]);
        let order = load.into_key_order();
        let rows: Vec<(String, String)> = order.rows().map(|[g, _, i]| (g.to_string(), i.to_string())).collect();
        let mut expected: Vec<(String, String)> = [
            ("家1", "f1"),
            ("\u{E000}123456", "f1"),
            ("\u{E001}456", "f1"),
            ("\u{E001}456", "f2"),
            ("\u{10FFFF}\u{10FFFF}", "f1"),
        ]
        .iter()
        .map(|(g, i)| (g.to_string(), i.to_string()))
        .collect();
        let grams: Vec<&str> = rows.iter().map(|(g, _)| g.as_str()).collect();
        let mut sorted = grams.clone();
        sorted.sort();
        assert_eq!(grams, sorted, "rows in the grams' text order");
        let mut got = rows.clone();
        got.sort();
        expected.sort();
        assert_eq!(got, expected);
        let counts: Vec<(&str, i64)> = order.households_by_gram().collect();
        assert!(counts.contains(&("\u{E001}456", 2)), "{counts:?}");
    }

    #[test]
    fn a_pair_and_a_token_of_one_text_are_one_gram() {
        // "\u{E000}5" is the pair of a text holding the marker before a 5,
        // and the token of the run "5": one row, counted once.
        let mut load = GramLoad::default();
        let token = load.token("\u{E000}5".into());
        let mut keys = vec![packed("\u{E000}5"), token, packed("5")];
        keys.sort_unstable();
        load.add("2026-01-01", "f1", keys);
        let order = load.into_key_order();
        let rows: Vec<String> = order.rows().map(|[g, _, _]| g.to_string()).collect();
        assert_eq!(rows, ["5", "\u{E000}5"]);
        let counts: Vec<(&str, i64)> = order.households_by_gram().collect();
        assert_eq!(counts, [("5", 1), ("\u{E000}5", 1)]);
    }

    #[test]
    fn an_empty_load_has_no_rows() {
        assert_eq!(GramLoad::default().into_key_order().rows().count(), 0);
    }
}
