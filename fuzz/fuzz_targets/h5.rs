//! The `.h5` reader: a full legacy / Keras 3 model in HDF5 (`model_config` attribute), or
//! a bare weights file with its architecture JSON. The input is the HDF5 bytes, optionally
//! followed by `\0ARCH\0` and the architecture JSON for a bare weights file.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;

const SEPARATOR: &[u8] = b"\0ARCH\0";

fuzz_target!(|data: &[u8]| {
    let (h5, arch) = match data.windows(SEPARATOR.len()).rposition(|w| w == SEPARATOR) {
        Some(at) => (&data[..at], Some(&data[at + SEPARATOR.len()..])),
        None => (data, None),
    };
    let config = arch.map(|a| (Path::new("fuzz.arch.json"), a));
    let _ = keras2src::keras::load_bytes(Path::new("fuzz.h5"), h5, config);
});
