"""The words of the demo: synthetic everyday posts in six languages, and posts that hit
the demo watches.

Everything here was written for watchfloor; nothing is copied from real posts. Place
names are made up, links point at reserved ``.example`` domains.

Two rules keep the demo honest, and tests check both against the real query engine:

- every *hit* template matches the watch of its group;
- no *noise* template matches any demo watch. Some noise is deliberately close
  ("evacuation drill", "a flood of emails", "bridge night") so that the NOT and AND
  parts of the watches have something to do.

Templates use ``{slot}`` placeholders filled from :data:`SLOTS` of the same language.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = [
    "ALT_TEXTS",
    "DEMO_WATCHES",
    "EDIT_NOTES",
    "HANDLE_ADJECTIVES",
    "HANDLE_NOUNS",
    "HASHTAGS",
    "HITS",
    "LANGUAGES",
    "LINK_CARDS",
    "NOISE",
    "PROFILE_BIOS",
    "SLOTS",
    "HitGroup",
]


class HitGroup(NamedTuple):
    """Posts in one language that must hit one demo watch, and hashtags that fit them."""

    watch: str  # a DEMO_WATCHES name
    lang: str
    hashtags: tuple[str, ...]
    texts: tuple[str, ...]


FLOOD = "Flooding and evacuations"
WILDFIRE = "Wildfire smoke"
POWER = "Power outage"
CLOSURE = "Bridge and road closures"
EVACUATION = "Evacuation orders (not drills)"
FLOOD_INTL = "Hochwasser / inondation / inundación / enchente"

# (name, query, severity) in the watch language.
DEMO_WATCHES: list[tuple[str, str, str]] = [
    (FLOOD, '(flood OR flooding OR "flash flood") AND (evacuat* OR "rising water" OR rescue*)', "urgent"),
    (WILDFIRE, '(wildfire OR "forest fire" OR bushfire) AND (smoke OR haze OR "air quality")', "high"),
    (POWER, '"power outage" OR "power cut" OR blackout', "medium"),
    (CLOSURE, '(bridge OR highway OR motorway OR "main road") AND (closed OR closure OR collapse*)', "medium"),
    (EVACUATION, '(evacuat* OR "shelter in place") AND NOT (drill OR exercise)', "high"),
    (
        FLOOD_INTL,
        "(lang:de AND (Hochwasser OR Überschwemmung*)) OR (lang:fr AND (inondation* OR crue))"
        " OR (lang:es AND (inundación OR inundaciones)) OR (lang:pt AND (enchente* OR inundação))",
        "high",
    ),
]

# Share of posts per language (posts without a language are drawn separately).
LANGUAGES: dict[str, float] = {"en": 0.46, "de": 0.12, "fr": 0.1, "es": 0.12, "pt": 0.1, "ja": 0.1}

SLOTS: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "place": ("Riverton", "Millbrook", "Ashford Vale", "Lakeside", "Port Ellis", "Greenvale", "Oakridge"),
        "street": ("Mill Street", "Elm Avenue", "Harbour Lane", "Station Square", "Fern Close", "Quarry Hill"),
        "food": ("ramen", "lasagna", "banana bread", "shakshuka", "pho", "tacos", "apple pie", "dal"),
        "show": ("the new detective series", "that baking show", "season two of the space drama", "the documentary"),
        "thing": ("laptop", "phone", "router", "old game console", "bike", "record player"),
        "animal": ("cat", "dog", "parrot", "tortoise", "neighbour's goat"),
        "venue": ("the Old Mill", "Harbour Hall", "the Blue Note", "the community centre"),
        "bridge": ("Old Town", "Harbour", "King's Ferry", "North Quay", "Millbrook"),
        "time": ("6am", "noon", "7pm", "about an hour", "last night"),
        "n": ("3", "5", "7", "12", "15", "20", "40"),
    },
    "de": {
        "place": ("Neustadt", "Bergheim", "Lindenfeld", "Seeburg", "Altenau", "Rosental"),
        "food": ("Käsespätzle", "Apfelkuchen", "Linsensuppe", "Flammkuchen", "Rouladen"),
        "show": ("die neue Krimiserie", "die Backshow", "die zweite Staffel"),
        "n": ("5", "10", "15", "20", "25"),
    },
    "fr": {
        "place": ("Villeneuve", "Beaumont", "Saint-Aubin", "Montclair", "Rochefort-sur-Lys"),
        "food": ("ratatouille", "tarte tatin", "quiche", "crêpes", "soupe à l'oignon"),
        "show": ("la nouvelle série policière", "l'émission de pâtisserie", "la deuxième saison"),
        "n": ("5", "10", "15", "20", "25"),
    },
    "es": {
        "place": ("Villanueva", "San Martín", "Valdemora", "Puerto Claro", "Alcaraz del Río"),
        "food": ("tortilla de patatas", "paella", "gazpacho", "croquetas", "churros"),
        "show": ("la nueva serie policíaca", "el concurso de repostería", "la segunda temporada"),
        "team": ("el Atlético Valdemora", "el Puerto Claro CF", "nuestro equipo"),
        "n": ("5", "10", "15", "20", "25"),
    },
    "pt": {
        "place": ("Vila Nova", "São Mateus", "Campo Belo", "Porto Real", "Serra Alta"),
        "food": ("feijoada", "pão de queijo", "moqueca", "brigadeiro", "bolo de fubá"),
        "show": ("a nova série policial", "o programa de confeitaria", "a segunda temporada"),
        "team": ("Vila Nova FC", "Campo Belo EC", "nosso time"),
        "n": ("5", "10", "15", "20", "25"),
    },
    "ja": {
        "food": ("ラーメン", "カレー", "お好み焼き", "たこ焼き", "親子丼", "抹茶パフェ"),
        "n": ("3", "5", "10", "15", "20"),
    },
}

NOISE: dict[str, tuple[str, ...]] = {
    "en": (
        "Finally tried the {food} place on {street}. Worth the wait.",
        "Anyone else's {thing} decide to update itself at {time}? Asking for a friend.",
        "Sunday plan: coffee, a thick novel and zero notifications.",
        "The {animal} has learned to open the garden gate. Send help.",
        "Morning run along the river, {n} km, legs are jelly.",
        "Hot take: {food} tastes better the next day.",
        "Our tomato plants finally have flowers 🌱",
        "Does anyone have a good recipe for {food}? Want to make it this weekend.",
        "Train was {n} minutes late again. Classic Monday.",
        "Just finished {show}. No spoilers, but that ending!",
        "Reminder to drink some water and stretch your back.",
        "Farmers market in {place} had the best strawberries today 🍓",
        "Kid asked why the sky is blue and I panicked and said 'physics'.",
        "Concert tonight at {venue}! Who's going?",
        "Cleaning out the garage and found my {thing} from 2009. Still works.",
        "Big thanks to everyone who came to the book swap at {venue} ❤️",
        "Rainy afternoon, soup on the stove, {show} on the telly. Perfect.",
        "The library in {place} is closed on Mondays now, which is a shame.",
        "Learning to knit. It's going about as well as you'd expect 🧶",
        "Bridge night with the neighbours, we lost every single round 😅",
        "My inbox is a flood of meeting invites today.",
        "Our school ran an evacuation drill this morning, everyone out in {n} minutes.",
        "Fire drill at the office again, evacuated to the car park with coffee in hand.",
        "The smoked salmon at {venue} is unreal.",
        "Coach says practice is at {time} on Saturday, bring water.",
    ),
    "de": (
        "Endlich Wochenende! Erstmal Kaffee und ein gutes Buch ☕",
        "Der Zug nach {place} hat wieder {n} Minuten Verspätung. Typisch.",
        "Heute auf dem Wochenmarkt die ersten Erdbeeren gekauft 🍓",
        "Hat jemand ein gutes Rezept für {food}? Will es am Sonntag ausprobieren.",
        "Unser Hund hat heute gelernt, die Tür aufzumachen. Wir sind verloren.",
        "Kleiner Spaziergang am See, das Wetter ist herrlich.",
        "Die neue Folge von {show} war richtig gut, keine Spoiler!",
        "Fahrrad repariert, Kette geölt, jetzt kann der Sommer kommen 🚲",
        "Wer ist heute Abend auch beim Konzert in {place}?",
        "Homeoffice mit Katze auf dem Schreibtisch. Produktivität: null.",
        "Probealarm in der Schule heute, alle waren in {n} Minuten draußen.",
    ),
    "fr": (
        "Enfin le week-end ! Café, croissant et un bon livre ☕",
        "Le train pour {place} a encore {n} minutes de retard…",
        "Premier marché de la saison, les fraises sont incroyables 🍓",
        "Quelqu'un a une bonne recette de {food} ? Je veux tester ce dimanche.",
        "Mon chat dort sur mon clavier, impossible de travailler.",
        "Balade au bord du lac, il fait un temps magnifique.",
        "Je viens de finir {show}, quelle fin !",
        "Concert ce soir à {place}, qui vient ?",
        "Vélo réparé, prêt pour l'été 🚲",
        "Télétravail aujourd'hui, la machine à café est ma meilleure collègue.",
    ),
    "es": (
        "¡Por fin fin de semana! Café y un buen libro ☕",
        "El tren a {place} lleva {n} minutos de retraso otra vez.",
        "¿Alguien tiene una buena receta de {food}? Quiero probarla el domingo.",
        "Mi perro aprendió a abrir la puerta. Estamos perdidos.",
        "Paseo por el parque, hace un día precioso.",
        "Acabo de terminar {show}, ¡qué final!",
        "Esta noche hay concierto en {place}, ¿quién viene?",
        "Hoy en el mercado compré las primeras fresas 🍓",
        "Teletrabajo con el gato encima del teclado. Productividad: cero.",
        "Partidazo de {team} anoche, ¡vamos!",
    ),
    "pt": (
        "Finalmente fim de semana! Café e um bom livro ☕",
        "O ônibus para {place} atrasou {n} minutos de novo.",
        "Alguém tem uma boa receita de {food}? Quero fazer no domingo.",
        "Meu gato dormiu em cima do teclado, impossível trabalhar.",
        "Passeio na praia hoje, o dia está lindo.",
        "Acabei de ver {show}, que final!",
        "Show hoje à noite em {place}, quem vai?",
        "Feira de domingo com as melhores frutas 🍍",
        "Home office com chuva lá fora, perfeito para um chá.",
        "Que jogo do {team} ontem!",
    ),
    "ja": (
        "今日は{food}を食べに行ってきた！めちゃくちゃ美味しかった😋",
        "電車が{n}分遅れてて朝から疲れた…",
        "週末は家でゆっくり映画を見る予定。",
        "猫がキーボードの上で寝てる。仕事ができない。",
        "新しいカフェ見つけた☕ 雰囲気最高",
        "雨の日は読書に限る📚",
        "ライブのチケット取れた！！嬉しすぎる",
        "朝ランニング{n}キロ完走🏃",
        "お弁当作りにハマってる。今日は卵焼きが上手にできた",
        "明日から出張。準備が全然終わってない",
    ),
}

HITS: tuple[HitGroup, ...] = (
    HitGroup(
        FLOOD,
        "en",
        ("flood", "FloodWarning"),
        (
            "Flash flood warning for {place}: water rising fast on {street}, people evacuating to the school gym.",
            "The river is in flood at {place}. Fire crews going door to door, evacuations underway.",
            "Flooding on {street} is getting worse, rescue boats just went past our window.",
            "{place} council says the flooding has cut off the lower town; evacuation centre open at {venue}.",
        ),
    ),
    HitGroup(
        WILDFIRE,
        "en",
        ("wildfire", "AirQuality"),
        (
            "Wildfire smoke is thick over {place} this morning. Keep windows shut if you can.",
            "You can smell the wildfire from here, the sky over {place} is orange with smoke.",
            "Forest fire north of {place}, haze rolling in and ash on the cars.",
            "Air quality in {place} is terrible today because of the bushfire up the valley.",
        ),
    ),
    HitGroup(
        POWER,
        "en",
        ("PowerOutage", "blackout"),
        (
            "Power outage across half of {place}, traffic lights are out on {street}.",
            "Blackout in our neighbourhood since {time}, anyone know what's going on?",
            "Third power cut this week in {place}. The freezer is not happy.",
        ),
    ),
    HitGroup(
        CLOSURE,
        "en",
        ("traffic", "RoadClosure"),
        (
            "The {bridge} bridge is closed in both directions after a lorry hit the railing.",
            "Highway {n} closed near {place} because of a landslide, detour signed.",
            "Main road into {place} closed for emergency repairs until further notice.",
            "Part of the {bridge} bridge collapsed overnight, nobody hurt as far as we know.",
        ),
    ),
    HitGroup(
        EVACUATION,
        "en",
        ("evacuation", "safety"),
        (
            "Evacuation order for the streets around {street} after a gas leak. Please share.",
            "Police are asking everyone near the chemical plant in {place} to shelter in place.",
            "They're evacuating the station in {place}, suspicious package apparently.",
        ),
    ),
    HitGroup(
        FLOOD_INTL,
        "de",
        ("Hochwasser",),
        (
            "Hochwasser in {place}: Der Pegel steigt weiter, die Feuerwehr sperrt die Uferstraße.",
            "Überschwemmungen im ganzen Landkreis, bei uns läuft der Keller voll. Bleibt sicher!",
        ),
    ),
    HitGroup(
        FLOOD_INTL,
        "fr",
        ("inondation",),
        (
            "Inondation à {place} : la crue de la rivière coupe plusieurs routes ce matin.",
            "Les inondations continuent dans le quartier, les pompiers aident les habitants.",
        ),
    ),
    HitGroup(
        FLOOD_INTL,
        "es",
        ("inundación",),
        (
            "Inundaciones en {place}: el río se desbordó y hay calles cortadas.",
            "Alerta por inundación en la zona baja de {place}, protección civil pide precaución.",
        ),
    ),
    HitGroup(
        FLOOD_INTL,
        "pt",
        ("enchente",),
        (
            "Enchente em {place}: a água subiu muito rápido na nossa rua.",
            "Inundação no centro de {place}, várias estações de metrô fechadas.",
        ),
    ),
)

HASHTAGS: dict[str, tuple[str, ...]] = {
    "en": ("weekend", "coffee", "running", "gardening", "booklover", "foodie", "caturday", "music"),
    "de": ("Wochenende", "Kaffee", "Fahrrad", "Garten", "Lesen"),
    "fr": ("weekend", "café", "vélo", "cuisine", "lecture"),
    "es": ("findesemana", "café", "fútbol", "cocina", "lectura"),
    "pt": ("fimdesemana", "café", "futebol", "receita", "praia"),
    "ja": ("ラーメン", "読書", "猫", "カフェ"),
}

EDIT_NOTES: dict[str, tuple[str, ...]] = {
    "en": (" (edit: typo)", " (edit: added the time)", " [edited]"),
    "de": (" (edit: Tippfehler)", " [bearbeitet]"),
    "fr": (" (edit : faute de frappe)", " [modifié]"),
    "es": (" (edit: errata)", " [editado]"),
    "pt": (" (edit: erro de digitação)", " [editado]"),
    "ja": ("（追記あり）", "（修正）"),
}

ALT_TEXTS: tuple[str, ...] = (
    "A bowl of soup on a wooden table",
    "Sunset over a lake with a small boat",
    "A cat asleep on a laptop keyboard",
    "Street with water up to the kerb",
    "Grey sky and a line of parked cars",
    "Hand-drawn map of a garden",
    "",
)

# (domain, title, description) of link cards; paths are made up per post.
LINK_CARDS: tuple[tuple[str, str, str], ...] = (
    ("riverton-herald.example", "Riverton Herald", "Local news, weather and traffic"),
    ("blog.example.org", "Notes from the allotment", "A small blog about vegetables"),
    ("recipes.example.com", "Weeknight recipes", "Quick food for busy evenings"),
    ("wetterdienst.example", "Wetterdienst", "Regionale Wettermeldungen"),
    ("infos-locales.example", "Infos locales", "Actualités de la région"),
    ("noticias.example.net", "Noticias del valle", "Noticias locales"),
    ("video.example.com", "Video", "A short video"),
)

# Synthetic accounts: handles are made of these words, bios are picked from these lines.
HANDLE_ADJECTIVES: tuple[str, ...] = (
    "quiet", "brave", "sleepy", "sunny", "lucky", "tiny", "rusty", "velvet", "amber", "misty",
    "clever", "gentle", "wild", "silver", "happy", "dusty",
)  # fmt: skip
HANDLE_NOUNS: tuple[str, ...] = (
    "otter", "falcon", "teapot", "maple", "harbour", "pebble", "lantern", "comet", "fern", "badger",
    "kettle", "heron", "meadow", "bicycle", "walrus", "pixel",
)  # fmt: skip
PROFILE_BIOS: tuple[str, ...] = (
    "Gardener, reader, occasional runner.",
    "Bakes bread, posts about it.",
    "Local news junkie. Opinions my own.",
    "Cats, coffee and too many tabs open.",
    "Musik, Fahrrad, Kaffee.",
    "Photographie et randonnée.",
    "Fútbol y cocina casera.",
    "Café, praia e boas histórias.",
    "読書とカフェ巡りが好き",
)
