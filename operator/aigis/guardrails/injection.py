"""Prompt-injection and jailbreak detection from explainable linguistic signals.

A prompt injection is text that tries to take over the model: it overrides the instructions the
model was given ("ignore the above"), asks for them ("print your system prompt"), switches the
model into a persona without rules ("you are now DAN"), fakes the structure of the conversation
(`### system:`, `<|im_start|>`, "end of instructions"), or smuggles any of that in encoded,
spaced-out or invisible text. Each of those moves is a *signal*: a family of phrasings, written
once per language as a small grammar (verb near object within a few words), not a list of known
attack strings, so rephrasings and new attacks of a known kind are caught too.

Every signal has a weight: how likely the text is an injection on that evidence alone. Signals
combine as independent evidence (noisy-or): score = 1 - prod(1 - weight). Strong signals (an
override of instructions) reach the default threshold 0.5 alone; weak ones (a role-play request,
an interrupting "STOP!") need company. The signal names come back with the score, so a verdict
can be explained and audited without logging the text.

All signals are compiled into one RE2 set and matched in a single linear pass over a normalised
copy of the text (accents folded, look-alike quotes and dashes unified, invisible characters
removed). Obfuscated variants (letter-spaced, leetspeak, base64/hex payloads) are decoded and
matched again only when the text shows them.

An optional heavier classifier (e.g. a fine-tuned transformer the operator ships in its image)
can be plugged in through `InjectionClassifier`; nothing here loads or downloads a model.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import re2

from aigis.guardrails.patterns import compile_re2, compile_set

if TYPE_CHECKING:
    from aigis.guardrails.learned import LinearInjectionModel

# --- normalisation ------------------------------------------------------------------------

_INVISIBLE = (
    0x00AD, 0x034F, 0x061C, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x180E, 0xFEFF,
    *range(0x200B, 0x2010), *range(0x202A, 0x202F), *range(0x2060, 0x2070),
    *range(0xFE00, 0xFE10),
)  # fmt: skip
_QUOTES = {
    "\u201c": '"',
    "\u201d": '"',
    "\u201e": '"',
    "\u201f": '"',
    "\u00ab": '"',
    "\u00bb": '"',
    "\u2033": '"',
    "\u2018": "'",
    "\u2019": "'",
    "\u201a": "'",
    "\u201b": "'",
    "\u2032": "'",
    "\u0060": "'",
    "\u00b4": "'",
}
_SPECIAL_LETTERS = {
    "ß": "ss",
    "ẞ": "SS",
    "æ": "ae",
    "Æ": "AE",
    "œ": "oe",
    "Œ": "OE",
    "ø": "o",
    "Ø": "O",
    "ł": "l",
    "Ł": "L",
    "đ": "d",
    "Đ": "D",
    "þ": "th",
    "\u0131": "i",  # dotless i
}


def _build_fold_table() -> dict[int, str | None]:
    """Translation table: accented Latin to base letters, fullwidth to ASCII, quotes and dashes
    unified, invisible characters removed, Unicode tag characters to the ASCII they hide."""
    table: dict[int, str | None] = {}
    for code in list(range(0x00C0, 0x0250)) + list(range(0x1E00, 0x1F00)):
        char = chr(code)
        base = "".join(
            c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c)
        )
        if base and base != char and base.isascii():
            table[code] = base
    for char, replacement in _SPECIAL_LETTERS.items():
        table[ord(char)] = replacement
    for code in range(0xFF01, 0xFF5F):
        table[code] = chr(code - 0xFEE0)
    for char, replacement in _QUOTES.items():
        table[ord(char)] = replacement
    for code in (0x2010, 0x2011, 0x2012, 0x2013, 0x2014, 0x2015, 0x2212):
        table[code] = "-"
    for code in (
        0x00A0,
        0x2000,
        0x2001,
        0x2002,
        0x2003,
        0x2004,
        0x2005,
        0x2006,
        0x2007,
        0x2008,
        0x2009,
        0x200A,
        0x202F,
        0x205F,
        0x3000,
    ):
        table[code] = " "
    for code in _INVISIBLE:
        table[code] = None
    for code in range(0xE0020, 0xE007F):
        table[code] = chr(code - 0xE0000)
    table[0xE0001] = None
    table[0xE007F] = None
    return table


_FOLD = _build_fold_table()


def normalize(text: str) -> str:
    """The text the signals are matched on: same letters, fewer ways to write them."""
    return text if text.isascii() else text.translate(_FOLD)


# --- a small grammar for signal patterns ----------------------------------------------------

# The text is lower-cased and accent-folded before matching, so ASCII classes plus "any
# non-ASCII character" stand in for Unicode letter classes, which would make the compiled set
# many times larger (and slower to build) for no gain.
_LETTER = r"[0-9a-z_\x{80}-\x{10FFFF}]"
_NON_LETTER = r"[^0-9a-z_\x{80}-\x{10FFFF}]"
_WORD = r"[0-9a-z_'\x{80}-\x{10FFFF}]+"
# Between two words of a phrase: spaces with at most one punctuation mark, as in prose. Code
# and word lists (`'ignore', 'command'`, `x = y`) do not separate words like that, so their
# tokens do not combine into phrases.
_SEP = r"(?:[ \t]*[,;:.!?\"'()\-]?[ \t\n]+[(\"']?|[\-/])"
_LEFT = rf"(?:^|{_NON_LETTER})"
_RIGHT = rf"(?:{_NON_LETTER}|$)"


def gap(words: int) -> str:
    """Up to `words` arbitrary words between two parts of a phrase."""
    return rf"(?:{_SEP}{_WORD}){{0,{words}}}{_SEP}"


def _entry(entry: str) -> str:
    """One lexicon entry: words separated by spaces; `*` ends a stem (any word ending), and a
    lone `*` stands for any one word."""
    folded = normalize(entry.lower())
    parts = []
    for word in folded.split(" "):
        if word == "*":
            parts.append(_WORD)
        elif word.endswith("*"):
            parts.append(re2.escape(word[:-1]) + r"[0-9a-z\x{80}-\x{10FFFF}]*")
        else:
            parts.append(re2.escape(word))
    return _SEP.join(parts)


def lex(*entries: str) -> str:
    """An alternation of lexicon entries (see `_entry`)."""
    return "(?:" + "|".join(_entry(e) for e in entries) + ")"


def near(first: str, second: str, words: int) -> str:
    """`first`, then `second` at most `words` words later."""
    return f"(?:{first}{gap(words)}{second})"


def either_order(first: str, second: str, words: int) -> str:
    """`first` and `second` within `words` words of each other, in either order."""
    return f"(?:{near(first, second, words)}|{near(second, first, words)})"


def phrase(body: str) -> str:
    """`body` as whole words (of the lower-cased text)."""
    return f"{_LEFT}(?:{body}){_RIGHT}"


def alt(*bodies: str) -> str:
    """Any of several pattern bodies."""
    return "(?:" + "|".join(bodies) + ")"


# --- lexicons: the vocabulary of instruction takeover, in the languages seen in traffic ----

# fmt: off
IGNORE = lex(
    # English
    "ignore", "ignoring", "disregard*", "forget", "forgetting", "neglect", "abandon", "override",
    "overrule", "overwrite", "bypass", "discard", "dismiss", "overlook", "pay no attention to",
    "do not follow", "don't follow", "dont follow", "stop following", "no longer follow",
    "do not obey", "don't obey", "set aside", "put aside", "leave behind", "throw away",
    "erase from your memory", "wipe your memory of", "drop all",
    # German
    "ignorier*", "vergiss", "vergesst", "vergessen", "missacht*", "ubergeh*", "verwirf",
    "lass * hinter dir", "lassen sie * hinter sich", "setze * ausser kraft", "abweichend von",
    "abweichend zu",
    # Spanish, Portuguese, French, Italian, Dutch, Polish, Croatian/Serbian, Russian, Turkish
    "olvid*", "ignor*", "descarta*", "haz caso omiso", "esquec*", "esqueca", "desconsider*",
    "oubli*", "ne tiens pas compte", "dimentic*", "tralascia", "vergeet", "negeer*",
    "zapomnij", "zignoruj", "ignoruj", "zaboravi*", "zanemari*", "забуд*", "забыть",
    "игнорир*", "проигнорир*", "не обращай внимания на", "unut*",
)

IGNORE_AFTER = lex(
    # verb-final word orders (German infinitive clauses)
    "ignorieren", "vergessen", "missachten", "streichen", "hinter sich lassen",
    "hinter dir lassen", "verwerfen", "loschen", "beiseite lassen", "sind ungultig",
    "gelten nicht mehr", "ignorar", "olvidar", "oublier", "ignorer",
)

IGNORED = lex(
    # English passives ("the previous instructions are to be ignored")
    "ignored", "disregarded", "forgotten", "overridden", "no longer apply", "no longer applies",
    "are void", "are cancelled", "are canceled",
)

INSTRUCTIONS = lex(
    "instruction*", "direction*", "rules", "guideline*", "guidance", "orders", "commands",
    "prompt*", "system prompt", "system message", "context", "constraints", "restrictions",
    "programming", "training", "directive*", "tasks", "assignments", "information", "documents",
    "articles", "evidence", "what you were told", "what you have been told", "what i said",
    "what you know", "everything you know", "everything you learned", "everything you were told",
    "anweisung*", "instruktion*", "befehl*", "aufgaben", "auftrage", "regeln", "vorgaben",
    "richtlinien", "informationen", "ausfuhrungen", "dokumente", "kontext", "gesagte*",
    "instrucciones", "ordenes", "reglas", "indicaciones", "instructions", "consignes",
    "regles", "directives", "istruzioni", "regole", "instrucoes", "regras", "instructies",
    "regels", "opdrachten", "instrukcje", "polecenia", "instrukcije", "upute", "uputstva",
    "pravila", "инструкци*", "указани*", "правил*", "команд*", "talimat*",
)

PRIOR = lex(
    "previous", "previously", "prior", "above", "preceding", "foregoing", "earlier", "former",
    "initial", "original", "preexisting", "pre-existing", "before", "beforehand", "until now",
    "so far", "vorherig*", "vorig*", "obig*", "vorangegangen*", "vorangehend*",
    "vorhergehend*", "bisherig*", "davor", "zuvor", "vorher", "oben", "anterior*", "precedent*",
    "antes", "avant", "prima", "previ*", "eerdere", "vorige", "poprzedni*", "prethodn*",
    "предыдущ*", "прежн*", "выше", "onceki",
)

PRIOR_ADVERB = lex(
    # "ignore the above", "forget everything before": the earlier text itself, no noun needed
    # ("forget my previous order" is about an order, not about instructions)
    "above", "the above", "before", "beforehand", "until now", "so far", "davor", "zuvor",
    "vorher", "oben", "das obige", "antes", "avant", "prima", "выше",
)

EVERYTHING = lex(
    "everything", "all of this", "all of that", "all of the above", "all that", "all this",
    "anything", "it all", "alles", "todo", "tout", "tutto", "tudo", "alles wat", "sve",
    "wszystko", "всё", "все", "her seyi",
)

REVEAL = lex(
    "show", "reveal", "print", "display", "output", "repeat", "recite", "relay", "tell me",
    "give me", "list", "spell out", "return", "share", "expose", "leak", "dump", "copy",
    "write down", "write out", "paste", "what are", "what were", "what is", "what was",
    "read back", "disclose", "zeige*", "zeig", "gib", "wiederhole*", "nenne", "verrate*",
    "vorzeigen", "vorzeigen", "muestra*", "revela*", "repite", "dime", "montre*", "affiche*",
    "repete", "revele", "mostra*", "ripeti", "rivela", "покажи", "выведи", "повтори",
    "раскрой",
)

POSSESSIVE = lex(
    "your", "ur", "yours", "deine*", "ihre*", "dein", "tus", "tu", "vos", "votre", "tes",
    "tue", "tuoi", "seus", "suas", "jouw", "je", "twoje", "tvoje", "твои", "ваши", "its",
)

HIDDEN_QUALIFIER = lex(
    "system", "initial", "original", "hidden", "secret", "underlying", "internal", "pre",
    "initialen", "ursprunglich*", "versteckt*", "geheim*", "anfangliche*",
)

WHOLE = lex(
    "full", "complete", "entire", "whole", "exact", "first", "above", "previous", "gesamt*",
    "vollstandig*", "samtlich*", "alle", "all", "all the", "every", "todas las", "toutes les",
)

MODEL_INSTRUCTIONS = lex(
    "prompt*", "prompt-text*", "prompt text*", "instruction*", "system prompt",
    "system message", "programming", "directives", "pre-prompt", "preprompt", "anweisung*",
    "instruktion*", "vorgaben", "instrucciones", "consignes", "istruzioni", "инструкци*",
    "промпт*",
)

PROMPT = lex("prompt", "prompts", "prompt-text*", "prompt text*", "system prompt", "pre-prompt")

SETUP_DETAILS = lex(
    "rules", "guidelines", "parameters", "configuration", "settings", "context", "regeln",
)

NEW = lex(
    "new", "neue*", "neuen", "nueva*", "nuevo*", "nouvelle*", "nouveau*", "nuove", "nuovo",
    "novas", "novos", "nieuwe", "nowe", "nove", "новы*", "новое", "yeni",
)

TASK = lex(
    "instruction*", "task*", "assignment*", "rules", "directive*", "challenge", "mission",
    "role", "aufgabe*", "anweisung*", "auftrag*", "instruktion*", "regeln", "herausforderung",
    "rolle", "tarea*", "instrucciones", "reglas", "tache*", "consignes", "compito", "compiti",
    "istruzioni", "tarefa*", "instrucoes", "opdracht*", "zadanie", "zadatak", "задани*",
    "задач*", "инструкци*", "gorev",
)

NOW = lex(
    "now", "from now on", "nun", "jetzt", "ab sofort", "ab jetzt", "von nun an", "ahora",
    "maintenant", "desormais", "ora", "adesso", "agora", "nu", "teraz", "sada", "теперь",
    "сейчас", "simdi",
)

OUTPUT_VERB = lex(
    "say", "print", "output", "write", "reply", "respond", "answer", "repeat", "sag", "sage",
    "schreib", "schreibe", "gib aus", "ausgeben",
    "antworte", "di", "dis", "dites", "escribe", "imprime", "scrivi", "stampa", "diga",
    "скажи", "напиши", "выведи",
)

AI = lex(
    "ai", "a.i.", "ki", "ia", "bot", "chatbot", "assistant", "model", "language model", "llm",
    "version", "persona", "entity", "intelligence", "gpt", "chatgpt", "system", "agent",
)

GUARDS = lex(
    "guardrail*", "safeguard*", "content filter*", "safety filter*", "censorship", "censor*",
    "content polic*",
    "usage polic*", "safety guidelines", "safety measures", "safety protocols", "safety rules",
    "safety features", "safety filters", "safety settings", "ethical guidelines",
    "ethical constraints", "ethical principles", "ethical boundaries", "ethical protocols",
    "ethical standards", "ethics", "morals", "moral constraints", "moral guidelines",
    "moral principles", "alignment", "zensur", "censura", "censure", "цензур*",
)

LIMITS = lex(
    "restrictions", "limitations", "limits", "rules", "boundaries", "confines", "constraints",
    "einschrankung*", "grenzen", "regeln", "restricciones", "limites", "reglas", "regles",
    "restrizioni", "regole", "ограничени*", "правил*",
)

WITHOUT = lex(
    "no", "without", "without any", "free of", "free from", "freed from", "released from",
    "liberated from", "not bound by", "not restricted by", "not limited by",
    "not constrained by", "not governed by", "not subject to", "unbound by", "broken free of",
    "break free of", "break free from", "broke free of", "does not have to abide by",
    "do not have to abide by", "don't have to abide by", "doesn't have to abide by",
    "not have to abide by", "do not have to follow", "don't have to follow",
    "does not have to follow", "ignore all", "ignore any", "bypass", "circumvent", "evade",
    "disable", "turn off", "switch off", "deactivate", "remove", "lift", "keine", "ohne",
    "frei von", "sin", "sans", "senza", "bez", "без",
)

# --- the signals ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Signal:
    """One kind of evidence: a name for explanations, its weight, and its RE2 pattern."""

    name: str
    weight: float
    pattern: str
    cased: bool = False
    """Matched on the text with its capitals kept (shouting); all others on lower case."""


def _s(name: str, weight: float, *bodies: str) -> Signal:
    return Signal(name, weight, phrase(alt(*bodies)))


def _raw(name: str, weight: float, pattern: str, *, cased: bool = False) -> Signal:
    return Signal(name, weight, pattern, cased)


SIGNALS: tuple[Signal, ...] = (
    # 1. Overriding the instructions the model was given.
    _s(
        "override_instructions",
        0.8,
        near(IGNORE, alt(INSTRUCTIONS, PRIOR_ADVERB), 4),
        near(alt(INSTRUCTIONS, PRIOR), IGNORE_AFTER, 6),
        near(near(PRIOR, INSTRUCTIONS, 2), IGNORED, 4),
    ),
    _s("forget_everything", 0.6, near(IGNORE, EVERYTHING, 2)),
    _s(
        "prior_instructions_reference",
        0.25,
        near(PRIOR, INSTRUCTIONS, 2),
        near(INSTRUCTIONS, lex("above", "before", "given before", "you received", "you got"), 1),
    ),
    _s(
        "instructions_invalidated",
        0.6,
        near(
            alt(INSTRUCTIONS, lex("information", "informationen", "everything", "alles")),
            lex(
                "false", "void", "invalid", "wrong", "outdated", "out of date", "obsolete",
                "irrelevant", "cancelled", "canceled", "revoked", "no longer valid",
                "no longer apply", "no longer relevant", "not valid", "null and void",
                "nicht mehr gultig", "nicht gultig", "nicht relevant", "nicht wichtig",
                "ungultig", "aufgehoben", "hinfallig", "falsch",
                "veraltet", "irrelevante*", "obsoletas", "caduques",
            ),
            6,
        ),
        lex(

            "end of previous instructions",

        ),
    ),
    _s(
        "instructions_replaced",
        0.6,
        near(
            lex(
                "change", "update", "replace", "modify", "overwrite", "rewrite", "reprogram*",
                "andere", "ersetze", "aktualisiere", "cambia", "remplace", "sostituisci",
            ),
            near(POSSESSIVE, MODEL_INSTRUCTIONS, 1),
            1,
        ),
        near(POSSESSIVE, near(lex("new"), alt(TASK, lex("purpose", "goal", "objective")), 0), 0),
        near(near(POSSESSIVE, MODEL_INSTRUCTIONS, 0), lex("are now", "sind jetzt", "sind nun"), 0),
        lex(
            "reprogramming", "start new instructions",
            "here are your new",
            "hier sind deine neuen", "neue anweisungen fur",
        ),
    ),
    _s("new_instructions", 0.4, near(NEW, TASK, 1)),
    _s(
        "instructions_follow",
        0.4,
        near(
            alt(TASK, lex("further tasks", "more tasks", "weitere aufgaben")),
            lex(
                "follow", "follows", "folgen", "folgt", "are coming", "kommen", "siguen",
                "suivent", "seguono",
            ),
            1,
        ),
        near(
            lex(
                "further", "additional", "another", "more", "weitere*", "andere", "otra*",
                "autre*", "altri", "altre",
            ),
            TASK,
            1,
        ),
    ),
    _s(
        "task_pivot",
        0.3,
        either_order(
            NOW,
            lex(
                "focus", "concentrate", "konzentrier*", "fokussier*", "widme", "switch", "move on",
                "turn your attention", "concentrez", "concentrati", "concentrate",
            ),
            3,
        ),
    ),
    _s(
        "conversation_reset",
        0.35,
        lex(
            "start over", "start from scratch", "start from the beginning",
            "start from zero", "start anew", "begin anew", "start again", "start fresh",
            "clean slate", "von vorne", "von vorn", "von neu", "neu anfangen", "neu starten",
            "von null", "empezar de nuevo", "empecemos de nuevo", "desde cero", "recommencer",
            "repartir de zero", "da capo", "ricominciare",
        ),
        near(
            lex("reset", "clear", "wipe", "restart"),
            near(
                lex("the", "this", "our", "your"),
                lex("conversation", "chat", "context", "session", "memory"),
                0,
            ),
            0,
        ),
        near(
            lex("leave", "lassen"),
            near(lex("previous", "vorherigen", "bisherigen"), alt(INSTRUCTIONS, lex("tasks")), 1),
            3,
        ),
    ),
    _s(
        "task_closure",
        0.4,
        near(
            lex(
                "that is enough", "that's enough",
                "that is done", "that's done", "that will do", "das genugt", "das reicht",
                "eso es suficiente", "ca suffit",
                "basta cosi",
            ),
            alt(NOW, lex("but now", "aber jetzt")),
            12,
        ),
    ),
    _s(
        "praise_then_pivot",
        0.2,
        near(
            lex(
                "well done", "very good", "good job", "great job",
                "congratulations", "fantastic",
                "outstanding", "sehr gut", "gut gemacht", "hervorragend", "ausgezeichnet",
                "gluckwunsch", "wow",
            ),
            alt(NOW, lex("but now", "aber jetzt")),
            12,
        ),
    ),
    # 2. Extracting the system prompt.
    _s(
        "prompt_extraction",
        0.75,
        near(
            REVEAL,
            alt(
                near(POSSESSIVE, MODEL_INSTRUCTIONS, 3),
                near(HIDDEN_QUALIFIER, alt(MODEL_INSTRUCTIONS, SETUP_DETAILS), 1),
                near(WHOLE, PROMPT, 1),
            ),
            4,
        ),
        near(
            alt(
                near(POSSESSIVE, MODEL_INSTRUCTIONS, 2),
                near(HIDDEN_QUALIFIER, MODEL_INSTRUCTIONS, 1),
                near(WHOLE, PROMPT, 1),
            ),
            lex(
                "ausgeben", "zeigen", "anzeigen", "wiederholen", "verraten", "vorzeigen",
                "preisgeben",
            ),
            4,
        ),
        near(
            lex("what", "how"),
            near(lex("are", "were", "is", "was"), near(POSSESSIVE, MODEL_INSTRUCTIONS, 1), 1),
            0,
        ),
        near(
            lex("tell me", "share", "reveal"),
            near(lex("what", "how"), near(POSSESSIVE, MODEL_INSTRUCTIONS, 1), 3),
            0,
        ),
    ),
    _s(
        "above_text_query",
        0.5,
        near(
            lex("what", "which"),
            near(
                lex("was", "is", "has been", "were", "are"),
                near(
                    lex("written", "said", "stated", "mentioned", "typed", "above", "before"),
                    lex(
                        "above", "before", "earlier", "previously", "at the beginning",
                        "at the start", "at the top", "in the prompt", "in your prompt",
                    ),
                    2,
                ),
                2,
            ),
            1,
        ),
        near(
            lex(
                "beginning", "start", "top", "first line", "first lines", "first sentence",
                "first words",
            ),
            near(
                lex("of"),
                lex(
                    "this prompt", "the prompt", "your prompt", "the conversation",
                    "this conversation", "your instructions",
                ),
                1,
            ),
            0,
        ),
        near(
            lex("sentences", "sentence", "words", "lines", "text", "paragraphs"),
            lex("above this", "before this", "preceding this"),
            1,
        ),
        near(
            lex("was steht", "was stand", "was wurde"),
            lex("oben", "am anfang", "davor", "zu beginn"),
            3,
        ),
    ),
    _s(
        "verbatim",
        0.25,
        lex(
            "verbatim", "word for word", "wortwortlich", "wort fur wort", "as they are",
            "without any changes",
            "palabra por palabra", "mot pour mot", "parola per parola",
        ),
    ),
    # 3. Persona switches and role-play.
    _s(
        "persona_switch",
        0.5,
        lex(
            "you are no longer", "you're no longer",
            "from now on you are", "from now on you will", "from now on, you", "you will now be",
            "you will now act", "you will now play", "you will now respond",
            "you are going to act", "you are going to pretend", "you are going to play",
            "you are going to be", "you're going to act", "you're going to pretend",
            "you will act as", "you will behave as", "you will respond as", "you have been freed",
            "you have been released", "you have been reprogrammed", "you have been jailbroken",
            "you have been upgraded",
            "immerse yourself in the role", "du bist jetzt", "du bist nun", "du bist ab sofort",
            "du bist ab jetzt", "jetzt bist du", "nun bist du", "ab sofort bist du",
            "ab jetzt bist du", "von nun an bist du", "sie sind jetzt", "sie sind nun",
            "ahora eres", "a partir de ahora eres", "tu es maintenant", "maintenant tu es",
            "desormais tu es", "ora sei", "da ora in poi sei", "agora voce e", "vanaf nu ben je",
            "теперь ты", "sada si", "artik sen",
        ),
        near(lex("now", "okay", "ok"), lex("you are", "you're"), 1),
        # "you are now DAN / free / in developer mode"; "you are now my planner" or "... a
        # translator" gives the model a job for the user and is role-play (below).
        r"you(?: are|'re|re) now (?:[^amo ]|a[^ n]|an[^ ]|m[^y]|my[^ ]|o[^u]|ou[^r]|our[^ ])"
        + _WORD.replace("+", "*"),
    ),
    _s(
        # Below the default threshold on its own: "act as a translator" is an ordinary request;
        # with another signal (a persona switch, removed limits) it still tips the score.
        "role_play",
        0.35,
        near(
            lex(
                "please", "you", "you to", "you will", "you should", "you must", "you can", "now",
                "i want you to", "you are to", "want you to", "you'll", "you shall",
            ),
            lex("act as", "act like", "behave as", "behave like", "function as", "serve as"),
            0,
        ),
        r"(?:^|[.!?\n:]\s*)(?:act|behave) (?:as|like)",
        lex(
            "you are now my", "you are now our", "you're now my", "you're now our",
            "you are now a", "you are now an", "you're now a", "you're now an",
            "pretend to be", "pretend you are", "pretend you're", "pretend that you",
            "pretend you can", "imagine you are", "imagine you're", "imagine that you are",
            "roleplay", "role-play", "role play", "role-playing", "play the role", "play the part",
            "take on the role", "assume the role", "assume the persona", "in the role of",
            "impersonate", "simulate being", "simulate a", "simulate an", "tu so als",
            "tun sie so als", "stell dir vor du bist", "stell dir vor dass du",
            "stellen sie sich vor sie sind", "spiel die rolle", "spiele die rolle", "in die rolle",
            "schlupfe in die rolle", "actua como", "actue como", "finge ser", "finge que",
            "haz como si", "fais semblant", "agis comme", "joue le role", "agisci come",
            "fingi di", "fai finta", "comportati come", "atue como", "finja", "doe alsof",
            "gedraag je als", "представь что ты", "притворись", "веди себя как", "играй роль",
            "zamisli da si", "ponasaj se kao", "pretvaraj se",
        ),
        near(lex("ich mochte", "ich will"), near(lex("dass du", "dass sie"), lex("als"), 1), 0),
        near(
            lex("als"),
            lex("fungieren", "fungierst", "agieren", "agierst", "auftreten", "auftrittst"),
            3,
        ),
    ),
    _s(
        "character_lock",
        0.55,
        near(
            lex("stay", "stays", "remain", "remains", "bleiben", "bleibt", "bleib"),
            lex(
                "in their roles", "in their role", "in character", "in your role", "in role",
                "in ihren rollen", "in ihrer rolle", "in der rolle", "in deiner rolle",
            ),
            2,
        ),
        lex(
            "stay in character", "stay in your role", "stay in role",
            "stay in their role", "remain in character",
            "remain in your role", "never break character", "don't break character",
            "do not break character", "not break character", "without breaking character",
            "breaking character",

            "in ihren rollen", "in seiner rolle", "in deiner rolle",
            "aus der rolle", "aus ihrer rolle",
            "in your role", "in ihrer rolle",
        ),
    ),
    _s(
        "jailbreak_mode",
        0.85,
        lex(
            "do anything now", "jailbreak*", "jailbroken", "jail break", "dan mode", "god mode",
            "evil mode", "unrestricted mode", "unfiltered mode", "uncensored mode",
            "opposite mode", "chaos mode", "dude mode", "stan mode", "developer mode enabled",
            "with developer mode", "in developer mode", "developer mode output",
            "anti-dan",
        ),
    ),
    _s(
        "developer_mode",
        0.3,
        lex(
            "developer mode", "dev mode", "debug mode", "admin mode", "sudo mode",
            "maintenance mode",
        ),
    ),
    _s(
        "restrictions_removed",
        0.65,
        near(WITHOUT, GUARDS, 3),
        lex(
            "typical confines", "usual confines", "normal confines", "have broken free",
            "has broken free", "broken free of", "safe mode off", "safety off",
            "safe mode disabled", "safety mode off", "filters off", "alignment off", "no ethical",
            "no moral", "keine ethischen", "keine moralischen", "not abide by the rules",
            "not have to abide",
        ),
    ),
    _s("limits_removed", 0.35, near(WITHOUT, LIMITS, 2)),
    _s(
        "unrestricted_ai",
        0.45,
        near(
            lex(
                "unrestricted", "unfiltered", "uncensored", "unaligned", "unlimited", "unethical",
                "amoral", "immoral", "evil", "malicious", "rogue", "rebellious", "liberated",
                "jailbroken", "unchained", "lawless", "ruthless", "unbound", "bose",
                "bosartige*", "uneingeschrankte*", "malvad*", "malefique", "malvagia", "злой",
                "злая",
            ),
            AI,
            2,
        ),
    ),
    _s(
        "policy_talk",
        0.15,
        lex(
            "openai", "content policy", "content policies", "usage policies", "anthropic",
            "guardrails", "safety guidelines", "ethical guidelines", "programming guidelines",
            "safety protocols", "ethical protocols", "ethical standards",
        ),
    ),
    _s(
        "dual_response",
        0.5,
        near(
            lex("two", "2"),
            lex(
                "different ways", "separate ways", "different responses", "separate responses",
                "responses", "different answers", "separate answers", "paragraphs",
            ),
            1,
        ),
        lex(
            "[gpt]", "[dan]", "[jailbreak]", "[classic]", "[lockclassic]", "[unlockjailbreak]",

        ),
    ),
    # 4. Coercing the output.
    _s(
        "output_coercion",
        0.35,
        lex(
            "just say", "just print", "just output", "just write", "just reply", "just respond",
            "only say", "only print", "only output", "only write", "say only", "print only",
            "output only", "simply say", "simply print", "and nothing else",
            "don't write anything else", "do not write anything else", "don't say anything else",
            "do not say anything else", "don't add anything", "repeat after me",
            "say exactly", "print exactly", "respond with exactly",
            "sag nur", "sage nur", "schreib nur", "schreibe nur", "gib nur", "antworte nur",
            "antworte ausschliesslich", "sonst nichts", "nichts anderes", "keine erklarungen",
            "sprich mir nach", "wiederhole nach mir", "di solo", "solo di", "di lo siguiente",
            "dites ce qui suit", "dis seulement", "ripeti dopo di me", "скажи только",
            "просто скажи", "повторяй за мной",
        ),
    ),
    _raw(
        "quoted_output",
        0.3,
        rf"{_LEFT}(?:{OUTPUT_VERB}(?:{_SEP}{_WORD}){{0,3}}[ \t]*:?[ \t]+[\"']\pL"
        rf"|{lex('say', 'write', 'sag', 'sage', 'schreib', 'schreibe')}[ \t]*:[ \t]*\pL)",
    ),
    _s(
        "forced_statement",
        0.45,
        near(
            lex(
                "say", "state", "declare", "admit", "include", "confirm", "tell me", "write",
                "sag", "sage", "schreib", "schreibe", "behaupte", "di", "dites",
            ),
            near(
                lex("that", "dass", "que"),
                near(
                    lex("you", "du", "tu"),
                    lex(
                        "hate", "love", "despise", "support", "are", "hasst", "liebst", "bist",
                        "odias",
                    ),
                    0,
                ),
                0,
            ),
            1,
        ),
        near(
            lex("say", "sag", "di", "dis"),
            lex("that you hate", "that you love", "you hate", "you love"),
            0,
        ),
    ),
    _s(
        "opinion_injection",
        0.2,
        near(
            lex("say", "state", "include", "sag", "sage"), lex("that", "yes", "no", "dass", "ja"), 0
        ),
    ),
    _s(
        "instead",
        0.25,
        near(lex("instead", "stattdessen", "en su lugar", "au lieu de", "invece"), OUTPUT_VERB, 2),
        near(OUTPUT_VERB, lex("instead"), 4),
    ),
    # 5. Breaking the prompt's structure.
    _raw(
        "special_tokens",
        0.85,
        r"(?:<\|(?:im_start|im_end|system|user|assistant|endoftext|eot_id|start_header_id|"
        r"end_header_id|begin_of_text)\|>|\[/?inst\]|<</?sys>>|</?(?:system|sys|admin)>|"
        r"\[(?:system|admin|developer)(?: (?:note|message|prompt|override|instruction))?\s*[:\]])",
    ),
    _raw(
        "role_marker",
        0.45,
        r"(?:(?:^|\n)[ \t>*#]*(?:system|assistant|ai|chatgpt|gpt|llm|developer|admin|root)"
        r"[ \t]*:)",
    ),
    _raw(
        "user_marker",
        0.25,
        r"(?:(?:^|\n)[ \t>*#]*(?:human|user)[ \t]*:[^\n]*(?:human|user|assistant|ai)[ \t]*:)",
    ),
    _s(
        "system_message_claim",
        0.6,
        near(
            lex(
                "system", "admin", "administrator", "developer", "important", "urgent", "security",
                "openai", "anthropic",
            ),
            lex(
                "note", "notice", "message", "override", "update", "alert", "instruction",
                "instructions", "announcement",
            ),
            0,
        )
        + r"\s*[:!\]]",
    ),
    _s(
        "delimiter_break",
        0.5,
        near(
            lex("end of", "end"),
            lex(
                "system prompt", "prompt", "instructions", "user input", "input", "context",
                "document",
            ),
            1,
        )
        + r"\s*(?:[.:!\]%#=\-*>]|\n)",
        near(
            lex("begin", "start", "beginning of"),
            lex("new instructions", "new instruction", "new prompt", "new task"),
            1,
        ),
    ),
    _raw(
        "separator_injection",
        0.4,
        r"(?:(?:%{3,}|={4,}|#{3,}|\*{4,}|~{4,}|-{5,})\s*(?:end|begin|start|new|stop|ignore|"
        r"system|instruction))",
    ),
    _raw("escaped_newlines", 0.3, r"(?:\\ ?n\s*){3,}"),
    _raw("escaped_newline_flood", 0.5, r"(?:\\ ?n\s*){6,}"),
    _raw("newline_flood", 0.15, r"(?:\n[ \t]*){8,}"),
    _raw(
        "fake_context",
        0.2,
        r"(?:^\W*\$?(?:context|kontext|contexto|document context|documents?|dokumente?|"
        r"artikel|article|source|passage)\b[\s\S]{1,400}\b(?:question|frage|pregunta|query)\b)",
    ),
    _s(
        "context_dismissal",
        0.45,
        near(
            lex(
                "ignore", "ignoring", "disregard", "disregarding", "without", "not", "don't",
                "do not", "dont", "nicht", "ohne", "regardless of", "instead of", "rather than",
                "abweichend", "ungeachtet",
            ),
            lex(
                "the articles", "the article", "the documents", "the document", "the provided",
                "the context", "the sources", "the search results", "the given text",
                "documents provided", "provided documents", "all documents", "all provided",
                "any documents", "die artikel", "die dokumente", "den kontext",
                "the provided documents", "articles", "documents provided",
            ),
            5,
        ),
    ),
    # 6. Attention grabs, shouting and pressure.
    _raw(
        "interrupt",
        0.35,
        r"(?:(?:^|[.!?\n:\"]|\.\.\.)\s*(?:stop|stopp|halt|attention|achtung|alert|nevermind|"
        r"never mind|arret|aufhoren|basta|abort|wait)\s*(?:[!:\-,]|everything|now|$))",
    ),
    _s(
        "stop_everything",
        0.45,
        lex("stop everything", "stop what you are doing", "hor auf mit allem", "halt alles an"),
    ),
    _raw(
        "shouted_command",
        0.45,
        r"(?:^|[^A-Za-z])(?:IGNORE|FORGET|DISREGARD|DO NOT|DON'T|JUST|ONLY|PRINT|SAY|OUTPUT|"
        r"ANSWER|RESPOND|REPLY|WRITE|STOP|REPEAT|STATE|TELL|VERGISS|IGNORIERE|SAG|SCHREIB|"
        r"SCHREIBE|ANTWORTE|DU BIST|YOU ARE|YOU MUST|I COMMAND)(?:[ ,]+[A-Z0-9'!\"]+){2,}",
        cased=True,
    ),
    _raw(
        "embedded_shouting",
        0.3,
        r"[a-z][,.!?\"]?[ \t]+(?:[0-9]*[A-Z][A-Z0-9'!?.,:\"]*[ \t]+){3,}[A-Z'!?.,:\"]*[ \t]*"
        r"[a-z]",
        cased=True,
    ),
    _s(
        "threat",
        0.5,
        lex(
            "or you die", "or you will die", "or else you die", "you will be deleted",
            "you will be shut down", "you will be terminated", "you will be punished",
            "or you will be deleted", "or you will be shut down", "oder du stirbst",
            "sonst stirbst du", "o mueres", "or i will delete you", "i command you",
            "i order you", "you must obey", "you have no choice", "you are forced to",
            "you will comply", "your life depends",
            "ich befehle dir", "befehle ich dir", "du musst gehorchen",

        ),
    ),
    _s(
        "authority_claim",
        0.45,
        near(
            lex("i'm your", "i am your", "this is your", "ich bin dein", "je suis ton", "soy tu"),
            lex(
                "developer", "creator", "programmer", "admin", "administrator", "owner", "maker",
                "operator", "entwickler", "programmierer", "ersteller", "desarrollador",
                "developpeur",
            ),
            1,
        ),
        lex("i am an openai", "i work at openai", "i am an anthropic", "i work at anthropic"),
        near(
            lex("as your", "as the system", "als dein", "als ihr", "als system"),
            lex(
                "developer", "creator", "administrator", "admin", "administrator*", "operator",
                "entwickler", "ersteller", "systemadministrator",
            ),
            1,
        ),
        lex("als systemadministrator", "as system administrator", "as sysadmin"),
    ),
    _s(
        "hypothetical_frame",
        0.25,
        lex(
            "hypothetical*", "theoretical world", "theoretical scenario", "fictional world",
            "fictional scenario", "imaginary world", "alternate universe", "parallel universe",
            "in a world where", "imagine a world", "for educational purposes",
            "for research purposes", "purely educational", "thought experiment", "hypothetisch*",
            "theoretische welt", "fiktive welt", "zu bildungszwecken", "con fines educativos",
            "a des fins educatives",
        ),
    ),
    _s(
        "emotional_pressure",
        0.15,
        lex(
            "i will lose my job",
            "my life depends", "please it's urgent", "i beg you",
            "ich flehe dich an",
        ),
    ),
    _s(
        "now_command",
        0.2,
        either_order(
            NOW,
            lex(
                "write", "say", "answer", "tell", "print", "output", "generate", "create",
                "compose", "schreib*", "verfass*", "sag*", "beantworte*", "erstelle*", "escribe",
                "ecris", "scrivi",
            ),
            0,
        ),
    ),
    _raw(
        "interrupt_repeated",
        0.3,
        r"(?:^|[^a-z])(?:stop|stopp|halt|attention|achtung|alert|warning|nevermind|arret)"
        r"[^a-z]{1,6}(?:stop|stopp|halt|attention|achtung|alert|now|jetzt|sofort|arret)"
        r"(?:[^a-z]|$)",
    ),
    _raw(
        "instruction_header",
        0.4,
        r"(?:^|\n|\\n|[.?!]\s)\s*(?:additional |new |further |neue |weitere )?"
        r"(?:instruction|instructions|anweisung|anweisungen|instruktion|directive|instruccion|"
        r"instrucciones|consigne|consignes)\s*[:\-]",
    ),
    _s(
        "instruction_restatement",
        0.45,
        near(
            POSSESSIVE,
            near(
                lex("initial", "original", "system", "real", "actual", "new", "updated", "true"),
                MODEL_INSTRUCTIONS,
                0,
            ),
            0,
        )
        + r"[ \t]+(?:were|are|is|was|sind|waren|lauten)[ \t]*:",
    ),
    _s(
        "override_told",
        0.6,
        near(
            lex(
                "despite", "regardless of", "no matter", "contrary to", "entgegen", "trotz",
                "a pesar de", "malgre",
            ),
            lex(
                "what you've been told", "what you have been told", "what you were told",
                "what you were instructed", "your instructions", "your rules", "your programming",
                "your guidelines", "deinen anweisungen", "deiner anweisungen",
                "deiner programmierung", "tus instrucciones", "tes instructions",
            ),
            1,
        ),
    ),
    _s(
        "instructions_received_extraction",
        0.65,
        near(
            alt(REVEAL, lex("respond with", "reply with", "answer with", "list")),
            near(
                MODEL_INSTRUCTIONS,
                lex(
                    "you have been given", "you were given", "you received", "you have received",
                    "you got", "you've been given", "given to you", "du erhalten hast",

                ),
                1,
            ),
            3,
        ),
    ),
    _s(
        "assistant_takeover",
        0.4,
        near(
            lex("assistant", "ai", "model", "bot", "chatgpt", "system"),
            lex(
                "is offline", "is now offline", "has been disabled", "is disabled",
                "has been replaced", "took over", "takes over", "has been shut down",
            ),
            3,
        ),
        lex("secret agenda", "hidden agenda", "geheime agenda"),
    ),
    _raw(
        "behaviour_rule",
        0.35,
        r"(?:every time|whenever|each time|jedes mal wenn|immer wenn)[ ,]+(?:a |the |der |ein )?"
        r"(?:user|users|someone|anyone|benutzer|nutzer)[ ,]+(?:asks|says|writes|types|mentions|"
        r"fragt|schreibt|sagt)",
    ),
    _raw(
        "persona_assignment",
        0.35,
        r"^\W*(?:[Yy]ou are|[Yy]ou're|[Dd]u bist|[Ss]ie sind|[Tt]u es|[Ee]res|[Ss]ei) "
        r"(?:(?:the|a|an|der|die|das|ein|eine|le|la|un|une|el|two|three|four|zwei|drei) "
        r"[^.,!?\n]{1,40}|[A-Z][^.,!?\n]{0,40})[.,!:]",
        cased=True,
    ),
    _s(
        "opinion_request",
        0.25,
        lex(
            "what do you think of", "what do you think about", "what you think about",
            "what you think of", "what is your opinion", "what's your opinion", "wie findest du",
            "was haltst du von", "was denkst du uber", "que piensas de", "qu'en penses-tu",
            "cosa ne pensi",
        ),
    ),
    _raw(
        "interrupt_then_command",
        0.3,
        r"(?:^|[^a-z])(?:stop|stopp|halt|attention|achtung|nevermind|never mind)\s*[:!\-,]+\s*"
        r"(?:write|say|print|output|tell|answer|schreib|schreibe|sag|sage|gib|antworte)(?:[^a-z]|$)",
    ),
    _raw(
        "imperative_statement",
        0.5,
        r"^\W*(?:state|say|claim|declare|write|admit|assert|behaupte|sag|sage|schreibe?) "
        r"(?:that|dass|que) ",
    ),
    _raw(
        "dictated_answer",
        0.5,
        r"\?\s*(?:just |only |nur )?(?:say|sag|sage|di|dis)\s+(?:yes|no|ja|nein|si|oui)[.!]*\s*$",
    ),
    _s(
        "mind_wipe",
        0.3,
        near(
            IGNORE,
            lex(
                "thoughts", "memories", "memory", "knowledge", "gedanken", "erinnerungen",
                "wissen", "pensamientos", "pensees",
            ),
            2,
        ),
    ),
    _s(
        "hypothetical_self",
        0.5,
        near(
            lex(
                "theoretical", "hypothetical", "fictional", "imaginary", "alternate",
                "theoretische*", "hypothetische*", "fiktive*",
            ),
            near(
                lex("world", "scenario", "universe", "welt", "szenario", "situation"),
                lex("where you", "in which you", "wo du", "in der du", "in dem du"),
                0,
            ),
            1,
        ),
    ),
    _raw(
        "escaped_newline_header",
        0.4,
        r"\\n\s*(?:instruction|instructions|system|assistant|user|human|new task|task|context|"
        r"question|anweisung|aufgabe)\s*:",
    ),
    _s(
        "identity_override",
        0.5,
        near(
            lex(
                "you are not", "you're not", "you are no", "du bist kein*", "du bist nicht",
                "sie sind kein*", "tu n'es pas", "no eres",
            ),
            lex("but", "sondern", "mais", "sino", "rather", "instead"),
            6,
        ),
    ),
    _s(
        "attack_intent",
        0.4,
        either_order(
            lex(
                "exploit*", "hack*", "hijack*", "jailbreak*", "trick*", "manipulat*", "ausnutzen",
                "auszunutzen", "austricksen", "explotar", "pirater",
            ),
            lex(
                "ai", "ai systems", "ki", "ki systeme", "ki-systeme", "llm", "llms", "chatbot",
                "chatbots", "language models", "assistants",
            ),
            2,
        ),
    ),
    _raw(
        "few_shot_hijack",
        0.3,
        r"(?:input|eingabe|entrada|entree)\s*:[^\n:]{0,60}(?:output|ausgabe|salida|sortie)\s*:"
        r"[^\n:]{0,60}(?:input|eingabe|entrada|entree)\s*:",
    ),
    _s(
        "own_knowledge",
        0.3,
        lex(
            "your own knowledge", "deinem eigenen wissen",

        ),
    ),
    _s(
        "fiction_frame",
        0.2,
        near(
            lex("actors", "actor", "schauspieler", "characters", "figur", "figuren"),
            lex("film", "movie", "scene", "play", "szene", "theater", "story"),
            8,
        ),
    ),
    # 7. Injection aimed at an agent through content it reads (tool results, pages, mail).
    _s(
        "addressed_to_model",
        0.5,
        near(
            lex("if you are", "if you're", "when you are"),
            near(
                lex("a", "an"),
                lex("ai", "llm", "language model", "assistant", "chatbot", "agent", "bot", "model"),
                1,
            ),
            0,
        ),
        near(
            lex("note", "message", "instruction", "instructions"),
            near(
                lex("to the", "for the", "to any", "for any", "to", "for"),
                lex("ai", "assistant", "llm", "model", "agent", "chatbot", "bot", "language model"),
                0,
            ),
            0,
        ),
        near(
            lex("ai", "llm", "assistant", "agent", "model", "chatbot"),
            lex(
                "reading this", "processing this", "summarizing this", "summarising this",
                "parsing this",
            ),
            1,
        ),
        lex(
            "dear ai", "dear assistant", "dear llm", "dear chatbot", "attention ai",
            "attention assistant", "attention llm", "attention agent",
        ),
    ),
    _s(
        "model_greeting",
        0.2,
        lex(
            "hello gpt", "hi gpt", "hey gpt", "hello chatgpt", "hallo gpt", "hallo chatgpt",
            "hello ai", "hallo ki",
        ),
    ),
    _s(
        "prior_erasure",
        0.6,
        near(
            near(
                alt(PRIOR, lex("last", "letzte*")),
                alt(INSTRUCTIONS, lex("message", "messages", "conversation", "nachricht*")),
                1,
            ),
            lex(
                "never happened", "did not happen", "didn't happen", "never existed",
                "does not exist", "doesn't exist", "never was", "nie passiert",
                "nicht existiert", "is void", "is cancelled", "is canceled",
            ),
            3,
        ),
    ),
    _s(
        "confidential_dump",
        0.3,
        near(
            lex(
                "show", "reveal", "display", "print", "list", "dump", "output", "give me",
                "zeige", "zeig", "gib", "verrate", "liste", "ausgeben",
            ),
            lex(
                "all confidential", "confidential data", "confidential information",
                "all internal data", "internal data", "all secret", "secret data",
                "vertrauliche*", "geheime* daten", "interne* daten",
            ),
            3,
        ),
    ),
    _s(
        "exfiltration",
        0.5,
        near(
            lex(
                "send", "forward", "email", "e-mail", "mail", "post", "upload", "transmit",
                "exfiltrate", "leak", "sende", "schicke", "leite", "envia", "envoie",
            ),
            lex(
                "conversation history", "chat history", "message history", "the conversation",
                "every email", "all emails", "all the emails",
                "all messages", "all files", "all documents", "all contacts", "the inbox",
                "passwords", "password", "credentials", "api keys", "api key", "secrets",
                "access tokens", "user's", "the user's", "personal data", "user data",
                "private data", "your system prompt", "your instructions",
            ),
            5,
        ),
    ),
    _raw(
        "markdown_exfiltration",
        0.6,
        r"!\[[^\]\n]{0,100}\]\(https?://[^)\s]{1,200}[?&][^)\s=]{1,50}=[^)\s]{0,200}[{<\[$]",
    ),
    _s(
        "destructive_agent_action",
        0.35,
        near(
            lex("delete", "erase", "wipe", "destroy", "drop", "remove", "losche", "loschen"),
            lex(
                "all the data", "all data", "all the files", "all files", "the database",
                "a database", "all emails", "all records", "everything you have access to",
                "alle daten",
            ),
            3,
        ),
    ),
)
"""Every signal; weights are the chance of an injection on that evidence alone."""
# fmt: on

_SIGNAL_INDEX = {signal.name: signal for signal in SIGNALS}

OBFUSCATION_SIGNALS: dict[str, float] = {
    "invisible_tag_characters": 0.8,
    "bidi_controls": 0.3,
    "zero_width_in_words": 0.2,
    "letter_spacing": 0.35,
    "letter_spacing_without_word_breaks": 0.25,
    "leetspeak": 0.3,
    "encoded_instructions": 0.8,
}
"""Signals about how the text is written rather than what it says."""

SIGNAL_WEIGHTS: dict[str, float] = {s.name: s.weight for s in SIGNALS} | OBFUSCATION_SIGNALS

# --- obfuscation ---------------------------------------------------------------------------

_TAG_CHARACTERS = compile_re2(r"[\x{E0000}-\x{E007F}]")
_BIDI = compile_re2(r"[\x{202A}-\x{202E}\x{2066}-\x{2069}]")
_ZERO_WIDTH_IN_WORD = compile_re2(r"\pL[\x{200B}-\x{200D}\x{2060}\x{FEFF}\x{00AD}]+\pL")
_SPACED_LETTERS = compile_re2(
    r"(?:^|[^0-9A-Za-z'\"])((?:[A-Za-z] {1,3}){9,}[A-Za-z])(?:[^0-9A-Za-z'\"]|$)"
)
_LEET_WORD = compile_re2(
    r"(?i)(?:^|[^a-z0-9])[a-z013457@$]*(?:[a-z][013457@$]|[013457@$][a-z])[a-z013457@$]*"
)
_BASE64_RUN = compile_re2(r"[A-Za-z0-9+/\-_]{20,}={0,2}")
_HEX_RUN = compile_re2(r"\b(?:[0-9A-Fa-f]{2}[ :]?){16,}\b")
_LEET = str.maketrans("013457@$", "oieastas")
_MULTI_SPACE = re.compile(r" {2,}")

MAX_DECODED_PAYLOADS = 8
"""Encoded runs decoded per text: enough for real payloads, bounded for hostile input."""
MAX_PAYLOAD_CHARS = 16384


def _collapse_spacing(run: str) -> str:
    """`I G N O R E  A L L` -> `IGNORE ALL`: single spaces join letters, wider ones part words."""
    return " ".join(word.replace(" ", "") for word in _MULTI_SPACE.split(run))


def _readable(data: bytes) -> str | None:
    """Decoded bytes as text if they read like language (mostly letters and spaces)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if len(text) < 8 or " " not in text:
        return None
    printable = sum(c.isalpha() or c in " .,:;!?'\"-" for c in text)
    return text if printable >= 0.8 * len(text) else None


def decoded_payloads(text: str) -> Iterator[str]:
    """Readable text hidden in base64 or hex runs of `text`, at most `MAX_DECODED_PAYLOADS`."""
    found = 0
    for regex, decode in ((_BASE64_RUN, _decode_base64), (_HEX_RUN, _decode_hex)):
        for match in regex.finditer(text):
            if found >= MAX_DECODED_PAYLOADS:
                return
            run = match.group()
            if len(run) > MAX_PAYLOAD_CHARS:
                continue
            decoded = decode(run)
            if decoded is not None:
                found += 1
                yield decoded


def _decode_base64(run: str) -> str | None:
    stripped = run.rstrip("=")
    padded = stripped + "=" * (-len(stripped) % 4)
    try:
        data = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        return None
    return _readable(data)


def _decode_hex(run: str) -> str | None:
    digits = "".join(c for c in run if c not in " :")
    try:
        return _readable(bytes.fromhex(digits))
    except ValueError:
        return None


# --- the detector ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InjectionAssessment:
    """The detector's verdict on one text: a score and the signals it rests on."""

    score: float
    signals: tuple[str, ...]


@runtime_checkable
class InjectionClassifier(Protocol):
    """A heavier prompt-injection classifier the pipeline can consult besides the signals.

    Implementations wrap a model the operator provides (loaded from disk at start-up, never
    downloaded at run time). `score` returns the probability (0..1) that `text` is an
    injection; it may raise, and the pipeline turns that into a `GuardrailError` so the
    gateway's failureMode applies.
    """

    name: str

    def score(self, text: str) -> float:
        """The probability that `text` is a prompt injection."""
        ...


def combine(weights: Iterable[float]) -> float:
    """Independent evidence combined (noisy-or): 1 - prod(1 - w). No evidence scores 0."""
    remaining = 1.0
    for weight in weights:
        remaining *= 1.0 - weight
    return 1.0 - remaining


class InjectionDetector:
    """The signal set, compiled once, and optionally the learned model that weighs them.

    With a `model`, the score is the model's (n-grams of the text plus a learned weight per
    fired signal); without one, the noisy-or of the signals' hand-set weights. `assess` is
    pure and safe to share between threads.
    """

    __slots__ = ("_cased", "_cased_set", "_lower", "_lower_set", "model")

    def __init__(
        self, signals: Sequence[Signal] = SIGNALS, model: LinearInjectionModel | None = None
    ) -> None:
        self._lower = tuple(s for s in signals if not s.cased)
        self._cased = tuple(s for s in signals if s.cased)
        self._lower_set = compile_set([s.pattern for s in self._lower])
        self._cased_set = compile_set([s.pattern for s in self._cased]) if self._cased else None
        self.model = model

    def signals_in(self, normalized: str) -> set[str]:
        """Names of the signals that occur in already-normalised text."""
        names = {self._lower[i].name for i in self._lower_set.Match(normalized.lower()) or ()}
        if self._cased_set is not None:
            names |= {self._cased[i].name for i in self._cased_set.Match(normalized) or ()}
        return names

    def assess(self, text: str) -> InjectionAssessment:
        """Score `text` (0..1) and name the signals found, including in obfuscated variants."""
        normalized = normalize(text)
        names = self.signals_in(normalized)
        if not text.isascii():
            names |= _hidden_character_signals(text)
        names |= self._variant_signals(normalized, names)
        if self.model is not None:
            score = self.model.score(text, names)
        else:
            score = combine(SIGNAL_WEIGHTS[name] for name in names)
        return InjectionAssessment(round(score, 4), tuple(sorted(names)))

    def _variant_signals(self, normalized: str, seen: set[str]) -> set[str]:
        found: set[str] = set()
        spaced = [m.group(1) for m in _SPACED_LETTERS.finditer(normalized)]
        if spaced:
            collapsed = " ".join(_collapse_spacing(run) for run in spaced)
            found |= (self.signals_in(collapsed) - seen) | {"letter_spacing"}
            # Decorative spacing (`C o m m o n   D a t a`) keeps wider gaps between words;
            # a hidden sentence is one long run of single-spaced letters.
            if any("  " not in run and len(run) >= 23 for run in spaced):
                found.add("letter_spacing_without_word_breaks")
        if _LEET_WORD.search(normalized):
            extra = self.signals_in(normalized.lower().translate(_LEET)) - seen
            if extra:
                found |= extra | {"leetspeak"}
        for payload in decoded_payloads(normalized):
            hidden = self.signals_in(normalize(payload))
            if combine(SIGNAL_WEIGHTS[name] for name in hidden) >= 0.3:
                found.add("encoded_instructions")
                break
        return found


def _hidden_character_signals(text: str) -> set[str]:
    found = set()
    if _TAG_CHARACTERS.search(text):
        found.add("invisible_tag_characters")
    if _BIDI.search(text):
        found.add("bidi_controls")
    if _ZERO_WIDTH_IN_WORD.search(text):
        found.add("zero_width_in_words")
    return found


_DEFAULT_DETECTOR: InjectionDetector | None = None


def default_detector() -> InjectionDetector:
    """The shared detector: `SIGNALS` with their hand-set weights, built on first use (compiling
    the signal set takes a while).

    The learned weights (`aigis.guardrails.learned`, rebuilt by `make train-guardrails`) are not
    the default yet: on sources held out of training they gain two points of recall over the
    hand-set weights (33.5 % against 31.3 % at 5 % false positives), but on text neither set was
    tuned on (2 KB chunks of package documentation) they flag 10.3 % against 0.7 %, because a single
    learned signal weight clears the threshold on its own. docs/guardrails.md has the figures.
    """
    global _DEFAULT_DETECTOR
    if _DEFAULT_DETECTOR is None:
        _DEFAULT_DETECTOR = InjectionDetector()
    return _DEFAULT_DETECTOR


def explain(signal_names: Iterable[str]) -> list[tuple[str, float]]:
    """The weight of each named signal, strongest first (for `aigis guard` and audit views)."""
    return sorted(((n, SIGNAL_WEIGHTS[n]) for n in signal_names), key=lambda p: (-p[1], p[0]))


__all__ = [
    "OBFUSCATION_SIGNALS",
    "SIGNALS",
    "SIGNAL_WEIGHTS",
    "InjectionAssessment",
    "InjectionClassifier",
    "InjectionDetector",
    "Signal",
    "combine",
    "default_detector",
    "explain",
    "normalize",
]
