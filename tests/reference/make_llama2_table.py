#!/usr/bin/env python3
"""Writes tests/testdata/llama2_spm_ids.json: SentencePiece's own encoding
(spm_encode from Debian's `sentencepiece` package) of a set of strings with
Llama 2's tokenizer.model, for hf_tokenizer_test.cc to compare against:

    apt-get install sentencepiece
    python3 tests/reference/make_llama2_table.py ../shared/tokenizers/llama2/tokenizer.model \
        > tests/testdata/llama2_spm_ids.json"""
import json, subprocess, sys

STRINGS = [
    "Hello, my name is",
    "Once upon a time, there was a little girl named Lily.",
    "  leading spaces and trailing  ",
    "multiple   spaces\tand\ttabs",
    "line one\nline two\n\nline four",
    "Emoji: \U0001F600\U0001F680 and symbols \u2603 \u00a9",
    "\u4e2d\u6587\u6587\u672c \u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8 \ud55c\uad6d\uc5b4",
    "Caf\u00e9 na\u00efve r\u00e9sum\u00e9 \u00fcber Stra\u00dfe",
    "\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440! \u0393\u03b5\u03b9\u03ac \u03c3\u03bf\u03c5",
    "Numbers 1234567890 and 3.14159, 1e-5",
    "def f(x):\n    return x ** 2  # code",
    "don't won't it's I'm we'll they've",
    "https://example.com/path?query=1&b=2",
    "a",
    "UPPER lower MiXeD",
]

model = sys.argv[1]
table = []
for s in STRINGS:
    out = subprocess.run(["spm_encode", "--model", model, "--output_format=id"],
                         input=s.encode("utf-8"), capture_output=True, check=True).stdout.decode()
    # spm_encode encodes line by line; join lines the way one string would be.
    ids = [int(t) for t in out.split()]
    table.append({"text": s, "ids": ids, "multiline": "\n" in s})
print(json.dumps({"source": "spm_encode (Debian sentencepiece 0.1.97)", "cases": table},
                 ensure_ascii=False, indent=1))
