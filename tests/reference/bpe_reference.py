#!/usr/bin/python3
"""Independent reference for the byte-level BPE tokenizer test (standard library only).

usage: bpe_reference.py MODE CORPUS CASES N_MERGES > out.json
  MODE is gpt2, qwen2 or llama3 (the pre-tokenizer regex). Trains N_MERGES byte-level BPE merges on CORPUS
  (pre-tokenized with that regex), then tokenizes each string of the JSON list in CASES with the classic GPT-2
  algorithm (lowest-rank pair first). Special tokens <|endoftext|>, <|im_start|>, <|im_end|> are matched verbatim.
  Prints {"tokens": [...], "merges": [...], "special": [...], "cases": [{"text", "ids"}]}.
Unicode classes follow Python's re: a letter is [^\\W\\d_], a number is \\d (the C++ side approximates \\p{L} and
\\p{N}; the cases stay within scripts where the two agree).
"""
import json
import re
import sys
from collections import Counter

L = r"[^\W\d_]"
N = r"\d"
NOT_LN = r"(?:[^\s\w]|_)"  # [^\s\p{L}\p{N}]
PATTERNS = {
    "gpt2": r"'s|'t|'re|'ve|'m|'ll|'d| ?%s+| ?%s+| ?%s+|\s+(?!\S)|\s+" % (L, N, NOT_LN),
    "qwen2": r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|(?:[^\r\n\w]|_)?%s+|%s| ?%s+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+" % (L, N, NOT_LN),
    "llama3": r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|(?:[^\r\n\w]|_)?%s+|%s{1,3}| ?%s+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+" % (L, N, NOT_LN),
}
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) + list(range(ord("\xae"), ord("\xff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


B2U = bytes_to_unicode()


def words(text, pat):
    return ["".join(B2U[b] for b in w.encode("utf-8")) for w in re.findall(pat, text)]


def train(corpus, pat, n_merges):
    counts = Counter(words(corpus, pat))
    seqs = {w: list(w) for w in counts}
    merges = []
    for _ in range(n_merges):
        pairs = Counter()
        for w, c in counts.items():
            s = seqs[w]
            for a, b in zip(s, s[1:]):
                pairs[(a, b)] += c
        if not pairs:
            break
        best = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))[0]
        merges.append(best)
        for w in seqs:
            s, out, i = seqs[w], [], 0
            while i < len(s):
                if i + 1 < len(s) and (s[i], s[i + 1]) == best:
                    out.append(s[i] + s[i + 1])
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            seqs[w] = out
    return merges


def bpe(word, ranks):
    parts = list(word)
    while len(parts) > 1:
        cands = [(ranks.get((a, b), 1 << 30), i) for i, (a, b) in enumerate(zip(parts, parts[1:]))]
        r, i = min(cands)
        if r == 1 << 30:
            break
        parts[i:i + 2] = [parts[i] + parts[i + 1]]
    return parts


def main():
    mode, corpus_path, cases_path, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    pat = PATTERNS[mode]
    merges = train(open(corpus_path, encoding="utf-8").read(), pat, n)
    tokens = [B2U[b] for b in range(256)]
    for a, b in merges:
        if a + b not in tokens:
            tokens.append(a + b)
    tokens += SPECIAL
    index = {t: i for i, t in enumerate(tokens)}
    ranks = {m: i for i, m in enumerate(merges)}
    split = re.compile("(" + "|".join(re.escape(s) for s in SPECIAL) + ")")
    cases = []
    for text in json.load(open(cases_path, encoding="utf-8")):
        ids = []
        for chunk in split.split(text):
            if chunk in SPECIAL:
                ids.append(index[chunk])
                continue
            for w in words(chunk, pat):
                ids += [index[p] for p in bpe(w, ranks)]
        cases.append({"text": text, "ids": ids})
    json.dump({"tokens": tokens, "merges": ["%s %s" % m for m in merges], "special": SPECIAL, "cases": cases},
              sys.stdout, ensure_ascii=True)


if __name__ == "__main__":
    main()
