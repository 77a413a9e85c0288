// `sqlx::migrate!` embeds the migrations at compile time: rebuild when one is added, removed
// or changed. A folder's own change time moves only when an entry is added or removed, so
// each file is named as well.
fn main() {
    for engine in ["sqlite", "postgres"] {
        let dir = format!("../../migrations/{engine}");
        println!("cargo:rerun-if-changed={dir}");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            println!("cargo:rerun-if-changed={}", entry.path().display());
        }
    }
}
