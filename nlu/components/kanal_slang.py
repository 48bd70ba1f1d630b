"""A Rasa tokenizer that gives each token the standard form of chat slang as its lemma.

Runs inside the Rasa venv (Python 3.10, Rasa 3.6), not the gateway: the pipeline refers to it as
``kanal_slang.SlangTokenizer`` and ``nlu/rasa.py`` puts this folder on ``PYTHONPATH`` for
``rasa train`` and ``rasa run``.

Tokens keep their text and offsets (so entity spans and case features are untouched); only the
lemma changes, which is what ``CountVectorsFeaturizer`` reads (``use_lemma``, on by default).
The lexicon is indoNLP's colloquial Indonesian dictionary (Kamus Alay, ~4,300 entries) under the
gateway's own Jakarta list (``nlu/normalize.py``: Betawi words, address abbreviations), which
wins where the two disagree ("gg" is *gang* in an address, not *enggak*).
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

from rasa.engine.graph import ExecutionContext
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.tokenizers.tokenizer import Token
from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
from rasa.shared.nlu.training_data.message import Message

_STRETCH = re.compile(r"([a-z])\1{2,}")
_REDUP = re.compile(r"^([a-z]{2,})(?:2|-\1)$")  # "anak2", "anak-anak" -> "anak"

# Abbreviations in Jakarta addresses that the general lexicon gets wrong or lacks.
_ADDRESS: dict[str, str] = {
    "gg": "gang",
    "jl": "jalan",
    "jln": "jalan",
    "kel": "kelurahan",
    "kec": "kecamatan",
    "kelurahan": "kelurahan",
    "kecamatan": "kecamatan",
    "rt": "rt",
    "rw": "rw",
    "no": "nomor",
}


def _gateway_slang() -> dict[str, str]:
    """The gateway's own list (nlu/normalize.py), loaded by path: the Rasa venv has no ``nlu``."""
    path = Path(__file__).resolve().parent.parent / "normalize.py"
    spec = importlib.util.spec_from_file_location("kanal_normalize", path)
    if spec is None or spec.loader is None:  # pragma: no cover - file ships with the repo
        return {}
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return dict(module.SLANG)


def build_lexicon(use_indonlp: bool = True) -> dict[str, str]:
    lexicon: dict[str, str] = {}
    if use_indonlp:
        from indoNLP.preprocessing.slang_data import SLANG_DATA

        lexicon.update({k.lower(): v.lower() for k, v in SLANG_DATA.items()})
    lexicon.update(_gateway_slang())
    lexicon.update(_ADDRESS)
    return lexicon


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER, is_trainable=False)
class SlangTokenizer(WhitespaceTokenizer):
    """Whitespace tokens; lemma = lower-cased, un-stretched, de-slanged form."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {**WhitespaceTokenizer.get_default_config(), "use_indonlp": True}

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.lexicon = build_lexicon(bool(self._config.get("use_indonlp", True)))
        self._cache: dict[str, str] = {}

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> SlangTokenizer:
        return cls(config)

    def standard(self, word: str) -> str:
        hit = self._cache.get(word)
        if hit is not None:
            return hit
        w = word.lower()
        if w not in self.lexicon:
            w = _STRETCH.sub(r"\1", w)
        m = _REDUP.match(w)
        if m and w not in self.lexicon:
            w = m.group(1)
        out = self.lexicon.get(w, w)
        if len(self._cache) < 50_000:
            self._cache[word] = out
        return out

    def tokenize(self, message: Message, attribute: str) -> list[Token]:
        tokens = super().tokenize(message, attribute)
        for t in tokens:
            t.lemma = self.standard(t.text)
        return tokens

    @staticmethod
    def not_supported_languages() -> list[str] | None:
        return ["zh", "ja", "th"]
