//! The numbers `inspect` prints and the generated header repeats.

use crate::ir::Graph;
use crate::passes::plan_memory;

/// Floats of constant weights the generated code holds: each array once, even when a
/// shared layer is called at several sites.
fn flash_floats(graph: &Graph, plan: &crate::passes::MemoryPlan) -> usize {
    match crate::lower::lower(graph, plan, &crate::backend::rust::TUNING) {
        Ok(program) => program.weights.iter().map(|w| w.data.len()).sum(),
        Err(_) => graph.weight_floats(),
    }
}

/// One row of the layer table (the model as Keras defines it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerRow {
    pub name: String,
    pub class: String,
    pub output_shape: Vec<usize>,
    pub params: usize,
    pub macs: usize,
}

/// Layer table and totals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub rows: Vec<LayerRow>,
    /// Parameters as Keras counts them.
    pub params: usize,
    pub macs: usize,
    /// Bytes of constant weights in the generated code (after folding).
    pub flash_bytes: usize,
    /// Bytes of planned working memory (`SCRATCH_LEN` f32s).
    pub ram_bytes: usize,
    /// Bytes the intermediate tensors would take without reuse.
    pub unplanned_bytes: usize,
}

impl Summary {
    /// `keras` is the model as loaded, `optimized` the same after passes.
    pub fn new(keras: &Graph, optimized: &Graph) -> Summary {
        let rows = keras
            .nodes
            .iter()
            .map(|n| LayerRow {
                name: n.name.clone(),
                class: n.class.clone(),
                output_shape: keras.shape(n.output).to_vec(),
                params: n.keras_params,
                macs: n.op.macs(keras.shape(n.inputs[0]), keras.shape(n.output)),
            })
            .collect();
        let plan = plan_memory(optimized);
        let f32_bytes = std::mem::size_of::<f32>();
        Summary {
            rows,
            params: keras.keras_params(),
            macs: optimized.macs(),
            flash_bytes: flash_floats(optimized, &plan) * f32_bytes,
            ram_bytes: plan.scratch_len * f32_bytes,
            unplanned_bytes: plan.unplanned_len * f32_bytes,
        }
    }
}
