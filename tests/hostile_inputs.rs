//! Hostile and broken model files: crashes the fuzzers found (fuzz/, scripts/fuzz.sh), zip
//! bombs and absurd declared sizes. Each must give a clean error naming the file (and the
//! layer where one is involved) quickly and in bounded memory, never a panic.

use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use keras2src::keras::load_bytes;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Loads `bytes` as the file `name` and returns the error message, which must name it.
fn load_error(name: &str, bytes: &[u8]) -> String {
    let path = Path::new(name);
    let message = match load_bytes(path, bytes, None) {
        Ok(_) => panic!("{name}: loaded, expected an error"),
        Err(e) => e.to_string(),
    };
    assert!(
        message.starts_with(name),
        "the message does not name the file {name}: {message}"
    );
    message
}

/// Runs `keras2src inspect FILE` under `/usr/bin/time`: (stderr, peak RSS in KiB, wall time).
fn inspect_measured(file: &Path) -> (String, u64, Duration) {
    let start = Instant::now();
    let out = Command::new("/usr/bin/time")
        .args(["-f", "PEAK_RSS_KB=%M"])
        .arg(env!("CARGO_BIN_EXE_keras2src"))
        .arg("inspect")
        .arg(file)
        .output()
        .expect("run /usr/bin/time keras2src inspect");
    let elapsed = start.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "inspect succeeded on {file:?}");
    assert!(
        !stderr.contains("panicked"),
        "keras2src panicked on {file:?}: {stderr}"
    );
    let kb = stderr
        .lines()
        .find_map(|l| l.strip_prefix("PEAK_RSS_KB="))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak RSS from /usr/bin/time: {stderr}"));
    eprintln!(
        "{}: peak RSS {kb} KiB, {:.2} s",
        file.display(),
        elapsed.as_secs_f64()
    );
    (stderr, kb, elapsed)
}

/// The error is clean, fast and small: under 5 s and 256 MiB of peak RSS.
fn assert_bounded(file: &Path, expected: &[&str]) -> String {
    let (stderr, kb, elapsed) = inspect_measured(file);
    assert!(
        stderr.contains(&file.display().to_string()),
        "the message does not name {file:?}: {stderr}"
    );
    for e in expected {
        assert!(stderr.contains(e), "expected '{e}' in: {stderr}");
    }
    assert!(kb < 256 * 1024, "peak RSS {kb} KiB for {file:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?} for {file:?}");
    stderr
}

fn entries(keras: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut zip = ZipArchive::new(Cursor::new(keras)).unwrap();
    (0..zip.len())
        .map(|i| {
            let mut f = zip.by_index(i).unwrap();
            let mut data = Vec::new();
            f.read_to_end(&mut data).unwrap();
            (f.name().unwrap().to_string(), data)
        })
        .collect()
}

/// A `.keras` archive of `entries`, each stored or deflated.
fn archive(entries: &[(String, Vec<u8>, CompressionMethod)]) -> Vec<u8> {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    for (name, data, method) in entries {
        let options = SimpleFileOptions::default()
            .compression_method(*method)
            .compression_level((*method == CompressionMethod::Deflated).then_some(1));
        zip.start_file(name, options).unwrap();
        zip.write_all(data).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// Rewrites the uncompressed size of entry `name` in its local header and the central
/// directory (what a crafted archive can claim).
fn patch_declared_size(zip: &mut [u8], name: &str, size: u32) {
    let mut patched = 0;
    for at in 0..zip.len().saturating_sub(46) {
        let (signature, size_at, name_at) = match &zip[at..at + 4] {
            b"PK\x03\x04" => ("local", 22, 30),
            b"PK\x01\x02" => ("central", 24, 46),
            _ => continue,
        };
        let name_len_at = if signature == "local" { 26 } else { 28 };
        let name_len = u16::from_le_bytes([zip[at + name_len_at], zip[at + name_len_at + 1]]);
        if zip.get(at + name_at..at + name_at + usize::from(name_len)) == Some(name.as_bytes()) {
            zip[at + size_at..at + size_at + 4].copy_from_slice(&size.to_le_bytes());
            patched += 1;
        }
    }
    assert_eq!(
        patched, 2,
        "local header and central directory entry of {name}"
    );
}

fn seed_keras() -> Vec<u8> {
    std::fs::read(fixture("models/dense_3d.keras")).unwrap()
}

/// The seed archive with `name` replaced by `data` (deflated).
fn with_entry(name: &str, data: Vec<u8>) -> Vec<u8> {
    let mut list: Vec<(String, Vec<u8>, CompressionMethod)> = entries(&seed_keras())
        .into_iter()
        .filter(|(n, _)| n != name)
        .map(|(n, d)| (n, d, CompressionMethod::Stored))
        .collect();
    list.push((name.to_string(), data, CompressionMethod::Deflated));
    archive(&list)
}

// ---- crashes found by fuzzing ----

/// Found by `interchange`: a recurrent layer called with a mask but no input tensor (its
/// argument mangled) subtracted past zero counting its inputs.
#[test]
fn recurrent_layer_with_mask_and_no_input() {
    let name = "broken/fuzz_rnn_mask_without_input.json";
    let bytes = std::fs::read(fixture(name)).unwrap();
    let message = load_error(name, &bytes);
    assert!(
        message.contains("layer 'gru_seq' (GRU)") && message.contains("without an input"),
        "{message}"
    );
}

// ---- resource bounds ----

/// A config.json deflated from 64 MiB of spaces whose headers claim 3 GiB: refused from
/// the header, before anything is unpacked.
#[test]
fn zip_bomb_config_claiming_gigabytes() {
    let mut bomb = with_entry("config.json", vec![b' '; 64 << 20]);
    patch_declared_size(&mut bomb, "config.json", 3 << 30);
    let message = load_error("bomb.keras", &bomb);
    assert!(message.contains("'config.json'"), "{message}");
    assert!(message.contains("3221225472 bytes"), "{message}");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bomb.keras");
    std::fs::write(&file, &bomb).unwrap();
    assert_bounded(&file, &["config.json"]);
}

/// The same bomb with headers claiming 1000 bytes: unpacking stops past 1000 bytes.
#[test]
fn zip_bomb_config_understating_its_size() {
    let mut bomb = with_entry("config.json", vec![b' '; 64 << 20]);
    patch_declared_size(&mut bomb, "config.json", 1000);
    let message = load_error("bomb.keras", &bomb);
    assert!(
        message.contains("'config.json'")
            && (message.contains("its header says 1000")
                || message.contains("larger than its declared uncompressed size")),
        "{message}"
    );
}

/// model.weights.h5 deflated from 4 GiB of zeros (about 4 MiB compressed): refused from the
/// header. Honest sizes throughout (zip64), built with the zip crate.
#[test]
fn zip_bomb_weights_of_four_gigabytes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bomb.keras");
    // Streamed into the writer so the test itself stays small.
    let mut zip = ZipWriter::new(std::fs::File::create(&file).unwrap());
    for (name, data) in entries(&seed_keras()) {
        if name != "model.weights.h5" {
            zip.start_file(name, SimpleFileOptions::default()).unwrap();
            zip.write_all(&data).unwrap();
        }
    }
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .compression_level(Some(1))
        .large_file(true);
    zip.start_file("model.weights.h5", options).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..4096 {
        zip.write_all(&zeros).unwrap();
    }
    zip.finish().unwrap();
    let stderr = assert_bounded(&file, &["'model.weights.h5'", "4294967296 bytes"]);
    assert!(stderr.contains("zip bomb"), "{stderr}");
}

/// An honest deflated weights entry under the unpacking limit (200 MiB of zeros): unpacked,
/// then refused as HDF5, in bounded memory.
#[test]
fn deflated_weights_under_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("zeros.keras");
    std::fs::write(&file, with_entry("model.weights.h5", vec![0; 200 << 20])).unwrap();
    let (stderr, kb, _) = inspect_measured(&file);
    assert!(stderr.contains("model.weights.h5"), "{stderr}");
    assert!(kb < 512 * 1024, "peak RSS {kb} KiB");
}

/// A config.json whose input declares 2^40 elements.
#[test]
fn config_json_input_of_2_pow_40_elements() {
    let config = entries(&seed_keras())
        .into_iter()
        .find(|(n, _)| n == "config.json")
        .unwrap()
        .1;
    let text = String::from_utf8(config).unwrap();
    let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
    let input = value["config"]["layers"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|l| l["class_name"] == "InputLayer")
        .unwrap();
    let shape = input["config"]["batch_shape"].as_array_mut().unwrap();
    let last = shape.len() - 1;
    shape[last] = serde_json::json!(1u64 << 40);
    let bytes = with_entry("config.json", value.to_string().into_bytes());
    let message = load_error("huge_input.keras", &bytes);
    assert!(message.contains("1099511627776"), "{message}");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("huge_input.keras");
    std::fs::write(&file, &bytes).unwrap();
    assert_bounded(&file, &["1099511627776"]);
}

/// Interchange JSON: a weight of shape [2^40], and a Dense of 2^40 units.
#[test]
fn interchange_shapes_of_2_pow_40_elements() {
    let text = std::fs::read_to_string(fixture("models/dense_3d.interchange.json")).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();

    let mut weight = doc.clone();
    weight["weights"]["dense"][1]["shape"] = serde_json::json!([1u64 << 40]);
    let bytes = weight.to_string().into_bytes();
    let message = load_error("huge_weight.json", &bytes);
    assert!(
        message.contains("layer 'dense'") && message.contains("limit"),
        "{message}"
    );

    let mut units = doc;
    for layer in units["model"]["config"]["layers"].as_array_mut().unwrap() {
        if layer["config"]["name"] == "dense" {
            layer["config"]["units"] = serde_json::json!(1u64 << 40);
        }
    }
    let bytes = units.to_string().into_bytes();
    let message = load_error("huge_units.json", &bytes);
    assert!(message.contains("'dense' (Dense)"), "{message}");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("huge_units.json");
    std::fs::write(&file, &bytes).unwrap();
    assert_bounded(&file, &["'dense' (Dense)"]);
}

/// Interchange JSON of 32 MB, `"data": [0,0,...]` (16M values): read into floats, not into a
/// JSON value per number (which took 18 times the file's size), then refused.
#[test]
fn interchange_data_in_bounded_memory() {
    let text = std::fs::read_to_string(fixture("models/dense_3d.interchange.json")).unwrap();
    let mut doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let n = 16 << 20;
    doc["weights"]["dense"][1] = serde_json::json!({"shape": [n], "data": "DATA"});
    let mut zeros = "0,".repeat(n);
    zeros.pop();
    let json = doc.to_string().replace("\"DATA\"", &format!("[{zeros}]"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("many_zeros.json");
    std::fs::write(&file, json).unwrap();
    let (stderr, kb, elapsed) = inspect_measured(&file);
    assert!(
        stderr.contains("layer 'dense' (Dense)") && stderr.contains("[16777216]"),
        "{stderr}"
    );
    assert!(kb < 200 * 1024, "peak RSS {kb} KiB");
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
}

/// An HDF5 file whose dataset `dense/kernel` ([6, 7] in the fixture) claims other dims.
fn h5_with_kernel_dims(dims: [u64; 2]) -> Vec<u8> {
    let mut bytes = std::fs::read(fixture("models/dense_3d.k3.h5")).unwrap();
    let mut pattern = 6u64.to_le_bytes().to_vec();
    pattern.extend(7u64.to_le_bytes());
    let mut new = dims[0].to_le_bytes().to_vec();
    new.extend(dims[1].to_le_bytes());
    let mut patched = 0;
    for at in 0..bytes.len() - pattern.len() {
        if bytes[at..].starts_with(&pattern) {
            bytes[at..at + 16].copy_from_slice(&new);
            patched += 1;
        }
    }
    // The dataspace's dims and max dims.
    assert_eq!(patched, 2);
    bytes
}

/// An HDF5 dataset declaring 2^40 x 7 elements.
#[test]
fn h5_dataset_of_2_pow_40_rows() {
    let bytes = h5_with_kernel_dims([1 << 40, 7]);
    let message = load_error("huge_dataset.h5", &bytes);
    assert!(message.contains("dense"), "{message}");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("huge_dataset.h5");
    std::fs::write(&file, &bytes).unwrap();
    assert_bounded(&file, &["dense"]);
}

/// An HDF5 dataset within the tensor limit (2^25 x 7 floats, 940 MB) in a 17 KB file:
/// refused before allocating, as the file cannot hold it.
#[test]
fn h5_dataset_larger_than_its_file() {
    let bytes = h5_with_kernel_dims([1 << 25, 7]);
    let message = load_error("big_dataset.h5", &bytes);
    assert!(message.contains("more than the file"), "{message}");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big_dataset.h5");
    std::fs::write(&file, &bytes).unwrap();
    assert_bounded(&file, &["more than the file"]);
}
