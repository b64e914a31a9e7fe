//! Scoring coordinated groups against planted truth.
//!
//! The idea: a generated stream documents which accounts ran each planted
//! campaign. Pseudonymised with the same keyring as the stream (one
//! pseudonym per account and epoch in which it took part), they are the
//! accounts the groups should contain; every other grouped account is
//! organic and wrongly grouped.
//!
//! - **recall**: share of campaign pseudonyms found in some group;
//! - **precision**: share of grouped pseudonyms that belong to a campaign;
//! - **false groups**: groups without any campaign pseudonym.
//!
//! Groups reported several times (by successive [`super::Coordinator::groups`]
//! calls) are counted once per id; accounts once overall.

use super::Group;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// One planted campaign: its id, kind and the pseudonyms of its accounts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Campaign {
    pub id: String,
    /// `copy_paste`, `co_link`, `repost_ring`, ...
    pub kind: String,
    pub accounts: Vec<String>,
}

/// Recall of one campaign.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CampaignScore {
    pub id: String,
    pub kind: String,
    pub accounts: usize,
    pub found: usize,
    pub recall: f64,
    /// Groups holding at least one of its accounts.
    pub groups: usize,
}

/// The evaluation's figures.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CoordinationScore {
    pub campaign_accounts: usize,
    pub found: usize,
    pub recall: f64,
    /// Distinct pseudonyms in any group.
    pub grouped_accounts: usize,
    /// Grouped pseudonyms that are not campaign accounts.
    pub organic_grouped: usize,
    pub precision: f64,
    /// Distinct groups (by id).
    pub groups: usize,
    pub false_groups: usize,
    /// Recall per campaign kind.
    pub recall_by_kind: BTreeMap<String, f64>,
    pub campaigns: Vec<CampaignScore>,
}

/// Scores `groups` against `campaigns`.
pub fn score(campaigns: &[Campaign], groups: &[Group]) -> CoordinationScore {
    let truth: HashSet<&str> = campaigns
        .iter()
        .flat_map(|c| c.accounts.iter().map(String::as_str))
        .collect();
    let mut seen_ids = HashSet::new();
    let mut grouped: HashSet<&str> = HashSet::new();
    let (mut n_groups, mut false_groups) = (0, 0);
    for g in groups {
        if !seen_ids.insert(g.id.as_str()) {
            continue;
        }
        n_groups += 1;
        if !g.accounts.iter().any(|a| truth.contains(a.as_str())) {
            false_groups += 1;
        }
        grouped.extend(g.accounts.iter().map(String::as_str));
    }
    let mut per_kind: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut scores = Vec::new();
    for c in campaigns {
        let accounts: BTreeSet<&str> = c.accounts.iter().map(String::as_str).collect();
        let found = accounts.iter().filter(|a| grouped.contains(*a)).count();
        let holding = groups
            .iter()
            .filter(|g| g.accounts.iter().any(|a| accounts.contains(a.as_str())))
            .map(|g| g.id.as_str())
            .collect::<HashSet<_>>()
            .len();
        let k = per_kind.entry(c.kind.clone()).or_default();
        k.0 += accounts.len();
        k.1 += found;
        scores.push(CampaignScore {
            id: c.id.clone(),
            kind: c.kind.clone(),
            accounts: accounts.len(),
            found,
            recall: ratio(found, accounts.len()),
            groups: holding,
        });
    }
    let found = truth.iter().filter(|a| grouped.contains(*a)).count();
    let organic = grouped.iter().filter(|a| !truth.contains(*a)).count();
    CoordinationScore {
        campaign_accounts: truth.len(),
        found,
        recall: ratio(found, truth.len()),
        grouped_accounts: grouped.len(),
        organic_grouped: organic,
        precision: ratio(grouped.len() - organic, grouped.len()),
        groups: n_groups,
        false_groups,
        recall_by_kind: per_kind.into_iter().map(|(k, (n, f))| (k, ratio(f, n))).collect(),
        campaigns: scores,
    }
}

/// `a / b`, and 1 when there is nothing to find.
fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        1.0
    } else {
        a as f64 / b as f64
    }
}

impl std::fmt::Display for CoordinationScore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "recall {:.4} ({}/{} campaign pseudonyms), precision {:.4} ({} organic of {} grouped), {} groups, {} false",
            self.recall,
            self.found,
            self.campaign_accounts,
            self.precision,
            self.organic_grouped,
            self.grouped_accounts,
            self.groups,
            self.false_groups
        )?;
        for (k, r) in &self.recall_by_kind {
            writeln!(f, "  recall {k}: {r:.4}")?;
        }
        for c in &self.campaigns {
            writeln!(
                f,
                "  {} ({}): {}/{} in {} group(s)",
                c.id, c.kind, c.found, c.accounts, c.groups
            )?;
        }
        Ok(())
    }
}
