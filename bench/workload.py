"""The benchmark workload: seeded watches and a seeded Jetstream-shaped event stream.

* Watches are a mix of what analysts write: single words, AND pairs, phrases,
  prefixes, inner wildcards, OR groups with NOT (some on very common words),
  NEAR/ONEAR, regexes, case-sensitive words, CJK words, language filters and
  hashtag/domain filters.  Their words come from a large synthetic vocabulary, so
  everyday text does not hit them by chance.
* Events are Jetstream v1 JSON: about 80 % are not posts (likes, reposts, follows,
  deletes, profile, identity and account events).  Posts are in several languages
  (English, Portuguese, Spanish, German, Japanese, Chinese, Thai) with emoji, links,
  hashtags and mentions.  A share ``match_rate`` of the posts gets a snippet planted
  that satisfies one random watch (its recipe knows how); the share of posts that
  really match is measured, not assumed.

Everything depends only on the seed, so runs are comparable.
"""

from __future__ import annotations

import json
import random
import string
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from watchfloor.model import Severity, Watch, WatchStatus

SEED = 20261125
BASE_US = 1_767_225_600_000_000  # 2026-01-01
NOW = datetime(2026, 1, 1, tzinfo=UTC)

_EN = (
    "the of and to in is it you that he was for on are with as his they be at one have this from or had by "
    "not word but what some we can out other were all there when up use your how said an each she which do "
    "their time if will way about many then them write would like so these her long make thing see him two "
    "has look more day could go come did number sound no most people my over know water than call first who "
    "may down side been now find any new work part take get place made live where after back little only "
    "round man year came show every good me give our under name very through just form sentence great think "
    "say help low line differ turn cause much mean before move right boy old too same tell does set three "
    "want air well also play small end put home read hand port large spell add even land here must big high "
    "such follow act why ask men change went light kind off need house picture try us again animal point "
    "mother world near build self earth father head stand own page should country found answer school grow "
    "study still learn plant cover food sun four between state keep eye never last let thought city tree "
    "cross farm hard start might story saw far sea draw left late run while press close night real life few "
    "north open seem together next white children begin got walk example ease paper group always music "
    "lol omg coffee weekend game vote team love today tomorrow weather rain traffic drill exercise test"
)
EN = _EN.split()
_PT = "o a de que e do da em um para é com não uma os no se na por mais as dos como mas foi ao ele das tem à seu sua ou ser quando muito há nos já está eu também só pelo pela até isso ela entre era depois sem mesmo aos ter seus quem nas me esse eles estão você tinha foram essa num nem suas meu às minha têm numa pelos elas havia seja qual será nós tenho lhe deles essas esses pelas este fosse dele tu te vocês vos lhes meus minhas teu tua teus tuas nosso nossa nossos nossas dela delas esta estes estas aquele aquela aqueles aquelas isto aquilo estou está estamos estão estive esteve estivemos estiveram estava estávamos estavam chuva praia futebol ônibus trânsito ação coração manhã"  # noqa: E501
PT = _PT.split()
_ES = "el la de que y a en un ser se no haber por con su para como estar tener le lo todo pero más hacer o poder decir este ir otro ese si me ya ver porque dar cuando él muy sin vez mucho saber qué sobre mi alguno mismo yo también hasta año dos querer entre así primero desde grande eso ni nos llegar pasar tiempo ella sí día uno bien poco deber entonces poner cosa tanto hombre parecer nuestro tan donde ahora parte después vida quedar siempre creer hablar llevar dejar nada cada seguir menos nuevo encontrar niño mañana corazón canción"  # noqa: E501
ES = _ES.split()
_DE = "der die und in den von zu das mit sich des auf für ist im dem nicht ein eine als auch es an werden aus er hat dass sie nach wird bei einer um am sind noch wie einem über einen so zum war haben nur oder aber vor zur bis mehr durch man sein wurde sei in prozent hatte kann gegen vom können schon wenn habe seine mark ihre dann unter wir soll ich eines es jahr zwei jahren diese dieser wieder keine seiner worden und will zwischen immer millionen was sagte gibt alle diesem seit muss wurden beim doch jedoch größte straße grüße schön"  # noqa: E501
DE = _DE.split()
JA = list(
    "今日は天気がいいですね。東京で雨が降っています。新しいゲームを買いました。電車が遅れていますお疲れ様でした明日は会議があります猫がかわいい週末は映画を見ました"
)
ZH = list("今天天气很好我们去公园吧这个电影非常好看北京上海中国新闻朋友工作学习时间问题")
TH = ["วันนี้", "อากาศ", "ดี", "มาก", "ไป", "กิน", "ข้าว", "กัน", "ไหม", "ขอบคุณ", "ครับ", "ค่ะ"]
EMOJI = ["🔥", "😂", "❤️", "👍", "🙏", "😭", "✨", "🎉", "😊", "🥺", "👀", "💀", "🇧🇷", "👨‍👩‍👧"]
DOMAINS = ["example.org", "news.example.com", "blog.example.net", "video.example", "shop.example.co.uk"]
LANGS = (("en", 0.5), ("pt", 0.15), ("ja", 0.12), ("es", 0.08), ("de", 0.05), ("zh", 0.05), ("th", 0.05))
KANJI = list("災害警報避難洪水台風噴火停電救助遭難崩落爆発火災豪雨竜巻津波雪崩落雷猛暑寒波渋滞封鎖閉鎖")
_B32 = "abcdefghijklmnopqrstuvwxyz234567"


def synthetic_vocabulary(count: int, seed: int) -> list[str]:
    """``count`` distinct made-up words (5-10 letters) that no background text contains."""
    rng = random.Random(seed)
    onsets = ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "kr", "st", "tr", "vl"]
    vowels = ["a", "e", "i", "o", "u", "ae", "io", "ou"]
    words: set[str] = set()
    while len(words) < count:
        word = "".join(rng.choice(onsets) + rng.choice(vowels) for _ in range(rng.randint(2, 3)))
        word += rng.choice(["x", "k", "n", "r", "sh", "q"])
        words.add(word)
    return sorted(words)


# --------------------------------------------------------------------------- watches


@dataclass(frozen=True, slots=True)
class Recipe:
    """A watch query and how to write a post that matches it."""

    query: str
    snippet: str
    lang: str | None = None  # the post must be in this language
    hashtag: str | None = None
    link: str | None = None


def _recipe(rng: random.Random, vocab: list[str]) -> Recipe:
    def w() -> str:
        return rng.choice(vocab)

    kind = rng.choices(
        [
            "term",
            "and",
            "phrase",
            "prefix",
            "or_not",
            "not_common",
            "near",
            "onear",
            "infix",
            "regex",
            "lang",
            "case",
            "hashtag",
            "domain",
            "cjk",
        ],
        weights=[28, 14, 14, 5, 8, 4, 8, 3, 3, 3, 3, 1, 2, 1, 3],
    )[0]
    a, b, c = w(), w(), w()
    if kind == "term":
        return Recipe(a, a)
    if kind == "and":
        return Recipe(f"{a} {b}", f"{b} and {a}")
    if kind == "phrase":
        return Recipe(f'"{a} {b}"', f"{a}, {b}!")
    if kind == "prefix":
        return Recipe(f"{a[:5]}*", a[:5] + "ing")
    if kind == "or_not":
        return Recipe(f"({a} OR {b}) NOT {c}", b)
    if kind == "not_common":
        return Recipe(f"{a} NOT (drill OR exercise OR test)", a)
    if kind == "near":
        return Recipe(f"{a} NEAR/3 {b}", f"{b} the {a}")
    if kind == "onear":
        return Recipe(f'{a} ONEAR/2 ("{b} {c}" OR {c})', f"{a} today {c}")
    if kind == "infix":
        return Recipe(f"{a[:3]}*{a[-3:]}", a)
    if kind == "regex":
        return Recipe(f"/{a}(s|ing)?/", a + "ing")
    if kind == "lang":
        return Recipe(f"{a} lang:en", a, lang="en")
    if kind == "case":
        return Recipe("{" + a.upper() + "}", a.upper())
    if kind == "hashtag":
        return Recipe(f"hashtag:{a}", "", hashtag=a)
    if kind == "domain":
        return Recipe(f"{a} domain:example.org", a, link=f"https://www.example.org/{a}")
    word = "".join(rng.sample(KANJI, 3))
    return Recipe(word, f"{word}発生")


def make_watches(count: int, seed: int = SEED) -> tuple[list[Watch], list[Recipe]]:
    """``count`` watches (ids 1..count) and the recipe of each."""
    rng = random.Random(seed)
    vocab = synthetic_vocabulary(max(2000, count // 2), seed)
    watches, recipes = [], []
    for i in range(1, count + 1):
        recipe = _recipe(rng, vocab)
        recipes.append(recipe)
        watches.append(
            Watch(
                name=f"bench watch {i}",
                query=recipe.query,
                purpose="benchmark",
                legal_basis="benchmark",
                owner="bench",
                severity=Severity.medium,
                created_at=NOW,
                status=WatchStatus.approved,
                id=i,
            )
        )
    return watches, recipes


# --------------------------------------------------------------------------- events


def _did(rng: random.Random) -> str:
    return "did:plc:" + "".join(rng.choice(_B32) for _ in range(24))


def _tid(rng: random.Random) -> str:
    return "3l" + "".join(rng.choice("234567abcdefghijklmnopqrstuvwxyz") for _ in range(11))


def _cid(rng: random.Random) -> str:
    return "bafyrei" + "".join(rng.choice(_B32) for _ in range(52))


def _iso(time_us: int) -> str:
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=time_us)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _background_text(rng: random.Random, lang: str) -> str:
    if lang == "ja":
        start = rng.randrange(len(JA) - 20)
        return "".join(JA[start : start + rng.randint(8, 20)])
    if lang == "zh":
        return "".join(rng.choice(ZH) for _ in range(rng.randint(6, 18)))
    if lang == "th":
        return "".join(rng.choice(TH) for _ in range(rng.randint(3, 8)))
    words = {"en": EN, "pt": PT, "es": ES, "de": DE}[lang]
    text = " ".join(rng.choice(words) for _ in range(rng.randint(4, 30)))
    if rng.random() < 0.3:
        text = text[0].upper() + text[1:] + rng.choice([".", "!", "?", "..."])
    return text


class _Text:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.facets: list[dict[str, object]] = []
        self.size = 0

    def add(self, text: str, feature: dict[str, object] | None = None) -> None:
        n = len(text.encode())
        if feature is not None:
            self.facets.append({"index": {"byteStart": self.size, "byteEnd": self.size + n}, "features": [feature]})
        self.parts.append(text)
        self.size += n


def _post_record(rng: random.Random, recipe: Recipe | None, time_us: int, mentionable: list[str]) -> dict[str, object]:
    langs, weights = zip(*LANGS, strict=True)
    lang = recipe.lang if recipe is not None and recipe.lang else rng.choices(langs, weights)[0]
    text = _Text()
    if rng.random() < 0.1:
        did = rng.choice(mentionable)
        text.add("@someone.bsky.social ", {"$type": "app.bsky.richtext.facet#mention", "did": did})
    text.add(_background_text(rng, lang))
    if recipe is not None and recipe.snippet:
        text.add(" " + recipe.snippet + " ")
        if rng.random() < 0.5:
            text.add(_background_text(rng, lang))
    if rng.random() < 0.3:
        text.add(" " + "".join(rng.choice(EMOJI) for _ in range(rng.randint(1, 3))))
    links = []
    if recipe is not None and recipe.link:
        links.append(recipe.link)
    if rng.random() < 0.2:
        links.append(f"https://{rng.choice(DOMAINS)}/{rng.choice(['news', 'p', 'watch'])}/{rng.randrange(10**6)}")
    for link in links:
        text.add(" ")
        text.add(link, {"$type": "app.bsky.richtext.facet#link", "uri": link})
    tags = [recipe.hashtag] if recipe is not None and recipe.hashtag else []
    if rng.random() < 0.15:
        tags.append(rng.choice(["news", "brasil", "ゲーム", "photography", "bluesky"]))
    for tag in tags:
        text.add(" ")
        text.add("#" + tag, {"$type": "app.bsky.richtext.facet#tag", "tag": tag})
    record: dict[str, object] = {
        "$type": "app.bsky.feed.post",
        "createdAt": _iso(time_us - rng.randrange(50_000, 2_000_000)),
        "langs": [lang],
        "text": "".join(text.parts),
    }
    if text.facets:
        record["facets"] = text.facets
    if rng.random() < 0.1:
        record["embed"] = {
            "$type": "app.bsky.embed.images",
            "images": [{"alt": "", "image": {"$type": "blob", "ref": {"$link": _cid(rng)}, "mimeType": "image/jpeg"}}],
        }
    return record


_KINDS = (
    ("post", 0.20),
    ("like", 0.50),
    ("repost", 0.10),
    ("follow", 0.10),
    ("delete", 0.04),
    ("profile", 0.02),
    ("identity", 0.02),
    ("account", 0.02),
)


def make_events(
    count: int,
    recipes: list[Recipe],
    match_rate: float,
    seed: int = SEED,
    extra_words: tuple[str, ...] = (),
    extra_share: float = 0.0,
) -> list[bytes]:
    """``count`` Jetstream events as compact JSON; posts get a planted hit with ``match_rate``,
    and one of ``extra_words`` with ``extra_share`` (for watches added while running)."""
    rng = random.Random(f"{seed}:{match_rate}")
    dids = [_did(rng) for _ in range(2000)]
    kinds, weights = zip(*_KINDS, strict=True)
    encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
    out = []
    for i in range(count):
        time_us = BASE_US + i * 20
        did = rng.choice(dids)
        kind = rng.choices(kinds, weights)[0]
        if kind in ("identity", "account"):
            body = {"did": did, "seq": i, "time": _iso(time_us)}
            if kind == "identity":
                body["handle"] = "".join(rng.choice(string.ascii_lowercase) for _ in range(8)) + ".bsky.social"
            else:
                body["active"] = True
            event: dict[str, object] = {"did": did, "time_us": time_us, "kind": kind, kind: body}
        else:
            commit: dict[str, object] = {"rev": _tid(rng), "operation": "create", "rkey": _tid(rng)}
            if kind == "post":
                recipe = rng.choice(recipes) if recipes and rng.random() < match_rate else None
                if extra_words and rng.random() < extra_share:
                    recipe = Recipe("", rng.choice(extra_words))
                commit.update(collection="app.bsky.feed.post", record=_post_record(rng, recipe, time_us, dids))
                commit["cid"] = _cid(rng)
            elif kind == "delete":
                commit.update(operation="delete", collection=rng.choice(["app.bsky.feed.post", "app.bsky.feed.like"]))
            elif kind == "profile":
                commit.update(operation="update", collection="app.bsky.actor.profile", rkey="self", cid=_cid(rng))
                commit["record"] = {"$type": "app.bsky.actor.profile", "displayName": "Someone", "description": "hi"}
            else:
                collection = {"like": "app.bsky.feed.like", "repost": "app.bsky.feed.repost"}.get(
                    kind, "app.bsky.graph.follow"
                )
                subject: object = (
                    rng.choice(dids)
                    if kind == "follow"
                    else {"cid": _cid(rng), "uri": f"at://{rng.choice(dids)}/app.bsky.feed.post/{_tid(rng)}"}
                )
                commit.update(collection=collection, cid=_cid(rng))
                commit["record"] = {"$type": collection, "createdAt": _iso(time_us), "subject": subject}
            event = {"did": did, "time_us": time_us, "kind": "commit", "commit": commit}
        out.append(encoder.encode(event).encode())
    return out
