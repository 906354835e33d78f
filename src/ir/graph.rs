//! The graph: tensors, nodes in topological order, and the model's inputs and outputs.

use super::{checked_numel, Op};

pub type TensorId = usize;
pub type NodeId = usize;

/// A value flowing between nodes; its shape excludes the batch dimension.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
}

/// One layer call.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The Keras layer name (untrusted: goes through the Namer before reaching source).
    pub name: String,
    /// The Keras class name, for messages and summaries.
    pub class: String,
    pub op: Op,
    pub inputs: Vec<TensorId>,
    pub output: TensorId,
    /// Parameter count as Keras reports it (before folding).
    pub keras_params: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputDtype {
    F32,
    I32,
    /// A quantized model's int8 input or output (`--int8-io`), or an int8 buffer.
    I8,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GraphInput {
    pub name: String,
    pub tensor: TensorId,
    pub dtype: InputDtype,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GraphOutput {
    pub name: String,
    pub tensor: TensorId,
}

/// A model as ops over tensors. Nodes are kept in an order where every node comes after
/// the producers of its inputs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Graph {
    pub tensors: Vec<Tensor>,
    pub nodes: Vec<Node>,
    pub inputs: Vec<GraphInput>,
    pub outputs: Vec<GraphOutput>,
    /// Things the user should know (a dtype policy computed in f32, ...).
    pub notes: Vec<String>,
}

impl Graph {
    /// Declares a model input.
    pub fn add_input(
        &mut self,
        name: &str,
        shape: Vec<usize>,
        dtype: InputDtype,
    ) -> Result<TensorId, String> {
        if checked_numel(&shape).is_none() {
            return Err(format!("input shape {shape:?} is too large"));
        }
        let tensor = self.new_tensor(shape);
        self.inputs.push(GraphInput {
            name: name.to_string(),
            tensor,
            dtype,
        });
        Ok(tensor)
    }

    /// Adds a node after inferring its output shape.
    pub fn add_node(
        &mut self,
        name: &str,
        class: &str,
        op: Op,
        inputs: Vec<TensorId>,
        keras_params: usize,
    ) -> Result<TensorId, String> {
        let shapes: Vec<&[usize]> = inputs
            .iter()
            .map(|&t| self.tensors.get(t).map(|t| &t.shape[..]))
            .collect::<Option<_>>()
            .ok_or("input tensor does not exist")?;
        let shape = op.output_shape(&shapes)?;
        if checked_numel(&shape).is_none() {
            return Err(format!("output shape {shape:?} is too large"));
        }
        let output = self.new_tensor(shape);
        self.nodes.push(Node {
            name: name.to_string(),
            class: class.to_string(),
            op,
            inputs,
            output,
            keras_params,
        });
        Ok(output)
    }

    pub fn add_output(&mut self, name: &str, tensor: TensorId) {
        self.outputs.push(GraphOutput {
            name: name.to_string(),
            tensor,
        });
    }

    fn new_tensor(&mut self, shape: Vec<usize>) -> TensorId {
        self.tensors.push(Tensor { shape });
        self.tensors.len() - 1
    }

    pub fn shape(&self, tensor: TensorId) -> &[usize] {
        &self.tensors[tensor].shape
    }

    /// The element type of `tensor` in the generated code: a model input's, int8 for what
    /// a quantized op writes (see [`super::int8`]) and a reshape of int8, f32 otherwise.
    pub fn dtype(&self, tensor: TensorId) -> InputDtype {
        if let Some(input) = self.inputs.iter().find(|i| i.tensor == tensor) {
            return input.dtype;
        }
        let Some(node) = self.producer(tensor).map(|n| &self.nodes[n]) else {
            return InputDtype::F32;
        };
        match &node.op {
            Op::Int8(super::int8::QOp::Dequantize(_)) => InputDtype::F32,
            Op::Int8(_) => InputDtype::I8,
            Op::Reshape { .. } | Op::Identity => match self.dtype(node.inputs[0]) {
                InputDtype::I8 => InputDtype::I8,
                _ => InputDtype::F32,
            },
            _ => InputDtype::F32,
        }
    }

    /// The node that produces `tensor`, if any (model inputs have none).
    pub fn producer(&self, tensor: TensorId) -> Option<NodeId> {
        self.nodes.iter().position(|n| n.output == tensor)
    }

    /// Nodes that read `tensor`, in order.
    pub fn consumers(&self, tensor: TensorId) -> Vec<NodeId> {
        (0..self.nodes.len())
            .filter(|&n| self.nodes[n].inputs.contains(&tensor))
            .collect()
    }

    pub fn is_output(&self, tensor: TensorId) -> bool {
        self.outputs.iter().any(|o| o.tensor == tensor)
    }

    pub fn is_input(&self, tensor: TensorId) -> bool {
        self.inputs.iter().any(|i| i.tensor == tensor)
    }

    /// Keras's parameter count for the whole model.
    pub fn keras_params(&self) -> usize {
        self.nodes.iter().map(|n| n.keras_params).sum()
    }

    /// Multiply-accumulates per sample.
    pub fn macs(&self) -> usize {
        self.nodes
            .iter()
            .map(|n| n.op.macs(self.shape(n.inputs[0]), self.shape(n.output)))
            .sum()
    }

    /// Floats stored as constants by the generated code.
    pub fn weight_floats(&self) -> usize {
        self.nodes
            .iter()
            .flat_map(|n| n.op.weights())
            .map(|w| w.len())
            .sum()
    }
}
