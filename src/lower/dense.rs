//! Matrix-vector products, register-blocked: Dense layers and the gate sums of recurrent
//! layers.
//!
//! `y[o] = bias[o] + sum_i x[i] * w[i][o]` is computed one tile of outputs at a time, in a
//! local array of accumulators small enough for the compiler to keep in vector registers:
//! `acc[p][o]` holds the partial sum over the inputs `i = j * P + p` (`P` independent
//! partial sums, so that enough additions are in flight to hide their latency). The
//! partials are added in a fixed tree (`acc[p] += acc[p + P/2]`, then `P/4`, ...), then
//! the bias. The weights stay in Keras layout `[in][out]`: row `i` is read contiguously
//! along the tile. With one output (`units == 1`) the same loops run over `P` inputs at a
//! time, so the product is vectorised over the inputs instead.
//!
//! Both backends print these loops as they are, so the order of every addition is fixed
//! here (Rust never reassociates; C++ agrees bit for bit without FMA contraction).

use super::epilogue::Epilogue;
use super::loops::{for_, Array, Buf, Ix, Place, Stmt, Val};
use super::{Blocking, Kernel, WeightId};

/// Accumulators per tile, in f32s: `P * tile` stays at or under this (8 AVX2 registers, 16
/// SSE ones). On B1, 32 gave 478 ns (rustc native) and 243 ns (g++ -O3 native), 64 gave 120
/// and 113 ns, 128 gave no gain for g++ and a slowdown for rustc. `P` decides the order of
/// the additions, so it is the same for every tuning: computed from this and [`TILE`].
pub const ACCUMULATORS: usize = 64;

// Rows added to each accumulator per statement ([`super::Blocking::rows`], a backend's
// tuning): each accumulator is read and written once per this many rows, with the sum
// still taken row by row (so the result does not depend on it). It matters where the
// accumulators end up in memory: g++ keeps them in registers only when the product is not
// inside another loop (a recurrent step, a row loop). Measured (best of runs, ns per call;
// B1 = 33->64->32->1, B3 = LSTM(32) over 50x8):
//
// | rows | B1 rustc native | B1 rustc | B1 g++ -O3 native | B1 g++ -O2 | B3 rustc native | B3 rustc | B3 g++ -O3 native | B3 g++ -O2 |
// |---|---|---|---|---|---|---|---|---|
// | 1 | 120 | 313 | 113 | 486 | 12,900 | 46,800 | 17,800 | 107,700 |
// | 2 | 123 | 234 | 123 | 289 | 12,900 | 45,500 | 15,700 | 95,900 |
// | 4 | 122 | 342 | 116 | 243 | 21,000 | 63,300 | 14,200 | 93,800 |

/// The widest tile of outputs whose partial sums are decided together (wider layers loop
/// over tiles). A tuning may compute a tile in narrower pieces ([`Blocking::tile`]), each
/// with the tile's partial sums.
pub const TILE: usize = 64;

/// `count` rows of a matrix-vector product: the vector is read from `buf` at `base + i`,
/// row `i` of the weights is `weight[i][col..]` (column `c` of the weights is output channel
/// `c`).
#[derive(Debug, Clone)]
pub(crate) struct Rows {
    pub buf: Buf,
    pub base: Ix,
    pub count: usize,
    pub weight: Kernel,
    pub col: usize,
    /// The weights are packed tile by tile: tile `k`'s row `i` is row `k * count + i`, its
    /// columns `0..tile`.
    pub packed: bool,
}

fn at(var: &str) -> Ix {
    Ix::default().plus(var, 1)
}

/// The largest power of two that is at most `n` (and at least 1).
fn pow2_floor(n: usize) -> usize {
    if n <= 1 {
        1
    } else {
        1 << (usize::BITS - 1 - n.leading_zeros())
    }
}

/// Rows each partial sum adds at least: with fewer, the tree that adds the partials costs
/// more than the latency it hides (a transformer's 8 -> 8 Dense per token ran 30% slower
/// with 8 partials of one row each).
const MIN_ROWS_PER_PARTIAL: usize = 4;

/// Partial sums per output for a tile `width` wide over `rows` rows whose first source
/// has `first` rows: a power of two, `partials * width <= ACCUMULATORS`, at most `first`
/// (those rows set the accumulators) and at most `rows / MIN_ROWS_PER_PARTIAL`.
fn partials(width: usize, rows: usize, first: usize) -> usize {
    pow2_floor(ACCUMULATORS / width.max(1))
        .min(pow2_floor(first))
        .min(pow2_floor(rows / MIN_ROWS_PER_PARTIAL))
}

/// Loops computing `sum_s sum_i rows_s.x[i] * rows_s.w[i][rows_s.col + o]` for the
/// `units` outputs `o`, tile by tile in local array `acc`; `finish(o, sum)` gives the
/// statements that use each sum (`o` is an index expression).
pub(crate) fn matvec(
    units: usize,
    sources: &[Rows],
    blocking: Blocking,
    finish: &dyn Fn(Ix, Val) -> Vec<Stmt>,
) -> Vec<Stmt> {
    if units == 0 {
        return Vec::new();
    }
    let width = units.min(TILE);
    let (tiles, rest) = (units / width, units % width);
    let rows = sources.iter().map(|s| s.count).sum();
    let first = sources.first().map_or(1, |s| s.count);
    // A tile's pieces of `blocking.tile` outputs; `base` counts the pieces before it (the
    // index of a packed weight block: see `Rows`).
    let pieces = |width: usize, start: Ix, base: Ix| -> Vec<Stmt> {
        let p = partials(width, rows, first);
        let piece = blocking.tile.clamp(1, width);
        let (n, r) = (width / piece, width % piece);
        let index = |extra: Ix| base.clone().add_scaled(&extra, 1);
        let mut body = Vec::new();
        if n == 1 && r == 0 {
            return tile(
                width,
                start,
                index(Ix::default()),
                sources,
                p,
                blocking,
                finish,
            );
        }
        if n > 0 {
            let at = start.clone().plus("os", piece);
            let inner = tile(piece, at, index(at_var("os")), sources, p, blocking, finish);
            body.extend(scoped(for_("os", n, inner)));
        }
        if r > 0 {
            let at = start.offset((n * piece) as isize);
            let inner = tile(r, at, index(Ix::constant(n)), sources, p, blocking, finish);
            body.push(Stmt::Block(inner));
        }
        body
    };
    let mut out = Vec::new();
    if tiles > 0 {
        let per_tile = width / blocking.tile.clamp(1, width);
        let body = pieces(
            width,
            Ix::default().plus("ob", width),
            Ix::default().plus("ob", per_tile),
        );
        out.extend(scoped(for_("ob", tiles, body)));
    }
    if rest > 0 {
        let before = tiles * (width / blocking.tile.clamp(1, width));
        let body = pieces(rest, Ix::constant(tiles * width), Ix::constant(before));
        out.push(Stmt::Block(body));
    }
    out
}

fn at_var(var: &str) -> Ix {
    Ix::default().plus(var, 1)
}

/// A loop that ran once leaves its body in the caller's scope: give it its own.
fn scoped(stmts: Vec<Stmt>) -> Vec<Stmt> {
    match stmts.as_slice() {
        [Stmt::For { .. } | Stmt::Block(_)] => stmts,
        _ => vec![Stmt::Block(stmts)],
    }
}

/// Rows per statement for `blocks` blocks of rows: the tuning's `rows`, or one fewer where
/// that leaves no remainder and `rows` would (a remainder is one more statement of code).
/// On the Cortex-M4, rows 3 with this rule took the seed MLP from 2.51 to 2.47
/// instructions per MAC at 3% more code (see `MCU_TUNING`).
fn rows_per_pass(rows: usize, blocks: usize) -> usize {
    let rows = rows.max(1);
    if rows > 2 && !blocks.is_multiple_of(rows) && blocks.is_multiple_of(rows - 1) {
        rows - 1
    } else {
        rows
    }
}

/// One tile: outputs `start + o` for `o < width`.
#[allow(clippy::too_many_arguments)]
fn tile(
    width: usize,
    start: Ix,
    index: Ix,
    sources: &[Rows],
    p: usize,
    blocking: Blocking,
    finish: &dyn Fn(Ix, Val) -> Vec<Stmt>,
) -> Vec<Stmt> {
    // The first rows of the first source set the accumulators (a zeroed array would be
    // one more pass, and g++ then keeps it in memory instead of registers).
    let acc = |ix: Ix| Val::load(Buf::Local(Array::named("acc".into())), ix);
    let mut body = vec![Stmt::local(Array::named("acc".into()), p * width)];
    for (k, s) in sources.iter().enumerate() {
        // `blocks` blocks of rows from `first` in one pass: partial sum `q < n` adds rows
        // `first + b * p + q` for `b < blocks`, in that order, in one statement.
        let pass = |first: Ix, blocks: usize, n: usize, set: bool| {
            // Partial sum `q` (a loop variable, or a constant where the loop is written
            // out) of the `o` loop.
            let stmt = |q: Ix| {
                let ix = Ix::default().add_scaled(&q, width).plus("o", 1);
                let term = |b: usize| {
                    let row = first.clone().offset((b * p) as isize).add_scaled(&q, 1);
                    let x = Val::load(s.buf.clone(), s.base.clone().add_scaled(&row, 1));
                    let col = start.clone().offset(s.col as isize).plus("o", 1);
                    if s.packed {
                        let w_row = row.add_scaled(&index, s.count);
                        return x * s.weight.load(w_row, at("o"), col);
                    }
                    x * s.weight.load(row, col.clone(), col)
                };
                if set {
                    let sum = (1..blocks).fold(term(0), |sum, b| sum + term(b));
                    Place::Local(Array::named("acc".into()), ix).set(sum)
                } else if blocks == 1 {
                    Place::Local(Array::named("acc".into()), ix).accumulate(term(0))
                } else {
                    let sum = (0..blocks).fold(acc(ix.clone()), |sum, b| sum + term(b));
                    Place::Local(Array::named("acc".into()), ix).set(sum)
                }
            };
            if width >= 8 && n >= 4 {
                // One `o` loop per partial sum: with a loop of 4 or more partials around
                // `o` loops of 8 or more, LLVM unrolled the `o` loop and vectorised the
                // partials with gathers and scatters, up to 20 times slower (B1 with 128
                // accumulators: 2.2 us; written out: 0.13 us). With 2 partials the loop
                // is better (B1 rustc native: 0.13 us, written out 0.33 us).
                (0..n)
                    .flat_map(|q| for_("o", width, vec![stmt(Ix::constant(q))]))
                    .collect()
            } else {
                for_("p", n, for_("o", width, vec![stmt(at("p"))]))
            }
        };
        let (mut blocks, tail) = (s.count / p, s.count % p);
        let rows_per_pass = rows_per_pass(blocking.rows, blocks);
        let mut first = 0;
        if k == 0 && blocks == 0 {
            // No rows at all: the sums are zero.
            let zero = Place::Local(Array::named("acc".into()), at("q")).set(Val::Const(0.0));
            body.extend(for_("q", p * width, vec![zero]));
        } else if k == 0 {
            let n = blocks.min(rows_per_pass);
            body.extend(pass(Ix::default(), n, p, true));
            blocks -= n;
            first += n * p;
        }
        let groups = blocks / rows_per_pass;
        if groups > 0 {
            let rows = Ix::constant(first).plus("j", p * rows_per_pass);
            body.extend(for_("j", groups, pass(rows, rows_per_pass, p, false)));
            first += groups * p * rows_per_pass;
        }
        let rest = blocks % rows_per_pass;
        if rest > 0 {
            body.extend(pass(Ix::constant(first), rest, p, false));
            first += rest * p;
        }
        if tail > 0 {
            body.extend(pass(Ix::constant(first), 1, tail, false));
        }
    }
    // The partial sums, added in a fixed tree.
    let mut half = p / 2;
    while half > 0 {
        let q = at("q");
        body.extend(for_(
            "q",
            half * width,
            vec![Place::Local(Array::named("acc".into()), q.clone())
                .accumulate(acc(q.offset((half * width) as isize)))],
        ));
        half /= 2;
    }
    body.extend(for_("o", width, finish(start.plus("o", 1), acc(at("o")))));
    body
}

/// A Dense layer: `rows` independent rows of `y = epilogue(x · W + b)` from input 0 into
/// the output.
#[allow(clippy::too_many_arguments)]
pub(crate) fn dense(
    rows: usize,
    inputs: usize,
    units: usize,
    kernel: Kernel,
    packed: bool,
    bias: Option<WeightId>,
    epilogue: Epilogue,
    blocking: Blocking,
) -> Vec<Stmt> {
    let source = Rows {
        buf: Buf::In(0),
        base: Ix::default().plus("r", inputs),
        count: inputs,
        weight: kernel,
        col: 0,
        packed,
    };
    let finish = |o: Ix, sum: Val| {
        let value = match bias {
            Some(b) => Val::load(Buf::W(b), o.clone()) + sum,
            None => sum,
        };
        let dst = Ix::default().plus("r", units).add_scaled(&o, 1);
        let (mut stmts, value) = epilogue.finish(value, &o, &dst, "v");
        stmts.push(Place::Out(dst).set(value));
        stmts
    };
    let mut body = matvec(units, &[source], blocking, &finish);
    // Alone in the function (or the row loop), a tile needs no scope of its own.
    if let [Stmt::Block(inner)] = body.as_mut_slice() {
        body = std::mem::take(inner);
    }
    for_("r", rows, body)
}
