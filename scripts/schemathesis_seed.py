#!/usr/bin/env python3
"""Seeds a fresh carelog server for scripts/schemathesis.sh.

Waits for the server, logs in as the admin that the script created (one session
per schemathesis run, so a run that revokes its own session cannot end another
run's), logs in staff of every role, and creates a little of everything through
the API: a package, staff, a household with a patient and a subscription,
visits, health records with files, order requests, a medical order, a hospital
with departments, doctors and slots, and a booking. Lists and reads then answer
real rows, so their schemas are checked against real data, and schemathesis can
reuse the ids it sees in responses.

Usage: schemathesis_seed.py BASE_URL ADMIN_USERNAME ADMIN_PASSWORD OUT_DIR
Writes OUT_DIR/token-<name> for each session (admin, admin-destructive,
recorder, doctor, auditor) and OUT_DIR/schemathesis.toml: dictionaries of the
seeded ids, bound (with a probability, so random values are still sent) to the
path, query and body parameters that name such resources. Without them nearly
every operation on one resource would only ever answer 404. Standard library
only; exits non-zero with a message naming the step that failed.
"""

import datetime
import json
import struct
import sys
import time
import urllib.error
import urllib.request
import uuid
import zlib

BASE, ADMIN, ADMIN_PASSWORD, OUT = sys.argv[1:5]
PASSWORD = "Seed-pass-2024"


def fail(step, detail):
    print(f"schemathesis_seed.py: {step}: {detail}", file=sys.stderr)
    sys.exit(1)


def request(step, method, path, token=None, body=None, content_type="application/json", expect=(200, 201)):
    headers = {}
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers["Content-Type"] = content_type
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(BASE + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            status, text = r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode(errors="replace")
    except OSError as e:
        fail(step, f"{method} {path}: {e}")
    if status not in expect:
        fail(step, f"{method} {path} answered {status}: {text[:500]}")
    return json.loads(text).get("data") if text else None


def wait_for_server():
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(BASE + "/health", timeout=5) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            fail("start", "the server did not answer /health within 90 s")
        time.sleep(0.5)


def login(step, username, password):
    return request(step, "POST", "/api/v1/auth/login", body={"username": username, "password": password})[
        "access_token"
    ]


def png(width=4, height=4):
    """A small valid PNG (so uploads are sniffed and thumbnailed for real)."""

    def chunk(kind, payload):
        c = kind + payload
        return struct.pack(">I", len(payload)) + c + struct.pack(">I", zlib.crc32(c) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + b"\x80\x20\x20" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def wav():
    """A short silent WAV file."""
    samples = b"\x00\x00" * 800
    fmt = struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(samples)) + samples
    return b"RIFF" + struct.pack("<I", len(body)) + body


PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def upload(token, kind, name, content):
    boundary = uuid.uuid4().hex
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="type"\r\n\r\n{kind}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        f"Content-Type: application/octet-stream\r\n\r\n"
    ).encode() + content + f"\r\n--{boundary}--\r\n".encode()
    return request(
        "upload", "POST", "/api/v1/files/upload", token, body, content_type=f"multipart/form-data; boundary={boundary}"
    )["file_id"]


def toml_string(value):
    return json.dumps(value, ensure_ascii=False)


def write_config(ids):
    """schemathesis.toml: the seeded ids as dictionaries, bound to parameters."""
    lines = ["# Written by scripts/schemathesis_seed.py for one run; not checked in.", ""]
    for name, values in sorted(ids.items()):
        values = [v for v in values if v]
        if values:
            lines += [f"[dictionaries.{name}]", "values = [" + ", ".join(toml_string(v) for v in values) + "]", ""]

    def bind(key, dictionary, probability=0.6):
        return f"{toml_string(key)} = {{ dictionary = {toml_string(dictionary)}, probability = {probability} }}"

    lines.append("[parameters]")
    for key, dictionary in [
        ("body.patient_id", "patients"),
        ("query.patient_id", "patients"),
        ("body.package_id", "packages"),
        ("body.recorder_id", "recorders"),
        ("body.hospital_id", "hospitals"),
        ("body.department_id", "departments"),
        ("query.department_id", "departments"),
        ("body.doctor_id", "doctors"),
        ("body.appointment_id", "appointments"),
        ("body.request_id", "order_requests"),
        ("body.health_record_id", "health_records"),
        ("query.slot_id", "slots"),
        ("query.actor", "users"),
        ("query.aggregate_id", "everything"),
    ]:
        lines.append(bind(key, dictionary, 0.5))
    lines.append("")
    # `{id}` names another resource on each path.
    for regex, params in [
        (r"^/api/v1/(users|recorders|doctors)/[{]id[}]", {"path.id": "users"}),
        (r"^/api/v1/families/[{]id[}]", {"path.id": "families"}),
        (r"^/api/v1/patients/[{]id[}]", {"path.id": "patients"}),
        (r"^/api/v1/subscriptions/[{]id[}]", {"path.id": "subscriptions"}),
        (r"^/api/v1/appointments/[{]id[}]", {"path.id": "appointments"}),
        (r"^/api/v1/health-records/[{]id[}]", {"path.id": "health_records"}),
        (r"^/api/v1/order-requests/[{]id[}]", {"path.id": "order_requests"}),
        (r"^/api/v1/medical-orders/[{]id[}]", {"path.id": "medical_orders"}),
        (r"^/api/v1/notifications/[{]id[}]", {"path.id": "notifications"}),
        (r"^/api/v1/files/[{]id[}]", {"path.id": "files"}),
        (r"^/api/v1/hospital-appointments/[{]id[}]", {"path.id": "bookings"}),
        (r"^/api/v1/hospitals/[{]id[}]", {"path.id": "hospitals", "path.dep": "departments", "path.doc": "hospital_doctors"}),
        (r"^/api/v1/audit/", {"path.aggregate_type": "aggregate_types", "path.id": "everything"}),
    ]:
        bindings = ", ".join(bind(k, v, 0.5) for k, v in params.items())
        lines += ["[[operations]]", f"include-path-regex = '{regex}'", f"parameters = {{ {bindings} }}", ""]
    with open(f"{OUT}/schemathesis.toml", "w") as f:
        f.write("\n".join(lines))


def staff(admin, role, n, profile):
    body = {
        "username": f"seed_{role}_{n}",
        "phone": f"139{n:08d}",
        "password": PASSWORD,
        "role": role,
        "name": f"种子{role}{n}",
    }
    body.update(profile)
    return request(f"create {role}", "POST", "/api/v1/users", admin, body)["id"]


def main():
    wait_for_server()
    admin = login("admin login", ADMIN, ADMIN_PASSWORD)
    # A second session of the same admin for the operations that end sessions.
    destructive = login("admin login", ADMIN, ADMIN_PASSWORD)

    today = datetime.date.today()
    tomorrow = (today + datetime.timedelta(days=1)).isoformat()

    ids = {}

    def keep(kind, value):
        ids.setdefault(kind, []).append(value)
        return value

    package = request(
        "package",
        "POST",
        "/api/v1/service-packages",
        admin,
        {"name": "基础套餐", "price": "199.00", "duration_days": 90, "service_frequency": 20, "service_items": ["血压"]},
    )["id"]
    keep("packages", package)
    recorder = staff(admin, "recorder", 1, {"recorder": {"employee_id": "E-001", "cert_expiry_date": "2099-12-31"}})
    keep("recorders", recorder)
    keep("recorders", staff(admin, "recorder", 2, {"recorder": {"employee_id": "E-002"}}))
    keep(
        "doctors", staff(admin, "doctor", 3, {"doctor": {"license_number": "L-001", "specialty": "全科", "consultation_fee": 30}})
    )
    auditor_id = staff(admin, "auditor", 4, {})
    # Not the admin: resetting its password would end the destructive run's session.
    ids["users"] = ids["recorders"] + ids["doctors"] + [auditor_id]

    family = request(
        "family",
        "POST",
        "/api/v1/families",
        admin,
        {
            "family_name": "张家",
            "primary_address": "上海市浦东新区1号",
            "contact_phone": "13912345678",
            "home_lat": 31.2,
            "home_lng": 121.5,
        },
    )["id"]
    keep("families", family)
    patients = []
    for name, gender, birth in [("张三", "male", "1950-03-01"), ("李四", "female", "1948-07-15")]:
        patients.append(
            request(
                "patient",
                "POST",
                f"/api/v1/families/{family}/patients",
                admin,
                {
                    "name": name,
                    "gender": gender,
                    "birth_date": birth,
                    "relationship_to_head": "本人",
                    "medical_history": ["高血压"],
                    "current_medications": ["氨氯地平"],
                    "service_preferences": {"time": "morning"},
                },
            )["id"]
        )
    ids["patients"] = patients
    for patient in patients:
        sub = request(
            "subscription",
            "POST",
            "/api/v1/subscriptions",
            admin,
            {"patient_id": patient, "package_id": package, "recorder_id": recorder, "start_date": today.isoformat()},
        )
        keep("subscriptions", sub["id"])

    hospital = request(
        "hospital", "POST", "/api/v1/hospitals", admin, {"name": "第一人民医院", "address": "上海市1号", "level": "三级甲等"}
    )["id"]
    keep("hospitals", hospital)
    department = request(
        "department", "POST", f"/api/v1/hospitals/{hospital}/departments", admin, {"name": "心内科"}
    )["id"]
    keep("departments", department)
    keep(
        "departments",
        request("department", "POST", f"/api/v1/hospitals/{hospital}/departments", admin, {"name": "内分泌科"})["id"],
    )
    hospital_doctor = request(
        "hospital doctor",
        "POST",
        f"/api/v1/hospitals/{hospital}/doctors",
        admin,
        {"department_id": department, "name": "王医生", "title": "主任医师", "consultation_fee": "50.00"},
    )["id"]
    keep("hospital_doctors", hospital_doctor)
    keep("doctors", hospital_doctor)
    slot = request(
        "slot",
        "POST",
        f"/api/v1/hospitals/{hospital}/slots",
        admin,
        {"department_id": department, "doctor_id": hospital_doctor, "date": tomorrow, "time": "09:00", "capacity": 5},
    )
    keep("slots", slot["id"])

    rec = login("recorder login", "seed_recorder_1", PASSWORD)
    doc = login("doctor login", "seed_doctor_3", PASSWORD)
    auditor = login("auditor login", "seed_auditor_4", PASSWORD)
    visit = request(
        "visit",
        "POST",
        "/api/v1/appointments",
        rec,
        {"patient_id": patients[0], "scheduled_date": tomorrow, "scheduled_time": "10:00", "notes": "带血压计"},
    )["id"]
    keep("appointments", visit)
    request("confirm visit", "POST", f"/api/v1/appointments/{visit}/confirm", rec)
    second_visit = request(
        "visit",
        "POST",
        "/api/v1/appointments",
        rec,
        {"patient_id": patients[1], "scheduled_date": tomorrow, "scheduled_time": "14:00", "appointment_type": "makeup"},
    )["id"]
    keep("appointments", second_visit)
    photo = keep("files", upload(rec, "image", "photo.png", png()))
    keep("files", upload(rec, "image", "wide.png", png(12, 3)))
    keep("files", upload(rec, "audio", "note.wav", wav()))
    keep("files", upload(admin, "document", "consent.pdf", PDF))
    now = datetime.datetime.now().strftime("%H:%M")
    record = request(
        "health record",
        "POST",
        "/api/v1/health-records",
        rec,
        {
            "patient_id": patients[0],
            "visit_date": today.isoformat(),
            "visit_time": now,
            "location_lat": 31.2001,
            "location_lng": 121.5001,
            "vital_signs": {"blood_pressure": "185/125", "heart_rate": 88, "temperature": 36.8, "blood_oxygen": 97},
            "symptoms": "头晕",
            "notes": "建议复查",
            "photos": [photo],
        },
    )
    keep("order_requests", record["order_request_id"])
    record = keep("health_records", record["record_id"])
    second_record = request(
        "health record",
        "POST",
        "/api/v1/health-records",
        rec,
        {"patient_id": patients[1], "visit_date": today.isoformat(), "visit_time": now, "vital_signs": {"weight": 55.5}},
    )
    keep("health_records", second_record["record_id"])
    request(
        "amendment",
        "POST",
        f"/api/v1/health-records/{record}/amendments",
        rec,
        {"reason_code": "typo", "changes": {"notes": "建议一周后复查"}},
    )
    keep(
        "order_requests",
        request("order request", "POST", f"/api/v1/health-records/{record}/order-requests", rec, {"reason": "血压偏高"})["id"],
    )
    order = request(
        "medical order",
        "POST",
        "/api/v1/medical-orders",
        doc,
        {"patient_id": patients[0], "health_record_id": record, "order_type": "medication", "content": "氨氯地平 5mg", "frequency": "每日一次"},
    )
    keep("medical_orders", order["id"])
    booking = request(
        "booking",
        "POST",
        "/api/v1/hospital-appointments",
        rec,
        {
            "patient_id": patients[0],
            "hospital_id": hospital,
            "department_id": department,
            "appointment_date": tomorrow,
            "appointment_time": "09:00",
        },
    )
    keep("bookings", booking["appointment_id"])
    for token in (rec, doc, admin):
        for n in request("notifications", "GET", "/api/v1/notifications?limit=100", token)["notifications"]:
            keep("notifications", n["id"])
    ids["aggregate_types"] = [
        "user", "service_package", "family", "patient", "subscription", "appointment", "file", "health_record",
        "order_request", "medical_order", "inbox", "hospital", "hospital_slot", "hospital_appointment",
    ]
    ids["everything"] = sorted({v for k, vs in ids.items() if k != "aggregate_types" for v in vs if v})
    write_config(ids)

    for name, token in [
        ("admin", admin),
        ("admin-destructive", destructive),
        ("recorder", rec),
        ("doctor", doc),
        ("auditor", auditor),
    ]:
        with open(f"{OUT}/token-{name}", "w") as f:
            f.write(token)
    print(f"schemathesis_seed.py: seeded {len(patients)} patients, visits, records, orders and a hospital booking")


main()
