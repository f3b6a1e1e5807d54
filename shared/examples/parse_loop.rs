//! A fixed workload for instruction-level profiling of the vertical parsers (repeatable under load):
//!
//! ```text
//! CARGO_PROFILE_RELEASE_STRIP=none CARGO_PROFILE_RELEASE_DEBUG=1 cargo build --release -p leadhub --example parse_loop
//! valgrind --tool=callgrind target/release/examples/parse_loop solar          # leadhub's parse
//! valgrind --tool=callgrind target/release/examples/parse_loop solar plain    # serde_json alone
//! callgrind_annotate --inclusive=yes callgrind.out.<pid> | head -60
//! ```

use leadhub::verticals::Vertical;

fn main() {
    let mut args = std::env::args().skip(1);
    let vertical: Vertical = match args.next().unwrap_or_else(|| "real-estate".into()).parse() {
        Ok(vertical) => vertical,
        Err(error) => return eprintln!("{error}"),
    };
    let plain = args.next().as_deref() == Some("plain");
    let body = serde_json::to_vec(&vertical.example()).unwrap_or_default();
    for _ in 0..2000 {
        if plain {
            let _ = std::hint::black_box(serde_json::from_slice::<serde_json::Value>(
                std::hint::black_box(&body),
            ));
        } else {
            let _ = std::hint::black_box(vertical.parse(std::hint::black_box(&body)));
        }
    }
}
