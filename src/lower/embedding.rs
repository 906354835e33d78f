//! The Embedding kernel in the shared loop language: one table row per index, the index
//! clamped into the table as it is read.

use super::loops::{for_, Buf, Index, Ix, Place, Stmt, Val};
use super::WeightId;

/// The kernel of `Op::Embedding`: `count` indices, each selecting a row of the 2-D weight
/// array `table` (`rows` x `dim`); `integer` when the indices arrive as `i32`.
pub fn embedding(
    count: usize,
    rows: usize,
    dim: usize,
    table: WeightId,
    integer: bool,
) -> Vec<Stmt> {
    let i = Ix::default().plus("i", 1);
    for_(
        "i",
        count,
        vec![Stmt::LetIndex {
            name: "row".into(),
            value: Index::Lookup {
                input: 0,
                ix: i,
                max: rows - 1,
                integer,
            },
        }]
        .into_iter()
        .chain(for_(
            "o",
            dim,
            vec![
                Place::Out(Ix::default().plus("i", dim).plus("o", 1)).set(Val::load(
                    Buf::W2(table, Ix::default().plus("row", 1)),
                    Ix::default().plus("o", 1),
                )),
            ],
        ))
        .collect(),
    )
}
