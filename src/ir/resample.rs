//! Index tables of the resampling ops, computed once here for the interpreter and the
//! lowering alike: where each output position along one axis reads its input.
//!
//! - [`resize_taps`]: TensorFlow's `ResizeBilinear` / `ResizeNearestNeighbor` with
//!   `half_pixel_centers=True` (what `tf.image.resize` runs, and so Keras's `Resizing` and
//!   `smart_resize`), in f32 exactly as TensorFlow computes them, so that floors and
//!   interpolation weights are the same bits.
//! - [`adaptive_windows`]: the windows of Keras 3's adaptive pooling,
//!   `floor(i * in / out) .. ceil((i + 1) * in / out)`.

/// How [`super::Op::Resize`] samples its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResizeMethod {
    /// `in = min(floor((o + 0.5) * scale), len - 1)`.
    Nearest,
    /// `in = (o + 0.5) * scale - 0.5`, interpolating between `max(floor(in), 0)` and
    /// `min(ceil(in), len - 1)` with weight `in - floor(in)`.
    Bilinear,
}

/// One output position of a resize along one axis: the two input positions it reads and
/// the weight of the second (`lo == hi`, weight 0 for nearest).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResizeTap {
    pub lo: usize,
    pub hi: usize,
    pub lerp: f32,
}

/// The taps of every output position when an axis of `in_len` positions is resized to
/// `out_len` (both positive), as TensorFlow computes them: `scale = in_len as f32 /
/// out_len as f32`, then per position in f32.
pub fn resize_taps(in_len: usize, out_len: usize, method: ResizeMethod) -> Vec<ResizeTap> {
    let scale = in_len as f32 / out_len as f32;
    let last = in_len.saturating_sub(1);
    (0..out_len)
        .map(|o| match method {
            ResizeMethod::Nearest => {
                let at = ((o as f32 + 0.5) * scale).floor();
                let lo = (at.max(0.0) as usize).min(last);
                ResizeTap {
                    lo,
                    hi: lo,
                    lerp: 0.0,
                }
            }
            ResizeMethod::Bilinear => {
                let at = (o as f32 + 0.5) * scale - 0.5;
                let floor = at.floor();
                ResizeTap {
                    lo: (floor.max(0.0) as usize).min(last),
                    hi: (at.ceil().max(0.0) as usize).min(last),
                    lerp: at - floor,
                }
            }
        })
        .collect()
}

/// The `[start, end)` input window of every output position of an adaptive pooling of an
/// axis of `in_len` positions to `out_len` (both positive).
pub fn adaptive_windows(in_len: usize, out_len: usize) -> Vec<(usize, usize)> {
    let (n, out) = (in_len as u64, out_len.max(1) as u64);
    (0..out)
        .map(|i| {
            let start = (i * n / out).min(n.saturating_sub(1));
            let end = ((i + 1) * n).div_ceil(out).min(n);
            (start as usize, end as usize)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bilinear_taps_follow_tensorflow() {
        // 4 -> 8: half-pixel centres at -0.25, 0.25, 0.75, ...; the edges clamp.
        let taps = resize_taps(4, 8, ResizeMethod::Bilinear);
        assert_eq!(
            taps[0],
            ResizeTap {
                lo: 0,
                hi: 0,
                lerp: 0.75
            }
        );
        assert_eq!(
            taps[1],
            ResizeTap {
                lo: 0,
                hi: 1,
                lerp: 0.25
            }
        );
        assert_eq!((taps[7].lo, taps[7].hi), (3, 3));
        // 5 -> 3 (down): centres at 0.3333, 2.0, 3.6667.
        let taps = resize_taps(5, 3, ResizeMethod::Bilinear);
        assert_eq!(
            taps.iter().map(|t| (t.lo, t.hi)).collect::<Vec<_>>(),
            [(0, 1), (2, 2), (3, 4)]
        );
    }

    #[test]
    fn nearest_taps_round_in_f32_as_tensorflow() {
        assert_eq!(
            resize_taps(3, 6, ResizeMethod::Nearest)
                .iter()
                .map(|t| t.lo)
                .collect::<Vec<_>>(),
            [0, 0, 1, 1, 2, 2]
        );
        // 10 -> 3: (1 + 0.5) * 3.3333333f rounds to exactly 5.0 in f32 (5 - 1.2e-7 in
        // exact arithmetic would floor to 4).
        assert_eq!(resize_taps(10, 3, ResizeMethod::Nearest)[1].lo, 5);
    }

    #[test]
    fn adaptive_windows_cover_the_axis() {
        assert_eq!(adaptive_windows(5, 3), [(0, 2), (1, 4), (3, 5)]);
        assert_eq!(adaptive_windows(8, 4), [(0, 2), (2, 4), (4, 6), (6, 8)]);
        assert_eq!(
            adaptive_windows(3, 5),
            [(0, 1), (0, 2), (1, 2), (1, 3), (2, 3)]
        );
    }
}
