//! Tumbling windows: fixed size, back to back, aligned to epoch 0; a
//! record falls into exactly one. They are hopping windows whose advance
//! is their size.

use super::hopping::Hopping;
use super::interval::Window;

/// Tumbling windows of `size` ms.
pub fn tumbling(size: i64) -> Result<Hopping, String> {
    Hopping::new(size, size)
}

/// The one tumbling window of `size` that contains `t`.
pub fn window_of(size: i64, t: i64) -> Window {
    let start = t.div_euclid(size) * size;
    Window {
        start,
        end: start + size,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_record_is_in_exactly_one_window() {
        let t = tumbling(100).unwrap();
        for at in [-101, -1, 0, 1, 99, 100, 12_345] {
            let ws = t.windows_for(at);
            assert_eq!(ws, vec![window_of(100, at)], "{at}");
            assert!(ws[0].contains(at));
        }
        assert_eq!(
            window_of(100, 100),
            Window {
                start: 100,
                end: 200
            }
        );
        assert_eq!(
            window_of(100, -1),
            Window {
                start: -100,
                end: 0
            }
        );
    }
}
