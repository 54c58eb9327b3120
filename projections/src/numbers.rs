//! Number tokens: the search grams of the digits in a household's texts (pure
//! logic, no I/O).
//!
//! Pairs of characters find a name fast, but not a number: there are a hundred
//! pairs of digits, each held by a large share of the households ("12" by
//! 29,551 of 500,000 in `carelog bench seed`'s addresses), so a search for a
//! house number ("幸福路12号") or a household number ("家123456"), which one
//! household matches, walked tens of thousands of households whose pairs all
//! matched (p99 over a second at 1,000,000 patients).
//!
//! So each maximal run of ASCII digits in a text also gives tokens, kept in
//! `family_grams` beside the pairs (and counted in `family_gram_counts`):
//! - the run from its first digit, marked [`RUN`];
//! - the run from each later digit that has at least [`INSIDE_MIN`] digits
//!   left, marked [`INSIDE`];
//!
//! each cut to its first [`TOKEN_DIGITS`] digits. A search's digits then read
//! one or two short ranges of the key ([`ranges`]) instead of a pair held by
//! tens of thousands: a text containing the search holds a token in one of
//! them. A token is longer than a pair (a marker and a digit at least), and
//! its marker is a private-use character, so it is told apart from a pair.
//! A text holding the marker itself before a digit gives a pair equal to a
//! token: every writer keeps them as one gram (one row, one count), and the
//! search checks every candidate with `LIKE` anyway.
//!
//! A household with a number of six digits holds four tokens (one from its
//! start, three inside), about a sixth more rows than its pairs alone.

/// Marks a token that starts a run of digits.
pub const RUN: char = '\u{E000}';
/// Marks a token that starts inside a run of digits.
pub const INSIDE: char = '\u{E001}';
/// Digits a token keeps at most (a longer run's tokens are cut).
pub const TOKEN_DIGITS: usize = 16;
/// Digits a token inside a run has at least: a search of fewer digits that
/// may start inside a run is served by the pairs (its matches are common).
pub const INSIDE_MIN: usize = 3;

/// The maximal runs of ASCII digits in `text`.
fn runs(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_ascii_digit()).filter(|r| !r.is_empty())
}

/// The number tokens of `text` (see the module), each once per run; a text
/// may repeat one across runs.
pub fn tokens(text: &str) -> impl Iterator<Item = String> + '_ {
    runs(text).flat_map(|run| {
        (0..run.len())
            .filter(move |&k| k == 0 || run.len() - k >= INSIDE_MIN)
            .map(move |k| {
                let mark = if k == 0 { RUN } else { INSIDE };
                let digits = &run[k..run.len().min(k + TOKEN_DIGITS)];
                std::iter::once(mark).chain(digits.chars()).collect()
            })
    })
}

/// For each run of digits in the search `q` that tokens can serve, the
/// ranges of `family_grams.gram` (inclusive bounds) of which every text
/// containing `q` holds a token in at least one. A run with a character
/// before it in `q` starts a run of the text; with one after it, ends it.
/// A run that may start inside a text's run needs [`INSIDE_MIN`] digits, or
/// it gives no ranges (and is left out).
///
/// Exact tokens are ranges of one value; a run that may go on past the
/// search's (no character after it, or cut to [`TOKEN_DIGITS`]) is a prefix:
/// from the token to the token followed by nines, which every longer token
/// with that start sorts before (both stores compare grams by code point;
/// MySQL's trailing-space padding sorts a shorter token first too).
pub fn ranges(q: &str) -> Vec<Vec<[String; 2]>> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(start) = q[at..].find(|c: char| c.is_ascii_digit()).map(|i| at + i) {
        let end = q[start..]
            .find(|c: char| !c.is_ascii_digit())
            .map_or(q.len(), |i| start + i);
        at = end;
        let run = &q[start..end];
        let starts_run = start > 0;
        let digits = &run[..run.len().min(TOKEN_DIGITS)];
        let ends_run = end < q.len() && run.len() <= TOKEN_DIGITS;
        let range = |mark: char| {
            let token: String = std::iter::once(mark).chain(digits.chars()).collect();
            let to = if ends_run {
                token.clone()
            } else {
                format!("{token}{}", "9".repeat(TOKEN_DIGITS))
            };
            [token, to]
        };
        if starts_run {
            out.push(vec![range(RUN)]);
        } else if digits.len() >= INSIDE_MIN {
            out.push(vec![range(RUN), range(INSIDE)]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(text: &str) -> Vec<String> {
        tokens(text).collect()
    }

    fn in_ranges(held: &[String], ranges: &[[String; 2]]) -> bool {
        held.iter()
            .any(|t| ranges.iter().any(|[from, to]| from <= t && t <= to))
    }

    #[test]
    fn a_run_gives_its_start_and_each_inside_start_with_three_digits_left() {
        assert_eq!(held("幸福路12号"), vec!["\u{E000}12"]);
        assert_eq!(
            held("王家123456"),
            vec!["\u{E000}123456", "\u{E001}23456", "\u{E001}3456", "\u{E001}456"]
        );
        assert_eq!(held("1号楼2单元"), vec!["\u{E000}1", "\u{E000}2"]);
        assert!(held("王小明").is_empty());
        // Full-width digits are not ASCII digits: the pairs serve them.
        assert!(held("１２３").is_empty());
        // A long run's tokens are cut to TOKEN_DIGITS digits.
        let long = "证12345678901234567890";
        let tokens = held(long);
        assert_eq!(tokens[0], "\u{E000}1234567890123456");
        assert_eq!(tokens.len(), 1 + (20 - INSIDE_MIN));
        assert!(tokens.iter().all(|t| t.chars().count() <= 1 + TOKEN_DIGITS));
    }

    #[test]
    fn a_search_asks_for_exact_tokens_or_prefixes_by_where_its_digits_stand() {
        let nines = "9".repeat(TOKEN_DIGITS);
        // Between two characters: exactly a run of the text.
        assert_eq!(
            ranges("幸福路12号"),
            vec![vec![["\u{E000}12".to_string(), "\u{E000}12".to_string()]]]
        );
        // After a character: a run of the text starting so.
        assert_eq!(
            ranges("家123456"),
            vec![vec![["\u{E000}123456".to_string(), format!("\u{E000}123456{nines}")]]]
        );
        // Anywhere: from a run's start or inside it.
        assert_eq!(
            ranges("123456"),
            vec![vec![
                ["\u{E000}123456".to_string(), format!("\u{E000}123456{nines}")],
                ["\u{E001}123456".to_string(), format!("\u{E001}123456{nines}")],
            ]]
        );
        assert_eq!(
            ranges("456号"),
            vec![vec![
                ["\u{E000}456".to_string(), "\u{E000}456".to_string()],
                ["\u{E001}456".to_string(), "\u{E001}456".to_string()],
            ]]
        );
        // Too few digits to start inside a run: the pairs serve it.
        assert!(ranges("12号").is_empty());
        assert!(ranges("王小明").is_empty());
        assert_eq!(ranges("路1号3栋").len(), 2);
    }

    #[test]
    fn a_text_holds_a_token_for_every_part_of_it() {
        for text in [
            "上海市徐汇区幸福路12号",
            "王家123456",
            "1号楼2单元302室",
            "12345",
            "证12345678901234567890号",
            "7",
            "a1b22c333d4444",
        ] {
            let held = held(text);
            let chars: Vec<char> = text.chars().collect();
            for i in 0..chars.len() {
                for j in i + 1..=chars.len() {
                    let part: String = chars[i..j].iter().collect();
                    for r in ranges(&part) {
                        assert!(in_ranges(&held, &r), "{text:?} holds no token for {part:?}: {r:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_text_without_the_number_holds_no_token_for_it() {
        let held = held("上海市徐汇区幸福路112号");
        for q in ["幸福路12号", "路12号", "1120", "路11号", "路1121"] {
            assert!(
                ranges(q).iter().any(|r| !in_ranges(&held, r)),
                "{q:?} would take 幸福路112号 as a candidate"
            );
        }
        // It holds the ones it contains.
        for q in ["路112号", "112号", "路11", "12号"] {
            assert!(ranges(q).iter().all(|r| in_ranges(&held, r)), "{q:?}");
        }
    }
}
