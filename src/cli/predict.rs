//! `keras2src predict`: read the inputs (flat, or nested like each input's shape as
//! `x[0].tolist()` writes it), size the dimensions the model leaves open from them, run the
//! reference interpreter, print the outputs and, with `--trace`, every layer's output or a
//! summary of it.

use std::process::ExitCode;

use serde_json::json;

use keras2src::ir::int8;
use keras2src::{interp, Error, Model};

use crate::{PredictArgs, TraceMode};

use keras2src::samples::{read_inputs, Declared};

pub fn run(args: &PredictArgs) -> Result<ExitCode, Error> {
    let source = &args.source;
    let bad = |message: String| Error::Format {
        path: args.input.clone(),
        message,
    };
    let load = |shapes: &[Vec<usize>]| {
        Model::load_with_shapes(&source.model, source.config.as_deref(), shapes)
    };
    let given = source.shapes()?;
    let declared = if given.is_empty() {
        Model::declared_input_shapes(&source.model, source.config.as_deref())?
    } else {
        Vec::new()
    };
    let open = declared
        .iter()
        .any(|d| d.as_ref().is_some_and(|d| d.contains(&None)));
    let (model, inputs) = if open {
        // Sized from the values, for the inputs up to the first whose shape is unknown.
        let inputs = read_inputs(&args.input, &declared).map_err(bad)?;
        let shapes: Vec<Vec<usize>> = inputs.iter().map_while(|i| i.shape.clone()).collect();
        (load(&shapes)?, inputs)
    } else {
        let model = load(&given)?;
        let graph = &model.graph;
        let shapes: Vec<Declared> = graph
            .inputs
            .iter()
            .map(|i| Some(graph.shape(i.tensor).iter().copied().map(Some).collect()))
            .collect();
        let inputs = read_inputs(&args.input, &shapes).map_err(bad)?;
        (model, inputs)
    };
    // Compressed kernels: the passes leave kernels as they are, so the model as loaded
    // takes them as the generated code stores them.
    let dtype = args.weights_dtype.dtype();
    let compressed = match dtype {
        keras2src::WeightsDtype::F32 => None,
        _ => Some(
            keras2src::ir::quant::dequantized(&model.graph, dtype).map_err(|problems| {
                Error::Layers {
                    path: source.model.clone(),
                    problems,
                }
            })?,
        ),
    };
    let quantized = match args.quantize.read(&model.input_port_shapes())? {
        Some(q) if q.int8_io => {
            return Err(Error::Usage(
                "--int8-io is for `generate`: `predict` reads and prints floats".into(),
            ))
        }
        Some(q) => {
            let quantized = model.quantized(&q)?;
            eprintln!(
                "note: int8: {}",
                quantized.calibration.describe("calibration")
            );
            if let Some(check) = &quantized.check {
                eprintln!("note: int8: {}", check.describe("check"));
            }
            Some(quantized.graph)
        }
        None => None,
    };
    let graph = quantized
        .as_ref()
        .or(compressed.as_ref())
        .unwrap_or(&model.graph);
    let values: Vec<Vec<f32>> = inputs.into_iter().map(|i| i.values).collect();
    let values = interp::run(graph, &values).map_err(bad)?;
    let mut text = format!("{{\"outputs\": {}", json!(interp::outputs(graph, &values)));
    if let Some(mode) = args.trace {
        let known: Vec<&str> = graph.nodes.iter().map(|n| n.name.as_str()).collect();
        if let Some(missing) = args.layers.iter().find(|l| !known.contains(&l.as_str())) {
            return Err(Error::Usage(format!(
                "--layers: the model has no layer '{}' (`keras2src inspect` lists them)",
                keras2src::error::escape_for_message(missing)
            )));
        }
        let traced = graph
            .nodes
            .iter()
            .filter(|n| args.layers.is_empty() || args.layers.contains(&n.name));
        let entries: Vec<String> = traced
            .map(|n| {
                // An int8 tensor as the real values it stands for.
                let real: Vec<f32>;
                let mut output = &values[n.output];
                if let Some(p) = keras2src::passes::quantize::int8_params(graph, n.output) {
                    real = output
                        .iter()
                        .map(|&q| int8::dequantize(q as i32, p))
                        .collect();
                    output = &real;
                }
                // In this order (serde_json's maps sort their keys).
                let mut entry = format!(
                    "{{\"layer\": {}, \"class\": {}, \"shape\": {}",
                    json!(n.name),
                    json!(n.class),
                    json!(graph.shape(n.output))
                );
                match mode {
                    TraceMode::Full => entry.push_str(&format!(", \"output\": {}", json!(output))),
                    TraceMode::Summary => {
                        let (min, max, mean) = stats(output);
                        entry.push_str(&format!(
                            ", \"min\": {}, \"max\": {}, \"mean\": {}",
                            json!(min),
                            json!(max),
                            json!(mean)
                        ));
                    }
                }
                entry + "}"
            })
            .collect();
        text.push_str(&format!(",\n\"trace\": [\n{}\n]", entries.join(",\n")));
    }
    text.push_str("}\n");
    Ok(super::output::write(text.as_bytes()))
}

/// Min, max and mean, NaN when any value is (as numpy's `min`, `max`, `mean`).
fn stats(values: &[f32]) -> (f32, f32, f64) {
    if values.iter().any(|v| v.is_nan()) {
        return (f32::NAN, f32::NAN, f64::NAN);
    }
    let min = values.iter().copied().fold(f32::INFINITY, f32::min);
    let max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = values.iter().map(|&v| f64::from(v)).sum();
    (min, max, sum / values.len().max(1) as f64)
}
