//! The whole pipeline: bytes (any model format) to generated Rust and C++ source, through
//! `Model::load` as the CLI and `Generator` use it.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

fn scratch_file() -> &'static PathBuf {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        let dir = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        dir.join(format!("keras2src-fuzz-{}.model", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    let path = scratch_file();
    std::fs::write(path, data).expect("write the scratch model file");
    let Ok(model) = keras2src::Model::load(path, None) else {
        return;
    };
    let _ = model.summary();
    for lang in [keras2src::Lang::Rust, keras2src::Lang::Cpp] {
        let _ = model.generate(lang, "fuzzed");
    }
});
