//! `keras2src inspect`: the layer table and the totals.

use std::process::ExitCode;

use keras2src::error::escape_for_message;
use keras2src::{Error, Model, WeightsDtype};

use crate::ModelArgs;

pub fn run(source: &ModelArgs) -> Result<ExitCode, Error> {
    let model = source.load()?;
    Ok(super::output::write(table(&model).as_bytes()))
}

/// The table, each column as wide as its widest cell, so long layer names and shapes keep
/// the columns aligned.
fn table(model: &Model) -> String {
    let s = model.summary();
    let header = ["layer", "class", "output shape", "params", "MACs"].map(String::from);
    let rows: Vec<[String; 5]> = std::iter::once(header)
        .chain(s.rows.iter().map(|r| {
            [
                escape_for_message(&r.name),
                escape_for_message(&r.class),
                format!("{:?}", r.output_shape),
                r.params.to_string(),
                r.macs.to_string(),
            ]
        }))
        .collect();
    let width = |k: usize| rows.iter().map(|r| r[k].chars().count()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..5).map(width).collect();
    let mut out = String::new();
    for r in &rows {
        out.push_str(&format!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {:>w3$}  {:>w4$}\n",
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3],
            w4 = widths[4],
        ));
    }
    out.push_str(&format!(
        "\nparameters: {}\nMACs: {}\nflash (weights): {} bytes\nRAM (working memory): {} bytes (without reuse: {} bytes)\n",
        s.params, s.macs, s.flash_bytes, s.ram_bytes, s.unplanned_bytes
    ));
    // What --weights-dtype would make of the flash (a model whose kernels a dtype cannot
    // hold says why).
    let compressed: Vec<String> = [WeightsDtype::F16, WeightsDtype::Int8]
        .iter()
        .map(|&dtype| match model.flash_bytes(dtype) {
            Ok(bytes) => format!("{} {bytes} bytes", dtype.as_str()),
            Err(e) => format!("{} not possible ({e})", dtype.as_str()),
        })
        .collect();
    out.push_str(&format!(
        "flash with --weights-dtype: {}\n",
        compressed.join(", ")
    ));
    out.push_str(&stream_line(model));
    for note in &model.graph.notes {
        out.push_str(&format!("note: {note}\n"));
    }
    out
}

/// For a recurrent model that can stream: the `State` and the step's working memory.
fn stream_line(model: &Model) -> String {
    if !model.is_recurrent() {
        return String::new();
    }
    let Ok(step) = model.step() else {
        return "stream: no (`generate --stream` says why)\n".into();
    };
    let plan = keras2src::passes::plan_memory(&keras2src::passes::optimize(step.graph.clone()));
    let slots: Vec<String> = step.slots.iter().map(|slot| slot.describe()).collect();
    format!(
        "stream{}: State {} bytes ({}), step working memory {} bytes\n",
        if model.is_stateful() {
            " (stateful)"
        } else {
            " (with --stream)"
        },
        4 * step.state_len(),
        slots.join("; "),
        4 * plan.scratch_len
    )
}
