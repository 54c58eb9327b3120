//! Value types that can only be built valid. Requests are parsed into these at
//! the edge; aggregates and events never hold an unchecked phone or ID number.

use std::fmt;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

/// Trimmed, non-empty text with an upper bound in characters.
pub fn text(value: &str, max_chars: usize) -> Result<String, String> {
    let t = value.trim();
    if t.is_empty() {
        return Err("不能为空".into());
    }
    if t.chars().count() > max_chars {
        return Err(format!("不能超过{max_chars}个字符"));
    }
    Ok(t.to_string())
}

/// Like [`text`] but an empty string means "not given".
pub fn optional_text(value: Option<&str>, max_chars: usize) -> Result<Option<String>, String> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => text(v, max_chars).map(Some),
    }
}

/// A Chinese phone number: an 11-digit mobile number (1[3-9]xxxxxxxxx, optional
/// +86 prefix) or a landline with area code (0xx-xxxxxxxx, 7-8 digit local part,
/// optional extension). Stored normalised without spaces or the +86 prefix.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let s: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
        let s = s
            .strip_prefix("+86")
            .or_else(|| s.strip_prefix("0086"))
            .unwrap_or(&s)
            .trim_start_matches('-')
            .to_string();
        let digits = |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit());
        let b = s.as_bytes();
        if s.len() == 11 && digits(&s) && b[0] == b'1' && (b'3'..=b'9').contains(&b[1]) {
            return Ok(Self(s));
        }
        // Landline: area code 0 + 2..3 digits, local part 7..8 digits, optional "-ext".
        let mut parts = s.split('-');
        if let (Some(area), Some(local)) = (parts.next(), parts.next()) {
            let ext = parts.next();
            if parts.next().is_none()
                && digits(area)
                && area.starts_with('0')
                && (3..=4).contains(&area.len())
                && digits(local)
                && (7..=8).contains(&local.len())
                && ext.is_none_or(|e| digits(e) && e.len() <= 6)
            {
                return Ok(Self(s));
            }
        }
        Err("不是有效的手机号或座机号".into())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PhoneNumber {
    // Never print a phone number in logs or panics.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PhoneNumber(***)")
    }
}

/// An 18-character resident identity number (GB 11643-1999): 6-digit region,
/// 8-digit birth date, 3-digit sequence, and a check character computed with
/// ISO 7064 MOD 11-2 (`X` stands for 10).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ResidentId(String);

impl ResidentId {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];

    pub fn parse(raw: &str) -> Result<Self, String> {
        let s = raw.trim().to_ascii_uppercase();
        if s.chars().count() != 18 {
            return Err("身份证号必须为18位".into());
        }
        let chars: Vec<char> = s.chars().collect();
        if !chars[..17].iter().all(|c| c.is_ascii_digit()) {
            return Err("身份证号前17位必须为数字".into());
        }
        let birth = &s[6..14];
        let date = NaiveDate::parse_from_str(birth, "%Y%m%d").map_err(|_| "身份证号中的出生日期无效".to_string())?;
        if date.year() < 1880 {
            return Err("身份证号中的出生日期无效".into());
        }
        let sum: u32 = chars[..17]
            .iter()
            .zip(Self::WEIGHTS)
            .map(|(c, w)| c.to_digit(10).unwrap_or(0) * w)
            .sum();
        if Self::CHECK[(sum % 11) as usize] != chars[17] {
            return Err("身份证号校验位错误".into());
        }
        Ok(Self(s))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The birth date encoded in the number.
    pub fn birth_date(&self) -> Option<NaiveDate> {
        NaiveDate::parse_from_str(&self.0[6..14], "%Y%m%d").ok()
    }
}

impl fmt::Debug for ResidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResidentId(***)")
    }
}

/// `YYYY-MM-DD`.
pub fn date(raw: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d").map_err(|_| "日期格式应为YYYY-MM-DD".into())
}

/// `HH:MM` (seconds, if sent, must be zero).
pub fn time(raw: &str) -> Result<chrono::NaiveTime, String> {
    let raw = raw.trim();
    chrono::NaiveTime::parse_from_str(raw, "%H:%M")
        .or_else(|_| chrono::NaiveTime::parse_from_str(raw, "%H:%M:%S"))
        .map_err(|_| "时间格式应为HH:MM".to_string())
}

/// Full years between `birth` and `today`.
pub fn age_on(birth: NaiveDate, today: NaiveDate) -> i32 {
    let mut age = today.year() - birth.year();
    if (today.month(), today.day()) < (birth.month(), birth.day()) {
        age -= 1;
    }
    age.max(0)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Gender {
    Male,
    Female,
}

impl Gender {
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw {
            "male" => Ok(Gender::Male),
            "female" => Ok(Gender::Female),
            _ => Err("应为male或female".into()),
        }
    }
    pub fn as_str(&self) -> &'static str {
        match self {
            Gender::Male => "male",
            Gender::Female => "female",
        }
    }
}

/// Great-circle distance in metres between two `(lat, lng)` points in degrees
/// (haversine, on a sphere of the Earth's mean radius).
pub fn haversine_m((lat1, lng1): (f64, f64), (lat2, lng2): (f64, f64)) -> f64 {
    let r = 6_371_000.0_f64;
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = (lat2 - lat1).to_radians();
    let dl = (lng2 - lng1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * r * a.sqrt().asin()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resident_id_accepts_a_valid_checksum() {
        // Standard example from GB 11643 documentation.
        assert!(ResidentId::parse("11010519491231002X").is_ok());
        assert!(ResidentId::parse("11010519491231002x").is_ok());
        assert!(ResidentId::parse("440524188001010014").is_ok());
    }

    #[test]
    fn resident_id_rejects_a_wrong_check_digit_length_or_date() {
        assert!(ResidentId::parse("110105194912310021").is_err());
        assert!(ResidentId::parse("11010519491231002").is_err());
        assert!(ResidentId::parse("110105194913310024").is_err());
        assert!(ResidentId::parse("1101051949123100AX").is_err());
    }

    #[test]
    fn resident_id_debug_hides_the_number() {
        let id = ResidentId::parse("11010519491231002X").unwrap();
        assert!(!format!("{id:?}").contains("1101"));
    }

    #[test]
    fn phone_accepts_mobile_and_landline() {
        assert_eq!(PhoneNumber::parse("13800138000").unwrap().as_str(), "13800138000");
        assert_eq!(PhoneNumber::parse("+86 138 0013 8000").unwrap().as_str(), "13800138000");
        assert!(PhoneNumber::parse("010-12345678").is_ok());
        assert!(PhoneNumber::parse("0571-8765432").is_ok());
    }

    #[test]
    fn phone_rejects_garbage() {
        for bad in ["12800138000", "1380013800", "abc", "", "010-123", "13800138000-1"] {
            assert!(PhoneNumber::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn age_counts_full_years() {
        let b = NaiveDate::from_ymd_opt(1950, 6, 15).unwrap();
        assert_eq!(age_on(b, NaiveDate::from_ymd_opt(2026, 6, 14).unwrap()), 75);
        assert_eq!(age_on(b, NaiveDate::from_ymd_opt(2026, 6, 15).unwrap()), 76);
    }
}
