"""Scrub personal data from free text before it leaves Kanal (``kanal scrub`` runs exactly this).

Two kinds of personal value, found in two ways:

- **identifiers with a shape**: phone numbers (``phonenumbers`` for every Indonesian shape it
  knows, plus mobiles and numbers after a contact word such as "wa"/"hp"/"telp"), e-mail
  addresses, NIK/KK (16 digits, grouped or not), NPWP, bank accounts named as such, @handles
  (dots and underscores included) and profile links (t.me, wa.me, instagram.com, …);
- **names**, found by the *role* a phrase plays rather than by a list of phrasings: after a
  self-reference ("nama saya", "sy", "gw", "ini … dari"), a reference to the reporter's
  household ("suami saya"), a label ("atas nama", "a.n.", "pelapor:", "dari:") or a sign-off
  ("Hormat saya,", "Salam,"), and in a signature line at the end. What counts as a name there
  is a run of words that are not ordinary words: indoNLP's Indonesian function words and chat
  slang, plus the complaint vocabulary of ``bridge/data/common_words.txt``
  (``scripts/make_lexicon.py``). Capitalised words pass as names; a lowercase word passes only
  where the context is strong ("nama saya budi") or it is no ordinary word ("sy agus"); after
  a self-reference that may as well go on with a verb ("kami mencatat"), PySastrawi's
  dictionary and stemmer tell words from names;
- **names that nothing announces**, by a list of Indonesian given and family names
  (``bridge/data/names_id.txt``, made from names-dataset by ``scripts/make_names.py``): a
  capitalised run with a listed name ("Kemarin Hendra Gunawan lapor"), a name after a form of
  address ("Bu Marni", "pakde sugeng"), a chat's last line that is only a name ("…\nwulan").
  Not where the run belongs to a place (a place word before it: "Jl. KH Hasyim Ashari",
  "Bengkel Las Karya Mandiri"), is a place of Jakarta (``areaid``), or is the hero of a main road
  written without "Jl." ("macet di Gatot Subroto"). A message in capitals is read lowercased too.

What describes the problem stays: streets named after people (Jl. Ahmad Yani), officials by
role (Pak RT, Bu Camat), landmarks, plates, RT/RW, house numbers, tracking numbers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from importlib import resources

import phonenumbers
from indoNLP.preprocessing.slang_data import SLANG_DATA
from indoNLP.preprocessing.stopwords_data import STOPWORDS

PHONE = "[nomor telepon]"
EMAIL = "[email]"
NIK = "[NIK]"
NPWP = "[NPWP]"
ACCOUNT = "[nomor rekening]"
HANDLE = "[akun]"
NAME = "[nama]"

# ---- identifiers with a shape ------------------------------------------------------------------
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PROFILE = re.compile(
    r"(?:https?://)?(?:www\.)?(?:t\.me|telegram\.me|wa\.me|api\.whatsapp\.com|instagram\.com|"
    r"instagr\.am|facebook\.com|fb\.com|m\.facebook\.com|tiktok\.com|twitter\.com|x\.com|"
    r"linkedin\.com/in)(?:/[^\s,;)]*)?",
    re.I,
)
# "IG: putueka.official", "tiktok = rina_dwi": an account named by its platform, without "@"
_LABELLED_HANDLE = re.compile(
    r"\b(?:ig|instagram|tiktok|tele|telegram|twitter|fb|facebook|line|threads)\s*[:=]\s*@?"
    r"([A-Za-z0-9_](?:[A-Za-z0-9_.]{1,28}[A-Za-z0-9_]))",
    re.I,
)
_HANDLE = re.compile(r"(?<![\w@.])@[A-Za-z0-9_](?:[A-Za-z0-9_.]{0,28}[A-Za-z0-9_])?")
_NIP = re.compile(r"(?<![\d])\d{8}[ .-]?\d{6}[ .-]?\d[ .-]?\d{3}(?![\d])")  # civil servants
_ID16 = re.compile(r"(?<![\d])\d(?:[ .-]?\d){15}(?![\d])")  # NIK, KK
_NPWP = re.compile(r"(?<![\d])\d{2}[.\s]?\d{3}[.\s]?\d{3}[.\s]?\d[.\s-]?\d{3}[.\s]?\d{3}(?![\d])")
_ACCOUNT = re.compile(
    r"\b(?:no(?:mor)?\.?\s*)?(?:rek(?:ening)?|norek|a/c|account)\b\.?\s*(?:bank\s+)?"
    r"(?:[A-Za-z]{2,12}\s*){0,3}(?:no\.?\s*)?[:.]?\s*(\d[\d .-]{4,24}\d)",
    re.I,
)
_MOBILE = re.compile(r"(?<![\d])(?:\+?62|0)[\s.-]?\(?8\d\)?(?:[\s.-]?\d){6,11}(?!\d)")
_PLUS62 = re.compile(r"\+\s?62(?:[\s.()-]*\d){7,12}(?!\d)")
_LANDLINE = re.compile(r"(?<![\d])\(?0\d{1,3}\)?[\s.-]?\d{3,4}[\s.-]?\d{3,5}(?!\d)")
_CONTACT_CUE = re.compile(
    r"\b(?:wa|whatsapp|hp|handphone|telp|tlp|tlpn|telepon|telpon|tel|kontak|hubungi|hub|call|"
    r"sms|ponsel|no\.?\s*hp|nomor\s*hp|nomor)\b[^\d\n]{0,14}(\+?\d[\d\s().-]{6,18}\d)",
    re.I,
)


# An institution's account, not a person's: the city, its offices, police, utilities.
_OFFICIAL = re.compile(
    r"dki|pemprov|pemkot|pemkab|dinas|sudin|satpol|polda|polres|polisi|tmc|pln|pdam|kominfo|"
    r"humas|bpbd|damkar|transjakarta|bmkg|kelurahan|kecamatan|kemen|^info|^pt[A-Z]|^mrt|^krl|"
    r"^kai\d|^lrt",
    re.I,
)
# A government address (aduan@jakarta.go.id) is nobody's personal e-mail.
_INSTITUTION = re.compile(r"@(?:[\w-]+\.)*go\.id$", re.I)


def _handle(m: re.Match[str]) -> str:
    return m.group(0) if _OFFICIAL.search(m.group(0)[1:]) else HANDLE


def _digits(s: str) -> int:
    return sum(c.isdigit() for c in s)


def _phones(text: str) -> str:
    spans: list[tuple[int, int]] = []
    for m in phonenumbers.PhoneNumberMatcher(text, "ID", leniency=phonenumbers.Leniency.VALID):
        spans.append((m.start, m.end))
    for pattern in (_MOBILE, _PLUS62):
        spans += [(m.start(), m.end()) for m in pattern.finditer(text)]
    spans += [
        (m.start(), m.end()) for m in _LANDLINE.finditer(text) if 9 <= _digits(m.group()) <= 12
    ]
    spans += [
        (m.start(1), m.end(1)) for m in _CONTACT_CUE.finditer(text) if _digits(m.group(1)) >= 8
    ]
    return _replace(text, spans, PHONE)


def _replace(text: str, spans: list[tuple[int, int]], placeholder: str) -> str:
    """Replace the (possibly overlapping) spans, each merged run once."""
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    for start, end in reversed(merged):
        text = text[:start] + placeholder + text[end:]
    return text


# ---- names ------------------------------------------------------------------------------------
_HONORIFIC = (
    r"(?:bapak|bpk|pak|ibu|bu|mas|mbak|mba|bang|abang|kak|sdr|sdri|saudara|saudari|tn|ny|nn|"
    r"h|hj|haji|hajjah|ust|ustadz|ustazah|drs|dra|dr|ir|prof|kh|raden|r|drg|apt|mpok|oma|opa|"
    r"engkong|kang|teh|teteh|uda|uni|cak|ning|bli|koh|cik|ci|ko|bro|sis|si|pdt|romo|purn|"
    r"pakde|pakdhe|bude|budhe|neng|mbah|cici|enci|ncing|babe|oom|tante|om|moh|muh|mhd|mochd|"
    r"bi|bibi|mak|mr|mrs|ms|miss|bp|bpk|rangkayo|datuak|datuk|daeng|mbok|mang|uwak|wak|"
    r"ceu|gek|aa|akong|amang|inang|tulang|namboru|puang|habib|lik)\.?"
)
_DEGREE = re.compile(
    r"(?:\s*,?\s*(?:S\.?\s?[A-Z][A-Za-z]{0,5}\.?(?:\s?[A-Z][a-z]{0,4}\.?)?|M\.?\s?[A-Z][A-Za-z]{0,5}"
    r"\.?|Ph\.?\s?D\.?|MBA|Lc\.?|A\.?\s?Md\.?(?:\s?[A-Z][A-Za-z]{0,4}\.?)?|Sp\.?\s?[A-Z]{1,4}\.?))+"
)
_TOKEN = re.compile(r"[A-Za-z][A-Za-z'’-]*\.?")
_SEP = re.compile(r"[ \t]+")
_HONORIFIC_RE = re.compile(_HONORIFIC + r"$", re.I)

# Strong: a name must follow. Weak: a name may follow (it must not be an ordinary word).
_STRONG = re.compile(
    r"\b(?:nama\s+(?:saya|sy|aku|ku|gw|gue|ane|kami|lengkap|pelapor)(?:\s+adalah)?|namaku|"
    r"nama\s*:|bernama|atas\s+nama(?:\s+kepala\s+keluarga)?|a\s?\.\s?n\b\.?|a/n|\ban\.|pelapor\s*:?|dilaporkan\s+oleh|"
    r"diwakili\s+oleh|yang\s+(?:melapor|lapor)|yg\s+lapor|dari\s*:|from\s*:|data\s+diri\s*:|identitas\s*:|name\s*:|dari\s+warga\s*:|oleh\s*:|pengirim\s*:|"
    r"cp\s*:|contact\s+person\s*:?|ttd\.?|tertanda|perkenalkan,?(?:\s+(?:saya|nama\s+saya))?|"
    r"dengan\s+(?:bapak|ibu|bpk|sdr|sdri|saudara|saudari)|selaku\s+pelapor|lapor\s+dari|(?:salam|horas|laporan|pesan|kiriman|kabar)\s+dari(?=\s+[a-z]+(?:\s+[a-z]+){0,2}\s*(?:$|[,.(\n]))|"
    r"my\s+name\s+is|i'?m|i\s+am|this\s+is|it'?s|narahubung\s*:?|kontak\s*:|"
    r"panggil(?:\s+(?:aja|saja))?(?:\s+(?:bang|mas|mbak|kak|pak|bu))?|nama(?=\s+[A-Z])|"
    r"(?:lapor|dilaporkan|ditulis|dikirim)\s+oleh|yang\s+bertanda\s+tangan\s*:?)(?:(?<=[:.])|\b)\s*[:,]?\s*",
    re.I,
)
# A reply that addresses the reporter: "Yth. Bapak Cecep Hidayat,"
_ADDRESSED = re.compile(
    r"\b(?:yth|kepada)\.?\s+(?=(?:bapak|ibu|bpk|sdr|sdri|saudara|saudari)\.?\s)", re.I
)
# An appositive after a role: "saya selaku Ketua RT 04, Hendra Gunawan, melaporkan"
_ROLE_APPOSITIVE = re.compile(r"\bselaku\b[^,\n]{2,70},\s*", re.I)
# "Laporan: Ferdinand", "Yang nulis: Dimas": who wrote it (a name, not "Laporan: Rumah Makan …")
_WRITER_LABEL = re.compile(r"\b(?:laporan|lapor|yang\s+nulis|penulis)\s*:\s*", re.I)
# "Sekretaris: Lilis Suryani", "Ketua RT 05 : H. Darsono": a role's label, then who holds it
_ROLE_LABEL = re.compile(
    r"(?:^|\n)[ \t]*(?:[-*•]\s*)?(?:ketua|wakil\s+ketua|sekretaris|bendahara|humas|koordinator|"
    r"pengurus|penanggung\s+jawab|pj|pic|narahubung)(?:\s+(?:rt|rw)\.?\s*\d{0,3})?[ \t]*:[ \t]*",
    re.I,
)
# "Lukman di sini", "Budi here": a name that opens the message
_OPENING = re.compile(r"(?:^|\n)\s*(?=[A-Z][a-z]+(?:\s+[A-Z][a-z]+){0,2}\s+(?:di\s+sini|here)\b)")
# "(Hendro)", "(Bu Yanti)": a name in brackets after a contact or at the end of a line
_BRACKETED = re.compile(r"\((?=[^()\n]{2,40}\))")
_HOUSEHOLD = (
    r"(?:suami|istri|isteri|anak|anak-anak|ibu|bapak|ayah|papa|mama|adik|adek|kakak|abang|"
    r"mertua|nenek|kakek|om|tante|paman|bibi|keponakan|cucu|keluarga)"
)
_WEAK = re.compile(
    r"\b(?:saya|sy|aku|aq|gw|gue|gua|ane|ana|aye|kulo|abdi|ambo|awak|ogut|ini|iki|kami|beta)\s*,?\s+"
    r"(?:(?:adalah|dengan|dgn|dg|si)\s+)?"
    r"|\b" + _HOUSEHOLD + r"(?:\s+ipar)?\s+(?:saya|sy|ku|aku|gw|gue|kami|dari)\s*,?\s+"
    r"(?:(?:si|yaitu|yakni)\s+)?",
    re.I,
)
_SIGNOFF = re.compile(
    r"\b(?:hormat\s+(?:saya|kami)|salam(?:\s+(?:hormat|sejahtera|hangat))?|wassalam\S*|"
    r"terima\s*kasih|terimakasih|makasih|trims|tks|thanks|thank\s+you|thx|regards|rgds|best|"
    r"cheers|salam\s+hangat|"
    r"best\s+regards|tabik|matur\s+nuwun|nuhun|sekian|ttd(?:\s+warga)?)"
    r"\s*[,.!]*[ \t]*(?:\n[ \t]*)?(?:[-–(][ \t]*)?",
    re.I,
)
# A dash signature at the very end: "... makasih min -nita"
_DASH_SIGNATURE = re.compile(
    r"(?:^|\s)[-–—~]{1,2}\s?(?=[A-Za-z][a-z]+(?:\s+[A-Z][a-z]*\.?)*\s*(?:$|\[|\(|/|,|\.\s*\[))"
)
# "Lie Tjeng Hwa <[email]>": a name before an address in a mail header or signature
_BEFORE_ADDRESS = re.compile(
    r"(?:^|\n|:\s*|,\s*|;\s*)(?=[A-Z][\w'.-]*(?:\s+[A-Z][\w'.-]*){0,4}\s*<)"
)
# "Bagas Permana @bagas_prmn": a display name before a handle, at the start of a line
_BEFORE_HANDLE = re.compile(r"(?:^|\n)(?=[A-Z][a-z]+(?:\s+[A-Z][a-z]+){0,3}\s+(?:\[akun\]|@))")
# "[19.02, 5/3/2025] Sutrisno Wibowo: pak ini …": the sender of a forwarded chat log
_CHAT_SENDER = re.compile(r"(?:^|\n)\[[^\]\n]{4,30}\]\s*(?=[^\n:]{2,40}:)")
# "Gilang 🏍️ @gilang_r · 1j": a display name, maybe with an emoji, before a handle
_DISPLAY_NAME = re.compile(
    r"(?:^|\n)(?=[A-Z][\w'-]*(?:\s+[A-Z][\w'-]*){0,3}[^\w\n@\[]{0,8}(?:&[^\n\[@]{0,15})?"
    r"(?:\[akun\]|@))"
)
# "… Hendrik [nomor telepon]", "-Nurul, [nomor telepon]": a name just before a phone number
_BEFORE_PHONE = re.compile(
    r"(?<![\w.])((?:[A-Z][\w'-]*\.?\s+){0,3}[A-Z][\w'-]*\.?)[ ,:]*"
    r"(?:(?:hp|wa|telp|tlp)\.?\s*:?\s*)?" + re.escape("[nomor telepon]")
)
# "saya pemilik toko di sini, Lukas Sutanto" / "sy mamanya, sinta": a self-description and then
# the name, after a comma
_SELF_APPOSITIVE = re.compile(r"\b(?:saya|sy|aku|gw|gue)\b[^,.\n]{2,40},\s*", re.I)
# numbered lists of signers ("1. Hendra Wijaya (RT 02)") after "bertanda tangan" / a petition
_SIGNER_LIST = re.compile(r"(?:^|\n)[ \t]*\d{1,2}[.)][ \t]+")
_PETITION = re.compile(
    r"bertanda\s+tangan|petisi|daftar\s+(?:warga|nama|keluarga)|nama\s+warga|"
    r"(?:data|anggota)\s+keluarga|warga\s+(?:yang\s+)?terdampak|korban",
    re.I,
)
_ROLE_WORDS = frozenset(
    [
        "rt",
        "rw",
        "lurah",
        "camat",
        "walikota",
        "wali",
        "gubernur",
        "bupati",
        "satpol",
        "satpam",
        "polisi",
        "petugas",
        "ketua",
        "kepala",
        "sekretaris",
        "bendahara",
        "pengurus",
        "dinas",
        "warga",
        "admin",
        "min",
        "mimin",
        "kak",
        "gan",
        "sis",
        "bro",
        "pak",
        "bu",
        "pendeta",
        "pastor",
        "pimpinan",
        "pengasuh",
        "direktur",
        "manajer",
        "koordinator",
        "wakil",
        "anggota",
        "seksi",
        "humas",
        "tim",
        "kelurahan",
        "kecamatan",
        "kel",
        "kec",
        "kota",
        "jakarta",
        "jl",
        "jln",
        "jalan",
        "gg",
        "gang",
        "komplek",
        "perumahan",
        "blok",
        "masjid",
        "mushola",
        "gereja",
        "vihara",
        "pura",
        "sekolah",
        "sdn",
        "smpn",
        "sman",
        "yayasan",
        "pt",
        "cv",
        "toko",
        "jemaat",
        "majelis",
        "paguyuban",
        "forum",
        "karang",
        "taruna",
        "posyandu",
        "pkk",
        "dkm",
        "ressort",
        "umat",
    ]
)


@lru_cache(maxsize=1)
def ordinary_words() -> frozenset[str]:
    """Words that are not names: function words, chat slang, the complaint vocabulary."""
    words = set(STOPWORDS) | set(SLANG_DATA)
    words.update(w for v in SLANG_DATA.values() for w in v.split())
    own = resources.files("bridge").joinpath("data/common_words.txt").read_text("utf-8")
    words.update(w.strip() for w in own.splitlines() if w.strip())
    return frozenset(w.lower() for w in words) | _ROLE_WORDS


_SUFFIXES = ("kan", "an", "i", "nya", "lah", "kah", "pun", "ku", "mu")
_PREFIXES = (
    "meng",
    "meny",
    "mem",
    "men",
    "me",
    "di",
    "ber",
    "be",
    "ter",
    "ke",
    "se",
    "peng",
    "pem",
    "pen",
    "pe",
    "per",
)


@lru_cache(maxsize=1)
def _dictionary() -> tuple[frozenset[str], Callable[[str], str]]:
    """PySastrawi's Indonesian root words and its stemmer ("mencatat" → "catat")."""
    from Sastrawi.Stemmer.StemmerFactory import StemmerFactory

    raw = resources.files("Sastrawi").joinpath("Stemmer/data/kata-dasar.txt").read_text("utf-8")
    return frozenset(raw.split()), StemmerFactory().create_stemmer().stem


@lru_cache(maxsize=8192)
def _indonesian_word(low: str) -> bool:
    """A word made of a root of the dictionary ("mencatat"), or a root that is no listed name
    ("catat", not "agus" or "wulan")."""
    roots, stem = _dictionary()
    if low in _raw_names():
        return False
    return low in roots or stem(low) in roots


def _ordinary(low: str, *, exact: bool = False, dictionary: bool = True) -> bool:
    """An ordinary word, or (``exact`` off) one made of an ordinary root ("laporkan",
    "dibersihkan") or a word of the dictionary ("mencatat"). Capitalised words are only looked
    up as they are: "Hasan" is no "has-an"."""
    common = ordinary_words()
    if low in common:
        return True
    if exact:
        return False
    if dictionary and _indonesian_word(low):
        return True
    roots = {low}
    roots |= {low[: -len(x)] for x in _SUFFIXES if low.endswith(x) and len(low) - len(x) >= 3}
    for root in list(roots):
        roots |= {
            root[len(x) :] for x in _PREFIXES if root.startswith(x) and len(root) - len(x) >= 3
        }
    return any(r in common for r in roots)


_REST_OF_NAME = re.compile(r"(?:[ \t]+[A-Z][\w'’.-]*){0,3}[ \t]*(?:,[^\n]*)?(?:\n|$| {3,})")


_NEXT_WORD = re.compile(r"[ \t]+([A-Z][a-z'’-]+)\b")


def _next_is_name(text: str, pos: int) -> bool:
    """Whether the next word is a capitalised word that is no ordinary one ("Sari Anggraini")."""
    m = _NEXT_WORD.match(text, pos)
    return m is not None and not _ordinary(m.group(1).lower(), exact=True)


def _name_line(text: str, pos: int) -> bool:
    """Whether the line goes on with capitalised words only (a signature: "Dimas Wicaksono")."""
    return _REST_OF_NAME.match(text, pos) is not None


def _name_end(
    text: str, start: int, *, strong: bool, need_capital: bool, loose: bool = False
) -> int:
    """End of the name at ``start`` (``start`` when there is none): honorifics, 1-4 name
    words, degrees. ``strong``: the first word may be an ordinary one if capitalised
    ("Nama saya Indah"). ``loose``: the context may as well go on with a plain word ("kami
    mencatat"), so a lowercase word of the dictionary is no name there."""
    pos = start
    end = start
    words = 0
    capitalised_name = False
    titled = False
    while words < 4:
        m = _TOKEN.match(text, pos)
        if not m:
            break
        raw = m.group(0)
        bare = raw.rstrip(".").replace("’", "'")
        low = bare.lower()
        honorific = _HONORIFIC_RE.match(raw) is not None and words == 0
        if not honorific:
            capital = bare[:1].isupper()
            if low in _ROLE_WORDS or (need_capital and not capital):
                break
            if low in STOPWORDS and not (strong and words == 0 and capital):
                break
            if _ordinary(low, exact=capital, dictionary=loose) and not (
                capital
                and (
                    words > 0
                    or strong
                    or titled
                    or (need_capital and _name_line(text, m.end()))
                    or _next_is_name(text, m.end())
                )
            ):
                break
            if words > 0 and capitalised_name and not capital:
                break  # "Budi mau lapor": a capitalised name ends at a lowercase word
            capitalised_name = capitalised_name or capital
            words += 1
        titled = titled or honorific
        if raw.endswith(".") and not honorific and len(bare) > 1:
            end = m.end() - 1  # "bernama Suryani. Tanggul ...": the sentence ends the name
            break
        end = m.end()
        gap = _SEP.match(text, m.end())
        if not gap:
            break
        pos = gap.end()
    if words == 0:
        return start
    deg = _DEGREE.match(text, end)
    return deg.end() if deg else end


def _signature_lines(text: str) -> list[tuple[int, int]]:
    """The last lines of a letter that are only a name (with titles)."""
    spans: list[tuple[int, int]] = []
    lines = text.split("\n")
    if len(lines) < 2:
        return spans
    offset = len(text)
    for line in reversed(lines[-3:]):
        offset -= len(line)
        stripped = line.strip()
        if stripped and 1 <= len(stripped.split()) <= 7 and not any(c.isdigit() for c in stripped):
            lead = offset + (len(line) - len(line.lstrip()))
            end = _name_end(text, lead, strong=False, need_capital=True)
            if end > lead and text[end : offset + len(line)].strip(" ,.") == "":
                spans.append((lead, end))
        offset -= 1  # the newline
    return spans


# "makasih, tono" / "ttd warga (ucup)": a sign-off's name at the very end, as typed
_LAST_WORDS = re.compile(r"(?:warga\s+)?\(?[a-z][a-z'-]+(?:\s+[a-z][a-z'-]+)?\)?\s*[.!]*\s*$", re.I)
_SELF_OR_HOUSEHOLD = re.compile(r"\b(?:saya|sy|aku|gw|gue|kami|" + _HOUSEHOLD[3:], re.I)
_AND = re.compile(r"\s+(?:dan|&|serta|atau|sama|and|or)\s+|\s*/\s*|\s*&\s*")
_INNER_LEAD = re.compile(r"(?:keluarga|panggil(?:\s+saja)?|alias|a\.k\.a\.?)\s+", re.I)


def _name_start(text: str, pos: int) -> int:
    """Inside brackets, skip a lead-in: "(keluarga Bapak X)", "(panggil saja X)"."""
    m = _INNER_LEAD.match(text, pos)
    return m.end() if m else pos


def _names(text: str) -> str:
    spans = _name_spans(text)
    if _shouting(text):  # "DILAPORKAN OLEH ... DAN ISTRI, LUH SUCIANI": read it as typed lower,
        spans += _name_spans(text.lower())
        titled = text.title()  # and look its listed names up as if each word were capitalised
        if len(titled) == len(text):
            spans += _unannounced(titled)
    return _replace(text, spans, NAME)


def _shouting(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    upper = sum(c.isupper() for c in letters)
    return len(letters) >= 12 and upper >= 0.7 * len(letters) and len(text.lower()) == len(text)


def _name_spans(text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    for pattern, strong, capital in (
        (_STRONG, True, False),
        (_WEAK, False, False),
        (_SIGNOFF, False, True),
        (_ROLE_APPOSITIVE, False, True),
        (_ROLE_LABEL, False, True),
        (_WRITER_LABEL, False, True),
        (_OPENING, False, True),
        (_DASH_SIGNATURE, False, False),
        (_BEFORE_ADDRESS, False, True),
        (_BEFORE_HANDLE, False, True),
        (_SELF_APPOSITIVE, False, False),
        (_ADDRESSED, False, True),
        (_CHAT_SENDER, False, False),
        (_DISPLAY_NAME, False, True),
    ):
        for m in pattern.finditer(text):
            lower_ok = pattern is _SIGNOFF and _LAST_WORDS.match(text, m.end()) is not None
            end = _name_end(
                text,
                m.end(),
                strong=strong,
                need_capital=capital and not lower_ok,
                loose=pattern in (_WEAK, _SELF_APPOSITIVE),
            )
            if end > m.end():
                spans.append((m.end(), end))
    for m in _BRACKETED.finditer(text):
        inner = _name_start(text, m.end())
        end = _name_end(text, inner, strong=False, need_capital=True)
        close = text.find(")", m.end())
        before = text[max(0, m.start() - 40) : m.start()]
        after_contact = PHONE in before or _SELF_OR_HOUSEHOLD.search(before[-25:]) is not None
        if after_contact:  # "(agus)" after a number: a chat name, lowercase as typed
            end = max(end, _name_end(text, inner, strong=False, need_capital=False))
        at_line_end = text[close + 1 :].split("\n", 1)[0].strip(" .,") == ""
        tail = text[end:close]
        if (
            end > inner
            and (tail.strip(" ,") == "" or tail.lstrip().startswith(","))
            and (after_contact or at_line_end)
        ):
            spans.append((inner, end))
    # "Raka dan Salsa": a second name joined to one just found
    for _, end in list(spans):
        joined = _AND.match(text, end)
        if joined:
            more = _name_end(text, joined.end(), strong=False, need_capital=True)
            if more > joined.end():
                spans.append((joined.end(), more))
    for m in _BEFORE_PHONE.finditer(text):
        # the longest tail of the capitalised run that is a name: "… sore. Ibu Hasanah [hp]"
        run = m.group(1)
        for cut in [0, *[i + 1 for i, c in enumerate(run) if c == " "]]:
            start = m.start(1) + cut
            end = _name_end(text, start, strong=False, need_capital=True)
            if end >= m.end(1) - 1 and end > start:
                spans.append((start, end))
                break
    if _PETITION.search(text):
        for m in _SIGNER_LIST.finditer(text):
            end = _name_end(text, m.end(), strong=False, need_capital=True)
            if end > m.end():
                spans.append((m.end(), end))
    spans += _signature_lines(text)
    spans += _closing_block(text)
    for m in _BEFORE_THREAD.finditer(text):
        end = _name_end(text, m.start(1), strong=False, need_capital=True)
        if end >= m.end(1):
            spans.append((m.start(1), end))
    spans += _unannounced(text)
    spans += _shouted_names(text)
    spans = [_with_initials(text, a, b) for a, b in spans]
    spans += _last_line(text)
    spans += _elsewhere(text, spans)
    return spans


# "tolong dicek ya\nrahmat", "makasih kak, putri", "- tomi ([akun])": a chat's last line that
# is only a listed name (any case), maybe after a thanks or a dash
_LAST_LINE = re.compile(
    r"(?:^|\n)[ \t]*(?:(?:makasih|terima\s*kasih|thx|tks|trims|thanks|salam|wassalam)\w*"
    r"(?:\s+(?:kak|min|pak|bu|mas|mbak|bang))?\s*[,.!]*\s*|[-–—~]+\s*|from\s*:\s*)?"
    r"([A-Za-z][a-z'’-]+(?:[ \t]+[A-Za-z][a-z'’-]+){0,2})[ \t]*[.!~]*[ \t]*"
    r"(?:\(?\[(?:akun|nomor telepon|email)\]\)?[ \t]*)*$"
)


_TRAILING_PLACEHOLDERS = re.compile(r"(?:\n[ \t]*\[(?:akun|nomor telepon|email)\][ \t]*)+$")


def _last_line(text: str) -> list[tuple[int, int]]:
    body = _TRAILING_PLACEHOLDERS.sub("", text.rstrip())  # "wulan\n[nomor telepon]"
    m = _LAST_LINE.search(body)
    if not m or ("\n" not in text.strip() and m.group(0).strip()[:1] not in "-–—~"):
        return []
    words = m.group(1).lower().split()
    common = ordinary_words()
    if all(w in _raw_names() and w not in common for w in words):
        return [(m.start(1), m.end(1))]
    return []


# ---- names that no phrase announces -----------------------------------------------------------
def _wordset(words: str) -> frozenset[str]:
    return frozenset(words.split())


@lru_cache(maxsize=1)
def listed_names() -> frozenset[str]:
    """Indonesian given and family names (``bridge/data/names_id.txt``, from names-dataset by
    ``scripts/make_names.py``) that are no ordinary word: "marni", "siregar", not "indah"."""
    return (
        frozenset(
            n
            for n in _raw_names()
            if n not in _name_words()
            and not _ordinary(n, exact=True)
            and n not in _NOT_PERSONS
            and not _derived_word(n)
        )
        - place_words()
    )


_CIRCUMFIX = re.compile(r"^(?:per|pem|pen|peng|pe|ke|ber|ter|se|mem|men|meng|me|di)\w{3,}an$")


def _derived_word(low: str) -> bool:
    """An Indonesian word made of a root and a circumfix ("pertanian", "kelautan"), which a
    crawl of names can hold by mistake: never a name."""
    if not _CIRCUMFIX.match(low):
        return False
    roots, stem = _dictionary()
    root = stem(low)
    return root != low and root in roots


# Persons by trade or role, streets' and places' namesakes: no one's name in a complaint.
_NOT_PERSONS = _wordset(
    "ogah ojol ojek kurir satpam hansip linmas jukir preman polisi tentara dokter bidan "
    "mandor sopir supir kenek tukang haji hajah ustadz kyai kelian sudin kasudin kadis "
    "januari februari maret april mei juni juli agustus september oktober november desember "
    "senin selasa rabu kamis jumat jum'at sabtu minggu ahad"
)


# Heroes and founders whose names Jakarta's main roads carry, often written without "Jl.":
# "macet parah di Gatot Subroto", "lampu mati sepanjang Ahmad Yani".
def _phrases(text: str) -> frozenset[str]:
    return frozenset(phrase.strip() for phrase in text.split(","))


_STREET_NAMESAKES = _phrases(
    "sudirman, thamrin, husni thamrin, gatot subroto, ahmad yani, diponegoro, imam bonjol, "
    "hayam wuruk, gajah mada, haryono, panjaitan, suprapto, sutoyo, tendean, pierre tendean, "
    "rasuna said, antasari, pangeran antasari, fatmawati, daan mogot, kyai tapa, juanda, "
    "hasyim asyari, cipto mangunkusumo, wahidin sudirohusodo, kartini, cut meutia, "
    "cut nyak dien, sisingamangaraja, hasanudin, hasanuddin, trunojoyo, wolter monginsidi, "
    "abdul muis, pattimura, supomo, soepomo, saharjo, sahardjo, casablanca, satrio, "
    "ahmad dahlan, agus salim, teuku umar, mas mansyur, kh mas mansyur, sutomo, bung tomo, "
    "hatta, bung hatta, sukarno, soekarno, hang tuah, otista, otto iskandardinata, "
    "oto iskandar dinata, dewi sartika, raden saleh, basuki rahmat, kolonel sugiono, "
    "gunawarman, senopati, iskandarsyah, adityawarman, sultan agung, iskandar muda, "
    "panglima polim, latumenten, yos sudarso, benyamin sueb, pangeran jayakarta, "
    "sam ratulangi, ratulangi, halim perdanakusuma, perdanakusuma, tb simatupang, "
    "simatupang, letjen suprapto, mt haryono, di panjaitan, slamet riyadi, untung suropati, "
    "tjut meutia, rs fatmawati, ki hajar dewantara, hajar dewantara, mohammad husni thamrin"
)

_CAPITAL_RUN = re.compile(r"(?<![\w'’.-])[A-Z][a-z'’-]+(?:[ \t]+[A-Z][a-z'’-]+)*(?![\w'’-])")
_LOWER_HONORIFIC = re.compile(
    r"\b(?:pak|bapak|bpk|bu|ibu|mas|mbak|mba|bang|kak|mpok|teh|kang|om|tante|koh|cik|si|"
    r"pakde|bude|neng|mbah|cici|mama|papa|mamah|papah|bunda|ayah|umi|abi)\.?[ \t]+"
    r"([a-z][a-z'’-]{2,})\b"
)
_PERSON_BEFORE = re.compile(
    r"(?:\b(?:pak|bapak|bpk|bu|ibu|mas|mbak|mba|bang|kak|mpok|teh|kang|om|tante|koh|cik|ci|"
    r"engkong|nenek|kakek|haji|hj|h|sdr|sdri|saudara|saudari|si|bro|sis|pakde|pakdhe|bude|"
    r"budhe|neng|mbah|cici|babe|bi|bibi|mak|emak|ust|ustadz|ustad|ustazah|kyai|kiai|mr|mrs|ms|"
    r"miss|mama|papa|bunda|ayah|umi|abi|bp|rangkayo|datuak|datuk|daeng|mbok|mang|uwak|wak|"
    r"ceu|gek|cak|ning|aa|akong|ama|amang|inang|tulang|namboru|puang|habib|bli|uda|uni|lik)"
    r"\.?[ \t]+)$",
    re.I,
)
# Words that say "where": before a capitalised run they make it a place ("di Kemang",
# "dekat Sarinah"), unless a form of address stands between ("ke Mas Yoga" is a person).
_PLACE_PREPOSITIONS = _wordset(
    "di ke kearah arah sepanjang menuju depan dpn dpan seberang sebrang dekat dkt samping "
    "sebelah sblh belakang blkg near at in on opposite behind beside outside"
)
_PLACE_WORDS = _PLACE_PREPOSITIONS | _wordset(
    "simpang perempatan prapatan pertigaan bundaran flyover ruko "
    "underpass tol kolong ujung wilayah daerah kawasan sekitar jl jln jalan gg gang kampung "
    "kp kel kec kelurahan kecamatan kota kab komplek kompleks perumahan perum cluster blok "
    "rusun rusunawa apartemen tower mall plaza pasar stasiun halte terminal kali sungai "
    "jembatan pintu masjid mesjid musholla mushola musala langgar gereja vihara klenteng pura "
    "sekolah sd sdn smp smpn sma sman smk smkn mi mts tk paud universitas kampus yayasan "
    "rs rsud rsia puskesmas klinik apotek polsek polres koramil kantor gedung hotel wisma "
    "menara graha bank bengkel warung warteg toko kedai kios rm resto cafe kafe pt cv ud "
    "tpu makam lapangan gor taman pom spbu bandara pelabuhan tugu monumen patung museum "
    "pondok ponpes pesantren gelanggang stadion pabrik gudang showroom dealer salon "
    "restoran sekolahan madrasah ma no nomor"
)


def _place_before(text: str, pos: int) -> bool:
    """Whether the capitalised words just before ``pos`` belong to a place's name: walking back
    over capitalised words and titles ("Jl. KH Hasyim", "Gang Haji", "Bengkel Las Karya"),
    a place word comes first ("jl", "masjid", "depan")."""
    words = text[max(0, pos - 80) : pos].split()
    addressed = False
    for seen, token in enumerate(reversed(words)):
        if seen and token[-1:] in ',;:!?)"':
            return False
        bare = token.strip("().,:;\"'").lower()
        if bare in _PLACE_WORDS:
            return not (addressed and bare in _PLACE_PREPOSITIONS)
        addressed = addressed or _HONORIFIC_RE.match(token) is not None
        if not token[:1].isupper() or seen >= 5:
            return False
    return False


_PLACE_AFTER = re.compile(
    r"[ \t]+(?:raya|dalam|timur|barat|utara|selatan|tengah|baru|lama|indah|permai|asri|"
    r"residence|regency|park|square|mall|plaza|center|centre|city|tower|mart|motor|jaya|"
    r"group|tbk|street|road|no\.?\s*\d)\b",
    re.I,
)
# "Sutrisno, warga RT 02", "Wagiyem, pedagang sayur", "Jaya (sopir bajaj, …)": a name that
# opens a line and is then described
_INTRODUCES = re.compile(
    r"\s*(?:[,(]\s*(?:warga|pedagang|penghuni|pemilik|ketua|sopir|supir|karyawan|mahasiswa|"
    r"pelajar|guru|ibu|bapak|ojol|driver|pengemudi|tukang|petugas|pengurus|dari|di|anak|"
    r"tetangga|teman|kawan|istri|suami|adik|kakak|kepala\s+keluarga|ketua|penjual)\b|:|"
    r"\s+(?:melapor|lapor|di\s+sini|dari\s+(?:rt|rw|kel|warga))\b)",
    re.I,
)
_DESCRIBED = re.compile(r"\s*[,(]\s*[a-z]", re.I)
_SENTENCE_START = re.compile(r"(?:^|[.!?:;\n]|[.!?][\"')\]]?)[ \t\"'(]*$")


@lru_cache(maxsize=1)
def place_words() -> frozenset[str]:
    """Words of Jakarta's kelurahan, kecamatan and kota names (from ``areaid``)."""
    from areaid import buka_data

    words: set[str] = set()
    for prov in buka_data("daerah khusus ibukota jakarta"):
        for kab in prov["kabupaten"]:
            words.update(re.findall(r"[a-z]+", str(kab["kab_kota"]).lower()))
            for kec in kab["kecamatan"]:
                words.update(re.findall(r"[a-z]+", str(kec["kec"]).lower()))
                for kel in kec["kelurahan"]:
                    words.update(re.findall(r"[a-z]+", str(kel["kelu"]).lower()))
    return frozenset(words)


def _unannounced(text: str) -> list[tuple[int, int]]:
    """Names that no phrase announces, found by the list of Indonesian names: a capitalised
    run with a listed name in it ("Hendra Gunawan", "Bu Marni", "kemarin Yudi bilang"), or a
    listed name after a form of address ("pak darsono"). Not a street's, a school's or a
    shop's name (a place word before it, "Raya" or "Mart" after it), no place of Jakarta
    (``areaid``), no hero of a main road written without "Jl."."""
    listed = listed_names()
    spans: list[tuple[int, int]] = []
    for run in _CAPITAL_RUN.finditer(text):
        tokens = [(t.group(0), run.start() + t.start()) for t in re.finditer(r"\S+", run.group(0))]
        i = 0
        while i < len(tokens):
            word = tokens[i][0]
            low = word.lower().replace("’", "'")
            after_title = i > 0 and _HONORIFIC_RE.match(tokens[i - 1][0]) is not None
            if (
                _HONORIFIC_RE.match(word)
                or low in _ROLE_WORDS
                or (_ordinary(low, exact=True) and not (after_title and _addressable(low)))
            ):
                i += 1
                continue
            j = i
            while j < len(tokens):
                w = tokens[j][0].lower().replace("’", "'")
                if _HONORIFIC_RE.match(tokens[j][0]) or w in _ROLE_WORDS:
                    break
                if _ordinary(w, exact=True) and w not in _raw_names():
                    break
                j += 1
            segment = tokens[i:j]
            i = max(j, i + 1)
            names = [w.lower().replace("’", "'") for w, _ in segment]
            first = segment[0][1]
            before = text[max(0, first - 40) : first]
            addressed = _PERSON_BEFORE.search(before) is not None
            end = segment[-1][1] + len(segment[-1][0])
            described = _INTRODUCES.match(text, end) is not None and _DESCRIBED.match(text, end)
            if not any(w in listed for w in names) and not (
                (addressed or described) and names[0] not in _NOT_PERSONS
            ):
                continue  # "Pakde Sugeng", "Wagiyem, pedagang sayur": a person, listed or not
            # words of the run before the segment that are names too ("Sari" in "Dewi Sari
            # Anggraini"), then what stands before
            if _place_before(text, first) or _PLACE_AFTER.match(text, end):
                continue
            namesake = " ".join(names) in _STREET_NAMESAKES and not addressed
            if namesake or all(w in place_words() for w in names):
                continue  # "macet di Gatot Subroto" (but "Pak Slamet Riyadi"), "Kampung Melayu"
            if len(segment) == 1 and not addressed:
                opening = _SENTENCE_START.search(before) is not None
                introduces = _INTRODUCES.match(text, end) is not None
                if (opening and not introduces) or segment[0][0].isupper():
                    continue  # "Agung" opening a sentence, "BANJIR": too weak alone
            spans.append((first, end))
    for m in _LOWER_HONORIFIC.finditer(text):
        word = m.group(1)
        person = _addressable(word) or not (
            _ordinary(word) or word in _NOT_PERSONS or word in place_words()
        )
        if person and not _place_before(text, m.start(1)):
            spans.append((m.start(1), m.end(1)))
    for m in _BALINESE.finditer(text):  # "I Made Suarta", "Ni Luh Ayu": the name is the run
        if not _place_before(text, m.start()):
            spans.append((m.start(), m.end()))
    for m in _LOWER_BEFORE_PHONE.finditer(text):  # "wahab [nomor telepon]", as typed in an SMS
        if m.group(1) in listed:
            spans.append((m.start(1), m.end(1)))
    return spans


_INITIALS_BEFORE = re.compile(r"(?:\b[A-Z]\.\s?){1,2}$")
_INITIAL_AFTER = re.compile(r"\s[A-Z]\.(?!\w)")
_PATRONYMIC = re.compile(r"\s+(?:bin|binti|boru|br\.)\s+[A-Z][a-z'’-]+")


def _with_initials(text: str, start: int, end: int) -> tuple[int, int]:
    """A name with its initials ("A. Rahman", "M. Iqbal S.") and its father's or clan name
    ("Aisyah binti Husein", "Lamtiur boru Sinaga")."""
    m = _INITIALS_BEFORE.search(text[max(0, start - 8) : start])
    if m:
        start -= len(m.group(0))
    while True:
        more = _INITIAL_AFTER.match(text, end) or _PATRONYMIC.match(text, end)
        if not more:
            return start, end
        end = more.end()


# "Pak DARSONO", "keluarga PURNOMO": a shouted name after a form of address or a household word
_SHOUTED = re.compile(
    r"\b(?:Pak|Bu|Bapak|Ibu|Mas|Mbak|Bang|Kak|Mpok|Sdr|Sdri|Bp|Bpk|Keluarga|keluarga)\.?\s+"
    r"([A-Z]{3,}(?:\s+[A-Z]{3,}){0,2})\b"
)


def _shouted_names(text: str) -> list[tuple[int, int]]:
    spans = []
    for m in _SHOUTED.finditer(text):
        words = m.group(1).lower().split()
        if not any(
            _ordinary(w, exact=True) or w in _ROLE_WORDS or w in place_words() for w in words
        ):
            spans.append((m.start(1), m.end(1)))
    return spans


# Balinese names open with the birth order (and a caste title): I Wayan, Ni Made, I Gusti Ayu
_BALINESE = re.compile(
    r"\b(?:I|Ni)\s+(?:(?:Gusti|Dewa|Dewi|Gede|Ngurah|Bagus|Ayu|Luh)\s+)*"
    r"(?:Wayan|Made|Nyoman|Ketut|Putu|Kadek|Komang|Gede|Luh|Nengah|Kompyang|Gusti|Ayu)"
    r"(?:\s+[A-Z][a-z'’-]+){0,3}"
)
_LOWER_BEFORE_PHONE = re.compile(
    r"(?:^|[\s.,;:])([a-z][a-z'’-]{2,})[ \t,:]*(?:hp|wa|telp)?\.?[ \t:]*\[nomor telepon\]"
)


def _addressable(low: str) -> bool:
    """A listed name that is no word of the dictionary and no role: after "Pakde", "Bu",
    "Mas" it is a person even where chat slang knows it ("sugeng")."""
    return (
        low in _raw_names()
        and low not in _name_words()
        and low not in _NOT_PERSONS
        and low not in _ROLE_WORDS
        and low not in place_words()
    )


@lru_cache(maxsize=1)
def _name_list() -> tuple[frozenset[str], frozenset[str]]:
    raw = resources.files("bridge").joinpath("data/names_id.txt").read_text("utf-8")
    lines = [w.strip() for w in raw.splitlines() if w.strip() and not w.startswith("#")]
    return frozenset(w.rstrip("*") for w in lines), frozenset(w[:-1] for w in lines if w[-1] == "*")


def _raw_names() -> frozenset[str]:
    """Every listed name, words included ("sari", "putri"): a name word next to a surely
    listed one is part of the name."""
    return _name_list()[0]


def _name_words() -> frozenset[str]:
    """Listed names that are also Indonesian words ("bintang", "studi"): never a name alone."""
    return _name_list()[1]


# "Clara\n\nOn Tue, 4 Mar … wrote:" / "Arif\n\nDikirim dari Yahoo Mail": a lone name line that
# ends a message before a quoted thread or an app's footer
_BEFORE_THREAD = re.compile(
    r"(?:^|\n)[ \t]*([A-Z][\w'.-]*(?:[ \t]+[A-Z][\w'.-]*){0,3})[ \t]*\n(?:[ \t]*\n)*[ \t]*"
    r"(?:On\s.{5,80}wrote:|Pada\s.{5,80}menulis:|-{3,}|Dikirim dari|Sent from|>)",
)
_CLOSING = re.compile(
    r"\b(?:hormat\s+(?:saya|kami)|salam(?:\s+(?:hormat|sejahtera|hangat))?|wassalam\S*|"
    r"terima\s*kasih|regards|best\s+regards|tertanda|ttd\.?|a\.n\.\s+warga)\b[^\n]*\n",
    re.I,
)


_PLACE_BEFORE = re.compile(
    r"(?:jl|jln|jalan|gg|gang|masjid|mushola|gereja|stasiun|halte|komplek|perumahan|taman|"
    r"pasar|sd|sdn|smp|smpn|sma|sman|rs|rsud|universitas|kampus|toko|warung|pt|cv)\.?\s*$",
    re.I,
)


_RUN_BACK = re.compile(r"(?:[A-Z][\w'’.-]*\s+)+$")


def _elsewhere(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """A name found once is the same name everywhere else in the message ("Hendra" in the
    greeting, "Hendra Gunawan" in the signature), in the same case, except inside the name of
    a place (Jl. Ahmad Yani next to a reporter called Yani, Jl. Cut Meutia next to Cut)."""
    words: set[str] = set()
    for start, end in spans:
        for w in re.findall(r"[A-Za-z][A-Za-z'’-]{2,}", text[start:end]):
            low = w.lower()
            if not _HONORIFIC_RE.match(w) and low not in _ROLE_WORDS and not _ordinary(low):
                words.update({w, w.capitalize(), w.upper()} if w[:1].isupper() else {w})
    if not words:
        return []
    pattern = re.compile(r"\b(" + "|".join(sorted(map(re.escape, words))) + r")\b")
    found: list[tuple[int, int]] = []
    for m in pattern.finditer(text):
        if any(s <= m.start() < e for s, e in spans):
            continue
        before = text[max(0, m.start() - 60) : m.start()]
        run = _RUN_BACK.search(before)
        head = before[: run.start()] if run else before
        if _PLACE_BEFORE.search(head[-14:]) or _PLACE_BEFORE.search(before[-14:]):
            continue  # part of a street's, a mosque's, a school's name
        if run and _PLACE_BEFORE.match(run.group(0).split()[0]):
            continue
        found.append((m.start(), m.end()))
    return found


def _closing_block(text: str) -> list[tuple[int, int]]:
    """In the lines after a letter's last sign-off, every line (or column of a line) that
    opens with a name, before a role, an address or a number: "Ir. H. Bambang Sutrisno, M.T."."""
    found = list(_CLOSING.finditer(text))
    if not found:
        return []
    spans: list[tuple[int, int]] = []
    pos = found[-1].end()
    for line in text[pos:].split("\n")[:24]:
        # a signature block may stand in columns: "Ketua RT 010,        Sekretaris RT 010,"
        for column in re.finditer(r"\S.*?(?= {3,}|$)", line):
            body = column.group()
            lead = pos + column.start() + len(body) - len(body.lstrip("([-–— \t"))
            stop = pos + column.end()
            end = _name_end(text, lead, strong=False, need_capital=True)
            rest = text[end:stop]
            if end > lead and (not rest.strip() or rest.lstrip()[:1] in ",()/<-–—|["):
                spans.append((lead, end))
        pos += len(line) + 1
    return spans


def scrub(text: str) -> str:
    """Replace personal values with placeholders; idempotent."""
    if not text:
        return text
    text = _EMAIL.sub(lambda m: m.group(0) if _INSTITUTION.search(m.group(0)) else EMAIL, text)
    text = _PROFILE.sub(HANDLE, text)
    text = _LABELLED_HANDLE.sub(lambda m: m.group(0).replace(m.group(1), HANDLE), text)
    text = _HANDLE.sub(_handle, text)
    text = _ACCOUNT.sub(lambda m: m.group(0).replace(m.group(1), ACCOUNT), text)
    text = _NIP.sub(NIK, text)
    text = _ID16.sub(NIK, text)
    text = _NPWP.sub(NPWP, text)
    text = _phones(text)
    return _names(text)


__all__ = ["ACCOUNT", "EMAIL", "HANDLE", "NAME", "NIK", "NPWP", "PHONE", "ordinary_words", "scrub"]
