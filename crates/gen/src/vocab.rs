//! Per-language vocabularies with a Zipfian shape, and sentence assembly.
//!
//! Each language has a short list of stop words (drawn often, so they are
//! the most frequent tokens, as in real text) and a ranked list of content
//! words: a few hundred common words written here, followed by synthetic
//! pseudo-words built from the language's own syllables to give the long
//! tail that real vocabularies have. Words are drawn by rank with Zipf
//! weights `1 / (rank + 25)^1.2` (Zipf–Mandelbrot). Japanese and Chinese are written without spaces.
//!
//! The vocabularies do not depend on the generator's seed, so a benchmark
//! can draw realistic queries from [`vocabulary`] and know they will match
//! generated posts at realistic rates.

use crate::sample::{zipf_weights, Alias};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::collections::BTreeSet;
use std::sync::OnceLock;

/// A language of generated posts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    En,
    De,
    Fr,
    Es,
    Pt,
    It,
    Ja,
    Zh,
    Ar,
}

impl Lang {
    /// Every language, English first.
    pub const ALL: [Lang; 9] = [
        Lang::En,
        Lang::De,
        Lang::Fr,
        Lang::Es,
        Lang::Pt,
        Lang::It,
        Lang::Ja,
        Lang::Zh,
        Lang::Ar,
    ];

    /// The ISO 639-1 code written in `Post.lang`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::De => "de",
            Lang::Fr => "fr",
            Lang::Es => "es",
            Lang::Pt => "pt",
            Lang::It => "it",
            Lang::Ja => "ja",
            Lang::Zh => "zh",
            Lang::Ar => "ar",
        }
    }

    /// The language with this ISO 639-1 code.
    pub fn from_code(code: &str) -> Option<Lang> {
        Lang::ALL.into_iter().find(|l| l.code() == code)
    }

    /// Share of generated posts written in this language (sums to 1;
    /// English 0.9, the rest about 10%).
    pub fn share(self) -> f64 {
        match self {
            Lang::En => 0.900,
            Lang::De => 0.022,
            Lang::Fr => 0.016,
            Lang::Es => 0.020,
            Lang::Pt => 0.012,
            Lang::It => 0.008,
            Lang::Ja => 0.010,
            Lang::Zh => 0.006,
            Lang::Ar => 0.006,
        }
    }

    /// Written without spaces between words.
    pub fn is_cjk(self) -> bool {
        matches!(self, Lang::Ja | Lang::Zh)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// One language's words.
#[derive(Debug)]
pub struct Vocabulary {
    pub lang: Lang,
    /// Function words, most frequent first.
    pub stop_words: Vec<&'static str>,
    /// Content words by frequency rank: written words first, then
    /// synthetic pseudo-words.
    pub words: Vec<String>,
    stop_alias: Alias,
    word_alias: Alias,
}

impl Vocabulary {
    /// A stop word, Zipf-distributed.
    #[inline]
    pub(crate) fn stop<R: RngCore>(&self, rng: &mut R) -> &'static str {
        self.stop_words[self.stop_alias.sample(rng)]
    }

    /// A content word, Zipf-distributed over the whole list.
    #[inline]
    pub(crate) fn word<R: RngCore>(&self, rng: &mut R) -> &str {
        &self.words[self.word_alias.sample(rng)]
    }
}

/// The vocabulary of a language (built once, independent of any seed).
pub fn vocabulary(lang: Lang) -> &'static Vocabulary {
    static ALL: OnceLock<Vec<Vocabulary>> = OnceLock::new();
    &ALL.get_or_init(|| Lang::ALL.iter().map(|&l| build(l)).collect())[lang.index()]
}

/// The invented names of the planted emerging topics (their hashtags and
/// the first word of each term); the vocabularies never contain them, so an
/// emerging topic's names are absent before it starts.
pub(crate) fn is_reserved(word: &str) -> bool {
    crate::topics::EMERGING
        .iter()
        .any(|e| e.hashtag == word || e.terms.iter().any(|t| t.split(' ').next() == Some(word)))
}

fn build(lang: Lang) -> Vocabulary {
    let (stops, common, syllables, target) = sources(lang);
    let stop_words: Vec<&'static str> = stops.split_whitespace().collect();
    let mut seen = BTreeSet::new();
    let mut words = Vec::new();
    for w in common.split_whitespace() {
        if seen.insert(w.to_string()) {
            words.push(w.to_string());
        }
    }
    let syl: Vec<&str> = syllables.split_whitespace().collect();
    // A fixed seed per language: the vocabulary is part of the generator's
    // definition, not of a run.
    let mut rng = ChaCha8Rng::seed_from_u64(0x7769_6465 + lang.index() as u64);
    let mut attempts = 0u32;
    while words.len() < target && attempts < 1_000_000 {
        attempts += 1;
        let parts = 2 + (rng.next_u32() % 2) as usize;
        let mut w = String::new();
        for _ in 0..parts {
            w.push_str(syl[(rng.next_u32() as usize) % syl.len()]);
        }
        if w.chars().count() < 2 || is_reserved(&w) || !seen.insert(w.clone()) {
            continue;
        }
        words.push(w);
    }
    let stop_alias = Alias::new(&zipf_weights(stop_words.len(), 1.0));
    // Zipf–Mandelbrot, `1 / (rank + 25)^1.2`: the most common content
    // words stay below the stop words, as in real text, the written words
    // cover about two thirds of content tokens, and the tail is long.
    let word_w: Vec<f64> = (0..words.len()).map(|r| (r as f64 + 26.0).powf(-1.2)).collect();
    let word_alias = Alias::new(&word_w);
    Vocabulary {
        lang,
        stop_words,
        words,
        stop_alias,
        word_alias,
    }
}

/// (stop words, common words, syllables for pseudo-words, target size).
fn sources(lang: Lang) -> (&'static str, &'static str, &'static str, usize) {
    match lang {
        Lang::En => (EN_STOP, EN_WORDS, EN_SYL, 6000),
        Lang::De => (DE_STOP, DE_WORDS, DE_SYL, 2500),
        Lang::Fr => (FR_STOP, FR_WORDS, FR_SYL, 2500),
        Lang::Es => (ES_STOP, ES_WORDS, ES_SYL, 2500),
        Lang::Pt => (PT_STOP, PT_WORDS, PT_SYL, 2000),
        Lang::It => (IT_STOP, IT_WORDS, IT_SYL, 2000),
        Lang::Ja => (JA_STOP, JA_WORDS, JA_SYL, 2000),
        Lang::Zh => (ZH_STOP, ZH_WORDS, ZH_SYL, 2000),
        Lang::Ar => (AR_STOP, AR_WORDS, AR_SYL, 2000),
    }
}

const EN_STOP: &str = "the to and a of is in that it for you i on this with be are was have at not but just so my we they all what about from if like your me can do will one more there out up how get now he she when who our an by as no has his her them or been would than";
const EN_WORDS: &str = "people time today day good new really think know going great love want make need right see year still back work first last week thing night life way home world last better city team game news morning again best never something everyone free long little every thanks another feel big real old show watch happy hope school found story looking long things after says report family friends public water police local government money music help pretty coffee early tonight weekend years minutes change part place keep sure read talk around start call video week months power point young open online post thread photo country state market price prices plan support months season country street house market system train phone service data share open hours number left small hard bad late rain weather sun storm together nothing problem group health office early word words course kids children women men community office book film movie song album art light table party dinner lunch birthday summer winter spring autumn north south east west bridge road park river beach island mountain airport station car bus bike ticket line queue shop store bread cheese pizza tea beer wine chocolate garden dog cat bird horse coach player fans stadium goal score match final league club coach win lose draw court judge law bill vote leader minister council campaign election debate policy tax budget energy oil gas electric battery climate carbon heat cold snow wind flood fire smoke air quality hospital doctor nurse patient clinic flu virus test vaccine study research paper science lab space moon star planet rocket launch data model code software app update bug release server cloud chip computer screen camera laptop internet account password email message chat stream live channel podcast episode series season finale trailer ticket concert tour festival stage guitar drums band singer crowd dance museum gallery history ancient castle village farm harvest price rent house flat tenant landlord mortgage bank loan wage job jobs worker union strike shift boss meeting deadline project idea question answer reason example fact truth rumour source link article headline editor writer journalist reporter anchor interview statement announcement decision result results record history future moment chance risk threat warning alert safety rescue crew volunteer donation charity school teacher student exam class lesson university campus library";
const EN_SYL: &str = "ba be bi bo bu ca ce co cu da de di do du fa fe fi fo ga ge go ha he hi ho la le li lo lu ma me mi mo mu na ne ni no nu pa pe pi po ra re ri ro ru sa se si so su ta te ti to tu va ve vi vo wa we wi ya yo za ton ter ber der ley ford wick ling ness ment land ster man ville dale port mont";

const DE_STOP: &str = "der die und in den von zu das mit sich des auf für ist im dem nicht ein eine als auch es an werden aus er hat dass sie nach wird bei einer um am sind noch wie einem über einen so zum war haben nur oder aber vor zur bis mehr durch man";
const DE_WORDS: &str = "heute morgen jahr zeit leute menschen stadt land welt regierung arbeit wetter regen sonne schnee zug bahn verspätung haus wohnung miete schule kinder familie freunde spiel mannschaft tor trainer wahl partei kanzler minister gesetz geld preis preise markt strom energie heizung klima hitze sturm hochwasser feuer polizei krankenhaus arzt impfung grippe nachrichten zeitung bericht frage antwort woche monat abend nacht wochenende straße brücke fluss berg dorf bier kaffee brot kuchen urlaub reise flughafen flug musik konzert film serie buch museum kirche rathaus bürgermeister gericht richter streik gewerkschaft lohn firma chef büro computer handy internet daten forschung studie wissenschaft rakete mond sterne himmel garten hund katze vogel wald wasser luft erde frieden krieg grenze europa deutschland berlin münchen hamburg köln frankfurt wien zürich immer wieder schon gestern wirklich eigentlich vielleicht natürlich leider endlich";
const DE_SYL: &str = "ge be ver er an ab auf aus ein schaft lich ung keit heit stein wald berg hau mei ner zu mann burg dorf bach feld haus werk tag licht zeit wort kraft spiel";

const FR_STOP: &str = "de la le et les des en un une du est que pour qui dans sur pas au plus par ne se ce il elle on nous vous ils avec mais ou son sa ses cette tout aux été sont comme fait bien être";
const FR_WORDS: &str = "aujourd'hui demain année temps gens monde ville pays gouvernement travail météo pluie soleil neige train grève retard maison appartement loyer école enfants famille amis match équipe but entraîneur élection parti président ministre loi argent prix marché électricité énergie climat chaleur tempête inondation incendie police hôpital médecin vaccin grippe nouvelles journal rapport question réponse semaine mois soir nuit rue pont fleuve montagne village café pain fromage vin vacances voyage aéroport vol musique concert film série livre musée église mairie tribunal juge syndicat salaire entreprise bureau ordinateur téléphone données recherche étude science fusée lune étoiles ciel jardin chien chat oiseau forêt eau air terre paix guerre europe france paris lyon marseille toujours encore déjà hier vraiment enfin peut-être malheureusement";
const FR_SYL: &str = "la le re de pe mon ton ville eau eur ette ard ain ier ois ange beau champ bois mer cour fleur jour nuit pierre tour val";

const ES_STOP: &str = "de la que el en y a los se del las un por con no una su para es al lo como más pero sus le ya o este sí porque esta entre cuando muy sin sobre también me hasta hay donde";
const ES_WORDS: &str = "hoy mañana año tiempo gente mundo ciudad país gobierno trabajo clima lluvia sol nieve tren huelga retraso casa piso alquiler escuela niños familia amigos partido equipo gol entrenador elecciones presidente ministro ley dinero precio precios mercado luz energía calor tormenta inundación incendio policía hospital médico vacuna gripe noticias periódico informe pregunta respuesta semana mes noche calle puente río montaña pueblo café pan queso vino vacaciones viaje aeropuerto vuelo música concierto película serie libro museo iglesia ayuntamiento tribunal juez sindicato salario empresa oficina ordenador móvil datos investigación estudio ciencia cohete luna estrellas cielo jardín perro gato pájaro bosque agua aire tierra paz guerra europa españa madrid barcelona méxico buenos siempre todavía ya ayer realmente por fin quizás";
const ES_SYL: &str =
    "ca co de la lo ma mi no pa pe po ra sa se ta to ción dad ero illa ito ando iente mar monte río sol villa";

const PT_STOP: &str = "de a o que e do da em um para é com não uma os no se na por mais as dos como mas foi ao ele das tem à seu sua ou ser quando muito há nos já está eu também só pelo";
const PT_WORDS: &str = "hoje amanhã ano tempo gente mundo cidade país governo trabalho chuva sol trem greve atraso casa aluguel escola crianças família amigos jogo time gol técnico eleição presidente ministro lei dinheiro preço mercado energia calor tempestade enchente incêndio polícia hospital médico vacina gripe notícias jornal semana mês noite rua ponte rio montanha café pão queijo vinho férias viagem aeroporto voo música show filme série livro museu igreja prefeitura tribunal juiz sindicato salário empresa escritório computador celular dados pesquisa ciência foguete lua estrelas céu jardim cachorro gato pássaro floresta água ar terra paz brasil portugal lisboa são paulo rio sempre ainda ontem realmente finalmente talvez";
const PT_SYL: &str = "ca co da de do la ma pa po ra sa ta ção dade eiro inho ando ente mar monte rio sol vila";

const IT_STOP: &str = "di e il la che a per un in è del non una i le si con da sono al della ma come lo gli più anche ha nel alla se questo mi ci ho dei";
const IT_WORDS: &str = "oggi domani anno tempo gente mondo città paese governo lavoro pioggia sole neve treno sciopero ritardo casa affitto scuola bambini famiglia amici partita squadra gol allenatore elezioni presidente ministro legge soldi prezzo mercato energia caldo tempesta alluvione incendio polizia ospedale medico vaccino influenza notizie giornale settimana mese sera notte strada ponte fiume montagna paese caffè pane formaggio vino vacanze viaggio aeroporto volo musica concerto film serie libro museo chiesa comune tribunale giudice sindacato stipendio azienda ufficio computer telefono dati ricerca scienza razzo luna stelle cielo giardino cane gatto uccello bosco acqua aria terra pace italia roma milano napoli sempre ancora ieri davvero finalmente forse";
const IT_SYL: &str = "ca co da de la lo ma mi pa po ra sa ta to zione ello etto ino ino mare monte fiume sole villa";

const JA_STOP: &str = "の に は を が と で た も て から まで です ます な ね よ って こと";
const JA_WORDS: &str = "今日 明日 地震 電車 天気 東京 大阪 ニュース 試合 選挙 政府 会社 仕事 学校 子供 家族 友達 雨 雪 台風 桜 映画 音楽 ライブ 新曲 ゲーム 写真 ご飯 ラーメン 寿司 コーヒー 旅行 空港 病院 警察 火事 情報 発表 速報 原因 影響 遅延 運転 見合わせ 駅 道路 時間 毎日 最高 本当 大丈夫 気持ち 季節 夏 冬 春 秋 海 山 川 空 月 星 宇宙 ロケット 科学 研究 電気 料金 値段 市場 経済 円安 株価 選手 監督 優勝 配信 番組 動画 投稿 応援 感謝 お疲れ様";
const JA_SYL: &str =
    "山 川 田 中 東 西 南 北 新 古 大 小 高 長 白 黒 青 赤 金 銀 水 火 木 土 花 風 雲 光 道 町 村 駅 島 橋 森 林 石 岩";

const ZH_STOP: &str = "的 了 是 在 我 有 和 就 不 人 都 一 也 很 到 说 要 去 你 会 着 这 那";
const ZH_WORDS: &str = "今天 明天 地震 天气 北京 上海 新闻 比赛 选举 政府 公司 工作 学校 孩子 家人 朋友 下雨 下雪 台风 电影 音乐 演唱会 游戏 照片 吃饭 火锅 咖啡 旅行 机场 医院 警察 火灾 消息 发布 原因 影响 延误 地铁 道路 时间 每天 真的 没问题 心情 季节 夏天 冬天 春天 秋天 大海 高山 河流 天空 月亮 星星 宇宙 火箭 科学 研究 电费 价格 市场 经济 股票 球员 教练 冠军 直播 节目 视频 支持 感谢 加油";
const ZH_SYL: &str = "山 河 城 市 东 西 南 北 新 老 大 小 高 长 白 黑 青 红 金 银 水 火 木 土 花 风 云 光 路 街 村 站 岛 桥 林 石 海 天 地 心";

const AR_STOP: &str = "في من على إلى أن هذا هذه التي الذي عن مع كان لا ما هو هي قد كل بعد بين عند لم ثم أو";
const AR_WORDS: &str = "اليوم غدا سنة وقت الناس العالم المدينة البلد الحكومة العمل الطقس مطر شمس قطار إضراب تأخير بيت إيجار مدرسة أطفال عائلة أصدقاء مباراة فريق هدف مدرب انتخابات رئيس وزير قانون مال سعر سوق كهرباء طاقة حرارة عاصفة فيضان حريق شرطة مستشفى طبيب لقاح أخبار صحيفة تقرير سؤال جواب أسبوع شهر مساء ليلة شارع جسر نهر جبل قرية قهوة خبز سفر مطار رحلة موسيقى حفلة فيلم كتاب متحف محكمة شركة مكتب هاتف بيانات بحث علم صاروخ قمر نجوم سماء حديقة ماء هواء أرض سلام القاهرة دبي الرياض دائما أمس حقا أخيرا ربما";
const AR_SYL: &str = "كا لا ما نا را سا تا با دي مي ني ري سي لي ون ين ات ية ال مر سل حم عل";

/// Appends `word` to `out` with the separator the language uses.
#[inline]
pub(crate) fn push_word(out: &mut String, lang: Lang, word: &str) {
    if !lang.is_cjk() && !out.is_empty() && !out.ends_with(' ') {
        out.push(' ');
    }
    out.push_str(word);
}

/// Appends a token that is always space-separated (a hashtag, a link, a
/// mention), even in CJK text.
#[inline]
pub(crate) fn push_token(out: &mut String, token_parts: &[&str]) {
    if !out.is_empty() && !out.ends_with(' ') {
        out.push(' ');
    }
    for p in token_parts {
        out.push_str(p);
    }
}

/// Upper-cases the character at byte `at` when it is an ASCII letter.
pub(crate) fn capitalise_from(out: &mut str, at: usize) {
    if let Some(first) = out.get_mut(at..at + 1) {
        first.make_ascii_uppercase();
    }
}

/// Sentence-final punctuation for the language.
pub(crate) fn full_stop(lang: Lang, question: bool) -> &'static str {
    match (lang, question) {
        (Lang::Ja | Lang::Zh, false) => "。",
        (Lang::Ja | Lang::Zh, true) => "？",
        (Lang::Ar, true) => "؟",
        (_, true) => "?",
        (_, false) => ".",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_sum_to_one_with_ten_percent_non_english() {
        let total: f64 = Lang::ALL.iter().map(|l| l.share()).sum();
        assert!((total - 1.0).abs() < 1e-9, "{total}");
        assert!((1.0 - Lang::En.share() - 0.10).abs() < 1e-9);
    }

    #[test]
    fn vocabularies_reach_their_size_without_duplicates_or_reserved_words() {
        for lang in Lang::ALL {
            let v = vocabulary(lang);
            let (_, _, _, target) = sources(lang);
            assert_eq!(v.words.len(), target, "{lang:?}");
            let set: BTreeSet<&str> = v.words.iter().map(|s| s.as_str()).collect();
            assert_eq!(set.len(), v.words.len(), "{lang:?}");
            assert!(v.words.iter().all(|w| !is_reserved(w)), "{lang:?}");
            assert!(v.stop_words.len() >= 15, "{lang:?}");
        }
        assert!(vocabulary(Lang::Ja).words.iter().any(|w| w == "地震"));
    }

    #[test]
    fn capitalises_ascii_only() {
        let mut s = String::from("x hello");
        capitalise_from(&mut s, 2);
        assert_eq!(s, "x Hello");
        let mut t = String::from("élan");
        capitalise_from(&mut t, 0);
        assert_eq!(t, "élan");
    }
}
