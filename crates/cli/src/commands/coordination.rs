//! `tidewatch coordination`: coordinated groups of accounts, as an edge
//! list (CSV), a graph (GEXF) or group records (JSON), from a data
//! directory or computed over input files; and `tidewatch eval
//! coordination`, the same computation scored against planted campaigns.
//!
//! The idea: the groups are aggregate findings about campaigns, so every
//! output here is made of groups of at least k = 5 distinct accounts (k may
//! be raised, never lowered), including the toolkit-compatible edge list.
//! The long help ([`LONG_ABOUT`]) lists every difference between the native
//! network and the `--compat cnt` mode.

use crate::commands::ingest::default_threads;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use tidewatch_core::coordination::cnt::{cnt_edges, CntEdge, CntRecord, CntType};
use tidewatch_core::coordination::eval::{score, Campaign, CoordinationScore};
use tidewatch_core::coordination::{CoordinationConfig, EdgeType, Group, MIN_K};
use tidewatch_core::entities::{self, SpanKind};
use tidewatch_core::narrative::minhash::jaccard;
use tidewatch_core::narrative::{NarrativeConfig, NarrativeId, NarrativeUpdate, Narratives, Shingler};
use tidewatch_core::pseudonym::{Keyring, PseudonymConfig, Pseudonymiser};
use tidewatch_core::redact::PublicAccounts;
use tidewatch_core::text::{tokenize, TokenizedText};
use tidewatch_core::window::{WindowConfig, WindowView};
use tidewatch_core::{Event, Timestamp};
use tidewatch_engine::coordination::{current_groups, CoordinationWatch, GroupRecord};
use tidewatch_engine::datadir::DataDir;
use tidewatch_engine::decode::decode_inputs_expiring_keys;
use tidewatch_engine::live::LiveFeeds;
use tidewatch_engine::run::{self, MatchedPost, RunConfig, RunSink};

/// The long help of `tidewatch coordination`: what each mode computes and
/// how the native and compatible modes differ.
pub const LONG_ABOUT: &str = "\
Coordinated groups of accounts: accounts that repeatedly do the same thing \
within a short window (post near-identical text, share the same link, repost \
or reply to the same post, use the same rare hashtags).

With --data DIR alone, lists the groups a `tidewatch run` recorded there. \
With --input FILE..., runs the pipeline over the files (decode, \
pseudonymise, enrich, redact, narratives) and computes the groups; with \
--data DIR too, the pseudonyms are made with that directory's keyring (as \
`tidewatch ingest --data DIR` makes them), otherwise with a fresh random key.

Privacy: only groups of at least k distinct accounts are ever output (k = 5 \
by default; --k may raise it, never lower it), in every format and mode. \
Members are epoch pseudonyms, never handles; evidence is pseudonymised post \
ids and times.

Formats: json (one group a line: members, strong edges, weights per type, \
density, score, narratives, evidence), csv (`source,target,weight,type`, one \
row per edge and type, only edges inside groups), gexf (a GEXF 1.3 graph of \
the groups).

Native mode (default): a streaming network. An edge joins two accounts each \
time both use one key within the window: co-post (the same near-duplicate \
narrative: MinHash/LSH clusters, Jaccard >= 0.8 with the narrative's founding \
post), co-link (the same normalised link with a path), co-repost, co-reply, \
co-hashtag (the same set of >= 2 rare hashtags). Weight = number of such \
coincidences (pairs of posts). Groups = components of the edges of total \
weight >= --min-weight after peeling accounts with fewer than 2 such edges, \
with >= k accounts.

--compat cnt: the coordination-network-toolkit's (version 1.5.2) edge \
semantics, exactly, over the same posts: co-post keys are identical texts \
after its normalisation (lower case, every @word deleted, whitespace \
collapsed) of posts that are not reposts; co-link keys are links as listed; \
co-repost keys the reposted id; co-reply keys the replied-to id. \
weight(u->v) = number of distinct posts of u with at least one post of v under \
the same key within the window (inclusive); an edge is kept when its weight \
>= --min-weight, each direction separately, so the csv lists both directions \
when both pass.

Differences between the two modes:
  1. co-post: native joins near-duplicates (narratives); compat only \
identical normalised texts.
  2. weights: native counts coincidences (pairs of posts), undirected, and \
its csv lists each edge in both directions with the same weight; compat \
counts distinct posts of the source, directed.
  3. native caps the accounts a post is paired with per key (50, the most \
recent; the rest are counted) and ignores a repeat of a key by the same \
account within the window; compat has no cap.
  4. Reposts: native keys a repost only by what it reposts (its text and \
links are the original's), and also by what it replies to; compat, like the \
toolkit, keys a repost only as co-repost.
  5. native skips homepage links (no path); compat keeps every link.
  6. native has co-hashtag; compat has not.
  7. native drops accounts with fewer than 2 strong edges (k-core) before \
forming groups; compat does not.
  8. native forgets edges at the end of each pseudonym epoch (24 h); compat \
sees the whole input at once (but pseudonyms change with the epoch in both).
  9. The k filter: the toolkit outputs every edge above the minimum weight; \
compat outputs only edges whose two accounts lie in a connected component \
(over all output edges of all selected types, direction ignored) of at \
least k accounts. This is the one intended difference from the toolkit's \
output.
  10. Text and links: native sees the pipeline's redacted text (@handles \
become @user, e-mails [email], phone numbers [phone], links lose their query \
string) and normalised links, so links differing only in tracking parameters \
are one key; compat compares the decoded text and the links as written in \
it (query strings included), as the toolkit does; that text is a key only \
and is never output.";

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Json,
    Csv,
    Gexf,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Compat {
    /// The coordination-network-toolkit 1.5.2.
    Cnt,
}

#[derive(clap::Args)]
#[command(long_about = LONG_ABOUT)]
pub struct Args {
    /// The data directory: alone, lists its recorded groups; with --input,
    /// its keyring makes the pseudonyms.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Input files (any format `run` reads): compute the groups over them.
    #[arg(long, num_args = 1..)]
    pub input: Vec<PathBuf>,
    /// Edge types, comma-separated: co-post, co-link, co-repost, co-reply,
    /// co-hashtag (default all; compat: all but co-hashtag; co-tweet and
    /// co-retweet are accepted).
    #[arg(long = "type", value_delimiter = ',')]
    pub types: Vec<String>,
    /// Window Δ: `60s`, `2m`, `500ms`, `1h` or seconds (default 60s).
    #[arg(long)]
    pub window: Option<String>,
    /// Least edge weight (default 2).
    #[arg(long)]
    pub min_weight: Option<u32>,
    /// Least distinct accounts in an output group (at least 5).
    #[arg(long, default_value_t = MIN_K)]
    pub k: usize,
    #[arg(long, value_enum, default_value = "json")]
    pub format: Format,
    /// Edge semantics of another tool (with --input).
    #[arg(long, value_enum)]
    pub compat: Option<Compat>,
    /// Listing: only groups whose last coincidence is at or after this time (RFC 3339).
    #[arg(long)]
    pub since: Option<String>,
    /// Worker threads (default: every core); results do not depend on it.
    #[arg(long)]
    pub threads: Option<usize>,
    // With --input: the near-duplicate clusterer's memory (co-post keys).
    #[command(flatten)]
    pub memory: crate::commands::narratives::NarrativeMemory,
}

/// `60s`, `2m`, `500ms`, `1h`, or a number of seconds → milliseconds.
pub fn parse_window(s: &str) -> Result<i64> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num
        .parse()
        .with_context(|| format!("window {s:?}: expected e.g. 60s"))?;
    let ms = match unit {
        "ms" => n,
        "s" => n * 1000.0,
        "m" | "min" => n * 60_000.0,
        "h" => n * 3_600_000.0,
        _ => bail!("window {s:?}: unit must be ms, s, m or h"),
    };
    if !(1.0..1e15).contains(&ms) {
        bail!("window {s:?}: must be at least 1 ms");
    }
    Ok(ms.round() as i64)
}

fn check_k(k: usize) -> Result<()> {
    if k < MIN_K {
        bail!("--k {k}: groups of fewer than {MIN_K} accounts are never shown");
    }
    Ok(())
}

pub fn run(args: Args) -> Result<ExitCode> {
    check_k(args.k)?;
    let window_ms = args.window.as_deref().map(parse_window).transpose()?;
    if args.input.is_empty() {
        let Some(data) = &args.data else {
            bail!("give --data DIR (recorded groups) or --input FILE... (compute them)");
        };
        if args.compat.is_some() || window_ms.is_some() || args.min_weight.is_some() {
            bail!("--compat, --window and --min-weight apply to --input; recorded groups were computed by the run");
        }
        let types = native_types(&args.types)?;
        return list(data, &args, &types);
    }
    let min_weight = args.min_weight.unwrap_or(2).max(1);
    let window_ms = window_ms.unwrap_or(60_000);
    let keyring = match &args.data {
        Some(d) => Arc::new(DataDir::open(d)?.load_keyring(PseudonymConfig::default())?),
        None => Arc::new(Keyring::new(PseudonymConfig::default())),
    };
    let threads = args.threads.unwrap_or_else(default_threads);
    let mut out = std::io::stdout().lock();
    let written = match args.compat {
        Some(Compat::Cnt) => {
            let types = cnt_types(&args.types)?;
            let records = cnt_records(&args.input, &keyring)?;
            let edges = compat_edges(&records, &types, window_ms, min_weight, args.k);
            write_compat(&mut out, &edges, args.format)
        }
        None => {
            let types = native_types(&args.types)?;
            let cfg = native_config(&types, window_ms, min_weight, args.k);
            let mut sink = GroupSink::new(cfg, args.memory.config())?;
            run_pipeline(&args.input, keyring, threads, &mut sink)?;
            let groups = sink.finish();
            write_groups(&mut out, &groups, args.format, args.k)
        }
    };
    written.map_or_else(crate::output::quiet_on_closed_pipe, |_| Ok(ExitCode::SUCCESS))
}

/// Lists the groups recorded in a data directory.
fn list(data: &Path, args: &Args, types: &[EdgeType]) -> Result<ExitCode> {
    let since = args
        .since
        .as_deref()
        .map(|s| Timestamp::parse(s).with_context(|| format!("--since {s:?}")))
        .transpose()?;
    let db = crate::commands::topics::open_db(data)?;
    let names: Vec<&str> = types.iter().map(|t| t.name()).collect();
    let groups: Vec<GroupRecord> = current_groups(&db, since)
        .with_context(|| format!("reading {}", db.path().display()))?
        .into_iter()
        .filter(|g| g.types.iter().any(|t| names.contains(&t.as_str())))
        .collect();
    let mut out = std::io::stdout().lock();
    write_groups(&mut out, &groups, args.format, args.k)
        .map_or_else(crate::output::quiet_on_closed_pipe, |_| Ok(ExitCode::SUCCESS))
}

fn native_types(names: &[String]) -> Result<Vec<EdgeType>> {
    if names.is_empty() {
        return Ok(EdgeType::ALL.to_vec());
    }
    names
        .iter()
        .map(|n| {
            let n = n.trim();
            let n = match n {
                "co-tweet" => "co-post",
                "co-retweet" => "co-repost",
                other => other,
            };
            EdgeType::from_name(n)
                .with_context(|| format!("--type {n:?}: expected co-post, co-link, co-repost, co-reply or co-hashtag"))
        })
        .collect()
}

fn cnt_types(names: &[String]) -> Result<Vec<CntType>> {
    if names.is_empty() {
        return Ok(CntType::ALL.to_vec());
    }
    names
        .iter()
        .map(|n| {
            CntType::from_name(n.trim()).with_context(|| {
                format!("--type {n:?} with --compat cnt: expected co-post (co-tweet), co-link, co-repost (co-retweet) or co-reply")
            })
        })
        .collect()
}

/// The core's settings for these types, window, weight and k.
pub fn native_config(types: &[EdgeType], window_ms: i64, min_weight: u32, k: usize) -> CoordinationConfig {
    let mut cfg = CoordinationConfig::default().with_window(window_ms);
    cfg.enabled = std::array::from_fn(|i| types.iter().any(|t| t.index() == i));
    cfg.min_weight = min_weight;
    cfg.k = k;
    cfg
}

/// The pipeline as `tidewatch run` sets it up, without feeds or store.
fn pipeline_config(keyring: Arc<Keyring>, threads: usize) -> RunConfig {
    RunConfig {
        decode: Default::default(),
        threads,
        keyring,
        enriched_upstream: false,
        public_accounts: Arc::new(PublicAccounts::default()),
        undated_time: Timestamp(0),
        window: WindowConfig::default(),
    }
}

/// Runs the pipeline over `inputs` into `sink`; fails on an unreadable input.
fn run_pipeline(
    inputs: &[PathBuf],
    keyring: Arc<Keyring>,
    threads: usize,
    sink: &mut (dyn RunSink + Send),
) -> Result<u64> {
    let live = LiveFeeds::new(&[])?;
    let cfg = pipeline_config(keyring, threads);
    let mut rejected = 0u64;
    let summary = run::run(inputs, &cfg, &live, sink, &mut |_| rejected += 1).map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Some((path, e)) = summary
        .files
        .iter()
        .find_map(|f| f.error.as_ref().map(|e| (&f.path, e)))
    {
        bail!("{path}: {e}");
    }
    if rejected > 0 {
        eprintln!("{rejected} records could not be read and were skipped");
    }
    Ok(summary.progress.posts)
}

/// Narratives then the coordination network, post by post, as a run's
/// sink would do them.
pub struct Detectors {
    narratives: Narratives,
    tokens: TokenizedText,
    watch: CoordinationWatch,
}

impl Detectors {
    pub fn new(cfg: CoordinationConfig, narratives: NarrativeConfig) -> Result<Detectors> {
        Ok(Detectors {
            narratives: Narratives::new(narratives)?,
            tokens: TokenizedText::new(),
            watch: CoordinationWatch::new(cfg)?,
        })
    }

    /// Observes one post; returns what the narratives did with it.
    pub fn post(&mut self, m: &MatchedPost) -> Option<NarrativeUpdate> {
        tokenize(&m.post.text, &mut self.tokens);
        // Only the narrative id is used here: its feed tally is not.
        let update = self.narratives.observe(&m.post, &self.tokens, &[], String::new);
        let narrative = update.filter(|u| !u.by_repost).map(|u| u.narrative);
        self.watch.post(m, narrative);
        update
    }

    pub fn watch(&mut self) -> &mut CoordinationWatch {
        &mut self.watch
    }

    /// The coordination network's counters.
    pub fn watch_stats(&self) -> tidewatch_core::coordination::CoordinationStats {
        self.watch.stats()
    }

    pub fn narratives(&self) -> &Narratives {
        &self.narratives
    }

    pub fn tokens(&self) -> &TokenizedText {
        &self.tokens
    }
}

/// Collects the latest record of every group.
struct GroupSink {
    detectors: Detectors,
    groups: BTreeMap<String, GroupRecord>,
    seen: u64,
}

impl GroupSink {
    fn new(cfg: CoordinationConfig, narratives: NarrativeConfig) -> Result<GroupSink> {
        Ok(GroupSink {
            detectors: Detectors::new(cfg, narratives)?,
            groups: BTreeMap::new(),
            seen: 0,
        })
    }

    fn take(&mut self) {
        for r in self.detectors.watch().take_pending_records() {
            self.groups.insert(r.id.clone(), r);
        }
    }

    /// Every group's latest record, best score first.
    fn finish(mut self) -> Vec<GroupRecord> {
        self.detectors.watch().finish();
        self.take();
        let mut v: Vec<GroupRecord> = self.groups.into_values().collect();
        v.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
        v
    }
}

impl RunSink for GroupSink {
    fn post(&mut self, m: &MatchedPost) {
        self.detectors.post(m);
        self.seen += 1;
        if self.seen.is_multiple_of(100_000) {
            self.take();
        }
    }

    fn window(&mut self, _: &WindowView<'_>) {}
}

/// What the toolkit's semantics need of every post: decoded and
/// pseudonymised (author, ids), but not enriched or redacted, so that texts
/// and links are compared as given, as the toolkit compares them. The raw
/// text is used only as a key here and never output.
fn cnt_records(inputs: &[PathBuf], keyring: &Arc<Keyring>) -> Result<Vec<CntRecord>> {
    let mut ps = Pseudonymiser::new(keyring.clone(), Timestamp(0));
    let mut spans = Vec::new();
    let mut records = Vec::new();
    let mut rejected = 0u64;
    let reports = decode_inputs_expiring_keys(
        inputs,
        &Default::default(),
        keyring,
        &mut |batch| {
            for ev in batch.events {
                let Event::Post(mut p) = ev else { continue };
                ps.apply(&mut p);
                let (Some(author), Some(t)) = (p.author.take(), p.created_at) else {
                    continue;
                };
                // (`cnt::cnt_edges` leaves a repost out of co-link and
                // co-reply, as the toolkit does.)
                let mut links: Vec<String> = Vec::new();
                entities::scan_into(&p.text, &mut spans);
                for s in spans.iter().filter(|s| s.kind == SpanKind::Link) {
                    if let Some(l) = p.text.get(s.range.clone()) {
                        if !links.iter().any(|x| x == l) {
                            links.push(l.to_string());
                        }
                    }
                }
                records.push(CntRecord {
                    id: p.id,
                    author,
                    time_ms: t.0,
                    text: p.text,
                    repost_of: p.repost_of,
                    reply_to: p.reply_to,
                    links,
                });
            }
            true
        },
        &mut |_| rejected += 1,
    );
    if let Some((path, e)) = reports.iter().find_map(|f| f.error.as_ref().map(|e| (&f.path, e))) {
        bail!("{path}: {e}");
    }
    if rejected > 0 {
        eprintln!("{rejected} records could not be read and were skipped");
    }
    Ok(records)
}

/// The toolkit's edges of every type in `types`, then only those whose
/// accounts lie in a connected component (all types together, direction
/// ignored) of at least `k` accounts.
pub fn compat_edges(
    records: &[CntRecord],
    types: &[CntType],
    window_ms: i64,
    min_weight: u32,
    k: usize,
) -> Vec<CntEdge> {
    let mut edges: Vec<CntEdge> = types
        .iter()
        .flat_map(|&t| cnt_edges(records, t, window_ms, min_weight))
        .collect();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for e in &edges {
        for a in [&e.source, &e.target] {
            let n = index.len();
            index.entry(a.as_str()).or_insert(n);
        }
    }
    let mut parent: Vec<usize> = (0..index.len()).collect();
    fn find(parent: &mut [usize], mut x: usize) -> usize {
        while parent[x] != x {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        x
    }
    for e in &edges {
        let (a, b) = (index[e.source.as_str()], index[e.target.as_str()]);
        let (ra, rb) = (find(&mut parent, a), find(&mut parent, b));
        if ra != rb {
            parent[ra] = rb;
        }
    }
    let mut size: HashMap<usize, usize> = HashMap::new();
    for i in 0..parent.len() {
        *size.entry(find(&mut parent, i)).or_default() += 1;
    }
    let big: HashSet<String> = index
        .iter()
        .filter(|(_, &i)| size.get(&find(&mut parent, i)).copied().unwrap_or(0) >= k.max(MIN_K))
        .map(|(&a, _)| a.to_string())
        .collect();
    drop(index);
    edges.retain(|e| big.contains(&e.source));
    edges.sort_by(|a, b| (a.kind, &a.source, &a.target).cmp(&(b.kind, &b.source, &b.target)));
    edges
}

/// One `source,target,weight,type` row; pseudonyms and type names need no
/// quoting.
fn csv_row(out: &mut dyn Write, source: &str, target: &str, weight: u64, kind: &str) -> std::io::Result<()> {
    writeln!(out, "{source},{target},{weight},{kind}")
}

fn write_compat(out: &mut dyn Write, edges: &[CntEdge], format: Format) -> std::io::Result<()> {
    match format {
        Format::Csv => {
            writeln!(out, "source,target,weight,type")?;
            for e in edges {
                csv_row(out, &e.source, &e.target, u64::from(e.weight), e.kind.name())?;
            }
        }
        Format::Json => {
            for e in edges {
                writeln!(out, "{}", serde_json::to_string(e).unwrap_or_default())?;
            }
        }
        Format::Gexf => {
            let mut g = Gexf::new(true);
            for e in edges {
                g.edge(&e.source, &e.target, u64::from(e.weight), e.kind.name(), "");
            }
            g.write(out)?;
        }
    }
    out.flush()
}

/// Writes group records; any record under `k` accounts is left out (the
/// engine never makes one; this is the last gate before the output).
pub fn write_groups(out: &mut dyn Write, groups: &[GroupRecord], format: Format, k: usize) -> std::io::Result<()> {
    let k = k.max(MIN_K);
    let groups = groups.iter().filter(|g| g.accounts.len() >= k);
    match format {
        Format::Json => {
            for g in groups {
                writeln!(out, "{}", serde_json::to_string(g).unwrap_or_default())?;
            }
        }
        Format::Csv => {
            // An edge listed by several records (a group and the record it
            // grew from) once, with its largest weight.
            let mut rows: BTreeMap<(String, String, String), u64> = BTreeMap::new();
            for g in groups {
                for e in &g.edges {
                    let (Some(a), Some(b)) = (g.accounts.get(e.a), g.accounts.get(e.b)) else {
                        continue;
                    };
                    for (kind, &w) in &e.weights {
                        for (s, t) in [(a, b), (b, a)] {
                            let slot = rows.entry((s.clone(), t.clone(), kind.clone())).or_default();
                            *slot = (*slot).max(u64::from(w));
                        }
                    }
                }
            }
            writeln!(out, "source,target,weight,type")?;
            for ((s, t, kind), w) in rows {
                csv_row(out, &s, &t, w, &kind)?;
            }
        }
        Format::Gexf => {
            let mut gx = Gexf::new(false);
            for g in groups {
                for a in &g.accounts {
                    gx.node(a, &g.id);
                }
                for e in &g.edges {
                    let (Some(a), Some(b)) = (g.accounts.get(e.a), g.accounts.get(e.b)) else {
                        continue;
                    };
                    let types: Vec<&str> = e.weights.keys().map(String::as_str).collect();
                    gx.edge(a, b, u64::from(e.total), &types.join(","), &g.id);
                }
            }
            gx.write(out)?;
        }
    }
    out.flush()
}

/// A GEXF 1.3 graph: nodes with the group they belong to, weighted edges
/// with their types.
struct Gexf {
    directed: bool,
    nodes: BTreeMap<String, String>,
    edges: BTreeMap<(String, String, String), (u64, String)>,
}

impl Gexf {
    fn new(directed: bool) -> Gexf {
        Gexf {
            directed,
            nodes: BTreeMap::new(),
            edges: BTreeMap::new(),
        }
    }

    fn node(&mut self, id: &str, group: &str) {
        self.nodes.entry(id.to_string()).or_insert_with(|| group.to_string());
    }

    fn edge(&mut self, a: &str, b: &str, weight: u64, types: &str, group: &str) {
        self.node(a, group);
        self.node(b, group);
        let (a, b) = if self.directed || a <= b { (a, b) } else { (b, a) };
        let slot = self
            .edges
            .entry((a.to_string(), b.to_string(), types.to_string()))
            .or_insert((0, group.to_string()));
        slot.0 = slot.0.max(weight);
    }

    fn write(&self, out: &mut dyn Write) -> std::io::Result<()> {
        writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
        writeln!(
            out,
            r#"<gexf xmlns="http://gexf.net/1.3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="http://gexf.net/1.3 http://gexf.net/1.3/gexf.xsd" version="1.3">"#
        )?;
        writeln!(
            out,
            "  <meta>\n    <creator>tidewatch</creator>\n    <description>coordinated groups (at least {MIN_K} accounts each); nodes are epoch pseudonyms</description>\n  </meta>"
        )?;
        let kind = if self.directed { "directed" } else { "undirected" };
        writeln!(out, r#"  <graph mode="static" defaultedgetype="{kind}">"#)?;
        writeln!(
            out,
            r#"    <attributes class="node">
      <attribute id="group" title="group" type="string"/>
    </attributes>
    <attributes class="edge">
      <attribute id="types" title="types" type="string"/>
    </attributes>"#
        )?;
        writeln!(out, "    <nodes>")?;
        for (id, group) in &self.nodes {
            let (id, group) = (xml(id), xml(group));
            writeln!(
                out,
                r#"      <node id="{id}" label="{id}"><attvalues><attvalue for="group" value="{group}"/></attvalues></node>"#
            )?;
        }
        writeln!(out, "    </nodes>\n    <edges>")?;
        for (i, ((a, b, types), (w, _))) in self.edges.iter().enumerate() {
            writeln!(
                out,
                r#"      <edge id="{i}" source="{}" target="{}" weight="{w}"><attvalues><attvalue for="types" value="{}"/></attvalues></edge>"#,
                xml(a),
                xml(b),
                xml(types)
            )?;
        }
        writeln!(out, "    </edges>\n  </graph>\n</gexf>")
    }
}

/// Escapes text for an XML attribute.
fn xml(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => o.push(c),
        }
    }
    o
}

// ---------------------------------------------------------------------
// `tidewatch eval coordination`

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EvalFormat {
    Text,
    Json,
}

#[derive(clap::Args)]
pub struct EvalArgs {
    /// Canonical JSON Lines from `tidewatch gen` (or any format `run` reads).
    pub data: PathBuf,
    /// The truth file of `tidewatch gen --truth`.
    #[arg(long)]
    pub truth: PathBuf,
    /// Worker threads (default: every core); results do not depend on it.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Same-narrative pairs sampled for the exact-Jaccard check.
    #[arg(long, default_value_t = 10_000)]
    pub pairs: usize,
    #[arg(long, value_enum, default_value = "text")]
    pub format: EvalFormat,
}

/// The truth file's campaign fields read here.
#[derive(Deserialize)]
struct TruthFile {
    events: Vec<TruthEvent>,
}

#[derive(Deserialize)]
struct TruthEvent {
    id: String,
    kind: String,
    #[serde(default)]
    platform: Option<String>,
    #[serde(default)]
    accounts: Vec<String>,
    #[serde(default)]
    windows: Vec<TruthWindow>,
    start: Timestamp,
    end: Timestamp,
}

#[derive(Deserialize)]
struct TruthWindow {
    start: Timestamp,
    end: Timestamp,
}

/// Same-narrative posts kept for the pair sample: the shingle sets of the
/// first posts that joined each narrative by their text (up to a total).
struct PairSample {
    shingler: Shingler,
    words: usize,
    members: HashMap<NarrativeId, Vec<Vec<u64>>>,
    kept: usize,
}

/// Members kept per sampled narrative; total sets kept at most.
const MEMBERS_PER_NARRATIVE: usize = 32;
const MAX_SETS: usize = 400_000;

impl PairSample {
    fn observe(&mut self, narrative: NarrativeId, text: &str, tokens: &TokenizedText) {
        if self.kept >= MAX_SETS {
            return;
        }
        let list = self.members.entry(narrative).or_default();
        if list.len() < MEMBERS_PER_NARRATIVE {
            list.push(self.shingler.shingles(text, tokens, self.words).to_vec());
            self.kept += 1;
        }
    }

    /// Pairs drawn uniformly among all pairs of kept members of the same
    /// narrative (a fixed-seed generator); returns (pairs possible, pairs
    /// drawn, drawn pairs with exact Jaccard ≥ 0.8).
    fn agreement(&self, samples: usize) -> (u64, usize, usize) {
        let mut clusters: Vec<&Vec<Vec<u64>>> = self.members.values().filter(|m| m.len() >= 2).collect();
        clusters.sort_by_key(|m| (m.len(), m.first().cloned()));
        let weights: Vec<u64> = clusters.iter().map(|c| (c.len() * (c.len() - 1) / 2) as u64).collect();
        let total: u64 = weights.iter().sum();
        if total == 0 {
            return (0, 0, 0);
        }
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        let mut agree = 0;
        for _ in 0..samples {
            let mut r = next() % total;
            let mut ci = 0;
            while r >= weights[ci] {
                r -= weights[ci];
                ci += 1;
            }
            let c = clusters[ci];
            let i = (next() % c.len() as u64) as usize;
            let mut j = (next() % (c.len() as u64 - 1)) as usize;
            if j >= i {
                j += 1;
            }
            agree += (jaccard(&c[i], &c[j]) >= 0.8) as usize;
        }
        (total, samples, agree)
    }
}

/// The evaluation's sink: the detectors, the pseudonyms that posted for
/// each campaign (read from the posts' `event` label, only to restrict the
/// truth to the epochs each account was active in), the pair sample.
struct EvalSink {
    inner: GroupSink,
    candidates: HashMap<String, String>,
    active: HashMap<String, BTreeSet<String>>,
    pairs: PairSample,
}

impl RunSink for EvalSink {
    fn post(&mut self, m: &MatchedPost) {
        let update = self.inner.detectors.post(m);
        self.inner.seen += 1;
        if self.inner.seen.is_multiple_of(100_000) {
            self.inner.take();
        }
        // Posts that joined a narrative by their text. Founders are left
        // out (their text is not known when the second post arrives); each
        // joiner was checked against its founder already.
        if let Some(u) = update.filter(|u| !u.by_repost && !u.is_new) {
            let tokens = self.inner.detectors.tokens();
            self.pairs.observe(u.narrative, &m.post.text, tokens);
        }
        if let (Some(author), Some(event)) = (&m.post.author, m.post.labels.get_str("event")) {
            if self.candidates.get(author).is_some_and(|e| *e == event) {
                self.active.entry(event).or_default().insert(author.clone());
            }
        }
    }

    fn window(&mut self, _: &WindowView<'_>) {}
}

/// What `eval coordination` reports.
#[derive(Serialize)]
struct EvalReport {
    posts: u64,
    seconds: f64,
    #[serde(flatten)]
    score: CoordinationScore,
    /// Recall of the repost-ring campaigns' accounts.
    repost_ring_recall: Option<f64>,
    /// Same-narrative pairs among the sampled narratives, pairs drawn, and
    /// the share of drawn pairs with exact Jaccard ≥ 0.8.
    near_duplicate_pairs: u64,
    sampled_pairs: usize,
    exact_jaccard_agreement: f64,
    smallest_group: Option<usize>,
}

pub fn eval(args: EvalArgs) -> Result<ExitCode> {
    let bytes = std::fs::read(&args.truth).with_context(|| format!("reading {}", args.truth.display()))?;
    let truth: TruthFile =
        serde_json::from_slice(&bytes).with_context(|| format!("reading {}", args.truth.display()))?;
    // A seeded keyring whose keys are never deleted during the evaluation,
    // so the truth can be pseudonymised afterwards like the posts were.
    let pcfg = PseudonymConfig {
        linkage_window_ms: 3650 * Timestamp::DAY,
        ..PseudonymConfig::default()
    };
    let keyring = Arc::new(Keyring::from_seed(pcfg, 0x7e57));
    let mut ps = Pseudonymiser::new(keyring.clone(), Timestamp(0));
    // Campaign pseudonyms: each account in each epoch its windows touch.
    let mut planned: Vec<(String, String, Vec<String>)> = Vec::new();
    let mut candidates: HashMap<String, String> = HashMap::new();
    for ev in &truth.events {
        let kind = match ev.kind.as_str() {
            "copy_paste" | "co_link" | "repost_ring" => ev.kind.clone(),
            _ => continue,
        };
        let Some(platform) = &ev.platform else { continue };
        let mut epochs: BTreeSet<i64> = ev
            .windows
            .iter()
            .flat_map(|w| [ps.epoch_of(Some(w.start)), ps.epoch_of(Some(w.end))])
            .collect();
        epochs.insert(ps.epoch_of(Some(ev.start)));
        epochs.insert(ps.epoch_of(Some(ev.end)));
        let mut accounts = Vec::new();
        for h in &ev.accounts {
            for &e in &epochs {
                let p = ps.account(platform, h, e);
                candidates.insert(p.clone(), ev.id.clone());
                accounts.push(p);
            }
        }
        planned.push((ev.id.clone(), kind, accounts));
    }
    if planned.is_empty() {
        bail!(
            "{}: no copy_paste, co_link or repost_ring campaign",
            args.truth.display()
        );
    }

    let narrative_cfg = NarrativeConfig::default();
    let mut sink = EvalSink {
        inner: GroupSink::new(CoordinationConfig::default(), narrative_cfg.clone())?,
        candidates,
        active: HashMap::new(),
        pairs: PairSample {
            shingler: Shingler::new(),
            words: narrative_cfg.shingle_words,
            members: HashMap::new(),
            kept: 0,
        },
    };
    let started = std::time::Instant::now();
    let threads = args.threads.unwrap_or_else(default_threads);
    let posts = run_pipeline(std::slice::from_ref(&args.data), keyring, threads, &mut sink)?;
    let seconds = started.elapsed().as_secs_f64();
    let EvalSink {
        inner, active, pairs, ..
    } = sink;
    let records = inner.finish();

    // The truth: campaign pseudonyms that did post for their campaign.
    let campaigns: Vec<Campaign> = planned
        .into_iter()
        .map(|(id, kind, accounts)| {
            let posted = active.get(&id);
            let mut accounts: Vec<String> = accounts
                .into_iter()
                .filter(|p| posted.is_some_and(|s| s.contains(p)))
                .collect();
            accounts.sort();
            accounts.dedup();
            Campaign { id, kind, accounts }
        })
        .collect();
    let groups: Vec<Group> = records.iter().map(as_group).collect();
    let s = score(&campaigns, &groups);
    let (possible, drawn, agree) = pairs.agreement(args.pairs);
    let report = EvalReport {
        posts,
        seconds,
        repost_ring_recall: s.recall_by_kind.get("repost_ring").copied(),
        score: s,
        near_duplicate_pairs: possible,
        sampled_pairs: drawn,
        exact_jaccard_agreement: if drawn == 0 { 1.0 } else { agree as f64 / drawn as f64 },
        smallest_group: records.iter().map(|g| g.accounts.len()).min(),
    };
    let mut out = std::io::stdout().lock();
    let written = match args.format {
        EvalFormat::Json => writeln!(out, "{}", serde_json::to_string(&report)?),
        EvalFormat::Text => write!(
            out,
            "{} posts in {:.1} s\n{}near-duplicate pairs: {:.4} of {} sampled pairs (of {} in the sampled narratives) have exact Jaccard >= 0.8\nsmallest group: {} accounts\n",
            report.posts,
            report.seconds,
            report.score,
            report.exact_jaccard_agreement,
            report.sampled_pairs,
            report.near_duplicate_pairs,
            report.smallest_group.map_or("-".to_string(), |n| n.to_string())
        ),
    };
    written.map_or_else(crate::output::quiet_on_closed_pipe, |_| Ok(ExitCode::SUCCESS))
}

/// The fields of a record the scoring reads, as a core group.
fn as_group(r: &GroupRecord) -> Group {
    Group {
        id: r.id.clone(),
        accounts: r.accounts.clone(),
        edges: Vec::new(),
        density: r.density,
        total_weight: r.total_weight,
        weight_by_type: [0; EdgeType::COUNT],
        types: Vec::new(),
        time_compression: r.time_compression,
        first_ms: r.first_seen.0,
        last_ms: r.last_seen.0,
        score: r.score,
        narratives: Vec::new(),
        evidence: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_parse_with_units() {
        assert_eq!(parse_window("60s").unwrap(), 60_000);
        assert_eq!(parse_window("2m").unwrap(), 120_000);
        assert_eq!(parse_window("500ms").unwrap(), 500);
        assert_eq!(parse_window("1h").unwrap(), 3_600_000);
        assert_eq!(parse_window("90").unwrap(), 90_000);
        assert!(parse_window("0s").is_err());
        assert!(parse_window("fast").is_err());
        assert!(parse_window("5d").is_err());
    }

    fn rec(a: &str, t: i64, text: &str) -> CntRecord {
        CntRecord {
            id: format!("{a}-{t}"),
            author: a.into(),
            time_ms: t * 1000,
            text: text.into(),
            ..Default::default()
        }
    }

    #[test]
    fn compat_edges_keep_only_components_of_k_accounts() {
        let mut records = Vec::new();
        // Three accounts posting the same two texts together, and six.
        for (n, tag) in [(3, "s"), (6, "b")] {
            for round in 0..2 {
                for a in 0..n {
                    records.push(rec(
                        &format!("{tag}{a}"),
                        round * 600 + a as i64,
                        &format!("{tag} text {round}"),
                    ));
                }
            }
        }
        let all = compat_edges(&records, &[CntType::CoPost], 60_000, 2, 5);
        // Six accounts, every ordered pair: 30 edges of weight 2.
        assert_eq!(all.len(), 30);
        assert!(all.iter().all(|e| e.source.starts_with('b') && e.weight == 2));
        assert!(compat_edges(&records, &[CntType::CoPost], 60_000, 2, 7).is_empty());
    }

    #[test]
    fn gexf_escapes_and_is_well_formed() {
        let mut g = Gexf::new(false);
        g.edge("b<1>", "a&2", 3, "co-link", "g\"1");
        let mut out = Vec::new();
        g.write(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains(r#"<edge id="0" source="a&amp;2" target="b&lt;1&gt;" weight="3">"#),
            "{text}"
        );
        assert!(text.contains(r#"value="g&quot;1""#));
        assert_eq!(text.matches("<node ").count(), 2);
    }
}
