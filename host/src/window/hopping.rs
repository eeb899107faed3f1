//! Hopping windows: size `size`, a new window every `advance`
//! (`advance <= size`), aligned to epoch 0. A record at `t` falls into
//! every window whose start is a multiple of `advance` in `(t - size, t]`:
//! `size / advance` windows when `advance` divides `size`.

use super::interval::Window;

/// Hopping windows of one size and advance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hopping {
    size: i64,
    advance: i64,
}

impl Hopping {
    /// Windows of `size` ms starting every `advance` ms.
    pub fn new(size: i64, advance: i64) -> Result<Hopping, String> {
        if size <= 0 {
            return Err(format!("the window size must be positive, got {size} ms"));
        }
        if advance <= 0 || advance > size {
            return Err(format!(
                "the advance must be positive and at most the size ({size} ms), got {advance} ms"
            ));
        }
        Ok(Hopping { size, advance })
    }

    /// The size.
    pub fn size(&self) -> i64 {
        self.size
    }

    /// The advance.
    pub fn advance(&self) -> i64 {
        self.advance
    }

    /// The windows that contain event time `t`, earliest first.
    pub fn windows_for(&self, t: i64) -> Vec<Window> {
        let last_start = t.div_euclid(self.advance) * self.advance;
        let mut out = Vec::with_capacity((self.size / self.advance) as usize + 1);
        let mut start = last_start;
        while start > t - self.size {
            out.push(Window {
                start,
                end: start + self.size,
            });
            start -= self.advance;
        }
        out.reverse();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_falls_into_every_window_that_covers_it() {
        // 5-minute windows advancing by 1 minute (the page-views example).
        let h = Hopping::new(300_000, 60_000).unwrap();
        let ws = h.windows_for(610_000);
        assert_eq!(ws.len(), 5);
        assert_eq!(
            ws[0],
            Window {
                start: 360_000,
                end: 660_000
            }
        );
        assert_eq!(
            ws[4],
            Window {
                start: 600_000,
                end: 900_000
            }
        );
        assert!(ws.iter().all(|w| w.contains(610_000)));
        // Exactly at a boundary: the window starting there, not the one ending there.
        let at = h.windows_for(600_000);
        assert_eq!(at.first().unwrap().start, 360_000);
        assert_eq!(at.last().unwrap().start, 600_000);
        assert!(at.iter().all(|w| w.end != 600_000));
        // Before the epoch, still aligned to 0.
        let neg = Hopping::new(10, 5).unwrap().windows_for(-3);
        assert_eq!(
            neg,
            vec![Window { start: -10, end: 0 }, Window { start: -5, end: 5 }]
        );
        // An advance that does not divide the size.
        let odd = Hopping::new(10, 4).unwrap().windows_for(9);
        assert_eq!(
            odd.iter().map(|w| w.start).collect::<Vec<_>>(),
            vec![0, 4, 8]
        );
        assert!(
            Hopping::new(10, 11)
                .unwrap_err()
                .contains("at most the size")
        );
        assert!(Hopping::new(0, 1).unwrap_err().contains("positive"));
    }

    #[test]
    fn windows_for_matches_a_brute_force_scan() {
        for (size, advance) in [(10, 10), (10, 3), (7, 2), (60, 15)] {
            let h = Hopping::new(size, advance).unwrap();
            for t in -50..150 {
                let brute: Vec<Window> = (-200..200)
                    .filter(|s: &i64| s.rem_euclid(advance) == 0)
                    .map(|start| Window {
                        start,
                        end: start + size,
                    })
                    .filter(|w| w.contains(t))
                    .collect();
                assert_eq!(
                    h.windows_for(t),
                    brute,
                    "size {size} advance {advance} t {t}"
                );
            }
        }
    }
}
