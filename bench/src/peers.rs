//! The Python peers: `bench/peers.py ENGINE MODEL INPUT` speaks the worker protocol, its
//! first line `ready <package> <version>`; exit code 3 means the package is missing.

use std::path::Path;
use std::process::Command;

use crate::engine::{StartError, Worker};
use crate::fixture::PeerModel;

/// A Python peer engine.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    /// Result key, and the ENGINE argument of peers.py.
    pub key: &'static str,
    pub label: &'static str,
    /// Extension of the model file under bench/models/.
    pub ext: &'static str,
}

pub const PEERS: [Peer; 2] = [
    Peer {
        key: "ort",
        label: "onnxruntime, 1 thread",
        ext: "onnx",
    },
    Peer {
        key: "litert",
        label: "LiteRT (XNNPACK)",
        ext: "tflite",
    },
];

/// A started peer, with the package and version it reported.
pub struct Started {
    pub worker: Worker,
    pub version: String,
}

/// Starts `peer` on the fixture; `Err` is the message to print when it is skipped.
pub fn start(
    peer: Peer,
    model: &PeerModel,
    python: &Path,
    input: &Path,
    dir: &Path,
) -> Result<Started, String> {
    let (key, _) = model.name(peer.key, peer.label);
    let model = &model.path;
    if !model.exists() {
        return Err(format!("{} is missing", crate::shown(model)));
    }
    let script = crate::repo_root().join("bench/peers.py");
    if !script.exists() {
        return Err(format!("{} is missing", crate::shown(&script)));
    }
    let mut command = Command::new(python);
    command.arg(&script).arg(peer.key).arg(model).arg(input);
    let log = dir.join(format!("{key}.stderr.log"));
    match Worker::start(command, &log) {
        Ok(worker) => {
            let version = worker.ready.join(" ");
            Ok(Started { worker, version })
        }
        Err(StartError::Missing(why)) => Err(format!(
            "its Python package is not installed for {} ({why})",
            python.display()
        )),
        Err(StartError::Failed(why)) => Err(why),
    }
}
