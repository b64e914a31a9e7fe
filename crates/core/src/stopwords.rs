//! Stop words: the function words of the languages tidewatch sees most,
//! folded like the tokeniser folds text (lower case, no diacritics).
//!
//! They are left out of "top terms" and emerging-term statistics, where
//! they would otherwise always lead; queries may still use them.

use rustc_hash::FxHashSet;
use std::sync::OnceLock;

const WORDS: &str = "
a about above after again against all also am an and any are as at be because been before being below
between both but by can could did do does doing down during each few for from further had has have having
he her here hers herself him himself his how i if in into is it its itself just me more most my myself no nor
not now of off on once only or other our ours ourselves out over own same she should so some such than that
the their theirs them themselves then there these they this those through to too under until up very was we
were what when where which while who whom why will with would you your yours yourself yourselves im its dont
cant wont thats ive youre get got go going like one rt via amp u ur lol also still even much many make really
aber alle als am an auch auf aus bei bin bis bist da damit dann das dass dein deine dem den der des dich die
dir doch du durch ein eine einem einen einer eines er es euch euer für hat hatte hier ich ihr im in ins ist ja
jetzt kann kein keine mein meine mich mir mit nach nicht noch nur ob oder ohne schon sehr sein seine sich sie
sind so über um und uns unser vom von vor war was weil wenn wer wie wir wird zu zum zur
au aux avec ce ces cette dans de des du elle en est et eux il ils je la le les leur lui ma mais me mes moi mon
ne nos notre nous on ou par pas pour qu que qui sa se ses son sur ta te tes toi ton tu un une vos votre vous
y été être fait plus tout
al algo como con cual cuando del desde donde el ella ellos en entre era es esa ese eso esta este esto estos
fue ha hay la las le les lo los mas me mi muy nada ni no nos o para pero por porque que se ser si sin sobre
su sus tambien te tiene todo tu un una uno unos y ya
ao aos as com como da das de dele do dos e ela ele eles em entre era essa esse esta este eu foi ha isso isto
mais mas meu minha muito na nao nas no nos o os ou para pela pelo por qual quando que se sem ser seu sua tem
um uma voce
agli ai al alla alle anche che chi ci con da dal dalla dei del della delle di e gli ha il in io la le lei lo
loro ma mi ne nei nel nella non noi per piu quella quello questa questo se si sono su sua suo sul ti tra tu
un una uno voi
";

fn set() -> &'static FxHashSet<&'static str> {
    static SET: OnceLock<FxHashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| WORDS.split_whitespace().collect())
}

/// Whether a folded token is a stop word.
pub fn is_stop_word(token: &str) -> bool {
    set().contains(token)
}

#[cfg(test)]
mod tests {
    #[test]
    fn knows_common_function_words_but_not_topics() {
        for w in ["the", "and", "und", "les", "para", "della", "rt"] {
            assert!(super::is_stop_word(w), "{w}");
        }
        for w in ["earthquake", "climate", "flood", "klima"] {
            assert!(!super::is_stop_word(w), "{w}");
        }
    }
}
