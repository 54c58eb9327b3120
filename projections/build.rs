//! Rebuilds the crate when a read-store migration is added or changed:
//! `sqlx::migrate!` embeds them, and cargo does not watch them by itself.

fn main() {
    println!("cargo:rerun-if-changed=../migrations/read");
}
