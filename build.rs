//! Rebuilds the crate when an event-store migration is added or changed:
//! `sqlx::migrate!` embeds them, and cargo does not watch them by itself.

fn main() {
    println!("cargo:rerun-if-changed=migrations/events");
}
