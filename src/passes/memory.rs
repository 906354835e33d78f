//! Working-memory planning: every intermediate tensor gets an offset in one scratch arena,
//! reused once the tensor is dead, so `SCRATCH_LEN` is the peak of live tensors.

use crate::ir::{numel, Graph, Op, TensorId};

/// Where a tensor lives in the generated code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// The k-th model input argument.
    Input(usize),
    /// The k-th model output argument.
    Output(usize),
    /// `scratch[offset..offset + len]`.
    Scratch(usize),
    /// `scratch_i8[offset..offset + len]`: an int8 tensor of a quantized model.
    ScratchI8(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryPlan {
    /// Per tensor.
    pub locations: Vec<Location>,
    /// Per node: true when the node only renames its input (Reshape, Identity) and emits
    /// no code.
    pub is_view: Vec<bool>,
    /// Per node: the scratch offset of its private working memory (recurrent state and
    /// gate sums), for nodes whose op needs some ([`Op::workspace_len`]).
    pub workspace: Vec<Option<usize>>,
    /// Arena size in f32s.
    pub scratch_len: usize,
    /// The int8 arena's size (a quantized model's int8 tensors), in bytes.
    pub scratch_i8_len: usize,
    /// What the arena would need without reuse, for comparison.
    pub unplanned_len: usize,
}

fn is_rename(graph: &Graph, node: usize) -> bool {
    matches!(graph.nodes[node].op, Op::Reshape { .. } | Op::Identity)
}

/// Plans memory for a graph whose nodes are in topological order.
pub fn plan_memory(graph: &Graph) -> MemoryPlan {
    let mut locations: Vec<Option<Location>> = vec![None; graph.tensors.len()];
    for (k, input) in graph.inputs.iter().enumerate() {
        locations[input.tensor] = Some(Location::Input(k));
    }
    for (k, output) in graph.outputs.iter().enumerate() {
        if locations[output.tensor].is_none() {
            locations[output.tensor] = Some(Location::Output(k));
        }
    }
    // A reshape that yields a model output: its producer writes the output directly.
    for output in &graph.outputs {
        let mut t = output.tensor;
        while let Some(v) = graph.producer(t).filter(|&v| is_rename(graph, v)) {
            let u = graph.nodes[v].inputs[0];
            if locations[u].is_some() || graph.consumers(u) != [v] {
                break;
            }
            locations[u] = locations[t];
            t = u;
        }
    }
    let is_view: Vec<bool> = graph
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            is_rename(graph, i)
                && (locations[n.output].is_none() || locations[n.output] == locations[n.inputs[0]])
        })
        .collect();

    // Storage root of each tensor (views share their input's storage) and live ranges
    // of the roots in node indices.
    let mut root: Vec<TensorId> = (0..graph.tensors.len()).collect();
    let mut first = vec![usize::MAX; graph.tensors.len()];
    let mut last = vec![0usize; graph.tensors.len()];
    for (i, node) in graph.nodes.iter().enumerate() {
        if is_view[i] {
            root[node.output] = root[node.inputs[0]];
        }
        let out = root[node.output];
        first[out] = first[out].min(i);
        last[out] = last[out].max(i);
        for &t in &node.inputs {
            last[root[t]] = last[root[t]].max(i);
        }
    }

    // Offline first-fit, largest tensors first (deterministic: ties by tensor id).
    // A node's workspace is one more buffer, live during that node only: item
    // `tensors + node` below.
    let tensors = graph.tensors.len();
    let workspace_len: Vec<usize> = graph.nodes.iter().map(|n| n.op.workspace_len()).collect();
    let mut pending: Vec<usize> = (0..tensors)
        .filter(|&t| root[t] == t && locations[t].is_none() && first[t] != usize::MAX)
        .chain(
            (0..graph.nodes.len())
                .filter(|&n| workspace_len[n] > 0)
                .map(|n| tensors + n),
        )
        .collect();
    let len_of = |item: usize| {
        if item < tensors {
            numel(graph.shape(item))
        } else {
            workspace_len[item - tensors]
        }
    };
    let span = |item: usize| {
        if item < tensors {
            (first[item], last[item])
        } else {
            (item - tensors, item - tensors)
        }
    };
    pending.sort_by_key(|&t| (std::cmp::Reverse(len_of(t)), t));
    // int8 tensors have an arena of their own.
    let int8 = |item: usize| item < tensors && graph.dtype(item) == crate::ir::InputDtype::I8;
    let mut workspace = vec![None; graph.nodes.len()];
    let mut lens = [0usize; 2];
    for (arena, len_total) in lens.iter_mut().enumerate() {
        let mut placed: Vec<(usize, usize, usize)> = Vec::new(); // (offset, len, item)
        for &t in pending.iter().filter(|&&t| int8(t) == (arena == 1)) {
            let len = len_of(t);
            let (first_t, last_t) = span(t);
            let mut conflicts: Vec<(usize, usize)> = placed
                .iter()
                .filter(|&&(_, _, u)| {
                    let (first_u, last_u) = span(u);
                    first_t <= last_u && first_u <= last_t
                })
                .map(|&(off, l, _)| (off, l))
                .collect();
            conflicts.sort();
            let mut offset = 0;
            for (off, l) in conflicts {
                if offset + len <= off {
                    break;
                }
                offset = offset.max(off + l);
            }
            placed.push((offset, len, t));
            if t >= tensors {
                workspace[t - tensors] = Some(offset);
            } else if arena == 1 {
                locations[t] = Some(Location::ScratchI8(offset));
            } else {
                locations[t] = Some(Location::Scratch(offset));
            }
            *len_total = (*len_total).max(offset + len);
        }
    }
    let [scratch_len, scratch_i8_len] = lens;

    let locations = (0..graph.tensors.len())
        .map(|t| locations[root[t]].unwrap_or(Location::Scratch(0)))
        .collect();
    let unplanned_len = graph
        .nodes
        .iter()
        .zip(&is_view)
        .filter(|(n, &v)| !v && !graph.is_output(n.output))
        .map(|(n, _)| numel(graph.shape(n.output)))
        .sum::<usize>()
        // Every node's workspace, too (recurrent layers).
        + workspace_len.iter().sum::<usize>();
    MemoryPlan {
        locations,
        is_view,
        workspace,
        scratch_len,
        scratch_i8_len,
        unplanned_len,
    }
}
