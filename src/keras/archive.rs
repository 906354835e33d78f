//! Frontend: the `.keras` zip archive (Keras 3, tf.keras 2.13+): `config.json`,
//! `metadata.json` and `model.weights.h5`, read from memory. Keras stores entries
//! uncompressed; deflate is accepted too (for re-zipped archives). Other compression,
//! `weights_format="npz"` and sharded weights are refused with a message saying so.

use std::collections::BTreeMap;
use std::io::{Cursor, Read};

use zip::result::ZipError;
use zip::{CompressionMethod, ZipArchive};

use crate::error::escape_for_message as esc;

/// The zip local file header signature.
pub(crate) const MAGIC: &[u8] = b"PK\x03\x04";

/// Largest JSON entry (`config.json`, `metadata.json`) we read, stored or compressed:
/// real ones are a few MB, and parsed JSON takes several times its text's size.
const MAX_TEXT_BYTES: u64 = 32 << 20;

/// Largest compressed entry we unpack. Keras stores entries uncompressed, so their
/// size is bounded by the archive's; a deflated entry can claim far more than it holds
/// (a zip bomb), so it is bounded here, well under the memory a build can spare.
const MAX_DEFLATED_BYTES: u64 = 256 << 20;

/// The parts of a `.keras` archive.
#[derive(Debug)]
pub(crate) struct Archive {
    pub config: String,
    pub metadata: Option<String>,
    pub weights: Vec<u8>,
    /// The lookup layers' vocabularies (`assets/<layer path>/vocabulary.txt`), by entry name.
    pub vocabularies: BTreeMap<String, String>,
}

/// The name of the assets entry that holds a lookup layer's adapted vocabulary.
fn vocabulary_entry(weights_path: &str) -> String {
    format!("assets/{weights_path}/vocabulary.txt")
}

fn zip_error(e: ZipError) -> String {
    format!("cannot read the zip archive (damaged or truncated?): {e}")
}

/// Reads the archive's entries.
pub(crate) fn read(bytes: &[u8]) -> Result<Archive, String> {
    let len = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    let mut zip = ZipArchive::new(Cursor::new(bytes)).map_err(zip_error)?;
    let names: Vec<String> = zip
        .file_names()
        .filter_map(|n| n.ok())
        .map(|n| n.into_owned())
        .collect();
    let has = |name: &str| names.iter().any(|n| n == name);
    if !has("config.json") {
        let listing: Vec<String> = names
            .iter()
            .take(5)
            .map(|n| format!("'{}'", esc(n)))
            .collect();
        return Err(format!(
            "this zip is not a Keras archive: it has no 'config.json' (entries: {}{})",
            listing.join(", "),
            if names.len() > 5 { ", ..." } else { "" }
        ));
    }
    if has("model.weights.npz") && !has("model.weights.h5") {
        return Err(
            "the archive stores its weights as 'model.weights.npz' (weights_format=\"npz\"), \
             which is not supported; save with the default h5 weights"
                .into(),
        );
    }
    if has("model.weights.json")
        || names
            .iter()
            .any(|n| n.starts_with("model_") && n.ends_with(".weights.h5"))
    {
        return Err(
            "the archive holds sharded weights (max_shard_size), which are not supported; \
             save without sharding"
                .into(),
        );
    }
    if !has("model.weights.h5") {
        return Err("the archive has no 'model.weights.h5'".into());
    }
    let config = read_text(&mut zip, len, "config.json")?;
    let metadata = if has("metadata.json") {
        Some(read_text(&mut zip, len, "metadata.json")?)
    } else {
        None
    };
    let weights = read_entry(&mut zip, len, "model.weights.h5", None)?;
    let mut vocabularies = BTreeMap::new();
    let mut total = 0u64;
    for name in names
        .iter()
        .filter(|n| n.starts_with("assets/") && n.ends_with("/vocabulary.txt"))
    {
        let text = read_text(&mut zip, len, name)?;
        total += u64::try_from(text.len()).unwrap_or(u64::MAX);
        if total > MAX_TEXT_BYTES {
            return Err(format!(
                "the archive's vocabularies hold more than the {MAX_TEXT_BYTES} bytes keras2src \
                 reads for them"
            ));
        }
        vocabularies.insert(name.clone(), text);
    }
    Ok(Archive {
        config,
        metadata,
        weights,
        vocabularies,
    })
}

/// Puts the vocabulary Keras saved in the archive's assets into the config of each
/// `IntegerLookup` whose config has none (an adapted layer), as Keras's `load_assets`
/// does: one integer per line, trailing empty lines dropped (a line that is no integer is
/// kept as a string, for the layer to report).
pub(crate) fn attach_vocabularies(
    model: &mut super::config::ModelConfig,
    vocabularies: &BTreeMap<String, String>,
) {
    use serde_json::Value;
    for layer in &mut model.layers {
        if let Some(nested) = &mut layer.nested {
            attach_vocabularies(nested, vocabularies);
        }
        let has_vocabulary = layer.config.get("vocabulary").is_some_and(|v| !v.is_null());
        if layer.class != "IntegerLookup" || has_vocabulary {
            continue;
        }
        let Some(text) = layer
            .weights_path
            .as_deref()
            .and_then(|p| vocabularies.get(&vocabulary_entry(p)))
        else {
            continue;
        };
        let mut lines: Vec<&str> = text.lines().collect();
        while lines.last() == Some(&"") {
            lines.pop();
        }
        let items = lines
            .iter()
            .map(|l| match l.trim().parse::<i64>() {
                Ok(i) => Value::from(i),
                Err(_) => Value::String(l.to_string()),
            })
            .collect();
        layer
            .config
            .insert("vocabulary".into(), Value::Array(items));
    }
}

fn read_text(
    zip: &mut ZipArchive<Cursor<&[u8]>>,
    archive_len: u64,
    name: &str,
) -> Result<String, String> {
    String::from_utf8(read_entry(zip, archive_len, name, Some(MAX_TEXT_BYTES))?)
        .map_err(|_| format!("'{name}' in the archive is not UTF-8 text"))
}

fn read_entry(
    zip: &mut ZipArchive<Cursor<&[u8]>>,
    archive_len: u64,
    name: &str,
    text_limit: Option<u64>,
) -> Result<Vec<u8>, String> {
    let entry = zip.by_name(name).map_err(zip_error)?;
    if entry.encrypted() {
        return Err(format!("'{name}' in the archive is encrypted"));
    }
    let size = entry.size();
    if let Some(limit) = text_limit.filter(|&l| size > l) {
        return Err(format!(
            "'{name}' in the archive has {size} bytes, more than the {limit} bytes keras2src \
             reads for it"
        ));
    }
    match entry.compression() {
        // Stored: the bytes are in the archive, so the size is bounded by the archive's.
        CompressionMethod::Stored if size > archive_len => {
            return Err(format!(
                "'{name}' in the archive declares {size} bytes, but the whole archive has \
                 {archive_len} (damaged?)"
            ))
        }
        CompressionMethod::Stored => {}
        CompressionMethod::Deflated if size > MAX_DEFLATED_BYTES => {
            return Err(format!(
                "'{name}' in the archive unpacks to {size} bytes, more than the \
                 {MAX_DEFLATED_BYTES} bytes \
                 keras2src unpacks from a compressed entry (a zip bomb? Keras stores entries \
                 uncompressed: re-save the model with Keras)"
            ))
        }
        CompressionMethod::Deflated => {}
        other => {
            return Err(format!(
                "'{name}' in the archive uses {other} compression; only stored and deflate \
                 entries are supported"
            ))
        }
    }
    // Never more than the header says (checked above), however much the data unpacks to.
    let capacity = usize::try_from(size).unwrap_or(0).min(64 << 20);
    let mut out = Vec::with_capacity(capacity);
    entry
        .take(size.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| format!("cannot unpack '{name}' from the archive (damaged?): {e}"))?;
    if out.len() as u64 != size {
        return Err(format!(
            "'{name}' in the archive unpacked to {}{} bytes, its header says {size}",
            if out.len() as u64 > size {
                "more than "
            } else {
                ""
            },
            out.len().min(usize::try_from(size).unwrap_or(usize::MAX))
        ));
    }
    Ok(out)
}
