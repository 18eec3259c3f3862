"""Test support (like `numpy.testing`): small random Llama models with a locally trained
tokenizer, shared by `tests/` and `benchmarks/`. The engine never imports this module (a test
checks it); it ships inside the package only so that benchmarks run from a fresh install.

There is no model hub here, so tests cannot fetch a real PRM. `build_tiny_llama` writes a folder
that looks like a Llama-3.1 checkpoint to both transformers (`from_pretrained`) and vLLM:
safetensors weights, a byte-level BPE tokenizer with Llama-3 special tokens and chat template,
and the step tag `' ки'` tokenised in one of three ways (see `Marker`), because PRM code must
handle all three: Med-PRM's tokenizer has it as one special token, many tokenizers as one
ordinary token, and SmolLM2's splits it into two.

Vocabulary size: BPE training on the built-in corpus stops near, but rarely exactly at, the
requested `vocab_size`. The gap is filled with Llama-3-style `<|reserved_special_token_N|>`
special tokens, so the tokenizer and the LM head both have exactly `vocab_size` rows (padding
only the embeddings would let vLLM sample ids that the tokenizer cannot decode). If the fixed
tokens alone exceed `vocab_size`, the model gets `len(tokenizer)` rows instead.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import torch
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors
from tokenizers.trainers import BpeTrainer

Marker = Literal["special", "single", "split"]

BOS = "<|begin_of_text|>"
EOT = "<|eot_id|>"
PAD = "<|finetune_right_pad_id|>"
START_HEADER = "<|start_header_id|>"
END_HEADER = "<|end_header_id|>"
STEP_TAG = " ки"
PLUS = " +"
MINUS = " -"
CPU_HEAD_SIZES = (32, 64, 80, 96, 112, 128, 160, 192, 224, 256, 512)

CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'"
    " + message['content'] + '<|eot_id|>' }}{% endfor %}"
    "{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)

_WORD_TEXT = """
the a an of and or with without in on at to from by for is are was were be has have had not
no this that which who what most likely following patient man woman child infant year old
presents history examination shows reveals blood pressure heart rate temperature fever cough
pain chest abdominal headache nausea vomiting diarrhea fatigue weight loss rash swelling
dyspnea shortness breath infection bacterial viral acute chronic disease disorder syndrome
diagnosis treatment therapy management next best step drug dose mechanism action receptor
inhibitor antibiotic insulin glucose kidney liver lung heart brain bone muscle skin nerve
artery vein cell protein enzyme gene mutation deficiency increased decreased normal elevated
low high level serum urine test result laboratory finding biopsy imaging scan chest x-ray
ultrasound because therefore since however so thus indicates suggests consistent explains
cause effect risk factor complication prognosis symptom sign diabetes hypertension asthma
pneumonia anemia sepsis stroke cancer tumor carcinoma lymphoma leukemia hepatitis cirrhosis
failure arrest attack embolism thrombosis hemorrhage fracture trauma surgery emergency
department hospital admitted physician nurse mother father day week month days weeks months
hours minutes mg kg ml dl mmhg bpm answer option correct incorrect first second third step
consider rule out exclude confirm evaluate assess administer start stop continue oral
intravenous medication vaccine screening prevention pregnancy pregnant labor delivery newborn
"""
_WORDS = _WORD_TEXT.split()

_ONSETS = [*"bcdfghklmnprstvz", "br", "cl", "st", "tr", "ph", "th", "ch", "gr", "pl", "sp"]
_VOWELS = [*"aeiou", "ia", "eo", "ou", "ae"]
_CODAS = ["", "", "n", "r", "s", "l", "x", "m", "t"]


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randint(5, 14))]
    return " ".join(words).capitalize() + rng.choice([".", ".", ",", ";", "?"])


def _pseudo_word(rng: random.Random) -> str:
    return "".join(
        rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS)
        for _ in range(rng.randint(2, 4))
    )


def _corpus(vocab_size: int, marker: Marker, seed: int = 1234) -> Iterator[str]:
    """Deterministic English-like medical text, PRM-formatted, plus pseudo-words.

    The pseudo-words (about one per vocabulary entry) give BPE enough distinct material to
    approach large vocabulary targets. `' ки'` appears only for the "single" marker, so in the
    other variants no merge can build it.
    """
    rng = random.Random(seed)
    tag = STEP_TAG if marker == "single" else ""
    for q in range(400):
        age = rng.randint(1, 90)
        yield f"Question {q}: A {age}-year-old patient. {_sentence(rng)} {_sentence(rng)}"
        yield " ".join(f"({c}) {rng.choice(_WORDS)} {rng.choice(_WORDS)}" for c in "ABCDE")
        for k in range(1, rng.randint(3, 7)):
            label = rng.choice([PLUS, MINUS])
            yield f"Step {k}: {_sentence(rng)} {_sentence(rng)}{tag}{label}"
        yield f"The answer is ({rng.choice('ABCDE')}).{tag}{rng.choice([PLUS, MINUS])}"
        yield f"{rng.randint(0, 9999)} mg/dL, {rng.randint(0, 300)}/{rng.randint(0, 200)} mm Hg"
    for _ in range(0, vocab_size, 16):
        yield " ".join(_pseudo_word(rng) for _ in range(16))


def _specials(marker: Marker) -> list[str]:
    specials = [BOS, EOT, START_HEADER, END_HEADER, PAD]
    return specials + [STEP_TAG] if marker == "special" else specials


def _train_tokenizer(marker: Marker, vocab_size: int, bos: bool) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    specials = _specials(marker)
    trainer = BpeTrainer(
        vocab_size=max(vocab_size - len(specials), 300),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(vocab_size, marker), trainer=trainer)
    for piece in (PLUS, MINUS):  # normally learnt from the corpus; added only as a fallback
        if len(tok.encode(piece).ids) != 1:
            tok.add_tokens([AddedToken(piece, normalized=False)])
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    gap = vocab_size - tok.get_vocab_size()
    reserved = [f"<|reserved_special_token_{i}|>" for i in range(max(gap, 0))]
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in reserved])
    if bos:
        bos_id = tok.token_to_id(BOS)
        tok.post_processor = processors.TemplateProcessing(
            single=f"{BOS}:0 $A:0",
            pair=f"{BOS}:0 $A:0 {BOS}:1 $B:1",
            special_tokens=[(BOS, bos_id)],
        )
    return tok


def _wrap(tok: Tokenizer, bos: bool):  # -> PreTrainedTokenizerFast
    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOT,
        pad_token=PAD,
        clean_up_tokenization_spaces=False,
        model_max_length=131072,
        add_bos_token=bos,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def _special_ids(tokenizer) -> set[int]:
    """Ids flagged special in the tokenizer (`all_special_ids` omits added special tokens)."""
    added = {i for i, t in tokenizer.added_tokens_decoder.items() if t.special}
    return added | set(tokenizer.all_special_ids)


def check_tokenizer(tokenizer, marker: Marker, bos: bool = True) -> None:
    """Assert the properties `build_tiny_llama` promises (also usable on a reloaded tokenizer)."""
    for piece in (PLUS, MINUS):
        ids = tokenizer.encode(piece, add_special_tokens=False)
        assert len(ids) == 1, f"{piece!r} -> {ids}"
    tag = tokenizer.encode(STEP_TAG, add_special_tokens=False)
    special = _special_ids(tokenizer)
    if marker == "special":
        assert len(tag) == 1 and tag[0] in special, tag
    elif marker == "single":
        assert len(tag) == 1 and tag[0] not in special, tag
    else:
        assert len(tag) >= 2 and not special & set(tag), tag
    first = tokenizer.encode("fever", add_special_tokens=True)[0]
    assert (first == tokenizer.bos_token_id) == bos, (first, bos)


def _head_dim(hidden_size: int, num_heads: int, num_kv_heads: int) -> int:
    head_dim, rest = divmod(hidden_size, num_heads)
    if rest or num_heads % num_kv_heads:
        raise ValueError(f"bad shape: hidden {hidden_size}, heads {num_heads}/{num_kv_heads}")
    if head_dim not in CPU_HEAD_SIZES:
        raise ValueError(f"head size {head_dim} is not one vLLM's CPU kernels support: "
                         f"{CPU_HEAD_SIZES}")
    return head_dim


def build_tiny_llama(
    out_dir: str | Path,
    *,
    marker: Marker = "special",
    hidden_size: int = 128,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    intermediate_size: int = 256,
    vocab_size: int = 2048,
    max_position_embeddings: int = 4096,
    seed: int = 0,
    bos: bool = True,
    num_labels: int | None = None,
) -> Path:
    """Write a random-weight Llama (float32 safetensors) and its tokenizer to `out_dir`.

    `num_labels` builds a `LlamaForSequenceClassification` (outcome reward models) instead of a
    causal LM. The same arguments always give identical weights and tokenizer files.
    """
    from transformers import LlamaConfig, LlamaForCausalLM, LlamaForSequenceClassification

    if marker not in ("special", "single", "split"):
        raise ValueError(f"unknown marker variant {marker!r}")
    head_dim = _head_dim(hidden_size, num_heads, num_kv_heads)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = _wrap(_train_tokenizer(marker, vocab_size, bos), bos)
    check_tokenizer(tokenizer, marker, bos)
    config = LlamaConfig(
        vocab_size=max(vocab_size, len(tokenizer)),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        head_dim=head_dim,
        max_position_embeddings=max_position_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
        dtype="float32",
    )
    if num_labels is not None:
        config.num_labels = num_labels
    cls = LlamaForCausalLM if num_labels is None else LlamaForSequenceClassification
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = cls(config).to(torch.float32).eval()
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return out

