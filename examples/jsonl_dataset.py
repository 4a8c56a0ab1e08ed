"""Build a JSONL dataset (for fine-tuning, or synthetic data) while tracking the runs.

Run from the examples/ folder: `python jsonl_dataset.py`. It writes `jsonl_dataset.db` and
`jsonl_dataset/prompts.jsonl`, one JSON object per generated example.
"""

import os
import shutil

import pandas as pd

from xetrack import Reader, Tracker

DB, FOLDER = "jsonl_dataset.db", "jsonl_dataset"
if os.path.exists(DB):
    os.remove(DB)
shutil.rmtree(FOLDER, ignore_errors=True)
DATASET = os.path.join(FOLDER, "prompts.jsonl")  # the folder is created for us


def generate(subject: str, style: str) -> str:
    """Stands in for a call to an LLM."""
    return f"Help me with my {subject}, in a {style} tone"


tracker = Tracker(DB, jsonl=DATASET, params={"generator": "template-v1"})
for subject in ("taxes", "dance", "cooking"):
    for style in ("formal", "casual"):
        prompt = generate(subject, style)
        tracker.log({"subject": subject, "style": style, "prompt": prompt, "n_chars": len(prompt)})
tracker.close()

with open(DATASET) as fh:
    print("first line of the dataset:")
    print(fh.readline().strip())

df = Reader.read_jsonl(DATASET)  # numbers stay numbers
print(f"\n{len(df)} examples; n_chars is {df['n_chars'].dtype}")
print(df[["subject", "style", "n_chars"]].to_string())

same = pd.read_json(DATASET, lines=True)  # it is plain JSONL: any tool reads it
assert len(same) == len(df)
print(f"\npandas.read_json(lines=True) reads the same {len(same)} lines; the database holds {len(Reader(DB))} rows")
