//! Counter-based hashing: the only source of "randomness" in `synth`.
//!
//! Why counter-based: a sequential random generator makes the value of a voxel depend on the order in which voxels
//! are visited, so output would change with the thread count. Hashing `(seed, voxel index)` gives every voxel its
//! own independent draw, and the same draw whatever the schedule. The same hash derives UIDs and shuffled file
//! names from seeds, so two runs with the same inputs write byte-identical files.

/// Root of every UID written by `synth`: the `2.25` arc, whose next component is a UUID as a decimal integer
/// (PS3.5 B.2). Our UUIDs are RFC 9562 version 8 ("custom"), with 122 bits taken from a hash of the seeds.
pub const UID_ROOT: &str = "2.25";

/// The SplitMix64 finaliser (Steele, Lea and Flood 2014): a bijective 64-bit mix with good avalanche, cheap
/// enough to run once per voxel.
#[inline]
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Hash of a sequence of words (order matters).
#[inline]
pub(crate) fn hash_words(words: &[u64]) -> u64 {
    words.iter().fold(0x243F_6A88_85A3_08D3, |h, &w| splitmix64(h ^ w))
}

/// A standard normal draw for voxel `index` under `seed`: one hashed uniform through the inverse normal CDF.
///
/// Why the inverse CDF (P. J. Acklam's rational approximation, relative error below 1.2e-9) rather than
/// Box-Muller: it needs one uniform per voxel, and a logarithm only in the 4.85 % of draws that fall in the
/// tails, where Box-Muller pays a logarithm and a cosine for every voxel; noise was a third of the time spent
/// writing a series. The uniform lies in (0, 1) with 53-bit resolution, so draws are finite and bounded by
/// about 8.3 in magnitude.
#[inline]
pub fn gaussian(seed: u64, index: u64) -> f64 {
    const TWO_POW_M53: f64 = 1.0 / (1u64 << 53) as f64;
    let h = splitmix64(seed ^ splitmix64(index));
    let p = ((h >> 11) as f64 + 0.5) * TWO_POW_M53;
    inverse_normal_cdf(p)
}

/// Acklam's approximation of the standard normal quantile, for `p` in (0, 1).
#[inline]
fn inverse_normal_cdf(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    const P_LOW: f64 = 0.02425;
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < P_LOW {
        tail((-2.0 * p.ln()).sqrt())
    } else if p <= 1.0 - P_LOW {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    }
}

/// A UID `2.25.<decimal UUID>` derived from `seed` and the discriminating `words` (what the UID names).
///
/// At most 44 characters, so well within the 64 allowed for a UI value; never has a leading zero component.
pub fn derive_uid(seed: u64, words: &[u64]) -> String {
    let mut key = Vec::with_capacity(words.len() + 2);
    key.push(seed);
    key.extend_from_slice(words);
    key.push(1);
    let high = hash_words(&key);
    if let Some(last) = key.last_mut() {
        *last = 2;
    }
    let low = hash_words(&key);
    let mut value = (u128::from(high) << 64) | u128::from(low);
    // RFC 9562 version 8 (custom) in bits 76..80, variant 0b10 in bits 70..72.
    value = (value & !(0xF_u128 << 76)) | (0x8_u128 << 76);
    value = (value & !(0x3_u128 << 70)) | (0x2_u128 << 70);
    format!("{UID_ROOT}.{value}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaussian_has_unit_moments() {
        let n = 200_000u64;
        let (mut sum, mut sum_sq) = (0.0, 0.0);
        for i in 0..n {
            let g = gaussian(7, i);
            assert!(g.is_finite());
            sum += g;
            sum_sq += g * g;
        }
        let mean = sum / n as f64;
        let var = sum_sq / n as f64 - mean * mean;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.02, "variance {var}");
    }

    #[test]
    fn gaussian_has_normal_quantiles_and_coverage() {
        // Known quantiles of the standard normal distribution.
        for (p, z) in [
            (0.5, 0.0),
            (0.975, 1.959_963_984_540_054),
            (0.01, -2.326_347_874_040_841),
            (0.001, -3.090_232_306_167_813_5),
            (0.841_344_746_068_542_9, 1.0),
        ] {
            let got = inverse_normal_cdf(p);
            assert!((got - z).abs() < 1e-8, "p {p}: {got} vs {z}");
        }
        let n = 200_000u64;
        let within = |k: f64| (0..n).filter(|&i| gaussian(1, i).abs() < k).count() as f64 / n as f64;
        assert!((within(1.0) - 0.6827).abs() < 0.005);
        assert!((within(2.0) - 0.9545).abs() < 0.003);
        assert!((within(3.0) - 0.9973).abs() < 0.001);
    }

    #[test]
    fn gaussian_depends_on_seed_and_index_only() {
        assert_eq!(gaussian(3, 12345).to_bits(), gaussian(3, 12345).to_bits());
        assert_ne!(gaussian(3, 12345), gaussian(4, 12345));
        assert_ne!(gaussian(3, 12345), gaussian(3, 12346));
    }

    #[test]
    fn uids_are_valid_and_distinct() {
        let a = derive_uid(1, &[3, 0]);
        let b = derive_uid(1, &[3, 1]);
        let c = derive_uid(2, &[3, 0]);
        assert_eq!(a, derive_uid(1, &[3, 0]));
        assert!(a != b && a != c && b != c);
        for uid in [&a, &b, &c] {
            assert!(uid.len() <= 64);
            assert!(uid.starts_with("2.25."));
            let number = &uid[5..];
            assert!(!number.starts_with('0'));
            let value: u128 = number.parse().expect("decimal UUID");
            assert_eq!((value >> 76) & 0xF, 8, "version 8");
            assert_eq!((value >> 70) & 0x3, 2, "RFC variant");
        }
    }
}
