//! The index's tokeniser: tidewatch's own [`tokenize`], seen through
//! tantivy's [`Tokenizer`] trait.
//!
//! The idea: the index must hold exactly the tokens the feed matcher sees,
//! at exactly the same positions, or a search would disagree with a feed.
//! So there is no second tokeniser to keep in step: this one runs
//! [`tokenize`] into a reused buffer and hands its tokens to tantivy one by
//! one (a tag and its plain word share a position, each CJK character has
//! its own).
//!
//! Offsets into the original text are not tracked (the folded buffer's
//! offsets differ from the text's); tidewatch does not build highlighted
//! snippets from them, so every token gets the empty offset range `0..0`.

use tantivy::tokenizer::{Token, TokenStream, Tokenizer};
use tidewatch_core::text::{tokenize, TokenizedText};

/// The name the tokeniser is registered under in the index.
pub const TOKENIZER_NAME: &str = "tidewatch";

/// [`tokenize`] as a tantivy tokeniser.
#[derive(Clone, Default)]
pub struct PostTokenizer {
    tokens: TokenizedText,
}

/// The tokens of one text, handed out one at a time.
pub struct PostTokenStream<'a> {
    tokens: &'a TokenizedText,
    next: usize,
    token: Token,
}

impl Tokenizer for PostTokenizer {
    type TokenStream<'a> = PostTokenStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> PostTokenStream<'a> {
        tokenize(text, &mut self.tokens);
        PostTokenStream {
            tokens: &self.tokens,
            next: 0,
            token: Token::default(),
        }
    }
}

impl TokenStream for PostTokenStream<'_> {
    fn advance(&mut self) -> bool {
        let Some(tok) = self.tokens.tokens().get(self.next) else {
            return false;
        };
        self.next += 1;
        self.token.text.clear();
        self.token.text.push_str(self.tokens.text(tok));
        self.token.position = tok.position as usize;
        // A tag whose body spans several positions (`#東京2020`) covers them
        // all; tantivy only uses this to place the next field value.
        self.token.position_length = (tok.last_position - tok.position) as usize + 1;
        self.token.offset_from = 0;
        self.token.offset_to = 0;
        true
    }

    fn token(&self) -> &Token {
        &self.token
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.token
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use tidewatch_core::text::tokenized;

    /// `(text, position)` of every token, through tantivy's interface.
    fn via_tantivy(text: &str) -> Vec<(String, usize)> {
        let mut tokenizer = PostTokenizer::default();
        let mut stream = tokenizer.token_stream(text);
        let mut out = Vec::new();
        while stream.advance() {
            let t = stream.token();
            out.push((t.text.clone(), t.position));
        }
        out
    }

    fn via_core(text: &str) -> Vec<(String, usize)> {
        tokenized(text)
            .iter()
            .map(|(s, t)| (s.to_string(), t.position as usize))
            .collect()
    }

    #[test]
    fn tags_share_the_position_of_their_word() {
        assert_eq!(
            via_tantivy("Go #Climate, Café 地震"),
            vec![
                ("go".to_string(), 0),
                ("#climate".to_string(), 1),
                ("climate".to_string(), 1),
                ("cafe".to_string(), 2),
                ("地".to_string(), 3),
                ("震".to_string(), 4),
            ]
        );
    }

    #[test]
    fn the_tokeniser_is_reusable() {
        let mut tokenizer = PostTokenizer::default();
        {
            let mut s = tokenizer.token_stream("one two three");
            while s.advance() {}
        }
        let mut s = tokenizer.token_stream("four");
        assert!(s.advance());
        assert_eq!(s.token().text, "four");
        assert_eq!(s.token().position, 0);
        assert!(!s.advance());
    }

    proptest! {
        #[test]
        fn positions_equal_the_core_tokeniser(s in "[a-zA-Zéèüß0-9 #@$.,'_\\-地震東京서울ｶﾀ\u{301}]{0,60}") {
            prop_assert_eq!(via_tantivy(&s), via_core(&s));
        }

        #[test]
        fn positions_equal_the_core_tokeniser_on_any_string(s in any::<String>()) {
            prop_assert_eq!(via_tantivy(&s), via_core(&s));
        }
    }
}
