//! Per-feed time series written as files: one CSV per resolution
//! (`series-minute.csv`, `series-hour.csv`, `series-day.csv`) and all rows
//! as JSON Lines (`series.jsonl`), each row naming its feed.

use crate::run::{MatchedPost, RunSink};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use tidewatch_core::window::{push_csv_field, Resolution, WindowRow, WindowView};

/// How many top hashtags, terms, domains and languages a row lists.
pub const TOP_K: usize = 10;

/// Writes closed windows to files under a directory.
pub struct SeriesWriter {
    names: Vec<String>,
    minute: BufWriter<File>,
    hour: BufWriter<File>,
    day: BufWriter<File>,
    jsonl: BufWriter<File>,
    error: Option<io::Error>,
    /// Posts per feed over the run, for a summary.
    pub totals: Vec<u64>,
    /// The last closed minute's counts per feed: (minute start, feed, count).
    pub last_minute: Vec<(i64, u32, u64)>,
}

impl SeriesWriter {
    /// Creates (truncates) the files in `dir`; `names` maps feed ids to names.
    pub fn create(dir: &Path, names: Vec<String>) -> io::Result<SeriesWriter> {
        std::fs::create_dir_all(dir)?;
        let csv = |name: &str| -> io::Result<BufWriter<File>> {
            let mut w = BufWriter::new(File::create(dir.join(name))?);
            writeln!(w, "feed_name,{}", WindowRow::CSV_HEADER)?;
            Ok(w)
        };
        Ok(SeriesWriter {
            totals: vec![0; names.len()],
            names,
            minute: csv("series-minute.csv")?,
            hour: csv("series-hour.csv")?,
            day: csv("series-day.csv")?,
            jsonl: BufWriter::new(File::create(dir.join("series.jsonl"))?),
            error: None,
            last_minute: Vec::new(),
        })
    }

    /// Feed names grow when feeds are added during a run.
    pub fn set_names(&mut self, names: Vec<String>) {
        self.totals.resize(names.len().max(self.totals.len()), 0);
        self.names = names;
    }

    fn name(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or("", String::as_str)
    }

    fn write_row(&mut self, w: &WindowView<'_>) -> io::Result<()> {
        let row = w.row(TOP_K);
        let name = self.name(w.feed()).to_string();
        let mut line = String::new();
        push_csv_field(&mut line, &name);
        line.push(',');
        line.push_str(&row.to_csv_row());
        line.push('\n');
        let out = match w.resolution() {
            Resolution::Minute => &mut self.minute,
            Resolution::Hour => &mut self.hour,
            Resolution::Day => &mut self.day,
        };
        out.write_all(line.as_bytes())?;
        let mut json = serde_json::to_value(&row).map_err(io::Error::other)?;
        json["feed_name"] = serde_json::Value::String(name);
        serde_json::to_writer(&mut self.jsonl, &json).map_err(io::Error::other)?;
        self.jsonl.write_all(b"\n")
    }

    /// Flushes the files; reports the first write error of the run.
    pub fn finish(mut self) -> io::Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        for w in [&mut self.minute, &mut self.hour, &mut self.day, &mut self.jsonl] {
            w.flush()?;
        }
        Ok(())
    }
}

impl RunSink for SeriesWriter {
    fn post(&mut self, _post: &MatchedPost) {}

    fn window(&mut self, w: &WindowView<'_>) {
        if w.resolution() == Resolution::Minute {
            let id = w.feed() as usize;
            if id >= self.totals.len() {
                self.totals.resize(id + 1, 0);
            }
            self.totals[id] += w.count();
            let start = w.start().0;
            if self.last_minute.first().is_some_and(|(t, _, _)| *t != start) {
                self.last_minute.clear();
            }
            self.last_minute.push((start, w.feed(), w.count()));
        }
        if self.error.is_none() {
            if let Err(e) = self.write_row(w) {
                self.error = Some(e);
            }
        }
    }
}
