//! The Poisson upper tail `P(X ≥ x)` for `X ~ Poisson(λ)`, in log10 so
//! that the tiny p-values of real spikes (1e-30 and below) do not underflow.

use std::f64::consts::{LN_10, PI};

/// Terms of the tail series summed exactly; the rest is bounded by a
/// geometric series (so the result errs on the large, conservative side).
const SERIES_TERMS: u32 = 64;

/// `log10 P(X ≥ x)` for `X ~ Poisson(lambda)`.
///
/// Returns `0.0` (p taken as 1) when `x ≤ lambda`: such a count is never
/// "significantly above" its expectation, and the detector only needs the
/// tail above the mean. A non-positive or non-finite `lambda` with `x > 0`
/// gives `f64::NEG_INFINITY` (any post is infinitely surprising); `x = 0`
/// always gives `0.0`.
pub fn log10_poisson_upper_tail(x: u64, lambda: f64) -> f64 {
    if x == 0 {
        return 0.0;
    }
    if !(lambda.is_finite() && lambda > 0.0) {
        return f64::NEG_INFINITY;
    }
    let xf = x as f64;
    if xf <= lambda {
        return 0.0;
    }
    // P(X ≥ x) = P(X = x) · (1 + λ/(x+1) + λ²/((x+1)(x+2)) + ...); each
    // ratio is below 1 because x > λ, so the series converges.
    let ln_first = -lambda + xf * lambda.ln() - ln_factorial(xf);
    let mut sum = 1.0;
    let mut term = 1.0;
    let mut i = 1.0;
    for _ in 0..SERIES_TERMS {
        let ratio = lambda / (xf + i);
        term *= ratio;
        sum += term;
        if term < sum * 1e-15 {
            break;
        }
        i += 1.0;
    }
    // Bound what is left by a geometric series with the last ratio.
    let q = lambda / (xf + i);
    if q < 1.0 {
        sum += term * q / (1.0 - q);
    }
    ((ln_first + sum.ln()) / LN_10).min(0.0)
}

/// `ln(n!)` for a non-negative whole `n` given as `f64`.
fn ln_factorial(n: f64) -> f64 {
    if n < 16.0 {
        let mut acc = 0.0;
        let mut k = 2.0;
        while k <= n {
            acc += f64::ln(k);
            k += 1.0;
        }
        return acc;
    }
    // Stirling's series; the error is below 1e-12 from n = 16 on.
    n * n.ln() - n + 0.5 * (2.0 * PI * n).ln() + 1.0 / (12.0 * n) - 1.0 / (360.0 * n.powi(3))
        + 1.0 / (1260.0 * n.powi(5))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exact tail by summing the pmf directly (small cases only).
    fn exact(x: u64, lambda: f64) -> f64 {
        let mut below = 0.0;
        let mut pmf = (-lambda).exp();
        for k in 0..x {
            below += pmf;
            pmf *= lambda / (k + 1) as f64;
        }
        (1.0 - below).log10()
    }

    #[test]
    fn matches_direct_sum() {
        for &(x, lambda) in &[(3u64, 1.0), (8, 2.0), (12, 4.5), (20, 6.0), (30, 10.0)] {
            let got = log10_poisson_upper_tail(x, lambda);
            let want = exact(x, lambda);
            assert!((got - want).abs() < 1e-6, "x={x} λ={lambda}: {got} vs {want}");
        }
    }

    #[test]
    fn known_values() {
        // P(X ≥ 8 | λ = 2) = 0.001097...
        assert!((log10_poisson_upper_tail(8, 2.0) - 0.001_097_5_f64.log10()).abs() < 1e-3);
        // Far tails stay finite instead of underflowing.
        let far = log10_poisson_upper_tail(1000, 10.0);
        assert!(far.is_finite() && far < -600.0);
        assert_eq!(log10_poisson_upper_tail(0, 5.0), 0.0);
        assert_eq!(log10_poisson_upper_tail(4, 5.0), 0.0);
        assert_eq!(log10_poisson_upper_tail(1, 0.0), f64::NEG_INFINITY);
    }

    #[test]
    fn stirling_agrees_with_the_loop() {
        let mut acc = 0.0;
        for k in 2..40u32 {
            acc += f64::from(k).ln();
            assert!((ln_factorial(f64::from(k)) - acc).abs() < 1e-9, "k={k}");
        }
    }
}
