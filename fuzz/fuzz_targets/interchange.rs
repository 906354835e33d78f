//! The interchange JSON reader (and the Keras config parser it shares).
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let _ = keras2src::keras::load_bytes(Path::new("fuzz.json"), data, None);
});
