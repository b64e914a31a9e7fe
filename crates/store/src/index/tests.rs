use super::*;
use crate::search::SearchRequest;
use tidewatch_core::query::Query;

const HEAP: usize = 20_000_000;

fn post(id: &str, t: i64, text: &str) -> Post {
    Post {
        id: id.into(),
        platform: "bluesky".into(),
        created_at: Some(Timestamp(t)),
        text: text.into(),
        lang: Some("en".into()),
        ..Default::default()
    }
}

fn ids(index: &PostIndex, query: &str) -> Vec<String> {
    let req = SearchRequest {
        query: Query::parse(query).unwrap(),
        from: None,
        to: None,
        feed: None,
        limit: 1000,
    };
    let mut ids: Vec<String> = index.search(&req).unwrap().into_iter().map(|h| h.id).collect();
    ids.sort();
    ids
}

#[test]
fn lang_and_domain_keys_are_what_the_fields_accept() {
    assert_eq!(lang_keys("pt-br_x").collect::<Vec<_>>(), vec!["pt", "pt-br", "pt-br_x"]);
    assert_eq!(lang_keys("en").collect::<Vec<_>>(), vec!["en"]);
    assert_eq!(
        domain_keys("www.news.example.org").collect::<Vec<_>>(),
        vec!["news.example.org", "example.org", "org"]
    );
}

#[test]
fn a_new_index_is_empty_and_has_no_payload() {
    let dir = tempfile::tempdir().unwrap();
    let index = PostIndex::open(dir.path(), HEAP).unwrap();
    assert_eq!(index.num_docs(), 0);
    assert_eq!(index.payload().unwrap(), None);
}

#[test]
fn added_posts_are_visible_after_commit_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut index = PostIndex::open(dir.path(), HEAP).unwrap();
    index.add(&post("a", 1, "flood warning"), &[1, 3], 1).unwrap();
    assert_eq!(index.num_docs(), 0);
    index.commit("one").unwrap();
    assert_eq!(index.num_docs(), 1);
    assert_eq!(ids(&index, "flood"), vec!["a"]);
    assert!(index.size_bytes() > 0);
}

#[test]
fn delete_id_removes_only_that_post() {
    let dir = tempfile::tempdir().unwrap();
    let mut index = PostIndex::open(dir.path(), HEAP).unwrap();
    for id in ["a", "b", "c"] {
        index.add(&post(id, 1, "storm"), &[], 1).unwrap();
    }
    index.commit("1").unwrap();
    index.delete_id("b").unwrap();
    index.delete_id("not-there").unwrap();
    index.commit("2").unwrap();
    assert_eq!(index.num_docs(), 2);
    assert_eq!(ids(&index, "storm"), vec!["a", "c"]);
}

#[test]
fn delete_before_removes_older_posts_and_keeps_undated_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut index = PostIndex::open(dir.path(), HEAP).unwrap();
    index.add(&post("old", 999, "storm"), &[], 1).unwrap();
    index.add(&post("edge", 1000, "storm"), &[], 1).unwrap();
    index.add(&post("new", 1001, "storm"), &[], 1).unwrap();
    let mut undated = post("undated", 0, "storm");
    undated.created_at = None;
    index.add(&undated, &[], 1).unwrap();
    index.commit("1").unwrap();
    index.delete_before(Timestamp(1000)).unwrap();
    index.commit("2").unwrap();
    assert_eq!(ids(&index, "storm"), vec!["edge", "new", "undated"]);
}

#[test]
fn delete_batch_and_payload_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut index = PostIndex::open(dir.path(), HEAP).unwrap();
        index.add(&post("a", 1, "storm"), &[], 7).unwrap();
        index.add(&post("b", 2, "storm"), &[], 7).unwrap();
        index.commit("batch 7 at offset 120").unwrap();
        index.add(&post("c", 3, "storm"), &[], 8).unwrap();
        index.commit("batch 8 at offset 180").unwrap();
    }
    let mut index = PostIndex::open(dir.path(), HEAP).unwrap();
    assert_eq!(index.payload().unwrap().as_deref(), Some("batch 8 at offset 180"));
    assert_eq!(index.num_docs(), 3);
    // Recovery: batch 8 was not committed to the database; undo it.
    index.delete_batch(8).unwrap();
    index.commit("batch 7 at offset 120").unwrap();
    drop(index);
    let index = PostIndex::open(dir.path(), HEAP).unwrap();
    assert_eq!(index.payload().unwrap().as_deref(), Some("batch 7 at offset 120"));
    assert_eq!(ids(&index, "storm"), vec!["a", "b"]);
}

#[test]
fn uncommitted_posts_are_lost_when_the_writer_goes_away() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut index = PostIndex::open(dir.path(), HEAP).unwrap();
        index.add(&post("a", 1, "storm"), &[], 1).unwrap();
        index.commit("1").unwrap();
        index.add(&post("b", 2, "storm"), &[], 2).unwrap();
    }
    let index = PostIndex::open(dir.path(), HEAP).unwrap();
    assert_eq!(ids(&index, "storm"), vec!["a"]);
    assert_eq!(index.payload().unwrap().as_deref(), Some("1"));
}

#[test]
fn the_author_source_and_labels_are_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let mut index = PostIndex::open(dir.path(), HEAP).unwrap();
    let mut p = post("a", 1, "storm");
    p.author = Some("u20500-authorpseudonymzz".into());
    p.source = "sourcenamezz".into();
    p.labels = tidewatch_core::Labels::from_value(&serde_json::json!({ "labelvaluezz": 1 }));
    index.add(&p, &[], 1).unwrap();
    index.commit("1").unwrap();
    drop(index);
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        for needle in [&b"authorpseudonymzz"[..], b"sourcenamezz", b"labelvaluezz"] {
            assert!(!bytes.windows(needle.len()).any(|w| w == needle));
        }
    }
}
