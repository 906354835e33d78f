//! Generates the seed model's Rust module into OUT_DIR at every build where the model
//! changed (keras2src prints the `cargo:rerun-if-changed` lines), with a self-test on the
//! first sample Keras recorded (`cargo test` runs it as `seed::selftest::matches_keras`).

use keras2src::{Generator, Lang};

fn main() {
    let out_dir = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/models");
    let generated = Generator::from_path(format!("{fixtures}/seed.keras")).and_then(|g| {
        g.lang(Lang::Rust)
            .name("seed")
            .emit_test(format!("{fixtures}/seed.io.json"))
            .write_to(&out_dir)
    });
    if let Err(e) = generated {
        // A build script reports failure by exiting non-zero; cargo shows stderr.
        eprintln!("keras2src: {e}");
        std::process::exit(1);
    }
}
