"""Scoring benchmark: posts/s end to end (database read -> Score rows written) and peak memory,
against the naive way (one `transformers` pipeline per head, one post at a time, same encoder).

    .venv/bin/python bench/score.py                       # 5,000 posts, naive on 200
    .venv/bin/python bench/score.py --posts 2000 --naive-posts 100 --threads 2

Goals (issue 4): >= 250 posts/s on the 2 cores, >= 10x the naive way, <= 1 GB resident.
Tweet-length posts come from TweetEval validation (read by path, never copied). Results go to
docs/benchmarks.md by hand.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path: put the repository root first.
sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import os
import platform
import random
import resource
import tempfile
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import torch

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "tweeteval-sentiment"


def tweets(count: int) -> list[str]:
    """Distinct tweets: the scorer scores repeated texts once, which would flatter the figure."""
    texts: list[str] = []
    for name in ("val_text.txt", "train_text.txt"):
        texts.extend((DATA / name).read_text(encoding="utf-8").splitlines())
    unique = list(dict.fromkeys(t for t in texts if t.strip()))
    return random.Random(4).sample(unique, min(count, len(unique)))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def fill_database(url: str, texts: list[str]) -> None:
    from storage.db import session_scope
    from storage.models import Author, Mention

    now = datetime.now(UTC)
    with session_scope() as session:
        authors = [
            Author(platform="x", handle=f"user{i}", followers=10 ** (i % 6), bio="")
            for i in range(100)
        ]
        session.add_all(authors)
        session.flush()
        session.add_all(
            Mention(
                platform="x",
                external_id=str(i),
                text=text,
                clean_text=text,
                lang="en",
                author_id=authors[i % 100].id,
                created_at=now - timedelta(minutes=i % 90),
                likes=i % 50,
                reposts=i % 7,
                replies=i % 5,
                engagement_observed_at=now,
            )
            for i, text in enumerate(texts)
        )


def bench_pipeline(texts: list[str], batch: int) -> dict[str, float]:
    """Our way: `score_backlog` over a real SQLite database, in batches (as the service does)."""
    from classifier.pending import score_backlog
    from classifier.predict import get_scorer
    from storage import db as storage_db
    from storage.db import session_scope
    from storage.migrate import upgrade
    from storage.models import Score
    from tocsin.config import Settings

    folder = Path(tempfile.mkdtemp(prefix="tocsin-bench-score-"))
    url = f"sqlite:///{folder / 'bench.db'}"
    upgrade(url=url)
    storage_db.configure(url)
    fill_database(url, texts)
    settings = Settings(data_dir=folder, database_url=url)
    scorer = get_scorer(settings.model)
    scorer.predict(texts[:64])  # warm-up: first-call allocations are not the steady state
    started = time.perf_counter()
    done = score_backlog(settings=settings, batch=batch, scorer=scorer)
    seconds = time.perf_counter() - started
    with session_scope() as session:
        from sqlmodel import func, select

        written = session.exec(select(func.count()).select_from(Score)).one()
    assert written == len(texts), (written, len(texts))
    storage_db.dispose()
    return {"posts": done, "seconds": seconds, "rate": done / seconds}


def bench_model_only(texts: list[str]) -> dict[str, float]:
    from classifier.predict import get_scorer
    from tocsin.config import Settings

    scorer = get_scorer(Settings().model)
    started = time.perf_counter()
    scorer.predict(texts)
    seconds = time.perf_counter() - started
    return {"posts": len(texts), "seconds": seconds, "rate": len(texts) / seconds}


def naive_pipelines() -> dict[str, Any]:
    """One text-classification pipeline per head, each with its own copy of the same encoder."""
    from transformers import AutoConfig, AutoModelForSequenceClassification, pipeline

    from classifier.model import encoder_path, load_model
    from tocsin.config import Settings

    loaded = load_model(Settings().model.weights)  # TOCSIN_MODEL__WEIGHTS picks another model
    base = encoder_path(loaded.spec.encoder)
    pipes: dict[str, Any] = {}
    tokenizer: Any = loaded.tokenizer
    for head, labels in loaded.spec.labels.items():
        config = AutoConfig.from_pretrained(base, num_labels=len(labels))
        model = AutoModelForSequenceClassification.from_config(config)
        model.bert.load_state_dict(loaded.model.encoder.state_dict())
        model.eval()
        pipes[head] = pipeline("text-classification", model=model, tokenizer=tokenizer)
    return pipes


def bench_naive(texts: list[str]) -> dict[str, float]:
    pipes = naive_pipelines()
    for pipe in pipes.values():
        pipe(texts[0])
    started = time.perf_counter()
    for text in texts:
        for pipe in pipes.values():
            pipe(text, truncation=True, max_length=128)
    seconds = time.perf_counter() - started
    return {"posts": len(texts), "seconds": seconds, "rate": len(texts) / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=5000)
    parser.add_argument("--naive-posts", type=int, default=200)
    parser.add_argument("--batch", type=int, default=None, help="default: service.score_batch")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    texts = tweets(args.posts)
    from tocsin.config import Settings

    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"precision {Settings().model.precision}, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    ours = bench_pipeline(texts, args.batch or Settings().service.score_batch)
    rss = peak_rss_mb()
    print(
        f"ours  (DB read -> Score rows): {ours['posts']:.0f} posts in {ours['seconds']:.1f} s "
        f"= {ours['rate']:.0f} posts/s; peak RSS {rss:.0f} MB"
    )
    model = bench_model_only(texts)
    print(f"ours  (model only):            {model['rate']:.0f} posts/s")
    naive = bench_naive(texts[: args.naive_posts])
    print(
        f"naive (pipeline per head, 1 post at a time): {naive['posts']:.0f} posts in "
        f"{naive['seconds']:.1f} s = {naive['rate']:.1f} posts/s"
    )
    print(
        f"speed-up end to end: {ours['rate'] / naive['rate']:.1f}x; "
        f"load average after: {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
