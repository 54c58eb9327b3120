//! FHIR R4 export: a month of a patient's care as a Bundle that an independent
//! validator (fhir.resources, pinned in scripts/fhir-requirements.txt) accepts,
//! with the contract's LOINC codes and as many resources as the API's lists;
//! the patient's access rule, the access log, and erasure.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use chrono::Duration;
use serde_json::{json, Value};

use crate::dual;
use crate::helpers::{spawn_app, Backend, TestApp};

dual!(a_months_care_exports_as_a_valid_fhir_r4_bundle);

/// Runs `scripts/fhir_validate.py` on `resource` with the venv's python
/// (`scripts/fhir-venv.sh` creates the venv when absent) and fails the test
/// on any error it reports.
fn assert_valid_fhir(resource: &Value) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let venv = Command::new("bash")
        .arg(root.join("scripts/fhir-venv.sh"))
        .stderr(Stdio::inherit())
        .output()
        .expect("run scripts/fhir-venv.sh");
    assert!(
        venv.status.success(),
        "the FHIR validator's venv could not be created: run `scripts/fhir-venv.sh` (needs python3 with venv and \
         PyPI) and see its message above"
    );
    let python = String::from_utf8(venv.stdout).unwrap().trim().to_string();
    let mut child = Command::new(&python)
        .arg(root.join("scripts/fhir_validate.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}; run scripts/fhir-venv.sh"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(resource.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "FHIR validation failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A FHIR answer: status, content type and the resource.
async fn fhir_get(app: &TestApp, path: &str, token: &str) -> (u16, String, Value) {
    let res = app
        .client
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("request sent");
    let status = res.status().as_u16();
    let content_type = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = res.json().await.expect("JSON body");
    (status, content_type, body)
}

fn resources<'a>(bundle: &'a Value, kind: &str) -> Vec<&'a Value> {
    bundle["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| &e["resource"])
        .filter(|r| r["resourceType"] == kind)
        .collect()
}

fn codes(concept: &Value) -> BTreeSet<String> {
    concept["coding"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["system"] == "http://loinc.org")
        .map(|c| c["code"].as_str().unwrap().to_string())
        .collect()
}

async fn a_months_care_exports_as_a_valid_fhir_r4_bundle(b: Backend) {
    let app = spawn_app(b).await;
    let (recorder, rtoken) = app.recorder(1).await;
    let (_other, other_token) = app.recorder(2).await;
    let (doctor, dtoken) = app.staff("doctor", 1).await;
    let (_auditor, atoken) = app.staff("auditor", 2).await;
    let family = app.family("陈家").await;
    let patient = app.patient(&family, "陈奶奶").await;
    app.patch(
        &format!("/patients/{patient}"),
        &app.admin_token,
        json!({"phone": "13811112222", "current_medications": [
            "氨氯地平 5mg",
            {"name": "二甲双胍缓释片", "dosage": "0.5g", "frequency": "每日两次", "route": "口服"}
        ]}),
    )
    .await
    .ok();
    let package = app
        .post(
            "/service-packages",
            &app.admin_token,
            json!({"name": "月度包", "price": "999.00", "duration_days": 365, "service_frequency": 31}),
        )
        .await
        .ok()
        .id();
    app.subscribe(&patient, &package, &recorder).await;

    // A month of visits, each completed by its record; vitals of every kind.
    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .date_naive();
    let vitals = [
        json!({"blood_pressure": "150/95", "heart_rate": 78, "temperature": 36.6, "blood_oxygen": 97,
               "blood_glucose": 6.1, "weight": 58.5}),
        json!({"blood_pressure": "132/84", "heart_rate": 72}),
        json!({"temperature": 37.9, "blood_oxygen": 95}),
        json!({"blood_glucose": 7.4, "weight": 58.1}),
        json!({"blood_pressure": "128/80", "heart_rate": 70, "temperature": 36.5}),
    ];
    let mut records = Vec::new();
    for (k, v) in vitals.iter().enumerate() {
        let visit = app
            .post(
                "/appointments",
                &rtoken,
                json!({"patient_id": patient, "scheduled_date": (today + Duration::days(1 + 6 * k as i64)).to_string(),
                       "scheduled_time": "10:00", "appointment_type": "regular"}),
            )
            .await
            .ok()
            .id();
        let record = app
            .post(
                "/health-records",
                &rtoken,
                json!({"patient_id": patient, "appointment_id": visit,
                       "visit_date": (today - Duration::days(6 * k as i64)).to_string(), "visit_time": "09:30",
                       "vital_signs": v, "notes": "例行随访"}),
            )
            .await
            .ok()
            .data()["record_id"]
            .as_str()
            .unwrap()
            .to_string();
        records.push(record);
    }
    // A record outside any visit, and a visit not completed (no Encounter).
    app.post(
        "/health-records",
        &rtoken,
        json!({"patient_id": patient, "visit_date": today.to_string(), "visit_time": "16:00",
               "vital_signs": {"weight": 58.0}}),
    )
    .await
    .ok();
    app.post(
        "/appointments",
        &rtoken,
        json!({"patient_id": patient, "scheduled_date": (today + Duration::days(3)).to_string(),
               "scheduled_time": "15:00", "appointment_type": "regular"}),
    )
    .await
    .ok();

    // A medication order and an examination order from the doctor.
    // A medication order and an examination order from the doctor, each answering a request.
    let mut requests = Vec::new();
    for record in &records[..2] {
        let request = app
            .post(
                &format!("/health-records/{record}/order-requests"),
                &rtoken,
                json!({"doctor_id": doctor, "reason": "请医生看看"}),
            )
            .await
            .ok()
            .id();
        requests.push(request);
    }
    for body in [
        json!({"patient_id": patient, "request_id": requests[0], "order_type": "medication", "content": "氨氯地平片",
               "dosage": "5mg", "frequency": "每日一次", "duration": "14天"}),
        json!({"patient_id": patient, "request_id": requests[1], "order_type": "examination", "content": "24小时动态血压监测",
               "notes": "两周内完成"}),
    ] {
        app.post("/medical-orders", &dtoken, body).await.ok();
    }

    // A hospital booking.
    let hospital = app
        .post(
            "/hospitals",
            &app.admin_token,
            json!({"name": "瑞金医院", "address": "上海市黄浦区瑞金二路197号"}),
        )
        .await
        .ok()
        .id();
    let department = app
        .post(
            &format!("/hospitals/{hospital}/departments"),
            &app.admin_token,
            json!({"name": "心内科"}),
        )
        .await
        .ok()
        .id();
    let date = (today + Duration::days(7)).to_string();
    app.post(
        &format!("/hospitals/{hospital}/slots"),
        &app.admin_token,
        json!({"department_id": department, "date": date, "time": "09:00", "capacity": 5}),
    )
    .await
    .ok();
    app.post(
        "/hospital-appointments",
        &rtoken,
        json!({"patient_id": patient, "hospital_id": hospital, "department_id": department,
               "appointment_date": date, "appointment_time": "09:00"}),
    )
    .await
    .ok();

    // The export, as the assigned recorder.
    let path = format!("/fhir/Patient/{patient}/$everything");
    let (status, content_type, bundle) = fhir_get(&app, &path, &rtoken).await;
    assert_eq!(status, 200, "{bundle}");
    assert!(content_type.starts_with("application/fhir+json"), "{content_type}");
    assert_eq!(bundle["resourceType"], "Bundle");
    assert_eq!(bundle["type"], "collection");
    assert_valid_fhir(&bundle);

    // Counts match the API's own lists.
    let completed = app.get("/appointments?status=completed&limit=100", &rtoken).await.ok();
    let encounters = resources(&bundle, "Encounter");
    assert_eq!(encounters.len() as u64, completed.data()["total"].as_u64().unwrap());
    assert_eq!(encounters.len(), 5);
    for e in &encounters {
        assert_eq!(e["class"]["code"], "HH");
        assert_eq!(e["class"]["system"], "http://terminology.hl7.org/CodeSystem/v3-ActCode");
        assert_eq!(e["status"], "finished");
    }
    let listed = app
        .get(&format!("/patients/{patient}/health-records?limit=100"), &rtoken)
        .await
        .ok();
    let measured: usize = listed.data()["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| {
            r["vital_signs"]
                .as_object()
                .unwrap()
                .values()
                .filter(|v| !v.is_null())
                .count()
        })
        .sum();
    let observations = resources(&bundle, "Observation");
    assert_eq!(observations.len(), measured);
    assert_eq!(measured, 16);
    let orders = app
        .get(&format!("/patients/{patient}/medical-orders"), &rtoken)
        .await
        .ok();
    let orders = orders.data()["orders"].as_array().expect("orders").clone();
    let medication = orders.iter().filter(|o| o["order_type"] == "medication").count();
    assert_eq!(resources(&bundle, "MedicationRequest").len(), medication);
    assert_eq!(resources(&bundle, "ServiceRequest").len(), orders.len() - medication);
    assert_eq!(medication, 1);
    let bookings = app
        .get(&format!("/hospital-appointments?patient_id={patient}"), &rtoken)
        .await
        .ok();
    assert_eq!(
        resources(&bundle, "Appointment").len() as u64,
        bookings.data()["total"].as_u64().unwrap()
    );
    assert_eq!(resources(&bundle, "Appointment").len(), 1);
    let statements = resources(&bundle, "MedicationStatement");
    assert_eq!(statements.len(), 2);
    assert_eq!(statements[1]["medicationCodeableConcept"]["text"], "二甲双胍缓释片");
    assert_eq!(statements[1]["dosage"][0]["route"]["text"], "口服");

    // Vital signs: category, LOINC codes of the contract, UCUM units, effective time.
    let mut by_code: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for o in &observations {
        assert_eq!(o["category"][0]["coding"][0]["code"], "vital-signs");
        assert!(o["effectiveDateTime"].as_str().unwrap().ends_with("+08:00"), "{o}");
        for code in codes(&o["code"]) {
            by_code.entry(code).or_default().push(o);
        }
    }
    for (code, unit) in [
        ("85354-9", None),
        ("8867-4", Some("/min")),
        ("8310-5", Some("Cel")),
        ("2708-6", Some("%")),
        ("59408-5", Some("%")),
        ("29463-7", Some("kg")),
        ("2339-0", Some("mg/dL")),
    ] {
        let found = by_code
            .get(code)
            .unwrap_or_else(|| panic!("no Observation coded {code}"));
        for o in found {
            if let Some(unit) = unit {
                assert_eq!(o["valueQuantity"]["system"], "http://unitsofmeasure.org");
                assert_eq!(o["valueQuantity"]["code"], unit, "{o}");
            }
        }
    }
    let bp = by_code["85354-9"]
        .iter()
        .find(|o| o["id"] == format!("obs-{}-bp", records[0]))
        .expect("the first record's blood pressure, under a stable id");
    let components: BTreeMap<String, f64> = bp["component"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            assert_eq!(c["valueQuantity"]["code"], "mm[Hg]");
            (
                codes(&c["code"]).into_iter().next().unwrap(),
                c["valueQuantity"]["value"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        components,
        BTreeMap::from([("8480-6".into(), 150.0), ("8462-4".into(), 95.0)])
    );
    let glucose = by_code["2339-0"]
        .iter()
        .find(|o| o["id"] == format!("obs-{}-glucose", records[0]))
        .unwrap();
    assert_eq!(glucose["valueQuantity"]["value"], 109.9, "6.1 mmol/L in mg/dL");

    // Provenance: every clinical resource is a target, naming who and which event.
    let provenances = resources(&bundle, "Provenance");
    let targets: BTreeSet<String> = provenances
        .iter()
        .flat_map(|p| p["target"].as_array().unwrap().iter())
        .map(|t| t["reference"].as_str().unwrap().to_string())
        .collect();
    for kind in [
        "Encounter",
        "Observation",
        "MedicationRequest",
        "ServiceRequest",
        "Appointment",
    ] {
        for r in resources(&bundle, kind) {
            assert!(
                targets.contains(&format!("{kind}/{}", r["id"].as_str().unwrap())),
                "{r}"
            );
        }
    }
    let record_provenance = provenances
        .iter()
        .find(|p| p["id"] == format!("prov-record-{}", records[0]))
        .unwrap();
    assert_eq!(
        record_provenance["agent"][0]["who"]["identifier"]["value"],
        format!("urn:uuid:{recorder}")
    );
    assert_eq!(record_provenance["agent"][0]["who"]["display"], "记录员1");
    assert_eq!(
        record_provenance["entity"][0]["what"]["identifier"]["value"],
        format!("health_record/{}/1", records[0])
    );
    let order_provenance = provenances
        .iter()
        .find(|p| {
            p["target"][0]["reference"]
                .as_str()
                .unwrap()
                .starts_with("MedicationRequest/")
        })
        .unwrap();
    assert_eq!(
        order_provenance["agent"][0]["who"]["identifier"]["value"],
        format!("urn:uuid:{doctor}")
    );

    // Stable ids: the same export again, also through the encoded path.
    let (_, _, again) = fhir_get(&app, &format!("/fhir/Patient/{patient}/%24everything"), &rtoken).await;
    let ids = |b: &Value| -> Vec<String> {
        b["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["fullUrl"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&bundle), ids(&again));

    // The Patient alone.
    let (status, content_type, p) = fhir_get(&app, &format!("/fhir/Patient/{patient}"), &rtoken).await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("application/fhir+json"));
    assert_valid_fhir(&p);
    assert_eq!(p["name"][0]["text"], "陈奶奶");
    assert_eq!(p["birthDate"], "1949-12-31");
    assert_eq!(p["telecom"][0]["value"], "13811112222");
    assert_eq!(p["address"][0]["text"], "上海市陈家路1号");

    // The patient's access rule: another recorder is told it does not exist; auditors are refused.
    for path in [format!("/fhir/Patient/{patient}"), path.clone()] {
        app.get(&path, &other_token).await.err(404, "not_found");
        app.get(&path, &atoken).await.err(403, "forbidden");
    }
    // Each export is in the access log, under its route.
    let log = app
        .get(
            &format!("/audit/access?patient_id={patient}&actor={recorder}&limit=100"),
            &app.admin_token,
        )
        .await
        .ok();
    let endpoints: Vec<&str> = log.data()["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["endpoint"].as_str().unwrap())
        .collect();
    assert_eq!(
        endpoints
            .iter()
            .filter(|e| **e == "GET /api/v1/fhir/Patient/{id}/$everything")
            .count(),
        2,
        "{endpoints:?}"
    );
    assert!(endpoints.contains(&"GET /api/v1/fhir/Patient/{id}"), "{endpoints:?}");

    // Erased: nothing personal leaves any more.
    app.post(
        &format!("/patients/{patient}/erase"),
        &app.admin_token,
        json!({"reason": "本人申请删除"}),
    )
    .await
    .ok();
    let (status, _, erased) = fhir_get(&app, &path, &app.admin_token).await;
    assert_eq!(status, 200);
    assert_valid_fhir(&erased);
    let p = resources(&erased, "Patient")[0];
    assert_eq!(p["active"], false);
    for field in ["name", "birthDate", "telecom", "address"] {
        assert!(p.get(field).is_none(), "{field} exported after erasure: {p}");
    }
    let text = erased.to_string();
    for personal in ["陈奶奶", "13811112222", "陈家路", "二甲双胍", "1949-12-31"] {
        assert!(!text.contains(personal), "{personal} exported after erasure");
    }
    assert!(resources(&erased, "MedicationStatement").is_empty());
    assert_eq!(
        resources(&erased, "Observation").len(),
        measured,
        "vital signs are not personal"
    );
}
