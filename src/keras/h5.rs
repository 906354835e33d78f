//! Frontend: HDF5 access, from memory, with `hdf5-reader`: string attributes (variable- and
//! fixed-length, split `name0`, `name1`, ... when over 64 KiB), weight tensors (float32,
//! float16, bfloat16, float64, integers; converted to f32), and the two weight layouts:
//!
//! - Keras 3 `saving_lib` (`.keras`' `model.weights.h5`, `.weights.h5`, tf.keras 2.13+
//!   `.weights.h5`): `layers/<snake_case class>[_N]/vars/<i>`, groups named after the classes
//!   of `model.layers` in order, matched by path and position as `saving_lib` does.
//! - Legacy (`model.save("x.h5")`'s `model_weights/`, tf.keras `save_weights("x.h5")` at the
//!   root): attribute `layer_names`, each layer group's `weight_names`, matched by position
//!   among the layers that have weights, as `legacy_h5_format` does.

use std::collections::BTreeSet;

use hdf5_reader::group::Group;
use hdf5_reader::{Attribute, Dataset, Datatype, Hdf5File, OpenOptions};

use super::config::ModelConfig;
use super::layers::WeightCount;
use crate::error::escape_for_message as esc;
use crate::ir::{checked_numel, Weights, MAX_TENSOR_ELEMENTS};

/// The HDF5 signature.
pub(crate) const MAGIC: &[u8] = b"\x89HDF\r\n\x1a\n";

/// How a weight was stored, for the note about conversions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum StoredDtype {
    F32,
    F16,
    BF16,
    F64,
    Int,
}

impl StoredDtype {
    pub fn label(self) -> &'static str {
        match self {
            StoredDtype::F32 => "float32",
            StoredDtype::F16 => "float16",
            StoredDtype::BF16 => "bfloat16",
            StoredDtype::F64 => "float64",
            StoredDtype::Int => "integer",
        }
    }
}

/// Weights read for each layer of the model (by index into `ModelConfig::layers`); `None`
/// when the file has nothing for that layer.
#[derive(Debug, Default)]
pub(crate) struct LoadedWeights {
    pub per_layer: Vec<Option<Vec<Weights>>>,
    /// Where each layer's weights were found, for messages.
    pub locations: Vec<String>,
    pub dtypes: BTreeSet<StoredDtype>,
    /// Layers of nested models whose weights could not be split among them (some layer
    /// of the nested model has an unknown weight count).
    pub unsplit: BTreeSet<usize>,
}

/// The most bytes of data (weights, attributes) we decode from an HDF5 file of `len`
/// bytes, over all its datasets: Keras stores data uncompressed, so real files hold at most
/// their own size; the rest allows for compressed or unwritten (fill-value) data in small
/// files. A file declaring more is refused before anything is allocated for it.
pub(crate) fn data_budget(len: usize) -> u64 {
    let len = u64::try_from(len).unwrap_or(u64::MAX);
    len.saturating_mul(2).saturating_add(16 << 20)
}

/// Opens an HDF5 file held in memory, with every read bounded by [`data_budget`] and the
/// IR's tensor limit.
pub(crate) fn open(bytes: Vec<u8>) -> Result<Hdf5File, String> {
    let budget = usize::try_from(data_budget(bytes.len())).unwrap_or(usize::MAX);
    let limit = budget.min(MAX_TENSOR_ELEMENTS.saturating_mul(8));
    let options = OpenOptions {
        max_read_bytes: limit,
        max_chunk_bytes: limit.min(hdf5_reader::DEFAULT_MAX_CHUNK_BYTES),
        chunk_cache_bytes: 16 << 20,
        max_object_header_bytes: limit.min(hdf5_reader::DEFAULT_MAX_OBJECT_HEADER_BYTES),
        ..OpenOptions::default()
    };
    let len = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    let file = Hdf5File::from_vec_with_options(bytes, options)
        .map_err(|e| format!("cannot read the HDF5 file (damaged or truncated?): {e}"))?;
    let superblock = file.superblock();
    if superblock.eof_address != u64::MAX {
        let declared = superblock
            .base_address
            .saturating_add(superblock.eof_address);
        if declared > len {
            return Err(format!(
                "the HDF5 file is truncated: it declares {declared} bytes, {len} are present"
            ));
        }
    }
    Ok(file)
}

pub(crate) fn root(file: &Hdf5File) -> Result<Group, String> {
    file.root_group()
        .map_err(|e| format!("cannot read the HDF5 root group: {e}"))
}

/// Names of a group's child groups and datasets.
pub(crate) fn members(group: &Group) -> Result<(Vec<String>, Vec<String>), String> {
    group
        .member_names()
        .map_err(|e| format!("cannot list HDF5 group '{}': {e}", esc(group.name())))
}

pub(crate) fn has_group(group: &Group, name: &str) -> Result<bool, String> {
    Ok(members(group)?.0.iter().any(|g| g == name))
}

fn child(group: &Group, name: &str) -> Result<Group, String> {
    group
        .group(name)
        .map_err(|e| format!("cannot open HDF5 group '{}': {e}", esc(name)))
}

fn find_attribute(group: &Group, name: &str) -> Result<Option<Attribute>, String> {
    let attrs = group
        .attributes()
        .map_err(|e| format!("cannot read the attributes of '{}': {e}", esc(group.name())))?;
    Ok(attrs.into_iter().find(|a| a.name == name))
}

fn decode_strings(attr: &Attribute) -> Result<Vec<String>, String> {
    if let Some(strings) = &attr.decoded_strings {
        return Ok(strings.clone());
    }
    match &attr.datatype {
        Datatype::String { .. } if attr.shape.is_empty() => attr.read_string().map(|s| vec![s]),
        Datatype::String { .. } => attr.read_strings(),
        Datatype::VarLen { .. } => attr.read_string().map(|s| vec![s]),
        // A weightless layer's `weight_names` is an empty float64 array.
        _ if attr.num_elements().ok() == Some(0) => Ok(Vec::new()),
        other => {
            return Err(format!(
                "attribute '{}' holds {other:?}, not strings",
                esc(&attr.name)
            ))
        }
    }
    .map_err(|e| format!("cannot read attribute '{}': {e}", esc(&attr.name)))
}

/// A string-list attribute, also when Keras split it into `name0`, `name1`, ...
pub(crate) fn attr_strings(group: &Group, name: &str) -> Result<Option<Vec<String>>, String> {
    if let Some(attr) = find_attribute(group, name)? {
        return decode_strings(&attr).map(Some);
    }
    let attrs = group
        .attributes()
        .map_err(|e| format!("cannot read the attributes of '{}': {e}", esc(group.name())))?;
    let mut out = Vec::new();
    let mut found = false;
    for chunk in 0usize.. {
        let key = format!("{name}{chunk}");
        let Some(attr) = attrs.iter().find(|a| a.name == key) else {
            break;
        };
        found = true;
        out.extend(decode_strings(attr)?);
    }
    Ok(found.then_some(out))
}

/// A scalar string attribute (`model_config`, `keras_version`).
pub(crate) fn attr_string(group: &Group, name: &str) -> Result<Option<String>, String> {
    match attr_strings(group, name)? {
        None => Ok(None),
        Some(parts) => Ok(Some(parts.concat())),
    }
}

fn dims(dataset: &Dataset) -> Result<Vec<usize>, String> {
    let shape: Vec<usize> = dataset
        .shape()
        .iter()
        .map(|&d| usize::try_from(d).ok())
        .collect::<Option<_>>()
        .ok_or("dataset dimension too large")?;
    if checked_numel(&shape).is_none() {
        return Err(format!(
            "dataset shape {shape:?} exceeds the limit of {MAX_TENSOR_ELEMENTS} elements"
        ));
    }
    Ok(shape)
}

/// Reads a weight tensor as f32, taking its decoded size from `budget` (the bytes of data
/// the file can still hold, see [`data_budget`]) before allocating anything for it.
pub(crate) fn read_tensor(
    dataset: &Dataset,
    budget: &mut u64,
) -> Result<(Weights, StoredDtype), String> {
    let shape = dims(dataset)?;
    let count = crate::ir::numel(&shape);
    let fail = |e: hdf5_reader::error::Error| format!("cannot read the data: {e}");
    let bytes = dataset
        .raw_byte_len()
        .ok()
        .and_then(|b| u64::try_from(b).ok())
        .ok_or("the dataset's size in bytes overflows")?;
    if bytes > *budget {
        return Err(format!(
            "dataset shape {shape:?} declares {bytes} bytes of data, more than the file can \
             hold (damaged, or compressed far beyond what Keras writes)"
        ));
    }
    *budget -= bytes;
    let (data, stored) = match dataset.dtype() {
        Datatype::FloatingPoint { size: 4, .. } => {
            let mut data = vec![0f32; count];
            dataset.read_into(&mut data).map_err(fail)?;
            (data, StoredDtype::F32)
        }
        Datatype::FloatingPoint { size: 8, .. } => {
            let bytes = dataset.read_native_bytes().map_err(fail)?;
            let data = bytes
                .chunks_exact(8)
                .map(|c| f64::from_ne_bytes(c.try_into().unwrap_or([0; 8])) as f32)
                .collect();
            (data, StoredDtype::F64)
        }
        Datatype::FloatingPoint { size: 2, .. } => {
            let bytes = dataset.read_native_bytes().map_err(fail)?;
            let halves = bytes
                .chunks_exact(2)
                .map(|c| u16::from_ne_bytes([c[0], c[1]]));
            if is_bfloat16_layout(dataset) {
                (halves.map(bf16_to_f32).collect(), StoredDtype::BF16)
            } else {
                (halves.map(f16_to_f32).collect(), StoredDtype::F16)
            }
        }
        // Keras 3 stores bfloat16 as 2-byte opaque data (`|V2`), with a `dtype`
        // attribute in `.keras` files and without one in legacy `.h5` files.
        Datatype::Opaque { size: 2, .. } => {
            let tagged = dataset
                .attribute("dtype")
                .ok()
                .and_then(|a| a.read_string().ok());
            if tagged.as_deref().is_some_and(|t| t != "bfloat16") {
                return Err(format!(
                    "opaque data of dtype '{}' is not supported",
                    esc(tagged.as_deref().unwrap_or(""))
                ));
            }
            let bytes = dataset.read_raw_bytes().map_err(fail)?;
            let data = bytes
                .chunks_exact(2)
                .map(|c| bf16_to_f32(u16::from_le_bytes([c[0], c[1]])))
                .collect();
            (data, StoredDtype::BF16)
        }
        Datatype::FixedPoint { size, signed, .. } => {
            let size = usize::from(*size);
            if ![1, 2, 4, 8].contains(&size) {
                return Err(format!("integer data of {size} bytes is not supported"));
            }
            let bytes = dataset.read_native_bytes().map_err(fail)?;
            let signed = *signed;
            let data = bytes
                .chunks_exact(size)
                .map(|c| int_to_f32(c, signed))
                .collect();
            (data, StoredDtype::Int)
        }
        other => return Err(format!("data of type {other:?} is not numeric")),
    };
    let weights = Weights::new(shape, data)?;
    Ok((weights, stored))
}

fn int_to_f32(bytes: &[u8], signed: bool) -> f32 {
    fn arr<const N: usize>(b: &[u8]) -> [u8; N] {
        b.try_into().unwrap_or([0; N])
    }
    match (bytes.len(), signed) {
        (1, true) => f32::from(i8::from_ne_bytes(arr(bytes))),
        (1, false) => f32::from(u8::from_ne_bytes(arr(bytes))),
        (2, true) => f32::from(i16::from_ne_bytes(arr(bytes))),
        (2, false) => f32::from(u16::from_ne_bytes(arr(bytes))),
        (4, true) => i32::from_ne_bytes(arr(bytes)) as f32,
        (4, false) => u32::from_ne_bytes(arr(bytes)) as f32,
        (8, true) => i64::from_ne_bytes(arr(bytes)) as f32,
        (8, false) => u64::from_ne_bytes(arr(bytes)) as f32,
        _ => f32::NAN,
    }
}

/// Whether a 2-byte float datatype has bfloat16's layout (8 exponent bits, 7 mantissa
/// bits) rather than IEEE half's (5 and 10), read from the raw datatype message.
fn is_bfloat16_layout(dataset: &Dataset) -> bool {
    // Datatype message: 8 header bytes, then bit offset (2), precision (2), exponent
    // location (1), exponent size (1), mantissa location (1), mantissa size (1).
    dataset
        .raw_datatype()
        .ok()
        .and_then(|raw| raw.get(13).copied())
        == Some(8)
}

fn bf16_to_f32(bits: u16) -> f32 {
    f32::from_bits(u32::from(bits) << 16)
}

fn f16_to_f32(bits: u16) -> f32 {
    let sign = u32::from(bits >> 15) << 31;
    let exponent = u32::from((bits >> 10) & 0x1f);
    let mantissa = u32::from(bits & 0x3ff);
    let magnitude = match (exponent, mantissa) {
        (0, 0) => 0,
        (0, m) => {
            // Subnormal: m * 2^-24, exact in f32.
            let v = m as f32 * 2f32.powi(-24);
            return if sign != 0 { -v } else { v };
        }
        (0x1f, 0) => 0x7f80_0000,
        (0x1f, m) => 0x7f80_0000 | (m << 13) | 0x0040_0000,
        (e, m) => ((e + 127 - 15) << 23) | (m << 13),
    };
    f32::from_bits(sign | magnitude)
}

/// Datasets `0`, `1`, ... of a `vars` group, in order; other names are refused.
fn numbered_tensors(
    group: &Group,
    location: &str,
    dtypes: &mut BTreeSet<StoredDtype>,
    budget: &mut u64,
) -> Result<Vec<Weights>, String> {
    let (_, names) = members(group)?;
    let mut numbered: Vec<(usize, String)> = Vec::with_capacity(names.len());
    for name in names {
        let Ok(i) = name.parse::<usize>() else {
            return Err(format!("unexpected dataset '{}' in {location}", esc(&name)));
        };
        numbered.push((i, name));
    }
    numbered.sort();
    let mut out = Vec::with_capacity(numbered.len());
    for (expected, (i, name)) in numbered.iter().enumerate() {
        if *i != expected {
            return Err(format!("{location}/{expected} is missing"));
        }
        let dataset = group
            .dataset(name)
            .map_err(|e| format!("cannot open {location}/{name}: {e}"))?;
        let (w, stored) =
            read_tensor(&dataset, budget).map_err(|e| format!("{location}/{name}: {e}"))?;
        dtypes.insert(stored);
        out.push(w);
    }
    Ok(out)
}

/// Keras 3 `saving_lib` layout: each layer's `<weights_path>/vars/<i>` under `root`.
/// `groups[i]` lists the sub-objects of layer `i` whose `vars` hold its weights, in
/// `get_weights()` order (`""` for the layer's own `vars`; `cell` for an RNN). `budget`:
/// see [`data_budget`].
pub(crate) fn saving_lib_weights(
    root: &Group,
    model: &ModelConfig,
    groups: &[Vec<String>],
    mut budget: u64,
) -> Result<LoadedWeights, String> {
    let mut loaded = LoadedWeights::empty(model.layers.len());
    if !has_group(root, "layers")? {
        if has_group(root, "_layer_checkpoint_dependencies")? {
            return Err(
                "this weights file was written by Keras 2.13's early `.keras` format \
                 (`_layer_checkpoint_dependencies`), which is not supported; re-save the model \
                 with a current Keras"
                    .into(),
            );
        }
        return Err("the weights file has no 'layers' group".into());
    }
    for (i, layer) in model.layers.iter().enumerate() {
        let Some(path) = &layer.weights_path else {
            continue;
        };
        let own = [String::new()];
        let layer_groups = groups.get(i).map_or(&own[..], Vec::as_slice);
        let mut tensors = Vec::new();
        for group in layer_groups {
            let mut found = None;
            for alternative in group.split('|') {
                let location = if alternative.is_empty() {
                    format!("{path}/vars")
                } else {
                    format!("{path}/{alternative}/vars")
                };
                loaded.locations[i] = location.clone();
                if let Some(vars) = group_at(root, &location)? {
                    found = Some((vars, location));
                    break;
                }
            }
            let Some((vars, location)) = found else {
                break;
            };
            tensors.extend(numbered_tensors(
                &vars,
                &location,
                &mut loaded.dtypes,
                &mut budget,
            )?);
        }
        if !tensors.is_empty() || group_at(root, &format!("{path}/vars"))?.is_some() {
            loaded.per_layer[i] = Some(tensors);
        }
    }
    Ok(loaded)
}

/// The group at a slash-separated path, or `None` when some part is absent.
fn group_at(root: &Group, path: &str) -> Result<Option<Group>, String> {
    let mut group = root.clone();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        if !has_group(&group, part)? {
            return Ok(None);
        }
        group = child(&group, part)?;
    }
    Ok(Some(group))
}

impl LoadedWeights {
    pub(crate) fn empty(layers: usize) -> Self {
        LoadedWeights {
            per_layer: vec![None; layers],
            locations: vec![String::new(); layers],
            dtypes: BTreeSet::new(),
            unsplit: BTreeSet::new(),
        }
    }

    /// Gives a unit's weights (in the file's order) to its layers. `order` says how the
    /// file lists a nested model's weights.
    pub(crate) fn assign(
        &mut self,
        model: &ModelConfig,
        unit: usize,
        tensors: Vec<Weights>,
        counts: &[Option<WeightCount>],
        order: UnitOrder,
        location: &str,
    ) -> Result<(), String> {
        let entries: Vec<usize> = (0..model.layers.len())
            .filter(|&i| model.layers[i].unit == unit)
            .collect();
        for &e in &entries {
            self.locations[e] = location.to_string();
        }
        if let [only] = entries[..] {
            self.per_layer[only] = Some(tensors);
            return Ok(());
        }
        // A nested model: split among its layers (all counts must be known).
        let Some(counts): Option<Vec<WeightCount>> = entries
            .iter()
            .map(|&e| counts.get(e).copied().flatten())
            .collect()
        else {
            return Ok(());
        };
        let needed: usize = counts.iter().map(|c| c.total).sum();
        let unit_name = model.units.get(unit).map(String::as_str).unwrap_or("");
        if tensors.len() != needed {
            return Err(format!(
                "{location} holds {} weights, but the layers of nested model '{}' need {needed}",
                tensors.len(),
                esc(unit_name)
            ));
        }
        let mut slots: Vec<Vec<Option<Weights>>> =
            counts.iter().map(|c| vec![None; c.total]).collect();
        let mut it = tensors.into_iter();
        match order {
            UnitOrder::LayerByLayer => {
                for slot in slots.iter_mut().flatten() {
                    *slot = it.next();
                }
            }
            UnitOrder::TrainableFirst => {
                // `trainable_weights + non_trainable_weights`: trainable weights of trainable
                // layers, in layer order, then every other weight, in layer order.
                for ((slot, count), &e) in slots.iter_mut().zip(&counts).zip(&entries) {
                    if model.layers[e].trainable {
                        for w in slot.iter_mut().take(count.trainable) {
                            *w = it.next();
                        }
                    }
                }
                for ((slot, count), &e) in slots.iter_mut().zip(&counts).zip(&entries) {
                    let skip = if model.layers[e].trainable {
                        count.trainable
                    } else {
                        0
                    };
                    for w in slot.iter_mut().skip(skip) {
                        *w = it.next();
                    }
                }
            }
        }
        for (slot, &e) in slots.into_iter().zip(&entries) {
            self.per_layer[e] = slot.into_iter().collect();
        }
        Ok(())
    }
}

/// How a file orders the weights of a nested model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UnitOrder {
    /// `layer.get_weights()`: each layer's weights in turn.
    LayerByLayer,
    /// Legacy h5: trainable weights first.
    TrainableFirst,
}

/// Opens a dataset at a slash-separated path below `group`.
fn dataset_at(group: &Group, path: &str) -> Result<Dataset, String> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let Some((last, dirs)) = parts.split_last() else {
        return Err("empty weight name".into());
    };
    let mut g = group.clone();
    for dir in dirs {
        g = g
            .group(dir)
            .map_err(|e| format!("weight '{}' is missing: {e}", esc(path)))?;
    }
    g.dataset(last)
        .map_err(|e| format!("weight '{}' is missing: {e}", esc(path)))
}

/// Legacy layout: `layer_names` on `group`, weights by position among the model's
/// top-level layers (units) that have weights, as Keras does when every count is known
/// (`counts` per layer); otherwise by layer name. `budget`: see [`data_budget`].
pub(crate) fn legacy_weights(
    group: &Group,
    model: &ModelConfig,
    counts: &[Option<WeightCount>],
    mut budget: u64,
) -> Result<LoadedWeights, String> {
    let mut loaded = LoadedWeights::empty(model.layers.len());
    let names = attr_strings(group, "layer_names")?
        .ok_or("the weights group has no 'layer_names' attribute")?;
    // (name, group, weight names) of the file's layers that have weights.
    let mut with_weights = Vec::new();
    for name in &names {
        let layer_group = child(group, name)?;
        let weight_names = attr_strings(&layer_group, "weight_names")?.unwrap_or_default();
        if !weight_names.is_empty() {
            with_weights.push((name.clone(), layer_group, weight_names));
        }
    }
    // Each unit's weight count, if known.
    let unit_counts: Vec<Option<usize>> = (0..model.units.len())
        .map(|u| {
            model
                .layers
                .iter()
                .enumerate()
                .filter(|(_, l)| l.unit == u)
                .map(|(i, _)| counts.get(i).copied().flatten().map(|c| c.total))
                .sum()
        })
        .collect();
    let targets: Vec<usize> = if unit_counts.iter().all(Option::is_some) {
        let units_with_weights: Vec<usize> = (0..model.units.len())
            .filter(|&u| unit_counts[u].unwrap_or(0) > 0)
            .collect();
        if units_with_weights.len() != with_weights.len() {
            return Err(format!(
                "the file has weights for {} layers, but the model has {} layers with weights",
                with_weights.len(),
                units_with_weights.len()
            ));
        }
        units_with_weights
    } else {
        let mut targets = Vec::new();
        for (name, _, _) in &with_weights {
            match model.units.iter().position(|u| u == name) {
                Some(u) => targets.push(u),
                None => {
                    return Err(format!(
                        "the file has weights for layer '{}', which the model does not have",
                        esc(name)
                    ))
                }
            }
        }
        targets
    };
    for ((name, layer_group, weight_names), unit) in with_weights.iter().zip(targets) {
        let mut tensors = Vec::with_capacity(weight_names.len());
        for weight_name in weight_names {
            let dataset = dataset_at(layer_group, weight_name)?;
            let (w, stored) = read_tensor(&dataset, &mut budget)
                .map_err(|e| format!("{}/{}: {e}", esc(name), esc(weight_name)))?;
            loaded.dtypes.insert(stored);
            tensors.push(w);
        }
        let location = format!("layer group '{}'", esc(name));
        loaded.assign(
            model,
            unit,
            tensors,
            counts,
            UnitOrder::TrainableFirst,
            &location,
        )?;
    }
    Ok(loaded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_floats() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x8001), -(2f32.powi(-24)));
        assert_eq!(f16_to_f32(0x7c00), f32::INFINITY);
        assert!(f16_to_f32(0x7e00).is_nan());
        assert_eq!(f16_to_f32(0x8000).to_bits(), (-0.0f32).to_bits());
        assert_eq!(bf16_to_f32(0x3f80), 1.0);
        assert_eq!(bf16_to_f32(0xc040), -3.0);
    }

    #[test]
    fn integers() {
        assert_eq!(int_to_f32(&(-5i64).to_ne_bytes(), true), -5.0);
        assert_eq!(int_to_f32(&(-5i32).to_ne_bytes(), true), -5.0);
        assert_eq!(int_to_f32(&(7u16).to_ne_bytes(), false), 7.0);
    }
}
