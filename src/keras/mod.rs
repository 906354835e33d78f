//! TEMPORARY stand-in until the frontend lands.
use crate::ir::Graph;
use std::path::Path;

pub fn load_bytes(
    model_name: &Path,
    _bytes: &[u8],
    _config: Option<(&Path, &[u8])>,
) -> crate::Result<Graph> {
    Err(crate::Error::Format {
        path: model_name.to_path_buf(),
        message: "frontend not merged yet".into(),
    })
}
