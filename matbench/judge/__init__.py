"""The LLM judge, beside F1/EM (never instead of them).

``prompts`` (matbench's wording, SenseNova-MARS's judge read by ``sensenova``), ``loop`` (the judge model on
matbench's backends, one sample's verdict), ``records`` (judgments.jsonl, judge.json), ``summary`` (the judge
block of summary.json and the leaderboard entry's ``judge`` field), ``during_eval`` (`eval --judge`),
``compare`` and ``view`` (what those commands show). The command is ``matbench/commands/judge.py``.
"""
