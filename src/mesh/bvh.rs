//! A bounding-volume hierarchy over triangles, for the self-intersection and nesting checks.
//!
//! Why this shape: the checks run on every exported surface (~600k triangles) and must take well under a second.
//! Sorting triangles along a Morton curve of their centroids and building a *complete* binary tree over fixed-size
//! leaves in that order costs one parallel sort plus a linear pass, needs no pointers (node `k` has children `2k`
//! and `2k + 1`, and its leaf range follows from its depth), and gives tight boxes for surface meshes whose
//! triangles are of similar size. Node boxes are stored as `f32`, rounded outwards, to halve the memory traffic of
//! the traversal; exact decisions are left to the `f64` triangle tests.

use rayon::prelude::*;

/// Triangles per leaf.
const LEAF: usize = 4;

#[derive(Clone, Copy, Debug)]
pub(crate) struct Aabb {
    min: [f32; 3],
    max: [f32; 3],
}

impl Aabb {
    const EMPTY: Aabb = Aabb {
        min: [f32::INFINITY; 3],
        max: [f32::NEG_INFINITY; 3],
    };

    /// Box of `f64` extremes, rounded outwards so it contains them.
    fn from_f64(lo: [f64; 3], hi: [f64; 3]) -> Aabb {
        Aabb {
            min: [down(lo[0]), down(lo[1]), down(lo[2])],
            max: [up(hi[0]), up(hi[1]), up(hi[2])],
        }
    }

    fn union(self, o: Aabb) -> Aabb {
        Aabb {
            min: [
                self.min[0].min(o.min[0]),
                self.min[1].min(o.min[1]),
                self.min[2].min(o.min[2]),
            ],
            max: [
                self.max[0].max(o.max[0]),
                self.max[1].max(o.max[1]),
                self.max[2].max(o.max[2]),
            ],
        }
    }

    /// Closed boxes overlap (touching counts: touching triangles must be tested).
    #[inline]
    fn overlaps(&self, o: &Aabb) -> bool {
        self.min[0] <= o.max[0]
            && o.min[0] <= self.max[0]
            && self.min[1] <= o.max[1]
            && o.min[1] <= self.max[1]
            && self.min[2] <= o.max[2]
            && o.min[2] <= self.max[2]
    }

    /// Does the ray `origin + t dir`, `t >= 0`, meet the box? (`inv` = componentwise 1 / dir.)
    #[inline]
    fn hit_by_ray(&self, origin: [f64; 3], inv: [f64; 3]) -> bool {
        let mut t0 = 0.0f64;
        let mut t1 = f64::INFINITY;
        for a in 0..3 {
            let lo = (f64::from(self.min[a]) - origin[a]) * inv[a];
            let hi = (f64::from(self.max[a]) - origin[a]) * inv[a];
            let (lo, hi) = if lo <= hi { (lo, hi) } else { (hi, lo) };
            // NaN (0 * inf when the origin is on a slab plane of a parallel ray) must not reject the box.
            if lo > t0 {
                t0 = lo;
            }
            if hi < t1 {
                t1 = hi;
            }
        }
        t0 <= t1
    }
}

/// Largest `f32` not above `x`.
fn down(x: f64) -> f32 {
    let f = x as f32;
    if f64::from(f) > x {
        step_down(f)
    } else {
        f
    }
}

/// Smallest `f32` not below `x`.
fn up(x: f64) -> f32 {
    let f = x as f32;
    if f64::from(f) < x {
        -step_down(-f)
    } else {
        f
    }
}

fn step_down(f: f32) -> f32 {
    if f.is_nan() || f == f32::NEG_INFINITY {
        f
    } else if f == 0.0 {
        -f32::from_bits(1)
    } else if f > 0.0 {
        f32::from_bits(f.to_bits() - 1)
    } else {
        f32::from_bits(f.to_bits() + 1)
    }
}

/// Spreads the low 21 bits of `v` to every third bit.
fn spread(v: u64) -> u64 {
    let mut x = v & 0x1f_ffff;
    x = (x | (x << 32)) & 0x1f_0000_0000_ffff;
    x = (x | (x << 16)) & 0x1f_0000_ff00_00ff;
    x = (x | (x << 8)) & 0x100f_00f0_0f00_f00f;
    x = (x | (x << 4)) & 0x10c3_0c30_c30c_30c3;
    x = (x | (x << 2)) & 0x1249_2492_4924_9249;
    x
}

pub(crate) struct Bvh {
    /// Primitive ids in leaf order.
    pub(crate) order: Vec<u32>,
    /// Primitive boxes in leaf order.
    prim_boxes: Vec<Aabb>,
    /// Node boxes, heap layout (index 0 unused, root 1, leaves `leaves_pow2..2 * leaves_pow2`).
    nodes: Vec<Aabb>,
    leaves_pow2: usize,
}

impl Bvh {
    /// A BVH over the primitives `0..n` for which `prim_box` gives a box (`None`: left out).
    pub(crate) fn build(n: usize, prim_box: impl Fn(usize) -> Option<([f64; 3], [f64; 3])> + Sync) -> Bvh {
        let boxes: Vec<Aabb> = (0..n)
            .into_par_iter()
            .map(|i| prim_box(i).map_or(Aabb::EMPTY, |(lo, hi)| Aabb::from_f64(lo, hi)))
            .collect();
        let bounds = boxes
            .par_chunks(4096)
            .map(|c| c.iter().fold(Aabb::EMPTY, |acc, b| acc.union(*b)))
            .reduce(|| Aabb::EMPTY, Aabb::union);
        let scale: [f64; 3] = std::array::from_fn(|a| {
            let ext = f64::from(bounds.max[a]) - f64::from(bounds.min[a]);
            if ext > 0.0 && ext.is_finite() {
                1023.0 / ext
            } else {
                0.0
            }
        });
        // Sort key: 30-bit Morton code of the box centre (10 bits per axis: fine enough to order leaves of a few
        // triangles) above the 32-bit primitive id; left-out primitives sort last and are cut off.
        let mut keys: Vec<u64> = boxes
            .par_iter()
            .enumerate()
            .map(|(i, b)| {
                if b.min[0] > b.max[0] {
                    return u64::MAX;
                }
                let q = |a: usize| {
                    let c = 0.5 * (f64::from(b.min[a]) + f64::from(b.max[a]));
                    ((c - f64::from(bounds.min[a])) * scale[a]).clamp(0.0, 1023.0) as u64
                };
                let code = spread(q(0)) | (spread(q(1)) << 1) | (spread(q(2)) << 2);
                (code << 32) | i as u64
            })
            .collect();
        keys.par_sort_unstable();
        let kept = keys.partition_point(|&k| k != u64::MAX);
        keys.truncate(kept);
        let order: Vec<u32> = keys.par_iter().map(|&k| k as u32).collect();
        drop(keys);
        let prim_boxes: Vec<Aabb> = order.par_iter().map(|&i| boxes[i as usize]).collect();
        drop(boxes);
        let m = order.len();
        let leaves = m.div_ceil(LEAF).max(1);
        let leaves_pow2 = leaves.next_power_of_two();
        let mut nodes = vec![Aabb::EMPTY; 2 * leaves_pow2];
        nodes[leaves_pow2..leaves_pow2 + leaves]
            .par_iter_mut()
            .enumerate()
            .for_each(|(l, node)| {
                let end = ((l + 1) * LEAF).min(m);
                *node = prim_boxes[l * LEAF..end]
                    .iter()
                    .fold(Aabb::EMPTY, |acc, b| acc.union(*b));
            });
        for k in (1..leaves_pow2).rev() {
            nodes[k] = nodes[2 * k].union(nodes[2 * k + 1]);
        }
        Bvh {
            order,
            prim_boxes,
            nodes,
            leaves_pow2,
        }
    }

    /// Number of leaves holding primitives.
    pub(crate) fn leaf_count(&self) -> usize {
        self.order.len().div_ceil(LEAF)
    }

    /// Leaf range `[l0, l1)` covered by node `k`.
    #[inline]
    fn leaf_range(&self, k: usize) -> (usize, usize) {
        let depth = (usize::BITS - 1 - k.leading_zeros()) as usize;
        let span = self.leaves_pow2 >> depth;
        let l0 = (k - (1usize << depth)) * span;
        (l0, l0 + span)
    }

    /// Calls `f(p, q)` for every pair of leaf positions `p < q` whose boxes overlap, with `p` in leaf `leaf`.
    /// Over all leaves, each overlapping pair is visited exactly once. Working leaf against tree (rather than
    /// primitive against tree) divides the traversals by the leaf size.
    pub(crate) fn for_each_pair_from_leaf(&self, leaf: usize, mut f: impl FnMut(usize, usize)) {
        let n = self.order.len();
        let own = (leaf * LEAF)..((leaf + 1) * LEAF).min(n);
        // Pairs inside the leaf.
        for p in own.clone() {
            for q in p + 1..own.end {
                if self.prim_boxes[p].overlaps(&self.prim_boxes[q]) {
                    f(p, q);
                }
            }
        }
        let lb = self.nodes[self.leaves_pow2 + leaf];
        let mut stack = [0usize; 72];
        let mut sp = 1;
        stack[0] = 1;
        while sp > 0 {
            sp -= 1;
            let k = stack[sp];
            let (l0, l1) = self.leaf_range(k);
            if l1 <= leaf + 1 || !self.nodes[k].overlaps(&lb) {
                continue;
            }
            if k >= self.leaves_pow2 {
                for q in (l0 * LEAF)..(l1 * LEAF).min(n) {
                    let qb = &self.prim_boxes[q];
                    if !qb.overlaps(&lb) {
                        continue;
                    }
                    for p in own.clone() {
                        if self.prim_boxes[p].overlaps(qb) {
                            f(p, q);
                        }
                    }
                }
            } else {
                stack[sp] = 2 * k + 1;
                stack[sp + 1] = 2 * k;
                sp += 2;
            }
        }
    }

    /// Calls `f(id)` for every primitive whose box the ray `origin + t dir` (`t >= 0`) meets.
    pub(crate) fn for_each_on_ray(&self, origin: [f64; 3], dir: [f64; 3], mut f: impl FnMut(u32)) {
        let n = self.order.len();
        let inv = [1.0 / dir[0], 1.0 / dir[1], 1.0 / dir[2]];
        let mut stack = [0usize; 72];
        let mut sp = 1;
        stack[0] = 1;
        while sp > 0 {
            sp -= 1;
            let k = stack[sp];
            if !self.nodes[k].hit_by_ray(origin, inv) {
                continue;
            }
            if k >= self.leaves_pow2 {
                let (l0, l1) = self.leaf_range(k);
                for q in (l0 * LEAF)..(l1 * LEAF).min(n) {
                    if self.prim_boxes[q].hit_by_ray(origin, inv) {
                        f(self.order[q]);
                    }
                }
            } else {
                stack[sp] = 2 * k + 1;
                stack[sp + 1] = 2 * k;
                sp += 2;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unit boxes on a line with a few overlaps; every 10th left out.
    fn prim(i: usize) -> Option<([f64; 3], [f64; 3])> {
        let x = i as f64 * 0.75;
        (i % 10 != 9).then_some(([x, 0.0, 0.0], [x + 1.0, 1.0, 1.0]))
    }

    #[test]
    fn overlap_pairs_match_brute_force() {
        for n in [1usize, 3, 4, 5, 103] {
            let bvh = Bvh::build(n, prim);
            let mut found = Vec::new();
            for leaf in 0..bvh.leaf_count() {
                bvh.for_each_pair_from_leaf(leaf, |p, q| {
                    let (a, b) = (bvh.order[p], bvh.order[q]);
                    found.push((a.min(b), a.max(b)));
                });
            }
            found.sort_unstable();
            let mut brute = Vec::new();
            for i in 0..n {
                for j in i + 1..n {
                    if let (Some(a), Some(b)) = (prim(i), prim(j)) {
                        if (0..3).all(|k| a.0[k] <= b.1[k] && b.0[k] <= a.1[k]) {
                            brute.push((i as u32, j as u32));
                        }
                    }
                }
            }
            assert_eq!(found, brute, "n = {n}");
        }
    }

    #[test]
    fn ray_finds_boxes_it_crosses() {
        let bvh = Bvh::build(20, prim);
        let mut hits = Vec::new();
        bvh.for_each_on_ray([5.2, 0.5, 0.5], [0.0, 0.0, 1.0], |id| hits.push(id));
        hits.sort_unstable();
        // x = 5.2 lies in boxes starting at 0.75 i with 0.75 i <= 5.2 <= 0.75 i + 1: i = 6.
        assert_eq!(hits, vec![6]);
    }

    #[test]
    fn outward_rounding_contains_the_value() {
        for x in [0.1f64, -0.1, 1e-30, -3.3e7, 123.456_789_123] {
            assert!(f64::from(down(x)) <= x && f64::from(up(x)) >= x, "{x}");
        }
    }
}
