//! Coordinated groups: connected components of the strong edges, scored.
//!
//! An edge is strong when its total weight (coincidences of every type
//! together) reaches `min_weight`. Accounts with fewer than `min_degree`
//! strong edges are peeled off, repeatedly (a k-core), because chance
//! coincidences make stars and chains while campaigns make dense
//! clusters. Components are found by union–find over the strong edges
//! that remain; a component with fewer than `k` accounts is dropped
//! here, before anything about it leaves the module.
//!
//! The score ranks groups for display:
//! `size × density × (1 + time_compression) × ln(1 + mean edge weight)`,
//! where density is the share of member pairs joined by a strong edge and
//! time compression is `1 − mean(|t_u − t_v| / Δ)` over the coincidences
//! (1: simultaneous posts, 0: posts a whole window apart).

use super::{Coordinator, EdgeType, Evidence};
use crate::narrative::NarrativeId;
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};

/// Most evidence events listed per group.
const EVIDENCE_PER_GROUP: usize = 32;
/// Most narrative ids listed per group.
const NARRATIVES_PER_GROUP: usize = 32;

/// One coordinated group: an aggregate finding about a campaign.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Group {
    /// 16 hex digits, a hash of the sorted member pseudonyms.
    pub id: String,
    /// Member pseudonyms, sorted (at least `k`).
    pub accounts: Vec<String>,
    /// Strong edges between members (indices into `accounts`).
    pub edges: Vec<GroupEdge>,
    /// Share of member pairs joined by a strong edge.
    pub density: f64,
    /// Sum of the strong edges' weights.
    pub total_weight: u64,
    /// That sum per type, indexed by [`EdgeType::index`].
    pub weight_by_type: [u64; EdgeType::COUNT],
    /// The types present, in [`EdgeType::ALL`] order.
    pub types: Vec<EdgeType>,
    /// `1 − mean(|t_u − t_v| / Δ)` over the coincidences.
    pub time_compression: f64,
    /// First and last coincidence (ms).
    pub first_ms: i64,
    pub last_ms: i64,
    /// See the module doc.
    pub score: f64,
    /// Narratives the members co-posted (a capped list).
    pub narratives: Vec<NarrativeId>,
    /// A capped sample of coincidences, from the heaviest edges first.
    pub evidence: Vec<Evidence>,
}

/// A strong edge inside a group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GroupEdge {
    pub a: usize,
    pub b: usize,
    /// Weight per type, indexed by [`EdgeType::index`].
    pub weights: [u32; EdgeType::COUNT],
    pub total: u32,
}

/// Union–find with path halving and union by size.
struct Dsu {
    parent: Vec<usize>,
    size: Vec<usize>,
}

impl Dsu {
    fn new(n: usize) -> Dsu {
        Dsu {
            parent: (0..n).collect(),
            size: vec![1; n],
        }
    }
    fn find(&mut self, mut x: usize) -> usize {
        while self.parent[x] != x {
            self.parent[x] = self.parent[self.parent[x]];
            x = self.parent[x];
        }
        x
    }
    fn union(&mut self, a: usize, b: usize) {
        let (mut a, mut b) = (self.find(a), self.find(b));
        if a == b {
            return;
        }
        if self.size[a] < self.size[b] {
            std::mem::swap(&mut a, &mut b);
        }
        self.parent[b] = a;
        self.size[a] += self.size[b];
    }
}

pub(super) fn find(c: &Coordinator) -> Vec<Group> {
    let min_weight = c.cfg.min_weight;
    // Strong edges, with their endpoints numbered densely.
    let mut index: HashMap<u64, usize> = HashMap::new();
    let mut hashes: Vec<u64> = Vec::new();
    let mut strong = Vec::new();
    for (&(a, b), e) in &c.edges.map {
        let total: u32 = e.weights.iter().fold(0u32, |s, &w| s.saturating_add(w));
        if total < min_weight {
            continue;
        }
        let mut id = |h: u64| {
            *index.entry(h).or_insert_with(|| {
                hashes.push(h);
                hashes.len() - 1
            })
        };
        let (ia, ib) = (id(a), id(b));
        strong.push((ia, ib, total, e));
    }
    // Peel accounts with fewer than `min_degree` strong ties, repeatedly
    // (the `min_degree`-core): chance coincidences form stars and chains,
    // campaigns form dense clusters.
    let mut adjacency: Vec<Vec<usize>> = vec![Vec::new(); hashes.len()];
    for &(a, b, _, _) in &strong {
        adjacency[a].push(b);
        adjacency[b].push(a);
    }
    let mut degree: Vec<usize> = adjacency.iter().map(Vec::len).collect();
    let mut alive = vec![true; hashes.len()];
    let mut peel: Vec<usize> = (0..hashes.len()).filter(|&i| degree[i] < c.cfg.min_degree).collect();
    while let Some(i) = peel.pop() {
        if !alive[i] {
            continue;
        }
        alive[i] = false;
        for &j in &adjacency[i] {
            degree[j] = degree[j].saturating_sub(1);
            if alive[j] && degree[j] < c.cfg.min_degree {
                peel.push(j);
            }
        }
    }
    strong.retain(|&(a, b, _, _)| alive[a] && alive[b]);
    let mut dsu = Dsu::new(hashes.len());
    for &(a, b, _, _) in &strong {
        dsu.union(a, b);
    }
    let mut components: HashMap<usize, Vec<usize>> = HashMap::new();
    for i in (0..hashes.len()).filter(|&i| alive[i]) {
        let root = dsu.find(i);
        if dsu.size[root] >= c.cfg.k {
            components.entry(root).or_default().push(i);
        }
    }
    let mut edges_of: HashMap<usize, Vec<usize>> = HashMap::new();
    for (i, &(a, _, _, _)) in strong.iter().enumerate() {
        let root = dsu.find(a);
        if components.contains_key(&root) {
            edges_of.entry(root).or_default().push(i);
        }
    }

    let mut groups = Vec::with_capacity(components.len());
    for (root, members) in components {
        // Pseudonyms of members no longer held (impossible while their
        // edges live) are skipped, and the group recounted below.
        let mut named: Vec<(String, usize)> = members
            .iter()
            .filter_map(|&m| c.accounts.get(&hashes[m]).map(|(n, _)| (n.to_string(), m)))
            .collect();
        named.sort();
        if named.len() < c.cfg.k {
            continue;
        }
        let pos: HashMap<usize, usize> = named.iter().enumerate().map(|(i, &(_, m))| (m, i)).collect();
        // The group's edges in member order: the edge map's iteration
        // order changes with its layout (a restored network is laid out
        // differently), and float sums and ties must not.
        let mut inside: Vec<(usize, usize, u32, &super::Edge)> = edges_of
            .get(&root)
            .map(Vec::as_slice)
            .unwrap_or(&[])
            .iter()
            .filter_map(|&ei| {
                let (a, b, total, e) = strong[ei];
                let (&pa, &pb) = (pos.get(&a)?, pos.get(&b)?);
                Some((pa.min(pb), pa.max(pb), total, e))
            })
            .collect();
        inside.sort_unstable_by_key(|&(a, b, _, _)| (a, b));
        let mut g_edges = Vec::with_capacity(inside.len());
        let mut weight_by_type = [0u64; EdgeType::COUNT];
        let (mut gap_sum, mut events) = (0f64, 0u64);
        let (mut first, mut last) = (i64::MAX, i64::MIN);
        let mut narratives = BTreeSet::new();
        for &(a, b, total, e) in &inside {
            g_edges.push(GroupEdge {
                a,
                b,
                weights: e.weights,
                total,
            });
            for (w, &x) in weight_by_type.iter_mut().zip(&e.weights) {
                *w += u64::from(x);
            }
            gap_sum += f64::from(e.gap_frac_sum);
            events += u64::from(total);
            first = first.min(e.first);
            last = last.max(e.last);
            narratives.extend(e.narratives.iter().copied());
        }
        // Heaviest first, then earliest; a stable sort keeps member order
        // among equals.
        let mut heaviest: Vec<(u32, &super::Edge)> = inside.iter().map(|&(_, _, total, e)| (total, e)).collect();
        heaviest.sort_by(|x, y| y.0.cmp(&x.0).then(x.1.first.cmp(&y.1.first)));
        let evidence: Vec<Evidence> = heaviest
            .iter()
            .flat_map(|(_, e)| e.evidence.iter().cloned())
            .take(EVIDENCE_PER_GROUP)
            .collect();
        let n = named.len() as f64;
        let density = g_edges.len() as f64 / (n * (n - 1.0) / 2.0);
        let total_weight: u64 = weight_by_type.iter().sum();
        let time_compression = if events == 0 {
            0.0
        } else {
            (1.0 - gap_sum / events as f64).clamp(0.0, 1.0)
        };
        let mean_weight = if g_edges.is_empty() {
            0.0
        } else {
            total_weight as f64 / g_edges.len() as f64
        };
        let score = n * density * (1.0 + time_compression) * (1.0 + mean_weight).ln();
        let accounts: Vec<String> = named.into_iter().map(|(s, _)| s).collect();
        let id = {
            let mut h = blake3::Hasher::new();
            for a in &accounts {
                h.update(a.as_bytes());
                h.update(b"\n");
            }
            let bytes = h.finalize();
            bytes.as_bytes()[..8].iter().map(|b| format!("{b:02x}")).collect()
        };
        let types = EdgeType::ALL
            .into_iter()
            .filter(|t| weight_by_type[t.index()] > 0)
            .collect();
        groups.push(Group {
            id,
            accounts,
            edges: g_edges,
            density,
            total_weight,
            weight_by_type,
            types,
            time_compression,
            first_ms: first,
            last_ms: last,
            score,
            narratives: narratives.into_iter().take(NARRATIVES_PER_GROUP).collect(),
            evidence,
        });
    }
    groups.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
    groups
}
