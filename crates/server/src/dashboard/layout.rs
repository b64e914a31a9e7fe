//! The page shell every dashboard page shares: a header with the
//! navigation, the page's `<main>`, a footer; the stylesheet (inline, one
//! request per page); and the live script.
//!
//! Colours are chosen for contrast of at least 4.5:1 on their backgrounds
//! (text #1b1b1b and muted #4a4a4a on white, links #0b57a4); layout fits a
//! 1366×768 screen without horizontal scrolling.

use axum::http::header;
use axum::response::IntoResponse;
use maud::{html, Markup, PreEscaped, DOCTYPE};

/// Which navigation entry a page belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    Overview,
    Feeds,
    Narratives,
    Groups,
    Search,
    /// Login and error pages.
    None,
}

const NAV: &[(Section, &str, &str)] = &[
    (Section::Overview, "/", "Overview"),
    (Section::Feeds, "/feeds", "Feeds"),
    (Section::Narratives, "/narratives", "Narratives"),
    (Section::Groups, "/groups", "Coordinated groups"),
    (Section::Search, "/search", "Search"),
];

const CSS: &str = r#"
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1b1b;background:#fff}
header{background:#12263f;color:#fff;padding:.5rem 1rem;display:flex;gap:1.5rem;align-items:center;flex-wrap:wrap}
header .brand{font-weight:700;font-size:1.1rem;color:#fff;text-decoration:none}
nav ul{list-style:none;margin:0;padding:0;display:flex;gap:1rem;flex-wrap:wrap}
nav a{color:#fff;text-decoration:none;padding:.2rem .1rem;border-bottom:2px solid transparent}
nav a[aria-current=page]{border-bottom-color:#ffcf5c}
nav a:hover,nav a:focus{text-decoration:underline}
main{max-width:1300px;margin:0 auto;padding:1rem}
footer{max-width:1300px;margin:0 auto;padding:.5rem 1rem 1.5rem;color:#4a4a4a;font-size:.85rem}
a{color:#0b57a4}
h1{font-size:1.5rem;margin:.3rem 0 .8rem}
h2{font-size:1.15rem;margin:1.2rem 0 .5rem}
.muted{color:#4a4a4a}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:1rem}
.card{border:1px solid #c9c9c9;border-radius:6px;padding:.6rem .9rem}
.stat{font-size:1.6rem;font-weight:700}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #dcdcdc;vertical-align:top}
th{background:#f2f2f2}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
ol.plain,ul.plain{padding-left:1.2rem}
li.alert{margin:.2rem 0}
.badge{display:inline-block;padding:0 .4rem;border-radius:3px;font-size:.8rem;background:#e8e8e8;color:#1b1b1b}
.badge.opened{background:#ffe1d6;color:#7a1e00}
.badge.closed{background:#e3efe3;color:#1d4d1d}
.bad{color:#a30000}
.ok{color:#1d5e1d}
blockquote{margin:.3rem 0;padding:.3rem .7rem;border-left:3px solid #9bb8d8;background:#f7f9fc;overflow-wrap:anywhere}
svg{max-width:100%;height:auto}
svg text{font:11px system-ui,sans-serif;fill:#1b1b1b}
.ranges a{margin-right:.6rem}
.ranges a[aria-current=true]{font-weight:700;color:#1b1b1b}
form.inline{display:flex;gap:.5rem;flex-wrap:wrap;align-items:end}
form label{display:block;font-size:.85rem;color:#4a4a4a}
input,button{font:inherit;padding:.3rem .5rem}
input[type=search]{min-width:28rem;max-width:100%}
button{background:#0b57a4;color:#fff;border:0;border-radius:4px;cursor:pointer}
:focus-visible{outline:3px solid #ffbf47;outline-offset:1px}
.skip{position:absolute;left:-999px}
.skip:focus{left:1rem;top:.5rem;background:#fff;color:#0b57a4;padding:.3rem}
"#;

/// A whole page: `<title>`, landmarks, navigation, then `body`.
pub fn shell(title: &str, current: Section, body: Markup) -> Markup {
    shell_with_script(title, current, body, false)
}

/// A page that also loads the live script.
pub fn shell_with_script(title: &str, current: Section, body: Markup, live: bool) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · tidewatch" }
                style { (PreEscaped(CSS)) }
                @if live {
                    script src="/assets/live.js" defer {}
                }
            }
            body {
                a class="skip" href="#main" { "Skip to content" }
                header {
                    a class="brand" href="/" { "tidewatch" }
                    nav aria-label="Main" {
                        ul {
                            @for (section, href, label) in NAV {
                                li {
                                    @if *section == current {
                                        a href=(href) aria-current="page" { (label) }
                                    } @else {
                                        a href=(href) { (label) }
                                    }
                                }
                            }
                        }
                    }
                }
                main id="main" { (body) }
                footer { "tidewatch watches topics, not people: no page names an account." }
            }
        }
    }
}

/// The live script: listens to `/api/v1/stream`, prepends each `alert`
/// to the overview's `#live-alerts` in the shape the server renders
/// (see `overview::alert_item`), and updates `#ingest-rate` and `#lag`
/// from `health` events. Builds elements with `textContent` only, never
/// markup from data.
pub const LIVE_JS: &str = r##"(function () {
  "use strict";
  var list = document.getElementById("live-alerts");
  var rate = document.getElementById("ingest-rate");
  var lag = document.getElementById("lag");
  if (!window.EventSource || (!list && !rate)) return;
  function shortTime(t) { return String(t || "").slice(0, 16).replace("T", " "); }
  function label(d) {
    if (d.kind === "hashtag") return d.key.charAt(0) === "#" ? d.key : "#" + d.key;
    if (d.kind === "lang") return "lang:" + d.key;
    return d.key;
  }
  function span(cls, text) {
    var s = document.createElement("span");
    s.className = cls;
    s.textContent = text;
    return s;
  }
  function duration(ms) {
    ms = Math.max(0, ms);
    if (ms < 1000) return ms + " ms";
    if (ms < 60000) return Math.floor(ms / 1000) + " s";
    if (ms < 3600000) return Math.floor(ms / 60000) + " min";
    return (ms / 3600000).toFixed(1) + " h";
  }
  var es = new EventSource("/api/v1/stream");
  es.addEventListener("alert", function (e) {
    if (!list) return;
    var a;
    try { a = JSON.parse(e.data); } catch (_) { return; }
    var items = list.querySelectorAll("li.alert");
    for (var i = 0; i < items.length; i++) {
      if (items[i].getAttribute("data-alert-id") === a.id) items[i].remove();
    }
    var li = document.createElement("li");
    li.className = "alert";
    li.setAttribute("data-alert-id", a.id);
    var link = document.createElement("a");
    if (a.kind === "narrative_growth") {
      link.href = "/narratives";
      link.textContent = "narrative" + (a.feed_name ? " in " + a.feed_name : "");
    } else {
      link.href = "/feeds/" + encodeURIComponent(a.feed_name);
      link.textContent = a.feed_name;
    }
    li.appendChild(link);
    li.appendChild(document.createTextNode(" "));
    li.appendChild(span("badge " + a.kind, a.kind));
    li.appendChild(document.createTextNode(" "));
    var time = document.createElement("time");
    time.setAttribute("datetime", a.spike.onset);
    time.textContent = shortTime(a.spike.onset);
    li.appendChild(time);
    li.appendChild(document.createTextNode(" "));
    li.appendChild(span("magnitude", "\u00d7" + Number(a.spike.magnitude).toFixed(1)));
    var why = (a.why || []).slice(0, 3).map(label).join(", ");
    if (why) {
      li.appendChild(document.createTextNode(" "));
      li.appendChild(span("why", why));
    }
    list.insertBefore(li, list.firstChild);
    var none = document.getElementById("no-alerts");
    if (none) none.remove();
  });
  es.addEventListener("health", function (e) {
    var m;
    try { m = JSON.parse(e.data); } catch (_) { return; }
    if (rate && typeof m.posts_per_s === "number") rate.textContent = Math.round(m.posts_per_s) + " posts/s";
    if (lag && typeof m.lag_ms === "number") lag.textContent = duration(m.lag_ms);
  });
})();
"##;

/// `GET /assets/live.js`.
pub async fn live_js() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], LIVE_JS)
}
