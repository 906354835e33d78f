//! The `.keras` reader: zip, config.json, metadata.json, model.weights.h5, then the graph.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let _ = keras2src::keras::load_bytes(Path::new("fuzz.keras"), data, None);
});
