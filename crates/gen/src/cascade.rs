//! Organic repost cascades: the set of viral posts currently being
//! reposted, each picked in proportion to the reposts it has left.
//!
//! Picking by remaining reposts makes each cascade decay roughly
//! exponentially, with a time constant of (all reposts pending) / (reposts
//! per minute), which the generator keeps near two hours. A Fenwick tree
//! over fixed slots makes each pick and update O(log slots), so hundreds of
//! cascades can run at once at no cost per post.

use crate::accounts::Platform;

/// One viral post and what is left of its cascade.
pub(crate) struct Cascade {
    pub id: String,
    pub author: u64,
    pub platform: Platform,
    pub text: String,
    pub lang: Option<&'static str>,
    pub topic: &'static str,
    pub remaining: u64,
}

/// Running cascades in fixed slots, with a Fenwick tree of their
/// remaining counts.
pub(crate) struct Cascades {
    slots: Vec<Option<Cascade>>,
    /// 1-based Fenwick tree over `slots[i].remaining`.
    tree: Vec<u64>,
    free: Vec<usize>,
    total: u64,
}

impl Cascades {
    pub(crate) fn new(capacity: usize) -> Cascades {
        Cascades {
            slots: (0..capacity).map(|_| None).collect(),
            tree: vec![0; capacity + 1],
            free: (0..capacity).rev().collect(),
            total: 0,
        }
    }

    /// Reposts pending over all cascades.
    pub(crate) fn pending(&self) -> u64 {
        self.total
    }

    pub(crate) fn is_full(&self) -> bool {
        self.free.is_empty()
    }

    fn add(&mut self, slot: usize, delta: i64) {
        let mut i = slot + 1;
        while i < self.tree.len() {
            self.tree[i] = self.tree[i].wrapping_add_signed(delta);
            i += i & i.wrapping_neg();
        }
        self.total = self.total.wrapping_add_signed(delta);
    }

    /// Starts a cascade; does nothing when every slot is taken.
    pub(crate) fn insert(&mut self, c: Cascade) {
        if let Some(slot) = self.free.pop() {
            let n = c.remaining as i64;
            self.slots[slot] = Some(c);
            self.add(slot, n);
        }
    }

    /// The slot holding the `r`-th pending repost (`r < pending()`).
    pub(crate) fn pick(&self, mut r: u64) -> usize {
        let mut pos = 0;
        let mut step = (self.tree.len() - 1).next_power_of_two();
        while step > 0 {
            let next = pos + step;
            if next < self.tree.len() && self.tree[next] <= r {
                pos = next;
                r -= self.tree[next];
            }
            step >>= 1;
        }
        pos.min(self.slots.len() - 1)
    }

    pub(crate) fn get(&self, slot: usize) -> Option<&Cascade> {
        self.slots[slot].as_ref()
    }

    /// Uses one repost of the cascade in `slot`, ending it at zero.
    pub(crate) fn consume(&mut self, slot: usize) {
        let done = match &mut self.slots[slot] {
            Some(c) if c.remaining > 0 => {
                c.remaining -= 1;
                c.remaining == 0
            }
            _ => return,
        };
        self.add(slot, -1);
        if done {
            self.slots[slot] = None;
            self.free.push(slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cascade(n: u64) -> Cascade {
        Cascade {
            id: n.to_string(),
            author: 0,
            platform: Platform::Twitter,
            text: String::new(),
            lang: None,
            topic: "t",
            remaining: n,
        }
    }

    #[test]
    fn picks_by_remaining_and_frees_finished_slots() {
        let mut c = Cascades::new(4);
        c.insert(cascade(2));
        c.insert(cascade(3));
        assert_eq!(c.pending(), 5);
        let picks: Vec<usize> = (0..5).map(|r| c.pick(r)).collect();
        assert_eq!(picks, [0, 0, 1, 1, 1]);
        c.consume(0);
        c.consume(0);
        assert_eq!(c.pending(), 3);
        assert!(c.get(0).is_none());
        assert_eq!((0..3).map(|r| c.pick(r)).collect::<Vec<_>>(), [1, 1, 1]);
        c.insert(cascade(1));
        assert_eq!(c.pick(0), 0);
        assert_eq!(c.pick(1), 1);
    }
}
