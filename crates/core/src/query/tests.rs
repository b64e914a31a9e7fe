//! Parser, canonical form and anchor tests, and the properties the compiled
//! matcher relies on.

use super::*;
use crate::post::{Entities, Post, Sentiment};
use crate::text::tokenized;
use proptest::prelude::*;

fn term(s: &str) -> Node {
    Node::Term(Pattern::Exact(s.into()))
}

fn wild(s: &str) -> Node {
    Node::Term(Pattern::Wildcard(s.into()))
}

fn phrase(words: &[&str], slop: u32) -> Node {
    Node::Phrase {
        words: words.iter().map(|w| Pattern::Exact(w.to_string())).collect(),
        slop,
    }
}

fn not(n: Node) -> Node {
    Node::Not(Box::new(n))
}

fn parsed(q: &str) -> Node {
    match Query::parse(q) {
        Ok(query) => query.root().clone(),
        Err(e) => panic!("{q}: {e}"),
    }
}

fn normal(q: &str) -> String {
    Query::parse(q)
        .map(|q| q.normalized())
        .unwrap_or_else(|e| panic!("{e}"))
}

fn error(q: &str) -> (usize, String) {
    match Query::parse(q) {
        Ok(ok) => panic!("{q} parsed as {ok}"),
        Err(e) => (e.column, e.kind.to_string()),
    }
}

#[test]
fn parses_terms_phrases_and_boolean_operators() {
    assert_eq!(parsed("Climate"), term("climate"));
    assert_eq!(parsed("\"Climate  Change\""), phrase(&["climate", "change"], 0));
    assert_eq!(parsed("\"climate change\"~3"), phrase(&["climate", "change"], 3));
    assert_eq!(parsed("“climate change”~3"), phrase(&["climate", "change"], 3));
    assert_eq!(parsed("\"climate\"~3"), term("climate"));
    assert_eq!(parsed("a AND b"), Node::And(vec![term("a"), term("b")]));
    assert_eq!(parsed("a b c"), Node::And(vec![term("a"), term("b"), term("c")]));
    assert_eq!(parsed("a OR b OR c"), Node::Or(vec![term("a"), term("b"), term("c")]));
    assert_eq!(parsed("NOT a"), not(term("a")));
    assert_eq!(parsed("a -b"), Node::And(vec![term("a"), not(term("b"))]));
    assert_eq!(parsed("-(a OR b)"), not(Node::Or(vec![term("a"), term("b")])));
    assert_eq!(
        parsed("and or not"),
        Node::And(vec![term("and"), term("or"), term("not")])
    );
}

#[test]
fn precedence_is_near_not_and_or() {
    assert_eq!(
        parsed("a b OR c"),
        Node::Or(vec![Node::And(vec![term("a"), term("b")]), term("c")])
    );
    assert_eq!(
        parsed("a OR b AND NOT c"),
        Node::Or(vec![term("a"), Node::And(vec![term("b"), not(term("c"))])])
    );
    let near = Node::Near {
        left: Box::new(term("a")),
        right: Box::new(term("b")),
        distance: 2,
    };
    assert_eq!(parsed("NOT a NEAR/2 b"), not(near.clone()));
    assert_eq!(parsed("x a NEAR/2 b"), Node::And(vec![term("x"), near]));
    assert_eq!(
        parsed("(a OR b) AND (c OR d)"),
        Node::And(vec![
            Node::Or(vec![term("a"), term("b")]),
            Node::Or(vec![term("c"), term("d")])
        ])
    );
}

#[test]
fn parses_near_with_phrase_and_or_operands() {
    assert_eq!(
        parsed("(flood OR \"high water\") NEAR/5 river"),
        Node::Near {
            left: Box::new(Node::Or(vec![term("flood"), phrase(&["high", "water"], 0)])),
            right: Box::new(term("river")),
            distance: 5,
        }
    );
}

#[test]
fn parses_wildcards_tags_cjk_and_multiword_terms() {
    assert_eq!(parsed("Climat*"), wild("climat*"));
    assert_eq!(parsed("C*mate"), wild("c*mate"));
    assert_eq!(parsed("wom?n"), wild("wom?n"));
    assert_eq!(parsed("#Clim*"), wild("#clim*"));
    assert_eq!(parsed("#Climate"), term("#climate"));
    assert_eq!(parsed("$TSLA"), term("$tsla"));
    assert_eq!(parsed("@Alice_Example"), term("@alice_example"));
    assert_eq!(parsed("地震"), phrase(&["地", "震"], 0));
    assert_eq!(parsed("e-mail"), phrase(&["e", "mail"], 0));
    assert_eq!(parsed("Café"), term("cafe"));
    assert_eq!(parsed("#東京2020"), term("#東京2020"));
    assert_eq!(
        parsed("\"climat* change\""),
        Node::Phrase {
            words: vec![Pattern::Wildcard("climat*".into()), Pattern::Exact("change".into())],
            slop: 0
        }
    );
}

#[test]
fn parses_fields() {
    assert_eq!(parsed("lang:DE"), Node::Field(Field::Lang("de".into())));
    assert_eq!(
        parsed("platform:bluesky"),
        Node::Field(Field::Platform("bluesky".into()))
    );
    assert_eq!(
        parsed("domain:WWW.Example.org"),
        Node::Field(Field::Domain("example.org".into()))
    );
    assert_eq!(
        parsed("sentiment:negative"),
        Node::Field(Field::Sentiment(SentimentClass::Negative))
    );
    assert_eq!(parsed("is:repost"), Node::Field(Field::IsRepost));
    assert_eq!(parsed("IS:reply"), Node::Field(Field::IsReply));
}

#[test]
fn normalised_forms() {
    assert_eq!(
        normal("Climate -Hoax OR \"Café Au lait\""),
        "(climate AND NOT hoax) OR \"cafe au lait\""
    );
    assert_eq!(normal("a (b OR c)"), "a AND (b OR c)");
    assert_eq!(normal("((a))"), "a");
    assert_eq!(normal("NOT a NEAR/2 \"b c\"~1"), "NOT (a NEAR/2 \"b c\"~1)");
    assert_eq!(normal("(x OR y) NEAR/0 z lang:de"), "((x OR y) NEAR/0 z) AND lang:de");
    assert_eq!(normal("地震 東京2020"), "\"地震\" AND \"東京 2020\"");
    assert_eq!(normal("Climat* #Climate $TSLA"), "climat* AND #climate AND $tsla");
    assert_eq!(normal("NOT NOT a"), "NOT NOT a");
    assert_eq!(
        normal("domain:news.example.org sentiment:POSITIVE is:reply platform:Mastodon"),
        "domain:news.example.org AND sentiment:positive AND is:reply AND platform:mastodon"
    );
}

#[test]
fn errors_name_the_column_and_what_was_expected() {
    let (col, msg) = error("climate AND");
    assert_eq!(col, 12);
    assert_eq!(msg, "expected a term, a phrase, a field or '(', found end of query");
    let (col, msg) = error("(a OR b");
    assert_eq!(
        (col, msg.as_str()),
        (8, "expected ')' to close the '(' at column 1, found end of query")
    );
    assert_eq!(error("\"unclosed").0, 1);
    assert!(error("\"unclosed").1.contains("unclosed quote"));
    assert_eq!(
        error("a NEAR/x b"),
        (8, "expected a number of words after 'NEAR/', as in NEAR/3".into())
    );
    assert_eq!(error("a NEAR b").0, 7);
    let (col, msg) = error("climate author:bob");
    assert_eq!(col, 9);
    assert!(msg.contains("never selects posts by author"), "{msg}");
    assert!(error("from:bob").1.contains("never selects posts by author"));
    assert!(error("USER:bob").1.contains("'user:'"));
    assert_eq!(
        error("a OR"),
        (
            5,
            "expected a term, a phrase, a field or '(', found end of query".into()
        )
    );
    assert_eq!(error("a ) b").0, 3);
    assert_eq!(error("").0, 1);
    assert_eq!(error("OR a").0, 1);
    assert_eq!(error("\"a b\"~x").0, 7);
    assert_eq!(
        error("climate~2").1,
        "'~' is only allowed right after a quoted phrase, as in \"climate change\"~2"
    );
    assert!(error("*mate").1.contains("leading wildcards"));
    assert!(error("地*").1.contains("not CJK"));
    assert!(error("foo:bar").1.contains("unknown field 'foo:'"));
    assert_eq!(error("lang:").0, 6);
    assert!(error("sentiment:angry").1.contains("negative, neutral or positive"));
    assert!(error("domain:localhost").1.contains("a domain"));
    assert!(error("🔥").1.contains("no letters or digits"));
    assert_eq!(error("a AND (b c) NEAR/2 d").0, 7);
    assert_eq!(
        error("a NEAR/2 b NEAR/2 c"),
        (12, "NEAR cannot be chained: write (a NEAR/n b) AND (b NEAR/n c)".into())
    );
    assert_eq!(
        error("a NEAR/99999999999 b").1,
        format!("number too large: at most {}", u32::MAX)
    );
}

#[test]
fn error_display_points_at_the_column() {
    let e = Query::parse("climate AND").unwrap_err();
    assert_eq!(
        e.to_string(),
        "expected a term, a phrase, a field or '(', found end of query at column 12\n  climate AND\n             ^"
    );
}

fn anchors_of(q: &str) -> String {
    Query::parse(q)
        .map(|q| q.anchors().to_string())
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn anchors_of_each_construct() {
    assert_eq!(anchors_of("climate"), "{climate}");
    assert_eq!(anchors_of("climat*"), "{climat*}");
    assert_eq!(anchors_of("\"climate change\"~2"), "{change, climate}");
    assert_eq!(anchors_of("a OR b"), "{a} OR {b}");
    assert_eq!(anchors_of("(a OR b) (c OR d)"), "{a, c} OR {a, d} OR {b, c} OR {b, d}");
    assert_eq!(anchors_of("a -b lang:de"), "{a}");
    assert_eq!(anchors_of("(a OR b) NEAR/3 c"), "{a, c} OR {b, c}");
    assert_eq!(anchors_of("a OR (a b)"), "{a}");
    assert_eq!(anchors_of("地震"), "{地, 震}");
    assert_eq!(anchors_of("#climate"), "{#climate}");
    assert_eq!(Query::parse("NOT spam").map(|q| q.anchors()), Ok(Anchors::Unanchored));
    assert_eq!(Query::parse("lang:de").map(|q| q.anchors()), Ok(Anchors::Unanchored));
    assert_eq!(Query::parse("a OR NOT b").map(|q| q.anchors()), Ok(Anchors::Unanchored));
}

#[test]
fn anchor_products_are_capped() {
    // Three OR-groups of eight: 512 combinations, capped by skipping groups.
    let group = |c: char| {
        let words: Vec<String> = (0..8).map(|i| format!("{c}{i}")).collect();
        format!("({})", words.join(" OR "))
    };
    let q = Query::parse(&format!("{} {} {}", group('a'), group('b'), group('c'))).unwrap_or_else(|e| panic!("{e}"));
    match q.anchors() {
        Anchors::AnyOf(sets) => assert_eq!(sets.len(), 64),
        Anchors::Unanchored => panic!("expected anchors"),
    }
}

// ---- properties ----

const WORDS: &[&str] = &[
    "東",
    "#東京2020",
    "climate",
    "change",
    "flood",
    "river",
    "cafe",
    "storm",
    "2020",
    "地",
    "震",
    "#climate",
    "$tsla",
    "@alice_example",
];
const WILDCARDS: &[&str] = &["climat*", "c*e", "fl??d", "riv*", "#clim*", "s?orm"];

fn pattern() -> impl Strategy<Value = Pattern> {
    prop_oneof![
        3 => prop::sample::select(WORDS).prop_map(|w| Pattern::Exact(w.to_string())),
        1 => prop::sample::select(WILDCARDS).prop_map(|w| Pattern::Wildcard(w.to_string())),
    ]
}

fn phrase_node() -> impl Strategy<Value = Node> {
    (prop::collection::vec(pattern(), 2..4), 0u32..4).prop_map(|(words, slop)| Node::Phrase { words, slop })
}

fn field() -> impl Strategy<Value = Node> {
    prop::sample::select(vec![
        Field::Lang("en".into()),
        Field::Lang("de".into()),
        Field::Platform("bluesky".into()),
        Field::Domain("example.org".into()),
        Field::Sentiment(SentimentClass::Negative),
        Field::Sentiment(SentimentClass::Neutral),
        Field::Sentiment(SentimentClass::Positive),
        Field::IsRepost,
        Field::IsReply,
    ])
    .prop_map(Node::Field)
}

fn near_operand() -> impl Strategy<Value = Node> {
    let simple = prop_oneof![3 => pattern().prop_map(Node::Term), 1 => phrase_node()];
    prop_oneof![
        3 => simple.clone(),
        1 => prop::collection::vec(simple, 2..4).prop_map(Node::or),
    ]
}

fn node() -> impl Strategy<Value = Node> {
    let leaf = prop_oneof![
        4 => pattern().prop_map(Node::Term),
        1 => phrase_node(),
        1 => field(),
        1 => (near_operand(), near_operand(), 0u32..4).prop_map(|(l, r, distance)| Node::Near {
            left: Box::new(l),
            right: Box::new(r),
            distance
        }),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(|n| Node::Not(Box::new(n))),
            prop::collection::vec(inner.clone(), 2..4).prop_map(Node::and),
            prop::collection::vec(inner, 2..4).prop_map(Node::or),
        ]
    })
}

const TEXT_WORDS: &[&str] = &[
    "#東京2020",
    "東京",
    "Climate",
    "change",
    "#Climate",
    "#ClimateStrike",
    "climatic",
    "flood",
    "FLOOD",
    "fluid",
    "river",
    "Café",
    "storm",
    "sform",
    "2020",
    "地震",
    "地",
    "$TSLA",
    "@alice_example",
    "x",
    "the",
    "cafe.",
    "rive",
];

fn post() -> impl Strategy<Value = Post> {
    (
        prop::collection::vec(prop::sample::select(TEXT_WORDS), 0..10),
        prop::sample::select(vec!["en", "de", "de-AT"]),
        prop::sample::select(vec!["bluesky", "twitter"]),
        any::<bool>(),
        prop::option::of(-1.0f64..1.0),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(words, lang, platform, linked, compound, repost, reply)| Post {
            text: words.join(" "),
            lang: Some(lang.into()),
            platform: platform.into(),
            sentiment: compound.map(|compound| Sentiment {
                compound,
                ..Default::default()
            }),
            entities: Some(Entities {
                domains: if linked {
                    vec!["news.example.org".into()]
                } else {
                    vec![]
                },
                ..Default::default()
            }),
            repost_of: repost.then(|| "r".into()),
            reply_to: reply.then(|| "p".into()),
            ..Default::default()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    #[test]
    fn anchors_are_sound(root in node(), p in post()) {
        let q = Query::from_node(root);
        let tokens = tokenized(&p.text);
        if eval::matches(&q, &p, &tokens) {
            let anchors = q.anchors();
            prop_assert!(anchors.admits(&tokens), "{} matched {:?} but anchors {} do not admit it", q, p.text, anchors);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn normalized_form_reparses_to_the_same_tree(root in node()) {
        let q = Query::from_node(root);
        let text = q.normalized();
        let again = Query::parse(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&again, &q, "{}", text);
        prop_assert_eq!(again.normalized(), text);
    }

    #[test]
    fn parser_never_panics(s in any::<String>()) {
        let _ = Query::parse(&s);
    }

    #[test]
    fn parser_never_panics_on_query_like_text(s in "[a-c A-Z()\"*?~:/#@$0-9-]{0,30}") {
        if let Ok(q) = Query::parse(&s) {
            // Whatever parses has a canonical form that parses back to it.
            let again = Query::parse(&q.normalized()).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(again, q);
        }
    }
}
