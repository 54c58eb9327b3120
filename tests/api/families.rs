use serde_json::json;

use crate::dual;
use crate::helpers::{spawn_app, today, Backend};
use projections::store::RowExt;

dual!(
    a_recorder_sees_only_their_families_field_by_field,
    family_updates_show_at_once,
    patients_read_and_update,
    medications_are_free_text_or_structured_and_read_back_as_sent,
    search_finds_what_the_families_hold_now,
    a_name_with_spaces_is_searchable_after_a_rename,
    a_familys_detail_shows_each_patients_newest_record,
    a_households_subscriptions_count_while_active_today
);

async fn a_recorder_sees_only_their_families_field_by_field(b: Backend) {
    let app = spawn_app(b).await;
    let (r1, t1) = app.recorder(1).await;
    let (_r2, t2) = app.recorder(2).await;
    let package = app.package().await;
    let fam = app.family("王家").await;
    let other = app.family("李家").await;
    let p1 = app.patient(&fam, "王奶奶").await;
    let _p2 = app.patient(&fam, "王爷爷").await;
    let p3 = app.patient(&other, "李大爷").await;

    // No subscription yet: the recorder sees nothing.
    let l = app.get("/families", &t1).await.ok();
    assert_eq!(l.data()["total"], 0);

    let sub = app.subscribe(&p1, &package, &r1).await;
    let l = app.get("/families", &t1).await.ok();
    assert_eq!(l.data()["total"], 1, "{}", l.body);
    let f = &l.data()["families"][0];
    assert_eq!(f["id"], fam.as_str());
    assert_eq!(f["family_name"], "王家");
    assert_eq!(f["primary_address"], "上海市王家路1号");
    assert_eq!(f["contact_phone"], "13912345678");
    // Only the recorder's own patient of the household is counted (issue 10).
    assert_eq!(f["patient_count"], 1);
    assert_eq!(f["active_subscriptions"], 1);
    assert_eq!(l.data()["page"], 1);
    assert_eq!(l.data()["limit"], 20);
    // A page past the end has no rows to carry the total: it is still given.
    let past = app.get("/families?page=3", &t1).await.ok();
    assert_eq!(past.data()["families"], json!([]));
    assert_eq!(past.data()["total"], 1, "{}", past.body);

    let d = app.get(&format!("/families/{fam}"), &t1).await.ok();
    let data = d.data();
    assert_eq!(data["family_name"], "王家");
    assert_eq!(d.headers["etag"], format!("\"{}\"", data["version"]));
    // The household's other patient is not the recorder's: left out (issue 10).
    let patients = data["patients"].as_array().unwrap();
    assert_eq!(patients.len(), 1);
    let grandma = patients.iter().find(|p| p["id"] == p1.as_str()).unwrap();
    assert_eq!(grandma["name"], "王奶奶");
    assert_eq!(grandma["gender"], "female");
    assert_eq!(grandma["relationship_to_head"], "本人");
    assert!(grandma["age"].as_i64().unwrap() >= 76);
    assert_eq!(grandma["current_subscription"]["package_name"], "基础护理包");
    assert_eq!(grandma["current_subscription"]["status"], "active");
    assert!(grandma["current_subscription"]["end_date"].is_string());
    assert!(grandma["last_record"].is_null());
    let all = app.get(&format!("/families/{fam}"), &app.admin_token).await.ok();
    let all = all.data()["patients"].as_array().unwrap().clone();
    assert_eq!(all.len(), 2, "the admin sees the whole household");
    let grandpa = all.iter().find(|p| p["id"] != p1.as_str()).unwrap();
    assert!(grandpa["current_subscription"].is_null());

    // The second recorder sees neither the list entry nor the detail.
    assert_eq!(app.get("/families", &t2).await.ok().data()["total"], 0);
    app.get(&format!("/families/{fam}"), &t2).await.err(404, "not_found");
    app.get(&format!("/patients/{p1}"), &t2).await.err(404, "not_found");
    app.get(&format!("/families/{other}"), &t1).await.err(404, "not_found");
    app.get(&format!("/patients/{p3}"), &t1).await.err(404, "not_found");

    // Admin sees all; search matches family name, address or a patient's name.
    assert_eq!(app.get("/families", &app.admin_token).await.ok().data()["total"], 2);
    let s = app
        .get("/families?search=%E6%9D%8E%E5%A4%A7", &app.admin_token)
        .await
        .ok(); // 李大
    assert_eq!(s.data()["total"], 1);
    assert_eq!(s.data()["families"][0]["id"], other.as_str());
    let past = app
        .get("/families?search=%E6%9D%8E%E5%A4%A7&page=2", &app.admin_token)
        .await
        .ok();
    assert_eq!(past.data()["families"], json!([]));
    assert_eq!(past.data()["total"], 1, "{}", past.body);
    let s = app
        .get("/families?search=%E7%8E%8B%E5%AE%B6%E8%B7%AF", &app.admin_token)
        .await
        .ok(); // 王家路
    assert_eq!(s.data()["total"], 1);
    let s = app.get("/families?limit=1&page=2", &app.admin_token).await.ok();
    assert_eq!(s.data()["families"].as_array().unwrap().len(), 1);
    assert_eq!(s.data()["total"], 2);

    // Pausing the subscription removes the family from the recorder's list at once.
    app.post(
        &format!("/subscriptions/{sub}/status"),
        &app.admin_token,
        json!({"status": "paused"}),
    )
    .await
    .ok();
    assert_eq!(app.get("/families", &t1).await.ok().data()["total"], 0);
    app.get(&format!("/families/{fam}"), &t1).await.err(404, "not_found");
    let d = app.get(&format!("/families/{fam}"), &app.admin_token).await.ok();
    let grandma = d.data()["patients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == p1.as_str())
        .unwrap()
        .clone();
    assert_eq!(grandma["current_subscription"]["status"], "paused");
    // Resumed: back in the list, counted as before; cancelled: gone for good.
    app.post(
        &format!("/subscriptions/{sub}/status"),
        &app.admin_token,
        json!({"status": "active"}),
    )
    .await
    .ok();
    let l = app.get("/families", &t1).await.ok();
    assert_eq!(l.data()["total"], 1, "{}", l.body);
    assert_eq!(l.data()["families"][0]["patient_count"], 1);
    assert_eq!(l.data()["families"][0]["active_subscriptions"], 1);
    app.post(
        &format!("/subscriptions/{sub}/status"),
        &app.admin_token,
        json!({"status": "cancelled"}),
    )
    .await
    .ok();
    assert_eq!(app.get("/families", &t1).await.ok().data()["total"], 0);
    app.post(
        &format!("/subscriptions/{sub}/status"),
        &app.admin_token,
        json!({"status": "active"}),
    )
    .await
    .err(409, "conflict");
    let pay = app
        .post(
            &format!("/subscriptions/{sub}/payment"),
            &app.admin_token,
            json!({"payment_status": "paid"}),
        )
        .await
        .ok();
    assert!(pay.data()["version"].as_i64().unwrap() >= 3);
}

async fn family_updates_show_at_once(b: Backend) {
    let app = spawn_app(b).await;
    let fam = app.family("张家").await;
    let r = app
        .patch(
            &format!("/families/{fam}"),
            &app.admin_token,
            json!({"primary_address": "北京市朝阳区", "home_lat": 39.9, "home_lng": 116.4}),
        )
        .await
        .ok();
    assert_eq!(r.data()["version"], 2);
    let d = app.get(&format!("/families/{fam}"), &app.admin_token).await.ok();
    assert_eq!(d.data()["primary_address"], "北京市朝阳区");
    assert_eq!(d.data()["family_name"], "张家");
    assert_eq!(d.data()["home_lat"], 39.9);
    assert_eq!(d.data()["version"], 2);
    // A stale If-Match is refused; the current one is accepted.
    app.send(
        reqwest::Method::PATCH,
        &format!("/families/{fam}"),
        Some(&app.admin_token),
        Some(json!({"family_name": "张府"})),
        &[("If-Match", "1")],
    )
    .await
    .err(409, "version_conflict");
    app.send(
        reqwest::Method::PATCH,
        &format!("/families/{fam}"),
        Some(&app.admin_token),
        Some(json!({"family_name": "张府"})),
        &[("If-Match", "\"2\"")],
    )
    .await
    .ok();
    assert_eq!(
        app.get(&format!("/families/{fam}"), &app.admin_token).await.ok().data()["family_name"],
        "张府"
    );
    app.get("/families/00000000-0000-0000-0000-000000000000", &app.admin_token)
        .await
        .err(404, "not_found");
    app.get("/families/not-a-uuid", &app.admin_token)
        .await
        .err(404, "not_found");
}

async fn patients_read_and_update(b: Backend) {
    let app = spawn_app(b).await;
    let (r1, t1) = app.recorder(1).await;
    let fam = app.family("赵家").await;
    let p = app.patient(&fam, "赵奶奶").await;
    let package = app.package().await;
    app.subscribe(&p, &package, &r1).await;
    let v = app.get(&format!("/patients/{p}"), &t1).await.ok();
    assert_eq!(v.data()["id_card"], "11010519491231002X");
    assert_eq!(v.data()["medical_history"], json!(["高血压"]));
    assert_eq!(v.data()["family_id"], fam.as_str());
    let u = app
        .patch(
            &format!("/patients/{p}"),
            &app.admin_token,
            json!({"phone": "13811112222", "allergies": "青霉素"}),
        )
        .await
        .ok();
    assert_eq!(u.data()["version"], 2);
    let v = app.get(&format!("/patients/{p}"), &t1).await.ok();
    assert_eq!(v.data()["phone"], "13811112222");
    assert_eq!(v.data()["allergies"], "青霉素");
    assert_eq!(v.data()["name"], "赵奶奶");
    app.patch(&format!("/patients/{p}"), &t1, json!({"allergies": "x"}))
        .await
        .err(403, "forbidden");
}

async fn medications_are_free_text_or_structured_and_read_back_as_sent(b: Backend) {
    let app = spawn_app(b).await;
    let fam = app.family("钱家").await;
    // Registered with a string, as every patient was before structured medications.
    let p = app.patient(&fam, "钱奶奶").await;
    let path = format!("/patients/{p}");
    let v = app.get(&path, &app.admin_token).await.ok();
    assert_eq!(v.data()["current_medications"], json!(["氨氯地平"]));

    let mixed = json!([
        "氨氯地平 5mg 每日一次",
        {"name": "二甲双胍缓释片", "dosage": "0.5g", "frequency": "每日两次", "route": "口服"},
        {"name": " 阿司匹林 ", "dosage": "100mg"},
        "  "
    ]);
    app.patch(&path, &app.admin_token, json!({"current_medications": mixed}))
        .await
        .ok();
    let v = app.get(&path, &app.admin_token).await.ok();
    assert_eq!(
        v.data()["current_medications"],
        json!([
            "氨氯地平 5mg 每日一次",
            {"name": "二甲双胍缓释片", "dosage": "0.5g", "frequency": "每日两次", "route": "口服"},
            {"name": "阿司匹林", "dosage": "100mg", "frequency": null, "route": null}
        ]),
        "strings stay strings, objects come back with every key, blank entries are dropped"
    );

    // A structured entry without a name is refused naming it; nothing changes.
    let r = app
        .patch(
            &path,
            &app.admin_token,
            json!({"current_medications": ["氨氯地平", "  ", {"dosage": "5mg"}]}),
        )
        .await
        .err(400, "validation_failed");
    assert!(
        r.body["details"]["current_medications[2].name"].is_string(),
        "{}",
        r.body
    );
    let r = app
        .patch(
            &path,
            &app.admin_token,
            json!({"current_medications": [{"name": "药", "route": "口".repeat(101)}]}),
        )
        .await
        .err(400, "validation_failed");
    assert!(
        r.body["details"]["current_medications[0].route"].is_string(),
        "{}",
        r.body
    );
    let r = app
        .patch(&path, &app.admin_token, json!({"current_medications": [42]}))
        .await
        .err(400, "validation_failed");
    assert!(r.body["details"]["current_medications[0]"].is_string(), "{}", r.body);
    let v = app.get(&path, &app.admin_token).await.ok();
    assert_eq!(v.data()["current_medications"].as_array().unwrap().len(), 3);
}

/// The total of `/families?search=…` as the admin reads it.
async fn found(app: &crate::helpers::TestApp, text: &str) -> i64 {
    let q: String = url::form_urlencoded::byte_serialize(text.as_bytes()).collect();
    app.get(&format!("/families?search={q}"), &app.admin_token)
        .await
        .ok()
        .data()["total"]
        .as_i64()
        .unwrap()
}

/// Search runs on grams the projector keeps: it must follow every rename and
/// erasure, match one character, any case of ASCII letters, and find the
/// families a store held before the grams existed.
async fn search_finds_what_the_families_hold_now(b: Backend) {
    let app = spawn_app(b).await;
    let fam = app.family("张家").await;
    let patient = app.patient(&fam, "张三丰").await;
    let other = app.family("Smith").await;
    for (text, n) in [
        ("张三", 1),
        ("张", 1),
        // One character that only ends a text: the last character is kept.
        ("丰", 1),
        ("H", 1),
        ("张家", 1),
        ("张家路", 1),
        ("上海市", 2),
        ("smi", 1),
        ("SMITH", 1),
        ("三丰张", 0),
        ("赵", 0),
        // Digits: the address's house number, and many runs of them.
        ("路1号", 2),
        ("Smith路1号", 1),
        ("1号1号1号1号1号1号1号1号", 0),
    ] {
        assert_eq!(found(&app, text).await, n, "{text}");
    }
    counts_follow_the_grams(app.state.read().await).await;
    app.patch(
        &format!("/families/{fam}"),
        &app.admin_token,
        json!({"family_name": "赵家", "primary_address": "北京市朝阳区"}),
    )
    .await
    .ok();
    app.patch(
        &format!("/patients/{patient}"),
        &app.admin_token,
        json!({"name": "李四"}),
    )
    .await
    .ok();
    for (text, n) in [
        ("张家", 0),
        ("张三", 0),
        ("赵家", 1),
        ("朝阳", 1),
        ("李四", 1),
        ("上海市", 1),
    ] {
        assert_eq!(found(&app, text).await, n, "{text}");
    }
    counts_follow_the_grams(app.state.read().await).await;
    // A second patient whose name shares grams with the household's texts
    // and with the first's: each gram counts the household once.
    app.patient(&fam, "赵家李四").await;
    counts_follow_the_grams(app.state.read().await).await;
    // An erased patient's name leaves the household's grams.
    let erased = app.patient(&fam, "王五").await;
    assert_eq!(found(&app, "王五").await, 1);
    app.post(
        &format!("/patients/{erased}/erase"),
        &app.admin_token,
        json!({"reason": "家属书面申请"}),
    )
    .await
    .ok();
    assert_eq!(found(&app, "王五").await, 0);
    counts_follow_the_grams(app.state.read().await).await;
    // The rows each change left are exactly those its household's texts give
    // now: a rename or an erasure deletes every gram it takes away (`LIKE`
    // would hide a stale one from a search, not from this).
    let read = &app.state.read().await;
    let rows = || async {
        sqlx::query("SELECT gram, created_at, family_id FROM family_grams ORDER BY gram, created_at, family_id")
            .fetch_all(read.pool())
            .await
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r.text("gram").unwrap(),
                    r.text("created_at").unwrap(),
                    r.text("family_id").unwrap(),
                )
            })
            .collect::<Vec<_>>()
    };
    // A text holding a token's marker before a digit: its pair and the
    // digit's token are one gram, one row and one count (a rebuild's load
    // below counted it twice).
    app.post(
        "/families",
        &app.admin_token,
        json!({"family_name": "标\u{E000}5", "primary_address": "北京市\u{E000}5号", "contact_phone": "13912345678"}),
    )
    .await
    .ok();
    counts_follow_the_grams(app.state.read().await).await;
    let live = rows().await;
    assert!(
        !live.iter().any(|(g, _, _)| g == "王五" || g == "张三" || g == "张家"),
        "{live:?}"
    );
    // The number tokens of the address's digits ("上海市Smith路1号"), kept by
    // the projector as the fill below writes them; the renamed household's
    // "1" is gone.
    let ones: Vec<&String> = live
        .iter()
        .filter(|(g, _, _)| g == "\u{E000}1")
        .map(|(_, _, f)| f)
        .collect();
    assert_eq!(ones, vec![&other], "{live:?}");
    // A store that held families before the grams: filled at start-up.
    empty_grams(read).await;
    assert_eq!(found(&app, "李四").await, 0);
    read.fill_family_grams().await.unwrap();
    assert_eq!(rows().await, live);
    counts_follow_the_grams(read).await;
    assert_eq!(found(&app, "李四").await, 1);
    assert_eq!(found(&app, "Smith").await, 1);
    // Gathered a few rows at a time (a server's bounded fill), written in
    // several loads: the same rows as in one.
    let in_one = rows().await;
    empty_grams(read).await;
    read.write_family_grams(3).await.unwrap();
    assert_eq!(rows().await, in_one);
    counts_follow_the_grams(read).await;
    // A rebuild's load (on MySQL two halves of the key side by side): the same.
    empty_grams(read).await;
    read.load_family_grams().await.unwrap();
    assert_eq!(rows().await, in_one);
    counts_follow_the_grams(read).await;
    assert!(in_one.iter().any(|(_, _, f)| *f == fam) && in_one.iter().any(|(_, _, f)| *f == other));
}

/// MySQL compares grams ignoring trailing spaces (`PAD SPACE`), so a
/// household whose texts hold "e " (a character followed by a space) and "e"
/// (the same character ending a text) has two grams that are one key there.
/// Renamed into such texts, its grams are still written, and the read model
/// follows: no duplicate-key failure stops the projection.
async fn a_name_with_spaces_is_searchable_after_a_rename(b: Backend) {
    let app = spawn_app(b).await;
    let fam = app.family("王家").await;
    app.patch(
        &format!("/families/{fam}"),
        &app.admin_token,
        json!({"family_name": "Lee Ann", "primary_address": "上海市 Lee"}),
    )
    .await
    .ok();
    let v = app.get(&format!("/families/{fam}"), &app.admin_token).await.ok();
    assert_eq!(v.data()["family_name"], "Lee Ann");
    for (text, n) in [("Lee Ann", 1), ("ann", 1), ("市 Lee", 1), ("e", 1), ("王家", 0)] {
        assert_eq!(found(&app, text).await, n, "{text}");
    }
    // The next command's change shows too: the projection did not stop.
    app.patch(
        &format!("/families/{fam}"),
        &app.admin_token,
        json!({"family_name": "Lee Bo"}),
    )
    .await
    .ok();
    assert_eq!(found(&app, "Lee Bo").await, 1);
    // "e " alone ("Bee Cat"), then "e" beside it ("北京 Joe"): the rows are
    // what a rebuild's load writes from the same texts (on MySQL, the row
    // "e" for both), not the first one kept.
    for change in [
        json!({"family_name": "Bee Cat", "primary_address": "北京"}),
        json!({"primary_address": "北京 Joe"}),
    ] {
        app.patch(&format!("/families/{fam}"), &app.admin_token, change)
            .await
            .ok();
    }
    assert_eq!(found(&app, "Bee Cat").await, 1);
    let read = &app.state.read().await;
    let rows = || async {
        sqlx::query_scalar::<_, String>("SELECT gram FROM family_grams ORDER BY gram")
            .fetch_all(read.pool())
            .await
            .unwrap()
    };
    let live = rows().await;
    counts_follow_the_grams(read).await;
    empty_grams(read).await;
    read.load_family_grams().await.unwrap();
    assert_eq!(rows().await, live);
    counts_follow_the_grams(read).await;
}

/// Writes households straight into the read table, past the projector:
/// `values` are rows of (id, family_name, primary_address, contact_phone,
/// created_at, updated_at, version).
async fn insert_households(read: &projections::ReadStore, values: &[String]) {
    sqlx::query(&format!(
        "INSERT INTO families (id, family_name, primary_address, contact_phone, created_at, updated_at, version)
         VALUES {}",
        values.join(", ")
    ))
    .execute(read.writer())
    .await
    .unwrap();
}

/// How many households hold `gram`, by the projector's counts.
async fn households_holding(read: &projections::ReadStore, gram: &str) -> i64 {
    sqlx::query_scalar("SELECT households FROM family_gram_counts WHERE gram = ?")
        .bind(gram)
        .fetch_optional(read.pool())
        .await
        .unwrap()
        .unwrap_or(0)
}

const SURNAMES: [&str; 5] = ["王", "李", "张", "刘", "陈"];
const RECORDER_A: &str = "00000000-0000-7000-8000-00000000aaaa";
const RECORDER_B: &str = "00000000-0000-7000-8000-00000000bbbb";
const GIVEN: [&str; 7] = ["建国", "秀英", "桂兰", "志强", "Ann", "德明", "海峰"];

/// The search fodder's household `n`: its id, creation time (two households
/// share each, so the id breaks the tie), name, address and patient, if any,
/// with the recorder it is assigned to.
struct Fodder {
    id: String,
    created_at: String,
    name: String,
    address: String,
    patient: Option<(String, &'static str)>,
}

fn fodder(n: usize) -> Fodder {
    Fodder {
        id: format!("00000000-0000-7000-8000-{n:012}"),
        created_at: format!(
            "2020-01-01T{:02}:{:02}:{:02}.000Z",
            n / 2 / 3600,
            n / 2 / 60 % 60,
            n / 2 % 60
        ),
        name: format!("{}{}家", SURNAMES[n % 5], GIVEN[n % 7]),
        address: format!("上海市{}路{}号", ["徐汇", "静安", "浦东"][n % 3], n / 3),
        patient: n.is_multiple_of(3).then(|| {
            (
                format!("{}{}", SURNAMES[(n + 1) % 5], GIVEN[(n + 2) % 7]),
                [RECORDER_A, RECORDER_B][n % 2],
            )
        }),
    }
}

impl Fodder {
    /// Whether the search `q` matches this household, for `recorder` (their
    /// assigned patient's name only) or an admin (every name).
    fn matches(&self, q: &str, recorder: Option<&str>) -> bool {
        let q = q.to_lowercase();
        let patient = self
            .patient
            .as_ref()
            .filter(|(_, r)| recorder.is_none_or(|me| me == *r))
            .map(|(name, _)| name.as_str());
        [Some(self.name.as_str()), Some(self.address.as_str()), patient]
            .into_iter()
            .flatten()
            .any(|t| t.to_lowercase().contains(&q))
    }
}

dual!(
    every_search_start_finds_the_same_households_newest_first,
    a_common_pairs_total_is_estimated_from_the_share_of_its_walk_that_matched
);

/// A search whose rarest pair more than the cap hold walks as far as its
/// page: past it, the total is the share of matches among the households
/// walked, applied to every household holding the pair (`total_exact:
/// false`); a page reaching the last match counts them all. A common
/// character's scan of every household does the same over all of them.
async fn a_common_pairs_total_is_estimated_from_the_share_of_its_walk_that_matched(b: Backend) {
    use projections::families::Start;
    use projections::PageParams;

    let app = spawn_app(b).await;
    let read = &app.state.read().await;
    // 600 households, ten created at each instant (as in one batch): the even
    // ones 赵志远家, the odd ones 钱志远家.
    let households: Vec<String> = (0..600)
        .map(|n| {
            let second = n / 10;
            format!(
                "('00000000-0000-7000-8000-{n:012}', '{}志远家', '北京市', '13900000000', '{at}', '{at}', 1)",
                if n % 2 == 0 { "赵" } else { "钱" },
                at = format!("2021-01-01T00:{:02}:{:02}.000000Z", second / 60, second % 60)
            )
        })
        .collect();
    insert_households(read, &households).await;
    read.fill_family_grams().await.unwrap();
    sqlx::query("UPDATE family_totals SET families = families + 600 WHERE id = 1")
        .execute(read.writer())
        .await
        .unwrap();
    assert_eq!(households_holding(read, "赵志").await, 300);
    assert_eq!(households_holding(read, "志远").await, 600);

    let search = |q: &str, page: u32| {
        let q: String = url::form_urlencoded::byte_serialize(q.as_bytes()).collect();
        format!("/families?search={q}&page={page}&limit=20")
    };
    // Every household holding the drive pair matches: the estimate is the count.
    for (q, n) in [("赵志远", 300), ("钱志远", 300), ("志远", 600)] {
        let v = app.get(&search(q, 1), &app.admin_token).await.ok();
        assert_eq!(v.data()["families"].as_array().unwrap().len(), 20, "{q}");
        assert_eq!(
            (v.data()["total"].as_i64(), v.data()["total_exact"].as_bool()),
            (Some(n), Some(false)),
            "{q}"
        );
    }
    // The page that reaches the last match, and the one after it: counted.
    for page in [15, 16] {
        let v = app.get(&search("赵志远", page), &app.admin_token).await.ok();
        assert_eq!(
            (v.data()["total"].as_i64(), v.data()["total_exact"].as_bool()),
            (Some(300), Some(true)),
            "page {page}"
        );
    }
    // Walked from the pair all 600 hold, every other one matches: 21 matches
    // among the newest 42 (599, the newest, is 钱; ties broken by the id), so
    // 600 × 21 / 42.
    let start = Start::Walk {
        drive: "志远".into(),
        others: vec!["赵志".into()],
        households: Some(600),
    };
    let today = chrono::Utc::now().date_naive();
    // (households shown, total, whether exact) of page `page` of 20 from `start`.
    let from = |q: &'static str, start: Start, page: u32| async move {
        let got = read
            .families()
            .list_from(None, Some(q), Some(&start), today, PageParams { page, limit: 20 })
            .await
            .unwrap();
        (got.items.len(), got.total, got.total_exact)
    };
    assert_eq!(from("赵志远", start, 1).await, (20, 300, false));
    // A common character scans every household newest first: the same share
    // of the 600.
    assert_eq!(from("赵", Start::Scan('赵'), 1).await, (20, 300, false));
    assert_eq!(from("赵", Start::Scan('赵'), 15).await, (20, 300, true));
}

/// An admin's search starts where the counts of its grams say is cheapest:
/// the rarest pair walked in the list's order, a character's holders
/// gathered, or every household scanned for it. Each start must give the
/// same page as `LIKE` over every household, on every page, and the same
/// total up to the cap (marked as a lower bound past it), or, walking a pair
/// more than the cap hold or scanning for a common character, up to the page
/// (past it an estimate, marked inexact, between the matches found and the
/// households holding the pair, or all); a recorder's search sees only their
/// households and assigned patients.
async fn every_search_start_finds_the_same_households_newest_first(b: Backend) {
    use projections::families::{or_number, Candidates, Start, SEARCH_TOTAL_CAP};
    use projections::PageParams;

    let app = spawn_app(b).await;
    let read = &app.state.read().await;
    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .date_naive();
    // 1,250 households written straight into the read tables, then their
    // grams filled as at start-up.
    let all: Vec<Fodder> = (0..1_250).map(fodder).collect();
    for chunk in all.chunks(250) {
        let families: Vec<String> = chunk
            .iter()
            .map(|f| {
                format!(
                    "('{}', '{}', '{}', '13900000000', '{}', '{}', 1)",
                    f.id, f.name, f.address, f.created_at, f.created_at
                )
            })
            .collect();
        insert_households(read, &families).await;
        for f in chunk {
            let Some((name, recorder)) = &f.patient else { continue };
            let patient = f.id.replacen("7000", "7001", 1);
            sqlx::query(
                "INSERT INTO patients (id, family_id, name, gender, birth_date, relationship_to_head,
                    medical_history, current_medications, created_at, updated_at, version)
                 VALUES (?, ?, ?, 'female', '1950-01-01', '本人', '[]', '[]', ?, ?, 1)",
            )
            .bind(&patient)
            .bind(&f.id)
            .bind(name)
            .bind(&f.created_at)
            .bind(&f.created_at)
            .execute(read.writer())
            .await
            .unwrap();
            for sql in [
                "INSERT INTO subscriptions (id, patient_id, package_id, recorder_id, start_date, end_date, status,
                    payment_status, created_at, updated_at, version)
                 VALUES (?, ?, 'search-package', ?, '2020-01-01', '2099-12-31', 'active', 'paid', ?, ?, 1)",
                "INSERT INTO recorder_families (subscription_id, patient_id, recorder_id, start_date, end_date,
                    status, family_id, family_created_at)
                 VALUES (?, ?, ?, '2020-01-01', '2099-12-31', 'active', ?, ?)",
            ] {
                sqlx::query(sql)
                    .bind(f.id.replacen("7000", "7002", 1))
                    .bind(&patient)
                    .bind(*recorder)
                    .bind(if sql.contains("recorder_families") {
                        &f.id
                    } else {
                        &f.created_at
                    })
                    .bind(&f.created_at)
                    .execute(read.writer())
                    .await
                    .unwrap();
            }
        }
    }
    read.fill_family_grams().await.unwrap();
    // Written past the projector: its counter of households set by hand.
    sqlx::query("UPDATE family_totals SET families = families + 1250 WHERE id = 1")
        .execute(read.writer())
        .await
        .unwrap();

    // The households `q` matches, newest first (ties: the larger id first).
    let expected = |q: &str, recorder: Option<&str>| {
        let mut ids: Vec<(&str, &str)> = all
            .iter()
            .filter(|f| f.matches(q, recorder))
            .filter(|f| recorder.is_none_or(|me| f.patient.as_ref().is_some_and(|(_, r)| *r == me)))
            .map(|f| (f.created_at.as_str(), f.id.as_str()))
            .collect();
        ids.sort_unstable_by(|a, b| b.cmp(a));
        ids.into_iter().map(|(_, id)| id.to_string()).collect::<Vec<_>>()
    };
    let pages = [(1, 20), (2, 20), (3, 100), (12, 100), (60, 20), (70, 20)];
    let (mut capped, mut estimated) = (0, 0);
    for q in [
        "王建国",
        "建国",
        "秀英王",
        "ann",
        "徐汇",
        "海峰家",
        "王",
        "家",
        "a",
        "强",
        "无此人",
        "路12号",
        "12号",
        "112",
        "路41",
        "汇路10",
        "2号",
        "路999号",
    ] {
        let candidates = Candidates::of(q).unwrap();
        let mut starts = vec![None];
        // How many households hold each pair, by the projector's counts.
        let mut held = Vec::new();
        match &candidates {
            Candidates::Pairs(pairs) => {
                for pair in pairs {
                    held.push(households_holding(read, pair).await);
                }
                for (i, households) in held.iter().enumerate() {
                    let mut others = pairs.clone();
                    let drive = others.remove(i);
                    // Not counted: the total is counted to the cap.
                    if i == 0 {
                        starts.push(Some(Start::Walk {
                            drive: drive.clone(),
                            others: others.clone(),
                            households: None,
                        }));
                    }
                    starts.push(Some(Start::Walk {
                        drive,
                        others,
                        households: Some(*households),
                    }));
                }
            }
            Candidates::Starting(c) => {
                starts.push(Some(Start::Gather(*c)));
                starts.push(Some(Start::Scan(*c)));
            }
        }
        // Its digits' number tokens, and how many households hold them.
        let mut numbers = Vec::new();
        for ranges in projections::numbers::ranges(q) {
            let mut n = 0;
            for [from, to] in &ranges {
                let sum = match read.dialect() {
                    projections::Dialect::MySql => "CAST(COALESCE(SUM(households), 0) AS SIGNED)",
                    projections::Dialect::Sqlite => "COALESCE(SUM(households), 0)",
                };
                let held: i64 = sqlx::query_scalar(&format!(
                    "SELECT {sum} FROM family_gram_counts WHERE gram >= ? AND gram <= ?"
                ))
                .bind(from)
                .bind(to)
                .fetch_one(read.pool())
                .await
                .unwrap();
                n += held;
            }
            starts.push(Some(Start::Number(ranges.clone())));
            numbers.push((ranges, n));
        }
        // A house number's pairs are all common: the list starts from its token.
        if q == "路12号" {
            let taken = or_number(candidates.clone().start(&held), numbers.clone());
            assert!(matches!(taken, Start::Number(_)), "{q}: {taken:?}");
        }
        let want = expected(q, None);
        for start in &starts {
            for (page, limit) in pages {
                let params = PageParams { page, limit };
                let got = match start {
                    None => read.families().list(None, Some(q), today, params).await,
                    Some(s) => read.families().list_from(None, Some(q), Some(s), today, params).await,
                }
                .unwrap();
                let from = ((page - 1) * limit) as usize;
                let ids: Vec<String> = got.items.iter().map(|i| i.id.to_string()).collect();
                let want_page: Vec<String> = want.iter().skip(from).take(limit as usize).cloned().collect();
                assert_eq!(ids, want_page, "{q} from {start:?}, page {page} of {limit}");
                let page_end = i64::from(page * limit);
                let n = want.len() as i64;
                // The start the list takes by itself: from the counts.
                let taken = start
                    .clone()
                    .unwrap_or_else(|| or_number(candidates.clone().start(&held), numbers.clone()));
                let over = match taken {
                    Start::Walk {
                        households: Some(h), ..
                    } if h > SEARCH_TOTAL_CAP => Some(h),
                    Start::Scan(_) => Some(all.len() as i64),
                    _ => None,
                };
                match over {
                    // A pair more than the cap hold, or a common character:
                    // the walk stops after the page, and a total past it is
                    // estimated, between the matches found and the
                    // households holding the pair (or all of them).
                    Some(h) => {
                        if n <= page_end {
                            assert_eq!(
                                (got.total, got.total_exact),
                                (n, true),
                                "{q} from {start:?}, page {page}"
                            );
                        } else {
                            assert!(
                                !got.total_exact && got.total > page_end && got.total <= h,
                                "{q} from {start:?}, page {page} of {limit}: {} of {n}, {h} holding the pair",
                                got.total
                            );
                            estimated += 1;
                        }
                    }
                    None => {
                        let cap = SEARCH_TOTAL_CAP.max(page_end);
                        assert_eq!(
                            (got.total, got.total_exact),
                            (n.min(cap), n <= cap),
                            "{q} from {start:?}, page {page} of {limit}"
                        );
                        capped += usize::from(!got.total_exact);
                    }
                }
            }
        }
        for recorder in [RECORDER_A, RECORDER_B] {
            let want = expected(q, Some(recorder));
            let params = PageParams { page: 1, limit: 100 };
            let got = read
                .families()
                .list(Some(recorder.parse().unwrap()), Some(q), today, params)
                .await
                .unwrap();
            let ids: Vec<String> = got.items.iter().map(|i| i.id.to_string()).collect();
            assert_eq!(
                ids,
                want.iter().take(100).cloned().collect::<Vec<_>>(),
                "{q} for {recorder}"
            );
            assert_eq!(
                (got.total, got.total_exact),
                (want.len() as i64, true),
                "{q} for {recorder}"
            );
        }
    }
    assert!(capped > 0, "no search matched more than the cap");
    assert!(estimated > 0, "no search estimated its total");

    // Over HTTP: the flag is in the page.
    let v = app
        .get("/families?search=%E5%AE%B6&limit=5", &app.admin_token)
        .await
        .ok();
    assert_eq!(v.data()["total"], SEARCH_TOTAL_CAP);
    assert_eq!(v.data()["total_exact"], false);
    let v = app
        .get("/families?search=%E7%8E%8B%E5%BB%BA%E5%9B%BD", &app.admin_token)
        .await
        .ok();
    assert_eq!(v.data()["total_exact"], true);
    assert_eq!(v.data()["total"], expected("王建国", None).len());
}

/// The newest record by visit date and time, whatever order the records
/// were written in; a patient without records shows none.
async fn a_familys_detail_shows_each_patients_newest_record(b: Backend) {
    let app = spawn_app(b).await;
    let (r1, t1) = app.recorder(1).await;
    let package = app.package().await;
    let fam = app.family("赵家").await;
    let p1 = app.patient(&fam, "赵奶奶").await;
    let p2 = app.patient(&fam, "赵爷爷").await;
    app.subscribe(&p1, &package, &r1).await;
    app.subscribe(&p2, &package, &r1).await;
    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .date_naive();
    let day = |n: i64| (today - chrono::Duration::days(n)).to_string();
    for (date, time, notes, bp) in [
        (day(2), "10:00", "两天前上午", "120/80"),
        (day(1), "08:00", "昨天早上", "165/100"),
        (day(2), "16:00", "两天前下午", "120/80"),
        (day(1), "07:30", "昨天更早", "120/80"),
    ] {
        app.post(
            "/health-records",
            &t1,
            json!({"patient_id": p1, "visit_date": date, "visit_time": time, "notes": notes,
                   "vital_signs": {"blood_pressure": bp}}),
        )
        .await
        .ok();
    }
    let d = app.get(&format!("/families/{fam}"), &t1).await.ok();
    let patients = d.data()["patients"].as_array().unwrap().clone();
    assert_eq!(patients.len(), 2, "{}", d.body);
    let grandma = patients.iter().find(|p| p["id"] == p1.as_str()).unwrap();
    let last = &grandma["last_record"];
    assert_eq!(last["date"], day(1), "{}", d.body);
    assert_eq!(last["time"], "08:00");
    assert_eq!(last["notes"], "昨天早上");
    assert_eq!(last["abnormal"], true);
    assert!(last["id"].is_string());
    let grandpa = patients.iter().find(|p| p["id"] == p2.as_str()).unwrap();
    assert!(grandpa["last_record"].is_null(), "{}", d.body);
}

dual!(a_recorders_list_pages_their_households_newest_first_with_their_counts);
/// A recorder's list is grouped from their assignments in memory (one range
/// of `recorder_families_list`): households newest first, each counted once
/// however many of its patients and subscriptions are theirs, paged with the
/// total of households.
async fn a_recorders_list_pages_their_households_newest_first_with_their_counts(b: Backend) {
    let app = spawn_app(b).await;
    let package = app.package().await;
    let (rid, token) = app.recorder(1).await;
    let (other, _) = app.recorder(2).await;
    let oldest = app.family("一号家").await;
    let p1 = app.patient(&oldest, "一号甲").await;
    let p2 = app.patient(&oldest, "一号乙").await;
    let p3 = app.patient(&oldest, "一号丙").await;
    app.subscribe(&p1, &package, &rid).await;
    app.subscribe(&p2, &package, &rid).await;
    // Another recorder's patient of the same household is not counted.
    app.subscribe(&p3, &package, &other).await;
    let middle = app.family("二号家").await;
    let p4 = app.patient(&middle, "二号甲").await;
    app.subscribe(&p4, &package, &rid).await;
    // A household of another recorder only is not listed.
    let theirs = app.family("三号家").await;
    let p5 = app.patient(&theirs, "三号甲").await;
    app.subscribe(&p5, &package, &other).await;
    let newest = app.family("四号家").await;
    let p6 = app.patient(&newest, "四号甲").await;
    app.subscribe(&p6, &package, &rid).await;

    let first = app.get("/families?limit=2", &token).await.ok();
    let d = first.data();
    assert_eq!(d["total"], 3, "{}", first.body);
    let ids: Vec<&str> = d["families"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![newest.as_str(), middle.as_str()], "{}", first.body);
    let second = app.get("/families?limit=2&page=2", &token).await.ok();
    let d = second.data();
    assert_eq!(d["total"], 3, "{}", second.body);
    let f = &d["families"][0];
    assert_eq!(d["families"].as_array().unwrap().len(), 1, "{}", second.body);
    assert_eq!(f["id"], oldest.as_str());
    assert_eq!(f["family_name"], "一号家");
    assert_eq!(f["patient_count"], 2, "{}", second.body);
    assert_eq!(f["active_subscriptions"], 2, "{}", second.body);
    let past = app.get("/families?limit=2&page=3", &token).await.ok();
    assert_eq!(past.data()["total"], 3, "{}", past.body);
    assert!(past.data()["families"].as_array().unwrap().is_empty());
}

/// Empties the search grams, as a store that predates them has them.
async fn empty_grams(read: &projections::ReadStore) {
    for table in ["family_grams", "family_gram_counts"] {
        sqlx::query(&format!("DELETE FROM {table}"))
            .execute(read.writer())
            .await
            .unwrap();
    }
}

/// `family_gram_counts` holds, for each gram, how many households hold it:
/// exactly the rows of `family_grams`, gram by gram (on MySQL, where "e "
/// and "e" are one key, as one), and no gram no household holds.
async fn counts_follow_the_grams(read: &projections::ReadStore) {
    let mysql = read.dialect() == projections::Dialect::MySql;
    let read_pairs = |sql: &'static str| async move {
        let mut rows: Vec<(String, i64)> = sqlx::query(sql)
            .fetch_all(read.pool())
            .await
            .unwrap()
            .iter()
            .map(|r| {
                let gram = r.text("gram").unwrap();
                let gram = if mysql {
                    gram.trim_end_matches(' ').to_string()
                } else {
                    gram
                };
                (gram, r.int("n").unwrap())
            })
            .collect();
        rows.sort();
        rows
    };
    let counted = read_pairs("SELECT gram, households AS n FROM family_gram_counts").await;
    let held = read_pairs("SELECT gram, COUNT(*) AS n FROM family_grams GROUP BY gram").await;
    assert_eq!(counted, held);
    assert!(!counted.is_empty());
}

/// The lists count a household's subscriptions that are active today: not
/// one paused or cancelled, not one that starts later; an admin counts every
/// recorder's, a recorder only their own.
async fn a_households_subscriptions_count_while_active_today(b: Backend) {
    let app = spawn_app(b).await;
    let (r1, t1) = app.recorder(1).await;
    let (r2, t2) = app.recorder(2).await;
    let package = app.package().await;
    let fam = app.family("周家").await;
    let newer = app.family("吴家").await;
    let p1 = app.patient(&fam, "周奶奶").await;
    let p2 = app.patient(&fam, "周爷爷").await;
    let p3 = app.patient(&fam, "周阿姨").await;
    let p4 = app.patient(&newer, "吴大爷").await;
    let s1 = app.subscribe(&p1, &package, &r1).await;
    let s2 = app.subscribe(&p2, &package, &r2).await;
    app.subscribe(&p4, &package, &r1).await;
    let later = (today() + chrono::Duration::days(10)).to_string();
    app.post(
        "/subscriptions",
        &app.admin_token,
        json!({"patient_id": p3, "package_id": package, "recorder_id": r1, "start_date": later}),
    )
    .await
    .ok();

    counts(&app, &fam, [&t1, &t2], [2, 2, 1, 1]).await;
    let l = app.get("/families", &app.admin_token).await.ok();
    let other = &l.data()["families"][0];
    assert_eq!(other["id"], newer.as_str(), "{}", l.body);
    assert_eq!(other["active_subscriptions"], 1, "{}", l.body);

    for (sub, status, expected) in [
        (&s1, "paused", [1, 1, 0, 1]),
        (&s1, "active", [2, 2, 1, 1]),
        (&s2, "cancelled", [1, 1, 1, 0]),
    ] {
        let path = format!("/subscriptions/{sub}/status");
        app.post(&path, &app.admin_token, json!({ "status": status }))
            .await
            .ok();
        counts(&app, &fam, [&t1, &t2], expected).await;
    }
}

/// The household `fam`'s active subscriptions as listed to: the admin, the
/// admin searching its name, and each of two recorders searching it (0 when
/// not listed).
async fn counts(app: &crate::helpers::TestApp, fam: &str, recorders: [&str; 2], expected: [i64; 4]) {
    let search = "/families?search=%E5%91%A8%E5%AE%B6"; // 周家
    let asked = [
        ("/families", app.admin_token.as_str()),
        (search, app.admin_token.as_str()),
        (search, recorders[0]),
        (search, recorders[1]),
    ];
    for (i, (path, token)) in asked.into_iter().enumerate() {
        let l = app.get(path, token).await.ok();
        let got = l.data()["families"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["id"] == fam)
            .map(|f| f["active_subscriptions"].as_i64().unwrap())
            .unwrap_or(0);
        assert_eq!(got, expected[i], "{path} ({i}): {}", l.body);
    }
}
