//! Vital signs as types with units that can only be built valid, and the alert
//! rules that decide when a record needs a doctor.

use serde::{Deserialize, Serialize};

fn in_range(value: f64, lo: f64, hi: f64, unit: &str) -> Result<f64, String> {
    if value.is_finite() && (lo..=hi).contains(&value) {
        Ok(value)
    } else {
        Err(format!("应在{lo}到{hi}{unit}之间"))
    }
}

/// Blood pressure in mmHg, written "systolic/diastolic" (e.g. "120/80").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BloodPressure {
    pub systolic: u16,
    pub diastolic: u16,
}

impl BloodPressure {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let (s, d) = raw.trim().split_once('/').ok_or("格式应为收缩压/舒张压，如120/80")?;
        let s: u16 = s.trim().parse().map_err(|_| "收缩压应为整数mmHg")?;
        let d: u16 = d.trim().parse().map_err(|_| "舒张压应为整数mmHg")?;
        if !(50..=260).contains(&s) {
            return Err("收缩压应在50到260mmHg之间".into());
        }
        if !(30..=160).contains(&d) {
            return Err("舒张压应在30到160mmHg之间".into());
        }
        if s <= d {
            return Err("收缩压必须大于舒张压".into());
        }
        Ok(Self {
            systolic: s,
            diastolic: d,
        })
    }
    pub fn text(&self) -> String {
        format!("{}/{}", self.systolic, self.diastolic)
    }
}

/// All measured values of one visit; each is optional, each validated with its unit.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct VitalSigns {
    pub blood_pressure: Option<BloodPressure>,
    /// beats per minute
    pub heart_rate: Option<u16>,
    /// degrees Celsius
    pub temperature: Option<f64>,
    /// SpO2, percent
    pub blood_oxygen: Option<f64>,
    /// mmol/L
    pub blood_glucose: Option<f64>,
    /// kg
    pub weight: Option<f64>,
}

/// Raw values as the client sends them, before validation.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RawVitals {
    pub blood_pressure: Option<String>,
    pub heart_rate: Option<f64>,
    pub temperature: Option<f64>,
    pub blood_oxygen: Option<f64>,
    pub blood_glucose: Option<f64>,
    pub weight: Option<f64>,
}

impl RawVitals {
    /// Validates every value; errors are keyed `vital_signs.<field>`.
    pub fn parse(&self, v: &mut crate::Validator) -> VitalSigns {
        let f = |name: &str| format!("vital_signs.{name}");
        let blood_pressure = self
            .blood_pressure
            .as_deref()
            .and_then(|bp| v.check(&f("blood_pressure"), BloodPressure::parse(bp)));
        let heart_rate = self.heart_rate.and_then(|hr| {
            let r = if hr.fract() == 0.0 {
                in_range(hr, 20.0, 250.0, "次/分")
            } else {
                Err("心率应为整数".into())
            };
            v.check(&f("heart_rate"), r).map(|x| x as u16)
        });
        VitalSigns {
            blood_pressure,
            heart_rate,
            temperature: self
                .temperature
                .and_then(|t| v.check(&f("temperature"), in_range(t, 34.0, 43.0, "°C"))),
            blood_oxygen: self
                .blood_oxygen
                .and_then(|o| v.check(&f("blood_oxygen"), in_range(o, 50.0, 100.0, "%"))),
            blood_glucose: self
                .blood_glucose
                .and_then(|g| v.check(&f("blood_glucose"), in_range(g, 1.0, 35.0, "mmol/L"))),
            weight: self
                .weight
                .and_then(|w| v.check(&f("weight"), in_range(w, 2.0, 300.0, "kg"))),
        }
    }
}

/// Where alerts start. Defaults follow common clinical guidance; the server
/// may override them from settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertThresholds {
    pub systolic_high: u16,
    pub diastolic_high: u16,
    pub systolic_urgent: u16,
    pub diastolic_urgent: u16,
    pub spo2_low: f64,
    pub temperature_high: f64,
    pub heart_rate_low: u16,
    pub heart_rate_high: u16,
}

impl Default for AlertThresholds {
    fn default() -> Self {
        Self {
            systolic_high: 140,
            diastolic_high: 90,
            systolic_urgent: 180,
            diastolic_urgent: 120,
            spo2_low: 90.0,
            temperature_high: 38.0,
            heart_rate_low: 50,
            heart_rate_high: 120,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Abnormal,
    Urgent,
}

impl Severity {
    pub fn as_str(&self) -> &'static str {
        match self {
            Severity::Abnormal => "abnormal",
            Severity::Urgent => "urgent",
        }
    }
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw {
            "abnormal" => Ok(Self::Abnormal),
            "urgent" => Ok(Self::Urgent),
            _ => Err("应为abnormal或urgent".into()),
        }
    }
}

/// One reason a record is abnormal, with a stable code and a message for people.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertReason {
    pub code: String,
    pub severity: Severity,
    pub message: String,
}

impl AlertThresholds {
    /// Every threshold the vitals cross.
    pub fn assess(&self, v: &VitalSigns) -> Vec<AlertReason> {
        let mut out = Vec::new();
        let mut push = |code: &str, severity, message: String| {
            out.push(AlertReason {
                code: code.into(),
                severity,
                message,
            })
        };
        if let Some(bp) = v.blood_pressure {
            if bp.systolic >= self.systolic_urgent || bp.diastolic >= self.diastolic_urgent {
                push(
                    "blood_pressure_urgent",
                    Severity::Urgent,
                    format!("血压{}mmHg，达到高血压危象标准", bp.text()),
                );
            } else if bp.systolic >= self.systolic_high || bp.diastolic >= self.diastolic_high {
                push(
                    "blood_pressure_high",
                    Severity::Abnormal,
                    format!("血压{}mmHg偏高", bp.text()),
                );
            }
        }
        if let Some(o) = v.blood_oxygen {
            if o < self.spo2_low {
                push("blood_oxygen_low", Severity::Urgent, format!("血氧{o}%偏低"));
            }
        }
        if let Some(t) = v.temperature {
            if t >= self.temperature_high {
                push("temperature_high", Severity::Abnormal, format!("体温{t}°C，发热"));
            }
        }
        if let Some(hr) = v.heart_rate {
            if hr < self.heart_rate_low {
                push("heart_rate_low", Severity::Abnormal, format!("心率{hr}次/分偏低"));
            } else if hr > self.heart_rate_high {
                push("heart_rate_high", Severity::Abnormal, format!("心率{hr}次/分偏高"));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blood_pressure_needs_systolic_above_diastolic() {
        assert_eq!(
            BloodPressure::parse("120/80").unwrap(),
            BloodPressure {
                systolic: 120,
                diastolic: 80
            }
        );
        assert!(BloodPressure::parse("80/120").is_err());
        assert!(BloodPressure::parse("120").is_err());
        assert!(BloodPressure::parse("300/80").is_err());
    }

    #[test]
    fn out_of_range_values_are_named() {
        let raw = RawVitals {
            temperature: Some(45.0),
            blood_oxygen: Some(101.0),
            heart_rate: Some(72.5),
            ..Default::default()
        };
        let mut v = crate::Validator::new();
        raw.parse(&mut v);
        let Err(crate::Invalid(f)) = v.finish() else {
            panic!("must fail")
        };
        assert!(f.contains_key("vital_signs.temperature"));
        assert!(f.contains_key("vital_signs.blood_oxygen"));
        assert!(f.contains_key("vital_signs.heart_rate"));
    }

    #[test]
    fn thresholds_flag_high_and_urgent_readings() {
        let t = AlertThresholds::default();
        let v = |bp: &str| VitalSigns {
            blood_pressure: Some(BloodPressure::parse(bp).unwrap()),
            ..Default::default()
        };
        assert!(t.assess(&v("139/89")).is_empty());
        assert_eq!(t.assess(&v("140/85"))[0].code, "blood_pressure_high");
        assert_eq!(t.assess(&v("150/95"))[0].severity, Severity::Abnormal);
        assert_eq!(t.assess(&v("185/100"))[0].severity, Severity::Urgent);
        let low = VitalSigns {
            blood_oxygen: Some(88.0),
            temperature: Some(38.0),
            heart_rate: Some(45),
            ..Default::default()
        };
        let codes: Vec<String> = t.assess(&low).into_iter().map(|r| r.code).collect();
        assert_eq!(codes, ["blood_oxygen_low", "temperature_high", "heart_rate_low"]);
    }
}
